//! The identity map (people and their identities across tools) kept in the log.
//!
//! Who counts as whom decides separation of duties: map an approver's GitHub login to someone
//! other than the author and "approved by someone else" passes. So the map is evidence like
//! anything else: every version is an [`kinds::IDENTITY_MAP`] record holding the whole map,
//! its digest and who set it, and the map in force is the latest version. Changing it is an
//! append, visible in the log with its actor and time, never a file edited in place.

use serde_json::json;
use trailmark_ingest::Draft;
use trailmark_ingest::identity::IdentityMap;
use trailmark_model::{Digest, Kind, LogIndex, Timestamp, canonical_bytes};
use trailmark_store::{Query, Store};

use crate::PolicyError;
use crate::collect::{Source, subject};
use crate::kinds;

/// The subject every version of the map is recorded under (`identity_map:people`).
pub const SUBJECT_TYPE: &str = "identity_map";
pub const SUBJECT_ID: &str = "people";

/// One recorded version of the identity map.
#[derive(Clone, Debug)]
pub struct MapVersion {
    pub record: u64,
    pub map: IdentityMap,
    /// SHA-256 of the map's canonical JSON ([`IdentityMap::to_json`]).
    pub digest: Digest,
    pub actor: Option<String>,
    pub recorded_at: Timestamp,
}

/// What [`record`] did.
#[derive(Clone, Debug)]
pub enum Recorded {
    /// A new version was appended.
    Append(MapVersion),
    /// The map in force already is this map: nothing was appended.
    Keep(MapVersion),
}

/// The digest a map version is identified by.
pub fn digest(map: &IdentityMap) -> Digest {
    Digest::of(&canonical_bytes(&map.to_json()))
}

/// Every recorded version, oldest first.
pub fn history(store: &dyn Store) -> Result<Vec<MapVersion>, PolicyError> {
    let kind = Kind::parse(kinds::IDENTITY_MAP)
        .map_err(|e| PolicyError::Refused(format!("kind {}: {e}", kinds::IDENTITY_MAP)))?;
    let s = subject(SUBJECT_TYPE, SUBJECT_ID)?;
    store
        .query_all(&Query {
            kind: Some(kind),
            subject: Some(s),
            ..Query::default()
        })?
        .iter()
        .map(|r| version_of(store, r))
        .collect()
}

