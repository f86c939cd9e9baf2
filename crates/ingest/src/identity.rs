//! Identity resolution: one person across git emails, GitHub/GitLab logins (including noreply
//! addresses), Jira account ids and IdP subjects.
//!
//! Records always keep the raw identity they were given (`actor`, payload fields); resolution is
//! a view applied when evidence is evaluated (separation of duties needs "is the approver the
//! author?" answered across tools). Sources of truth, in order:
//! 1. A mapping file listing each person's identities (`people.json`, see [`IdentityMap::from_json`]).
//! 2. Safe automatic matches only: GitHub and GitLab noreply e-mail addresses name the login
//!    they belong to, and e-mail addresses compare case-insensitively. Display names never
//!    match anything: two people can share one.

use std::collections::HashMap;

use serde_json::Value;

/// How an identity was resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Match {
    /// Listed in the mapping file.
    Mapped,
    /// A noreply address mapped to its forge login, which the mapping file lists.
    NoReply,
    /// Not in the mapping file; the canonical identity stands for the person.
    Unmapped,
}

/// The person behind a raw identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolution {
    /// The person's id from the mapping file, or the canonical identity when unmapped.
    pub person: String,
    /// The identity after safe normalization (`email:` lower-cased, noreply → login).
    pub canonical: String,
    pub how: Match,
}

/// Why a mapping file was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdentityError {
    #[error("identity map: invalid JSON: {0}")]
    Json(String),
    #[error("identity map: {0}")]
    Shape(String),
    /// One identity listed for two people: resolving it would be a guess.
    #[error("identity map: {identity} is listed for both {first} and {second}")]
    Conflict {
        identity: String,
        first: String,
        second: String,
    },
}

/// A mapping of identities to people.
#[derive(Clone, Debug, Default)]
pub struct IdentityMap {
    owner: HashMap<String, String>,
}

const KINDS: &[&str] = &["email", "github", "gitlab", "jira", "idp", "person"];

/// Safe normalization of a typed identity (`kind:value`), or `None` if it is not one.
pub fn canonical(raw: &str) -> Option<String> {
    let (kind, value) = raw.trim().split_once(':')?;
    let kind = kind.to_ascii_lowercase();
    if !KINDS.contains(&kind.as_str()) || value.is_empty() {
        return None;
    }
    if kind != "email" {
        // Forge logins are case-insensitive; Jira account ids and IdP subjects are not.
        return Some(match kind.as_str() {
            "github" | "gitlab" => format!("{kind}:{}", value.to_ascii_lowercase()),
            _ => format!("{kind}:{value}"),
        });
    }
    let email = value.to_ascii_lowercase();
    let (local, domain) = email.rsplit_once('@')?;
    let login = |l: &str| {
        l.split_once(['+', '-'])
            .map_or(l.to_owned(), |(id, login)| {
                if id.chars().all(|c| c.is_ascii_digit()) {
                    login.to_owned()
                } else {
                    l.to_owned()
                }
            })
    };
    Some(match domain {
        "users.noreply.github.com" => format!("github:{}", login(local)),
        "users.noreply.gitlab.com" => format!("gitlab:{}", login(local)),
        _ => format!("email:{email}"),
    })
}

