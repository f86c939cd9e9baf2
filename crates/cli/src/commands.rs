//! One function per subcommand. Each validates all input before touching the store.

use std::io::{IsTerminal, Read, Write};
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use trailmark_log::{Hash, TlogProof, verify_checkpoint, verify_tlog_proof};
use trailmark_model::{Kind, LogIndex, Subject, Timestamp, parse_records, to_json};
use trailmark_store::{Appended, Query, Store, VerifyOptions, verify_log_with};

use crate::args::{Cli, Command, Format, ImportSource, ProofCommand};
use crate::datadir::{DataDir, load_vkey};
use crate::error::{CliError, input, io};

/// Records per append call on large imports: big enough to amortize the fsync, small enough to
/// move a progress bar.
const IMPORT_CHUNK: usize = 10_000;

pub fn run(cli: Cli, data_dir_explicit: bool) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    let dir = DataDir::new(cli.data_dir.clone()).with_database(cli.database.clone())?;
    match cli.command {
        Command::Serve { config, listen } => crate::service::serve(
            cli.data_dir,
            data_dir_explicit,
            cli.database,
            config,
            listen,
        ),
        Command::Migrate { from, to } => migrate(&dir, from, &to, &mut out),
        Command::Backup {
            dir: dest,
            with_signing_key,
        } => backup(&dir, &dest, with_signing_key, &mut out),
        Command::Token(cmd) => crate::service::token(&dir, cmd, &mut out),
        Command::User(cmd) => crate::service::user(&dir, cmd, &mut out),
        Command::Org(cmd) => crate::service::org(&dir, cmd, &mut out),
        Command::Release(cmd) => crate::governance::release(&dir, cmd, &mut out),
        Command::Gate(args) => crate::governance::gate(&dir, args, &mut out),
        Command::Policy(cmd) => crate::governance::policy(&dir, cmd, &mut out),
        Command::People(cmd) => crate::governance::people_command(&dir, cmd, &mut out),
        Command::Approvals(args) => crate::governance::approvals(&dir, args, &mut out),
        Command::Exception(cmd) => crate::governance::exception(&dir, cmd, &mut out),
        Command::Rollback(cmd) => crate::governance::rollback(&dir, cmd, &mut out),
        Command::Dossier(a) => crate::dossier::dossier(&dir, a, &mut out),
        Command::Certify(a) => crate::dossier::certify(&dir, a, &mut out),
        Command::VerifyDossier(a) => crate::dossier::verify_dossier(a, &mut out),
        Command::Audit(cmd) => crate::dossier::audit(&dir, cmd, &mut out),
        Command::Explain(a) => crate::dossier::explain(&dir, a, &mut out),
        Command::Init { origin } => {
            let (store, verifier) = dir.init(origin)?;
            eprintln!(
                "initialised a Trailmark log in {} (origin {}); the verifier key follows on stdout",
                dir.describe(),
                store.origin()
            );
            writeln!(out, "{verifier}").map_err(stdout_err)
        }
        Command::Record { file, format } => {
            let store = dir.open()?;
            let text = read_input(&file)?;
            let records = parse_records(&text)
                .map_err(|e| input(format!("{}: {e}; nothing was recorded", file.display())))?;
            // Governance records (releases, approvals, policies, gate decisions, the identity
            // map...) come only from the commands that enforce their rules: written as plain
            // evidence they would be permanent and unchecked.
            if let Some((i, r)) = records
                .iter()
                .enumerate()
                .find(|(_, r)| trailmark_policy::kinds::is_governance(r.kind.as_str()))
            {
                return Err(input(format!(
                    "{}: record {}: kind {} is written by trailmark's own commands (release, approve, gate, policy, people...); nothing was recorded",
                    file.display(),
                    i + 1,
                    r.kind
                )));
            }
            // Each chunk is printed as soon as it is durable: what a killed import printed is
            // exactly what it recorded.
            let appended = append_all(store.as_ref(), records, &mut |chunk| {
                print_appended(&mut out, chunk, format)
            })?;
            report_duplicates(&appended);
            Ok(())
        }
        Command::Log {
            kind,
            subject,
            since,
            until,
            after,
            limit,
        } => {
            let query = Query {
                kind: kind
                    .map(|k| Kind::parse(&k).map_err(|r| input(format!("--kind {k:?} {r}"))))
                    .transpose()?,
                subject: subject
                    .map(|s| {
                        s.parse::<Subject>()
                            .map_err(|e| input(format!("--subject: {e}")))
                    })
                    .transpose()?,
                since: since.map(|s| timestamp("--since", &s)).transpose()?,
                until: until.map(|s| timestamp("--until", &s)).transpose()?,
                after: after.map(LogIndex),
                limit,
            };
            let store = dir.open_read_only()?;
            for r in store.query(&query)? {
                writeln!(out, "{}", to_json(&r.record)).map_err(stdout_err)?;
            }
            Ok(())
        }
        Command::Graph {
            subject,
            depth,
            limit,
        } => {
            let start = subject.parse::<Subject>().map_err(input)?;
            let store = dir.open_read_only()?;
            let g = trailmark_store::graph::linked(store.as_ref(), &start, depth, limit)?;
            let doc = json!({
                "subject": start.to_string(),
                "subjects": g.subjects.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "edges": g.edges.iter().map(|e| json!({"from": e.from.to_string(), "rel": e.rel.as_str(), "to": e.to.to_string(), "record": e.record.0})).collect::<Vec<_>>(),
                "records": g.records.values().map(|r| to_json(&r.record)).collect::<Vec<_>>(),
                "truncated": g.truncated,
            });
            writeln!(out, "{doc}").map_err(stdout_err)
        }
        Command::Show { index, leaf } => {
            let store = dir.open_read_only()?;
            let r = store.record(LogIndex(index))?.ok_or_else(|| {
                input(format!(
                    "there is no record {index} (the log has {} records)",
                    store.size().unwrap_or(0)
                ))
            })?;
            if leaf {
                out.write_all(&r.leaf).map_err(stdout_err)
            } else {
                writeln!(out, "{}", to_json(&r.record)).map_err(stdout_err)
            }
        }
        Command::Blob { digest } => {
            let d = digest
                .parse::<trailmark_model::Digest>()
                .map_err(|e| input(format!("{digest:?}: {e}")))?;
            let store = dir.open_read_only()?;
            let bytes = store
                .blob(&d)?
                .ok_or_else(|| input(format!("no blob {d} is stored")))?;
            out.write_all(&bytes).map_err(stdout_err)
        }
        Command::Checkpoint { size } => {
            let store = dir.open_read_only()?;
            let cp = match size {
                None => store
                    .latest_checkpoint()?
                    .ok_or_else(|| input("the log is empty: no checkpoint yet"))?,
                Some(s) => store
                    .checkpoint(s)?
                    .ok_or_else(|| input(format!("no checkpoint is stored for size {s}")))?,
            };
            out.write_all(cp.note.as_bytes()).map_err(stdout_err)
        }
        Command::Proof { kind } => proof(&dir, kind, &mut out),
        Command::Verify { vkey, deep } => {
            let verifiers = dir.verifiers(&vkey)?;
            let store = dir.open_read_only()?;
            verify(store.as_ref(), &verifiers, VerifyOptions { deep }, &mut out)
        }
        Command::VerifyProof {
            file,
            vkey,
            leaf,
            leaf_hash,
            origin,
        } => {
            let verifiers = vkey
                .iter()
                .map(|k| load_vkey(k))
                .collect::<Result<Vec<_>, _>>()?;
            let text = read_input(&file)?;
            let proof =
                TlogProof::parse(&text).map_err(|e| input(format!("{}: {e}", file.display())))?;
            let hash = match (leaf, leaf_hash) {
                (Some(path), None) => {
                    let bytes = std::fs::read(&path)
                        .map_err(|e| input(format!("reading {}: {e}", path.display())))?;
                    trailmark_log::leaf_hash(&bytes)
                }
                (None, Some(h)) => Hash::from_hex(&h)
                    .or_else(|_| Hash::from_base64(&h))
                    .map_err(|_| {
                        input(format!(
                            "--leaf-hash {h:?} is not a 32-byte hash in hex or base64"
                        ))
                    })?,
                _ => {
                    return Err(input(
                        "give the entry to check: --leaf FILE (exact leaf bytes) or --leaf-hash HASH",
                    ));
                }
            };
            let cp = verify_tlog_proof(&proof, &hash, &verifiers, origin.as_deref())
                .map_err(|e| CliError::Verification(format!("{}: {e}", file.display())))?;
            writeln!(
                out,
                "ok: entry {} (leaf hash {}) is in {} at size {} (root {})",
                proof.index,
                hash.to_hex(),
                cp.origin,
                cp.size,
                cp.root.to_base64()
            )
            .map_err(stdout_err)
        }
        Command::VerifyCheckpoint { file, vkey, origin } => {
            let verifiers = vkey
                .iter()
                .map(|k| load_vkey(k))
                .collect::<Result<Vec<_>, _>>()?;
            let text = read_input(&file)?;
            let cp = verify_checkpoint(&text, &verifiers, origin.as_deref())
                .map_err(|e| CliError::Verification(format!("{}: {e}", file.display())))?;
            writeln!(
                out,
                "ok: origin {}\nsize {}\nroot {}",
                cp.origin,
                cp.size,
                cp.root.to_base64()
            )
            .map_err(stdout_err)
        }
        Command::Quickstart => quickstart(&dir, &mut out),
        Command::Identity { map, identities } => {
            let m = match map {
                Some(map) => {
                    let text = std::fs::read_to_string(&map)
                        .map_err(|e| input(format!("cannot read {}: {e}", map.display())))?;
                    trailmark_ingest::identity::IdentityMap::from_json(&text)
                        .map_err(|e| input(format!("{}: {e}", map.display())))?
                }
                None => {
                    let store = dir.open()?;
                    crate::governance::people(&dir, store.as_ref())?
                }
            };
            for raw in &identities {
                let r = m.resolve(raw).ok_or_else(|| {
                    input(format!(
                        "{raw:?} is not KIND:VALUE (email:, github:, gitlab:, jira:, idp:)"
                    ))
                })?;
                let how = match r.how {
                    trailmark_ingest::identity::Match::Mapped => "mapped",
                    trailmark_ingest::identity::Match::NoReply => "noreply",
                    trailmark_ingest::identity::Match::Unmapped => "unmapped",
                };
                writeln!(out, "{}", json!({"identity": raw, "canonical": r.canonical, "person": r.person, "match": how})).map_err(stdout_err)?;
            }
            Ok(())
        }
        Command::Import {
            source:
                ImportSource::Git {
                    path,
                    since,
                    ticket_pattern,
                },
        } => {
            let store = dir.open()?;
            let tickets = trailmark_ingest::TicketPattern::new(&ticket_pattern).map_err(input)?;
            let spinner = if std::io::stderr().is_terminal() {
                ProgressBar::new_spinner()
            } else {
                ProgressBar::hidden()
            };
            let imported =
                trailmark_ingest::git::import(&path, since.as_deref(), &tickets, &mut |n| {
                    spinner.set_message(format!("reading commits: {n}"));
                    spinner.tick();
                })
                .map_err(|e| input(e.to_string()))?;
            spinner.finish_and_clear();
            let total = imported.records.len();
            let appended = append_all(store.as_ref(), imported.records, &mut |_| Ok(()))?;
            let new = appended.iter().filter(|a| !a.duplicate).count();
            writeln!(
                out,
                "{}: {total} commits read, {new} new recorded, {} already present",
                imported.repo,
                total - new
            )
            .map_err(stdout_err)?;
            for s in &imported.skipped {
                eprintln!("skipped {}: {}", s.what, s.reason);
            }
            Ok(())
        }
        Command::Ingest {
            files,
            format,
            commit,
            build,
            event,
            delivery,
            output,
        } => {
            let format = format
                .map(|f| {
                    f.parse::<trailmark_ingest::Format>()
                        .map_err(|e| input(format!("--format: {e}")))
                })
                .transpose()?;
            let store = dir.open()?;
            let mut failed = Vec::new();
            for file in &files {
                let ctx = trailmark_ingest::Context {
                    event: event.clone(),
                    delivery: delivery.clone(),
                    commit: commit.clone(),
                    build: build.clone(),
                    filename: file.file_name().map(|f| f.to_string_lossy().into_owned()),
                    ..Default::default()
                };
                match ingest_file(store.as_ref(), file, format, &ctx, output, &mut out) {
                    Ok(()) => {}
                    Err(CliError::Input(m)) => {
                        eprintln!("trailmark: {m}");
                        failed.push(file.display().to_string());
                    }
                    Err(e) => return Err(e),
                }
            }
            if failed.is_empty() {
                Ok(())
            } else {
                Err(input(format!(
                    "{} of {} files were refused and nothing of them was stored: {}",
                    failed.len(),
                    files.len(),
                    failed.join(", ")
                )))
            }
        }
    }
}

