//! SARIF static-analysis logs: 2.1.0, and the 1.0, 2.0 (incl. pre-release) and 2.2 drafts; a
//! UTF-8 BOM is tolerated.
//!
//! One `scan.sarif` record per run. Payload shape:
//!
//! ```text
//! { format: "sarif", version, run: i, tool: {name, version?, semantic_version?},
//!   rules_count, results_present,
//!   totals: {results, error, warning, note, none, suppressed},
//!   results: [{rule_id?, level, kind?, message?, security_severity?,
//!              locations: [{uri?, uri_base_id?, start_line?, logical?}],
//!              fingerprints?, partial_fingerprints?, suppressed, suppressions?,
//!              baseline_state?}],
//!   results_omitted?, automation_id? }
//! ```
//!
//! `level` is the result's own level, else its rule's configured default, else what SARIF
//! defines (`warning` for a failing result, `none` for other kinds). In totals, SARIF 1.0's
//! `pass`/`notApplicable` and other non-standard levels count as `none`. A result is
//! `suppressed` when it has suppressions and none is `underReview` or `rejected` (2.1), or when
//! it has `suppressionStates` (1.0/2.0). Security severities are kept as strings.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::junit::{report_draft, truncate};
use crate::{Context, Format, IngestError, Parsed, Skipped};

/// Results kept per record; the rest are counted in the totals only.
pub const MAX_RESULTS: usize = 10_000;
/// Locations kept per result.
pub const MAX_LOCATIONS: usize = 10;
const MAX_TEXT: usize = 1024;

fn schema(message: impl Into<String>) -> IngestError {
    IngestError::schema(Format::Sarif, message)
}

/// The SARIF versions read: 1.0, 2.0 (with pre-release suffixes), 2.1 and 2.2.
fn supported(version: &str) -> bool {
    ["1.0", "2.0", "2.1", "2.2"].iter().any(|v| {
        version
            .strip_prefix(v)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('-'))
    })
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    trailmark_model::json_at(v, ptr)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn index_at(v: &Value, ptr: &str) -> Option<usize> {
    trailmark_model::json_at(v, ptr)
        .and_then(Value::as_i64)
        .and_then(|i| usize::try_from(i).ok())
}

/// Rules of one tool component: an array (2.1+) or an id-keyed object (1.0, 2.0).
fn rules_of(v: Option<&Value>) -> Vec<&Value> {
    match v {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(Value::Object(m)) => m.values().collect(),
        _ => Vec::new(),
    }
}

struct Run<'a> {
    run: &'a Value,
    driver: Vec<&'a Value>,
    extensions: Vec<Vec<&'a Value>>,
    /// Rules by id (the `id` field, or the key of a 1.0/2.0 rules object); first one wins.
    by_id: HashMap<&'a str, &'a Value>,
}

impl<'a> Run<'a> {
    fn new(run: &'a Value) -> Run<'a> {
        let tool = run.get("tool");
        let driver_rules = tool
            .and_then(|t| t.pointer("/driver/rules"))
            .or_else(|| run.pointer("/resources/rules"))
            .or_else(|| run.get("rules"));
        let extensions: Vec<Vec<&'a Value>> = tool
            .and_then(|t| t.get("extensions"))
            .and_then(Value::as_array)
            .map(|exts| exts.iter().map(|e| rules_of(e.get("rules"))).collect())
            .unwrap_or_default();
        let mut by_id: HashMap<&'a str, &'a Value> = HashMap::new();
        if let Some(Value::Object(m)) = driver_rules {
            for (k, v) in m {
                by_id.entry(k.as_str()).or_insert(v);
            }
        }
        let driver = rules_of(driver_rules);
        for rule in driver.iter().chain(extensions.iter().flatten()) {
            if let Some(id) = str_at(rule, "/id") {
                by_id.entry(id).or_insert(*rule);
            }
        }
        Run {
            run,
            driver,
            extensions,
            by_id,
        }
    }

    fn rules_count(&self) -> usize {
        self.driver.len() + self.extensions.iter().map(Vec::len).sum::<usize>()
    }

    /// The rule a result refers to: by index (in the driver or a named extension), else by
    /// id, else by the id's hierarchical base (`CSCAN0050/0` -> `CSCAN0050`).
    fn rule(&self, r: &Value, id: Option<&str>) -> Option<&'a Value> {
        let index = index_at(r, "/ruleIndex").or_else(|| index_at(r, "/rule/index"));
        if let Some(i) = index {
            let component = match r.pointer("/rule/toolComponent") {
                Some(tc) => index_at(tc, "/index").and_then(|c| self.extensions.get(c)),
                None => Some(&self.driver),
            };
            if let Some(rule) = component.and_then(|c| c.get(i)) {
                return Some(rule);
            }
        }
        let id = id?;
        let by = |want: &str| self.by_id.get(want).copied();
        by(id).or_else(|| id.split_once('/').and_then(|(base, _)| by(base)))
    }

