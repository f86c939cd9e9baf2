//! Identity and access for Trailmark: who is calling ([`Principal`]) and what they may do
//! ([`Principal::decide`]).
//!
//! - [`scope`]: org and project names and the [`Scope`] a grant applies to (`acme`,
//!   `acme/payments`); an org scope covers all its projects.
//! - [`role`]: [`Role`]s, [`Permission`]s, the matrix between them, and [`Grant`]s (a role on a
//!   scope).
//! - [`principal`]: [`Principal`] (a user, an API token or a CI workload, with its effective
//!   grants) and [`Decision`].
//! - [`token`]: API tokens `tmk_<id>_<secret>`; only their SHA-256 is stored.
//! - [`oidc`]: CI identity tokens (GitHub Actions, GitLab) verified against the issuer's keys and
//!   mapped to grants by claim rules.
//! - [`store`]: the [`AccessStore`], a SQLite file of orgs, projects, users (argon2id
//!   passwords), grants and tokens, separate from the evidence log.
//!
//! # The matrix
//!
//! | permission        | admin | release-manager | approver | auditor | developer | ingest |
//! |-------------------|:-----:|:---------------:|:--------:|:-------:|:---------:|:------:|
//! | `read-evidence`   |   ✓   |        ✓        |    ✓     |    ✓    |     ✓     |        |
//! | `write-evidence`  |   ✓   |        ✓        |          |         |           |   ✓    |
//! | `export-evidence` |   ✓   |        ✓        |          |    ✓    |           |        |
//! | `read-log`        |   ✓   |        ✓        |    ✓     |    ✓    |     ✓     |        |
//! | `approve`         |   ✓   |                 |    ✓     |         |           |        |
//! | `manage-releases` |   ✓   |        ✓        |          |         |           |        |
//! | `manage-access`   |   ✓   |                 |          |         |           |        |
//!
//! `read-log` is checkpoints and proofs. A role applies within its grant's scope only: a
//! developer granted on `acme/payments` reads that project's evidence and nothing else; on
//! `acme`, every project of acme. A principal is allowed `p` on a target scope when any of its
//! grants has a role that allows `p` and a scope that covers the target.
//!
//! ```
//! use trailmark_access::{Decision, Grant, Permission, Principal, PrincipalKind, Scope};
//!
//! let ci = Principal {
//!     id: "token:abcdefgh".to_owned(),
//!     kind: PrincipalKind::Token,
//!     grants: vec!["ingest@acme/payments".parse::<Grant>()?],
//!     person: None,
//! };
//! let payments: Scope = "acme/payments".parse()?;
//! assert_eq!(ci.decide(Permission::WriteEvidence, &payments), Decision::Allow);
//! assert_eq!(ci.decide(Permission::ReadEvidence, &payments), Decision::Deny);
//! assert_eq!(ci.decide(Permission::WriteEvidence, &"acme/web".parse()?), Decision::Deny);
//! # Ok::<(), trailmark_access::AccessError>(())
//! ```
//!
//! # Invariants
//!
//! - No secret is ever stored or printed: passwords as argon2id PHC strings, tokens as SHA-256
//!   of the token text; [`TokenSecret`]'s `Debug` is redacted and errors never repeat a
//!   presented token, password or JWT.
//! - Token hashes are compared in constant time.
//! - Authentication errors are uniform where they could reveal who exists: an unknown user and a
//!   wrong password are both [`AccessError::BadCredentials`], after the same argon2 work; an
//!   unknown token id and a wrong secret are both [`AccessError::UnknownToken`], and a token's
//!   revoked/expired state is only revealed to someone holding its secret.
//! - Never panics on input; every parser returns a typed [`AccessError`].
#![forbid(unsafe_code)]
// Without the database, the token internals it issues and checks with have no caller.
#![cfg_attr(not(feature = "db"), allow(dead_code))]

#[cfg(feature = "db")]
mod db;
mod error;
#[cfg(feature = "oidc")]
pub mod oidc;
mod password;
pub mod principal;
pub mod role;
pub mod scope;
#[cfg(feature = "db")]
pub mod store;
pub mod token;

pub use error::{AccessError, OidcError};
#[cfg(feature = "oidc")]
pub use oidc::{ClaimRule, JwksSource, OidcProvider, OidcVerifier};
pub use password::{MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS, check_policy as check_password_policy};
pub use principal::{Decision, Principal, PrincipalKind, UserName};
pub use role::{Grant, Permission, Role};
pub use scope::{OrgName, ProjectName, Scope};
#[cfg(feature = "db")]
pub use store::AccessStore;
pub use token::{TOKEN_PREFIX, TokenId, TokenInfo, TokenSecret};
