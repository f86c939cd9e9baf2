//! The linked graph of a subject: everything connected to it through records, transitively, in
//! both directions (records about it, records linking to it, and onward), over any [`Store`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use trailmark_model::{LogIndex, Rel, Subject};

use crate::{Store, StoreError, StoredRecord};

/// Subject types shown in a graph but never walked through: they connect almost everything
/// (every commit is in its repo, every record of one file shares the input), so following them
/// would turn "what is linked to PAY-142" into "the whole log".
pub const HUB_TYPES: &[&str] = &["repo", "input", "environment", "person", "org"];

/// A relation stated by a record.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Edge {
    pub from: Subject,
    pub rel: Rel,
    pub to: Subject,
    pub record: LogIndex,
}

/// A connected neighbourhood of the log.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub subjects: BTreeSet<Subject>,
    pub records: BTreeMap<LogIndex, StoredRecord>,
    pub edges: BTreeSet<Edge>,
    /// True when `max_records` stopped the walk before it was complete.
    pub truncated: bool,
}

/// Walks from `start` up to `max_depth` subject hops, collecting at most `max_records` records.
pub fn linked(
    store: &dyn Store,
    start: &Subject,
    max_depth: u32,
    max_records: usize,
) -> Result<Graph, StoreError> {
    let mut g = Graph::default();
    let mut queue = VecDeque::from([(start.clone(), 0u32)]);
    g.subjects.insert(start.clone());
    while let Some((subject, depth)) = queue.pop_front() {
        for (index, _) in store.mentions(&subject)? {
            if g.records.contains_key(&index) {
                continue;
            }
            if g.records.len() >= max_records {
                g.truncated = true;
                return Ok(g);
            }
            let Some(r) = store.record(index)? else {
                continue;
            };
            let mut neighbours: Vec<Subject> = r.record.subjects.clone();
            neighbours.extend(r.record.links.iter().map(|l| l.to.clone()));
            for from in &r.record.subjects {
                for l in &r.record.links {
                    g.edges.insert(Edge {
                        from: from.clone(),
                        rel: l.rel.clone(),
                        to: l.to.clone(),
                        record: index,
                    });
                }
            }
            for n in neighbours {
                if g.subjects.insert(n.clone())
                    && depth < max_depth
                    && !HUB_TYPES.contains(&n.ty.as_str())
                {
                    queue.push_back((n, depth + 1));
                }
            }
            g.records.insert(index, r);
        }
    }
    Ok(g)
}
