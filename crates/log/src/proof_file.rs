//! C2SP transparency log proofs (<https://c2sp.org/tlog-proof>), format
//! `c2sp.org/tlog-proof@v1`:
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! extra <base64>            (optional, unauthenticated)
//! index <N>
//! <base64 hash>             (zero or more, leaf's sibling first)
//!
//! <checkpoint note, verbatim>
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::checkpoint::{Checkpoint, DecimalError, parse_decimal, verify_checkpoint};
use crate::error::{Error, ProofFileError};
use crate::hash::{Hash, decode_base64};
use crate::note::{Note, VerifierKey};
use crate::verify::verify_inclusion;

/// First line of every proof file.
pub const TLOG_PROOF_HEADER: &str = "c2sp.org/tlog-proof@v1";

/// An inclusion proof of one entry in a checkpointed tree can have at most
/// 64 hashes (one per level of a tree with a 64-bit size).
const MAX_PROOF_HASHES: usize = 64;

/// An offline-verifiable proof that an entry is in a log: a signed
/// checkpoint, the entry's index and its inclusion proof.
///
/// The optional `extra` line of the format is not part of this struct
/// because it is unauthenticated; [`TlogProof::parse`] accepts and drops it,
/// [`TlogProof::parse_with_extra`] / [`TlogProof::to_text_with_extra`]
/// expose it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlogProof {
    /// Zero-based index of the entry in the log.
    pub index: u64,
    /// Inclusion proof, from the leaf's sibling up to the root's child.
    pub proof: Vec<Hash>,
    /// The signed checkpoint note, verbatim.
    pub checkpoint: String,
}

impl TlogProof {
    /// The proof file text, without extra data.
    pub fn to_text(&self) -> String {
        self.to_text_with_extra(None)
    }

    /// The proof file text, with an `extra` line if `extra` is given.
    pub fn to_text_with_extra(&self, extra: Option<&[u8]>) -> String {
        let mut text = format!("{TLOG_PROOF_HEADER}\n");
        if let Some(extra) = extra {
            text.push_str(&format!("extra {}\n", STANDARD.encode(extra)));
        }
        text.push_str(&format!("index {}\n", self.index));
        for hash in &self.proof {
            text.push_str(&hash.to_base64());
            text.push('\n');
        }
        text.push('\n');
        text.push_str(&self.checkpoint);
        text
    }

    /// Parse a proof file. Extra data, if present, is checked to be base64
    /// and dropped. The checkpoint is checked to be a well-formed signed note
    /// but not verified: see [`verify_tlog_proof`].
    pub fn parse(text: &str) -> Result<TlogProof, Error> {
        Ok(TlogProof::parse_with_extra(text)?.0)
    }

    /// Parse a proof file and return its extra data too. The extra data is
    /// not covered by any signature: applications must not trust it.
    pub fn parse_with_extra(text: &str) -> Result<(TlogProof, Option<Vec<u8>>), Error> {
        let mut lines = Lines {
            rest: text,
            number: 0,
        };

        let header = lines.next().ok_or_else(|| ProofFileError::Header {
            got: truncate(text.lines().next().unwrap_or("")),
        })?;
        lines.check_controls(header)?;
        if header != TLOG_PROOF_HEADER {
            return Err(ProofFileError::Header {
                got: truncate(header),
            }
            .into());
        }

        let mut line = lines.next().ok_or(ProofFileError::MissingIndex {
            line: lines.number + 1,
        })?;
        lines.check_controls(line)?;
        let mut extra = None;
        if let Some(b64) = line.strip_prefix("extra ") {
            let data = STANDARD
                .decode(b64)
                .map_err(|_| ProofFileError::ExtraBase64 { line: lines.number })?;
            extra = Some(data);
            line = lines.next().ok_or(ProofFileError::MissingIndex {
                line: lines.number + 1,
            })?;
            lines.check_controls(line)?;
        }

        let value = line
            .strip_prefix("index ")
            .ok_or(ProofFileError::MissingIndex { line: lines.number })?;
        let index = parse_decimal(value).map_err(|e| {
            let (line, value) = (lines.number, value.to_owned());
            match e {
                DecimalError::LeadingZero => ProofFileError::IndexLeadingZero { line, value },
                DecimalError::NotDecimal | DecimalError::Overflow => {
                    ProofFileError::IndexInvalid { line, value }
                }
            }
        })?;

        let mut proof = Vec::new();
        loop {
            let line = lines.next().ok_or(ProofFileError::MissingBlankLine)?;
            if line.is_empty() {
                break;
            }
            lines.check_controls(line)?;
            if proof.len() == MAX_PROOF_HASHES {
                return Err(ProofFileError::TooManyHashes {
                    max: MAX_PROOF_HASHES,
                }
                .into());
            }
            let hash = decode_base64(line).map_err(|source| ProofFileError::Hash {
                line: lines.number,
                source,
            })?;
            proof.push(hash);
        }

        let checkpoint = lines.rest;
        // Catch a truncated or garbled checkpoint now, with a precise message,
        // rather than as a failed verification later.
        match Note::parse(checkpoint) {
            Ok(_) => {}
            Err(Error::Note(source)) => {
                return Err(ProofFileError::CheckpointNote { source }.into());
            }
            Err(other) => return Err(other),
        }
        Ok((
            TlogProof {
                index,
                proof,
                checkpoint: checkpoint.to_owned(),
            },
            extra,
        ))
    }
}

/// Newline-terminated lines, counting line numbers for messages.
struct Lines<'a> {
    rest: &'a str,
    /// Number of the line last returned (1-based).
    number: usize,
}

impl<'a> Lines<'a> {
    /// The next complete line, without its newline; `None` at the end or
    /// for a final line lacking its newline.
    fn next(&mut self) -> Option<&'a str> {
        let (line, rest) = self.rest.split_once('\n')?;
        self.rest = rest;
        self.number += 1;
        Some(line)
    }

    fn check_controls(&self, line: &str) -> Result<(), ProofFileError> {
        match line.chars().find(|&c| c < ' ') {
            Some(c) => Err(ProofFileError::ControlCharacter {
                line: self.number,
                code: u32::from(c),
            }),
            None => Ok(()),
        }
    }
}

/// At most 64 characters of untrusted input in an error message.
fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Verify a proof: the checkpoint note verifies with one of `verifiers` (and
/// has origin `origin`, if given), then the inclusion proof of `leaf` at
/// `proof.index` against the checkpoint's size and root. Returns the
/// verified checkpoint.
pub fn verify_tlog_proof(
    proof: &TlogProof,
    leaf: &Hash,
    verifiers: &[VerifierKey],
    origin: Option<&str>,
) -> Result<Checkpoint, Error> {
    let checkpoint = verify_checkpoint(&proof.checkpoint, verifiers, origin)?;
    verify_inclusion(
        proof.index,
        checkpoint.size,
        leaf,
        &proof.proof,
        &checkpoint.root,
    )?;
    Ok(checkpoint)
}
