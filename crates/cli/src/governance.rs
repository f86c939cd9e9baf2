//! `release`, `gate`, `policy`, `approvals`, `exception`, `rollback`: thin wrappers over
//! `trailmark_policy::Governance`. Data (JSON) on stdout; summaries and errors on stderr.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::{Value, json};
use trailmark_ingest::identity::IdentityMap;
use trailmark_policy::eval::Status;
use trailmark_policy::people::Recorded;
use trailmark_policy::{Actor, Governance, Outcome, Policy, PolicyError, Span, Target};
use trailmark_store::Store;

use crate::datadir::DataDir;
use crate::error::{CliError, input, io};

/// Options every governance command shares.
#[derive(Debug, Args)]
pub struct Who {
    /// Who is acting, as a raw identity (`person:alice`, `github:alice`...). Recorded as the
    /// record's actor.
    #[arg(long = "as", env = "TRAILMARK_ACTOR", default_value = "cli")]
    pub actor: String,
    /// The policy to use.
    #[arg(long, default_value = "default")]
    pub policy: String,
}

#[derive(Debug, Subcommand)]
pub enum ReleaseCommand {
    /// Create a release: ORG/PROJECT, name, version and target environments. Prints its id
    /// (`org/project/name@version`).
    Create {
        #[arg(long)]
        project: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        version: String,
        /// Target environment (repeat for several).
        #[arg(long = "env", required = true)]
        environments: Vec<String>,
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        who: Who,
    },
    /// Link commits, tickets, pull requests, artifacts (by digest) and documents. Links made
    /// after the first gate evaluation are marked late.
    Link {
        release: String,
        #[arg(long = "commit")]
        commits: Vec<String>,
        #[arg(long = "ticket")]
        tickets: Vec<String>,
        #[arg(long = "pr")]
        prs: Vec<String>,
        #[arg(long = "artifact")]
        artifacts: Vec<String>,
        /// A document as TYPE=ID[@VERSION], e.g. runbook=wiki/payments-runbook@12.
        #[arg(long = "doc")]
        documents: Vec<String>,
        /// Link every commit in a git range of a local repository: PREVIOUS_TAG..THIS_TAG.
        #[arg(long, requires = "repo")]
        git_range: Option<String>,
        #[arg(long)]
        repo: Option<PathBuf>,
        #[command(flatten)]
        who: Who,
    },
    /// The release's state: links, content digest, approvals, exceptions, rollbacks, monitoring.
    Show {
        release: String,
        #[command(flatten)]
        who: Who,
    },
    /// The governance checks list (label, severity, status, due date, entity), failing first.
    Checks {
        release: String,
        #[command(flatten)]
        who: Who,
    },
    /// Approve the release's current content as a signed-in user (password from
    /// TRAILMARK_PASSWORD or the first line of stdin).
    Approve(DecideArgs),
    /// Reject the release's current content as a signed-in user.
    Reject(DecideArgs),
    /// End post-deploy monitoring.
    Clear {
        release: String,
        #[arg(long)]
        note: String,
        #[command(flatten)]
        who: Who,
    },
}

#[derive(Debug, Args)]
pub struct DecideArgs {
    release: String,
    /// The local user deciding.
    #[arg(long)]
    user: String,
    /// The evidence digest you reviewed (`release show`); refused if the content changed since.
    #[arg(long)]
    digest: Option<String>,
    #[arg(long)]
    comment: Option<String>,
    #[command(flatten)]
    who: Who,
}

#[derive(Debug, Args)]
pub struct GateArgs {
    #[arg(long)]
    release: String,
    #[arg(long)]
    env: String,
    /// The person deploying (separation of duties).
    #[arg(long)]
    deployer: Option<String>,
    #[command(flatten)]
    who: Who,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Record a new version of a policy from a TOML file (Rego modules it names are embedded).
    Apply {
        file: PathBuf,
        #[command(flatten)]
        who: Who,
    },
    /// Print the policy in force (JSON) and every recorded version.
    Show {
        #[command(flatten)]
        who: Who,
    },
    /// Approve the proposed policy version (when the policy in force requires approval).
    Approve {
        #[arg(long)]
        user: String,
        #[arg(long)]
        comment: Option<String>,
        #[command(flatten)]
        who: Who,
    },
    /// Re-evaluate a recorded gate decision under its policy version and today's; show the
    /// difference.
    Replay {
        /// The gate decision's log index.
        record: u64,
        #[command(flatten)]
        who: Who,
    },
}

