//! `dossier`, `certify`, `verify-dossier`, `audit`, `explain`: thin wrappers over
//! `trailmark_dossier`.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;
use trailmark_dossier::{BuildOptions, DossierError};
use trailmark_model::Timestamp;

use crate::datadir::{DataDir, load_vkey};
use crate::error::{CliError, input, io};
use crate::governance::{Who, people};

#[derive(Clone, Copy, Debug, Default, ValueEnum, PartialEq, Eq)]
pub enum DossierFormat {
    /// The self-verifying JSON bundle.
    #[default]
    Json,
    /// One self-contained, printable HTML page (readable offline).
    Html,
    /// OSCAL 1.1.2 assessment results (one result for the release, a finding per control).
    Oscal,
    /// A printable PDF/A-2b document with the same content as the HTML page; the same dossier
    /// always gives the same bytes. Binary: use --out or redirect stdout.
    #[cfg(feature = "pdf")]
    Pdf,
}

#[derive(Debug, Args)]
pub struct DossierArgs {
    #[arg(long)]
    release: String,
    #[arg(long, value_enum, default_value_t)]
    format: DossierFormat,
    /// Include the raw inputs (webhook bodies, reports) the records were derived from.
    #[arg(long)]
    raw_inputs: bool,
    /// Write here instead of stdout.
    #[arg(long, short)]
    out: Option<PathBuf>,
    #[command(flatten)]
    who: Who,
}

#[derive(Debug, Args)]
pub struct CertifyArgs {
    #[arg(long)]
    release: String,
    #[arg(long)]
    env: String,
    #[command(flatten)]
    who: Who,
}

#[derive(Debug, Args)]
pub struct VerifyDossierArgs {
    file: PathBuf,
    /// The log's verifier key (name+hex8+base64) or a file holding it.
    #[arg(long)]
    vkey: String,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Every deployment to an environment in [from, to), reconciled against authorized changes,
    /// with completeness findings.
    Population {
        #[arg(long)]
        env: String,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        #[command(flatten)]
        who: Who,
    },
    /// Draw N deployments of the population with a seed from a signed checkpoint, and export
    /// each sampled release's dossier into --out.
    Sample {
        #[arg(long)]
        env: String,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        #[arg(long)]
        size: usize,
        /// The checkpoint (tree size) whose signed note seeds the draw. Default: the latest.
        #[arg(long)]
        checkpoint: Option<u64>,
        /// Directory for sample.json and one dossier per sampled release.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        who: Who,
    },
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    #[arg(long)]
    release: String,
    /// Print the whole view as JSON instead of the answers as text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    who: Who,
}

fn err(e: DossierError) -> CliError {
    match e {
        DossierError::Store(s) => CliError::from(s),
        DossierError::Policy(trailmark_policy::PolicyError::Store(s)) => CliError::from(s),
        other => CliError::Input(other.to_string()),
    }
}

fn write_out(out: &mut dyn Write, bytes: &[u8]) -> Result<(), CliError> {
    write_bytes(out, bytes).and_then(|()| write_bytes(out, b"\n"))
}

fn write_bytes(out: &mut dyn Write, bytes: &[u8]) -> Result<(), CliError> {
    out.write_all(bytes).map_err(|e| {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            CliError::BrokenPipe
        } else {
            CliError::Environment(e.to_string())
        }
    })
}

fn time(flag: &str, s: &str) -> Result<Timestamp, CliError> {
    Timestamp::parse_rfc3339(s).ok_or_else(|| {
        input(format!(
            "--{flag} {s:?} is not an RFC 3339 instant (e.g. 2026-01-01T00:00:00Z)"
        ))
    })
}