fn ingest_file(
    store: &dyn Store,
    file: &Path,
    format: Option<trailmark_ingest::Format>,
    ctx: &trailmark_ingest::Context,
    output: Format,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let bytes = if file == Path::new("-") {
        let mut b = Vec::new();
        std::io::stdin()
            .read_to_end(&mut b)
            .map_err(io("reading stdin".into()))?;
        b
    } else {
        std::fs::read(file).map_err(|e| input(format!("cannot read {}: {e}", file.display())))?
    };
    let ingested = trailmark_ingest::ingest(&bytes, format, ctx)
        .map_err(|e| input(format!("{}: {e}", file.display())))?;
    let n = ingested.records.len();
    let appended = store.append_with_blobs(ingested.records, vec![ingested.raw])?;
    print_appended(out, &appended, output)?;
    let skipped = &ingested.skipped;
    eprintln!(
        "{}: {} ({}): {n} records{}",
        file.display(),
        ingested.format,
        trailmark_model::Digest::of(&bytes),
        if skipped.is_empty() {
            String::new()
        } else {
            format!("; {} parts skipped", skipped.len())
        }
    );
    for s in skipped.iter().take(20) {
        eprintln!("  skipped {}: {}", s.what, s.reason);
    }
    if skipped.len() > 20 {
        eprintln!("  ... and {} more skipped", skipped.len() - 20);
    }
    report_duplicates(&appended);
    Ok(())
}

