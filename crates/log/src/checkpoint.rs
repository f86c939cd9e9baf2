//! C2SP checkpoints (<https://c2sp.org/tlog-checkpoint>): the signed tree
//! head of a log, as the body of a signed note.

use crate::error::{CheckpointError, Error};
use crate::hash::Hash;
use crate::note::{SignerKey, VerifierKey, open};

/// A checkpoint body: `origin\nsize\nbase64(root)\n` plus optional extension lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Identity of the log (for example `example.com/log42`).
    pub origin: String,
    /// Number of leaves in the tree.
    pub size: u64,
    /// Merkle root of the tree at `size`.
    pub root: Hash,
    /// Opaque extension lines, without their newlines; each must be non-empty.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// A checkpoint without extension lines.
    pub fn new(origin: &str, size: u64, root: Hash) -> Checkpoint {
        Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            extensions: Vec::new(),
        }
    }

    /// The note body. It parses back with [`Checkpoint::parse_body`] as long
    /// as the origin and extensions are non-empty single lines.
    pub fn body(&self) -> String {
        let mut body = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            self.root.to_base64()
        );
        for ext in &self.extensions {
            body.push_str(ext);
            body.push('\n');
        }
        body
    }

    /// Sign the body with `key`, giving the checkpoint note text.
    pub fn sign(&self, key: &SignerKey) -> Result<String, Error> {
        // Refuse to sign what nobody could parse back: a newline inside a
        // field would shift every following line.
        if self.origin.contains('\n') {
            return Err(CheckpointError::MultiLineField { field: "origin" }.into());
        }
        if self.extensions.iter().any(|e| e.contains('\n')) {
            return Err(CheckpointError::MultiLineField { field: "extension" }.into());
        }
        let body = self.body();
        Checkpoint::parse_body(&body)?;
        key.sign(&body)
    }

    /// Parse a checkpoint body strictly: at least three lines, each ending in
    /// a newline; a non-empty origin; a decimal size without leading zeros
    /// (except `0`); a root that decodes to exactly 32 bytes; non-empty
    /// extension lines.
    pub fn parse_body(body: &str) -> Result<Checkpoint, Error> {
        for (i, line) in body.split('\n').enumerate() {
            // Same rule as signed notes: no control character below U+0020.
            if let Some(c) = line.chars().find(|&c| c < ' ') {
                return Err(CheckpointError::ControlCharacter {
                    line: i + 1,
                    code: u32::from(c),
                }
                .into());
            }
        }
        let Some(content) = body.strip_suffix('\n') else {
            return Err(CheckpointError::MissingTrailingNewline.into());
        };
        let lines: Vec<&str> = content.split('\n').collect();
        let [origin, size, root, ref extensions @ ..] = lines[..] else {
            return Err(CheckpointError::TooFewLines { got: lines.len() }.into());
        };
        if origin.is_empty() {
            return Err(CheckpointError::EmptyOrigin.into());
        }
        let size = parse_decimal(size).map_err(|e| {
            let value = size.to_owned();
            match e {
                DecimalError::LeadingZero => CheckpointError::SizeLeadingZero { value },
                DecimalError::NotDecimal => CheckpointError::SizeNotDecimal { value },
                DecimalError::Overflow => CheckpointError::SizeOverflow { value },
            }
        })?;
        let root = crate::hash::decode_base64(root).map_err(|source| CheckpointError::Root {
            value: root.to_owned(),
            source,
        })?;
        if let Some(i) = extensions.iter().position(|e| e.is_empty()) {
            return Err(CheckpointError::EmptyExtension { line: i + 4 }.into());
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            extensions: extensions.iter().map(|e| (*e).to_owned()).collect(),
        })
    }
}

/// Why a decimal field was rejected.
pub(crate) enum DecimalError {
    LeadingZero,
    NotDecimal,
    Overflow,
}

/// ASCII decimal, no sign, no leading zeros unless the value is `0`.
/// (`u64::from_str` alone would accept `+5` and `007`.)
pub(crate) fn parse_decimal(s: &str) -> Result<u64, DecimalError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DecimalError::NotDecimal);
    }
    if s.len() > 1 && s.starts_with('0') {
        return Err(DecimalError::LeadingZero);
    }
    s.parse().map_err(|_| DecimalError::Overflow)
}

/// Open a checkpoint note: [`open`] it with `verifiers`, parse the body and,
/// if `origin` is given, check that it is the checkpoint's origin.
pub fn verify_checkpoint(
    text: &str,
    verifiers: &[VerifierKey],
    origin: Option<&str>,
) -> Result<Checkpoint, Error> {
    let note = open(text, verifiers)?;
    let checkpoint = Checkpoint::parse_body(&note.body)?;
    if let Some(expected) = origin
        && checkpoint.origin != expected
    {
        return Err(CheckpointError::OriginMismatch {
            expected: expected.to_owned(),
            got: checkpoint.origin,
        }
        .into());
    }
    Ok(checkpoint)
}
