//! Local user passwords: argon2id, stored as PHC strings (`$argon2id$v=19$m=...`), so the
//! parameters travel with each hash and can be raised later without breaking old ones.

#[cfg(feature = "db")]
use std::sync::LazyLock;

#[cfg(feature = "db")]
use argon2::Argon2;
#[cfg(feature = "db")]
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

use crate::error::AccessError;

/// Minimum password length, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Maximum password length, in bytes: long enough for any passphrase, short enough that a
/// request body cannot make hashing expensive.
pub const MAX_PASSWORD_BYTES: usize = 1024;

#[cfg(feature = "db")]
/// A hash of a password nobody has, computed once with the same parameters as real hashes.
/// Verifying an unknown user's password against it costs what a real verification costs, so
/// response time does not reveal which users exist.
static DUMMY_HASH: LazyLock<Option<String>> =
    LazyLock::new(|| hash("not a password: timing equalizer").ok());

/// Checks a new password against the length rules.
pub fn check_policy(password: &str) -> Result<(), AccessError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AccessError::PasswordTooShort {
            min: MIN_PASSWORD_CHARS,
        });
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(AccessError::PasswordTooLong {
            max: MAX_PASSWORD_BYTES,
        });
    }
    Ok(())
}

#[cfg(feature = "db")]
/// Hashes a password with argon2id (default parameters, random salt) into a PHC string.
/// Does not apply the policy: see [`check_policy`].
pub(crate) fn hash(password: &str) -> Result<String, AccessError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| AccessError::Hashing(e.to_string()))
}

#[cfg(feature = "db")]
/// Whether `password` matches the PHC string `phc`. A malformed stored hash verifies nothing.
pub(crate) fn verify(password: &str, phc: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

#[cfg(feature = "db")]
/// Spends one verification's worth of time against the dummy hash, for unknown users.
pub(crate) fn verify_dummy(password: &str) {
    if let Some(dummy) = DUMMY_HASH.as_deref() {
        // The result is meaningless: only the time spent matters.
        let _ = verify(password, dummy);
    }
}

#[cfg(feature = "db")]
/// Computes the dummy hash now, so the first unknown-user login is not slower than the rest.
pub(crate) fn warm_up() {
    LazyLock::force(&DUMMY_HASH);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let phc = hash("correct horse battery").expect("hash");
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(verify("correct horse battery", &phc));
        assert!(!verify("correct horse batterY", &phc));
        assert!(!verify("correct horse battery", "not a phc string"));
        verify_dummy("anything at all");
    }

    #[test]
    fn policy() {
        assert_eq!(
            check_policy("elevenchars"),
            Err(AccessError::PasswordTooShort { min: 12 })
        );
        assert!(check_policy("twelve chars").is_ok());
        // Characters, not bytes: 12 two-byte characters pass, 11 do not.
        assert!(check_policy(&"é".repeat(12)).is_ok());
        assert!(check_policy(&"é".repeat(11)).is_err());
        assert_eq!(
            check_policy(&"x".repeat(1025)),
            Err(AccessError::PasswordTooLong { max: 1024 })
        );
    }
}
