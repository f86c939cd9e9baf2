//! Reading governance state from the log: a release's links, the evidence about what it
//! includes, approvals, exceptions and branch protection, assembled into a [`GateInput`].
//! Everything is read from records, so the same state can be rebuilt by anyone with the log.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::Value;
use trailmark_ingest::identity::IdentityMap;
use trailmark_model::Rel;
use trailmark_model::{Digest, LogIndex, Payload, Record, Subject, Timestamp};
use trailmark_store::{Query, Store, StoreError, StoredRecord};

use crate::error::PolicyError;
use crate::input::*;
use crate::kinds;
use crate::policy::Severity;

/// What governance reads from: a store, or (offline) the records of a dossier.
///
/// Records come back shared (`Arc`): an in-memory source hands out its own records without
/// copying them, and the reader caches them as they are.
pub trait Source {
    fn query(&self, q: &Query) -> Result<Vec<Arc<StoredRecord>>, StoreError>;
    fn mentions(&self, s: &Subject) -> Result<Vec<(LogIndex, Option<Rel>)>, StoreError>;
    fn record(&self, i: LogIndex) -> Result<Option<Arc<StoredRecord>>, StoreError>;
    fn blob(&self, d: &Digest) -> Result<Option<Vec<u8>>, StoreError>;

    /// The records naming `s` as a subject or link target, in log order, each once: what
    /// [`Reader::mentioning`] needs of [`Source::mentions`], which a source may answer without
    /// building the relations.
    fn mentioned_in(&self, s: &Subject) -> Result<Vec<u64>, StoreError> {
        let mut idx: Vec<u64> = self.mentions(s)?.into_iter().map(|(i, _)| i.0).collect();
        idx.sort_unstable();
        idx.dedup();
        Ok(idx)
    }

    /// Every record `q` matches after `q.after`, in log order, read a page of [`PAGE`] at a
    /// time (`q.limit` is not a limit here).
    fn query_all(&self, q: &Query) -> Result<Vec<Arc<StoredRecord>>, StoreError> {
        let mut q = q.clone();
        q.limit = PAGE;
        let mut out = Vec::new();
        loop {
            let page = self.query(&q)?;
            let full = page.len() >= PAGE as usize;
            q.after = page.last().map(|r| r.record.index);
            out.extend(page);
            if !full {
                return Ok(out);
            }
        }
    }
}

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Records per query when reading everything a query matches.
const PAGE: u32 = 1000;

impl Source for dyn Store + '_ {
    fn query(&self, q: &Query) -> Result<Vec<Arc<StoredRecord>>, StoreError> {
        Ok(Store::query(self, q)?.into_iter().map(Arc::new).collect())
    }
    fn mentions(&self, s: &Subject) -> Result<Vec<(LogIndex, Option<Rel>)>, StoreError> {
        Store::mentions(self, s)
    }
    fn record(&self, i: LogIndex) -> Result<Option<Arc<StoredRecord>>, StoreError> {
        Ok(Store::record(self, i)?.map(Arc::new))
    }
    fn blob(&self, d: &Digest) -> Result<Option<Vec<u8>>, StoreError> {
        Store::blob(self, d)
    }
}

/// Reads records about subjects, caching each record once. Remembers every record and blob it
/// read, so what a view was built from can be exported and the view rebuilt from it alone.
pub struct Reader<'a, S: Source + ?Sized = dyn Store + 'a> {
    pub store: &'a S,
    pub people: &'a IdentityMap,
    // Shared, not cloned: a release's link record names every commit and would otherwise be
    // copied once per commit.
    // Hashed, not ordered: looked up for every record read (`touched` sorts). The maps use
    // foldhash (seeded per process), not SipHash: a 10,000-record view spent more time hashing
    // keys with SipHash than looking them up.
    cache: FastMap<u64, Arc<StoredRecord>>,
    blobs: std::cell::RefCell<BTreeSet<Digest>>,
    mentions: FastMap<Subject, Arc<[u64]>>,
    /// raw identity → person, as resolved by `people` (a release's commits name the same few
    /// authors thousands of times).
    persons: std::cell::RefCell<FastMap<String, String>>,
}

impl<S: Source + ?Sized> std::fmt::Debug for Reader<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("cached", &self.cache.len())
            .finish()
    }
}

