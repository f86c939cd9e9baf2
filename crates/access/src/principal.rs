//! Who is asking (a [`Principal`]) and the [`Decision`] on what they ask for.

use std::fmt;
use std::str::FromStr;

use crate::error::AccessError;
use crate::role::{Grant, Permission};
use crate::scope::{Scope, check_name};

/// A local user name: `[a-z0-9][a-z0-9._-]{0,63}`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserName(String);

impl UserName {
    /// Parses and checks a user name.
    pub fn parse(value: &str) -> Result<UserName, AccessError> {
        check_name(
            "user name",
            value,
            b"._-",
            63,
            "must be 1 to 64 characters of a-z, 0-9, '.', '_' and '-', starting with a-z or 0-9",
        )?;
        Ok(UserName(value.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for UserName {
    type Err = AccessError;
    fn from_str(s: &str) -> Result<Self, AccessError> {
        UserName::parse(s)
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a principal authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PrincipalKind {
    /// A local user with a password.
    User,
    /// An API token (acting for a user if it has an owner, otherwise a machine).
    Token,
    /// A CI job or other workload proven by an OIDC identity token.
    Workload,
}

/// The outcome of an access check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[must_use]
pub enum Decision {
    Allow,
    Deny,
}

impl Decision {
    /// True for [`Decision::Allow`].
    pub fn is_allow(self) -> bool {
        self == Decision::Allow
    }
}

/// An authenticated caller and what it was granted.
///
/// `id` is `user:<name>`, `token:<token id>` or `oidc:<issuer>#<sub>`. `grants` are the
/// effective grants: for a person token already narrowed to what its owner may do (see
/// [`AccessStore::authenticate_token`](crate::AccessStore::authenticate_token)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub id: String,
    pub kind: PrincipalKind,
    pub grants: Vec<Grant>,
    /// The person this principal acts as: the user name for a user and for a token created
    /// for a user, `None` for machine tokens and workloads.
    pub person: Option<String>,
}

impl Principal {
    /// Allowed when any grant's role allows `p` and its scope covers `target`.
    pub fn decide(&self, p: Permission, target: &Scope) -> Decision {
        if self.grants.iter().any(|g| g.allows(p, target)) {
            Decision::Allow
        } else {
            Decision::Deny
        }
    }

    /// The scopes within which `p` is allowed, for filtering lists: sorted, without
    /// duplicates, and without a project scope whose org scope is also listed.
    pub fn readable_scopes(&self, p: Permission) -> Vec<Scope> {
        let mut scopes: Vec<Scope> = self
            .grants
            .iter()
            .filter(|g| g.role.allows(p))
            .map(|g| g.scope.clone())
            .collect();
        scopes.sort();
        scopes.dedup();
        let orgs: Vec<Scope> = scopes
            .iter()
            .filter(|s| matches!(s, Scope::Org(_)))
            .cloned()
            .collect();
        scopes.retain(|s| matches!(s, Scope::Org(_)) || !orgs.iter().any(|o| o.covers(s)));
        scopes
    }

    /// Whether a person stands behind this principal: users and tokens created for a user
    /// (approvals must come from people); machine tokens and workloads are not.
    pub fn is_person(&self) -> bool {
        match self.kind {
            PrincipalKind::User => true,
            PrincipalKind::Token => self.person.is_some(),
            PrincipalKind::Workload => false,
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}
