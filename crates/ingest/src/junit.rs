//! JUnit XML test reports, in every common dialect: pytest, jest, mocha, surefire/failsafe
//! (including `flakyFailure`/`rerunFailure`), nextest, bazel, gtest, phpunit, xunit, nette
//! tester, with `<testsuites>` or `<testsuite>` as the root and suites nested in suites.
//!
//! One `test.report` record per file. Totals count the listed test cases (the attributes a tool
//! declares are kept beside them, and a note says when they disagree); per-suite totals include
//! nested suites. Durations are integer milliseconds. Payload shape:
//!
//! ```text
//! { format: "junit", name?, file?, timestamp?,
//!   totals: {tests, passed, failures, errors, skipped, flaky, duration_ms},
//!   declared?: {tests?, failures?, errors?, skipped?}, notes?: [..],
//!   suites: [{name, path, depth, tests, passed, failures, errors, skipped, flaky, duration_ms,
//!             timestamp?, declared?}],
//!   cases: [{suite, name, classname?, file?, status, duration_ms?, message?, type?, reruns?}],
//!   cases_omitted?: n }
//! ```
//!
//! `status` is one of `pass`, `fail`, `error`, `skip`, `flaky` (passed after failed runs).

use serde_json::{Map, Value, json};

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use crate::{Context, Draft, Format, IngestError, Parsed, Skipped};

/// Test cases kept in a payload; the rest are counted in the totals but not listed.
pub const MAX_CASES: usize = 10_000;
/// Suites kept in a payload.
pub const MAX_SUITES: usize = 10_000;
/// Failure messages are cut to this many bytes.
pub const MAX_MESSAGE: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Pass,
    Fail,
    Error,
    Skip,
    Flaky,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Error => "error",
            Status::Skip => "skip",
            Status::Flaky => "flaky",
        }
    }
}

#[derive(Clone, Debug, Default)]
struct Counts {
    tests: u64,
    passed: u64,
    failures: u64,
    errors: u64,
    skipped: u64,
    flaky: u64,
    case_ms: u64,
}

impl Counts {
    fn add(&mut self, status: Status, ms: Option<u64>) {
        self.tests += 1;
        match status {
            Status::Pass => self.passed += 1,
            Status::Fail => self.failures += 1,
            Status::Error => self.errors += 1,
            Status::Skip => self.skipped += 1,
            Status::Flaky => self.flaky += 1,
        }
        self.case_ms = self.case_ms.saturating_add(ms.unwrap_or(0));
    }
}

/// Totals a tool wrote as attributes (`tests`, `failures`, `errors`, `skipped` + `disabled`).
#[derive(Clone, Debug, Default)]
struct Declared {
    tests: Option<u64>,
    failures: Option<u64>,
    errors: Option<u64>,
    skipped: Option<u64>,
}

impl Declared {
    fn from_attrs(a: &Attrs) -> Declared {
        let num = |k: &str| a.get(k).and_then(|v| v.trim().parse::<u64>().ok());
        let skipped = match (num("skipped").or_else(|| num("skip")), num("disabled")) {
            (None, None) => None,
            (s, d) => Some(s.unwrap_or(0).saturating_add(d.unwrap_or(0))),
        };
        Declared {
            tests: num("tests"),
            failures: num("failures"),
            errors: num("errors"),
            skipped,
        }
    }

    fn is_empty(&self) -> bool {
        self.tests.is_none()
            && self.failures.is_none()
            && self.errors.is_none()
            && self.skipped.is_none()
    }

    fn add(&mut self, o: &Declared) {
        fn sum(a: &mut Option<u64>, b: Option<u64>) {
            if let Some(b) = b {
                *a = Some(a.unwrap_or(0).saturating_add(b));
            }
        }
        sum(&mut self.tests, o.tests);
        sum(&mut self.failures, o.failures);
        sum(&mut self.errors, o.errors);
        sum(&mut self.skipped, o.skipped);
    }