pub fn subject(ty: &str, id: &str) -> Result<Subject, PolicyError> {
    Subject::parse(ty, id).map_err(|e| PolicyError::Refused(format!("{ty} {id:?}: {e}")))
}

impl<'a, S: Source + ?Sized> Reader<'a, S> {
    pub fn new(store: &'a S, people: &'a IdentityMap) -> Reader<'a, S> {
        Reader {
            store,
            people,
            cache: FastMap::default(),
            blobs: std::cell::RefCell::new(BTreeSet::new()),
            mentions: FastMap::default(),
            persons: std::cell::RefCell::new(FastMap::default()),
        }
    }

    /// Every record index and blob digest read so far.
    pub fn touched(&self) -> (Vec<u64>, Vec<Digest>) {
        let mut records: Vec<u64> = self.cache.keys().copied().collect();
        records.sort_unstable();
        (records, self.blobs.borrow().iter().copied().collect())
    }

    /// Every record read, by index, and every blob digest read: what [`Reader::touched`]
    /// names, with the records themselves, so that a caller exporting them need not read
    /// them again.
    pub fn into_read(self) -> (BTreeMap<u64, Arc<StoredRecord>>, Vec<Digest>) {
        (
            self.cache.into_iter().collect(),
            self.blobs.into_inner().into_iter().collect(),
        )
    }

    /// Every record with `subject` among its subjects (optionally of one kind), in log order.
    pub fn about(
        &mut self,
        s: &Subject,
        kind: Option<&str>,
    ) -> Result<Vec<Arc<StoredRecord>>, PolicyError> {
        let kind = match kind {
            Some(k) => Some(
                trailmark_model::Kind::parse(k)
                    .map_err(|e| PolicyError::Refused(format!("kind {k:?}: {e}")))?,
            ),
            None => None,
        };
        let all = self.store.query_all(&Query {
            kind,
            subject: Some(s.clone()),
            ..Query::default()
        })?;
        Ok(all
            .into_iter()
            .map(|r| self.cache.entry(r.record.index.0).or_insert(r).clone())
            .collect())
    }

    /// Every record naming `subject`, as a subject or as a link target.
    pub fn mentioning(&mut self, s: &Subject) -> Result<Vec<Arc<StoredRecord>>, PolicyError> {
        // One reader is one consistent view: a subject's mentions are read once.
        let idx = match self.mentions.get(s) {
            Some(idx) => idx.clone(),
            None => {
                let idx: Arc<[u64]> = self.store.mentioned_in(s)?.into();
                self.mentions.insert(s.clone(), idx.clone());
                idx
            }
        };
        let mut out = Vec::with_capacity(idx.len());
        for i in idx.iter() {
            out.push(self.record(*i)?);
        }
        Ok(out)
    }

    pub fn record(&mut self, i: u64) -> Result<Arc<StoredRecord>, PolicyError> {
        if let Some(r) = self.cache.get(&i) {
            return Ok(r.clone());
        }
        let r = self
            .store
            .record(LogIndex(i))?
            .ok_or_else(|| PolicyError::NotFound(format!("record {i}")))?;
        self.cache.insert(i, r.clone());
        Ok(r)
    }

    /// A record's payload, fetched from its blob when large; an inline payload is borrowed, not
    /// copied.
    pub fn payload<'r>(&self, r: &'r Record) -> Result<Cow<'r, Value>, PolicyError> {
        match &r.payload {
            Payload::Inline(v) => Ok(Cow::Borrowed(v)),
            Payload::Blob { digest, .. } => {
                let bytes = self
                    .store
                    .blob(digest)?
                    .ok_or_else(|| PolicyError::Stored {
                        index: r.index.0,
                        message: format!("payload blob {digest} is missing"),
                    })?;
                serde_json::from_slice(&bytes)
                    .map(Cow::Owned)
                    .map_err(|e| PolicyError::Stored {
                        index: r.index.0,
                        message: format!("payload blob: {e}"),
                    })
            }
        }
    }

    /// The person behind a raw identity (`github:x`, `email:y`, `person:z`).
    pub fn person(&self, raw: &str) -> String {
        if let Some(p) = self.persons.borrow().get(raw) {
            return p.clone();
        }
        let person = self
            .people
            .resolve(raw)
            .map_or_else(|| raw.to_owned(), |r| r.person);
        self.persons
            .borrow_mut()
            .insert(raw.to_owned(), person.clone());
        person
    }
}