pub(crate) fn stdout_err(e: std::io::Error) -> CliError {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        return CliError::BrokenPipe;
    }
    CliError::Environment(format!("writing to stdout: {e}"))
}

fn timestamp(flag: &str, s: &str) -> Result<Timestamp, CliError> {
    Timestamp::parse_rfc3339(s).ok_or_else(|| {
        input(format!(
            "{flag} {s:?} is not an RFC 3339 time with offset (e.g. 2026-01-31T12:00:00Z)"
        ))
    })
}

fn read_input(file: &Path) -> Result<String, CliError> {
    let mut bytes = Vec::new();
    if file == Path::new("-") {
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(io("reading stdin".into()))?;
    } else {
        bytes = std::fs::read(file)
            .map_err(|e| input(format!("cannot read {}: {e}", file.display())))?;
    }
    String::from_utf8(bytes).map_err(|e| {
        input(format!(
            "{} is not UTF-8 text (byte {})",
            file.display(),
            e.utf8_error().valid_up_to()
        ))
    })
}

fn progress(len: u64, what: &'static str) -> ProgressBar {
    // Drawn only on a terminal (stderr); pipes and CI logs stay clean.
    if !std::io::stderr().is_terminal() || len < 50_000 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(&format!(
        "{what} {{bar:40}} {{pos}}/{{len}} ({{per_sec}}, eta {{eta}})"
    )) {
        bar.set_style(style);
    }
    bar
}

