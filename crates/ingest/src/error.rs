use thiserror::Error;

use crate::Format;

/// Why an input was refused. Nothing of a refused input is stored.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum IngestError {
    #[error("the input is empty (0 bytes)")]
    Empty,
    #[error(
        "cannot tell the input's format; pass --format (one of: github, gitlab, jira, jenkins, cdevents, junit, sarif, cyclonedx, spdx, intoto)"
    )]
    UnknownFormat,
    /// Not valid JSON (includes truncated JSON), with serde_json's position.
    #[error("{format}: invalid JSON: {message}")]
    Json { format: Format, message: String },
    /// Not well-formed XML (includes truncated XML and non-XML text).
    #[error("{format}: not well-formed XML: {message}")]
    Xml { format: Format, message: String },
    /// Well-formed, but not this format (wrong root element, missing required fields, ...).
    #[error("{format}: {message}")]
    Schema { format: Format, message: String },
    /// This format, in a version Trailmark does not read.
    #[error("{format}: unsupported version {version}")]
    Version { format: Format, version: String },
    /// An event of this source that Trailmark does not turn into evidence.
    #[error("{format}: unsupported event {event:?}")]
    Event { format: Format, event: String },
    /// Parsed, but no part of it was usable.
    #[error("{format}: nothing usable in the input: {}", reasons.join("; "))]
    NothingUsable {
        format: Format,
        reasons: Vec<String>,
    },
}

impl IngestError {
    pub fn json(format: Format, e: &serde_json::Error) -> IngestError {
        IngestError::Json {
            format,
            message: e.to_string(),
        }
    }

    pub fn schema(format: Format, message: impl Into<String>) -> IngestError {
        IngestError::Schema {
            format,
            message: message.into(),
        }
    }
}
