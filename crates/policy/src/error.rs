use trailmark_store::StoreError;

/// Everything governance can refuse or fail at. Input problems name what is wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The policy file or stored policy is not valid.
    #[error("policy: {0}")]
    Invalid(String),
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    /// A request that cannot be carried out as asked (unknown release, duplicate, bad value).
    #[error("{0}")]
    Refused(String),
    /// The acting person may not do this (separation of duties, eligibility).
    #[error("not allowed: {0}")]
    NotAllowed(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// Stored governance records that do not parse: the log holds something this version
    /// cannot read.
    #[error("stored record {index}: {message}")]
    Stored { index: u64, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}
