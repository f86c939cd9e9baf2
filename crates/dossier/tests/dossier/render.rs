//! The two renderers of a dossier view: the self-contained HTML page and the OSCAL 1.1.2
//! assessment results (validated against NIST's official JSON schema).
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use sha2::{Digest, Sha256};
use trailmark_dossier::view::{
    ApprovalLine, Control, Deployment, ExportMeta, GateLine, MatrixCommit, MatrixRow, Question,
    Story, TestSummary, View,
};
use trailmark_dossier::{html, oscal};
use trailmark_policy::eval::Tally;
use trailmark_policy::input::ReleaseInfo;

const SCHEMA: &str = include_str!("../data/oscal_assessment-results_schema.json");
/// SHA-256 of NIST's `oscal_assessment-results_schema.json` release asset of OSCAL v1.1.2.
const SCHEMA_SHA256: &str = "d033da70154cf6625ae46a746199e88e58f2928b1387dfac051d381b92f41b0d";

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn control(framework: &str, id: &str, title: &str, status: &str, evidence: &[u64]) -> Control {
    Control {
        framework: framework.into(),
        id: id.into(),
        title: title.into(),
        status: status.into(),
        evidence: evidence.to_vec(),
        notes: match status {
            "met" => vec![],
            "partial" => strings(&["1 of 2 deployments had no allowing gate decision before it."]),
            _ => strings(&["commit 7c1d2e3f4a5b has no linked ticket."]),
        },
    }
}

