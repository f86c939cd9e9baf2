//! C2SP signed notes (<https://c2sp.org/signed-note>) with Ed25519 keys.
//!
//! Only Ed25519 (signature type 0x01) keys can sign or verify here. Notes
//! carrying other signatures (witness cosignatures, other algorithms) still
//! parse: such signatures simply belong to keys the caller did not list, and
//! the spec requires unknown signatures to be ignored.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::error::{Error, KeyError, NoteError};
use crate::hash::{hex, hex_value};

/// Signature type byte of Ed25519 in key ids and key texts.
const ED25519: u8 = 0x01;

/// Every signature line starts with an em dash (U+2014) and a space.
const SIG_PREFIX: &str = "\u{2014} ";

/// Most signatures [`Note::parse`] accepts. The spec asks verifiers to cap
/// the work an attacker can cause, but to accept at least 16.
pub const MAX_SIGNATURES: usize = 100;

/// Key id of an Ed25519 key: the first 4 bytes of
/// `SHA-256(name || 0x0A || 0x01 || public key)`.
pub fn ed25519_key_id(name: &str, public_key: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', ED25519]);
    h.update(public_key);
    let digest = h.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// Key names must be non-empty and contain no Unicode space or '+' (the
/// separator of key texts).
fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        Err("it is empty")
    } else if name.chars().any(char::is_whitespace) {
        Err("it contains white space")
    } else if name.contains('+') {
        Err("it contains '+'")
    } else if name.chars().any(char::is_control) {
        Err("it contains a control character")
    } else {
        Ok(())
    }
}

fn valid_name(name: &str) -> Result<(), KeyError> {
    check_name(name).map_err(|reason| KeyError::InvalidName {
        name: name.to_owned(),
        reason,
    })
}

fn parse_key_id(text: &str) -> Result<[u8; 4], KeyError> {
    let bad = || KeyError::KeyIdFormat {
        text: text.to_owned(),
    };
    let bytes = text.as_bytes();
    if bytes.len() != 8 {
        return Err(bad());
    }
    let mut id = [0u8; 4];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let (Some(hi), Some(lo)) = (hex_value(pair[0]), hex_value(pair[1])) else {
            return Err(bad());
        };
        id[i] = (hi << 4) | lo;
    }
    Ok(id)
}

/// Split `name+keyid+base64` and decode the Ed25519 key material.
fn parse_key_fields(text: &str, kind: &'static str) -> Result<(String, [u8; 4], [u8; 32]), Error> {
    // The base64 part may itself contain '+', so split at most twice.
    let fields: Vec<&str> = text.splitn(3, '+').collect();
    let [name, id, material] = fields[..] else {
        return Err(KeyError::FieldCount {
            kind,
            expected: if kind == "signer" { 5 } else { 3 },
            got: fields.len() + if kind == "signer" { 2 } else { 0 },
        }
        .into());
    };
    valid_name(name)?;
    let stated = parse_key_id(id)?;
    let bytes = STANDARD.decode(material).map_err(|_| KeyError::KeyBase64 {
        name: name.to_owned(),
    })?;
    let Some((&alg, key)) = bytes.split_first() else {
        return Err(KeyError::KeyLength {
            name: name.to_owned(),
            expected: 33,
            got: 0,
        }
        .into());
    };
    if alg != ED25519 {
        return Err(KeyError::UnsupportedAlgorithm {
            name: name.to_owned(),
            alg,
        }
        .into());
    }
    let key: [u8; 32] = key.try_into().map_err(|_| KeyError::KeyLength {
        name: name.to_owned(),
        expected: 33,
        got: bytes.len(),
    })?;
    Ok((name.to_owned(), stated, key))
}

/// Render `name+keyid+base64(0x01 || key)`.
fn key_text(name: &str, key_id: &[u8; 4], key: &[u8; 32]) -> String {
    let mut material = Vec::with_capacity(33);
    material.push(ED25519);
    material.extend_from_slice(key);
    format!("{name}+{}+{}", hex(key_id), STANDARD.encode(material))
}

