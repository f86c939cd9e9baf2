//! Pure building blocks of a transparency log: RFC 6962 / RFC 9162 Merkle
//! trees, proofs and their verification, C2SP signed notes, checkpoints and
//! `tlog-proof` files.
//!
//! The crate is deliberately free of I/O, async, randomness and `unsafe`, so
//! an auditor can vendor it and check proofs without trusting anything else
//! from Trailmark. Every parser returns a typed [`Error`] instead of
//! panicking, whatever the input.

#![forbid(unsafe_code)]

pub mod checkpoint;
pub mod dsse;
pub mod error;
pub mod hash;
pub mod note;
pub mod proof_file;
pub mod tree;
pub mod verify;

pub use checkpoint::{Checkpoint, verify_checkpoint};
pub use error::{
    CheckpointError, Error, HashError, KeyError, NoteError, ProofError, ProofFileError, TreeError,
    VerifyError,
};
pub use hash::{Hash, empty_root, leaf_hash, node_hash};
pub use note::{
    MAX_SIGNATURES, Note, NoteSignature, SignerKey, VerifiedNote, VerifierKey, ed25519_key_id, open,
};
pub use proof_file::{TLOG_PROOF_HEADER, TlogProof, verify_tlog_proof};
pub use tree::{
    Frontier, NodeId, NodeSource, consistency_proof, inclusion_proof, inclusion_proofs, root,
};
pub use verify::{NodeCache, root_from_inclusion_proof, verify_consistency, verify_inclusion};