/// A release as the view derivation would describe it: two tickets (one with two commits), a
/// commit linked to no ticket, a failing test, gaps, controls met, partly met and not met, a
/// denied then an allowed gate and a production deployment.
fn view() -> View {
    View {
        release: ReleaseInfo {
            id: "rel-2026-0042".into(),
            name: "payments-api".into(),
            version: "4.2.0".into(),
            project: "payments".into(),
            environments: strings(&["staging", "production"]),
            requested_by: Some("alice".into()),
            created_at: "2026-03-02T09:00:00Z".into(),
            record: 3,
        },
        as_of: "2026-03-05T16:30:00Z".into(),
        environment: "production".into(),
        evidence_digest: "sha256:9f2c41d0a8e7b3c5d6e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7"
            .into(),
        questions: vec![
            Question {
                id: "change_authorization".into(),
                title: "Was every change authorised?".into(),
                answer: "partial".into(),
                summary: strings(&[
                    "2 of 3 commits are linked to an approved ticket.",
                    "commit 7c1d2e3f4a5b has no linked ticket.",
                ]),
                evidence: vec![5, 6, 9],
            },
            Question {
                id: "access_governance".into(),
                title: "Were duties separated?".into(),
                answer: "yes".into(),
                summary: strings(&["No author approved their own change."]),
                evidence: vec![14, 15],
            },
            Question {
                id: "test_and_validation".into(),
                title: "Was the change tested?".into(),
                answer: "partial".into(),
                summary: strings(&["1 failing test case, with a follow-up ticket."]),
                evidence: vec![11, 12],
            },
            Question {
                id: "release_certification".into(),
                title: "Was the release certified before deploy?".into(),
                answer: "yes".into(),
                summary: strings(&["Certified for production at 2026-03-05T15:59:00Z."]),
                evidence: vec![55],
            },
            Question {
                id: "monitoring_and_response".into(),
                title: "Was the deployment monitored?".into(),
                answer: "no".into(),
                summary: strings(&["No monitoring signal was recorded after deploy."]),
                evidence: vec![],
            },
        ],
        story: Story {
            requested: strings(&["PAY-101", "PAY-102"]),
            owner: Some("alice".into()),
            changed: strings(&[
                "a1b2c3d4e5f6 (PR #311)",
                "b2c3d4e5f6a1 (PR #311)",
                "c3d4e5f6a1b2 (PR #318)",
                "7c1d2e3f4a5b",
            ]),
            validated: strings(&["junit payments-unit: 148 of 150 passed"]),
            approvals: vec![
                ApprovalLine {
                    record: 14,
                    person: "bob".into(),
                    decision: "approved".into(),
                    recorded_at: "2026-03-04T11:00:00Z".into(),
                    comment: Some("Reviewed the migration plan.".into()),
                    current: true,
                },
                ApprovalLine {
                    record: 15,
                    person: "carol".into(),
                    decision: "approved".into(),
                    recorded_at: "2026-03-03T10:00:00Z".into(),
                    comment: None,
                    current: false,
                },
            ],
            approval_at_deploy: Some(Tally {
                required: 1,
                counted: strings(&["bob"]),
                rejected_by: vec![],
                not_counted: strings(&["carol: approved earlier content"]),
                auto_approved: false,
                satisfied: true,
            }),
            exceptions: vec![],
            certified: strings(&["production at 2026-03-05T15:59:00Z (record 55)"]),
            after_deploy: strings(&["deployed to production at 2026-03-05T16:05:00Z: success"]),
        },
        matrix: vec![
            MatrixRow {
                ticket: "PAY-101".into(),
                ticket_approved_at: Some("2026-03-02T10:00:00Z".into()),
                commits: vec![
                    MatrixCommit {
                        sha: "a1b2c3d4e5f6".into(),
                        prs: strings(&["#311"]),
                        reviews: strings(&["approved by bob on a1b2c3d4"]),
                        builds: strings(&["github-actions ci #812: success"]),
                        tests: TestSummary {
                            reports: 2,
                            tests: 150,
                            passed: 148,
                            failures: 1,
                            errors: 0,
                            skipped: 0,
                            flaky: 0,
                            blocked: 1,
                            pass_rate_permille: Some(993),
                            repeated_failures: strings(&["RefundTest.partial_refund"]),
                            failures_with_follow_up: strings(&[
                                "RefundTest.partial_refund (PAY-130)",
                            ]),
                        },
                        findings: strings(&["high TEST1001 (Sarif.UnitTests)"]),
                    },
                    MatrixCommit {
                        sha: "b2c3d4e5f6a1".into(),
                        prs: strings(&["#311"]),
                        reviews: strings(&["approved by bob on b2c3d4e5"]),
                        builds: strings(&["github-actions ci #813: success"]),
                        tests: TestSummary {
                            reports: 1,
                            tests: 80,
                            passed: 80,
                            pass_rate_permille: Some(1000),
                            ..TestSummary::default()
                        },
                        findings: vec![],
                    },
                ],
                approvals: strings(&["bob approved (record 14)"]),
                deployments: strings(&["production 2026-03-05T16:05:00Z success"]),
            },
            MatrixRow {
                ticket: "PAY-102".into(),
                ticket_approved_at: None,
                commits: vec![MatrixCommit {
                    sha: "c3d4e5f6a1b2".into(),
                    prs: strings(&["#318"]),
                    reviews: vec![],
                    builds: strings(&["github-actions ci #820: success"]),
                    tests: TestSummary::default(),
                    findings: vec![],
                }],
                approvals: vec![],
                deployments: strings(&["production 2026-03-05T16:05:00Z success"]),
            },
            MatrixRow {
                ticket: "(no ticket)".into(),
                ticket_approved_at: None,
                commits: vec![MatrixCommit {
                    sha: "7c1d2e3f4a5b".into(),
                    prs: vec![],
                    reviews: vec![],
                    builds: vec![],
                    tests: TestSummary::default(),
                    findings: vec![],
                }],
                approvals: vec![],
                deployments: vec![],
            },
        ],
        controls: vec![
            control(
                "SOC 2",
                "CC8.1",
                "Changes are authorised, tested and approved",
                "met",
                &[5, 6, 14],
            ),
            control(
                "NIST 800-53",
                "CM-3",
                "Configuration change control",
                "partial",
                &[9, 14, 21],
            ),
            control(
                "NIST 800-53",
                "AU-9",
                "Protection of audit information",
                "met",
                &[57],
            ),
            control("NIST 800-53", "AC-5", "Separation of duties", "gap", &[]),
            control("ISO 27001", "A.8.32", "Change management", "partial", &[9]),
        ],
        gaps: strings(&[
            "commit 7c1d2e3f4a5b has no linked ticket",
            "deployment to staging (record 40) had no allowing gate decision before it",
        ]),
        gate_decisions: vec![
            GateLine {
                record: 19,
                environment: "production".into(),
                decision: "deny".into(),
                recorded_at: "2026-03-04T09:00:00Z".into(),
                input_digest:
                    "sha256:1111111111111111111111111111111111111111111111111111111111111111".into(),
                policy_digest:
                    "sha256:2222222222222222222222222222222222222222222222222222222222222222".into(),
            },
            GateLine {
                record: 21,
                environment: "production".into(),
                decision: "allow".into(),
                recorded_at: "2026-03-05T16:00:00Z".into(),
                input_digest:
                    "sha256:3333333333333333333333333333333333333333333333333333333333333333".into(),
                policy_digest:
                    "sha256:2222222222222222222222222222222222222222222222222222222222222222".into(),
            },
        ],
        deployments: vec![Deployment {
            record: 23,
            environment: "production".into(),
            recorded_at: "2026-03-05T16:05:00Z".into(),
            commit: Some("c3d4e5f6a1b2".into()),
            status: "success".into(),
            gated: true,
        }],
    }
}

/// The same release with its gaps closed: every control met, nothing negative to report.
fn clean_view() -> View {
    let mut v = view();
    v.gaps.clear();
    for c in &mut v.controls {
        c.status = "met".into();
        c.notes.clear();
        if c.evidence.is_empty() {
            c.evidence = vec![14, 15];
        }
    }
    v
}