/// An Ed25519 signing key with its name (the seed is never printed by `Debug`).
#[derive(Clone)]
pub struct SignerKey {
    name: String,
    key_id: [u8; 4],
    key: SigningKey,
    verifier: VerifierKey,
}

impl SignerKey {
    /// Build a key from a 32-byte Ed25519 seed. The caller supplies the
    /// seed (this crate has no randomness of its own).
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<SignerKey, Error> {
        valid_name(name)?;
        let key = SigningKey::from_bytes(&seed);
        let verifying = key.verifying_key();
        let public = verifying.to_bytes();
        let key_id = ed25519_key_id(name, &public);
        Ok(SignerKey {
            name: name.to_owned(),
            key_id,
            key,
            verifier: VerifierKey {
                name: name.to_owned(),
                key_id,
                public,
                key: verifying,
            },
        })
    }

    /// Parse `PRIVATE+KEY+<name>+<hex8 key id>+<base64(0x01 || 32-byte seed)>`.
    /// Surrounding white space (a key file's final newline) is ignored. The
    /// key id must match the one derived from the key.
    pub fn parse(text: &str) -> Result<SignerKey, Error> {
        let rest = text
            .trim()
            .strip_prefix("PRIVATE+KEY+")
            .ok_or(KeyError::MissingPrivatePrefix)?;
        let (name, stated, seed) = parse_key_fields(rest, "signer")?;
        let signer = SignerKey::from_seed(&name, seed)?;
        if signer.key_id != stated {
            return Err(KeyError::KeyIdMismatch {
                name,
                stated,
                computed: signer.key_id,
            }
            .into());
        }
        Ok(signer)
    }

    /// Key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Key id (see [`ed25519_key_id`]).
    pub fn key_id(&self) -> [u8; 4] {
        self.key_id
    }

    /// The matching verifier key.
    pub fn verifier(&self) -> VerifierKey {
        self.verifier.clone()
    }

    /// One signature line, `— <name> <base64(key id || signature)>\n`, over
    /// `body`. Appending it to an already signed note adds a cosignature.
    pub fn signature_line(&self, body: &str) -> Result<String, Error> {
        check_body(body)?;
        let signature = self.key.sign(body.as_bytes());
        let mut raw = Vec::with_capacity(4 + 64);
        raw.extend_from_slice(&self.key_id);
        raw.extend_from_slice(&signature.to_bytes());
        Ok(format!(
            "{SIG_PREFIX}{} {}\n",
            self.name,
            STANDARD.encode(raw)
        ))
    }

    /// An Ed25519 signature over arbitrary bytes (a DSSE PAE, say). Notes are signed with
    /// [`SignerKey::sign`]; this is for envelopes that carry their own framing.
    pub fn sign_raw(&self, msg: &[u8]) -> [u8; 64] {
        self.key.sign(msg).to_bytes()
    }

    /// Sign `body` and return the complete note: the body, an empty line and
    /// the signature line. The body must be non-empty, end with a newline
    /// and contain no control characters other than newline.
    pub fn sign(&self, body: &str) -> Result<String, Error> {
        let line = self.signature_line(body)?;
        Ok(format!("{body}\n{line}"))
    }
}

/// Text to be signed must be something [`Note::parse`] gives back unchanged.
fn check_body(body: &str) -> Result<(), NoteError> {
    if body.is_empty() {
        return Err(NoteError::EmptyText);
    }
    if !body.ends_with('\n') {
        return Err(NoteError::TextMissingNewline);
    }
    check_controls(body, 1)
}

/// Signed notes may contain no ASCII control character other than newline.
fn check_controls(text: &str, first_line: usize) -> Result<(), NoteError> {
    for (i, line) in text.split('\n').enumerate() {
        if let Some(c) = line.chars().find(|&c| c < ' ') {
            return Err(NoteError::ControlCharacter {
                line: first_line + i,
                code: u32::from(c),
            });
        }
    }
    Ok(())
}