    /// Whether every declared number matches the counted one (failures include flaky reruns'
    /// failures in no dialect, so they are compared as is).
    fn agrees(&self, c: &Counts) -> bool {
        let ok = |d: Option<u64>, n: u64| d.is_none_or(|d| d == n);
        ok(self.tests, c.tests)
            && ok(self.failures, c.failures)
            && ok(self.errors, c.errors)
            && ok(self.skipped, c.skipped)
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        for (k, v) in [
            ("tests", self.tests),
            ("failures", self.failures),
            ("errors", self.errors),
            ("skipped", self.skipped),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), json!(v));
            }
        }
        Value::Object(m)
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("tests", self.tests),
            ("failures", self.failures),
            ("errors", self.errors),
            ("skipped", self.skipped),
        ] {
            if let Some(v) = v {
                parts.push(format!("{k}={v}"));
            }
        }
        parts.join(" ")
    }
}

struct Suite {
    name: String,
    path: String,
    depth: usize,
    declared: Declared,
    time_ms: Option<u64>,
    timestamp: Option<String>,
    counts: Counts,
}

struct Case {
    suite: String,
    name: Option<String>,
    classname: Option<String>,
    file: Option<String>,
    status_attr: Option<String>,
    duration_ms: Option<u64>,
    /// First element of each outcome kind: (message, type).
    failure: Option<Outcome>,
    error: Option<Outcome>,
    skipped: Option<Outcome>,
    flaky: Option<Outcome>,
    reruns: u64,
}

#[derive(Default)]
struct Outcome {
    message: Option<String>,
    ty: Option<String>,
    text: String,
}

impl Outcome {
    fn summary(&self) -> Option<String> {
        let m = self
            .message
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty());
        let t = self.text.trim();
        let s = m.or(if t.is_empty() { None } else { Some(t) })?;
        Some(truncate(s, MAX_MESSAGE))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum OutcomeKind {
    Failure,
    Error,
    Skipped,
    Flaky,
    Rerun,
}

enum Frame {
    Root,
    Suite(usize),
    Case,
    Outcome(OutcomeKind),
    Other,
}

type Attrs = Vec<(String, String)>;

trait AttrGet {
    fn get(&self, k: &str) -> Option<&str>;
}

impl AttrGet for Attrs {
    fn get(&self, k: &str) -> Option<&str> {
        self.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }
}

/// Cuts `s` to at most `max` bytes on a character boundary, marking the cut with `…`.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Parses a duration in seconds as JUnit writers emit it (`"0.123"`, `"1,234.5"`, `"0,5"`,
/// `"12"`, `"1e-3"`, `"0.5s"`, `""`) into integer milliseconds, rounding half up. `None` for
/// empty, negative or unreadable values; never panics; saturates instead of overflowing.
pub fn parse_seconds_ms(s: &str) -> Option<u64> {
    let mut s = s.trim();
    if let Some(ms) = s.strip_suffix("ms") {
        return parse_seconds_ms(ms).map(|v| v / 1000 + u64::from(v % 1000 >= 500));
    }
    if let Some(x) = s.strip_suffix('s') {
        s = x.trim_end();
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    if s.is_empty() || s.starts_with('-') {
        return None;
    }
    let owned;
    let s = if s.contains(',') {
        let thousands = if s.contains('.') {
            true
        } else {
            // "1,234" / "12,345,678" are thousands; "0,5", "0,123", "1,5" are decimal commas.
            let groups: Vec<&str> = s.split(',').collect();
            groups[0] != "0"
                && !groups[0].is_empty()
                && groups[0].len() <= 3
                && groups[1..].iter().all(|g| g.len() == 3)
        };
        owned = if thousands {
            s.replace(',', "")
        } else {
            s.replacen(',', ".", 1)
        };
        owned.as_str()
    } else {
        s
    };
    if s.contains(['e', 'E']) {
        let v: f64 = s.parse().ok()?;
        if !v.is_finite() || v < 0.0 {
            return None;
        }
        let ms = (v * 1000.0).round();
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        return Some(if ms >= u64::MAX as f64 {
            u64::MAX
        } else {
            ms as u64
        });
    }
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let mut ms: u64 = 0;
    for b in int.bytes() {
        ms = ms.saturating_mul(10).saturating_add(u64::from(b - b'0'));
    }
    ms = ms.saturating_mul(1000);
    let f = frac.as_bytes();
    let digit = |i: usize| f.get(i).map_or(0, |b| u64::from(b - b'0'));
    ms = ms.saturating_add(digit(0) * 100 + digit(1) * 10 + digit(2));
    if digit(3) >= 5 {
        ms = ms.saturating_add(1);
    }
    Some(ms)
}

fn xml_err(message: String) -> IngestError {
    IngestError::Xml {
        format: Format::Junit,
        message,
    }
}

fn position(bytes: &[u8], pos: u64) -> String {
    let pos = usize::try_from(pos).unwrap_or(usize::MAX).min(bytes.len());
    let before = &bytes[..pos];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let col = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
    format!("line {line}, column {col} (byte {pos})")
}

fn attrs(e: &BytesStart<'_>, bytes: &[u8], reader: &Reader<&[u8]>) -> Result<Attrs, IngestError> {
    let mut out = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|err| {
            xml_err(format!(
                "{err} at {}",
                position(bytes, reader.buffer_position())
            ))
        })?;
        let key = String::from_utf8_lossy(a.key.local_name().as_ref()).into_owned();
        let value = a.unescape_value().map_err(|err| {
            xml_err(format!(
                "{err} at {}",
                position(bytes, reader.buffer_position())
            ))
        })?;
        out.push((key, value.into_owned()));
    }
    Ok(out)
}