    fn artifact_uri(&self, index: usize) -> Option<&'a str> {
        let a = self.run.get("artifacts")?.as_array()?.get(index)?;
        str_at(a, "/location/uri")
    }
}

/// Fills `{0}`, `{1}`, ... from `args`.
fn format_message(template: &str, args: Option<&Value>) -> String {
    let args: Vec<String> = args
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .take(32)
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let mut out = template.to_owned();
    for (i, a) in args.iter().enumerate() {
        out = out.replace(&format!("{{{i}}}"), a);
    }
    out
}

fn message_text(r: &Value, rule: Option<&Value>) -> Option<String> {
    match r.get("message") {
        Some(Value::String(s)) if !s.trim().is_empty() => return Some(s.clone()),
        Some(m @ Value::Object(_)) => {
            if let Some(t) = str_at(m, "/text").or_else(|| str_at(m, "/markdown")) {
                return Some(t.to_owned());
            }
            // 2.1: {id, arguments} into the rule's messageStrings; 2.0: messageId.
            let id = str_at(m, "/id").or_else(|| str_at(m, "/messageId"));
            if let (Some(id), Some(rule)) = (id, rule) {
                let ms = rule.get("messageStrings").and_then(|s| s.get(id));
                let template =
                    ms.and_then(|s| s.as_str().or_else(|| s.get("text").and_then(Value::as_str)));
                if let Some(t) = template {
                    return Some(format_message(t, m.get("arguments")));
                }
            }
        }
        _ => {}
    }
    // 1.0: formattedRuleMessage {formatId, arguments} into the rule's messageFormats.
    let f = r.get("formattedRuleMessage")?;
    let template = rule?
        .get("messageFormats")?
        .get(str_at(f, "/formatId")?)?
        .as_str()?;
    Some(format_message(template, f.get("arguments")))
}

fn severity_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn location(run: &Run<'_>, l: &Value) -> Value {
    // 2.1 physicalLocation.artifactLocation, 2.0 physicalLocation.fileLocation, 1.0
    // resultFile / analysisTarget.
    let art = l
        .pointer("/physicalLocation/artifactLocation")
        .or_else(|| l.pointer("/physicalLocation/fileLocation"))
        .or_else(|| l.get("resultFile"))
        .or_else(|| l.get("analysisTarget"));
    let region = l
        .pointer("/physicalLocation/region")
        .or_else(|| l.pointer("/resultFile/region"));
    let mut m = Map::new();
    if let Some(a) = art {
        let uri =
            str_at(a, "/uri").or_else(|| index_at(a, "/index").and_then(|i| run.artifact_uri(i)));
        if let Some(u) = uri {
            m.insert("uri".into(), json!(truncate(u, MAX_TEXT)));
        }
        if let Some(b) = str_at(a, "/uriBaseId") {
            m.insert("uri_base_id".into(), json!(b));
        }
    }
    if let Some(line) = region
        .and_then(|r| r.get("startLine"))
        .and_then(Value::as_u64)
    {
        m.insert("start_line".into(), json!(line));
    }
    let logical = str_at(l, "/logicalLocations/0/fullyQualifiedName")
        .or_else(|| str_at(l, "/logicalLocation/fullyQualifiedName"))
        .or_else(|| str_at(l, "/fullyQualifiedLogicalName"));
    if let Some(q) = logical {
        m.insert("logical".into(), json!(truncate(q, MAX_TEXT)));
    }
    Value::Object(m)
}

/// String-valued fingerprint maps, values cut to a sane length.
fn fingerprints(v: Option<&Value>) -> Option<Value> {
    let m = v?.as_object()?;
    let out: Map<String, Value> = m
        .iter()
        .filter_map(|(k, v)| severity_string(v).map(|s| (k.clone(), json!(truncate(&s, MAX_TEXT)))))
        .collect();
    (!out.is_empty()).then_some(Value::Object(out))
}

