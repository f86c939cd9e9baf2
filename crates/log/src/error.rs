//! Error types.
//!
//! Each area of the crate has its own enum so callers can match on exactly
//! what went wrong; [`Error`] wraps them for functions that cross areas (for
//! example verifying a `tlog-proof`, which parses a note, a checkpoint and a
//! proof). Messages name the offending line, value or key so an operator can
//! act on them without a debugger.

use crate::hash::{Hash, hex};

/// Any error of this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A hash value could not be decoded.
    #[error(transparent)]
    Hash(#[from] HashError),
    /// A Merkle tree structure (frontier) is inconsistent.
    #[error(transparent)]
    Tree(#[from] TreeError),
    /// A Merkle proof did not verify.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// A signed note is malformed or its signatures do not verify.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// A signer or verifier key is malformed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A checkpoint body is malformed or has the wrong origin.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A `tlog-proof` file is malformed.
    #[error(transparent)]
    ProofFile(#[from] ProofFileError),
}

/// A hash value could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HashError {
    /// The decoded value is not exactly 32 bytes.
    #[error("hash must be 32 bytes, got {got}")]
    WrongLength {
        /// Number of bytes actually decoded.
        got: usize,
    },
    /// The text is not canonical standard base64.
    #[error("hash is not valid base64: {reason}")]
    Base64 {
        /// What the base64 decoder objected to.
        reason: String,
    },
    /// The text is not 64 hexadecimal digits.
    #[error("hash is not valid hex: {reason}")]
    Hex {
        /// What is wrong with the hex text.
        reason: String,
    },
}

/// A Merkle tree structure is inconsistent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TreeError {
    /// [`Frontier::from_parts`](crate::Frontier::from_parts) got the wrong number of hashes.
    #[error("the frontier of a tree of size {size} has {expected} hashes, got {got}")]
    FrontierLength {
        /// Tree size the frontier was restored for.
        size: u64,
        /// Number of perfect subtrees in a tree of that size.
        expected: usize,
        /// Number of hashes supplied.
        got: usize,
    },
    /// The tree already holds `u64::MAX` leaves and cannot count another.
    #[error("tree of size {size} is full: its size cannot grow past u64::MAX")]
    Full {
        /// Current size of the tree.
        size: u64,
    },
}

/// Why a proof could not be generated from a [`NodeSource`](crate::NodeSource).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError<E> {
    /// The leaf index is not inside the tree.
    #[error("leaf index {index} is out of range for a tree of size {size}")]
    IndexOutOfRange {
        /// Requested leaf index.
        index: u64,
        /// Tree size.
        size: u64,
    },
    /// A consistency proof from the empty tree was requested (RFC 9162 does not define one).
    #[error("a consistency proof from an empty tree (size 0) is not defined")]
    ConsistencyFromEmpty,
    /// A consistency proof towards a smaller tree was requested.
    #[error("cannot prove consistency from size {old} to the smaller size {new}")]
    SizeDecreased {
        /// Old (first) tree size.
        old: u64,
        /// New (second) tree size.
        new: u64,
    },
    /// The node source broke its contract and returned the wrong number of hashes.
    #[error("node source returned {got} hashes for {expected} requested nodes")]
    SourceCount {
        /// Number of nodes requested.
        expected: usize,
        /// Number of hashes returned.
        got: usize,
    },
    /// The node source itself failed (for example a database error).
    #[error(transparent)]
    Source(E),
}

/// A Merkle inclusion or consistency proof did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The leaf index is not inside the tree.
    #[error("leaf index {index} is out of range for a tree of size {size}")]
    IndexOutOfRange {
        /// Claimed leaf index.
        index: u64,
        /// Claimed tree size.
        size: u64,
    },
    /// The proof has the wrong number of hashes for the claimed sizes / index.
    #[error("proof has {got} hashes, expected {expected}")]
    WrongProofSize {
        /// Number of hashes the proof must have.
        expected: usize,
        /// Number of hashes it has.
        got: usize,
    },
    /// The root recomputed from the proof differs from the trusted root
    /// (for consistency proofs: the root of the second, larger tree).
    #[error("computed root {computed} does not match expected root {expected}")]
    RootMismatch {
        /// The trusted root.
        expected: Hash,
        /// The root the proof leads to.
        computed: Hash,
    },
    /// A consistency proof does not reproduce the root of the first (older) tree.
    #[error("consistency proof leads to old root {computed}, expected {expected}")]
    OldRootMismatch {
        /// The trusted old root.
        expected: Hash,
        /// The old root the proof leads to.
        computed: Hash,
    },
    /// A consistency proof from the empty tree was offered; RFC 9162 defines none.
    #[error("a consistency proof from an empty tree (size 0) is not defined")]
    ConsistencyFromEmpty,
    /// The second tree is smaller than the first.
    #[error("new tree size {new} is smaller than old tree size {old}")]
    SizeDecreased {
        /// First (old) tree size.
        old: u64,
        /// Second (new) tree size.
        new: u64,
    },
    /// Two trees of the same size have different roots: the log forked.
    #[error("trees of equal size {size} have different roots {root1} and {root2}")]
    EqualSizeRootsDiffer {
        /// The common size.
        size: u64,
        /// Root of the first tree.
        root1: Hash,
        /// Root of the second tree.
        root2: Hash,
    },
}