impl fmt::Display for SignerKey {
    /// The `PRIVATE+KEY+...` text form, which contains the secret seed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PRIVATE+KEY+{}",
            key_text(&self.name, &self.key_id, &self.key.to_bytes())
        )
    }
}

impl fmt::Debug for SignerKey {
    // Debug output ends up in logs and panic messages: never the seed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignerKey")
            .field("name", &self.name)
            .field("key_id", &hex(&self.key_id))
            .field("seed", &"<redacted>")
            .finish()
    }
}

impl FromStr for SignerKey {
    type Err = Error;
    fn from_str(s: &str) -> Result<SignerKey, Error> {
        SignerKey::parse(s)
    }
}

/// An Ed25519 verifier key with its name.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    key_id: [u8; 4],
    public: [u8; 32],
    /// Decompressed once here rather than on every verification.
    key: VerifyingKey,
}

impl VerifierKey {
    /// Parse `<name>+<hex8 key id>+<base64(0x01 || 32-byte public key)>`.
    /// Surrounding white space is ignored. The key id must match the one
    /// derived from the key.
    pub fn parse(text: &str) -> Result<VerifierKey, Error> {
        let (name, stated, public) = parse_key_fields(text.trim(), "verifier")?;
        let key = VerifyingKey::from_bytes(&public)
            .map_err(|_| KeyError::InvalidPublicKey { name: name.clone() })?;
        let computed = ed25519_key_id(&name, &public);
        if computed != stated {
            return Err(KeyError::KeyIdMismatch {
                name,
                stated,
                computed,
            }
            .into());
        }
        Ok(VerifierKey {
            name,
            key_id: computed,
            public,
            key,
        })
    }

    /// Key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Key id (see [`ed25519_key_id`]).
    pub fn key_id(&self) -> [u8; 4] {
        self.key_id
    }

    /// The raw 32-byte Ed25519 public key.
    pub fn public_key(&self) -> &[u8; 32] {
        &self.public
    }

    /// Strict verification of a raw Ed25519 signature over `msg` (see [`SignerKey::sign_raw`]).
    pub fn verify_raw(&self, msg: &[u8], signature: &[u8]) -> bool {
        self.verifies(msg, signature)
    }

    /// Whether this key is the one a signature line names.
    fn matches(&self, sig: &NoteSignature) -> bool {
        self.name == sig.name && self.key_id == sig.key_id
    }

    /// Strict verification: rejects non-canonical and small-order values, so
    /// a signature cannot be malleated into a second valid one.
    fn verifies(&self, msg: &[u8], signature: &[u8]) -> bool {
        let Ok(bytes) = <[u8; 64]>::try_from(signature) else {
            return false;
        };
        self.key
            .verify_strict(msg, &Signature::from_bytes(&bytes))
            .is_ok()
    }
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&key_text(&self.name, &self.key_id, &self.public))
    }
}

impl fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifierKey({self})")
    }
}

impl FromStr for VerifierKey {
    type Err = Error;
    fn from_str(s: &str) -> Result<VerifierKey, Error> {
        VerifierKey::parse(s)
    }
}

/// One signature line of a note, decoded but not verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    /// Key name.
    pub name: String,
    /// Key id (first 4 decoded bytes).
    pub key_id: [u8; 4],
    /// The signature proper (the remaining bytes).
    pub signature: Vec<u8>,
}

impl NoteSignature {
    /// `name+keyid`, how keys are named in messages.
    pub fn key_ref(&self) -> String {
        format!("{}+{}", self.name, hex(&self.key_id))
    }
}

/// A signed note split into its text and its (unverified) signatures.
///
/// The body must not be trusted before [`open`] has verified it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// The signed text, including its final newline.
    pub body: String,
    /// The signatures, in note order.
    pub signatures: Vec<NoteSignature>,
}

