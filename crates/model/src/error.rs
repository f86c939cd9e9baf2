use thiserror::Error;

/// Everything that can be wrong with evidence handed to Trailmark.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The text is not JSON at all (or not one JSON value).
    #[error("invalid JSON: {0}")]
    Json(String),
    /// The JSON parsed but a field is missing, mistyped or has a bad value.
    #[error("{0}")]
    Field(#[from] FieldError),
    /// A stored leaf could not be decoded: the store holds bytes Trailmark did not write.
    #[error("stored record is not a valid v1 leaf: {0}")]
    Leaf(String),
}

/// A field-level problem, naming the field (as a JSON pointer where useful) and why.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FieldError {
    #[error("a record must be a JSON object, found {found}")]
    NotAnObject { found: &'static str },
    #[error("missing required field `{0}`")]
    Missing(&'static str),
    #[error(
        "unknown field `{0}` (allowed: kind, subjects, payload, occurred_at, actor, source, links, idempotency_key)"
    )]
    Unknown(String),
    #[error("field `{field}` must be {expected}")]
    WrongType {
        field: String,
        expected: &'static str,
    },
    #[error("`kind` {value:?} is invalid: {reason}")]
    Kind { value: String, reason: &'static str },
    #[error("`subjects` must contain at least one subject")]
    NoSubjects,
    #[error("{field}: subject type {value:?} is invalid: {reason}")]
    SubjectType {
        field: String,
        value: String,
        reason: &'static str,
    },
    #[error("{field}: subject id is invalid: {reason}")]
    SubjectId { field: String, reason: &'static str },
    #[error("{field}: link rel {value:?} is invalid: {reason}")]
    Rel {
        field: String,
        value: String,
        reason: &'static str,
    },
    #[error("`{field}` is not an RFC 3339 timestamp with offset: {value:?}")]
    Timestamp { field: &'static str, value: String },
    #[error("`{field}` is invalid: {reason}")]
    Text {
        field: &'static str,
        reason: &'static str,
    },
    #[error(
        "{pointer}: floating-point numbers are not allowed in evidence (signed bytes must be exact); encode the value as a string"
    )]
    Float { pointer: String },
    #[error(
        "{pointer}: integer outside the exactly representable range ±(2^53-1); encode it as a string"
    )]
    IntegerRange { pointer: String },
}
