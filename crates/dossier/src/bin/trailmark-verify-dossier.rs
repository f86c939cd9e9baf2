//! `trailmark-verify-dossier FILE --vkey KEY`: the offline verifier on its own, for an auditor
//! who builds only this crate (`cargo build --release -p trailmark-dossier --bin
//! trailmark-verify-dossier`: no database library, network stack or git; the dossier crate's
//! tests hold its dependency tree to that). It does what `trailmark verify-dossier` does: the
//! report as JSON on stdout, a summary or each failure on stderr, and exit 0 when everything
//! verified, 1 when a check failed, 2 for bad usage or a file that cannot be read as a dossier.

use std::io::Write;
use std::process::ExitCode;

use trailmark_log::VerifierKey;

const USAGE: &str = "usage: trailmark-verify-dossier FILE --vkey KEY
  FILE  a dossier exported by `trailmark dossier RELEASE --format json`
  KEY   the log's verifier key (name+hex8+base64), or a file holding it";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(message) => {
            eprintln!("trailmark-verify-dossier: {message}");
            ExitCode::from(2)
        }
    }
}

/// `Ok(verified)`, or the message for a usage or input error.
fn run(args: Vec<String>) -> Result<bool, String> {
    let (mut file, mut vkey) = (None, None);
    let mut args = args.into_iter();
    while let Some(a) = args.next() {
        match a.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(true);
            }
            "--vkey" => vkey = Some(args.next().ok_or("--vkey needs a value")?),
            _ if a.starts_with("--vkey=") => vkey = Some(a["--vkey=".len()..].to_owned()),
            _ if a.starts_with('-') => return Err(format!("unknown option {a:?}\n{USAGE}")),
            _ if file.is_none() => file = Some(a),
            _ => return Err(format!("unexpected argument {a:?}\n{USAGE}")),
        }
    }
    let file = file.ok_or(format!("no dossier FILE given\n{USAGE}"))?;
    let key = key(&vkey.ok_or(format!("--vkey is required\n{USAGE}"))?)?;
    let bytes = std::fs::read(&file).map_err(|e| format!("{file}: {e}"))?;
    let report =
        trailmark_dossier::verify::verify(&bytes, &key).map_err(|e| format!("{file}: {e}"))?;
    let json = serde_json::to_vec_pretty(&report).map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    out.write_all(&json)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .map_err(|e| format!("writing the report: {e}"))?;
    if report.ok() {
        eprintln!("{}", report.summary());
    } else {
        for f in &report.failures {
            eprintln!("  - {f}");
        }
        eprintln!(
            "verification failed: {} check(s) failed for {file}",
            report.failures.len()
        );
    }
    Ok(report.ok())
}

/// The key itself, or a file holding it (as `trailmark verify-dossier --vkey` takes it).
fn key(arg: &str) -> Result<VerifierKey, String> {
    if let Ok(k) = VerifierKey::parse(arg.trim()) {
        return Ok(k);
    }
    let text = std::fs::read_to_string(arg).map_err(|e| {
        format!(
            "--vkey {arg:?} is neither a verifier key (name+hex8+base64) nor a readable file ({e})"
        )
    })?;
    VerifierKey::parse(text.trim()).map_err(|e| format!("{arg}: not a verifier key: {e}"))
}