impl Note {
    /// Parse the structure of a signed note without verifying anything.
    pub fn parse(text: &str) -> Result<Note, Error> {
        check_controls(text, 1)?;
        // The text may itself contain empty lines: the *last* one separates
        // it from the signatures.
        let split = text.rfind("\n\n").ok_or(NoteError::MissingSignatureBlock)?;
        let body = &text[..split + 1];
        let sigs = &text[split + 2..];
        if sigs.is_empty() {
            return Err(NoteError::NoSignatures.into());
        }
        if !sigs.ends_with('\n') {
            return Err(NoteError::MissingTrailingNewline.into());
        }
        // 1-based number of the first signature line, for messages.
        let first_line = body.matches('\n').count() + 2;
        let mut signatures = Vec::new();
        for (i, line) in sigs.split_terminator('\n').enumerate() {
            let line_no = first_line + i;
            if i >= MAX_SIGNATURES {
                return Err(NoteError::TooManySignatures {
                    max: MAX_SIGNATURES,
                }
                .into());
            }
            let rest = line
                .strip_prefix(SIG_PREFIX)
                .ok_or(NoteError::SignatureLinePrefix { line: line_no })?;
            let (name, b64) = rest.split_once(' ').unwrap_or((rest, ""));
            if let Err(reason) = check_name(name) {
                return Err(NoteError::InvalidKeyName {
                    line: line_no,
                    name: name.to_owned(),
                    reason,
                }
                .into());
            }
            let raw = match STANDARD.decode(b64) {
                Ok(raw) if !b64.is_empty() => raw,
                _ => {
                    return Err(NoteError::SignatureBase64 {
                        line: line_no,
                        name: name.to_owned(),
                    }
                    .into());
                }
            };
            let Some((id, signature)) = raw.split_first_chunk::<4>().filter(|(_, s)| !s.is_empty())
            else {
                return Err(NoteError::SignatureTooShort {
                    line: line_no,
                    name: name.to_owned(),
                    len: raw.len(),
                }
                .into());
            };
            signatures.push(NoteSignature {
                name: name.to_owned(),
                key_id: *id,
                signature: signature.to_vec(),
            });
        }
        Ok(Note {
            body: body.to_owned(),
            signatures,
        })
    }

    /// The note as text: body, empty line, signature lines. This parses back
    /// to an equal `Note` when the body ends with a newline and the
    /// signature names are valid.
    pub fn to_text(&self) -> String {
        let mut text = format!("{}\n", self.body);
        for sig in &self.signatures {
            let mut raw = sig.key_id.to_vec();
            raw.extend_from_slice(&sig.signature);
            text.push_str(&format!(
                "{SIG_PREFIX}{} {}\n",
                sig.name,
                STANDARD.encode(raw)
            ));
        }
        text
    }
}

/// A note whose signatures have been checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedNote {
    /// The signed text, including its final newline.
    pub body: String,
    /// Names of the verifiers whose signatures verified, each once, in note order.
    pub verified_by: Vec<String>,
}

/// Open a signed note: at least one signature by a known verifier must
/// verify (Ed25519 `verify_strict`); signatures by unknown keys (name and key
/// id not among `verifiers`) are ignored; a signature by a known key that
/// fails verification is an error, since it means tampering or a
/// misconfigured key.
pub fn open(text: &str, verifiers: &[VerifierKey]) -> Result<VerifiedNote, Error> {
    let note = Note::parse(text)?;
    let mut verified_by = Vec::new();
    let mut seen = BTreeSet::new();
    for sig in &note.signatures {
        let mut known = verifiers.iter().filter(|v| v.matches(sig)).peekable();
        if known.peek().is_none() {
            continue;
        }
        // Every signature by a known key is checked, repeats included: the
        // spec says such signatures MUST be verified.
        if !known.any(|v| v.verifies(note.body.as_bytes(), &sig.signature)) {
            return Err(NoteError::BadSignature {
                name: sig.name.clone(),
                key_id: sig.key_id,
            }
            .into());
        }
        if seen.insert(sig.name.as_str()) {
            verified_by.push(sig.name.clone());
        }
    }
    if verified_by.is_empty() {
        return Err(NoteError::NoKnownSignature {
            signers: note.signatures.iter().map(NoteSignature::key_ref).collect(),
        }
        .into());
    }
    Ok(VerifiedNote {
        body: note.body,
        verified_by,
    })
}