fn meta() -> ExportMeta {
    ExportMeta {
        origin: "trailmark.example/log".into(),
        checkpoint_size: 57,
        checkpoint_root: "q2YxV0m9lC7gT4JXh8vCkQm7S1Ww3eD2uY5rT8pL0aI=".into(),
        records: 41,
        generated_at: "2026-03-05T16:31:02Z".into(),
        certification_record: Some(55),
        identity_map: Some("record 3, set by person:admin at 2026-03-01T09:00:00Z".into()),
    }
}

/// The levels of the page's headings, in document order.
fn heading_levels(page: &str) -> Vec<u8> {
    page.match_indices("<h")
        .filter_map(|(i, _)| {
            let level = page.as_bytes().get(i + 2)?;
            let next = page.as_bytes().get(i + 3)?;
            (level.is_ascii_digit() && (*next == b'>' || *next == b' ')).then(|| level - b'0')
        })
        .collect()
}

// ---- HTML ----

#[test]
fn html_has_every_section_in_order_with_sound_structure() {
    let page = html::render(&view(), &meta());
    assert!(
        page.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"),
        "{}",
        &page[..80]
    );
    assert!(page.ends_with("</body>\n</html>\n"));
    assert!(page.contains("<meta charset=\"utf-8\">"));
    assert!(page.contains("<title>Release dossier: payments-api 4.2.0</title>"));

    let sections = [
        "id=\"release\"",
        "id=\"questions\"",
        "id=\"story\"",
        "id=\"matrix\"",
        "id=\"gates\"",
        "id=\"deployments\"",
        "id=\"controls\"",
        "id=\"gaps\"",
        "id=\"verify\"",
    ];
    let mut last = 0;
    for s in sections {
        let at = page
            .find(s)
            .unwrap_or_else(|| panic!("section {s} missing"));
        assert!(at > last, "section {s} out of order");
        last = at;
    }

    // One h1, and headings never skip a level on the way down.
    let levels = heading_levels(&page);
    assert_eq!(levels.iter().filter(|l| **l == 1).count(), 1, "{levels:?}");
    assert_eq!(levels.first(), Some(&1));
    for pair in levels.windows(2) {
        assert!(
            pair[1] <= pair[0] + 1,
            "heading jumps from h{} to h{}",
            pair[0],
            pair[1]
        );
    }

    // Every table has a caption first and column headers with a scope.
    let tables = page.matches("<table>").count();
    assert!(tables >= 5, "{tables} tables");
    assert_eq!(page.matches("<table>\n<caption>").count(), tables);
    assert!(!page.contains("<th>"), "a header cell without scope");
    assert!(page.contains("<th scope=\"col\">Ticket</th>"));
}

#[test]
fn html_header_names_the_release() {
    let page = html::render(&view(), &meta());
    for fact in [
        "<code>rel-2026-0042</code>",
        "payments-api 4.2.0",
        "<dd>payments</dd>",
        "<dd>staging, production</dd>",
        "<dd>2026-03-05T16:30:00Z</dd>",
        "sha256:9f2c41d0a8e7b3c5d6e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7",
        "2 gaps found: see <a href=\"#gaps\">Gaps</a>.",
    ] {
        assert!(page.contains(fact), "missing {fact}");
    }
}

#[test]
fn html_is_self_contained_and_printable() {
    let page = html::render(&view(), &meta());
    for forbidden in [
        "<script",
        "<link",
        "src=",
        "url(",
        "@import",
        "@font-face",
        "http://",
        "https://",
    ] {
        assert!(!page.contains(forbidden), "the page contains {forbidden}");
    }
    assert!(page.contains("<style>"));
    assert!(page.contains("@media print"));
    assert!(page.contains("break-before: page"));
}

#[test]
fn html_answers_and_statuses_are_spelled_out() {
    let page = html::render(&view(), &meta());
    // Answers, with the evidence records that support them.
    assert!(page.contains("<h3>Was every change authorised?</h3>\n<p>Answer: <span class=\"status partial\">Partial</span></p>"));
    assert!(page.contains(
        "<h3>Were duties separated?</h3>\n<p>Answer: <span class=\"status ok\">Yes</span></p>"
    ));
    assert!(page.contains("<h3>Was the deployment monitored?</h3>\n<p>Answer: <span class=\"status bad\">No</span></p>"));
    assert!(page.contains("<p>Evidence records: 5, 6, 9</p>"));
    assert!(page.contains("<p>Evidence records: none</p>"));
    assert!(page.contains("<li>commit 7c1d2e3f4a5b has no linked ticket.</li>"));
    // Controls: framework, id, title, status in words, evidence and notes.
    assert!(page.contains("<tr><td>SOC 2</td><th scope=\"row\">CC8.1</th><td>Changes are authorised, tested and approved</td><td><span class=\"status ok\">Met</span></td><td>5, 6, 14</td>"));
    assert!(page.contains("<th scope=\"row\">CM-3</th><td>Configuration change control</td><td><span class=\"status partial\">Partial</span></td><td>9, 14, 21</td><td><ul><li>1 of 2 deployments had no allowing gate decision before it.</li></ul></td>"));
    assert!(page.contains("<th scope=\"row\">AC-5</th><td>Separation of duties</td><td><span class=\"status bad\">Gap</span></td><td>none</td>"));
    // Gate decisions with their digests, deployments with whether they were gated.
    assert!(page.contains("<tr><th scope=\"row\">19</th><td>production</td><td><span class=\"status bad\">deny</span></td><td>2026-03-04T09:00:00Z</td><td><code>sha256:1111111111111111111111111111111111111111111111111111111111111111</code></td><td><code>sha256:2222222222222222222222222222222222222222222222222222222222222222</code></td></tr>"));
    assert!(page.contains("<span class=\"status ok\">allow</span>"));
    assert!(page.contains("<tr><th scope=\"row\">23</th><td>production</td><td>2026-03-05T16:05:00Z</td><td><code>c3d4e5f6a1b2</code></td><td>success</td><td><span class=\"status ok\">yes</span></td></tr>"));
}