#[derive(Debug, Args)]
pub struct ApprovalsArgs {
    /// Only overdue ones.
    #[arg(long)]
    overdue: bool,
    #[command(flatten)]
    who: Who,
}

#[derive(Debug, Subcommand)]
pub enum ExceptionCommand {
    /// Raise a break-glass exception for a release.
    Raise {
        #[arg(long)]
        release: String,
        /// Environments it covers (all of the release's when omitted).
        #[arg(long = "env")]
        environments: Vec<String>,
        #[arg(long)]
        reason: String,
        /// How long it is valid: 30m, 8h, 2d...
        #[arg(long)]
        valid_for: String,
        /// Compensating control (repeat).
        #[arg(long = "control", required = true)]
        controls: Vec<String>,
        /// Who authorized the emergency at the time.
        #[arg(long)]
        authorized_by: Option<String>,
        #[command(flatten)]
        who: Who,
    },
    /// Retrospectively approve an exception as a signed-in user.
    Approve {
        id: String,
        #[arg(long)]
        user: String,
        #[arg(long)]
        comment: Option<String>,
        #[command(flatten)]
        who: Who,
    },
    Close {
        id: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        who: Who,
    },
    /// A project's exceptions and their state (overdue ones first).
    List {
        #[arg(long)]
        project: String,
        #[command(flatten)]
        who: Who,
    },
}

#[derive(Debug, Subcommand)]
pub enum RollbackCommand {
    Propose {
        #[arg(long)]
        release: String,
        #[arg(long)]
        env: String,
        #[arg(long)]
        reason: String,
        /// The artifact (digest) to roll back to; its release must pass the gate.
        #[arg(long)]
        target_artifact: String,
        #[arg(long)]
        plan: String,
        #[arg(long)]
        due: Option<String>,
        #[arg(long)]
        incident: Option<String>,
        #[arg(long)]
        deployment: Option<String>,
        #[command(flatten)]
        who: Who,
    },
    /// Move a decision on: approved, executing, executed or cancelled.
    Update {
        id: String,
        #[arg(long)]
        status: String,
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        who: Who,
    },
}

/// The identity map in force: the latest version recorded in the log.
///
/// A data directory from before the map was kept in the log has it in `people.json`: while the
/// log holds no version, that file is recorded as the first (actor `system:people.json`), so
/// nothing resolves people from a file that could change unrecorded. Once the log holds a
/// version the file is not read for resolution; when it differs from the version in force, a
/// warning names the command that records it.
pub fn people(dir: &DataDir, store: &dyn Store) -> Result<IdentityMap, CliError> {
    let file = dir.root().join("people.json");
    let current = trailmark_policy::people::current(store).map_err(err)?;
    if !file.exists() {
        return Ok(current.map(|v| v.map).unwrap_or_default());
    }
    let text = std::fs::read_to_string(&file).map_err(io(file.display().to_string()))?;
    let from_file =
        IdentityMap::from_json(&text).map_err(|e| input(format!("{}: {e}", file.display())))?;
    match current {
        Some(v) => {
            if v.digest != trailmark_policy::people::digest(&from_file) {
                eprintln!(
                    "warning: {} differs from the identity map in force (record {}) and is not used; record it with `trailmark people set {}`",
                    file.display(),
                    v.record,
                    file.display()
                );
            }
            Ok(v.map)
        }
        None => {
            match trailmark_policy::people::record(store, &from_file, LEGACY_ACTOR).map_err(err)? {
                Recorded::Append(v) | Recorded::Keep(v) => {
                    eprintln!(
                        "recorded {} in the log as the identity map (record {}); change it with `trailmark people set FILE`",
                        file.display(),
                        v.record
                    );
                    Ok(v.map)
                }
            }
        }
    }
}

/// The actor of a map version imported from a data directory's `people.json`.
pub const LEGACY_ACTOR: &str = "system:people.json";

/// `trailmark people ...`: the identity map kept in the log.
#[derive(Debug, Subcommand)]
pub enum PeopleCommand {
    /// Record a mapping file as the identity map in force (nothing is recorded when it already
    /// is). Prints the version's record and digest.
    Set {
        /// {"people": [{"id": "alice", "identities": ["email:…", "github:…"]}]}
        file: PathBuf,
        /// Who is setting it, as a raw identity; recorded as the version's actor.
        #[arg(long = "as", env = "TRAILMARK_ACTOR", default_value = "cli")]
        actor: String,
    },
    /// Print the identity map in force and every recorded version (who set it, when).
    Show,
}

