//! Auditor workflows: the population of production deployments in a period reconciled against
//! authorized changes, a reproducible sample drawn with a seed from a signed checkpoint, and
//! "explain release R".

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use trailmark_ingest::identity::IdentityMap;
use trailmark_model::{Kind, Subject, Timestamp};
use trailmark_policy::collect::Reader;
use trailmark_policy::eval::{self, Status};
use trailmark_policy::{Governance, kinds};
use trailmark_store::{Query, SignedCheckpoint, Store};

use crate::error::DossierError;

/// The record kinds that say a deployment happened (with its environment and status).
pub const DEPLOY_KINDS: &[&str] = &[
    "github.deployment_status",
    "gitlab.deployment",
    "cdevents.service_deployed",
];

/// One deployment in the population.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Deployed {
    pub record: u64,
    pub environment: String,
    pub recorded_at: String,
    pub status: String,
    pub commit: Option<String>,
    pub release: Option<String>,
    /// An allowing gate decision for this environment was recorded before the deploy.
    pub gated: bool,
    /// What is missing for this change: ticket, approval, tests...
    pub findings: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Population {
    pub environment: String,
    pub from: String,
    pub to: String,
    pub deployments: Vec<Deployed>,
    /// Completeness findings across the population ("ticket X marked done but never deployed").
    pub completeness: Vec<String>,
    /// Versions of the identity map recorded in the period: each changes who counts as whom,
    /// and so what separation of duties allows, for every decision after it.
    pub identity_map_changes: Vec<MapChange>,
}

/// One recorded version of the identity map.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct MapChange {
    pub record: u64,
    pub recorded_at: String,
    /// Who set it (the record's actor).
    pub actor: Option<String>,
    pub digest: String,
}

