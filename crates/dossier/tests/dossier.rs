//! The dossier crate's integration tests, one binary with a module per area.

#[path = "dossier/render.rs"]
mod render;