fn non_empty(v: Option<&str>) -> Option<String> {
    v.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

struct State {
    root_name: Option<String>,
    root_declared: Option<Declared>,
    root_time: Option<u64>,
    timestamp: Option<String>,
    suites: Vec<Suite>,
    cases: Vec<Value>,
    totals: Counts,
    omitted: u64,
    case: Option<Case>,
    outcome: Option<(OutcomeKind, Outcome)>,
}

impl State {
    fn open(&mut self, name: &[u8], a: Option<Attrs>, stack: &[Frame]) -> Frame {
        let a = a.unwrap_or_default();
        let parent_suite = stack.iter().rev().find_map(|f| match f {
            Frame::Suite(i) => Some(*i),
            _ => None,
        });
        match (stack.last(), name) {
            (Some(Frame::Root | Frame::Suite(_)), b"testsuite") | (None, b"testsuite") => {
                let sname = truncate(&non_empty(a.get("name")).unwrap_or_default(), MAX_MESSAGE);
                let (path, depth) = match parent_suite {
                    Some(p) => (
                        truncate(&format!("{}/{}", self.suites[p].path, sname), MAX_MESSAGE),
                        self.suites[p].depth + 1,
                    ),
                    None => (sname.clone(), 0),
                };
                if self.timestamp.is_none() {
                    self.timestamp = non_empty(a.get("timestamp"));
                }
                self.suites.push(Suite {
                    name: sname,
                    path,
                    depth,
                    declared: Declared::from_attrs(&a),
                    time_ms: a.get("time").and_then(parse_seconds_ms),
                    timestamp: non_empty(a.get("timestamp")),
                    counts: Counts::default(),
                });
                Frame::Suite(self.suites.len() - 1)
            }
            (None, b"testsuites") => {
                self.root_name = non_empty(a.get("name"));
                let d = Declared::from_attrs(&a);
                self.root_declared = (!d.is_empty()).then_some(d);
                self.root_time = a.get("time").and_then(parse_seconds_ms);
                self.timestamp = non_empty(a.get("timestamp"));
                Frame::Root
            }
            (Some(Frame::Root | Frame::Suite(_)), b"testcase") => {
                let suite = parent_suite
                    .map(|i| self.suites[i].path.clone())
                    .unwrap_or_default();
                self.case = Some(Case {
                    suite,
                    name: non_empty(a.get("name")).map(|v| truncate(&v, MAX_MESSAGE)),
                    classname: non_empty(a.get("classname").or_else(|| a.get("class")))
                        .map(|v| truncate(&v, MAX_MESSAGE)),
                    file: non_empty(a.get("file")).map(|v| truncate(&v, MAX_MESSAGE)),
                    status_attr: non_empty(a.get("status").or_else(|| a.get("result")))
                        .map(|s| s.to_ascii_lowercase()),
                    duration_ms: a.get("time").and_then(parse_seconds_ms),
                    failure: None,
                    error: None,
                    skipped: None,
                    flaky: None,
                    reruns: 0,
                });
                Frame::Case
            }
            (Some(Frame::Case), n) => {
                let kind = match n {
                    b"failure" => OutcomeKind::Failure,
                    b"error" => OutcomeKind::Error,
                    b"skipped" | b"skip" | b"ignored" => OutcomeKind::Skipped,
                    b"flakyFailure" | b"flakyError" => OutcomeKind::Flaky,
                    b"rerunFailure" | b"rerunError" => OutcomeKind::Rerun,
                    _ => return Frame::Other,
                };
                self.outcome = Some((
                    kind,
                    Outcome {
                        message: a.get("message").map(str::to_owned),
                        ty: non_empty(a.get("type")),
                        text: String::new(),
                    },
                ));
                Frame::Outcome(kind)
            }
            _ => Frame::Other,
        }
    }

    fn text(&mut self, t: &str) {
        if let Some((_, o)) = &mut self.outcome
            && o.text.len() < MAX_MESSAGE * 2
        {
            o.text.push_str(t);
        }
    }

    fn close(&mut self, frame: Frame, stack: &[Frame]) {
        match frame {
            Frame::Outcome(kind) => {
                let (Some((_, o)), Some(c)) = (self.outcome.take(), self.case.as_mut()) else {
                    return;
                };
                let slot = match kind {
                    OutcomeKind::Failure => &mut c.failure,
                    OutcomeKind::Error => &mut c.error,
                    OutcomeKind::Skipped => &mut c.skipped,
                    OutcomeKind::Flaky => {
                        c.reruns += 1;
                        &mut c.flaky
                    }
                    OutcomeKind::Rerun => {
                        c.reruns += 1;
                        return;
                    }
                };
                if slot.is_none() {
                    *slot = Some(o);
                }
            }
            Frame::Case => {
                if let Some(c) = self.case.take() {
                    self.finish_case(c, stack);
                }
            }
            _ => {}
        }
    }

    fn finish_case(&mut self, c: Case, stack: &[Frame]) {
        let attr = c.status_attr.as_deref().unwrap_or("");
        let (status, outcome) = if let Some(o) = &c.error {
            (Status::Error, Some(o))
        } else if let Some(o) = &c.failure {
            (Status::Fail, Some(o))
        } else if let Some(o) = &c.skipped {
            (Status::Skip, Some(o))
        } else if matches!(
            attr,
            "disabled"
                | "skipped"
                | "skip"
                | "notrun"
                | "not_run"
                | "ignored"
                | "suppressed"
                | "pending"
        ) {
            (Status::Skip, None)
        } else if matches!(attr, "failed" | "failure" | "fail") {
            (Status::Fail, None)
        } else if matches!(attr, "errored" | "error") {
            (Status::Error, None)
        } else if let Some(o) = &c.flaky {
            (Status::Flaky, Some(o))
        } else {
            (Status::Pass, None)
        };
        self.totals.add(status, c.duration_ms);
        for f in stack {
            if let Frame::Suite(i) = f {
                self.suites[*i].counts.add(status, c.duration_ms);
            }
        }
        if self.cases.len() >= MAX_CASES {
            self.omitted += 1;
            return;
        }
        let mut m = Map::new();
        m.insert("suite".into(), json!(c.suite));
        m.insert("name".into(), json!(c.name.unwrap_or_default()));
        if let Some(v) = c.classname {
            m.insert("classname".into(), json!(v));
        }
        if let Some(v) = c.file {
            m.insert("file".into(), json!(v));
        }
        m.insert("status".into(), json!(status.name()));
        if let Some(v) = c.duration_ms {
            m.insert("duration_ms".into(), json!(v));
        }
        if let Some(o) = outcome {
            if let Some(msg) = o.summary() {
                m.insert("message".into(), json!(msg));
            }
            if let Some(t) = &o.ty {
                m.insert("type".into(), json!(truncate(t, 256)));
            }
        }
        if c.reruns > 0 {
            m.insert("reruns".into(), json!(c.reruns));
        }
        self.cases.push(Value::Object(m));
    }
}

/// Reads the XML into suites and cases; errors name quick-xml's reason and the position.
fn read(bytes: &[u8]) -> Result<State, IngestError> {
    let body = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let offset = (bytes.len() - body.len()) as u64;
    let mut reader = Reader::from_reader(body);
    reader.config_mut().trim_text(false);
    let pos_of = |p: u64| position(bytes, p + offset);
    let mut st = State {
        root_name: None,
        root_declared: None,
        root_time: None,
        timestamp: None,
        suites: Vec::new(),
        cases: Vec::new(),
        totals: Counts::default(),
        omitted: 0,
        case: None,
        outcome: None,
    };
    let mut stack: Vec<Frame> = Vec::new();
    let mut names: Vec<Vec<u8>> = Vec::new();
    let mut seen_root = false;
    loop {
        let ev = reader
            .read_event()
            .map_err(|e| xml_err(format!("{e} at {}", pos_of(reader.error_position()))))?;
        let decode_err = |e: quick_xml::encoding::EncodingError, r: &Reader<&[u8]>| {
            xml_err(format!("{e} at {}", pos_of(r.buffer_position())))
        };
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(ev, Event::Empty(_));
                let local = e.local_name();
                let local = local.as_ref();
                if stack.is_empty() {
                    if seen_root {
                        return Err(xml_err(format!(
                            "a second root element at {}",
                            pos_of(reader.buffer_position())
                        )));
                    }
                    seen_root = true;
                    if local != b"testsuites" && local != b"testsuite" {
                        return Err(IngestError::schema(
                            Format::Junit,
                            format!(
                                "root element <{}> is not <testsuites> or <testsuite>",
                                String::from_utf8_lossy(e.name().as_ref())
                            ),
                        ));
                    }
                }
                // Attributes are decoded only where they are read.
                let interesting = matches!(
                    (stack.last(), local),
                    (None, _)
                        | (
                            Some(Frame::Root | Frame::Suite(_)),
                            b"testsuite" | b"testcase"
                        )
                        | (Some(Frame::Case), _)
                );
                let a = if interesting {
                    Some(attrs(e, bytes, &reader)?)
                } else {
                    None
                };
                let frame = st.open(local, a, &stack);
                if empty {
                    st.close(frame, &stack);
                } else {
                    stack.push(frame);
                    names.push(e.name().as_ref().to_vec());
                }
            }
            Event::End(_) => {
                names.pop();
                if let Some(f) = stack.pop() {
                    st.close(f, &stack);
                }
            }
            Event::Text(t) => {
                if stack.is_empty() {
                    let s = t.decode().map_err(|e| decode_err(e, &reader))?;
                    if !s.trim().is_empty() {
                        return Err(xml_err(format!(
                            "text outside the root element (is this XML?) at {}",
                            pos_of(reader.buffer_position())
                        )));
                    }
                } else if st.outcome.is_some() {
                    let s = t.xml_content().map_err(|e| decode_err(e, &reader))?;
                    st.text(&s);
                }
            }
            Event::CData(t) => {
                if stack.is_empty() {
                    return Err(xml_err(format!(
                        "CDATA outside the root element at {}",
                        pos_of(reader.buffer_position())
                    )));
                }
                if st.outcome.is_some() {
                    let s = t.decode().map_err(|e| decode_err(e, &reader))?;
                    st.text(&s);
                }
            }
            Event::GeneralRef(r) => {
                if stack.is_empty() {
                    return Err(xml_err(format!(
                        "text outside the root element at {}",
                        pos_of(reader.buffer_position())
                    )));
                }
                if st.outcome.is_some() {
                    let ch = r.resolve_char_ref().map_err(|e| {
                        xml_err(format!("{e} at {}", pos_of(reader.buffer_position())))
                    })?;
                    let name = r.decode().map_err(|e| decode_err(e, &reader))?;
                    let s = match (ch, name.as_ref()) {
                        (Some(c), _) => c.to_string(),
                        (None, "lt") => "<".into(),
                        (None, "gt") => ">".into(),
                        (None, "amp") => "&".into(),
                        (None, "apos") => "'".into(),
                        (None, "quot") => "\"".into(),
                        (None, other) => format!("&{other};"),
                    };
                    st.text(&s);
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
    }
    if let Some(open) = names.last() {
        return Err(xml_err(format!(
            "unexpected end of input: <{}> is not closed ({} element(s) open) at {}",
            String::from_utf8_lossy(open),
            names.len(),
            pos_of(reader.buffer_position())
        )));
    }
    if !seen_root {
        return Err(xml_err("no root element: the input is not XML".into()));
    }
    Ok(st)
}

/// The subjects and the commit link every report record gets: `build`/`commit` from the
/// context, else `report:<fallback>` so the record stays valid.
pub(crate) fn report_draft(
    kind: &str,
    rel: &str,
    format: Format,
    ctx: &Context,
    fallback: &str,
) -> Result<Draft, IngestError> {
    let commit = ctx
        .commit
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    if let Some(c) = commit
        && !((c.len() == 40 || c.len() == 64) && c.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(IngestError::schema(
            format,
            format!("--commit {c:?} is not a full 40- or 64-hex commit id"),
        ));
    }
    let commit = commit.map(str::to_ascii_lowercase);
    let build = ctx
        .build
        .as_deref()
        .map(str::trim)
        .filter(|b| !b.is_empty());
    let mut d = Draft::new(kind)
        .subject_opt("build", build)
        .subject_opt("commit", commit.as_deref());
    if let Some(c) = &commit {
        d = d.link(rel, "commit", c);
    }
    if build.is_none() && commit.is_none() {
        let name: String = fallback
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let name = truncate(name.trim(), 1000);
        d = d.subject(
            "report",
            if name.is_empty() {
                format.name().to_owned()
            } else {
                name
            },
        );
    }
    Ok(d)
}

pub fn parse(bytes: &[u8], ctx: &Context) -> Result<Parsed, IngestError> {
    let st = read(bytes)?;
    let mut skipped = Vec::new();
    if st.omitted > 0 {
        skipped.push(Skipped {
            what: format!("{} test cases after the first {MAX_CASES}", st.omitted),
            reason: format!(
                "a record lists at most {MAX_CASES} cases; the rest are counted in the totals only"
            ),
        });
    }
    let top: Vec<&Suite> = st.suites.iter().filter(|s| s.depth == 0).collect();
    let declared = match &st.root_declared {
        Some(d) => Some(d.clone()),
        None => {
            let mut d = Declared::default();
            for s in &top {
                d.add(&s.declared);
            }
            (!d.is_empty()).then_some(d)
        }
    };
    let duration_ms = st.root_time.unwrap_or_else(|| {
        top.iter()
            .map(|s| s.time_ms.unwrap_or(s.counts.case_ms))
            .fold(0u64, u64::saturating_add)
    });
    let t = &st.totals;
    let mut notes = Vec::new();
    if let Some(d) = &declared
        && !d.agrees(t)
    {
        notes.push(format!(
            "the report declares {} but lists {} test case(s); totals count the listed cases",
            d.describe(),
            t.tests
        ));
    }
    let suites: Vec<Value> = st
        .suites
        .iter()
        .take(MAX_SUITES)
        .map(|s| {
            let c = &s.counts;
            let mut m = json!({
                "name": s.name, "path": s.path, "depth": s.depth,
                "tests": c.tests, "passed": c.passed, "failures": c.failures, "errors": c.errors,
                "skipped": c.skipped, "flaky": c.flaky, "duration_ms": s.time_ms.unwrap_or(c.case_ms),
            });
            if let Some(ts) = &s.timestamp {
                m["timestamp"] = json!(ts);
            }
            if !s.declared.is_empty() && !s.declared.agrees(c) {
                m["declared"] = s.declared.to_json();
            }
            m
        })
        .collect();
    if st.suites.len() > MAX_SUITES {
        skipped.push(Skipped {
            what: format!(
                "{} suites after the first {MAX_SUITES}",
                st.suites.len() - MAX_SUITES
            ),
            reason: "a record lists at most 10000 suites; their cases are counted in the totals"
                .into(),
        });
    }
    let name = st.root_name.clone().or_else(|| {
        top.first()
            .map(|s| s.name.clone())
            .filter(|n| !n.is_empty())
    });
    let mut payload = json!({
        "format": "junit",
        "totals": {
            "tests": t.tests, "passed": t.passed, "failures": t.failures, "errors": t.errors,
            "skipped": t.skipped, "flaky": t.flaky, "duration_ms": duration_ms,
        },
        "suites": suites,
        "cases": st.cases,
    });
    if let Some(n) = &name {
        payload["name"] = json!(n);
    }
    if let Some(f) = &ctx.filename {
        payload["file"] = json!(f);
    }
    if let Some(ts) = &st.timestamp {
        payload["timestamp"] = json!(ts);
    }
    if let Some(d) = &declared {
        payload["declared"] = d.to_json();
    }
    if !notes.is_empty() {
        payload["notes"] = json!(notes);
    }
    if st.omitted > 0 {
        payload["cases_omitted"] = json!(st.omitted);
    }
    let fallback = name.or_else(|| ctx.filename.clone()).unwrap_or_default();
    let occurred = st
        .timestamp
        .filter(|ts| ts.parse::<jiff::Timestamp>().is_ok());
    let record = report_draft("test.report", "tests", Format::Junit, ctx, &fallback)?
        .occurred_at(occurred)
        .payload(payload)
        .build()
        .map_err(|e| IngestError::schema(Format::Junit, e))?;
    Ok(Parsed {
        records: vec![record],
        skipped,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_to_integer_millis() {
        assert_eq!(parse_seconds_ms("0.123"), Some(123));
        assert_eq!(parse_seconds_ms("6.435"), Some(6435));
        assert_eq!(parse_seconds_ms("1.321590"), Some(1322));
        assert_eq!(parse_seconds_ms("0.4540354"), Some(454));
        assert_eq!(parse_seconds_ms("0.0005"), Some(1));
        assert_eq!(parse_seconds_ms("0.0004"), Some(0));
        assert_eq!(parse_seconds_ms("12"), Some(12_000));
        assert_eq!(parse_seconds_ms("1,234.5"), Some(1_234_500));
        assert_eq!(parse_seconds_ms("1,234"), Some(1_234_000));
        assert_eq!(parse_seconds_ms("0,5"), Some(500));
        assert_eq!(parse_seconds_ms("0,123"), Some(123));
        assert_eq!(parse_seconds_ms(" 2.5s "), Some(2500));
        assert_eq!(parse_seconds_ms("1e-3"), Some(1));
        assert_eq!(parse_seconds_ms(".5"), Some(500));
        assert_eq!(parse_seconds_ms("5."), Some(5000));
        assert_eq!(parse_seconds_ms(""), None);
        assert_eq!(parse_seconds_ms("."), None);
        assert_eq!(parse_seconds_ms("-1"), None);
        assert_eq!(parse_seconds_ms("abc"), None);
        assert_eq!(parse_seconds_ms("NaN"), None);
        assert_eq!(parse_seconds_ms("inf"), None);
        assert_eq!(parse_seconds_ms("1e400"), None);
        assert_eq!(
            parse_seconds_ms("99999999999999999999999999"),
            Some(u64::MAX)
        );
    }

    fn payload(xml: &str) -> Value {
        let p = parse(xml.as_bytes(), &Context::default()).unwrap();
        trailmark_model::input::to_value(&p.records[0])["payload"].clone()
    }

    #[test]
    fn surefire_flaky_and_rerun_elements_are_counted() {
        let xml = r#"<testsuite name="s" tests="3" failures="1">
            <testcase name="flaky" classname="C" time="0.5">
              <flakyFailure message="first try" type="AssertionError"/>
              <flakyError message="second try"/>
            </testcase>
            <testcase name="broken" classname="C">
              <failure message="always"/>
              <rerunFailure message="again"/><rerunFailure message="and again"/>
            </testcase>
            <testcase name="ok" classname="C"/>
          </testsuite>"#;
        let p = payload(xml);
        assert_eq!(p["totals"]["tests"], 3);
        assert_eq!(p["totals"]["flaky"], 1);
        assert_eq!(p["totals"]["failures"], 1);
        assert_eq!(p["totals"]["passed"], 1);
        assert_eq!(p["cases"][0]["status"], "flaky");
        assert_eq!(p["cases"][0]["reruns"], 2);
        assert_eq!(p["cases"][0]["message"], "first try");
        assert_eq!(p["cases"][1]["status"], "fail");
        assert_eq!(p["cases"][1]["reruns"], 2);
        assert_eq!(p["cases"][1]["message"], "always");
        assert!(p.get("notes").is_none());
    }

    #[test]
    fn many_cases_are_bounded() {
        let mut xml = String::from("<testsuite name=\"big\">");
        for i in 0..(MAX_CASES + 5) {
            xml.push_str(&format!("<testcase name=\"t{i}\"/>"));
        }
        xml.push_str("</testsuite>");
        let p = parse(xml.as_bytes(), &Context::default()).unwrap();
        assert_eq!(p.skipped.len(), 1);
        let v = trailmark_model::input::to_value(&p.records[0]);
        assert_eq!(v["payload"]["totals"]["tests"], MAX_CASES as u64 + 5);
        assert_eq!(v["payload"]["cases"].as_array().unwrap().len(), MAX_CASES);
        assert_eq!(v["payload"]["cases_omitted"], 5);
    }

    #[test]
    fn long_messages_are_truncated() {
        let long = "x".repeat(5000);
        let p = payload(&format!(
            "<testsuite><testcase name=\"a\"><failure>{long}</failure></testcase></testsuite>"
        ));
        let m = p["cases"][0]["message"].as_str().unwrap();
        assert!(m.len() <= MAX_MESSAGE && m.ends_with('…'));
    }

    #[test]
    fn context_gives_subjects_and_link() {
        let ctx = Context {
            commit: Some("A".repeat(40)),
            build: Some("jenkins/job/7".into()),
            ..Context::default()
        };
        let p = parse(b"<testsuite name=\"s\"/>", &ctx).unwrap();
        let v = trailmark_model::input::to_value(&p.records[0]);
        assert_eq!(v["subjects"][0]["id"], "jenkins/job/7");
        assert_eq!(v["subjects"][1]["id"], "a".repeat(40));
        assert_eq!(v["links"][0]["rel"], "tests");
        let bad = Context {
            commit: Some("abc123".into()),
            ..Context::default()
        };
        assert!(
            parse(b"<testsuite/>", &bad)
                .unwrap_err()
                .to_string()
                .contains("--commit")
        );
    }

    #[test]
    fn refusals_are_precise() {
        let e = parse(b"<foo/>", &Context::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "junit: root element <foo> is not <testsuites> or <testsuite>"
        );
        let e = parse(b"not xml", &Context::default()).unwrap_err();
        assert!(matches!(e, IngestError::Xml { .. }), "{e}");
        let e = parse(b"<testsuites><testsuite>", &Context::default()).unwrap_err();
        assert!(e.to_string().contains("not closed"), "{e}");
        let e = parse(b"<testsuites></testsuite>", &Context::default()).unwrap_err();
        assert!(matches!(e, IngestError::Xml { .. }), "{e}");
    }

    #[test]
    fn every_prefix_of_real_reports_is_handled_without_panic() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/fixtures/ingest/junit/"
        );
        let mut n = 0;
        for name in [
            "junit.fail.xml",
            "testsuite-in-testsuite.xml",
            "with-xml-entities.xml",
            "unsupported-unicode.xml",
            "xunit.xml",
        ] {
            let Ok(bytes) = std::fs::read(format!("{dir}{name}")) else {
                continue;
            };
            for end in 0..=bytes.len() {
                let _ = parse(&bytes[..end], &Context::default());
                n += 1;
            }
            // And with a byte flipped here and there.
            for i in (0..bytes.len()).step_by(7) {
                let mut b = bytes.clone();
                b[i] ^= 0x5a;
                let _ = parse(&b, &Context::default());
            }
        }
        // Inline junk, in case the shared fixtures are absent.
        for junk in [
            &b"<"[..],
            b"<testsuite",
            b"<testsuite name=",
            b"<testsuite><testcase time='\xff'/>",
            b"\xef\xbb\xbf",
            b"&amp;",
            b"<![CDATA[x]]>",
        ] {
            let _ = parse(junk, &Context::default());
            n += 1;
        }
        assert!(n > 0);
    }
}
