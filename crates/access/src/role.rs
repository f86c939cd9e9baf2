//! Roles, permissions, the matrix between them, and grants (a role on a scope).

use std::fmt;
use std::str::FromStr;

use crate::error::{AccessError, quoted};
use crate::scope::Scope;

/// What a principal may be allowed to do. See the crate docs for the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Permission {
    /// Read records, blobs and the evidence views built on them.
    ReadEvidence,
    /// Append records (including raw tool output through ingest).
    WriteEvidence,
    /// Export evidence bundles (dossiers) for use outside Trailmark.
    ExportEvidence,
    /// Read checkpoints and inclusion/consistency proofs.
    ReadLog,
    /// Record an approval (a person's decision that is itself evidence).
    Approve,
    /// Create and change releases.
    ManageReleases,
    /// Manage orgs, projects, users, grants and tokens.
    ManageAccess,
}

impl Permission {
    /// Every permission, in declaration order.
    pub const ALL: [Permission; 7] = [
        Permission::ReadEvidence,
        Permission::WriteEvidence,
        Permission::ExportEvidence,
        Permission::ReadLog,
        Permission::Approve,
        Permission::ManageReleases,
        Permission::ManageAccess,
    ];

    /// The text form (`read-evidence`, `manage-access`...).
    pub const fn as_str(self) -> &'static str {
        match self {
            Permission::ReadEvidence => "read-evidence",
            Permission::WriteEvidence => "write-evidence",
            Permission::ExportEvidence => "export-evidence",
            Permission::ReadLog => "read-log",
            Permission::Approve => "approve",
            Permission::ManageReleases => "manage-releases",
            Permission::ManageAccess => "manage-access",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Permission {
    type Err = AccessError;

    fn from_str(s: &str) -> Result<Self, AccessError> {
        Permission::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| AccessError::UnknownVariant {
                what: "permission",
                value: quoted(s),
                expected: "read-evidence, write-evidence, export-evidence, read-log, approve, \
                           manage-releases, manage-access",
            })
    }
}

/// A named set of permissions; a [`Grant`] gives one to a principal on a [`Scope`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Everything, including managing access.
    Admin,
    /// Runs releases: reads, writes and exports evidence, reads the log, manages releases.
    ReleaseManager,
    /// Reviews and approves: reads evidence and the log, approves.
    Approver,
    /// Read-only with export: reads and exports evidence, reads the log.
    Auditor,
    /// Reads evidence and the log of the projects it is granted on.
    Developer,
    /// A machine that only appends evidence (CI jobs, webhooks).
    Ingest,
}

impl Role {
    /// Every role, in declaration order.
    pub const ALL: [Role; 6] = [
        Role::Admin,
        Role::ReleaseManager,
        Role::Approver,
        Role::Auditor,
        Role::Developer,
        Role::Ingest,
    ];

    /// The text form (`admin`, `release-manager`...).
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::ReleaseManager => "release-manager",
            Role::Approver => "approver",
            Role::Auditor => "auditor",
            Role::Developer => "developer",
            Role::Ingest => "ingest",
        }
    }

    /// The matrix: whether this role includes `p` (the crate docs show it as a table).
    pub const fn allows(self, p: Permission) -> bool {
        use Permission::{
            Approve, ExportEvidence, ManageReleases, ReadEvidence, ReadLog, WriteEvidence,
        };
        match self {
            Role::Admin => true,
            Role::ReleaseManager => matches!(
                p,
                ReadEvidence | WriteEvidence | ExportEvidence | ReadLog | ManageReleases
            ),
            Role::Approver => matches!(p, ReadEvidence | ReadLog | Approve),
            Role::Auditor => matches!(p, ReadEvidence | ExportEvidence | ReadLog),
            Role::Developer => matches!(p, ReadEvidence | ReadLog),
            Role::Ingest => matches!(p, WriteEvidence),
        }
    }

    /// The permissions this role includes, in [`Permission::ALL`] order.
    pub fn permissions(self) -> Vec<Permission> {
        Permission::ALL
            .into_iter()
            .filter(|&p| self.allows(p))
            .collect()
    }

    /// The largest role whose permissions are all allowed by both `self` and `other`, or
    /// `None` when no role fits (e.g. approver and ingest share nothing).
    ///
    /// This is how a person token is narrowed to what its owner may do. It never allows more
    /// than both roles; for the current matrix it is exact (the permissions both allow always
    /// form a role, as a test checks), so nothing both allow is lost either.
    pub fn meet(self, other: Role) -> Option<Role> {
        let both = |p: Permission| self.allows(p) && other.allows(p);
        Role::ALL
            .into_iter()
            .filter(|r| Permission::ALL.into_iter().all(|p| !r.allows(p) || both(p)))
            .max_by_key(|r| {
                // Ties cannot occur with the current matrix; prefer the earlier role if they do.
                let count = Permission::ALL.into_iter().filter(|&p| r.allows(p)).count();
                (count, std::cmp::Reverse(*r))
            })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = AccessError;

    fn from_str(s: &str) -> Result<Self, AccessError> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| AccessError::UnknownVariant {
                what: "role",
                value: quoted(s),
                expected: "admin, release-manager, approver, auditor, developer, ingest",
            })
    }
}

macro_rules! serde_as_text {
    ($ty:ty) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

serde_as_text!(Role);
serde_as_text!(Permission);

/// A role on a scope. Text form `role@scope`, e.g. `ingest@acme/payments`; serde form
/// `{"role": "ingest", "scope": "acme/payments"}`.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    pub role: Role,
    pub scope: Scope,
}

impl Grant {
    /// A grant of `role` on `scope`.
    pub fn new(role: Role, scope: Scope) -> Grant {
        Grant { role, scope }
    }

    /// Whether this grant allows `p` on `target`.
    pub fn allows(&self, p: Permission, target: &Scope) -> bool {
        self.role.allows(p) && self.scope.covers(target)
    }

    /// The grant allowing exactly what both grants allow (roles by [`Role::meet`], scopes by
    /// [`Scope::intersect`]), or `None` when they share nothing.
    pub fn intersect(&self, other: &Grant) -> Option<Grant> {
        Some(Grant {
            role: self.role.meet(other.role)?,
            scope: self.scope.intersect(&other.scope)?,
        })
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.role, self.scope)
    }
}

impl FromStr for Grant {
    type Err = AccessError;

    fn from_str(s: &str) -> Result<Self, AccessError> {
        let (role, scope) = s.split_once('@').ok_or_else(|| AccessError::InvalidGrant {
            value: quoted(s),
            reason: "a grant is written role@scope, e.g. developer@acme/payments",
        })?;
        Ok(Grant {
            role: role.parse()?,
            scope: scope.parse()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meet_is_exact_for_the_matrix() {
        // If this fails, the matrix changed so that two roles share a permission set no role
        // has: person tokens would then lose permissions; revisit `Role::meet`.
        for a in Role::ALL {
            for b in Role::ALL {
                let both: Vec<Permission> = Permission::ALL
                    .into_iter()
                    .filter(|&p| a.allows(p) && b.allows(p))
                    .collect();
                match a.meet(b) {
                    Some(m) => assert_eq!(m.permissions(), both, "{a} ∧ {b} = {m}"),
                    None => assert!(both.is_empty(), "{a} ∧ {b} lost {both:?}"),
                }
            }
        }
    }
}