pub fn dossier(dir: &DataDir, a: DossierArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let store = dir.open()?;
    let people = people(dir, store.as_ref())?;
    let d = trailmark_dossier::build(
        store.as_ref(),
        &people,
        &a.who.policy,
        &a.release,
        &BuildOptions {
            raw_inputs: a.raw_inputs,
            actor: a.who.actor.clone(),
            ..BuildOptions::default()
        },
    )
    .map_err(err)?;
    let bytes = match a.format {
        DossierFormat::Json => {
            serde_json::to_vec_pretty(&d).map_err(|e| CliError::Environment(e.to_string()))?
        }
        DossierFormat::Html => trailmark_dossier::html::render(&d.view, &d.meta()).into_bytes(),
        DossierFormat::Oscal => serde_json::to_vec_pretty(
            &trailmark_dossier::oscal::assessment_results(&d.view, &d.meta()),
        )
        .map_err(|e| CliError::Environment(e.to_string()))?,
        #[cfg(feature = "pdf")]
        DossierFormat::Pdf => trailmark_dossier::pdf::render(&d.view, &d.meta())
            .map_err(|e| CliError::Environment(e.to_string()))?,
    };
    eprintln!(
        "dossier of {}: {} records, {} blobs, {} gaps; export recorded at {}",
        d.release,
        d.records.len(),
        d.blobs.len(),
        d.view.gaps.len(),
        d.export_record
    );
    match a.out {
        Some(path) => std::fs::write(&path, &bytes).map_err(io(path.display().to_string())),
        #[cfg(feature = "pdf")]
        // A binary file ends where it ends: no newline after `%%EOF`.
        None if a.format == DossierFormat::Pdf => write_bytes(out, &bytes),
        None => write_out(out, &bytes),
    }
}

pub fn certify(dir: &DataDir, a: CertifyArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let store = dir.open()?;
    let people = people(dir, store.as_ref())?;
    let signer = dir.signer()?;
    let c = trailmark_dossier::cert::certify(
        store.as_ref(),
        &people,
        &a.who.policy,
        &a.release,
        &a.env,
        &signer,
        &a.who.actor,
    )
    .map_err(err)?;
    eprintln!(
        "certified {} for {} (record {}, gate record {})",
        a.release, a.env, c.record, c.gate_record
    );
    let text =
        serde_json::to_vec_pretty(&c.envelope).map_err(|e| CliError::Environment(e.to_string()))?;
    write_out(out, &text)
}

pub fn verify_dossier(a: VerifyDossierArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let key = load_vkey(&a.vkey)?;
    let bytes = std::fs::read(&a.file).map_err(|e| input(format!("{}: {e}", a.file.display())))?;
    let rep = trailmark_dossier::verify::verify(&bytes, &key)
        .map_err(|e| input(format!("{}: {e}", a.file.display())))?;
    let text = serde_json::to_vec_pretty(&rep).map_err(|e| CliError::Environment(e.to_string()))?;
    write_out(out, &text)?;
    if rep.ok() {
        eprintln!("{}", rep.summary());
        Ok(())
    } else {
        for f in &rep.failures {
            eprintln!("  - {f}");
        }
        Err(CliError::Verification(format!(
            "{} check(s) failed for {}",
            rep.failures.len(),
            a.file.display()
        )))
    }
}