impl IdentityMap {
    /// Reads `{"people": [{"id": "alice", "identities": ["email:alice@example.com",
    /// "github:alice", "jira:5b10…", "idp:00u1…"]}]}`.
    pub fn from_json(text: &str) -> Result<IdentityMap, IdentityError> {
        let v: Value =
            serde_json::from_str(text).map_err(|e| IdentityError::Json(e.to_string()))?;
        let people = v
            .get("people")
            .and_then(Value::as_array)
            .ok_or_else(|| IdentityError::Shape("expected {\"people\": [...]}".into()))?;
        let mut owner: HashMap<String, String> = HashMap::new();
        for (i, p) in people.iter().enumerate() {
            let id = p
                .get("id")
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty())
                .ok_or_else(|| IdentityError::Shape(format!("people[{i}] has no id")))?;
            let ids = p
                .get("identities")
                .and_then(Value::as_array)
                .ok_or_else(|| {
                    IdentityError::Shape(format!("people[{i}] ({id}) has no identities list"))
                })?;
            for (j, raw) in ids.iter().enumerate() {
                let raw = raw.as_str().ok_or_else(|| {
                    IdentityError::Shape(format!("people[{i}].identities[{j}] is not a string"))
                })?;
                let c = canonical(raw).ok_or_else(|| {
                    IdentityError::Shape(format!(
                        "people[{i}].identities[{j}] {raw:?} is not KIND:VALUE with KIND one of {}",
                        KINDS.join(", ")
                    ))
                })?;
                if let Some(first) = owner.get(&c)
                    && first != id
                {
                    return Err(IdentityError::Conflict {
                        identity: c,
                        first: first.clone(),
                        second: id.to_owned(),
                    });
                }
                owner.insert(c, id.to_owned());
            }
        }
        Ok(IdentityMap { owner })
    }

    /// The map in the form [`IdentityMap::from_json`] reads, people and identities sorted: what
    /// a dossier carries so its view can be rebuilt with the same resolution.
    pub fn to_json(&self) -> Value {
        let mut people: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
        for (identity, person) in &self.owner {
            people
                .entry(person.as_str())
                .or_default()
                .push(identity.as_str());
        }
        let list: Vec<Value> = people
            .into_iter()
            .map(|(id, mut ids)| {
                ids.sort_unstable();
                serde_json::json!({"id": id, "identities": ids})
            })
            .collect();
        serde_json::json!({"people": list})
    }

    /// Resolves a raw identity (`email:…`, `github:…`, `gitlab:…`, `jira:…`, `idp:…`).
    pub fn resolve(&self, raw: &str) -> Option<Resolution> {
        let c = canonical(raw)?;
        let via_noreply = raw.to_ascii_lowercase().contains("users.noreply.");
        Some(match self.owner.get(&c) {
            Some(person) => Resolution {
                person: person.clone(),
                how: if via_noreply {
                    Match::NoReply
                } else {
                    Match::Mapped
                },
                canonical: c,
            },
            None => Resolution {
                person: c.clone(),
                canonical: c,
                how: Match::Unmapped,
            },
        })
    }

    /// True when two raw identities resolve to the same person.
    pub fn same_person(&self, a: &str, b: &str) -> bool {
        matches!((self.resolve(a), self.resolve(b)), (Some(x), Some(y)) if x.person == y.person)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MAP: &str = r#"{"people": [
        {"id": "alice", "identities": ["email:Alice@Example.com", "github:alice-dev", "jira:5b10a2844c20165700ede21g", "idp:00u1abcd"]},
        {"id": "bob", "identities": ["email:bob@example.com", "gitlab:bobby"]}
    ]}"#;

    #[test]
    fn resolves_across_tools_and_noreply_addresses() {
        let m = IdentityMap::from_json(MAP).unwrap();
        assert_eq!(
            m.resolve("email:alice@example.com").unwrap().person,
            "alice"
        );
        assert_eq!(m.resolve("github:Alice-Dev").unwrap().person, "alice");
        let r = m
            .resolve("email:12345+alice-dev@users.noreply.github.com")
            .unwrap();
        assert_eq!((r.person.as_str(), r.how), ("alice", Match::NoReply));
        assert_eq!(
            m.resolve("email:alice-dev@users.noreply.github.com")
                .unwrap()
                .person,
            "alice"
        );
        assert_eq!(
            m.resolve("email:42-bobby@users.noreply.gitlab.com")
                .unwrap()
                .person,
            "bob"
        );
        assert!(m.same_person("jira:5b10a2844c20165700ede21g", "idp:00u1abcd"));
        assert!(!m.same_person("email:alice@example.com", "email:bob@example.com"));
        // Jira ids are case-sensitive: a different case is a different identity.
        assert_eq!(
            m.resolve("jira:5B10A2844C20165700EDE21G").unwrap().how,
            Match::Unmapped
        );
        // Unmapped identities stand for themselves, normalized.
        let u = m.resolve("email:Carol@Example.com").unwrap();
        assert_eq!(
            (u.person.as_str(), u.how),
            ("email:carol@example.com", Match::Unmapped)
        );
        assert!(
            m.resolve("Alice Smith").is_none(),
            "display names never resolve"
        );
    }

    #[test]
    fn conflicting_or_malformed_maps_are_refused() {
        let conflict = r#"{"people": [{"id": "a", "identities": ["github:x"]}, {"id": "b", "identities": ["GitHub:X"]}]}"#;
        assert!(matches!(
            IdentityMap::from_json(conflict),
            Err(IdentityError::Conflict { .. })
        ));
        assert!(matches!(
            IdentityMap::from_json("{"),
            Err(IdentityError::Json(_))
        ));
        assert!(matches!(
            IdentityMap::from_json(r#"{"people": [{"id": "a", "identities": ["alice"]}]}"#),
            Err(IdentityError::Shape(_))
        ));
        assert!(matches!(
            IdentityMap::from_json(r#"{"people": [{"identities": []}]}"#),
            Err(IdentityError::Shape(_))
        ));
    }
}