fn text(v: &Value, ptr: &str) -> Option<String> {
    trailmark_model::json_at(v, ptr)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn int(v: &Value, ptr: &str) -> i64 {
    trailmark_model::json_at(v, ptr)
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

fn targets<'r>(r: &'r Record, ty: &'r str) -> impl Iterator<Item = (&'r str, &'r str)> + 'r {
    r.links
        .iter()
        .filter(move |l| l.to.ty.as_str() == ty)
        .map(|l| (l.rel.as_str(), l.to.id.as_str()))
}

fn subject_ids<'r>(r: &'r Record, ty: &'r str) -> impl Iterator<Item = &'r str> + 'r {
    r.subjects
        .iter()
        .filter(move |s| s.ty.as_str() == ty)
        .map(|s| s.id.as_str())
}

/// A release as recorded: its creation and its links.
#[derive(Clone, Debug)]
pub struct Release {
    pub id: String,
    pub name: String,
    pub version: String,
    pub project: String,
    pub environments: Vec<String>,
    pub description: Option<String>,
    pub requested_by: Option<String>,
    pub created: Record,
    /// `(type, id, linking record, recorded_at)` in link order, first link wins.
    pub links: Vec<(String, String, u64, Timestamp)>,
    pub documents: Vec<(DocumentRef, u64, Timestamp)>,
    /// Every record filed under the release, in log order.
    pub records: Vec<Arc<StoredRecord>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentRef {
    pub doc_type: String,
    pub id: String,
    pub version: Option<String>,
}

impl Release {
    pub fn linked(&self, ty: &str) -> Vec<&str> {
        self.links
            .iter()
            .filter(|l| l.0 == ty)
            .map(|l| l.1.as_str())
            .collect()
    }

    /// Index of the first gate decision: links after it are "late".
    pub fn first_gate(&self) -> Option<u64> {
        self.records
            .iter()
            .find(|r| r.record.kind.as_str() == kinds::GATE_DECIDED)
            .map(|r| r.record.index.0)
    }
}

/// Splits `org/project/name@version`.
pub fn parse_release_id(id: &str) -> Result<(String, String, String), PolicyError> {
    let bad = || {
        PolicyError::Refused(format!(
            "release id {id:?} must be ORG/PROJECT/NAME@VERSION"
        ))
    };
    let (path, version) = id.rsplit_once('@').ok_or_else(bad)?;
    let (project, name) = path.rsplit_once('/').ok_or_else(bad)?;
    if version.is_empty() || name.is_empty() || project.split('/').count() != 2 {
        return Err(bad());
    }
    Ok((project.to_owned(), name.to_owned(), version.to_owned()))
}

impl<S: Source + ?Sized> Reader<'_, S> {
    pub fn release(&mut self, id: &str) -> Result<Release, PolicyError> {
        parse_release_id(id)?;
        let s = subject("release", id)?;
        let records = self.about(&s, None)?;
        let created = records
            .iter()
            .find(|r| r.record.kind.as_str() == kinds::RELEASE_CREATED)
            .ok_or_else(|| PolicyError::NotFound(format!("release {id}")))?
            .record
            .clone();
        let p = self.payload(&created)?;
        let mut links: Vec<(String, String, u64, Timestamp)> = Vec::new();
        let mut documents = Vec::new();
        // First link wins; a set keeps this linear in the number of links.
        let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
        for r in records
            .iter()
            .filter(|r| r.record.kind.as_str() == kinds::RELEASE_LINKED)
        {
            let rec = &r.record;
            for l in &rec.links {
                let ty = l.to.ty.as_str();
                if ty == "document" {
                    continue;
                }
                if seen.insert((ty.to_owned(), l.to.id.as_str().to_owned())) {
                    links.push((
                        ty.to_owned(),
                        l.to.id.as_str().to_owned(),
                        rec.index.0,
                        rec.recorded_at,
                    ));
                }
            }
            let pl = self.payload(rec)?;
            for d in pl
                .get("documents")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let doc = DocumentRef {
                    doc_type: text(d, "/type").unwrap_or_default(),
                    id: text(d, "/id").unwrap_or_default(),
                    version: text(d, "/version"),
                };
                if !documents
                    .iter()
                    .any(|(x, _, _): &(DocumentRef, u64, Timestamp)| x == &doc)
                {
                    documents.push((doc, rec.index.0, rec.recorded_at));
                }
            }
        }
        Ok(Release {
            id: id.to_owned(),
            name: text(&p, "/name").unwrap_or_default(),
            version: text(&p, "/version").unwrap_or_default(),
            project: text(&p, "/project").unwrap_or_default(),
            environments: p
                .get("environments")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|e| e.as_str().map(str::to_owned))
                .collect(),
            description: text(&p, "/description"),
            requested_by: created.actor.as_deref().map(|a| self.person(a)),
            created,
            links,
            documents,
            records,
        })
    }

    /// Decisions recorded on a subject (approvals of a release, exception, ...).
    pub fn decisions(&mut self, s: &Subject) -> Result<Vec<ApprovalDecision>, PolicyError> {
        let mut out = Vec::new();
        for r in self.about(s, Some(kinds::APPROVAL_DECIDED))? {
            let rec = &r.record;
            let p = self.payload(rec)?;
            out.push(ApprovalDecision {
                record: rec.index.0,
                person: self.person(rec.actor.as_deref().unwrap_or("unknown")),
                decision: text(&p, "/decision").unwrap_or_default(),
                evidence_digest: text(&p, "/evidence_digest").unwrap_or_default(),
                recorded_at: rec.recorded_at.to_string(),
                roles: p
                    .get("roles")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect(),
                comment: text(&p, "/comment"),
            });
        }
        Ok(out)
    }

    /// Every exception raised in a project.
    pub fn exceptions(
        &mut self,
        project: &str,
        retro_within: i64,
    ) -> Result<Vec<ExceptionInfo>, PolicyError> {
        let mut out = Vec::new();
        for r in self.about(&subject("project", project)?, Some(kinds::EXCEPTION_RAISED))? {
            let rec = &r.record;
            let p = self.payload(rec)?;
            let Some(id) = subject_ids(rec, "exception").next().map(str::to_owned) else {
                continue;
            };
            let es = subject("exception", &id)?;
            let approvals = self.decisions(&es)?;
            let closed = !self.about(&es, Some(kinds::EXCEPTION_CLOSED))?.is_empty();
            let created = rec.recorded_at;
            let due =
                jiff::Timestamp::from_microsecond(created.as_micros().saturating_add(retro_within))
                    .map(|t| Timestamp(t).to_string())
                    .unwrap_or_default();
            out.push(ExceptionInfo {
                id,
                record: rec.index.0,
                requested_by: rec.actor.as_deref().map(|a| self.person(a)),
                reason: text(&p, "/reason").unwrap_or_default(),
                environments: p
                    .get("environments")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect(),
                release: text(&p, "/release"),
                created_at: created.to_string(),
                expires_at: text(&p, "/expires_at").unwrap_or_default(),
                retro_due: due,
                approvals,
                closed,
            });
        }
        Ok(out)
    }
}