#[test]
fn html_story_tells_who_approved_what() {
    let page = html::render(&view(), &meta());
    assert!(page.contains("<tr><td>14</td><td>bob</td><td>approved</td><td>2026-03-04T11:00:00Z</td><td>yes</td><td>Reviewed the migration plan.</td></tr>"));
    assert!(page.contains("<tr><td>15</td><td>carol</td><td>approved</td><td>2026-03-03T10:00:00Z</td><td>no (superseded by later changes)</td><td><span class=\"none\">none</span></td></tr>"));
    assert!(page.contains("<dt>Rule satisfied</dt><dd><span class=\"status ok\">yes</span></dd>"));
    assert!(page.contains("<li>carol: approved earlier content</li>"));
    assert!(page.contains("<h3>Who owned it</h3>\n<p>alice</p>"));
    assert!(page.contains("<li>production at 2026-03-05T15:59:00Z (record 55)</li>"));
}

#[test]
fn html_matrix_is_one_table_from_ticket_to_deployment() {
    let page = html::render(&view(), &meta());
    let start = page.find("<section id=\"matrix\"").unwrap();
    let end = page[start..].find("</section>").unwrap() + start;
    let matrix = &page[start..end];
    assert_eq!(matrix.matches("<table>").count(), 1);
    // One row group per ticket; a ticket with two commits spans two rows.
    assert_eq!(matrix.matches("<tbody>").count(), 3);
    assert!(matrix.contains(
        "<th scope=\"rowgroup\" rowspan=\"2\">PAY-101<br>approved 2026-03-02T10:00:00Z</th>"
    ));
    assert!(matrix.contains("<th scope=\"rowgroup\" rowspan=\"1\">PAY-102</th>"));
    assert!(matrix.contains(
        "<th scope=\"rowgroup\" rowspan=\"1\">(no ticket)</th><td><code>7c1d2e3f4a5b</code></td>"
    ));
    // Columns in the auditor's order for the first commit.
    let row = &matrix[matrix.find("<code>a1b2c3d4e5f6</code>").unwrap()..];
    let order = [
        "<li>PR #311</li><li>approved by bob on a1b2c3d4</li>",
        "<li>github-actions ci #812: success</li>",
        "<li>Pass rate: 99.3% (148 passed of 149 executed)</li>",
        "<li>Tests: 150 in 2 reports, 0 skipped</li>",
        "<li>Failures: 1, errors: 0, flaky: 0</li>",
        "<li>Blocked: 1</li>",
        "<li>Repeated failures: RefundTest.partial_refund</li>",
        "<li>Failures with follow-up: RefundTest.partial_refund (PAY-130)</li>",
        "<li>high TEST1001 (Sarif.UnitTests)</li>",
        "<td rowspan=\"2\"><ul><li>bob approved (record 14)</li></ul></td>",
        "<td rowspan=\"2\"><ul><li>production 2026-03-05T16:05:00Z success</li></ul></td>",
    ];
    let mut last = 0;
    for cell in order {
        let at = row.find(cell).unwrap_or_else(|| panic!("missing {cell}"));
        assert!(at >= last, "{cell} out of order");
        last = at;
    }
    assert!(matrix.contains(
        "<li>Pass rate: 100.0% (80 passed of 80 executed)</li>\n<li>Tests: 80 in 1 report, 0 skipped</li>"
    ));
    assert!(matrix.contains("<span class=\"none\">no test reports</span>"));
}

#[test]
fn pass_rate_is_a_percentage_with_one_decimal() {
    assert_eq!(html::pass_rate(Some(993)), "99.3%");
    assert_eq!(html::pass_rate(Some(1000)), "100.0%");
    assert_eq!(html::pass_rate(Some(5)), "0.5%");
    assert_eq!(html::pass_rate(Some(0)), "0.0%");
    assert_eq!(html::pass_rate(Some(-15)), "-1.5%");
    assert_eq!(html::pass_rate(None), "n/a");
}

