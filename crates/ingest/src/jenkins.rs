//! Jenkins adapter. (Not written yet: refuses every input.)

use crate::{Context, Format, IngestError, Parsed};

pub fn parse(_bytes: &[u8], _ctx: &Context) -> Result<Parsed, IngestError> {
    Err(IngestError::schema(Format::Jenkins, "this adapter is not implemented yet"))
}