/// What was gathered about a release's content, with the records it came from.
#[derive(Debug, Default)]
struct Evidence {
    commits: Vec<CommitInfo>,
    prs: BTreeMap<String, PrInfo>,
    tests: Vec<TestInfo>,
    scans: Vec<ScanInfo>,
    sboms: BTreeSet<u64>,
    artifacts: Vec<ArtifactInfo>,
    repos: BTreeSet<String>,
    tickets: BTreeSet<String>,
    pr_tickets: BTreeMap<String, BTreeSet<String>>,
    /// Leaf hashes of every record that contributed: the content an approval is of.
    used: BTreeSet<u64>,
}

fn severity(f: &Value) -> Severity {
    if let Some(s) = f.get("security_severity").and_then(|s| match s {
        Value::String(s) => s.parse::<f64>().ok(),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }) {
        return match s {
            x if x >= 9.0 => Severity::Critical,
            x if x >= 7.0 => Severity::High,
            x if x >= 4.0 => Severity::Medium,
            x if x > 0.0 => Severity::Low,
            _ => Severity::None,
        };
    }
    match f.get("level").and_then(Value::as_str).unwrap_or("warning") {
        "error" => Severity::High,
        "warning" => Severity::Medium,
        "note" => Severity::Low,
        _ => Severity::None,
    }
}