pub fn audit(dir: &DataDir, cmd: AuditCommand, out: &mut dyn Write) -> Result<(), CliError> {
    match cmd {
        AuditCommand::Population { env, from, to, who } => {
            let (from, to) = (time("from", &from)?, time("to", &to)?);
            let store = dir.open()?;
            let people = people(dir, store.as_ref())?;
            let pop = trailmark_dossier::audit::population(
                store.as_ref(),
                &people,
                &who.policy,
                &env,
                from,
                to,
            )
            .map_err(err)?;
            eprintln!(
                "{} deployment(s) to {env}; {} completeness finding(s)",
                pop.deployments.len(),
                pop.completeness.len()
            );
            write_out(
                out,
                &serde_json::to_vec_pretty(&pop)
                    .map_err(|e| CliError::Environment(e.to_string()))?,
            )
        }
        AuditCommand::Sample {
            env,
            from,
            to,
            size,
            checkpoint,
            out: dir_out,
            who,
        } => {
            let (from, to) = (time("from", &from)?, time("to", &to)?);
            if size == 0 {
                return Err(input("--size must be at least 1"));
            }
            let store = dir.open()?;
            let people = people(dir, store.as_ref())?;
            let cp = match checkpoint {
                Some(s) => store.checkpoint(s)?.ok_or_else(|| {
                    input(format!(
                        "--checkpoint {s}: no signed checkpoint of that size"
                    ))
                })?,
                None => store
                    .latest_checkpoint()?
                    .ok_or_else(|| input("the log has no checkpoint yet"))?,
            };
            let pop = trailmark_dossier::audit::population(
                store.as_ref(),
                &people,
                &who.policy,
                &env,
                from,
                to,
            )
            .map_err(err)?;
            let s = trailmark_dossier::audit::sample(&pop, size, &cp);
            std::fs::create_dir_all(&dir_out).map_err(io(dir_out.display().to_string()))?;
            let mut packs = Vec::new();
            let mut done = std::collections::BTreeSet::new();
            for i in &s.selected {
                let Some(rel) = pop
                    .deployments
                    .iter()
                    .find(|d| d.record == *i)
                    .and_then(|d| d.release.clone())
                else {
                    packs.push(json!({"deployment": i, "dossier": null, "why": "the deployed commit belongs to no release"}));
                    continue;
                };
                let file = format!("dossier-{}.json", rel.replace(['/', '@'], "_"));
                if done.insert(rel.clone()) {
                    let d = trailmark_dossier::build(
                        store.as_ref(),
                        &people,
                        &who.policy,
                        &rel,
                        &BuildOptions {
                            raw_inputs: true,
                            actor: who.actor.clone(),
                            ..BuildOptions::default()
                        },
                    )
                    .map_err(err)?;
                    let path = dir_out.join(&file);
                    std::fs::write(
                        &path,
                        serde_json::to_vec_pretty(&d)
                            .map_err(|e| CliError::Environment(e.to_string()))?,
                    )
                    .map_err(io(path.display().to_string()))?;
                }
                packs.push(json!({"deployment": i, "release": rel, "dossier": file}));
            }
            let manifest = json!({"sample": s, "population": pop, "evidence_packs": packs});
            let path = dir_out.join("sample.json");
            let text = serde_json::to_vec_pretty(&manifest)
                .map_err(|e| CliError::Environment(e.to_string()))?;
            std::fs::write(&path, &text).map_err(io(path.display().to_string()))?;
            eprintln!(
                "sampled {} of {} deployment(s) with seed {}; evidence packs in {}",
                s.selected.len(),
                s.population,
                s.seed,
                dir_out.display()
            );
            write_out(
                out,
                &serde_json::to_vec_pretty(&s).map_err(|e| CliError::Environment(e.to_string()))?,
            )
        }
    }
}

pub fn explain(dir: &DataDir, a: ExplainArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let store = dir.open()?;
    let people = people(dir, store.as_ref())?;
    let view = trailmark_dossier::explain(store.as_ref(), &people, &a.who.policy, &a.release)
        .map_err(err)?;
    if a.json {
        return write_out(
            out,
            &serde_json::to_vec_pretty(&view).map_err(|e| CliError::Environment(e.to_string()))?,
        );
    }
    let mut text = format!(
        "{} ({} {}) as of {}\n",
        view.release.id, view.release.name, view.release.version, view.as_of
    );
    for q in &view.questions {
        text.push_str(&format!("\n{} — {}\n", q.title, q.answer.to_uppercase()));
        for s in q.summary.iter().filter(|s| !s.is_empty()) {
            text.push_str(&format!("  {s}\n"));
        }
        if !q.evidence.is_empty() {
            text.push_str(&format!(
                "  evidence: records {}\n",
                q.evidence
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    text.push_str(&format!("\nGaps ({}):\n", view.gaps.len()));
    for g in &view.gaps {
        text.push_str(&format!("  - {g}\n"));
    }
    write_out(out, text.trim_end().as_bytes())
}
