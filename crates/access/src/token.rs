//! API tokens: `tmk_<id>_<secret>`.
//!
//! - `id`: 8 characters of lowercase RFC 4648 base32 (`a-z`, `2-7`) from 40 random bits. It is
//!   public (listed, logged, named in errors) and is how a presented token is looked up.
//! - `secret`: 32 random bytes as URL-safe base64 without padding (43 characters).
//!
//! Only the SHA-256 of the whole token text is stored. A fast hash is enough here (unlike
//! passwords): the secret has 256 bits of entropy, so nobody can guess it from the hash.
//! The stored and computed hashes are compared in constant time.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{AccessError, quoted};
use crate::role::Grant;

/// Every token starts with this, so secret scanners (and people) recognize one.
pub const TOKEN_PREFIX: &str = "tmk_";
const ID_ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
const ID_LEN: usize = 8;
const SECRET_BYTES: usize = 32;
const SECRET_LEN: usize = 43;
const TOKEN_LEN: usize = TOKEN_PREFIX.len() + ID_LEN + 1 + SECRET_LEN;
const MAX_NAME_CHARS: usize = 100;

/// The public identifier of an API token (8 characters of `a-z2-7`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TokenId(String);

impl TokenId {
    /// Parses a token id.
    pub fn parse(value: &str) -> Result<TokenId, AccessError> {
        if is_id(value) {
            Ok(TokenId(value.to_owned()))
        } else {
            Err(AccessError::InvalidName {
                what: "token id",
                value: quoted(value),
                reason: "must be 8 characters of a-z and 2-7",
            })
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_id(value: &str) -> bool {
    value.len() == ID_LEN && value.bytes().all(|b| ID_ALPHABET.contains(&b))
}

impl FromStr for TokenId {
    type Err = AccessError;
    fn from_str(s: &str) -> Result<Self, AccessError> {
        TokenId::parse(s)
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A whole API token (`tmk_<id>_<secret>`), as handed to its creator exactly once.
///
/// Deliberately neither `Display` nor `Clone`, and `Debug` is redacted: the only way to the
/// text is [`TokenSecret::expose`], which is easy to search for in review.
pub struct TokenSecret(String);

impl TokenSecret {
    /// The token text, to show to its creator once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSecret(<redacted>)")
    }
}

/// What the access store knows about a token (never its secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    pub id: TokenId,
    /// A label chosen by its creator ("ci for payments").
    pub name: String,
    /// The most the token may do. For a person token, also limited by its owner's grants.
    pub grant: Grant,
    /// The user the token acts for, if any: that makes it a person token.
    pub owner: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    /// Who created it (a principal id).
    pub created_by: String,
}

impl TokenInfo {
    /// Whether the token acts for a person.
    pub fn is_person(&self) -> bool {
        self.owner.is_some()
    }

    /// Whether the token would authenticate at `now`: not revoked and not expired.
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now < e)
    }
}

/// A presented token whose shape is valid.
pub(crate) struct Presented<'a> {
    pub id: TokenId,
    pub text: &'a str,
}

/// Checks the shape of a presented token. Errors say what is wrong without repeating the text.
pub(crate) fn parse_presented(text: &str) -> Result<Presented<'_>, AccessError> {
    let malformed = |reason| AccessError::MalformedToken { reason };
    let rest = text
        .strip_prefix(TOKEN_PREFIX)
        .ok_or(malformed("it does not start with tmk_"))?;
    let id = rest
        .get(..ID_LEN)
        .filter(|id| is_id(id))
        .ok_or(malformed("the id is not 8 characters of a-z and 2-7"))?;
    let secret = rest
        .get(ID_LEN..)
        .and_then(|s| s.strip_prefix('_'))
        .ok_or(malformed("there is no '_' after the id"))?;
    if secret.len() != SECRET_LEN {
        return Err(malformed("the secret is not 43 characters long"));
    }
    match URL_SAFE_NO_PAD.decode(secret) {
        Ok(bytes) if bytes.len() == SECRET_BYTES => {}
        _ => return Err(malformed("the secret is not URL-safe base64 of 32 bytes")),
    }
    debug_assert_eq!(text.len(), TOKEN_LEN);
    Ok(Presented {
        id: TokenId(id.to_owned()),
        text,
    })
}