/// A signed note is malformed or its signatures do not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoteError {
    /// Signed notes may contain no ASCII control character except newline.
    #[error("note line {line} contains control character U+{code:04X}")]
    ControlCharacter {
        /// 1-based line number.
        line: usize,
        /// The offending code point.
        code: u32,
    },
    /// There is no empty line separating the text from the signatures.
    #[error("note has no empty line separating the text from the signatures")]
    MissingSignatureBlock,
    /// The last signature line is not terminated by a newline.
    #[error("note does not end with a newline")]
    MissingTrailingNewline,
    /// The note ends right after the separating empty line.
    #[error("note has no signature lines after the empty line")]
    NoSignatures,
    /// A signature line does not start with "— " (em dash, space).
    #[error(
        "note line {line} is not a signature line: it must start with an em dash (U+2014) and a space"
    )]
    SignatureLinePrefix {
        /// 1-based line number in the note.
        line: usize,
    },
    /// A signature line names an invalid key name.
    #[error("note line {line}: key name {name:?} is invalid: {reason}")]
    InvalidKeyName {
        /// 1-based line number in the note.
        line: usize,
        /// The name as written.
        name: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// A signature is not valid standard base64.
    #[error("note line {line}: signature by {name} is not valid base64")]
    SignatureBase64 {
        /// 1-based line number in the note.
        line: usize,
        /// The signer's key name.
        name: String,
    },
    /// A signature is too short to hold a key id and a signature.
    #[error(
        "note line {line}: signature by {name} is {len} bytes, shorter than a 4-byte key id plus a signature"
    )]
    SignatureTooShort {
        /// 1-based line number in the note.
        line: usize,
        /// The signer's key name.
        name: String,
        /// Decoded length.
        len: usize,
    },
    /// More signatures than this crate is willing to look at.
    #[error("note has more than {max} signatures")]
    TooManySignatures {
        /// The limit.
        max: usize,
    },
    /// A signature by a known key does not verify: the note was tampered with
    /// or signed by someone else using that key's name and id.
    #[error("signature by {name}+{} does not verify", hex(.key_id))]
    BadSignature {
        /// Key name.
        name: String,
        /// Key id.
        key_id: [u8; 4],
    },
    /// No signature is by a known key.
    #[error("note has no signature by a known key (signed by: {})", signer_list(.signers))]
    NoKnownSignature {
        /// `name+keyid` of every signature found.
        signers: Vec<String>,
    },
    /// The text to be signed is empty.
    #[error("note text to sign is empty")]
    EmptyText,
    /// The text to be signed does not end with a newline.
    #[error("note text to sign does not end with a newline")]
    TextMissingNewline,
}

fn signer_list(signers: &[String]) -> String {
    if signers.is_empty() {
        "nobody".to_owned()
    } else {
        signers.join(", ")
    }
}

/// A signer or verifier key text is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Key names must be non-empty and contain no Unicode space or '+'.
    #[error("key name {name:?} is invalid: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// The key text does not have the right number of '+'-separated fields.
    #[error("{kind} key must have {expected} '+'-separated fields, found {got}")]
    FieldCount {
        /// "verifier" or "signer".
        kind: &'static str,
        /// Fields required.
        expected: usize,
        /// Fields found.
        got: usize,
    },
    /// A signer key text does not start with `PRIVATE+KEY+`.
    #[error("signer key must start with \"PRIVATE+KEY+\"")]
    MissingPrivatePrefix,
    /// The key id field is not 8 hexadecimal digits.
    #[error("key id {text:?} is not 8 hexadecimal digits")]
    KeyIdFormat {
        /// The field as written.
        text: String,
    },
    /// The key material is not valid standard base64.
    #[error("key material of {name} is not valid base64")]
    KeyBase64 {
        /// Key name.
        name: String,
    },
    /// The key is not an Ed25519 key.
    #[error("key {name} has algorithm byte 0x{alg:02x}; only Ed25519 (0x01) is supported")]
    UnsupportedAlgorithm {
        /// Key name.
        name: String,
        /// The algorithm identifier byte.
        alg: u8,
    },
    /// The key material has the wrong length.
    #[error(
        "key {name}: expected {expected} bytes of key material (algorithm byte and key), got {got}"
    )]
    KeyLength {
        /// Key name.
        name: String,
        /// Required length.
        expected: usize,
        /// Actual length.
        got: usize,
    },
    /// The key id written in the text is not the one derived from the key.
    #[error("key {name}: key id {} does not match the id {} computed from the key", hex(.stated), hex(.computed))]
    KeyIdMismatch {
        /// Key name.
        name: String,
        /// Key id as written.
        stated: [u8; 4],
        /// Key id derived from name and public key.
        computed: [u8; 4],
    },
    /// The public key bytes are not a valid Ed25519 point.
    #[error("key {name}: public key is not a valid Ed25519 point")]
    InvalidPublicKey {
        /// Key name.
        name: String,
    },
}