#[test]
fn html_lists_gaps_prominently_or_says_there_are_none() {
    let page = html::render(&view(), &meta());
    assert!(page.contains("<section id=\"gaps\" aria-labelledby=\"gaps-h\" class=\"gaps\">"));
    assert!(page.contains("<li>commit 7c1d2e3f4a5b has no linked ticket</li><li>deployment to staging (record 40) had no allowing gate decision before it</li>"));
    assert!(!page.contains("No gaps found."));

    let clean = html::render(&clean_view(), &meta());
    assert!(clean.contains("<section id=\"gaps\" aria-labelledby=\"gaps-h\" class=\"gaps clean\">\n<h2 id=\"gaps-h\">Gaps</h2>\n<p>No gaps found.</p>"));
    assert!(!clean.contains("has no linked ticket</li>"));
}

#[test]
fn html_says_how_to_verify() {
    let page = html::render(&view(), &meta());
    let verify = &page[page.find("<section id=\"verify\"").unwrap()..];
    for fact in [
        "<code>trailmark.example/log</code>",
        "<dt>Checkpoint size</dt><dd>57</dd>",
        "<code>q2YxV0m9lC7gT4JXh8vCkQm7S1Ww3eD2uY5rT8pL0aI=</code>",
        "<dt>Records in the dossier</dt><dd>41</dd>",
        "<dt>Certification record</dt><dd>55</dd>",
        "<dt>Identity map</dt><dd>record 3, set by person:admin at 2026-03-01T09:00:00Z</dd>",
        "<dt>Generated</dt><dd>2026-03-05T16:31:02Z</dd>",
        "<code>trailmark verify-dossier FILE --vkey KEY</code>",
    ] {
        assert!(verify.contains(fact), "missing {fact}");
    }
    let unmapped = html::render(
        &view(),
        &ExportMeta {
            identity_map: None,
            ..meta()
        },
    );
    assert!(unmapped.contains(
        "<dt>Identity map</dt><dd><span class=\"none\">no recorded identity map: accounts are compared as they are</span></dd>"
    ));
}

#[test]
fn html_escapes_everything_from_the_records() {
    let mut v = view();
    v.matrix[0].ticket = "<script>alert('ticket')</script>".into();
    v.story.approvals[0].comment = Some("LGTM <script src=x></script> & \"ship it\"".into());
    v.controls[0].notes = strings(&["<img onerror=x>"]);
    let page = html::render(&v, &meta());
    assert!(!page.contains("<script"), "unescaped script tag");
    assert!(!page.contains("<img"), "unescaped img tag");
    assert!(page.contains("&#60;script&#62;alert(&#39;ticket&#39;)&#60;/script&#62;"));
    assert!(page.contains("LGTM &#60;script src=x&#62;&#60;/script&#62; &#38; &#34;ship it&#34;"));
    assert!(page.contains("&#60;img onerror=x&#62;"));
}

#[test]
fn html_is_deterministic() {
    let a = html::render(&view(), &meta());
    let b = html::render(&view(), &meta());
    assert_eq!(a, b);
    // And it depends on its input: another anchor, another page.
    let mut m = meta();
    m.checkpoint_size = 58;
    assert_ne!(a, html::render(&view(), &m));
}

#[test]
fn html_renders_an_empty_view() {
    let mut v = clean_view();
    v.questions.clear();
    v.matrix.clear();
    v.controls.clear();
    v.gate_decisions.clear();
    v.deployments.clear();
    v.story = Story {
        requested: vec![],
        owner: None,
        changed: vec![],
        validated: vec![],
        approvals: vec![],
        approval_at_deploy: None,
        exceptions: vec![],
        certified: vec![],
        after_deploy: vec![],
    };
    let mut m = meta();
    m.certification_record = None;
    let page = html::render(&v, &m);
    for text in [
        "No questions were answered.",
        "No tickets or commits are linked to this release.",
        "No gate decisions were recorded.",
        "No deployments were recorded.",
        "No controls were mapped.",
        "No approvals were recorded.",
        "No gaps found.",
        "the release is not certified",
    ] {
        assert!(page.contains(text), "missing {text}");
    }
    // Still one caption per table.
    assert_eq!(
        page.matches("<table>").count(),
        page.matches("<table>\n<caption>").count()
    );
}

// ---- OSCAL ----

fn validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .should_validate_formats(true)
        .build(&schema)
        .unwrap()
}

fn assert_valid(doc: &Value) {
    let validator = validator();
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

fn result(doc: &Value) -> &Value {
    &doc["assessment-results"]["results"][0]
}

fn array<'a>(v: &'a Value, key: &str) -> &'a Vec<Value> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} is not an array"))
}

/// The value of the Trailmark prop `name` on `item`.
fn prop<'a>(item: &'a Value, name: &str) -> Option<&'a str> {
    item["props"].as_array()?.iter().find_map(|p| {
        (p["name"] == name && p["ns"] == oscal::NS).then(|| p["value"].as_str().unwrap())
    })
}