/// The record index of the latest version, without reading the versions: a subject lookup
/// and a record read. For callers that keep the map and re-read it only when this moves.
pub fn latest_record<S: Source + ?Sized>(store: &S) -> Result<Option<u64>, PolicyError> {
    let s = subject(SUBJECT_TYPE, SUBJECT_ID)?;
    let mut mentions: Vec<u64> = store
        .mentions(&s)?
        .into_iter()
        .filter(|(_, rel)| rel.is_none())
        .map(|(i, _)| i.0)
        .collect();
    mentions.sort_unstable();
    // Other records may name the map as their subject (an access record of reading it):
    // the latest one that is a version counts.
    for i in mentions.into_iter().rev() {
        if let Some(r) = store.record(LogIndex(i))?
            && r.record.kind.as_str() == kinds::IDENTITY_MAP
        {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

/// The version recorded at `index`.
pub fn version_at<S: Source + ?Sized>(store: &S, index: u64) -> Result<MapVersion, PolicyError> {
    let r = store
        .record(LogIndex(index))?
        .ok_or_else(|| PolicyError::NotFound(format!("record {index}")))?;
    if r.record.kind.as_str() != kinds::IDENTITY_MAP {
        return Err(PolicyError::Refused(format!(
            "record {index} is not an identity map version"
        )));
    }
    version_of(store, &r)
}

/// The recorded version `map` is, when it is the version in force (the latest): what a gate
/// input and a dossier name as the map people were resolved with.
pub fn in_force<S: Source + ?Sized>(
    store: &S,
    map: &IdentityMap,
) -> Result<Option<u64>, PolicyError> {
    match latest_record(store)? {
        Some(i) if version_at(store, i)?.digest == digest(map) => Ok(Some(i)),
        _ => Ok(None),
    }
}

/// The map in force: the latest recorded version, if any.
pub fn current(store: &dyn Store) -> Result<Option<MapVersion>, PolicyError> {
    Ok(history(store)?.pop())
}

fn version_of<S: Source + ?Sized>(
    store: &S,
    r: &trailmark_store::StoredRecord,
) -> Result<MapVersion, PolicyError> {
    let index = r.record.index.0;
    let stored = |message: String| PolicyError::Stored { index, message };
    let payload = match &r.record.payload {
        trailmark_model::Payload::Inline(v) => v.clone(),
        trailmark_model::Payload::Blob { digest, .. } => {
            let bytes = store
                .blob(digest)?
                .ok_or_else(|| stored(format!("payload blob {digest} is missing")))?;
            serde_json::from_slice(&bytes).map_err(|e| stored(format!("payload blob: {e}")))?
        }
    };
    let map_json = payload
        .get("map")
        .ok_or_else(|| stored("an identity map version without a map".into()))?;
    let map = IdentityMap::from_json(&map_json.to_string()).map_err(|e| stored(e.to_string()))?;
    let digest = digest(&map);
    // The digest the record states must be the map's: a record whose two halves disagree
    // cannot say which map was in force.
    if payload.get("digest").and_then(|d| d.as_str()) != Some(digest.to_string().as_str()) {
        return Err(stored(format!(
            "the identity map's stated digest is not its content's ({digest})"
        )));
    }
    Ok(MapVersion {
        record: index,
        map,
        digest,
        actor: r.record.actor.clone(),
        recorded_at: r.record.recorded_at,
    })
}

/// Records `map` as the identity map in force, set by `actor`, unless it already is.
pub fn record(store: &dyn Store, map: &IdentityMap, actor: &str) -> Result<Recorded, PolicyError> {
    let digest = digest(map);
    let current = current(store)?;
    let previous = match &current {
        Some(v) if v.digest == digest => return Ok(Recorded::Keep(v.clone())),
        Some(v) => v.record.to_string(),
        None => "none".to_owned(),
    };
    // Keyed by the version it replaces and its content: two processes recording the same map
    // over the same version at once (two commands importing a legacy people.json) append it
    // once, while a later return to an earlier map (A, B, A) is a version of its own.
    let rec = Draft::new(kinds::IDENTITY_MAP)
        .subject(SUBJECT_TYPE, SUBJECT_ID)
        .actor(Some(actor))
        .payload(json!({"map": map.to_json(), "digest": digest.to_string()}))
        .idempotency_key(format!("identity.map:after:{previous}:{digest}"))
        .build()
        .map_err(PolicyError::Refused)?;
    let appended = store.append(vec![rec])?;
    let a = appended
        .first()
        .ok_or_else(|| PolicyError::Refused("nothing was appended".into()))?;
    let index = a.index.0;
    let stored = store
        .record(LogIndex(index))?
        .ok_or_else(|| PolicyError::NotFound(format!("record {index}")))?;
    let version = version_of(store, &stored)?;
    Ok(if a.duplicate {
        Recorded::Keep(version)
    } else {
        Recorded::Append(version)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_does_not_depend_on_the_order_the_map_was_written_in() {
        let a = IdentityMap::from_json(
            r#"{"people": [{"id": "bob", "identities": ["github:b", "email:b@x.io"]}, {"id": "al", "identities": ["github:a"]}]}"#,
        )
        .unwrap();
        let b = IdentityMap::from_json(
            r#"{"people": [{"id": "al", "identities": ["github:a"]}, {"id": "bob", "identities": ["email:B@x.io", "github:b"]}]}"#,
        )
        .unwrap();
        assert_eq!(digest(&a), digest(&b));
        let c = IdentityMap::from_json(r#"{"people": [{"id": "al", "identities": ["github:b"]}]}"#)
            .unwrap();
        assert_ne!(digest(&a), digest(&c));
    }
}
