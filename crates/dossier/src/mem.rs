//! The records and blobs of a dossier as a read-only [`Source`]: governance's collector runs
//! over it offline exactly as it ran over the store, so the view can be rebuilt from the
//! dossier alone. Indexed by subject and by link target, like the store.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use trailmark_model::{Digest, LogIndex, Rel, Subject, Timestamp};
use trailmark_policy::collect::Source;
use trailmark_store::{Query, StoreError, StoredRecord};

#[derive(Debug, Default)]
pub struct MemSource {
    /// Shared with every reader: a query hands out the record itself, never a copy.
    records: BTreeMap<u64, Arc<StoredRecord>>,
    blobs: BTreeMap<Digest, Vec<u8>>,
    /// subject → records naming it as a subject (`None`) or a link target (`Some(rel)`), in
    /// the order they were inserted.
    /// Hashed, not ordered: only ever looked up, once or more per record read. foldhash, not
    /// SipHash: a quarter of inserting 10,000 records was SipHash. Its seed is random per
    /// process, so a crafted dossier cannot aim for collisions.
    mentions: HashMap<Subject, Vec<(u64, Option<Rel>)>, foldhash::fast::RandomState>,
}

impl MemSource {
    pub fn insert(&mut self, r: Arc<StoredRecord>) {
        let i = r.record.index.0;
        // Most subjects are already known (every commit's records name the commit): look up
        // before cloning the key.
        let mut add = |s: &Subject, rel: Option<&Rel>| match self.mentions.get_mut(s) {
            Some(v) => v.push((i, rel.cloned())),
            None => {
                self.mentions.insert(s.clone(), vec![(i, rel.cloned())]);
            }
        };
        for s in &r.record.subjects {
            add(s, None);
        }
        for l in &r.record.links {
            add(&l.to, Some(&l.rel));
        }
        self.records.insert(i, r);
    }

    /// The parts, in order, as one source: as if each part's records were
    /// [`MemSource::insert`]ed after the previous part's (a later record with the same index
    /// replaces an earlier one; mentions keep their order). One pass, where appending part by
    /// part would move the growing maps again for every part.
    pub fn concat(parts: Vec<MemSource>) -> MemSource {
        let mut out = MemSource::default();
        for mut part in parts {
            out.records.extend(std::mem::take(&mut part.records));
            out.blobs.append(&mut part.blobs);
            for (s, mut m) in part.mentions {
                match out.mentions.entry(s) {
                    Entry::Vacant(e) => {
                        e.insert(m);
                    }
                    Entry::Occupied(mut e) => e.get_mut().append(&mut m),
                }
            }
        }
        out
    }

    pub fn insert_blob(&mut self, d: Digest, bytes: Vec<u8>) {
        self.blobs.insert(d, bytes);
    }

    pub fn records(&self) -> &BTreeMap<u64, Arc<StoredRecord>> {
        &self.records
    }

    pub fn blobs(&self) -> &BTreeMap<Digest, Vec<u8>> {
        &self.blobs
    }

    /// The same source seen as of `as_of`: only the records recorded by then exist (in
    /// queries, mentions and lookups), with every blob. A view, not a copy.
    pub fn until(&self, as_of: Timestamp) -> Until<'_> {
        Until { src: self, as_of }
    }

    /// Every record that passes `visible`, as a [`Source`] does it.
    fn query_where(
        &self,
        q: &Query,
        visible: impl Fn(&StoredRecord) -> bool,
    ) -> Vec<Arc<StoredRecord>> {
        let start = q.after.map_or(0, |a| a.0.saturating_add(1));
        let keep = |r: &&Arc<StoredRecord>| {
            visible(r)
                && q.kind.as_ref().is_none_or(|k| &r.record.kind == k)
                && q.since.is_none_or(|t| r.record.recorded_at >= t)
                && q.until.is_none_or(|t| r.record.recorded_at < t)
        };
        let limit = usize::try_from(q.limit).unwrap_or(usize::MAX);
        match &q.subject {
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
                    .take(limit)
                    .cloned()
                    .collect()
            }
            None => self
                .records
                .range(start..)
                .map(|(_, r)| r)
                .filter(keep)
                .take(limit)
                .cloned()
                .collect(),
        }
    }

    fn mentioned_where(&self, s: &Subject, visible: impl Fn(&StoredRecord) -> bool) -> Vec<u64> {
        let mut out: Vec<u64> = self
            .mentions
            .get(s)
            .into_iter()
            .flatten()
            .map(|(i, _)| *i)
            .filter(|i| self.records.get(i).is_some_and(|r| visible(r)))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    fn mentions_where(
        &self,
        s: &Subject,
        visible: impl Fn(&StoredRecord) -> bool,
    ) -> Vec<(LogIndex, Option<Rel>)> {
        let mut out: Vec<(LogIndex, Option<Rel>)> = self
            .mentions
            .get(s)
            .into_iter()
            .flatten()
            .filter(|(i, _)| self.records.get(i).is_some_and(|r| visible(r)))
            .map(|(i, rel)| (LogIndex(*i), rel.clone()))
            .collect();
        out.sort_by_key(|(i, _)| i.0);
        out
    }
}

impl Source for MemSource {
    fn query(&self, q: &Query) -> Result<Vec<Arc<StoredRecord>>, StoreError> {
        Ok(self.query_where(q, |_| true))
    }

    fn mentions(&self, s: &Subject) -> Result<Vec<(LogIndex, Option<Rel>)>, StoreError> {
        Ok(self.mentions_where(s, |_| true))
    }

    fn mentioned_in(&self, s: &Subject) -> Result<Vec<u64>, StoreError> {
        Ok(self.mentioned_where(s, |_| true))
    }

    fn record(&self, i: LogIndex) -> Result<Option<Arc<StoredRecord>>, StoreError> {
        Ok(self.records.get(&i.0).cloned())
    }

    fn blob(&self, d: &Digest) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.blobs.get(d).cloned())
    }
}

/// A [`MemSource`] as of an instant: records recorded after it do not exist.
#[derive(Debug, Clone, Copy)]
pub struct Until<'a> {
    src: &'a MemSource,
    as_of: Timestamp,
}

impl Until<'_> {
    fn visible(&self, r: &StoredRecord) -> bool {
        r.record.recorded_at <= self.as_of
    }
}

impl Source for Until<'_> {
    fn query(&self, q: &Query) -> Result<Vec<Arc<StoredRecord>>, StoreError> {
        Ok(self.src.query_where(q, |r| self.visible(r)))
    }

    fn mentions(&self, s: &Subject) -> Result<Vec<(LogIndex, Option<Rel>)>, StoreError> {
        Ok(self.src.mentions_where(s, |r| self.visible(r)))
    }

    fn mentioned_in(&self, s: &Subject) -> Result<Vec<u64>, StoreError> {
        Ok(self.src.mentioned_where(s, |r| self.visible(r)))
    }

    fn record(&self, i: LogIndex) -> Result<Option<Arc<StoredRecord>>, StoreError> {
        Ok(self
            .src
            .records
            .get(&i.0)
            .filter(|r| self.visible(r))
            .cloned())
    }

    fn blob(&self, d: &Digest) -> Result<Option<Vec<u8>>, StoreError> {
        self.src.blob(d)
    }
}
