//! Data-driven: every file under ../shared/fixtures/ingest/ has a checked-in expectation in
//! tests/expect/*.json (one file per adapter family), and this test checks each outcome: the
//! detected format, record counts per kind, key fields, skipped parts — or the exact reason a
//! file is refused.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use trailmark_ingest::{Context, Format, detect, ingest};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/ingest"
);
const EXPECT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/expect");

fn fixture_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            fixture_files(&p, out);
        } else if p.file_name().unwrap() != "MANIFEST.tsv" {
            out.push(p);
        }
    }
}

fn expectations() -> BTreeMap<String, Value> {
    let mut all = BTreeMap::new();
    for e in std::fs::read_dir(EXPECT).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "json") {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            for (k, v) in v.as_object().unwrap() {
                assert!(
                    all.insert(k.clone(), v.clone()).is_none(),
                    "{k} is expected twice"
                );
            }
        }
    }
    all
}

pub fn context_for(rel: &str) -> Context {
    let path = Path::new(rel);
    let mut ctx = Context {
        filename: path.file_name().map(|f| f.to_string_lossy().into_owned()),
        ..Context::default()
    };
    // GitHub carries the event name in a header; the fixtures carry it in the directory.
    if rel.starts_with("github/") {
        ctx.event = path
            .parent()
            .and_then(|p| p.file_name())
            .map(|f| f.to_string_lossy().into_owned());
    }
    ctx
}

fn check(rel: &str, bytes: &[u8], exp: &Value) -> Result<(), String> {
    let format: Format = exp["format"]
        .as_str()
        .ok_or("expectation has no format")?
        .parse()?;
    let ctx = context_for(rel);
    let result = ingest(bytes, Some(format), &ctx);
    if let Some(err) = exp.get("error").and_then(Value::as_str) {
        return match result {
            Ok(i) => Err(format!(
                "expected refusal containing {err:?}, got {} records",
                i.records.len()
            )),
            Err(e) if e.to_string().contains(err) => Ok(()),
            Err(e) => Err(format!(
                "expected refusal containing {err:?}, got {e:?}: {e}"
            )),
        };
    }
    let ing = result.map_err(|e| format!("refused: {e}"))?;
    if exp.get("detect").and_then(Value::as_bool) != Some(false) {
        let detected = detect(bytes, &ctx);
        if detected != Some(format) {
            return Err(format!("detected as {detected:?}, expected {format}"));
        }
    }
    let records: Vec<Value> = ing
        .records
        .iter()
        .map(trailmark_model::input::to_value)
        .collect();
    if let Some(n) = exp.get("records").and_then(Value::as_u64)
        && records.len() as u64 != n
    {
        return Err(format!(
            "{} records, expected {n}: kinds {:?}",
            records.len(),
            kinds(&records)
        ));
    }
    if let Some(k) = exp.get("kinds") {
        let want: BTreeMap<String, u64> =
            serde_json::from_value(k.clone()).map_err(|e| e.to_string())?;
        if kinds(&records) != want {
            return Err(format!("kinds {:?}, expected {want:?}", kinds(&records)));
        }
    }
    let skipped = ing.skipped.len() as u64;
    let want_skipped = exp.get("skipped").and_then(Value::as_u64).unwrap_or(0);
    if skipped != want_skipped {
        return Err(format!(
            "{skipped} skipped, expected {want_skipped}: {:?}",
            ing.skipped
        ));
    }
    for f in exp
        .get("fields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let i = f["record"].as_u64().unwrap_or(0) as usize;
        let ptr = f["pointer"].as_str().ok_or("field without pointer")?;
        let got = records.get(i).and_then(|r| r.pointer(ptr));
        if got != Some(&f["equals"]) {
            return Err(format!(
                "record {i} {ptr} = {got:?}, expected {}",
                f["equals"]
            ));
        }
    }
    // Every record links to the raw input's digest, which is the raw bytes' SHA-256.
    let digest = trailmark_model::Digest::of(bytes).to_string();
    if ing.raw.digest().to_string() != digest
        || ing
            .records
            .iter()
            .any(|r| !r.links.iter().any(|l| l.to.id == digest))
    {
        return Err("records do not link to the raw input".into());
    }
    Ok(())
}

fn kinds(records: &[Value]) -> BTreeMap<String, u64> {
    let mut k = BTreeMap::new();
    for r in records {
        *k.entry(r["kind"].as_str().unwrap_or("?").to_owned())
            .or_insert(0) += 1;
    }
    k
}

#[test]
fn every_shared_fixture_has_the_expected_outcome() {
    let mut files = Vec::new();
    fixture_files(Path::new(FIXTURES), &mut files);
    assert!(
        files.len() >= 200,
        "shared fixtures missing: found {}",
        files.len()
    );
    let expect = expectations();
    let mut failures = Vec::new();
    let mut missing = Vec::new();
    for f in &files {
        let rel = f
            .strip_prefix(FIXTURES)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let Some(exp) = expect.get(&rel) else {
            missing.push(rel);
            continue;
        };
        let bytes = std::fs::read(f).unwrap();
        if let Err(e) = check(&rel, &bytes, exp) {
            failures.push(format!("{rel}: {e}"));
        }
    }
    assert!(
        missing.is_empty(),
        "fixtures without an expectation:\n{}",
        missing.join("\n")
    );
    assert!(
        failures.is_empty(),
        "{} of {} fixtures differ:\n{}",
        failures.len(),
        expect.len(),
        failures.join("\n")
    );
}