impl<S: Source + ?Sized> Reader<'_, S> {
    fn commit_evidence(
        &mut self,
        sha: &str,
        ev: &mut Evidence,
        linked: (u64, Timestamp),
        first_gate: Option<u64>,
    ) -> Result<(), PolicyError> {
        let cs = subject("commit", sha)?;
        let mut info = CommitInfo {
            sha: sha.to_owned(),
            authors: Vec::new(),
            committers: Vec::new(),
            tickets: Vec::new(),
            prs: Vec::new(),
            linked_at: linked.1.to_string(),
            late: first_gate.is_some_and(|g| linked.0 > g),
        };
        let mut tickets = BTreeSet::new();
        let mut prs = BTreeSet::new();
        for r in self.mentioning(&cs)? {
            let rec = &r.record;
            let kind = rec.kind.as_str();
            if kinds::is_governance(kind) {
                continue;
            }
            let about_commit = rec.subjects.contains(&cs);
            if about_commit {
                tickets.extend(targets(rec, "ticket").map(|(_, t)| t.to_owned()));
            } else if rec.subjects.iter().any(|s| s.ty.as_str() == "ticket") {
                tickets.extend(subject_ids(rec, "ticket").map(str::to_owned));
            }
            for (_, repo) in targets(rec, "repo").filter(|(rel, _)| *rel == "in_repo") {
                if (about_commit
                    || kind.ends_with(".pull_request")
                    || kind.ends_with(".merge_request"))
                    && !ev.repos.contains(repo)
                {
                    ev.repos.insert(repo.to_owned());
                }
            }
            match kind {
                "github.commit" | "gitlab.commit" | "git.commit" if about_commit => {
                    ev.used.insert(rec.index.0);
                    let p = self.payload(rec)?;
                    for (username, email, list) in [
                        ("/author/username", "/author/email", &mut info.authors),
                        (
                            "/committer/username",
                            "/committer/email",
                            &mut info.committers,
                        ),
                    ] {
                        let ids = [
                            text(&p, username).map(|u| {
                                if kind == "gitlab.commit" {
                                    format!("gitlab:{u}")
                                } else {
                                    format!("github:{u}")
                                }
                            }),
                            text(&p, email).map(|e| format!("email:{e}")),
                        ];
                        for raw in ids.into_iter().flatten() {
                            let who = self.person(&raw);
                            if !list.contains(&who) {
                                list.push(who);
                            }
                        }
                    }
                }
                k if k.ends_with(".pull_request")
                    || k.ends_with(".merge_request")
                    || k.ends_with(".pull_request_review")
                    || k.ends_with(".merge_request_approval") =>
                {
                    prs.extend(subject_ids(rec, "pr").map(str::to_owned));
                }
                "test.report" => {
                    ev.used.insert(rec.index.0);
                    let p = self.payload(rec)?;
                    let declared = int(&p, "/declared/tests");
                    // `/totals/…` as `int` reads it, with `totals` looked up once.
                    let totals = p.get("totals");
                    let total = |k: &str| {
                        totals
                            .and_then(|t| t.get(k))
                            .and_then(Value::as_i64)
                            .unwrap_or(0)
                    };
                    let listed = total("tests");
                    ev.tests.push(TestInfo {
                        record: rec.index.0,
                        subject: format!("commit:{sha}"),
                        name: text(&p, "/name").or_else(|| text(&p, "/file")),
                        tests: listed,
                        passed: total("passed"),
                        failures: total("failures"),
                        errors: total("errors"),
                        skipped: total("skipped"),
                        flaky: total("flaky"),
                        blocked: (declared - listed).max(0),
                    });
                }
                k if k.starts_with("scan.") => {
                    ev.used.insert(rec.index.0);
                    let p = self.payload(rec)?;
                    ev.scans
                        .push(scan_info(rec.index.0, &format!("commit:{sha}"), &p));
                }
                k if k.starts_with("sbom.") => {
                    ev.used.insert(rec.index.0);
                    ev.sboms.insert(rec.index.0);
                }
                _ => {}
            }
        }
        for pr in &prs {
            self.pr_evidence(pr, ev, &mut tickets)?;
        }
        info.tickets = tickets.iter().cloned().collect();
        info.prs = prs.into_iter().collect();
        ev.tickets.extend(tickets);
        ev.commits.push(info);
        Ok(())
    }

    fn pr_evidence(
        &mut self,
        id: &str,
        ev: &mut Evidence,
        tickets: &mut BTreeSet<String>,
    ) -> Result<(), PolicyError> {
        if let Some(known) = ev.pr_tickets.get(id) {
            // Already read for another commit; its tickets still count for this one.
            tickets.extend(known.iter().cloned());
            return Ok(());
        }
        let mut own = BTreeSet::new();
        let s = subject("pr", id)?;
        let mut info = PrInfo {
            id: id.to_owned(),
            author: None,
            head: None,
            reviews: Vec::new(),
        };
        for r in self.about(&s, None)? {
            let rec = &r.record;
            let kind = rec.kind.as_str();
            if kinds::is_governance(kind) {
                continue;
            }
            own.extend(targets(rec, "ticket").map(|(_, t)| t.to_owned()));
            let p = self.payload(rec)?;
            match kind {
                "github.pull_request" => {
                    ev.used.insert(rec.index.0);
                    if let Some(a) = text(&p, "/author") {
                        info.author = Some(self.person(&format!("github:{a}")));
                    }
                    if let Some(h) = text(&p, "/head/sha") {
                        info.head = Some(h);
                    }
                }
                "gitlab.merge_request" => {
                    ev.used.insert(rec.index.0);
                    if info.author.is_none() || text(&p, "/action").as_deref() == Some("open") {
                        info.author = rec.actor.as_deref().map(|a| self.person(a));
                    }
                    if let Some(h) = text(&p, "/last_commit") {
                        info.head = Some(h);
                    }
                }
                "github.pull_request_review" => {
                    ev.used.insert(rec.index.0);
                    info.reviews.push(Review {
                        reviewer: text(&p, "/reviewer")
                            .map(|u| self.person(&format!("github:{u}"))),
                        state: text(&p, "/state").unwrap_or_default().to_ascii_lowercase(),
                        commit: text(&p, "/commit_id"),
                        record: rec.index.0,
                    });
                }
                "gitlab.merge_request_approval" => {
                    ev.used.insert(rec.index.0);
                    let action = text(&p, "/action").unwrap_or_default();
                    info.reviews.push(Review {
                        reviewer: rec.actor.as_deref().map(|a| self.person(a)),
                        state: if action.starts_with("un") {
                            "dismissed".into()
                        } else {
                            "approved".into()
                        },
                        commit: text(&p, "/last_commit"),
                        record: rec.index.0,
                    });
                }
                _ => {}
            }
        }
        ev.prs.insert(id.to_owned(), info);
        tickets.extend(own.iter().cloned());
        ev.pr_tickets.insert(id.to_owned(), own);
        Ok(())
    }

    fn artifact_evidence(&mut self, digest: &str, ev: &mut Evidence) -> Result<(), PolicyError> {
        let s = subject("artifact", digest)?;
        let mut info = ArtifactInfo {
            digest: digest.to_owned(),
            provenance: Vec::new(),
        };
        for r in self.mentioning(&s)? {
            let rec = &r.record;
            let kind = rec.kind.as_str();
            match kind {
                "attestation.slsa_provenance" | "attestation.intoto" => {
                    ev.used.insert(rec.index.0);
                    if kind == "attestation.slsa_provenance" {
                        info.provenance.push(rec.index.0);
                    }
                }
                k if k.starts_with("sbom.") => {
                    ev.used.insert(rec.index.0);
                    ev.sboms.insert(rec.index.0);
                }
                k if k.starts_with("scan.") => {
                    ev.used.insert(rec.index.0);
                    let p = self.payload(rec)?;
                    ev.scans
                        .push(scan_info(rec.index.0, &format!("artifact:{digest}"), &p));
                }
                _ => {}
            }
        }
        ev.artifacts.push(info);
        Ok(())
    }
}