fn append_all(
    store: &dyn Store,
    records: Vec<trailmark_model::NewRecord>,
    on_durable: &mut dyn FnMut(&[Appended]) -> Result<(), CliError>,
) -> Result<Vec<Appended>, CliError> {
    let total = records.len();
    let bar = progress(total as u64, "recording");
    let mut appended = Vec::with_capacity(total);
    let mut records = records.into_iter().peekable();
    while records.peek().is_some() {
        let chunk: Vec<_> = records.by_ref().take(IMPORT_CHUNK).collect();
        let n = chunk.len() as u64;
        match store.append(chunk) {
            Ok(a) => {
                on_durable(&a)?;
                appended.extend(a);
            }
            Err(e) if appended.is_empty() => return Err(e.into()),
            Err(e) => {
                // Earlier chunks are durable and stay: say exactly how far the import got.
                bar.abandon();
                return Err(CliError::Environment(format!(
                    "{e}; the first {} of {total} records were recorded (up to index {}), the rest were not",
                    appended.len(),
                    appended.last().map_or(0, |a: &Appended| a.index.0)
                )));
            }
        }
        bar.inc(n);
    }
    bar.finish_and_clear();
    Ok(appended)
}

fn print_appended(
    out: &mut impl Write,
    appended: &[Appended],
    format: Format,
) -> Result<(), CliError> {
    for a in appended {
        let line = match format {
            Format::Text => format!(
                "{}\t{}{}",
                a.index,
                a.leaf_hash.to_hex(),
                if a.duplicate { "\tduplicate" } else { "" }
            ),
            Format::Json => json!({"index": a.index.0, "leaf_hash": a.leaf_hash.to_hex(), "duplicate": a.duplicate}).to_string(),
        };
        writeln!(out, "{line}").map_err(stdout_err)?;
    }
    out.flush().map_err(stdout_err)
}