#[derive(Default)]
struct Totals {
    results: u64,
    error: u64,
    warning: u64,
    note: u64,
    none: u64,
    suppressed: u64,
}

fn result(run: &Run<'_>, r: &Value, totals: &mut Totals) -> Value {
    let id = str_at(r, "/ruleId").or_else(|| str_at(r, "/rule/id"));
    let rule = run.rule(r, id);
    let id = id.or_else(|| rule.and_then(|x| str_at(x, "/id")));
    let kind = str_at(r, "/kind");
    let level = str_at(r, "/level")
        .or_else(|| {
            rule.and_then(|x| {
                str_at(x, "/defaultConfiguration/level")
                    .or_else(|| str_at(x, "/configuration/defaultLevel"))
            })
        })
        .unwrap_or(if kind.is_some_and(|k| k != "fail") {
            "none"
        } else {
            "warning"
        });
    totals.results += 1;
    match level {
        "error" => totals.error += 1,
        "warning" => totals.warning += 1,
        "note" => totals.note += 1,
        _ => totals.none += 1,
    }
    let suppressions: Vec<Value> = r
        .get("suppressions")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|s| {
                    let mut m = Map::new();
                    for (k, p) in [("kind", "/kind"), ("status", "/status")] {
                        if let Some(v) = str_at(s, p) {
                            m.insert(k.into(), json!(v));
                        }
                    }
                    Value::Object(m)
                })
                .collect()
        })
        .unwrap_or_default();
    let states = r
        .get("suppressionStates")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty());
    let suppressed = (!suppressions.is_empty()
        && suppressions.iter().all(|s| {
            !matches!(
                s.get("status").and_then(Value::as_str),
                Some("underReview" | "rejected")
            )
        }))
        || states.is_some();
    if suppressed {
        totals.suppressed += 1;
    }
    let mut m = Map::new();
    if let Some(id) = id {
        m.insert("rule_id".into(), json!(truncate(id, MAX_TEXT)));
    }
    m.insert("level".into(), json!(level));
    if let Some(k) = kind {
        m.insert("kind".into(), json!(k));
    }
    if let Some(t) = message_text(r, rule) {
        m.insert("message".into(), json!(truncate(&t, MAX_TEXT)));
    }
    let sev = r
        .pointer("/properties/security-severity")
        .and_then(severity_string)
        .or_else(|| {
            rule.and_then(|x| x.pointer("/properties/security-severity"))
                .and_then(severity_string)
        });
    if let Some(s) = sev {
        m.insert("security_severity".into(), json!(s));
    }
    let locations: Vec<Value> = r
        .get("locations")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .take(MAX_LOCATIONS)
                .map(|l| location(run, l))
                .filter(|l| l.as_object().is_some_and(|o| !o.is_empty()))
                .collect()
        })
        .unwrap_or_default();
    m.insert("locations".into(), Value::Array(locations));
    let mut fp = fingerprints(r.get("fingerprints"));
    if let Some(t) = str_at(r, "/toolFingerprint") {
        // 1.0 had a single tool fingerprint.
        fp.get_or_insert_with(|| json!({}))["toolFingerprint"] = json!(truncate(t, MAX_TEXT));
    }
    if let Some(f) = fp {
        m.insert("fingerprints".into(), f);
    }
    if let Some(f) = fingerprints(r.get("partialFingerprints")) {
        m.insert("partial_fingerprints".into(), f);
    }
    m.insert("suppressed".into(), json!(suppressed));
    if !suppressions.is_empty() {
        m.insert("suppressions".into(), Value::Array(suppressions));
    } else if let Some(s) = states {
        m.insert(
            "suppression_states".into(),
            Value::Array(s.iter().filter(|v| v.is_string()).cloned().collect()),
        );
    }
    if let Some(b) = str_at(r, "/baselineState") {
        m.insert("baseline_state".into(), json!(b));
    }
    Value::Object(m)
}

