//! `trailmark release|gate|policy|approvals|exception|rollback` as a pipeline runs them: a real
//! git repository, real fixtures, a signed-in approver, exit codes 0/1/2.

use std::path::Path;

use crate::{Env, code, exits_with, git, stderr};

const POLICY: &str = r#"
name = "default"

[approvals.release]
roles = ["approver"]
min = 1
[approvals.release.sla]
warn_after = "4h"
due_after = "1d"
escalate_to = "release-manager"

[gates.production]
checks = ["commits_have_tickets", "tests_pass", "approvals", "separation_of_duties"]
rego = ["deployer.rego"]
"#;

const REGO: &str = r#"package trailmark.gate
deny contains "name the deployer for production" if {
  input.environment == "production"
  input.deployer == null
}
"#;

fn fixture(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/ingest")
        .join(rel)
        .display()
        .to_string()
}

#[test]
fn a_release_is_gated_approved_replayed_and_broken_glass_from_the_command_line() {
    let env = Env::new();
    let vkey = env.init();
    // A repository with a tagged first release and two commits since, one without a ticket.
    let repo = env.file("keep", "").parent().unwrap().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("a.txt"), "1").unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "PAY-1 first"]);
    git(&repo, &["tag", "v1"]);
    std::fs::write(repo.join("a.txt"), "2").unwrap();
    git(&repo, &["commit", "-q", "-am", "PAY-2 second"]);
    std::fs::write(repo.join("a.txt"), "3").unwrap();
    git(&repo, &["commit", "-q", "-am", "tidy up"]);
    git(&repo, &["tag", "v2"]);
    env.ok(&["import", "git", repo.to_str().unwrap()]);
    let head = String::from_utf8(
        std::process::Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(["rev-parse", "v2"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_owned();

    env.file("deployer.rego", REGO);
    let policy = env.file("policy.toml", POLICY);
    let applied = env.ok(&[
        "policy",
        "apply",
        policy.to_str().unwrap(),
        "--as",
        "person:rm",
    ]);
    assert!(applied.contains(r#""active": true"#), "{applied}");
    let bad = env.file(
        "bad.toml",
        "name = \"default\"\n[gates.x]\nchecks = [\"nope\"]\n",
    );
    let out = env.run(&["policy", "apply", bad.to_str().unwrap()]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("nope"), "{}", stderr(&out));

    let created = env.ok(&[
        "release",
        "create",
        "--project",
        "acme/pay",
        "--name",
        "pay",
        "--version",
        "2.0",
        "--env",
        "production",
        "--as",
        "person:rm",
    ]);
    assert!(created.contains("acme/pay/pay@2.0"), "{created}");
    let r = "acme/pay/pay@2.0";
    let out = env.run(&[
        "release",
        "link",
        r,
        "--git-range",
        "nope..v2",
        "--repo",
        repo.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("nope"), "{}", stderr(&out));
    let linked = env.ok(&[
        "release",
        "link",
        r,
        "--git-range",
        "v1..v2",
        "--repo",
        repo.to_str().unwrap(),
        "--doc",
        "runbook=wiki/pay@3",
    ]);
    assert!(
        linked.contains(r#""linked": 3"#),
        "two commits and a runbook: {linked}"
    );
    env.ok(&[
        "ingest",
        "--format",
        "junit",
        "--commit",
        &head,
        &fixture("junit/TEST-uk.co.gresearch.spark.diff.DiffOptionsSuite.xml"),
    ]);

    // Denied: one commit has no ticket, nobody approved, no deployer named.
    let out = env.run(&["gate", "--release", r, "--env", "production"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["decision"], "deny");
    let err = stderr(&out);
    assert!(
        err.contains("has no linked ticket")
            && err.contains("name the deployer")
            && err.contains("0 of 1 required"),
        "{err}"
    );
    let first_decision = json["record"].as_u64().unwrap();

    // Approvers sign in. The requester may not approve.
    env.ok(&["org", "create", "acme"]);
    env.ok(&["org", "project", "acme/pay"]);
    for u in ["alice", "rm"] {
        let out = env.run_stdin(
            &["user", "create", u, "--org", "acme"],
            Some("correct horse battery staple\n"),
        );
        assert!(out.status.success(), "{}", stderr(&out));
        env.ok(&[
            "user", "grant", u, "--role", "approver", "--scope", "acme/pay",
        ]);
    }
    let pending = env.ok(&["approvals"]);
    assert!(
        pending.contains(r#""subject": "release:acme/pay/pay@2.0""#)
            && pending.contains(r#""sla": "ok""#),
        "{pending}"
    );
    let out = env.run_stdin(
        &["release", "approve", r, "--user", "rm"],
        Some("correct horse battery staple\n"),
    );
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("requested the release"),
        "{}",
        stderr(&out)
    );
    let out = env.run_stdin(
        &["release", "approve", r, "--user", "alice"],
        Some("wrong password\n"),
    );
    assert_eq!(code(&out), 2);
    let approved = env.run_stdin(
        &[
            "release",
            "approve",
            r,
            "--user",
            "alice",
            "--comment",
            "ok",
        ],
        Some("correct horse battery staple\n"),
    );
    assert!(approved.status.success(), "{}", stderr(&approved));

    // Still denied (the untracked commit), but an exception lets the emergency deploy through.
    let out = env.run(&[
        "gate",
        "--release",
        r,
        "--env",
        "production",
        "--deployer",
        "person:bob",
    ]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let raised = env.ok(&[
        "exception",
        "raise",
        "--release",
        r,
        "--env",
        "production",
        "--reason",
        "hotfix",
        "--valid-for",
        "8h",
        "--control",
        "second engineer watching",
        "--as",
        "person:bob",
    ]);
    assert!(raised.contains("acme/pay/EXC-"), "{raised}");
    let out = env.run(&[
        "gate",
        "--release",
        r,
        "--env",
        "production",
        "--deployer",
        "person:bob",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("ALLOW under exception"),
        "{}",
        stderr(&out)
    );
    let checks = env.ok(&["release", "checks", r]);
    assert!(
        checks.find(r#""status": "failing""#) < checks.find(r#""status": "passing""#),
        "failing first: {checks}"
    );

    // Replay the first decision: reproduced from its recorded input and policy.
    let replay = env.ok(&["policy", "replay", &first_decision.to_string()]);
    assert!(replay.contains(r#""reproduced": true"#), "{replay}");
    let show = env.ok(&["release", "show", r]);
    assert!(
        show.contains("\"monitoring\": false") && show.contains("\"evidence_digest\": \"sha256:"),
        "{show}"
    );
    let verify = env.run(&["verify"]);
    assert!(verify.status.success(), "{}", stderr(&verify));

    // Certification needs the exception approved; the dossier verifies offline either way.
    let out = env.run(&["certify", "--release", r, "--env", "production"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("no retrospective approval yet"),
        "{}",
        stderr(&out)
    );
    let file = env.file("dossier.json", "");
    env.ok(&[
        "dossier",
        "--release",
        r,
        "--raw-inputs",
        "--out",
        file.to_str().unwrap(),
    ]);
    let out = env.run(&["verify-dossier", file.to_str().unwrap(), "--vkey", &vkey]);
    exits_with(
        &out,
        0,
        &[
            "verified (trailmark.dossier/v3): ",
            "no recorded identity map",
        ],
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["identity_map_record"].is_null());
    assert_eq!(report["format"], "trailmark.dossier/v3");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("\"answer\": \"partial\""), "{text}");
    let tampered = env.file(
        "tampered.json",
        &text.replacen("\"answer\": \"partial\"", "\"answer\": \"yes\"", 1),
    );
    let out = env.run(&[
        "verify-dossier",
        tampered.to_str().unwrap(),
        "--vkey",
        &vkey,
    ]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the view (questions, matrix, controls, gaps) does not match")
            && stderr(&out)
                .contains("/answer the file has \"yes\" where the records give \"partial\""),
        "{}",
        stderr(&out)
    );
    let garbage = env.file("garbage.json", "{\"not\": \"a dossier\"}");
    assert_eq!(
        code(&env.run(&["verify-dossier", garbage.to_str().unwrap(), "--vkey", &vkey])),
        2
    );
    let page = env.ok(&["dossier", "--release", r, "--format", "html"]);
    assert!(
        page.contains("<html lang=\"en\">") && page.contains("acme/pay/pay@2.0"),
        "{page}"
    );
    let oscal = env.ok(&["dossier", "--release", r, "--format", "oscal"]);
    assert!(oscal.contains("\"assessment-results\""), "{oscal}");
    if cfg!(feature = "pdf") {
        // To a file, and to stdout byte for byte (no newline after %%EOF).
        let pdf = env.file("dossier.pdf", "");
        env.ok(&[
            "dossier",
            "--release",
            r,
            "--format",
            "pdf",
            "--out",
            pdf.to_str().unwrap(),
        ]);
        let bytes = std::fs::read(&pdf).unwrap();
        assert!(bytes.starts_with(b"%PDF-"));
        let pdfa = b"<pdfaid:part>2</pdfaid:part>";
        assert!(bytes.windows(pdfa.len()).any(|w| w == pdfa), "not PDF/A-2");
        let out = env.run(&["dossier", "--release", r, "--format", "pdf"]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert!(out.stdout.starts_with(b"%PDF-") && out.stdout.ends_with(b"%%EOF"));
    } else {
        let out = env.run(&["dossier", "--release", r, "--format", "pdf"]);
        assert_eq!(code(&out), 2, "{}", stderr(&out));
    }
    // The auditor's population and a sample drawn from it, with its evidence pack.
    env.ok(&[
        "ingest",
        "--format",
        "github",
        &fixture("github/deployment_status/payload.json"),
    ]);
    let pop = env.ok(&[
        "audit",
        "population",
        "--env",
        "production",
        "--from",
        "2000-01-01T00:00:00Z",
        "--to",
        "2999-01-01T00:00:00Z",
    ]);
    assert!(pop.contains("belongs to no release"), "{pop}");
    let dir = env.file("keep2", "").parent().unwrap().join("sample");
    let sample = env.ok(&[
        "audit",
        "sample",
        "--env",
        "production",
        "--from",
        "2000-01-01T00:00:00Z",
        "--to",
        "2999-01-01T00:00:00Z",
        "--size",
        "1",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(sample.contains("\"population\": 1"), "{sample}");
    let pack = std::fs::read_to_string(dir.join("sample.json")).unwrap();
    assert!(
        pack.contains("the deployed commit belongs to no release"),
        "{pack}"
    );
    let out = env.run(&[
        "audit",
        "population",
        "--env",
        "production",
        "--from",
        "yesterday",
        "--to",
        "2999-01-01T00:00:00Z",
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("--from \"yesterday\""),
        "{}",
        stderr(&out)
    );
    let explained = env.ok(&["explain", "--release", r]);
    assert!(
        explained
            .contains("Was every change requested and authorized before it shipped? — PARTIAL"),
        "{explained}"
    );
    assert!(explained.contains("has no linked ticket"), "{explained}");
}
