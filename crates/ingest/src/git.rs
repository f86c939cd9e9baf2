//! Git history import: every commit reachable from the local branches (and HEAD) becomes a
//! `git.commit` record, oldest first, with its parents, author and committer, and links to the
//! tickets named in its message and — for branch tips — in its branch names.
//!
//! Incremental by construction: each record's idempotency key is `git:<sha>`, so importing again
//! appends only commits not seen before; `--since REV` skips walking what is already known.

use std::path::Path;

use serde_json::json;
use trailmark_model::NewRecord;

use crate::{Draft, Skipped, TicketPattern};

/// Messages longer than this are cut in the payload (the commit itself stays in git).
const MAX_MESSAGE: usize = 8 * 1024;

/// Why a repository could not be imported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GitError {
    #[error("{path}: not a git repository ({message})")]
    NotARepository { path: String, message: String },
    #[error("--since {rev:?} does not name a commit: {message}")]
    BadRevision { rev: String, message: String },
    #[error("the repository has no commits (no HEAD and no branches)")]
    Empty,
    #[error("reading the repository failed: {0}")]
    Read(String),
}

fn read_err(e: impl std::fmt::Display) -> GitError {
    GitError::Read(e.to_string())
}

/// The result of walking a repository.
#[derive(Debug)]
pub struct GitImport {
    /// `host/owner/name` from `remote.origin.url`, or `local/<directory>`.
    pub repo: String,
    /// One record per commit, oldest first.
    pub records: Vec<NewRecord>,
    pub skipped: Vec<Skipped>,
}

/// Normalizes a remote URL to `host/owner/name` (`git@github.com:o/r.git` → `github.com/o/r`).
pub fn repo_id(url: &str) -> Option<String> {
    let u = url.trim().trim_end_matches('/').trim_end_matches(".git");
    let rest = if let Some((_, rest)) = u.split_once("://") {
        // Drop credentials: they must never reach the log.
        rest.rsplit_once('@').map_or(rest, |(_, r)| r).to_owned()
    } else if let Some((userhost, path)) = u.split_once(':') {
        let host = userhost.rsplit_once('@').map_or(userhost, |(_, h)| h);
        format!("{host}/{path}")
    } else {
        return None;
    };
    let rest = rest.split_once(':').map_or(rest.clone(), |(h, p)| {
        // host:port/path → host/path
        match p.split_once('/') {
            Some((port, path)) if port.chars().all(|c| c.is_ascii_digit()) => format!("{h}/{path}"),
            _ => rest.clone(),
        }
    });
    (!rest.is_empty()).then_some(rest)
}

/// The instant in UTC (the author's offset is kept separately in the payload).
fn rfc3339(t: gix::date::Time) -> Option<String> {
    Some(jiff::Timestamp::from_second(t.seconds).ok()?.to_string())
}

