//! The dossier as one self-contained HTML5 page: what an auditor opens offline, reads on screen
//! and prints. A pure function of the view and the export's log anchor — no clock, no I/O, no
//! scripts, no external resources — so the same dossier always renders to the same bytes.
//!
//! Every value from the view reaches the page through askama's HTML escaping (on by default for
//! `.html` templates, never switched off with `|safe`): tickets, comments and names come from
//! outside systems and must not be able to inject markup.

use askama::Template;

use crate::view::{Control, ExportMeta, MatrixCommit, MatrixRow, Question, TestSummary, View};

/// The dossier page for `view`, anchored to the log described by `meta`.
pub fn render(view: &View, meta: &ExportMeta) -> String {
    let page = Page {
        view,
        meta,
        environments: list(&view.release.environments),
        questions: view.questions.iter().map(QuestionRow::new).collect(),
        matrix: view.matrix.iter().map(TicketGroup::new).collect(),
        controls: view.controls.iter().map(ControlRow::new).collect(),
    };
    // Rendering into a String fails only when a value's Display does; every value here is a
    // String, an integer or a bool, whose Display cannot fail.
    let mut html = page
        .render()
        .expect("rendering the dossier template into a String cannot fail");
    // askama drops the template's final newline; a text file ends with one.
    html.push('\n');
    html
}

/// A pass rate in per mille as a percentage with one decimal (`987` → `98.7%`), by integer
/// arithmetic: the view carries no floats and the page must not introduce rounding that differs
/// between platforms.
pub fn pass_rate(permille: Option<i64>) -> String {
    match permille {
        None => "n/a".to_owned(),
        Some(p) => {
            let sign = if p < 0 { "-" } else { "" };
            let p = p.unsigned_abs();
            format!("{sign}{}.{}%", p / 10, p % 10)
        }
    }
}

#[derive(Template)]
#[template(path = "dossier.html")]
struct Page<'a> {
    view: &'a View,
    meta: &'a ExportMeta,
    environments: String,
    questions: Vec<QuestionRow<'a>>,
    matrix: Vec<TicketGroup<'a>>,
    controls: Vec<ControlRow<'a>>,
}

struct QuestionRow<'a> {
    q: &'a Question,
    /// Status in words, so it does not rest on colour alone.
    answer: &'static str,
    /// A fixed class name (never taken from the data) for the colour.
    class: &'static str,
    evidence: String,
}

impl<'a> QuestionRow<'a> {
    fn new(q: &'a Question) -> Self {
        let (answer, class) = match q.answer.as_str() {
            "yes" => ("Yes", "ok"),
            "partial" => ("Partial", "partial"),
            "no" => ("No", "bad"),
            _ => ("Unknown", "unknown"),
        };
        Self {
            q,
            answer,
            class,
            evidence: records(&q.evidence),
        }
    }
}

struct TicketGroup<'a> {
    row: &'a MatrixRow,
    commits: Vec<CommitRow<'a>>,
    /// Rows the ticket, approval and deployment cells span (at least one).
    span: usize,
}

impl<'a> TicketGroup<'a> {
    fn new(row: &'a MatrixRow) -> Self {
        Self {
            row,
            commits: row.commits.iter().map(CommitRow::new).collect(),
            span: row.commits.len().max(1),
        }
    }
}

struct CommitRow<'a> {
    c: &'a MatrixCommit,
    tests: &'a TestSummary,
    pass_rate: String,
    /// What the pass rate is of: tests − skipped − blocked.
    executed: i64,
    repeated_failures: String,
    follow_up: String,
}

impl<'a> CommitRow<'a> {
    fn new(c: &'a MatrixCommit) -> Self {
        Self {
            c,
            tests: &c.tests,
            pass_rate: pass_rate(c.tests.pass_rate_permille),
            executed: c.tests.tests - c.tests.skipped - c.tests.blocked,
            repeated_failures: list(&c.tests.repeated_failures),
            follow_up: list(&c.tests.failures_with_follow_up),
        }
    }
}

struct ControlRow<'a> {
    c: &'a Control,
    status: &'static str,
    class: &'static str,
    evidence: String,
}

impl<'a> ControlRow<'a> {
    fn new(c: &'a Control) -> Self {
        let (status, class) = match c.status.as_str() {
            "met" => ("Met", "ok"),
            "partial" => ("Partial", "partial"),
            "gap" => ("Gap", "bad"),
            _ => ("Unknown", "unknown"),
        };
        Self {
            c,
            status,
            class,
            evidence: records(&c.evidence),
        }
    }
}

/// Log indices as `3, 7, 12`, or `none`.
fn records(indices: &[u64]) -> String {
    list(&indices.iter().map(u64::to_string).collect::<Vec<_>>())
}

/// Items as `a, b, c`, or `none`. Plain text: the template escapes it.
fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}