fn report_duplicates(appended: &[Appended]) {
    let dups = appended.iter().filter(|a| a.duplicate).count();
    if dups > 0 {
        eprintln!(
            "{dups} of {} records were already recorded (same idempotency key); their first index is shown",
            appended.len()
        );
    }
}

fn proof(dir: &DataDir, kind: ProofCommand, out: &mut impl Write) -> Result<(), CliError> {
    let store = dir.open_read_only()?;
    match kind {
        ProofCommand::Inclusion {
            index,
            size,
            format,
        } => {
            let cp = match size {
                None => store.latest_checkpoint()?.ok_or_else(|| input("the log is empty"))?,
                Some(s) => store.checkpoint(s)?.ok_or_else(|| {
                    input(format!("no signed checkpoint for size {s}; use a size `trailmark checkpoint --size` knows, or omit --size"))
                })?,
            };
            if index >= cp.size {
                return Err(input(format!(
                    "index {index} is not in the tree of size {}",
                    cp.size
                )));
            }
            let path = store.inclusion_proof(LogIndex(index), cp.size)?;
            let record = store
                .record(LogIndex(index))?
                .ok_or_else(|| input(format!("there is no record {index}")))?;
            let proof = TlogProof {
                index,
                proof: path,
                checkpoint: cp.note.clone(),
            };
            let text = match format {
                Format::Text => proof.to_text(),
                Format::Json => format!(
                    "{}\n",
                    json!({
                        "index": index,
                        "size": cp.size,
                        "leaf_hash": record.leaf_hash.to_base64(),
                        "proof": proof.proof.iter().map(Hash::to_base64).collect::<Vec<_>>(),
                        "checkpoint": cp.note,
                    })
                ),
            };
            out.write_all(text.as_bytes()).map_err(stdout_err)
        }
        ProofCommand::Consistency { from, to } => {
            let to = match to {
                Some(t) => t,
                None => store.size()?,
            };
            let proof = store.consistency_proof(from, to)?;
            let doc = json!({
                "size1": from,
                "size2": to,
                "root1": store.root(from)?.to_base64(),
                "root2": store.root(to)?.to_base64(),
                "proof": proof.iter().map(Hash::to_base64).collect::<Vec<_>>(),
            });
            writeln!(out, "{doc}").map_err(stdout_err)
        }
    }
}