fn walk<'a>(v: &'a Value, out: &mut Vec<(String, &'a Value)>, key: &str) {
    out.push((key.to_owned(), v));
    match v {
        Value::Array(items) => items.iter().for_each(|i| walk(i, out, key)),
        Value::Object(map) => map.iter().for_each(|(k, i)| walk(i, out, k)),
        _ => {}
    }
}

fn is_v5_uuid(s: &str) -> bool {
    let bytes = s.as_bytes();
    s.len() == 36
        && [8, 13, 18, 23].iter().all(|i| bytes[*i] == b'-')
        && s.chars()
            .enumerate()
            .filter(|(i, _)| ![8, 13, 18, 23].contains(i))
            .all(|(_, c)| c.is_ascii_digit() || ('a'..='f').contains(&c))
        && bytes[14] == b'5'
        && matches!(bytes[19], b'8' | b'9' | b'a' | b'b')
}

#[test]
fn the_vendored_schema_is_nists_v1_1_2_release_asset() {
    let digest = Sha256::digest(SCHEMA.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, SCHEMA_SHA256);
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    assert_eq!(
        schema["$id"],
        "http://csrc.nist.gov/ns/oscal/1.1.2/oscal-ar-schema.json"
    );
}

#[test]
fn oscal_validates_against_the_official_schema() {
    assert_valid(&oscal::assessment_results(&view(), &meta()));
    assert_valid(&oscal::assessment_results(&clean_view(), &meta()));
}

#[test]
fn the_schema_check_is_real() {
    // A validator that accepted anything would make the test above worthless.
    let validator = validator();
    let good = oscal::assessment_results(&view(), &meta());
    assert!(validator.is_valid(&good));

    let mut bad = good.clone();
    bad["assessment-results"]["results"][0]["findings"][0]["target"]["status"]["state"] =
        "mostly-fine".into();
    assert!(!validator.is_valid(&bad));

    let mut bad = good.clone();
    bad["assessment-results"]["uuid"] = "not-a-uuid".into();
    assert!(!validator.is_valid(&bad));

    let mut bad = good;
    bad["assessment-results"]["results"][0]["start"] = "yesterday".into();
    assert!(!validator.is_valid(&bad));
}

#[test]
fn oscal_metadata_and_result_frame_the_release() {
    let doc = oscal::assessment_results(&view(), &meta());
    let ar = &doc["assessment-results"];
    assert_eq!(ar["metadata"]["oscal-version"], "1.1.2");
    assert_eq!(ar["metadata"]["last-modified"], "2026-03-05T16:31:02Z");
    assert_eq!(ar["metadata"]["version"], "checkpoint-57");
    assert!(
        ar["metadata"]["title"]
            .as_str()
            .unwrap()
            .contains("payments-api 4.2.0")
    );
    assert_eq!(ar["import-ap"]["href"], "#");
    assert!(
        ar["import-ap"]["remarks"]
            .as_str()
            .unwrap()
            .contains("approval policy")
    );

    assert_eq!(array(ar, "results").len(), 1);
    let r = result(&doc);
    assert_eq!(r["start"], "2026-03-02T09:00:00Z");
    assert_eq!(r["end"], "2026-03-05T16:30:00Z");
    assert!(r["title"].as_str().unwrap().contains("rel-2026-0042"));
    assert!(
        r["description"]
            .as_str()
            .unwrap()
            .contains("trailmark.example/log")
    );
    assert_eq!(prop(r, "release-id"), Some("rel-2026-0042"));
    assert_eq!(prop(r, "checkpoint-size"), Some("57"));
    assert_eq!(
        prop(r, "checkpoint-root"),
        Some("q2YxV0m9lC7gT4JXh8vCkQm7S1Ww3eD2uY5rT8pL0aI=")
    );
    assert_eq!(prop(r, "certification-record"), Some("55"));
}