fn text(v: &Value, ptr: &str) -> Option<String> {
    trailmark_model::json_at(v, ptr)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn env_matches(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Every deployment to `env` recorded in `[from, to)`, reconciled against authorized changes.
pub fn population(
    store: &dyn Store,
    people: &IdentityMap,
    policy_name: &str,
    env: &str,
    from: Timestamp,
    to: Timestamp,
) -> Result<Population, DossierError> {
    let mut gov = Governance::new(store, people);
    gov.policy_name = policy_name.to_owned();
    let policy = gov.active_policy()?;
    let mut r: Reader<'_> = Reader::new(store, people);
    let mut out = Vec::new();
    let mut deployed_commits = BTreeSet::new();
    for kind in DEPLOY_KINDS {
        let kind = Kind::parse(kind).map_err(|e| DossierError::Refused(e.to_string()))?;
        let mut after = None;
        loop {
            let page = store.query(&Query {
                kind: Some(kind.clone()),
                since: Some(from),
                until: Some(to),
                after,
                limit: 1000,
                ..Query::default()
            })?;
            let n = page.len();
            after = page.last().map(|x| x.record.index);
            for rec in page {
                let rr = &rec.record;
                let p = r.payload(rr)?;
                let environment = rr
                    .subjects
                    .iter()
                    .find(|s| s.ty.as_str() == "environment")
                    .map(|s| s.id.as_str().to_owned())
                    .or_else(|| text(&p, "/environment"))
                    .unwrap_or_default();
                if !env_matches(&environment, env) {
                    continue;
                }
                let status = text(&p, "/state")
                    .or_else(|| text(&p, "/status"))
                    .unwrap_or_else(|| "deployed".into());
                let commit = rr
                    .links
                    .iter()
                    .find(|l| l.to.ty.as_str() == "commit")
                    .map(|l| l.to.id.as_str().to_owned());
                out.push((rec.clone(), environment, status, commit));
            }
            if n < 1000 {
                break;
            }
        }
    }
    out.sort_by_key(|x| x.0.record.index);
    let mut deployments = Vec::new();
    let retro = policy.policy.exceptions.retro_approval_within.micros();
    for (rec, environment, status, commit) in out {
        let mut findings = Vec::new();
        let mut release = None;
        let mut gated = false;
        match &commit {
            None => findings.push("the deployment names no commit".to_owned()),
            Some(sha) => {
                deployed_commits.insert(sha.clone());
                release = gov.release_including(sha, "")?;
                match &release {
                    None => findings.push(format!("deployed commit {} belongs to no release: no ticket, approval or tests can be shown", &sha[..sha.len().min(12)])),
                    Some(rel) => {
                        let snap = r.snapshot(rel, &environment, None, rec.record.recorded_at, retro)?;
                        let checks = eval::evaluate_all(&policy.policy, &snap.input);
                        for id in ["commits_have_tickets", "approvals", "tests_pass"] {
                            if let Some(c) = checks.iter().find(|c| c.id == id && c.status == Status::Fail) {
                                findings.extend(c.reasons.iter().map(|x| format!("{rel}: {x}")));
                            }
                        }
                        gated = snap.release.records.iter().any(|x| {
                            x.record.kind.as_str() == kinds::GATE_DECIDED
                                && x.record.index < rec.record.index
                                && matches!(&x.record.payload, trailmark_model::Payload::Inline(v) if v.pointer("/decision/decision").and_then(Value::as_str) != Some("deny") && v.pointer("/decision/environment").and_then(Value::as_str).is_some_and(|e| env_matches(e, &environment)))
                        });
                        if !gated {
                            findings.push(format!("{rel}: no allowing gate decision for {environment} before this deployment"));
                        }
                    }
                }
            }
        }
        deployments.push(Deployed {
            record: rec.record.index.0,
            environment,
            recorded_at: rec.record.recorded_at.to_string(),
            status,
            commit,
            release,
            gated,
            findings,
        });
    }
    // Tickets that reached an approved state in the period but whose commits never shipped here.
    let mut completeness = Vec::new();
    let approved: Vec<String> = policy
        .policy
        .tickets
        .approved_states
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let transitions = store.query(&Query {
        kind: Kind::parse("jira.transition").ok(),
        since: Some(from),
        until: Some(to),
        limit: 10_000,
        ..Query::default()
    })?;
    let mut done: BTreeMap<String, String> = BTreeMap::new();
    for t in transitions {
        let p = r.payload(&t.record)?;
        if text(&p, "/to").is_some_and(|s| approved.contains(&s.to_ascii_lowercase()))
            && let Some(key) = t.record.subjects.iter().find(|s| s.ty.as_str() == "ticket")
        {
            done.insert(
                key.id.as_str().to_owned(),
                text(&p, "/to").unwrap_or_default(),
            );
        }
    }
    for (key, state) in done {
        let s = Subject::parse("ticket", &key).map_err(|e| DossierError::Refused(e.to_string()))?;
        let mut commits = BTreeSet::new();
        for m in r.mentioning(&s)? {
            for sub in m
                .record
                .subjects
                .iter()
                .filter(|x| x.ty.as_str() == "commit")
            {
                commits.insert(sub.id.as_str().to_owned());
            }
        }
        if !commits.iter().any(|c| deployed_commits.contains(c)) {
            completeness.push(format!("ticket {key} was marked {state} but none of its commits was deployed to {env} in the period"));
        }
    }
    for d in &deployments {
        for f in &d.findings {
            completeness.push(format!("deployment {}: {f}", d.record));
        }
    }
    let identity_map_changes = trailmark_policy::people::history(store)?
        .into_iter()
        .filter(|v| v.recorded_at >= from && v.recorded_at < to)
        .map(|v| MapChange {
            record: v.record,
            recorded_at: v.recorded_at.to_string(),
            actor: v.actor,
            digest: v.digest.to_string(),
        })
        .collect();
    Ok(Population {
        environment: env.to_owned(),
        from: from.to_string(),
        to: to.to_string(),
        deployments,
        completeness,
        identity_map_changes,
    })
}

/// A reproducible sample: anyone with the population and the signed checkpoint recomputes it.
#[derive(Clone, Debug, Serialize)]
pub struct Sample {
    /// The signed checkpoint the seed comes from (published after the period, so the auditee
    /// could not have chosen it).
    pub checkpoint: String,
    /// SHA-256("trailmark-sample/v1\n" || checkpoint note), hex.
    pub seed: String,
    pub population: usize,
    /// The sampled deployments' record indices, in draw order.
    pub selected: Vec<u64>,
    pub method: String,
}

/// Draws `n` of the population: each member is ranked by SHA-256(seed || index as 8 bytes
/// big-endian), lowest first.
pub fn sample(pop: &Population, n: usize, checkpoint: &SignedCheckpoint) -> Sample {
    let seed: [u8; 32] = Sha256::new()
        .chain_update(b"trailmark-sample/v1\n")
        .chain_update(checkpoint.note.as_bytes())
        .finalize()
        .into();
    let mut ranked: Vec<([u8; 32], u64)> = pop
        .deployments
        .iter()
        .map(|d| {
            let h: [u8; 32] = Sha256::new()
                .chain_update(seed)
                .chain_update(d.record.to_be_bytes())
                .finalize()
                .into();
            (h, d.record)
        })
        .collect();
    ranked.sort();
    Sample {
        checkpoint: checkpoint.note.clone(),
        seed: seed.iter().map(|b| format!("{b:02x}")).collect(),
        population: ranked.len(),
        selected: ranked.into_iter().take(n).map(|(_, i)| i).collect(),
        method: "rank = SHA-256(seed || record index as u64 big-endian); the n lowest ranks".into(),
    }
}