fn scan_info(record: u64, subject: &str, p: &Value) -> ScanInfo {
    let findings = p
        .get("results")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|f| f.get("suppressed").and_then(Value::as_bool) != Some(true))
        .map(|f| Finding {
            rule: text(f, "/rule_id"),
            severity: severity(f),
            message: text(f, "/message"),
        })
        .collect();
    ScanInfo {
        record,
        subject: subject.to_owned(),
        tool: text(p, "/tool/name"),
        findings,
    }
}

/// The content an approval is of, and the input to every gate.
#[derive(Debug)]
pub struct Snapshot {
    pub release: Release,
    pub input: GateInput,
}

impl<S: Source + ?Sized> Reader<'_, S> {
    /// Assembles the gate input for `release` deploying to `env` at `now`.
    pub fn snapshot(
        &mut self,
        release_id: &str,
        env: &str,
        deployer: Option<&str>,
        now: Timestamp,
        retro_within_us: i64,
    ) -> Result<Snapshot, PolicyError> {
        let release = self.release(release_id)?;
        self.snapshot_of(release, env, deployer, now, retro_within_us)
    }

    /// [`Reader::snapshot`] of a release already read with [`Reader::release`] (by this
    /// reader), for a caller that needed the release to choose the environment.
    pub fn snapshot_of(
        &mut self,
        release: Release,
        env: &str,
        deployer: Option<&str>,
        now: Timestamp,
        retro_within_us: i64,
    ) -> Result<Snapshot, PolicyError> {
        let first_gate = release.first_gate();
        let mut ev = Evidence::default();
        let linked_at: BTreeMap<(&str, &str), (u64, Timestamp)> = release
            .links
            .iter()
            .map(|l| ((l.0.as_str(), l.1.as_str()), (l.2, l.3)))
            .collect();
        let link_of = |ty: &str, id: &str| {
            linked_at
                .get(&(ty, id))
                .copied()
                .unwrap_or((release.created.index.0, release.created.recorded_at))
        };
        for sha in release.linked("commit") {
            self.commit_evidence(sha, &mut ev, link_of("commit", sha), first_gate)?;
        }
        let mut extra_tickets = BTreeSet::new();
        for pr in release.linked("pr") {
            if !ev.prs.contains_key(pr) {
                self.pr_evidence(pr, &mut ev, &mut extra_tickets)?;
            }
        }
        for digest in release.linked("artifact") {
            self.artifact_evidence(digest, &mut ev)?;
        }
        ev.tickets.extend(extra_tickets);
        ev.tickets
            .extend(release.linked("ticket").into_iter().map(str::to_owned));
        let mut tickets = Vec::new();
        for key in &ev.tickets {
            let mut transitions = Vec::new();
            for r in self.about(&subject("ticket", key)?, Some("jira.transition"))? {
                let rec = &r.record;
                let p = self.payload(rec)?;
                transitions.push(Transition {
                    to: text(&p, "/to").unwrap_or_default(),
                    recorded_at: rec.recorded_at.to_string(),
                    by: rec.actor.as_deref().map(|a| self.person(a)),
                    record: rec.index.0,
                });
            }
            tickets.push(TicketInfo {
                key: key.clone(),
                transitions,
            });
        }
        let mut protection = Vec::new();
        for repo in &ev.repos {
            for r in self.about(&subject("repo", repo)?, Some("github.branch_protection"))? {
                let rec = &r.record;
                let p = self.payload(rec)?;
                protection.push(ProtectionEvent {
                    repo: repo.clone(),
                    action: text(&p, "/action").unwrap_or_default(),
                    recorded_at: rec.recorded_at.to_string(),
                    record: rec.index.0,
                });
            }
        }
        let documents = release
            .documents
            .iter()
            .map(|(d, idx, at)| DocumentInfo {
                doc_type: d.doc_type.clone(),
                id: d.id.clone(),
                version: d.version.clone(),
                linked_at: at.to_string(),
                late: first_gate.is_some_and(|g| *idx > g),
            })
            .collect();
        let digest = self.content_digest(&release, &ev)?;
        let rs = subject("release", &release.id)?;
        let decisions = self.decisions(&rs)?;
        let exceptions = self.exceptions(&release.project, retro_within_us)?;
        let identity_map = crate::people::in_force(self.store, self.people)?;
        let input = GateInput {
            identity_map,
            schema: SCHEMA.to_owned(),
            release: ReleaseInfo {
                id: release.id.clone(),
                name: release.name.clone(),
                version: release.version.clone(),
                project: release.project.clone(),
                environments: release.environments.clone(),
                requested_by: release.requested_by.clone(),
                created_at: release.created.recorded_at.to_string(),
                record: release.created.index.0,
            },
            environment: env.to_owned(),
            evaluated_at: now.to_string(),
            deployer: deployer.map(|d| self.person(d)),
            commits: ev.commits,
            tickets,
            prs: ev.prs.into_values().collect(),
            tests: ev.tests,
            scans: ev.scans,
            sboms: ev.sboms.into_iter().collect(),
            artifacts: ev.artifacts,
            documents,
            approval: ApprovalState {
                evidence_digest: digest.to_string(),
                requested_at: release.created.recorded_at.to_string(),
                decisions,
            },
            exceptions,
            branch_protection: protection,
            repos: ev.repos.into_iter().collect(),
        };
        Ok(Snapshot { release, input })
    }

    /// SHA-256 over the release's links and the leaf hashes of every evidence record about
    /// what it includes: approvals are of this, and lapse when it changes.
    fn content_digest(&mut self, release: &Release, ev: &Evidence) -> Result<Digest, PolicyError> {
        let mut leaves = Vec::with_capacity(ev.used.len());
        for i in &ev.used {
            leaves.push(self.record(*i)?.leaf_hash);
        }
        let mut links: Vec<String> = release
            .links
            .iter()
            .map(|l| format!("{}:{}", l.0, l.1))
            .collect();
        links.sort();
        let mut docs: Vec<String> = release
            .documents
            .iter()
            .map(|(d, _, _)| {
                format!(
                    "{}:{}@{}",
                    d.doc_type,
                    d.id,
                    d.version.as_deref().unwrap_or("")
                )
            })
            .collect();
        docs.sort();
        Ok(Digest::of(&content_bytes(
            &release.id,
            &links,
            &docs,
            &leaves,
        )))
    }
}