#[test]
fn ticket_keys_are_found_on_word_boundaries() {
    assert!(
        trailmark_ingest::TicketPattern::new("x*").is_err(),
        "empty matches refused"
    );
    assert!(trailmark_ingest::TicketPattern::new("(").is_err());
    let grouped = trailmark_ingest::TicketPattern::new(r"#([0-9]+)\b").unwrap();
    assert_eq!(grouped.find("fixes #12 and #7"), vec!["12", "7"]);
    let p = trailmark_ingest::TicketPattern::default();
    assert_eq!(
        p.find("PAY-142: fix; see also OPS-7 and PAY-142"),
        vec!["PAY-142", "OPS-7"]
    );
    assert_eq!(p.find("feature/ABC-12-login"), vec!["ABC-12"]);
    assert!(p.find("xABC-12 A-1 abc-1 ABC- ABC-12x").is_empty());
    let only = trailmark_ingest::TicketPattern::new(r"\b(?:OPS)-[0-9]+\b").unwrap();
    assert_eq!(only.find("PAY-1 OPS-2"), vec!["OPS-2"]);
}

#[test]
fn empty_and_unknown_inputs_are_refused() {
    let ctx = Context::default();
    assert_eq!(
        ingest(b"", None, &ctx).unwrap_err().to_string(),
        "the input is empty (0 bytes)"
    );
    assert!(
        ingest(b"hello world", None, &ctx)
            .unwrap_err()
            .to_string()
            .contains("cannot tell the input's format")
    );
}

/// Dialects without a shared fixture, from their documented output shapes.
mod dialects {
    use trailmark_ingest::{Context, Format, ingest};

    fn report(xml: &str) -> serde_json::Value {
        let ctx = Context {
            commit: Some("9fceb02d0ae598e95dc970b74767f19372d61af8".into()),
            build: Some("ci-7".into()),
            ..Context::default()
        };
        let ing = ingest(xml.as_bytes(), None, &ctx).unwrap();
        assert_eq!(ing.format, Format::Junit);
        assert_eq!(ing.records.len(), 1);
        trailmark_model::input::to_value(&ing.records[0])
    }

    #[test]
    fn mocha_junit_reporter() {
        let r = report(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="Mocha Tests" time="0.0300" tests="3" failures="1">
  <testsuite name="Root Suite" timestamp="2026-11-20T10:15:00" tests="0" time="0.0000" failures="0"></testsuite>
  <testsuite name="cart" timestamp="2026-11-20T10:15:00" tests="3" file="/app/test/cart.spec.js" time="0.0300" failures="1">
    <testcase name="cart adds items" time="0.0010" classname="adds items"></testcase>
    <testcase name="cart removes items" time="0.0020" classname="removes items"></testcase>
    <testcase name="cart totals" time="0.0270" classname="totals">
      <failure message="expected 3 to equal 4" type="AssertionError"><![CDATA[AssertionError: expected 3 to equal 4
    at Context.<anonymous> (test/cart.spec.js:20:10)]]></failure>
    </testcase>
  </testsuite>
</testsuites>"#,
        );
        assert_eq!(r["payload"]["totals"]["tests"], 3);
        assert_eq!(r["payload"]["totals"]["failures"], 1);
        assert_eq!(r["payload"]["totals"]["duration_ms"], 30);
        assert!(
            r["subjects"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["id"] == "ci-7")
        );
    }

    #[test]
    fn nextest_with_flaky_and_retried_tests() {
        let r = report(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="nextest-run" tests="3" failures="1" errors="0" uuid="45c50d8b-3f4c-4a4e-9d4e-1b2c3d4e5f60" timestamp="2026-11-20T10:15:00.000+00:00" time="1.250">
    <testsuite name="trailmark-store::store" tests="3" disabled="0" errors="0" failures="1">
        <testcase name="sqlite::appends" classname="trailmark-store::store" timestamp="2026-11-20T10:15:00.100+00:00" time="0.100">
        </testcase>
        <testcase name="sqlite::flaky_one" classname="trailmark-store::store" timestamp="2026-11-20T10:15:00.200+00:00" time="0.400">
            <flakyFailure timestamp="2026-11-20T10:15:00.200+00:00" time="0.200" type="test failure">thread panicked</flakyFailure>
        </testcase>
        <testcase name="sqlite::always_fails" classname="trailmark-store::store" timestamp="2026-11-20T10:15:00.600+00:00" time="0.750">
            <failure type="test failure">thread panicked at 'boom'</failure>
            <rerunFailure timestamp="2026-11-20T10:15:00.800+00:00" time="0.300" type="test failure">thread panicked at 'boom'</rerunFailure>
        </testcase>
    </testsuite>
</testsuites>"#,
        );
        let totals = &r["payload"]["totals"];
        assert_eq!(totals["tests"], 3);
        assert_eq!(totals["failures"], 1);
        assert_eq!(totals["flaky"], 1);
        assert_eq!(totals["passed"], 1);
        let cases = r["payload"]["cases"].as_array().unwrap();
        let fails = cases
            .iter()
            .find(|c| c["name"] == "sqlite::always_fails")
            .unwrap();
        assert_eq!(fails["status"], "fail");
        assert_eq!(fails["reruns"], 1);
    }
}