/// A new random token: its id, the whole text, and the hash to store.
pub(crate) fn generate() -> Result<(TokenId, TokenSecret, [u8; 32]), AccessError> {
    let mut id_bytes = [0u8; 5];
    let mut secret_bytes = [0u8; SECRET_BYTES];
    getrandom::fill(&mut id_bytes).map_err(|e| AccessError::Randomness(e.to_string()))?;
    getrandom::fill(&mut secret_bytes).map_err(|e| AccessError::Randomness(e.to_string()))?;
    let id = TokenId(base32(id_bytes));
    let text = format!(
        "{TOKEN_PREFIX}{id}_{}",
        URL_SAFE_NO_PAD.encode(secret_bytes)
    );
    let hash = hash_token(&text);
    Ok((id, TokenSecret(text), hash))
}

/// 40 bits as 8 base32 characters, most significant first.
fn base32(bytes: [u8; 5]) -> String {
    let bits = bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    (0..ID_LEN)
        .rev()
        .map(|i| char::from(ID_ALPHABET[((bits >> (5 * i)) & 31) as usize]))
        .collect()
}

/// SHA-256 of the whole token text: what the store keeps instead of the token.
pub(crate) fn hash_token(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// Constant-time comparison of a stored hash with the presented token's hash, so the time
/// taken does not tell an attacker how many leading bytes they got right.
pub(crate) fn hash_matches(stored: &[u8], presented: &str) -> bool {
    bool::from(stored.ct_eq(&hash_token(presented)))
}

/// Checks a token's label: 1 to 100 characters, no control characters.
pub(crate) fn check_name(name: &str) -> Result<(), AccessError> {
    let invalid = |reason| AccessError::InvalidName {
        what: "token name",
        value: quoted(name),
        reason,
    };
    if name.trim().is_empty() {
        return Err(invalid("it is empty"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(invalid("it is longer than 100 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid("it contains a control character"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_parse_and_match_their_hash() {
        let (id, secret, hash) = generate().expect("random");
        let text = secret.expose();
        assert_eq!(text.len(), TOKEN_LEN);
        let presented = parse_presented(text).expect("parse");
        assert_eq!(presented.id, id);
        assert!(hash_matches(&hash, presented.text));
        assert!(!hash_matches(&hash, &text.replace(&id.0, "aaaaaaaa")));
        assert_eq!(format!("{secret:?}"), "TokenSecret(<redacted>)");
    }

    #[test]
    fn base32_is_msb_first() {
        assert_eq!(base32([0; 5]), "aaaaaaaa");
        assert_eq!(base32([0xff; 5]), "77777777");
        assert_eq!(base32([0, 0, 0, 0, 1]), "aaaaaaab");
    }

    #[test]
    fn malformed_tokens_are_refused_without_echo() {
        let good = "tmk_abcdefgh_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        assert!(parse_presented(good).is_ok());
        for bad in [
            "",
            "tmk_",
            "tmk_ABCDEFGH_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "tmk_abcdefgh-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "tmk_abcdefgh_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "tmk_abcdefgh_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "tmk_abcdefgh_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+",
            // Non-canonical: the last character carries bits beyond the 32 bytes.
            "tmk_abcdefgh_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB",
            "tmk_abcdéfgh_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            " tmk_abcdefgh_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            let err = parse_presented(bad).err().expect(bad);
            assert!(matches!(err, AccessError::MalformedToken { .. }), "{bad}");
            assert!(!err.to_string().contains("AAAAAAAA"), "{err}");
        }
    }
}
