//! Release dossiers: for one release, every record that tells its story, with inclusion proofs
//! to a signed checkpoint, the gate decisions with their inputs and policies, and the derived
//! view an auditor reads — exportable as JSON, HTML, an in-toto/SLSA VSA certification and OSCAL
//! assessment results, and verifiable offline.
#![forbid(unsafe_code)]

pub mod audit;
pub mod bundle;
pub mod cert;
pub mod compute;
mod error;
pub mod html;
pub mod mem;
pub mod oscal;
#[cfg(feature = "pdf")]
pub mod pdf;
pub mod verify;
pub mod view;

pub use bundle::{BuildOptions, Dossier, RecordEntry, build};
pub use error::DossierError;
pub use view::{View, ViewVersion};

/// "Explain release R": the view as of now, without exporting anything.
pub fn explain(
    store: &dyn trailmark_store::Store,
    people: &trailmark_ingest::identity::IdentityMap,
    policy_name: &str,
    release: &str,
) -> Result<View, DossierError> {
    let mut gov = trailmark_policy::Governance::new(store, people);
    gov.policy_name = policy_name.to_owned();
    let policy = gov.active_policy()?;
    Ok(compute::view(
        store,
        people,
        release,
        trailmark_model::Timestamp::now(),
        &policy.policy,
        view::ViewVersion::LATEST,
    )?
    .view)
}
