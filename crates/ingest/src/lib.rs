//! Ingestion: parsers that turn what delivery tools already emit into evidence records.
//!
//! Every adapter is a pure function `parse(bytes, &Context) -> Result<Parsed, IngestError>`:
//! no I/O, no clock, no store. [`ingest`] wraps them: it detects the format when not given,
//! refuses unusable input with a precise [`IngestError`], and finishes every record the same
//! way (source, idempotency key, a link to the raw input's digest) so the raw bytes, kept
//! content-addressed beside the log, can always be produced for an auditor.
//!
//! # Subject conventions (all adapters use these, so evidence links across tools)
//! | type | id |
//! |---|---|
//! | `commit` | full lowercase SHA |
//! | `repo` | `host/owner/name`, e.g. `github.com/octo/hello` |
//! | `pr` | `host/owner/name#number` (GitLab merge requests too) |
//! | `ticket` | issue key, e.g. `PROJ-123` |
//! | `build` | `system/...` unique run id, e.g. `github.com/octo/hello/actions/runs/42`, `jenkins/job/7` |
//! | `artifact` | `sha256:<hex>` (or another `algo:<hex>` digest) |
//! | `environment` | environment name as the tool gives it, e.g. `production` |
//! | `release` | `host/owner/name@tag` |
//! | `deployment` | tool-scoped id, e.g. `github.com/octo/hello/deployments/123` |
//! | `person` | `github:login`, `gitlab:username`, `jira:accountId`, `email:addr` |
//! | `component` | a package URL (`pkg:...`) |
//! | `input` | `sha256:<hex>` of a raw input (added by [`ingest`] as rel `derived_from`) |
#![forbid(unsafe_code)]

pub mod draft;
pub mod error;
#[cfg(feature = "git")]
pub mod git;
pub mod identity;
pub mod link;

pub mod cdevents;
pub mod cyclonedx;
pub mod github;
pub mod gitlab;
pub mod intoto;
pub mod jenkins;
pub mod jira;
pub mod junit;
pub mod sarif;
pub mod spdx;

mod detect;

use std::fmt;
use std::str::FromStr;

use trailmark_model::{Blob, Digest, NewRecord};

pub use draft::Draft;
pub use error::IngestError;
pub use link::TicketPattern;

/// The input formats Trailmark understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    Github,
    Gitlab,
    Jira,
    Jenkins,
    Cdevents,
    Junit,
    Sarif,
    Cyclonedx,
    Spdx,
    Intoto,
}

impl Format {
    pub const ALL: [Format; 10] = [
        Format::Github,
        Format::Gitlab,
        Format::Jira,
        Format::Jenkins,
        Format::Cdevents,
        Format::Junit,
        Format::Sarif,
        Format::Cyclonedx,
        Format::Spdx,
        Format::Intoto,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Github => "github",
            Format::Gitlab => "gitlab",
            Format::Jira => "jira",
            Format::Jenkins => "jenkins",
            Format::Cdevents => "cdevents",
            Format::Junit => "junit",
            Format::Sarif => "sarif",
            Format::Cyclonedx => "cyclonedx",
            Format::Spdx => "spdx",
            Format::Intoto => "intoto",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Format::ALL.iter().map(|f| f.name()).collect();
                format!("unknown format {s:?} (one of: {})", names.join(", "))
            })
    }
}

/// What the caller knows beyond the bytes: webhook headers, CLI flags.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// The event name when the transport carries it (GitHub `X-GitHub-Event`, GitLab
    /// `X-Gitlab-Event`). Adapters infer it from the payload when absent.
    pub event: Option<String>,
    /// A delivery id (GitHub `X-GitHub-Delivery`, ...): makes re-deliveries idempotent.
    pub delivery: Option<String>,
    /// Commit the input is about (reports: `--commit`).
    pub commit: Option<String>,
    /// Build the input came from (reports: `--build`).
    pub build: Option<String>,
    /// The file name, for detection and messages.
    pub filename: Option<String>,
    /// Ticket keys to look for in messages, titles and branch names.
    pub tickets: TicketPattern,
    /// Ed25519 public keys (raw 32 bytes) trusted to sign DSSE envelopes.
    pub trusted_ed25519: Vec<[u8; 32]>,
}

/// An adapter's output: records, and what it had to leave out and why.
#[derive(Clone, Debug, Default)]
pub struct Parsed {
    pub records: Vec<NewRecord>,
    pub skipped: Vec<Skipped>,
}

/// A part of an input that was not turned into evidence, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// What was skipped, e.g. `testcase "login" in suite "auth"`, `result 3`.
    pub what: String,
    pub reason: String,
}

/// The result of ingesting one input.
#[derive(Clone, Debug)]
pub struct Ingested {
    pub format: Format,
    /// The raw input, to be stored content-addressed beside the records.
    pub raw: Blob,
    pub records: Vec<NewRecord>,
    pub skipped: Vec<Skipped>,
}

/// Detects the format of `bytes` (using `ctx.filename` as a hint), or `None`.
pub fn detect(bytes: &[u8], ctx: &Context) -> Option<Format> {
    detect::detect(bytes, ctx)
}

/// Parses one input into records. `format` = `None` auto-detects.
///
/// Errors leave nothing half-done: the caller gets either records to append (all of them, in
/// one batch) or an error naming what is wrong.
pub fn ingest(
    bytes: &[u8],
    format: Option<Format>,
    ctx: &Context,
) -> Result<Ingested, IngestError> {
    if bytes.is_empty() {
        return Err(IngestError::Empty);
    }
    let format = match format {
        Some(f) => f,
        None => detect(bytes, ctx).ok_or(IngestError::UnknownFormat)?,
    };
    let parsed = match format {
        Format::Github => github::parse(bytes, ctx),
        Format::Gitlab => gitlab::parse(bytes, ctx),
        Format::Jira => jira::parse(bytes, ctx),
        Format::Jenkins => jenkins::parse(bytes, ctx),
        Format::Cdevents => cdevents::parse(bytes, ctx),
        Format::Junit => junit::parse(bytes, ctx),
        Format::Sarif => sarif::parse(bytes, ctx),
        Format::Cyclonedx => cyclonedx::parse(bytes, ctx),
        Format::Spdx => spdx::parse(bytes, ctx),
        Format::Intoto => intoto::parse(bytes, ctx),
    }?;
    if parsed.records.is_empty() {
        return Err(IngestError::NothingUsable {
            format,
            reasons: parsed
                .skipped
                .iter()
                .map(|s| format!("{}: {}", s.what, s.reason))
                .collect(),
        });
    }
    let raw = Blob::new(bytes.to_vec());
    let digest = raw.digest();
    let scope = ctx.delivery.clone().unwrap_or_else(|| digest.to_string());
    let records = parsed
        .records
        .into_iter()
        .enumerate()
        .map(|(i, mut r)| {
            finish(&mut r, format, &digest, &scope, i);
            r
        })
        .collect();
    Ok(Ingested {
        format,
        raw,
        records,
        skipped: parsed.skipped,
    })
}

fn finish(r: &mut NewRecord, format: Format, digest: &Digest, scope: &str, i: usize) {
    if r.source.is_none() {
        r.source = Some(format.name().to_owned());
    }
    if r.idempotency_key.is_none() {
        r.idempotency_key = Some(format!("{format}:{scope}:{i}"));
    }
    if let Ok(s) = trailmark_model::Subject::parse("input", &digest.to_string())
        && let Ok(rel) = trailmark_model::Rel::parse("derived_from")
    {
        r.links.push(trailmark_model::Link { rel, to: s });
    }
}
