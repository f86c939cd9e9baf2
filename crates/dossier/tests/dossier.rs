//! The dossier crate's one integration-test binary.
#![allow(clippy::unwrap_used)]

#[path = "dossier/build_verify.rs"]
mod build_verify;
