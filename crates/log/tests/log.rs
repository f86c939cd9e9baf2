//! Integration tests of `trailmark-log`: shared fixture vectors, the
//! serverless-log checkpoints, signed-note behaviour, exhaustive proof
//! properties, keys and `tlog-proof` files.

#![allow(clippy::unwrap_used)]

#[path = "log/common.rs"]
mod common;

#[path = "log/checkpoints.rs"]
mod checkpoints;
#[path = "log/keys.rs"]
mod keys;
#[path = "log/merkle_vectors.rs"]
mod merkle_vectors;
#[path = "log/notes.rs"]
mod notes;
#[path = "log/props.rs"]
mod props;
#[path = "log/tlog_proof.rs"]
mod tlog_proof;