/// The canonical (RFC 8785) bytes of `{"release", "links", "documents", "evidence": [hex leaf
/// hash, …]}`, written directly: a release of thousands of records would otherwise build a
/// JSON value of as many hex strings only to canonicalize it. The unit test holds the two
/// byte-identical.
fn content_bytes(
    release: &str,
    links: &[String],
    docs: &[String],
    leaves: &[trailmark_log::Hash],
) -> Vec<u8> {
    use trailmark_model::write_canonical_string as string;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let list = |items: &[String], out: &mut Vec<u8>| {
        for (n, s) in items.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            string(s, out);
        }
    };
    let mut out = Vec::with_capacity(68 * leaves.len() + 32 * links.len() + 64);
    // Keys in JCS order (all ASCII: byte order).
    out.extend_from_slice(b"{\"documents\":[");
    list(docs, &mut out);
    out.extend_from_slice(b"],\"evidence\":[");
    for (n, h) in leaves.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.push(b'"');
        for b in h.as_bytes() {
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0x0f)]);
        }
        out.push(b'"');
    }
    out.extend_from_slice(b"],\"links\":[");
    list(links, &mut out);
    out.extend_from_slice(b"],\"release\":");
    string(release, &mut out);
    out.push(b'}');
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn content_bytes_are_the_canonical_json_of_the_content() {
        let leaves: Vec<trailmark_log::Hash> =
            (0u8..5).map(|i| trailmark_log::leaf_hash(&[i])).collect();
        let hex: Vec<String> = leaves.iter().map(|h| h.to_hex()).collect();
        for (release, links, docs) in [
            ("acme/pay/pay@1.0", vec![], vec![]),
            (
                "acme/pay/p\"ay\u{7f}@1",
                vec![
                    "commit:abc".to_owned(),
                    "ticket:PAY-1 \\ \u{1}\u{2028}é😀".to_owned(),
                ],
                vec!["adr:0001@".to_owned(), "runbook:r\"1@v2".to_owned()],
            ),
        ] {
            let reference = serde_json::json!({
                "release": release,
                "links": links,
                "documents": docs,
                "evidence": hex,
            });
            assert_eq!(
                String::from_utf8(super::content_bytes(release, &links, &docs, &leaves)).unwrap(),
                String::from_utf8(trailmark_model::canonical_bytes(&reference)).unwrap(),
            );
        }
    }
}
