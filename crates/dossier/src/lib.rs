//! Release dossiers: for one release, every record that tells its story, with inclusion proofs
//! to a signed checkpoint, the gate decisions with their inputs and policies, and the derived
//! view an auditor reads — exportable as JSON, HTML, an in-toto/SLSA VSA certification and OSCAL
//! assessment results, and verifiable offline.
#![forbid(unsafe_code)]

pub mod html;
pub mod oscal;
pub mod view;

pub use view::View;
