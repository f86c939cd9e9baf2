use trailmark_policy::PolicyError;
use trailmark_store::StoreError;

/// Why a dossier could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DossierError {
    #[error("missing from the log: {0}")]
    Missing(String),
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Model(#[from] trailmark_model::ModelError),
}
