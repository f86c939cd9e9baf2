//! Domain types. Nothing here knows how a record is serialized for signing (see `wire`).

use std::fmt;
use std::str::FromStr;

use crate::ids::{Digest, Kind, LogIndex, Rel, SubjectType, Timestamp};
use crate::json::canonical_bytes;

/// Payloads whose canonical JSON exceeds this many bytes are stored content-addressed beside the
/// log; the record (and so the signed leaf) carries only their digest and size. Keeps leaves
/// small, so proofs, scans and verification stay fast, while the blob remains provable.
pub const LARGE_PAYLOAD_BYTES: usize = 16 * 1024;

/// A typed identifier of the thing evidence is about: a commit, a ticket, an artifact, ...
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subject {
    pub ty: SubjectType,
    pub id: String,
}

impl Subject {
    /// Parses and normalizes a subject. Commit SHAs are lower-cased so the same commit reported
    /// by two tools is one subject.
    pub fn parse(ty: &str, id: &str) -> Result<Subject, SubjectError> {
        let ty = SubjectType::parse(ty).map_err(SubjectError::Type)?;
        if id.is_empty() {
            return Err(SubjectError::Id("must not be empty"));
        }
        if id.len() > 1024 {
            return Err(SubjectError::Id("is longer than 1024 bytes"));
        }
        if id.chars().any(char::is_control) {
            return Err(SubjectError::Id("must not contain control characters"));
        }
        if id.trim() != id {
            return Err(SubjectError::Id("must not start or end with whitespace"));
        }
        let id = match ty.as_str() {
            "commit" => {
                let ok =
                    (id.len() == 40 || id.len() == 64) && id.bytes().all(|b| b.is_ascii_hexdigit());
                if !ok {
                    return Err(SubjectError::Id(
                        "a commit id must be a full 40- or 64-digit hex SHA",
                    ));
                }
                id.to_ascii_lowercase()
            }
            _ => id.to_owned(),
        };
        Ok(Subject { ty, id })
    }
}

/// Why a subject was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubjectError {
    Type(&'static str),
    Id(&'static str),
}

impl fmt::Display for SubjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubjectError::Type(r) => write!(f, "subject type {r}"),
            SubjectError::Id(r) => write!(f, "subject id {r}"),
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.ty, self.id)
    }
}

/// `type:id`, as typed on a command line (`ticket:PROJ-1`).
impl FromStr for Subject {
    type Err = String;
    fn from_str(s: &str) -> Result<Subject, String> {
        let (ty, id) = s
            .split_once(':')
            .ok_or_else(|| format!("subject {s:?} must be written TYPE:ID, e.g. ticket:PROJ-1"))?;
        Subject::parse(ty, id).map_err(|e| format!("subject {s:?}: {e}"))
    }
}

/// A stated relation from the record's subjects to another subject.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Link {
    pub rel: Rel,
    pub to: Subject,
}

/// A record's payload: inline, or content-addressed beside the log when large.
#[derive(Clone, Debug, PartialEq)]
pub enum Payload {
    Inline(serde_json::Value),
    Blob { digest: Digest, size: u64 },
}

/// A parsed, valid record not yet in the log.
#[derive(Clone, Debug, PartialEq)]
pub struct NewRecord {
    pub kind: Kind,
    pub subjects: Vec<Subject>,
    /// Always a JSON value free of floats and of integers beyond ±(2^53-1).
    pub payload: serde_json::Value,
    pub occurred_at: Option<Timestamp>,
    pub actor: Option<String>,
    pub source: Option<String>,
    pub links: Vec<Link>,
    pub idempotency_key: Option<String>,
}

/// Bytes stored content-addressed (a payload moved out of its leaf, a raw input). The digest is
/// computed by [`Blob::new`] and the fields are private, so a `Blob`'s digest is always its
/// bytes' SHA-256: stores need not hash it again to trust the address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    digest: Digest,
    bytes: Vec<u8>,
}

impl Blob {
    pub fn new(bytes: Vec<u8>) -> Blob {
        Blob {
            digest: Digest::of(&bytes),
            bytes,
        }
    }

    /// The SHA-256 of [`Blob::bytes`]: the blob's address.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// A record with its place in the log fixed, and its exact leaf bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct Sealed {
    pub record: Record,
    /// RFC 8785 bytes of the v1 wire form: what is hashed into the log.
    pub leaf: Vec<u8>,
    /// The payload moved out of the leaf, when large.
    pub blob: Option<Blob>,
}

impl NewRecord {
    /// Fixes the record's place and encodes its leaf, canonicalizing the payload once (for the
    /// size decision and the leaf alike).
    pub fn seal(self, index: LogIndex, recorded_at: Timestamp) -> Sealed {
        let bytes = canonical_bytes(&self.payload);
        let inline = bytes.len() <= LARGE_PAYLOAD_BYTES;
        let (record, blob) =
            self.sequence_with(index, recorded_at, if inline { None } else { Some(&bytes) });
        let leaf = crate::wire::encode_leaf_with(&record, inline.then_some(bytes.as_slice()));
        Sealed { record, leaf, blob }
    }

    /// Fixes the record's place in the log. Returns the record and, when the payload is large,
    /// the blob to store beside it (its canonical JSON bytes, addressed by their SHA-256).
    pub fn sequence(self, index: LogIndex, recorded_at: Timestamp) -> (Record, Option<Blob>) {
        let bytes = canonical_bytes(&self.payload);
        let large = bytes.len() > LARGE_PAYLOAD_BYTES;
        self.sequence_with(index, recorded_at, if large { Some(&bytes) } else { None })
    }

    /// `large_bytes`: the payload's canonical bytes when it goes to a blob.
    fn sequence_with(
        self,
        index: LogIndex,
        recorded_at: Timestamp,
        large_bytes: Option<&Vec<u8>>,
    ) -> (Record, Option<Blob>) {
        let (payload, blob) = match large_bytes {
            Some(bytes) => {
                let blob = Blob::new(bytes.clone());
                let size = bytes.len() as u64;
                (
                    Payload::Blob {
                        digest: blob.digest(),
                        size,
                    },
                    Some(blob),
                )
            }
            None => (Payload::Inline(self.payload), None),
        };
        let record = Record {
            index,
            recorded_at,
            kind: self.kind,
            subjects: self.subjects,
            payload,
            occurred_at: self.occurred_at,
            actor: self.actor,
            source: self.source,
            links: self.links,
            idempotency_key: self.idempotency_key,
        };
        (record, blob)
    }
}

/// A record as it stands in the log.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub index: LogIndex,
    pub recorded_at: Timestamp,
    pub kind: Kind,
    pub subjects: Vec<Subject>,
    pub payload: Payload,
    pub occurred_at: Option<Timestamp>,
    pub actor: Option<String>,
    pub source: Option<String>,
    pub links: Vec<Link>,
    pub idempotency_key: Option<String>,
}
