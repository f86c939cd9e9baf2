//! SHA-256 Merkle tree hashes with RFC 6962 domain separation.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use crate::error::{Error, HashError};

/// The SHA-256 value of a Merkle tree node (or leaf).
///
/// `Debug` and `Display` print lowercase hex, which is what operators compare
/// by eye; the wire formats (checkpoints, proofs) use base64.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// Length of a hash in bytes.
    pub const LEN: usize = 32;

    /// Take a hash from exactly 32 bytes.
    pub fn from_slice(b: &[u8]) -> Result<Hash, Error> {
        let bytes: [u8; 32] = b
            .try_into()
            .map_err(|_| HashError::WrongLength { got: b.len() })?;
        Ok(Hash(bytes))
    }

    /// Decode standard (padded, RFC 4648 section 4) base64 of exactly 32 bytes.
    pub fn from_base64(s: &str) -> Result<Hash, Error> {
        Ok(decode_base64(s)?)
    }

    /// Standard padded base64, as used in checkpoints and proof files.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// Parse 64 hex digits (either case).
    pub fn from_hex(s: &str) -> Result<Hash, Error> {
        if s.len() != 2 * Self::LEN {
            return Err(HashError::Hex {
                reason: format!(
                    "expected 64 hex digits, got {} characters",
                    s.chars().count()
                ),
            }
            .into());
        }
        let mut out = [0u8; 32];
        for (i, pair) in s.as_bytes().chunks_exact(2).enumerate() {
            let (Some(hi), Some(lo)) = (hex_value(pair[0]), hex_value(pair[1])) else {
                return Err(HashError::Hex {
                    reason: format!("non-hex character near position {}", 2 * i),
                }
                .into());
            };
            out[i] = (hi << 4) | lo;
        }
        Ok(Hash(out))
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl std::fmt::Display for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl From<[u8; 32]> for Hash {
    fn from(bytes: [u8; 32]) -> Hash {
        Hash(bytes)
    }
}

impl AsRef<[u8]> for Hash {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Hash of a leaf: `SHA-256(0x00 || leaf)`.
///
/// The 0x00 / 0x01 prefixes (RFC 6962 section 2.1) keep a leaf from ever
/// being confused with an interior node, which would allow second-preimage
/// forgeries of proofs.
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(leaf);
    Hash(h.finalize().into())
}

/// Hash of an interior node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left.0);
    h.update(right.0);
    Hash(h.finalize().into())
}

/// Root of the empty tree: `SHA-256("")` (RFC 6962 section 2.1).
pub fn empty_root() -> Hash {
    Hash(Sha256::digest([]).into())
}

/// [`Hash::from_base64`] with the narrower error type, for parsers that
/// wrap it with line context.
pub(crate) fn decode_base64(s: &str) -> Result<Hash, HashError> {
    // Fast path without allocating (proof files carry thousands of hashes); anything else
    // takes the slow path below, which names what is wrong.
    let mut buf = [0u8; 33];
    if s.len() == 44
        && let Ok(32) = STANDARD.decode_slice(s, &mut buf)
        && let Ok(h) = <[u8; 32]>::try_from(&buf[..32])
    {
        return Ok(Hash(h));
    }
    let bytes = STANDARD.decode(s).map_err(|e| HashError::Base64 {
        reason: e.to_string(),
    })?;
    let got = bytes.len();
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| HashError::WrongLength { got })?;
    Ok(Hash(bytes))
}

/// Lowercase hex of any bytes (used for hashes and key ids).
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

pub(crate) fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}
