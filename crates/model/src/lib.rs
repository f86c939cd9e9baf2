//! Evidence records: what a user may submit, what Trailmark stores, and the exact bytes it signs.
//!
//! Three layers, kept apart on purpose (see ARCHITECTURE.md):
//! - [`input`]: the JSON a user or pipeline writes. Parsed — not merely validated — into
//!   [`NewRecord`], so nothing downstream can see an unchecked kind, subject or timestamp.
//! - [`record`]: domain types ([`NewRecord`], [`Record`]) with newtypes for every identifier.
//! - [`wire`]: the versioned serde form of a stored record. Its RFC 8785 (JCS) canonical bytes are
//!   the Merkle leaf. Only this module decides those bytes, and a snapshot test pins them, so a
//!   refactor of the domain types can never change what was signed.
#![forbid(unsafe_code)]

mod canon;
mod error;
mod ids;
pub mod input;
mod json;
pub mod record;
pub mod wire;

pub use canon::canonical_json;
pub use error::{FieldError, ModelError};
pub use ids::{Digest, Kind, LogIndex, Rel, SubjectType, Timestamp};
pub use input::{Item, RecordsError, parse_record, parse_records};
pub use json::{at as json_at, canonical_bytes, write_string as write_canonical_string};
pub use record::{
    Blob, LARGE_PAYLOAD_BYTES, Link, NewRecord, Payload, Record, Sealed, Subject, SubjectError,
};
pub use wire::{
    LeafMentions, decode_leaf, decode_leaf_mentions, encode_leaf, encode_leaf_reference, to_json,
};