/// The commits in `from..to` (reachable from `to`, not from `from`), newest first: what a
/// release made between two tags contains.
pub fn range(path: &Path, from: &str, to: &str) -> Result<Vec<String>, GitError> {
    let repo = gix::open(path).map_err(|e| GitError::NotARepository {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let rev = |r: &str| {
        repo.rev_parse_single(r)
            .map_err(|e| GitError::BadRevision {
                rev: r.to_owned(),
                message: e.to_string(),
            })
            .map(|id| id.detach())
    };
    let (from, to) = (rev(from)?, rev(to)?);
    let mut out = Vec::new();
    for info in repo
        .rev_walk([to])
        .with_hidden([from])
        .all()
        .map_err(read_err)?
    {
        out.push(info.map_err(read_err)?.id.to_string());
    }
    Ok(out)
}

/// Walks `path`'s history. `progress(n)` is called with the number of commits read so far.
pub fn import(
    path: &Path,
    since: Option<&str>,
    tickets: &TicketPattern,
    progress: &mut dyn FnMut(usize),
) -> Result<GitImport, GitError> {
    let repo = gix::open(path).map_err(|e| GitError::NotARepository {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let repo_name = repo
        .config_snapshot()
        .string("remote.origin.url")
        .and_then(|u| repo_id(&u.to_string()))
        .unwrap_or_else(|| {
            let dir = std::fs::canonicalize(path).ok();
            let name = dir
                .as_deref()
                .and_then(Path::file_name)
                .map_or("repository".into(), |n| n.to_string_lossy().into_owned());
            format!("local/{name}")
        });

    // Start from every local branch and HEAD; remember which branches point where.
    let mut tips: Vec<gix::ObjectId> = Vec::new();
    let mut branch_names: std::collections::HashMap<gix::ObjectId, Vec<String>> =
        Default::default();
    let refs = repo.references().map_err(read_err)?;
    for r in refs.local_branches().map_err(read_err)? {
        let mut r = r.map_err(read_err)?;
        let name = r.name().shorten().to_string();
        if let Ok(id) = r.peel_to_id() {
            let id = id.detach();
            tips.push(id);
            branch_names.entry(id).or_default().push(name);
        }
    }
    if let Ok(head) = repo.head_id() {
        tips.push(head.detach());
    }
    if tips.is_empty() {
        return Err(GitError::Empty);
    }
    let mut walk = repo.rev_walk(tips);
    if let Some(rev) = since {
        let hidden = repo
            .rev_parse_single(rev)
            .map_err(|e| GitError::BadRevision {
                rev: rev.to_owned(),
                message: e.to_string(),
            })?
            .detach();
        walk = walk.with_hidden([hidden]);
    }

    // Two stages on two threads: this one walks and decompresses commits (zlib is a fifth of
    // the work), a scoped worker turns them into validated records.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<RawCommit>>(4);
    let built = std::thread::scope(|scope| {
        let worker = scope.spawn(|| {
            let mut records = Vec::new();
            let mut graph: Vec<(String, Vec<String>)> = Vec::new();
            let mut skipped = Vec::new();
            for chunk in rx {
                for c in chunk {
                    let sha = c.sha.clone();
                    let parents = c.parents.clone();
                    match c.into_record(&repo_name, tickets) {
                        Ok(r) => {
                            graph.push((sha, parents));
                            records.push(r);
                        }
                        Err(e) => skipped.push(Skipped {
                            what: format!("commit {sha}"),
                            reason: e,
                        }),
                    }
                }
            }
            (records, graph, skipped)
        });
        let walked = (|| -> Result<(), GitError> {
            let mut chunk = Vec::with_capacity(1024);
            let mut n = 0usize;
            for info in walk.all().map_err(read_err)? {
                let info = info.map_err(read_err)?;
                let commit = info.object().map_err(read_err)?;
                let decoded = commit.decode().map_err(read_err)?;
                let author = decoded.author().map_err(read_err)?;
                let committer = decoded.committer().map_err(read_err)?;
                chunk.push(RawCommit {
                    sha: info.id.to_string(),
                    tree: decoded.tree().to_string(),
                    parents: decoded.parents().map(|p| p.to_string()).collect(),
                    author_name: author.name.to_string(),
                    author_email: author.email.to_string(),
                    author_time: author.time().ok(),
                    committer_name: committer.name.to_string(),
                    committer_email: committer.email.to_string(),
                    committer_time: committer.time().ok(),
                    message: decoded.message.to_string(),
                    branches: branch_names.get(&info.id).cloned().unwrap_or_default(),
                });
                n += 1;
                if chunk.len() == 1024 {
                    progress(n);
                    if tx
                        .send(std::mem::replace(&mut chunk, Vec::with_capacity(1024)))
                        .is_err()
                    {
                        break;
                    }
                }
            }
            if !chunk.is_empty() {
                let _ = tx.send(chunk);
            }
            progress(n);
            Ok(())
        })();
        drop(tx);
        let built = worker
            .join()
            .map_err(|_| GitError::Read("the record builder panicked".into()));
        walked.and(built)
    })?;
    let (records, graph, skipped) = built;
    let records = parents_first(records, &graph);
    Ok(GitImport {
        repo: repo_name,
        records,
        skipped,
    })
}

/// A decoded commit, owned, on its way to becoming a record.
struct RawCommit {
    sha: String,
    tree: String,
    parents: Vec<String>,
    author_name: String,
    author_email: String,
    author_time: Option<gix::date::Time>,
    committer_name: String,
    committer_email: String,
    committer_time: Option<gix::date::Time>,
    message: String,
    branches: Vec<String>,
}

impl RawCommit {
    fn into_record(self, repo: &str, tickets: &TicketPattern) -> Result<NewRecord, String> {
        let mut draft = Draft::new("git.commit")
            .subject("commit", &self.sha)
            .link("in_repo", "repo", repo)
            .actor(Some(format!("email:{}", self.author_email)))
            .occurred_at(self.committer_time.and_then(rfc3339))
            .idempotency_key(format!("git:{}", self.sha));
        for p in &self.parents {
            draft = draft.link("parent", "commit", p);
        }
        for t in tickets.find(&self.message) {
            draft = draft.link("references", "ticket", t);
        }
        for b in &self.branches {
            for t in tickets.find(b) {
                draft = draft.link("references", "ticket", t);
            }
        }
        let mut cut = self.message.len().min(MAX_MESSAGE);
        while !self.message.is_char_boundary(cut) {
            cut -= 1;
        }
        draft
            .payload(json!({
                "repo": repo,
                "tree": self.tree,
                "merge": self.parents.len() > 1,
                "parents": self.parents,
                "author": {
                    "name": self.author_name,
                    "email": self.author_email,
                    "time": self.author_time.and_then(rfc3339),
                    "utc_offset_seconds": self.author_time.map(|t| t.offset),
                },
                "committer": {
                    "name": self.committer_name,
                    "email": self.committer_email,
                    "time": self.committer_time.and_then(rfc3339),
                },
                "message": &self.message[..cut],
                "message_truncated": cut < self.message.len(),
                "branches": self.branches,
            }))
            .build()
    }
}

/// Orders records so every commit comes after its parents (the walk yields newest first, and
/// commit times cannot be trusted to order history). Iterative DFS post-order: no recursion
/// depth limit on long histories.
fn parents_first(records: Vec<NewRecord>, graph: &[(String, Vec<String>)]) -> Vec<NewRecord> {
    let position: std::collections::HashMap<&str, usize> = graph
        .iter()
        .enumerate()
        .map(|(i, (sha, _))| (sha.as_str(), i))
        .collect();
    let mut state = vec![0u8; graph.len()]; // 0 new, 1 open, 2 done
    let mut order = Vec::with_capacity(graph.len());
    // Start from the oldest end of the walk so unrelated roots keep walk order reversed.
    for start in (0..graph.len()).rev() {
        if state[start] != 0 {
            continue;
        }
        let mut stack = vec![(start, 0usize)];
        state[start] = 1;
        while let Some((node, next)) = stack.pop() {
            let parents = &graph[node].1;
            if let Some(p) = parents.get(next) {
                stack.push((node, next + 1));
                if let Some(&pi) = position.get(p.as_str())
                    && state[pi] == 0
                {
                    state[pi] = 1;
                    stack.push((pi, 0));
                }
            } else {
                state[node] = 2;
                order.push(node);
            }
        }
    }
    let mut slots: Vec<Option<NewRecord>> = records.into_iter().map(Some).collect();
    order
        .into_iter()
        .filter_map(|i| slots.get_mut(i).and_then(Option::take))
        .collect()
}
