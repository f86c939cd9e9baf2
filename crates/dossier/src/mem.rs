//! The records and blobs of a dossier as a read-only [`Source`]: governance's collector runs
//! over it offline exactly as it ran over the store, so the view can be rebuilt from the
//! dossier alone.

use std::collections::BTreeMap;

use trailmark_model::{Digest, LogIndex, Rel, Subject};
use trailmark_policy::collect::Source;
use trailmark_store::{Query, StoreError, StoredRecord};

#[derive(Debug, Default)]
pub struct MemSource {
    pub records: BTreeMap<u64, StoredRecord>,
    pub blobs: BTreeMap<Digest, Vec<u8>>,
}

impl Source for MemSource {
    fn query(&self, q: &Query) -> Result<Vec<StoredRecord>, StoreError> {
        let start = q.after.map_or(0, |a| a.0.saturating_add(1));
        Ok(self
            .records
            .range(start..)
            .map(|(_, r)| r)
            .filter(|r| q.kind.as_ref().is_none_or(|k| &r.record.kind == k))
            .filter(|r| {
                q.subject
                    .as_ref()
                    .is_none_or(|s| r.record.subjects.contains(s))
            })
            .filter(|r| q.since.is_none_or(|t| r.record.recorded_at >= t))
            .filter(|r| q.until.is_none_or(|t| r.record.recorded_at < t))
            .take(q.limit as usize)
            .cloned()
            .collect())
    }

    fn mentions(&self, s: &Subject) -> Result<Vec<(LogIndex, Option<Rel>)>, StoreError> {
        let mut out = Vec::new();
        for (i, r) in &self.records {
            if r.record.subjects.contains(s) {
                out.push((LogIndex(*i), None));
            }
            for l in r.record.links.iter().filter(|l| &l.to == s) {
                out.push((LogIndex(*i), Some(l.rel.clone())));
            }
        }
        Ok(out)
    }

    fn record(&self, i: LogIndex) -> Result<Option<StoredRecord>, StoreError> {
        Ok(self.records.get(&i.0).cloned())
    }

    fn blob(&self, d: &Digest) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.blobs.get(d).cloned())
    }
}