/// A checkpoint body is malformed or is not from the expected log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The body does not end with a newline.
    #[error("checkpoint does not end with a newline")]
    MissingTrailingNewline,
    /// Fewer than the three mandatory lines.
    #[error("checkpoint has {got} lines, needs at least 3 (origin, size, root hash)")]
    TooFewLines {
        /// Number of lines found.
        got: usize,
    },
    /// A control character (other than the line separators) is present.
    #[error("checkpoint line {line} contains control character U+{code:04X}")]
    ControlCharacter {
        /// 1-based line number.
        line: usize,
        /// The offending code point.
        code: u32,
    },
    /// The origin line is empty.
    #[error("checkpoint line 1: origin is empty")]
    EmptyOrigin,
    /// The size has a leading zero.
    #[error("checkpoint line 2: size '{value}' has a leading zero")]
    SizeLeadingZero {
        /// The line as written.
        value: String,
    },
    /// The size is not an ASCII decimal number.
    #[error("checkpoint line 2: size '{value}' is not a decimal number")]
    SizeNotDecimal {
        /// The line as written.
        value: String,
    },
    /// The size does not fit in 64 bits.
    #[error("checkpoint line 2: size '{value}' does not fit in 64 bits")]
    SizeOverflow {
        /// The line as written.
        value: String,
    },
    /// The root hash line is not a base64 SHA-256 value.
    #[error("checkpoint line 3: root hash '{value}' is invalid: {source}")]
    Root {
        /// The line as written.
        value: String,
        /// Why it is invalid.
        source: HashError,
    },
    /// An extension line is empty.
    #[error("checkpoint line {line}: extension lines must not be empty")]
    EmptyExtension {
        /// 1-based line number.
        line: usize,
    },
    /// A field to be signed contains a newline.
    #[error("checkpoint {field} must be a single line")]
    MultiLineField {
        /// "origin" or "extension".
        field: &'static str,
    },
    /// The checkpoint is for another log.
    #[error("checkpoint origin {got:?} is not the expected origin {expected:?}")]
    OriginMismatch {
        /// The origin the caller expects.
        expected: String,
        /// The origin in the checkpoint.
        got: String,
    },
}

/// A `c2sp.org/tlog-proof@v1` file is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofFileError {
    /// The first line is not the format header.
    #[error("tlog-proof line 1: expected \"c2sp.org/tlog-proof@v1\", got {got:?}")]
    Header {
        /// The first line as written (truncated).
        got: String,
    },
    /// A control character (other than newline) is present.
    #[error("tlog-proof line {line} contains control character U+{code:04X}")]
    ControlCharacter {
        /// 1-based line number.
        line: usize,
        /// The offending code point.
        code: u32,
    },
    /// The `extra` data is not valid standard base64.
    #[error("tlog-proof line {line}: extra data is not valid base64")]
    ExtraBase64 {
        /// 1-based line number.
        line: usize,
    },
    /// The `index N` line is missing.
    #[error("tlog-proof line {line}: expected \"index <N>\"")]
    MissingIndex {
        /// 1-based line number.
        line: usize,
    },
    /// The index has a leading zero.
    #[error("tlog-proof line {line}: index '{value}' has a leading zero")]
    IndexLeadingZero {
        /// 1-based line number.
        line: usize,
        /// The index as written.
        value: String,
    },
    /// The index is not a decimal number that fits in 64 bits.
    #[error("tlog-proof line {line}: index '{value}' is not a decimal number that fits in 64 bits")]
    IndexInvalid {
        /// 1-based line number.
        line: usize,
        /// The index as written.
        value: String,
    },
    /// A proof line is not a base64 SHA-256 hash.
    #[error("tlog-proof line {line}: proof hash is invalid: {source}")]
    Hash {
        /// 1-based line number.
        line: usize,
        /// Why it is invalid.
        source: HashError,
    },
    /// More proof hashes than any tree with a 64-bit size can need.
    #[error("tlog-proof has more than {max} proof hashes")]
    TooManyHashes {
        /// The limit.
        max: usize,
    },
    /// The text ends before the empty line that precedes the checkpoint.
    #[error("tlog-proof ends before the empty line that precedes the checkpoint")]
    MissingBlankLine,
    /// The embedded checkpoint is not a structurally valid signed note.
    #[error("tlog-proof checkpoint is not a signed note: {source}")]
    CheckpointNote {
        /// Why the note does not parse.
        source: NoteError,
    },
}