#[test]
fn oscal_selects_nist_controls_by_catalog_id_and_names_the_others() {
    let doc = oscal::assessment_results(&view(), &meta());
    let selections = array(&result(&doc)["reviewed-controls"], "control-selections");
    assert_eq!(selections.len(), 1);
    let ids: Vec<&str> = array(&selections[0], "include-controls")
        .iter()
        .map(|c| c["control-id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["cm-3", "au-9", "ac-5"]);
    let others: Vec<&str> = array(&selections[0], "props")
        .iter()
        .map(|p| p["value"].as_str().unwrap())
        .collect();
    assert_eq!(others, ["SOC 2: CC8.1", "ISO 27001: A.8.32"]);

    assert_eq!(oscal::nist_control_id("CM-3").as_deref(), Some("cm-3"));
    assert_eq!(oscal::nist_control_id("AC-2(1)").as_deref(), Some("ac-2.1"));
    assert_eq!(
        oscal::nist_control_id("ac-2 (12)").as_deref(),
        Some("ac-2.12")
    );
    assert_eq!(oscal::nist_control_id("CC8.1"), None);
    assert_eq!(oscal::nist_control_id("AC-2(x)"), None);
}

#[test]
fn oscal_observes_every_control_by_examining_its_records() {
    let v = view();
    let doc = oscal::assessment_results(&v, &meta());
    let observations = array(result(&doc), "observations");
    assert_eq!(observations.len(), v.controls.len());
    for (o, c) in observations.iter().zip(&v.controls) {
        assert_eq!(o["methods"], serde_json::json!(["EXAMINE"]));
        assert_eq!(prop(o, "framework"), Some(c.framework.as_str()));
        assert_eq!(prop(o, "control-id"), Some(c.id.as_str()));
        let hrefs: Vec<String> = o["relevant-evidence"]
            .as_array()
            .map(|e| {
                e.iter()
                    .map(|e| e["href"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default();
        let expected: Vec<String> = c
            .evidence
            .iter()
            .map(|i| format!("trailmark:record/{i}"))
            .collect();
        assert_eq!(hrefs, expected);
        assert_eq!(o["collected"], "2026-03-05T16:30:00Z");
    }
}

#[test]
fn oscal_finding_states_follow_control_statuses() {
    let v = view();
    let doc = oscal::assessment_results(&v, &meta());
    let r = result(&doc);
    let findings = array(r, "findings");
    let observations = array(r, "observations");
    assert_eq!(findings.len(), v.controls.len());
    for ((f, c), o) in findings.iter().zip(&v.controls).zip(observations) {
        assert_eq!(prop(f, "framework"), Some(c.framework.as_str()));
        assert_eq!(prop(f, "control-id"), Some(c.id.as_str()));
        assert_eq!(prop(f, "status"), Some(c.status.as_str()));
        assert_eq!(f["target"]["type"], "objective-id");
        let state = &f["target"]["status"]["state"];
        let description = f["description"].as_str().unwrap();
        match c.status.as_str() {
            "met" => assert_eq!(state, "satisfied", "{}", c.id),
            _ => {
                assert_eq!(state, "not-satisfied", "{}", c.id);
                for note in &c.notes {
                    assert!(description.contains(note.as_str()), "{description}");
                }
            }
        }
        assert_eq!(f["related-observations"][0]["observation-uuid"], o["uuid"]);
    }
    let targets: Vec<&str> = findings
        .iter()
        .map(|f| f["target"]["target-id"].as_str().unwrap())
        .collect();
    assert_eq!(
        targets,
        [
            "soc-2_cc8.1_obj",
            "cm-3_obj",
            "au-9_obj",
            "ac-5_obj",
            "iso-27001_a.8.32_obj"
        ]
    );

    // One open risk per gap.
    let risks = array(r, "risks");
    assert_eq!(risks.len(), v.gaps.len());
    for (risk, gap) in risks.iter().zip(&v.gaps) {
        assert_eq!(risk["description"], gap.as_str());
        assert_eq!(risk["status"], "open");
    }
}

#[test]
fn a_gap_free_view_yields_only_satisfied_findings() {
    let doc = oscal::assessment_results(&clean_view(), &meta());
    let r = result(&doc);
    let findings = array(r, "findings");
    assert_eq!(findings.len(), 5);
    assert!(
        findings
            .iter()
            .all(|f| f["target"]["status"]["state"] == "satisfied")
    );
    assert!(r.get("risks").is_none(), "no gap, no risk");
}

#[test]
fn oscal_uuids_are_valid_unique_and_deterministic() {
    let doc = oscal::assessment_results(&view(), &meta());
    let mut nodes = Vec::new();
    walk(&doc, &mut nodes, "");
    let uuids: Vec<&str> = nodes
        .iter()
        .filter(|(k, _)| k == "uuid")
        .map(|(_, v)| v.as_str().unwrap())
        .collect();
    // Document, result, 5 observations, 5 findings, 2 risks.
    assert_eq!(uuids.len(), 14);
    for u in &uuids {
        assert!(is_v5_uuid(u), "{u}");
    }
    let mut unique = uuids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), uuids.len(), "duplicate UUIDs");

    // Name-based: the same release always gets the same UUIDs, another release others.
    let again = oscal::assessment_results(&view(), &meta());
    assert_eq!(
        serde_json::to_string(&doc).unwrap(),
        serde_json::to_string(&again).unwrap()
    );
    let mut other = view();
    other.release.id = "rel-2026-0043".into();
    let other = oscal::assessment_results(&other, &meta());
    assert_ne!(
        other["assessment-results"]["uuid"],
        doc["assessment-results"]["uuid"]
    );

    // The derivation, checked against an independent implementation (Python's hashlib).
    assert_eq!(
        oscal::uuid_v5_sha256("hello"),
        "2cf24dba-5fb0-530e-a6e8-3b2ac5b9e29e"
    );
    assert_eq!(result(&doc)["uuid"], "fedf04e1-6f67-5cd8-9ddd-099912927e4e");
}

#[test]
fn oscal_has_no_floats() {
    let doc = oscal::assessment_results(&view(), &meta());
    let mut nodes = Vec::new();
    walk(&doc, &mut nodes, "");
    for (key, v) in nodes {
        if let Value::Number(n) = v {
            assert!(!n.is_f64(), "float at {key}");
        }
    }
}

#[test]
fn oscal_stays_valid_for_awkward_input() {
    // Blank and padded values, offsets and fractions in timestamps, a repeated control, an
    // unknown status and markup: the document must still validate, with distinct UUIDs.
    let mut v = view();
    v.release.project = "  ".into();
    v.environment = String::new();
    v.evidence_digest = " sha256:abc ".into();
    v.release.created_at = "2026-03-02T10:00:00+01:00".into();
    v.as_of = "2026-03-05T16:30:00.123456Z".into();
    v.controls
        .push(control(" SOC 2 ", "CC 8.1 (a)", "", "unknown", &[]));
    v.controls.push(v.controls[1].clone());
    v.gaps.push("<script>alert(1)</script>".into());
    let doc = oscal::assessment_results(&v, &meta());
    assert_valid(&doc);

    let r = result(&doc);
    assert_eq!(r["start"], "2026-03-02T09:00:00Z");
    assert_eq!(r["end"], "2026-03-05T16:30:00.123456Z");
    assert_eq!(prop(r, "project"), None);
    assert_eq!(prop(r, "evidence-digest"), Some("sha256:abc"));
    let findings = array(r, "findings");
    assert_eq!(findings[5]["target"]["target-id"], "soc-2_cc-8.1-a_obj");
    assert_eq!(findings[5]["target"]["status"]["state"], "not-satisfied");
    // The repeated CM-3 is selected once but observed and found twice, under its own UUIDs.
    let ids: Vec<&str> = array(
        &array(&r["reviewed-controls"], "control-selections")[0],
        "include-controls",
    )
    .iter()
    .map(|c| c["control-id"].as_str().unwrap())
    .collect();
    assert_eq!(ids, ["cm-3", "au-9", "ac-5"]);
    assert_ne!(findings[1]["uuid"], findings[6]["uuid"]);

    let mut nodes = Vec::new();
    walk(&doc, &mut nodes, "");
    let mut uuids: Vec<&str> = nodes
        .iter()
        .filter(|(k, _)| k == "uuid")
        .map(|(_, v)| v.as_str().unwrap())
        .collect();
    let total = uuids.len();
    uuids.sort_unstable();
    uuids.dedup();
    assert_eq!(uuids.len(), total, "duplicate UUIDs");
}

/// The PDF rendering (feature `pdf`): PDF/A-2b, reproducible, and the view's words in it.
#[cfg(feature = "pdf")]
mod pdf {
    use trailmark_dossier::pdf;

    use super::{meta, view};

    fn contains(hay: &[u8], needle: &str) -> bool {
        hay.windows(needle.len()).any(|w| w == needle.as_bytes())
    }

    #[test]
    fn pdf_is_a_pdf_a_2b_document_dated_by_the_dossier() {
        let bytes = pdf::render(&view(), &meta()).unwrap();
        assert!(bytes.starts_with(b"%PDF-1.7"), "{:?}", &bytes[..16]);
        assert!(bytes.trim_ascii_end().ends_with(b"%%EOF"));
        // PDF/A identification in the XMP metadata (ISO 19005-2, part 2, conformance level B).
        assert!(contains(&bytes, "<pdfaid:part>2</pdfaid:part>"));
        assert!(contains(
            &bytes,
            "<pdfaid:conformance>B</pdfaid:conformance>"
        ));
        // The document's dates are the dossier's (`generated_at`), never the clock's.
        assert!(contains(
            &bytes,
            "<xmp:CreateDate>2026-03-05T16:31:02+00:00</xmp:CreateDate>"
        ));
        assert!(contains(&bytes, "/CreationDate(D:20260305163102Z)"));
        assert!(contains(&bytes, "/Creator(Trailmark)"));
    }

    #[test]
    fn the_same_dossier_renders_to_the_same_bytes() {
        let first = pdf::render(&view(), &meta()).unwrap();
        let again = pdf::render(&view(), &meta()).unwrap();
        assert!(first == again, "two renderings of one dossier differ");
        // ...and a different dossier to different bytes: the content and the date count.
        let mut other = view();
        other
            .gaps
            .push("commit 0badc0ffee00 has no linked ticket.".into());
        assert!(pdf::render(&other, &meta()).unwrap() != first);
        let mut later = meta();
        later.generated_at = "2026-03-05T16:31:03Z".into();
        assert!(pdf::render(&view(), &later).unwrap() != first);
    }

    #[test]
    fn a_dossier_whose_generated_at_is_not_a_time_is_refused_with_the_reason() {
        let mut m = meta();
        m.generated_at = "tomorrow".into();
        let e = pdf::render(&view(), &m).unwrap_err().to_string();
        assert!(e.contains("\"tomorrow\" is not an RFC 3339 instant"), "{e}");
    }
}