fn verify(
    store: &dyn Store,
    verifiers: &[trailmark_log::VerifierKey],
    options: VerifyOptions,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let total = store.size()?;
    let bar = progress(total, "verifying");
    let report = verify_log_with(store, verifiers, options, &mut |done, _| {
        bar.set_position(done)
    })?;
    bar.finish_and_clear();
    if report.is_ok() {
        let latest = report.latest.as_ref().map_or("empty log".to_owned(), |c| {
            format!(
                "latest checkpoint size {} root {}",
                c.size,
                c.root.to_base64()
            )
        });
        writeln!(
            out,
            "ok: {} records, {} checkpoints and {} tree hashes verified; {latest}",
            report.records, report.checkpoints, report.nodes
        )
        .map_err(stdout_err)?;
        return Ok(());
    }
    for f in &report.failures {
        writeln!(out, "FAIL: {f}").map_err(stdout_err)?;
    }
    if report.truncated {
        writeln!(out, "FAIL: (more failures not shown)").map_err(stdout_err)?;
    }
    let first = report.first_bad_index().unwrap_or(0);
    Err(CliError::Verification(format!(
        "the log was altered; first bad index {first} ({} problem(s) found)",
        report.failures.len()
    )))
}

/// `trailmark backup DIR`: see its help. What it created is removed again when any step fails,
/// so a directory it leaves behind is always a whole, verified copy.
fn backup(
    dir: &DataDir,
    dest: &std::path::Path,
    with_signing_key: bool,
    out: &mut impl Write,
) -> Result<(), CliError> {
    if dir.is_postgres() {
        return Err(input(
            "backup copies the embedded store; back up a PostgreSQL log with the database's own tools (pg_dump or base backups)",
        ));
    }
    // Checks the source is a store before anything is created.
    let source = dir.open_read_only()?;
    let verifier = source.verifier().clone();
    drop(source);
    let created = match std::fs::read_dir(dest) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(input(format!(
                    "{} is not empty; back up into a new directory",
                    dest.display()
                )));
            }
            false
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder
                .create(dest)
                .map_err(io(format!("creating {}", dest.display())))?;
            true
        }
        Err(e) => return Err(input(format!("{}: {e}", dest.display()))),
    };
    let target = DataDir::new(dest.to_owned());
    let result = (|| {
        trailmark_store::SqliteStore::open_read_only(&dir.db())?.snapshot_to(&target.db())?;
        let mut files = vec!["trailmark.db"];
        if dir.access_db().exists() {
            trailmark_access::AccessStore::snapshot_file(&dir.access_db(), &target.access_db())
                .map_err(|e| CliError::Environment(e.to_string()))?;
            files.push("access.db");
        }
        if dir.verifier_key().exists() {
            std::fs::copy(dir.verifier_key(), target.verifier_key())
                .map_err(io(format!("copying {}", dir.verifier_key().display())))?;
            files.push("verifier.key");
        }
        if with_signing_key {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let key = std::fs::read(dir.signing_key_file())
                .map_err(io(format!("reading {}", dir.signing_key_file().display())))?;
            let mut f = options.open(target.signing_key_file()).map_err(io(format!(
                "creating {}",
                target.signing_key_file().display()
            )))?;
            f.write_all(&key)
                .and_then(|()| f.sync_all())
                .map_err(io(format!(
                    "writing {}",
                    target.signing_key_file().display()
                )))?;
            files.push("signing.key");
        }
        // The copy must stand on its own: every leaf, tree hash and checkpoint re-checked.
        let copy = trailmark_store::SqliteStore::open_read_only(&target.db())?;
        let total = copy.size()?;
        let bar = progress(total, "verifying the copy");
        let report =
            trailmark_store::verify_log(&copy, std::slice::from_ref(&verifier), &mut |done, _| {
                bar.set_position(done)
            })?;
        bar.finish_and_clear();
        if !report.is_ok() {
            return Err(CliError::Verification(format!(
                "the copy does not verify: {}",
                report
                    .failures
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            )));
        }
        Ok((report, files))
    })();
    let (report, files) = match result {
        Ok(x) => x,
        Err(e) => {
            if created {
                let _ = std::fs::remove_dir_all(dest);
            } else if let Ok(entries) = std::fs::read_dir(dest) {
                for entry in entries.flatten() {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
            return Err(e);
        }
    };
    if !with_signing_key {
        eprintln!(
            "backed up to {}; the signing key was not copied (it is a secret: keep it apart, or use --with-signing-key)",
            dest.display()
        );
    }
    let (size, root) = report
        .latest
        .as_ref()
        .map_or((0, String::new()), |c| (c.size, c.root.to_base64()));
    crate::governance::print(
        out,
        &serde_json::json!({"dir": dest.display().to_string(), "size": size, "root": root, "files": files}),
    )
}

fn migrate(
    dir: &DataDir,
    from: Option<String>,
    to: &str,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let path = match &from {
        Some(f) => std::path::PathBuf::from(f.strip_prefix("sqlite://").unwrap_or(f)),
        None => dir.db(),
    };
    if !path.is_file() {
        return Err(input(format!(
            "--from: no embedded store at {}",
            path.display()
        )));
    }
    if !trailmark_store::PgStore::is_url(to) {
        return Err(input("--to must be a postgres:// URL".to_owned()));
    }
    let source = trailmark_store::SqliteStore::open_read_only(&path)?;
    let target = trailmark_store::PgStore::create(to, source.origin(), dir.signer()?)?;
    let total = source.size()?;
    let bar = progress(total, "migrating");
    let copied = target.import_from(&source, &mut |done, _| bar.set_position(done))?;
    bar.finish_and_clear();
    // The copy must be the same log: every checkpoint note identical, every root equal, and
    // the target verifies on its own.
    let mut after = None;
    let mut checkpoints = 0u64;
    loop {
        let page = source.raw_checkpoints(after, 1000)?;
        let Some(last) = page.last() else { break };
        after = Some(last.size);
        for cp in page {
            let theirs = target.checkpoint(cp.size)?;
            if theirs.as_ref().map(|t| &t.note) != Some(&cp.note)
                || target.root(cp.size)? != source.root(cp.size)?
            {
                return Err(CliError::Verification(format!(
                    "checkpoint {} differs after migration",
                    cp.size
                )));
            }
            checkpoints += 1;
        }
    }
    let report = verify_log_with(
        &target,
        &[target.verifier().clone()],
        VerifyOptions::default(),
        &mut |_, _| {},
    )?;
    if !report.is_ok() {
        return Err(CliError::Verification(format!(
            "the migrated log does not verify: {report:?}"
        )));
    }
    let root = target.root(copied)?.to_base64();
    eprintln!(
        "migrated {copied} records and {checkpoints} checkpoints to {}; every root is equal",
        target.database()
    );
    writeln!(
        out,
        "{}",
        json!({"records": copied, "checkpoints": checkpoints, "size": copied, "root": root})
    )
    .map_err(stdout_err)
}

/// The README's first command: a tour that leaves a working log behind.
fn quickstart(dir: &DataDir, out: &mut impl Write) -> Result<(), CliError> {
    let store = if dir.exists() {
        eprintln!("using the existing store in {}", dir.describe());
        dir.open()?
    } else {
        let (store, verifier) = dir.init(None)?;
        eprintln!("initialised {} — verifier key: {verifier}", dir.describe());
        store
    };
    let samples = include_str!("../quickstart.jsonl");
    let records = parse_records(samples)
        .map_err(|e| CliError::Environment(format!("built-in sample: {e}")))?;
    eprintln!(
        "recording {} sample evidence records (idempotent: re-running appends nothing new)",
        records.len()
    );
    let appended = append_all(store.as_ref(), records, &mut |chunk| {
        print_appended(out, chunk, Format::Text)
    })?;
    report_duplicates(&appended);
    let cp = store
        .latest_checkpoint()?
        .ok_or_else(|| CliError::Environment("no checkpoint after recording".into()))?;
    writeln!(out, "\nsigned checkpoint:\n{}", cp.note).map_err(stdout_err)?;
    let verifiers = dir.verifiers(&[])?;
    verify(store.as_ref(), &verifiers, VerifyOptions::default(), out)?;
    eprintln!(
        "\nnext: `trailmark --data-dir {0} log`, `trailmark --data-dir {0} proof inclusion --index 0`",
        dir.db()
            .parent()
            .map_or(".".into(), |p| p.display().to_string())
    );
    Ok(())
}