pub fn parse(bytes: &[u8], ctx: &Context) -> Result<Parsed, IngestError> {
    let body = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let doc: Value =
        serde_json::from_slice(body).map_err(|e| IngestError::json(Format::Sarif, &e))?;
    let Value::Object(obj) = &doc else {
        return Err(schema(
            "a SARIF log is a JSON object with \"version\" and \"runs\"",
        ));
    };
    let version = match obj.get("version") {
        None | Some(Value::Null) => return Err(schema("no \"version\": not a SARIF log")),
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(other) => {
            return Err(schema(format!(
                "\"version\" must be a string, found {other}"
            )));
        }
    };
    if !supported(&version) {
        return Err(IngestError::Version {
            format: Format::Sarif,
            version,
        });
    }
    let runs = match obj.get("runs") {
        None | Some(Value::Null) => return Err(schema("no \"runs\": not a SARIF log")),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(schema("\"runs\" must be an array")),
    };
    let mut parsed = Parsed::default();
    if runs.is_empty() {
        parsed.skipped.push(Skipped {
            what: "runs".into(),
            reason: "the log has no runs".into(),
        });
        return Ok(parsed);
    }
    for (i, run_value) in runs.iter().enumerate() {
        if !run_value.is_object() {
            parsed.skipped.push(Skipped {
                what: format!("run {i}"),
                reason: "not an object".into(),
            });
            continue;
        }
        let run = Run::new(run_value);
        // 2.1+: tool.driver; 1.0/2.0: the tool itself.
        let tool = run_value
            .pointer("/tool/driver")
            .or_else(|| run_value.get("tool"));
        let tool_name = tool.and_then(|t| str_at(t, "/name").or_else(|| str_at(t, "/fullName")));
        let mut tool_json = json!({"name": tool_name.unwrap_or("unknown")});
        if let Some(v) = tool.and_then(|t| str_at(t, "/version")) {
            tool_json["version"] = json!(v);
        }
        if let Some(v) = tool.and_then(|t| str_at(t, "/semanticVersion")) {
            tool_json["semantic_version"] = json!(v);
        }
        let results = run_value.get("results").and_then(Value::as_array);
        let mut totals = Totals::default();
        let mut listed = Vec::new();
        let mut omitted = 0u64;
        for r in results.into_iter().flatten() {
            let v = result(&run, r, &mut totals);
            if listed.len() < MAX_RESULTS {
                listed.push(v);
            } else {
                omitted += 1;
            }
        }
        if omitted > 0 {
            parsed.skipped.push(Skipped {
                what: format!("run {i}: {omitted} results after the first {MAX_RESULTS}"),
                reason: format!("a record lists at most {MAX_RESULTS} results; the rest are counted in the totals only"),
            });
        }
        let mut payload = json!({
            "format": "sarif",
            "version": version,
            "run": i,
            "tool": tool_json,
            "rules_count": run.rules_count(),
            "results_present": results.is_some(),
            "totals": {
                "results": totals.results, "error": totals.error, "warning": totals.warning,
                "note": totals.note, "none": totals.none, "suppressed": totals.suppressed,
            },
            "results": listed,
        });
        if omitted > 0 {
            payload["results_omitted"] = json!(omitted);
        }
        let automation = str_at(run_value, "/automationDetails/id")
            .or_else(|| str_at(run_value, "/automationLogicalId"))
            .or_else(|| str_at(run_value, "/automationId"));
        if let Some(a) = automation {
            payload["automation_id"] = json!(truncate(a, MAX_TEXT));
        }
        let occurred = [
            "/invocations/0/endTimeUtc",
            "/invocations/0/startTimeUtc",
            "/invocations/0/endTime",
            "/invocations/0/startTime",
            "/invocation/endTime",
            "/invocation/startTime",
        ]
        .iter()
        .filter_map(|p| str_at(run_value, p))
        .find(|t| t.parse::<jiff::Timestamp>().is_ok())
        .map(str::to_owned);
        // The scanned revision, as the log states it (versionControlProvenance, 2.0+).
        let vcs: Vec<Value> = run_value
            .get("versionControlProvenance")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .take(16)
                    .map(|v| {
                        let mut m = Map::new();
                        for (k, p) in [
                            ("repository", "/repositoryUri"),
                            ("repository", "/uri"),
                            ("revision", "/revisionId"),
                            ("branch", "/branch"),
                        ] {
                            if let Some(x) = str_at(v, p) {
                                m.entry(k).or_insert_with(|| json!(truncate(x, MAX_TEXT)));
                            }
                        }
                        Value::Object(m)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let scanned = vcs
            .iter()
            .filter_map(|v| v.get("revision").and_then(Value::as_str))
            .find(|r| (r.len() == 40 || r.len() == 64) && r.bytes().all(|b| b.is_ascii_hexdigit()));
        if !vcs.is_empty() {
            payload["vcs"] = Value::Array(vcs.clone());
        }
        let run_ctx;
        let ctx_for_run = match (&ctx.commit, scanned) {
            (None, Some(rev)) => {
                run_ctx = Context {
                    commit: Some(rev.to_owned()),
                    ..ctx.clone()
                };
                &run_ctx
            }
            _ => ctx,
        };
        let record = report_draft(
            "scan.sarif",
            "scans",
            Format::Sarif,
            ctx_for_run,
            tool_name.unwrap_or("sarif"),
        )?
        .occurred_at(occurred)
        .payload(payload)
        .build()
        .map_err(|e| schema(format!("run {i}: {e}")))?;
        parsed.records.push(record);
    }
    Ok(parsed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        Context::default()
    }

    #[test]
    fn versions_and_shapes_are_checked() {
        let e = parse(br#"{"version":"3.0","runs":[]}"#, &ctx()).unwrap_err();
        assert_eq!(e.to_string(), "sarif: unsupported version 3.0");
        assert!(
            parse(br#"{"runs":[]}"#, &ctx())
                .unwrap_err()
                .to_string()
                .contains("no \"version\"")
        );
        assert!(
            parse(br#"{"version":"2.1.0"}"#, &ctx())
                .unwrap_err()
                .to_string()
                .contains("no \"runs\"")
        );
        assert!(matches!(
            parse(b"{", &ctx()).unwrap_err(),
            IngestError::Json { .. }
        ));
        let p = parse(br#"{"version":"2.1.0","runs":[]}"#, &ctx()).unwrap();
        assert!(p.records.is_empty() && p.skipped.len() == 1);
        let e = crate::ingest(
            br#"{"version":"2.1.0","runs":[]}"#,
            Some(Format::Sarif),
            &ctx(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("nothing usable"), "{e}");
        assert!(
            supported("2.1.0-rtm.4")
                && supported("2.2")
                && supported("1.0.0")
                && !supported("2.10")
        );
    }

    #[test]
    fn levels_severity_and_suppressions() {
        let log = br#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"T","rules":[
            {"id":"R1","defaultConfiguration":{"level":"error"},"properties":{"security-severity":"8.8"}},
            {"id":"R2","properties":{"security-severity":5.5}}]}},
          "results":[
            {"ruleId":"R1","message":{"text":"a"},"suppressions":[{"kind":"inSource"}]},
            {"ruleId":"R2","ruleIndex":1,"message":{"text":"b"},"suppressions":[{"kind":"external","status":"underReview"}]},
            {"ruleId":"R3","kind":"pass","message":{"text":"c"}}]}]}"#;
        let p = parse(log, &ctx()).unwrap();
        let v = trailmark_model::input::to_value(&p.records[0]);
        let pl = &v["payload"];
        assert_eq!(pl["totals"]["error"], 1);
        assert_eq!(pl["totals"]["warning"], 1);
        assert_eq!(pl["totals"]["none"], 1);
        assert_eq!(pl["totals"]["suppressed"], 1);
        assert_eq!(pl["results"][0]["security_severity"], "8.8");
        assert_eq!(pl["results"][1]["security_severity"], "5.5");
        assert_eq!(pl["results"][1]["suppressed"], false);
        assert_eq!(v["subjects"][0], json!({"type": "report", "id": "T"}));
    }

    #[test]
    fn every_prefix_is_handled_without_panic() {
        let log = br#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"T","rules":[{"id":"R"}]}},"artifacts":[{"location":{"uri":"a.c"}}],"results":[{"ruleIndex":7,"rule":{"index":-1,"toolComponent":{"index":9}},"message":{"id":"x","arguments":[1]},"locations":[{"physicalLocation":{"artifactLocation":{"index":0},"region":{"startLine":3}}}]}]}]}"#;
        for end in 0..=log.len() {
            let _ = parse(&log[..end], &ctx());
        }
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/fixtures/ingest/sarif/"
        );
        for name in [
            "elfie-arriba-utf8-bom.sarif",
            "Comprehensive.sarif",
            "sarif-sdk__v1__Comprehensive.sarif",
        ] {
            let Ok(bytes) = std::fs::read(format!("{dir}{name}")) else {
                continue;
            };
            for end in (0..=bytes.len()).step_by(3) {
                let _ = parse(&bytes[..end], &ctx());
            }
        }
        let v = trailmark_model::input::to_value(&parse(log, &ctx()).unwrap().records[0]);
        assert_eq!(v["payload"]["results"][0]["locations"][0]["uri"], "a.c");
    }
}