pub fn people_command(
    dir: &DataDir,
    cmd: PeopleCommand,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let store = dir.open()?;
    match cmd {
        PeopleCommand::Set { file, actor } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| input(format!("cannot read {}: {e}", file.display())))?;
            let map = IdentityMap::from_json(&text)
                .map_err(|e| input(format!("{}: {e}", file.display())))?;
            let (v, appended) = match trailmark_policy::people::record(store.as_ref(), &map, &actor)
                .map_err(err)?
            {
                Recorded::Append(v) => (v, true),
                Recorded::Keep(v) => (v, false),
            };
            if appended {
                eprintln!(
                    "recorded the identity map version {} (record {})",
                    v.digest, v.record
                );
            } else {
                eprintln!(
                    "the identity map in force (record {}) is already this map: nothing recorded",
                    v.record
                );
            }
            print(
                out,
                &json!({"record": v.record, "digest": v.digest.to_string(), "recorded": appended}),
            )
        }
        PeopleCommand::Show => {
            // A legacy people.json is recorded first, as every command that resolves people does.
            people(dir, store.as_ref())?;
            let versions = trailmark_policy::people::history(store.as_ref()).map_err(err)?;
            print(
                out,
                &json!({
                    "current": versions.last().map(|c| json!({"record": c.record, "digest": c.digest.to_string(), "map": c.map.to_json()})),
                    "versions": versions.iter().map(|v| json!({
                        "record": v.record,
                        "digest": v.digest.to_string(),
                        "actor": v.actor,
                        "recorded_at": v.recorded_at.to_string(),
                    })).collect::<Vec<_>>(),
                }),
            )
        }
    }
}

fn err(e: PolicyError) -> CliError {
    match e {
        PolicyError::Store(s) => CliError::from(s),
        PolicyError::Io { .. } | PolicyError::Stored { .. } => CliError::Environment(e.to_string()),
        other => CliError::Input(other.to_string()),
    }
}

pub fn print(out: &mut dyn Write, v: &impl serde::Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(v).map_err(|e| CliError::Environment(e.to_string()))?;
    writeln!(out, "{text}").map_err(|e| {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            CliError::BrokenPipe
        } else {
            CliError::Environment(e.to_string())
        }
    })
}

