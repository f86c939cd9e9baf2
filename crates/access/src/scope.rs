//! Org and project names, and the scopes grants apply to.

use std::fmt;
use std::str::FromStr;

use crate::error::{AccessError, quoted};

/// Checks the shared name shape: a lowercase letter or digit, then up to `max_rest` more of
/// lowercase letters, digits and `extra` characters.
pub(crate) fn check_name(
    what: &'static str,
    value: &str,
    extra: &[u8],
    max_rest: usize,
    reason: &'static str,
) -> Result<(), AccessError> {
    let invalid = |reason| AccessError::InvalidName {
        what,
        value: quoted(value),
        reason,
    };
    let bytes = value.as_bytes();
    let Some((&first, rest)) = bytes.split_first() else {
        return Err(invalid("it is empty"));
    };
    if rest.len() > max_rest {
        return Err(invalid(reason));
    }
    if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
        return Err(invalid(reason));
    }
    if !rest
        .iter()
        .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || extra.contains(&b))
    {
        return Err(invalid(reason));
    }
    Ok(())
}

macro_rules! slug_name {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Parses and checks a name: `[a-z0-9][a-z0-9-]{0,62}`.
            pub fn parse(value: &str) -> Result<Self, AccessError> {
                check_name(
                    $what,
                    value,
                    b"-",
                    62,
                    "must be 1 to 63 characters of a-z, 0-9 and '-', not starting with '-'",
                )?;
                Ok(Self(value.to_owned()))
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = AccessError;
            fn from_str(s: &str) -> Result<Self, AccessError> {
                Self::parse(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

slug_name!(
    /// An organization name: `[a-z0-9][a-z0-9-]{0,62}` (it appears in scopes and URLs).
    OrgName,
    "org name"
);
slug_name!(
    /// A project name within an org: `[a-z0-9][a-z0-9-]{0,62}`.
    ProjectName,
    "project name"
);

/// What a grant applies to: a whole org (and every project in it) or one project.
///
/// Text form: `acme` or `acme/payments`. Ordering is by org, then the org scope before its
/// projects (so sorted lists group by org).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The org and all its projects, including ones created later.
    Org(OrgName),
    /// One project.
    Project(OrgName, ProjectName),
}

impl Scope {
    /// The org the scope is in.
    pub fn org(&self) -> &OrgName {
        match self {
            Scope::Org(org) | Scope::Project(org, _) => org,
        }
    }

    /// The project, for a project scope.
    pub fn project(&self) -> Option<&ProjectName> {
        match self {
            Scope::Org(_) => None,
            Scope::Project(_, project) => Some(project),
        }
    }

    /// Whether a grant on `self` applies to `other`: an org scope covers itself and all its
    /// projects; a project scope covers only itself.
    pub fn covers(&self, other: &Scope) -> bool {
        match self {
            Scope::Org(org) => org == other.org(),
            Scope::Project(..) => self == other,
        }
    }

    /// The scope both `self` and `other` cover, if any. Scopes form a tree (org → projects), so
    /// two scopes either nest (the narrower one is the answer) or are disjoint.
    pub fn intersect(&self, other: &Scope) -> Option<Scope> {
        if self.covers(other) {
            Some(other.clone())
        } else if other.covers(self) {
            Some(self.clone())
        } else {
            None
        }
    }
}

impl Ord for Scope {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.org(), self.project()).cmp(&(other.org(), other.project()))
    }
}

impl PartialOrd for Scope {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl FromStr for Scope {
    type Err = AccessError;

    fn from_str(s: &str) -> Result<Self, AccessError> {
        let invalid = |reason| AccessError::InvalidScope {
            value: quoted(s),
            reason,
        };
        match s.split_once('/') {
            None => Ok(Scope::Org(OrgName::parse(s)?)),
            Some((org, project)) => {
                if project.contains('/') {
                    return Err(invalid(
                        "a scope is `org` or `org/project`, with one '/' at most",
                    ));
                }
                Ok(Scope::Project(
                    OrgName::parse(org)?,
                    ProjectName::parse(project)?,
                ))
            }
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Org(org) => write!(f, "{org}"),
            Scope::Project(org, project) => write!(f, "{org}/{project}"),
        }
    }
}

impl serde::Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_pattern() {
        for ok in ["a", "0", "acme", "a-b", "a1-", &"a".repeat(63)] {
            assert!(OrgName::parse(ok).is_ok(), "{ok}");
            assert!(ProjectName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "A", "acme_x", "a.b", "é", "a b", &"a".repeat(64)] {
            assert!(
                matches!(
                    OrgName::parse(bad),
                    Err(AccessError::InvalidName {
                        what: "org name",
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn long_values_are_shortened_in_errors() {
        let long = "X".repeat(10_000);
        let message = OrgName::parse(&long).expect_err("too long").to_string();
        assert!(message.len() < 300, "{message}");
    }
}
