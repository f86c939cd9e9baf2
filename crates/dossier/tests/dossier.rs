//! The dossier crate's one integration-test binary, a module per area.
#![allow(clippy::unwrap_used)]

#[path = "dossier/audit.rs"]
mod audit;
#[path = "dossier/build_verify.rs"]
mod build_verify;
#[path = "dossier/pinned.rs"]
mod pinned;
#[path = "dossier/render.rs"]
mod render;
#[path = "dossier/vendorable.rs"]
mod vendorable;