/// A signed-in local user: password checked against the access store.
fn sign_in(dir: &DataDir, user: &str, project: Option<&str>) -> Result<Actor, CliError> {
    let password = match std::env::var("TRAILMARK_PASSWORD") {
        Ok(p) => p,
        Err(_) => {
            eprintln!("password for {user}: ");
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(io("stdin".into()))?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    let access = dir
        .open_access()
        .map_err(|e| CliError::Environment(e.to_string()))?;
    let principal = access
        .authenticate_user(user, &password)
        .map_err(|e| input(format!("sign-in failed: {e}")))?;
    let roles = match project {
        Some(p) => trailmark_policy::ops::roles_on(&principal, p),
        None => {
            let mut r: Vec<String> = principal
                .grants
                .iter()
                .map(|g| g.role.as_str().to_owned())
                .collect();
            r.sort();
            r.dedup();
            r
        }
    };
    Ok(Actor {
        identity: format!("person:{user}"),
        roles,
    })
}

fn with_gov<T>(
    dir: &DataDir,
    who: &Who,
    f: impl FnOnce(&Governance<'_>) -> Result<T, CliError>,
) -> Result<T, CliError> {
    let store = dir.open()?;
    let people = people(dir, store.as_ref())?;
    let mut g = Governance::new(store.as_ref(), &people);
    g.policy_name = who.policy.clone();
    f(&g)
}

fn split_doc(s: &str) -> Result<(String, String, Option<String>), CliError> {
    let (ty, rest) = s
        .split_once('=')
        .ok_or_else(|| input(format!("--doc {s:?}: expected TYPE=ID[@VERSION]")))?;
    let (id, version) = match rest.rsplit_once('@') {
        Some((id, v)) if !v.is_empty() => (id, Some(v.to_owned())),
        _ => (rest, None),
    };
    if ty.is_empty() || id.is_empty() {
        return Err(input(format!("--doc {s:?}: expected TYPE=ID[@VERSION]")));
    }
    Ok((ty.to_owned(), id.to_owned(), version))
}

/// Commits in `from..to` of a local repository (reachable from `to`, not from `from`).
fn git_range(repo: &std::path::Path, range: &str) -> Result<Vec<String>, CliError> {
    let (from, to) = range
        .split_once("..")
        .filter(|(a, b)| !a.is_empty() && !b.is_empty())
        .ok_or_else(|| input(format!("--git-range {range:?}: expected FROM..TO")))?;
    let shas = trailmark_ingest::git::range(repo, from, to)
        .map_err(|e| input(format!("--git-range {range:?} in {}: {e}", repo.display())))?;
    if shas.is_empty() {
        return Err(input(format!("--git-range {range:?} contains no commits")));
    }
    Ok(shas)
}

pub fn release(dir: &DataDir, cmd: ReleaseCommand, out: &mut dyn Write) -> Result<(), CliError> {
    match cmd {
        ReleaseCommand::Create {
            project,
            name,
            version,
            environments,
            description,
            who,
        } => with_gov(dir, &who, |g| {
            let (id, idx) = g
                .create_release(
                    &project,
                    &name,
                    &version,
                    &environments,
                    description.as_deref(),
                    &who.actor,
                )
                .map_err(err)?;
            eprintln!("created release {id} (record {idx})");
            print(out, &json!({"release": id, "record": idx}))
        }),
        ReleaseCommand::Link {
            release,
            commits,
            tickets,
            prs,
            artifacts,
            documents,
            git_range: range,
            repo,
            who,
        } => with_gov(dir, &who, |g| {
            let mut items: Vec<(String, String)> = Vec::new();
            let mut via = "explicit".to_owned();
            if let (Some(range), Some(repo)) = (&range, &repo) {
                for sha in self::git_range(repo, range)? {
                    items.push(("commit".into(), sha));
                }
                via = format!("git-range {range}");
            }
            items.extend(commits.into_iter().map(|c| ("commit".into(), c)));
            items.extend(tickets.into_iter().map(|c| ("ticket".into(), c)));
            items.extend(prs.into_iter().map(|c| ("pr".into(), c)));
            items.extend(artifacts.into_iter().map(|c| ("artifact".into(), c)));
            let docs = documents
                .iter()
                .map(|d| split_doc(d))
                .collect::<Result<Vec<_>, _>>()?;
            let (idx, late, n) = g
                .link(&release, &items, &docs, &via, &who.actor)
                .map_err(err)?;
            eprintln!(
                "linked {n} item(s) to {release} (record {idx}){}",
                if late {
                    "; LATE: after the first gate evaluation"
                } else {
                    ""
                }
            );
            print(out, &json!({"record": idx, "linked": n, "late": late}))
        }),
        ReleaseCommand::Show { release, who } => with_gov(dir, &who, |g| {
            let (snap, policy) = g.snapshot(&release, None, None).map_err(err)?;
            let tally = trailmark_policy::eval::release_tally(&policy.policy, &snap.input);
            let mut r = trailmark_policy::collect::Reader::new(g.store, g.people);
            let rollbacks = g.rollbacks_of(&mut r, &snap.release).map_err(err)?;
            let exceptions = g.exceptions(&snap.release.project).map_err(err)?;
            let gates: Vec<Value> = snap.release.records.iter().filter(|x| x.record.kind.as_str() == trailmark_policy::kinds::GATE_DECIDED).map(|x| {
                let p = r.payload(&x.record).unwrap_or_default();
                json!({"record": x.record.index.0, "environment": p.pointer("/decision/environment"), "decision": p.pointer("/decision/decision"), "recorded_at": x.record.recorded_at.to_string()})
            }).collect();
            print(
                out,
                &json!({
                    "release": snap.input.release,
                    "commits": snap.input.commits,
                    "tickets": snap.input.tickets.iter().map(|t| &t.key).collect::<Vec<_>>(),
                    "prs": snap.input.prs.iter().map(|p| &p.id).collect::<Vec<_>>(),
                    "artifacts": snap.input.artifacts,
                    "documents": snap.input.documents,
                    "evidence_digest": snap.input.approval.evidence_digest,
                    "approval": tally,
                    "exceptions": exceptions.iter().filter(|(e, _)| e.release.as_deref().is_none_or(|x| x == release)).map(|(e, s)| json!({"id": e.id, "state": s, "reason": e.reason, "retro_due": e.retro_due, "expires_at": e.expires_at})).collect::<Vec<_>>(),
                    "rollbacks": rollbacks.iter().map(|(id, s, d)| json!({"id": id, "status": s, "due": d})).collect::<Vec<_>>(),
                    "monitoring": g.monitoring(&release).map_err(err)?,
                    "gate_decisions": gates,
                    "policy_digest": policy.digest.to_string(),
                }),
            )
        }),
        ReleaseCommand::Checks { release, who } => with_gov(dir, &who, |g| {
            let items = g.checks(&release).map_err(err)?;
            for i in &items {
                eprintln!(
                    "{:8} {:8} {}{}",
                    i.status,
                    i.severity,
                    i.label,
                    i.due
                        .as_ref()
                        .map(|d| format!(" (due {d})"))
                        .unwrap_or_default()
                );
            }
            print(out, &items)
        }),
        ReleaseCommand::Approve(a) => decide(dir, a, true, out),
        ReleaseCommand::Reject(a) => decide(dir, a, false, out),
        ReleaseCommand::Clear { release, note, who } => with_gov(dir, &who, |g| {
            let idx = g.clear_release(&release, &note, &who.actor).map_err(err)?;
            print(out, &json!({"record": idx}))
        }),
    }
}

fn decide(
    dir: &DataDir,
    a: DecideArgs,
    approve: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let (project, _, _) = trailmark_policy::collect::parse_release_id(&a.release).map_err(err)?;
    let actor = sign_in(dir, &a.user, Some(&project))?;
    with_gov(dir, &a.who, |g| {
        let (idx, digest) = g
            .decide_release(
                &a.release,
                &actor,
                approve,
                a.digest.as_deref(),
                a.comment.as_deref(),
            )
            .map_err(err)?;
        eprintln!(
            "{} {} as {} over evidence {digest} (record {idx})",
            if approve { "approved" } else { "rejected" },
            a.release,
            a.user
        );
        print(
            out,
            &json!({"record": idx, "evidence_digest": digest, "decision": if approve { "approve" } else { "reject" }}),
        )
    })
}

pub fn gate(dir: &DataDir, a: GateArgs, out: &mut dyn Write) -> Result<(), CliError> {
    with_gov(dir, &a.who, |g| {
        let r = g
            .gate(&a.release, &a.env, a.deployer.as_deref())
            .map_err(err)?;
        print(out, &r)?;
        let verdict = match r.decision.decision {
            Outcome::Allow => "ALLOW".to_owned(),
            Outcome::AllowWithException => format!(
                "ALLOW under exception {}",
                r.decision.exception.as_deref().unwrap_or("?")
            ),
            Outcome::Deny => "DENY".to_owned(),
        };
        eprintln!(
            "gate {} → {}: {verdict} (decision record {})",
            a.release, a.env, r.record
        );
        for c in &r.decision.checks {
            let mark = if c.status == Status::Pass {
                "pass"
            } else {
                "FAIL"
            };
            eprintln!("  {mark}  {}", c.label);
            if c.status == Status::Fail {
                for why in &c.reasons {
                    eprintln!("        - {why}");
                }
            }
        }
        if r.decision.decision.permits() {
            Ok(())
        } else {
            Err(CliError::Verification(format!(
                "the gate denied {} to {}",
                a.release, a.env
            )))
        }
    })
}

pub fn policy(dir: &DataDir, cmd: PolicyCommand, out: &mut dyn Write) -> Result<(), CliError> {
    match cmd {
        PolicyCommand::Apply { file, who } => with_gov(dir, &who, |g| {
            let (_, json) = Policy::load(&file).map_err(err)?;
            let (idx, active, digest) = g.apply_policy(&json, &who.actor).map_err(err)?;
            eprintln!(
                "recorded policy {} version {digest} (record {idx}){}",
                who.policy,
                if active {
                    "; in force"
                } else {
                    "; PROPOSED: in force once approved"
                }
            );
            print(
                out,
                &json!({"record": idx, "digest": digest.to_string(), "active": active}),
            )
        }),
        PolicyCommand::Show { who } => with_gov(dir, &who, |g| {
            let versions = g.policy_versions().map_err(err)?;
            let active = g.active_policy().map_err(err)?;
            print(
                out,
                &json!({
                    "active": {"record": active.record, "digest": active.digest.to_string(), "policy": active.json},
                    "versions": versions.iter().map(|v| json!({"record": v.record, "digest": v.digest.to_string(), "active": v.active})).collect::<Vec<_>>(),
                }),
            )
        }),
        PolicyCommand::Approve { user, comment, who } => {
            let actor = sign_in(dir, &user, None)?;
            with_gov(dir, &who, |g| {
                let idx = g
                    .decide_other(
                        Target::Policy,
                        &who.policy,
                        &actor,
                        true,
                        comment.as_deref(),
                    )
                    .map_err(err)?;
                let active = g.active_policy().map_err(err)?;
                eprintln!(
                    "approved; policy in force: record {} ({})",
                    active.record, active.digest
                );
                print(out, &json!({"record": idx, "active_record": active.record}))
            })
        }
        PolicyCommand::Replay { record, who } => with_gov(dir, &who, |g| {
            let r = g.replay(record).map_err(err)?;
            eprintln!(
                "decision {record}: {} under its own policy; {:?} then, {:?} under today's",
                if r.reproduced {
                    "reproduced"
                } else {
                    "NOT reproduced"
                },
                r.recorded.decision,
                r.under_current_policy.decision
            );
            for d in &r.differences {
                eprintln!("  - {d}");
            }
            print(out, &r)?;
            if r.reproduced {
                Ok(())
            } else {
                Err(CliError::Verification(format!(
                    "decision {record} does not reproduce from its recorded input and policy"
                )))
            }
        }),
    }
}

pub fn approvals(dir: &DataDir, a: ApprovalsArgs, out: &mut dyn Write) -> Result<(), CliError> {
    with_gov(dir, &a.who, |g| {
        let mut p = g.pending().map_err(err)?;
        if a.overdue {
            p.retain(|x| x.sla == "overdue");
        }
        print(out, &p)
    })
}

pub fn exception(
    dir: &DataDir,
    cmd: ExceptionCommand,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match cmd {
        ExceptionCommand::Raise {
            release,
            environments,
            reason,
            valid_for,
            controls,
            authorized_by,
            who,
        } => with_gov(dir, &who, |g| {
            let span = Span::parse(&valid_for).map_err(|e| input(format!("--valid-for: {e}")))?;
            let (id, idx, due) = g
                .raise_exception(
                    &release,
                    &environments,
                    &reason,
                    &span,
                    &controls,
                    authorized_by.as_deref(),
                    &who.actor,
                )
                .map_err(err)?;
            eprintln!("raised exception {id} (record {idx}); retrospective approval due by {due}");
            print(
                out,
                &json!({"exception": id, "record": idx, "retro_due": due}),
            )
        }),
        ExceptionCommand::Approve {
            id,
            user,
            comment,
            who,
        } => {
            let project = id.rsplit_once('/').map(|(p, _)| p.to_owned());
            let actor = sign_in(dir, &user, project.as_deref())?;
            with_gov(dir, &who, |g| {
                let idx = g
                    .decide_other(Target::Exception, &id, &actor, true, comment.as_deref())
                    .map_err(err)?;
                print(out, &json!({"record": idx}))
            })
        }
        ExceptionCommand::Close { id, reason, who } => with_gov(dir, &who, |g| {
            let idx = g.close_exception(&id, &reason, &who.actor).map_err(err)?;
            print(out, &json!({"record": idx}))
        }),
        ExceptionCommand::List { project, who } => with_gov(dir, &who, |g| {
            let mut list = g.exceptions(&project).map_err(err)?;
            list.sort_by_key(|(_, s)| *s != trailmark_policy::eval::ExceptionState::Overdue);
            print(
                out,
                &list
                    .iter()
                    .map(|(e, s)| json!({"id": e.id, "state": s, "exception": e}))
                    .collect::<Vec<_>>(),
            )
        }),
    }
}

pub fn rollback(dir: &DataDir, cmd: RollbackCommand, out: &mut dyn Write) -> Result<(), CliError> {
    match cmd {
        RollbackCommand::Propose {
            release,
            env,
            reason,
            target_artifact,
            plan,
            due,
            incident,
            deployment,
            who,
        } => with_gov(dir, &who, |g| {
            let (id, idx) = g
                .propose_rollback(
                    &release,
                    &env,
                    &reason,
                    &target_artifact,
                    &plan,
                    due.as_deref(),
                    incident.as_deref(),
                    deployment.as_deref(),
                    &who.actor,
                )
                .map_err(err)?;
            eprintln!("proposed rollback {id} (record {idx}); {release} is under monitoring");
            print(out, &json!({"rollback": id, "record": idx}))
        }),
        RollbackCommand::Update {
            id,
            status,
            note,
            who,
        } => with_gov(dir, &who, |g| {
            let (idx, gate) = g
                .update_rollback(&id, &status, note.as_deref(), &who.actor)
                .map_err(err)?;
            print(out, &json!({"record": idx, "target_gate": gate}))
        }),
    }
}
