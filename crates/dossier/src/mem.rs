//! The records and blobs of a dossier as a read-only [`Source`]: governance's collector runs
//! over it offline exactly as it ran over the store, so the view can be rebuilt from the
//! dossier alone. Indexed by subject and by link target, like the store.

use std::collections::BTreeMap;

use trailmark_model::{Digest, LogIndex, Rel, Subject};
use trailmark_policy::collect::Source;
use trailmark_store::{Query, StoreError, StoredRecord};

#[derive(Debug, Default)]
pub struct MemSource {
    records: BTreeMap<u64, StoredRecord>,
    blobs: BTreeMap<Digest, Vec<u8>>,
    /// subject → records naming it as a subject (`None`) or a link target (`Some(rel)`).
    mentions: BTreeMap<Subject, Vec<(u64, Option<Rel>)>>,
}

impl MemSource {
    pub fn insert(&mut self, r: StoredRecord) {
        let i = r.record.index.0;
        for s in &r.record.subjects {
            self.mentions.entry(s.clone()).or_default().push((i, None));
        }
        for l in &r.record.links {
            self.mentions
                .entry(l.to.clone())
                .or_default()
                .push((i, Some(l.rel.clone())));
        }
        self.records.insert(i, r);
    }

    pub fn insert_blob(&mut self, d: Digest, bytes: Vec<u8>) {
        self.blobs.insert(d, bytes);
    }

    pub fn records(&self) -> &BTreeMap<u64, StoredRecord> {
        &self.records
    }

    pub fn blobs(&self) -> &BTreeMap<Digest, Vec<u8>> {
        &self.blobs
    }

    /// Only the records recorded by `as_of`, with the same blobs.
    pub fn until(&self, as_of: trailmark_model::Timestamp) -> MemSource {
        let mut out = MemSource {
            blobs: self.blobs.clone(),
            ..MemSource::default()
        };
        for r in self
            .records
            .values()
            .filter(|r| r.record.recorded_at <= as_of)
        {
            out.insert(r.clone());
        }
        out
    }
}

impl Source for MemSource {
    fn query(&self, q: &Query) -> Result<Vec<StoredRecord>, StoreError> {
        let start = q.after.map_or(0, |a| a.0.saturating_add(1));
        let keep = |r: &&StoredRecord| {
            q.kind.as_ref().is_none_or(|k| &r.record.kind == k)
                && q.since.is_none_or(|t| r.record.recorded_at >= t)
                && q.until.is_none_or(|t| r.record.recorded_at < t)
        };
        Ok(match &q.subject {
            Some(s) => {
                let mut idx: Vec<u64> = self
                    .mentions
                    .get(s)
                    .into_iter()
                    .flatten()
                    .filter(|(i, rel)| rel.is_none() && *i >= start)
                    .map(|(i, _)| *i)
                    .collect();
                idx.sort_unstable();
                idx.dedup();
                idx.iter()
                    .filter_map(|i| self.records.get(i))
                    .filter(keep)
                    .take(q.limit as usize)
                    .cloned()
                    .collect()
            }
            None => self
                .records
                .range(start..)
                .map(|(_, r)| r)
                .filter(keep)
                .take(q.limit as usize)
                .cloned()
                .collect(),
        })
    }

    fn mentions(&self, s: &Subject) -> Result<Vec<(LogIndex, Option<Rel>)>, StoreError> {
        let mut out: Vec<(LogIndex, Option<Rel>)> = self
            .mentions
            .get(s)
            .into_iter()
            .flatten()
            .map(|(i, rel)| (LogIndex(*i), rel.clone()))
            .collect();
        out.sort_by_key(|(i, _)| i.0);
        Ok(out)
    }

    fn record(&self, i: LogIndex) -> Result<Option<StoredRecord>, StoreError> {
        Ok(self.records.get(&i.0).cloned())
    }

    fn blob(&self, d: &Digest) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.blobs.get(d).cloned())
    }
}
