//! The crate's one error type.
//!
//! Messages name what is wrong (the name, the token id, the issuer) but never a secret: no
//! password, no token secret, no presented token or JWT appears in any variant.

use jiff::Timestamp;
use thiserror::Error;

use crate::token::TokenId;

/// Everything an access operation can fail with.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AccessError {
    /// A name (org, project, user, token name) does not have the required form.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidName {
        /// What kind of name it is ("org name", "user name"...).
        what: &'static str,
        /// The name as given (shortened if very long).
        value: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// A scope text is neither `org` nor `org/project`.
    #[error("invalid scope {value:?}: {reason}")]
    InvalidScope {
        /// The text as given (shortened if very long).
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A grant text is not `role@scope`.
    #[error("invalid grant {value:?}: {reason}")]
    InvalidGrant {
        /// The text as given (shortened if very long).
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A role or permission text is not one of the known ones.
    #[error("unknown {what} {value:?} (expected one of: {expected})")]
    UnknownVariant {
        /// "role", "permission" or "principal kind".
        what: &'static str,
        /// The text as given (shortened if very long).
        value: String,
        /// The accepted texts, comma-separated.
        expected: &'static str,
    },
    /// The org does not exist in the access store.
    #[error("unknown org {org:?}")]
    UnknownOrg {
        /// The org name.
        org: String,
    },
    /// The project does not exist in the access store.
    #[error("unknown project {org}/{project}")]
    UnknownProject {
        /// The org name.
        org: String,
        /// The project name.
        project: String,
    },
    /// The user does not exist (never returned by authentication, which says `BadCredentials`).
    #[error("unknown user {user:?}")]
    UnknownUser {
        /// The user name.
        user: String,
    },
    /// Something with this name already exists.
    #[error("{what} {name:?} already exists")]
    Duplicate {
        /// "org", "project" or "user".
        what: &'static str,
        /// The name (for a project: `org/project`).
        name: String,
    },
    /// A new password is shorter than the minimum.
    #[error("password is too short: at least {min} characters are required")]
    PasswordTooShort {
        /// Minimum length in characters.
        min: usize,
    },
    /// A new password is longer than the maximum.
    #[error("password is too long: at most {max} bytes are accepted")]
    PasswordTooLong {
        /// Maximum length in bytes.
        max: usize,
    },
    /// User name or password is wrong. Deliberately one variant for both: a caller must not
    /// learn which users exist.
    #[error("bad credentials: unknown user or wrong password")]
    BadCredentials,
    /// The presented API token is not of the form `tmk_<id>_<secret>`. The token itself is not
    /// repeated, in case it is a real secret with a typo.
    #[error("malformed API token: {reason} (expected tmk_<8-character id>_<secret>)")]
    MalformedToken {
        /// What is wrong with its shape.
        reason: &'static str,
    },
    /// No token with this id exists, or the secret does not match it.
    #[error("unknown API token {id}")]
    UnknownToken {
        /// The token id (public: it is printed in token lists).
        id: TokenId,
    },
    /// The token's expiry time has passed.
    #[error("API token {id} expired at {expired_at}")]
    ExpiredToken {
        /// The token id.
        id: TokenId,
        /// When it expired.
        expired_at: Timestamp,
    },
    /// The token was revoked.
    #[error("API token {id} was revoked at {revoked_at}")]
    RevokedToken {
        /// The token id.
        id: TokenId,
        /// When it was revoked.
        revoked_at: Timestamp,
    },
    /// Revoking a token that is already revoked.
    #[error("API token {id} is already revoked (since {revoked_at})")]
    AlreadyRevoked {
        /// The token id.
        id: TokenId,
        /// When it was revoked.
        revoked_at: Timestamp,
    },
    /// A new token's expiry time is not after its creation time.
    #[error("token expiry {expires_at} is not after the creation time {now}")]
    ExpiryNotInFuture {
        /// The requested expiry.
        expires_at: Timestamp,
        /// The creation time.
        now: Timestamp,
    },
    /// An OIDC identity token was refused.
    #[error(transparent)]
    Oidc(#[from] OidcError),
    /// The OIDC configuration is unusable.
    #[error("invalid OIDC configuration: {0}")]
    OidcConfig(String),
    /// The database (or file system) failed; `op` says what Trailmark was doing.
    #[error("access store error while {op}: {message}")]
    Storage {
        /// What was being done.
        op: &'static str,
        /// The underlying error.
        message: String,
    },
    /// The database exists but is not one this build can use (newer schema, altered
    /// migration, a row Trailmark did not write).
    #[error("access store refused: {0}")]
    Incompatible(String),
    /// The operating system's random number generator failed.
    #[error("random number generator failed: {0}")]
    Randomness(String),
    /// Password hashing failed for a reason other than the input (parameters, memory).
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

/// Why an OIDC identity token (a JWT from a CI system) was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum OidcError {
    /// The signature does not verify with the issuer's key.
    #[error("identity token signature does not verify (issuer {issuer})")]
    BadSignature {
        /// The issuer whose key was used.
        issuer: String,
    },
    /// The issuer is not one of the configured providers.
    #[error("identity token issuer {issuer:?} is not a configured OIDC provider")]
    WrongIssuer {
        /// The `iss` claim as found in the token.
        issuer: String,
    },
    /// The audience does not include the provider's configured audience.
    #[error("identity token audience does not include {expected:?} (issuer {issuer})")]
    WrongAudience {
        /// The issuer.
        issuer: String,
        /// The audience this server expects.
        expected: String,
    },
    /// `exp` is in the past (beyond the leeway).
    #[error("identity token expired at {expired_at} (issuer {issuer})")]
    Expired {
        /// The issuer.
        issuer: String,
        /// The `exp` claim.
        expired_at: Timestamp,
    },
    /// `nbf` or `iat` is in the future (beyond the leeway).
    #[error("identity token is not valid before {valid_from} (issuer {issuer})")]
    NotYetValid {
        /// The issuer.
        issuer: String,
        /// The `nbf` (or `iat`) claim.
        valid_from: Timestamp,
    },
    /// The token names a key (`kid`) the issuer's key set does not have.
    #[error("identity token key {kid:?} is not in the key set of issuer {issuer}")]
    UnknownKey {
        /// The issuer.
        issuer: String,
        /// The `kid` header, if any.
        kid: Option<String>,
    },
    /// The signing algorithm is not accepted (only RS*, PS* and ES256/ES384 are; never `none`
    /// or HMAC, whose secret would be the public key).
    #[error("identity token algorithm {alg:?} is not accepted")]
    UnsupportedAlgorithm {
        /// The `alg` header (or the key's algorithm) as found.
        alg: String,
    },
    /// The token is not a well-formed JWT with the claims Trailmark needs.
    #[error("malformed identity token: {reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// The issuer's key set could not be fetched or parsed.
    #[error("cannot load the key set of issuer {issuer} from {source_name}: {reason}")]
    Jwks {
        /// The issuer.
        issuer: String,
        /// The file or URL.
        source_name: String,
        /// What went wrong.
        reason: String,
    },
    /// The token is valid but no configured claim rule grants it anything.
    #[error("no claim rule of issuer {issuer} matches identity {subject:?}")]
    NoRuleMatched {
        /// The issuer.
        issuer: String,
        /// The `sub` claim.
        subject: String,
    },
}

impl AccessError {
    /// True when the caller's input was wrong (bad name, credentials, token, refused identity,
    /// duplicate...), false when storage or the environment failed (database, randomness,
    /// an unreachable key set, a broken configuration). A server maps the first to a 4xx status
    /// and the second to a 5xx.
    pub fn is_client_error(&self) -> bool {
        match self {
            AccessError::Oidc(e) => !matches!(e, OidcError::Jwks { .. }),
            AccessError::OidcConfig(_)
            | AccessError::Storage { .. }
            | AccessError::Incompatible(_)
            | AccessError::Randomness(_)
            | AccessError::Hashing(_) => false,
            AccessError::InvalidName { .. }
            | AccessError::InvalidScope { .. }
            | AccessError::InvalidGrant { .. }
            | AccessError::UnknownVariant { .. }
            | AccessError::UnknownOrg { .. }
            | AccessError::UnknownProject { .. }
            | AccessError::UnknownUser { .. }
            | AccessError::Duplicate { .. }
            | AccessError::PasswordTooShort { .. }
            | AccessError::PasswordTooLong { .. }
            | AccessError::BadCredentials
            | AccessError::MalformedToken { .. }
            | AccessError::UnknownToken { .. }
            | AccessError::ExpiredToken { .. }
            | AccessError::RevokedToken { .. }
            | AccessError::AlreadyRevoked { .. }
            | AccessError::ExpiryNotInFuture { .. } => true,
        }
    }

    #[cfg(feature = "db")]
    pub(crate) fn storage(op: &'static str) -> impl FnOnce(rusqlite::Error) -> AccessError {
        move |e| AccessError::Storage {
            op,
            message: e.to_string(),
        }
    }
}

/// Shortens user-supplied text quoted in an error so a huge input cannot flood a log line.
pub(crate) fn quoted(value: &str) -> String {
    const MAX: usize = 80;
    if value.len() <= MAX {
        return value.to_owned();
    }
    let mut end = MAX;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &value[..end])
}
