//! The dossier as OSCAL 1.1.2 assessment results: one `result` for the release, one observation
//! and one finding per mapped control, one risk per gap. A pure function of the view and the
//! export's log anchor, so the same dossier always yields the same document, UUIDs included.
//!
//! Choices the model leaves open:
//!
//! - **Control ids.** OSCAL `control-id`s refer to a catalog. Only NIST SP 800-53 has an official
//!   OSCAL catalog, so only its controls go into `include-controls`, in the catalog's form
//!   (`CM-3` → `cm-3`, `AC-2(1)` → `ac-2.1`). SOC 2, SOX ITGC, PCI DSS and ISO 27001 controls have
//!   no catalog to point into. Inventing ids for them would make the document claim references that
//!   resolve nowhere. So they are carried as `props` (`framework`, `control-id`, in the Trailmark
//!   namespace) on the control selection, the observation and the finding.
//! - **Finding targets.** Each finding targets an `objective-id`. For NIST controls this is the
//!   catalog's assessment-objective id (`cm-3_obj`). For the others it is a local token built from
//!   framework and id (`soc-2_cc8.1_obj`). Either way the finding's props name the control
//!   exactly.
//! - **Statuses.** `met` → `satisfied`. `partial`, `gap` and anything unknown → `not-satisfied`,
//!   with the notes in the description. A partly met control is not met.
//! - **The assessment plan.** A release is assessed against its approval policy. That policy is
//!   versioned in the log, and the gate decisions name it by digest. There is no separate OSCAL
//!   plan, so `import-ap` is a same-document reference (`#`) with a remark that says so.
//! - **UUIDs.** They are name-based: SHA-256 of `trailmark-dossier-oscal`, the release id and the
//!   item's role (`result`, `finding/SOC 2/CC8.1`, `risk/0`...). Version nibble 5, RFC 4122
//!   variant. The same release and control keep the same UUID across re-exports, as OSCAL asks.
//! - **Numbers.** The document holds only strings (no floats, and no integers either): record
//!   indices and counts are written as text.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::view::{Control, ExportMeta, View};

/// The OSCAL model version the document conforms to.
pub const OSCAL_VERSION: &str = "1.1.2";

/// Namespace of the Trailmark-specific `props` (a URN: it names, it is never fetched).
pub const NS: &str = "urn:trailmark:oscal";

/// Framework name whose controls have an OSCAL catalog (NIST SP 800-53).
const NIST: &str = "NIST 800-53";

/// The release's assessment results as an OSCAL 1.1.2 `assessment-results` document.
pub fn assessment_results(view: &View, meta: &ExportMeta) -> Value {
    let release = &view.release;
    let ids = Ids::new(&release.id);

    let mut controls = Vec::new();
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for control in &view.controls {
        // A repeated framework/id pair gets its own UUIDs; the first keeps the plain role.
        let repeat = seen
            .iter()
            .filter(|(f, i)| *f == control.framework && *i == control.id)
            .count();
        seen.push((&control.framework, &control.id));
        let role = if repeat == 0 {
            format!("{}/{}", control.framework, control.id)
        } else {
            format!("{}/{}#{repeat}", control.framework, control.id)
        };
        controls.push((control, role));
    }

    let observations: Vec<Value> = controls
        .iter()
        .map(|(control, role)| observation(&ids, view, control, role))
        .collect();
    let findings: Vec<Value> = controls
        .iter()
        .map(|(control, role)| finding(&ids, control, role))
        .collect();
    let risks: Vec<Value> = view
        .gaps
        .iter()
        .enumerate()
        .map(|(i, gap)| risk(&ids, i, gap))
        .collect();

    let mut result = Map::new();
    result.insert("uuid".into(), ids.uuid("result").into());
    result.insert(
        "title".into(),
        format!(
            "Release {} {} ({})",
            release.name, release.version, release.id
        )
        .into(),
    );
    result.insert(
        "description".into(),
        format!(
            "Evidence for release {} ({} {}, project {}) recorded in the Trailmark log {} and \
             anchored to its checkpoint of size {}, examined as of {} for the {} environment.",
            release.id,
            release.name,
            release.version,
            release.project,
            meta.origin,
            meta.checkpoint_size,
            view.as_of,
            view.environment
        )
        .into(),
    );
    result.insert("start".into(), timestamp(&release.created_at).into());
    result.insert("end".into(), timestamp(&view.as_of).into());
    insert_nonempty(&mut result, "props", result_props(view, meta));
    result.insert("reviewed-controls".into(), reviewed_controls(view));
    insert_nonempty(&mut result, "observations", observations);
    insert_nonempty(&mut result, "risks", risks);
    insert_nonempty(&mut result, "findings", findings);

    json!({
        "assessment-results": {
            "uuid": ids.uuid("assessment-results"),
            "metadata": {
                "title": format!(
                    "Trailmark assessment results: {} {}",
                    release.name, release.version
                ),
                "last-modified": timestamp(&meta.generated_at),
                // The document changes when the log state it is anchored to does.
                "version": format!("checkpoint-{}", meta.checkpoint_size),
                "oscal-version": OSCAL_VERSION,
            },
            "import-ap": {
                "href": "#",
                "remarks": "The assessment plan is the release's approval policy: versioned in \
                            the Trailmark log and named by digest in every gate decision (see \
                            the dossier). No separate OSCAL assessment-plan document exists, \
                            so this is a same-document reference.",
            },
            "results": [Value::Object(result)],
        }
    })
}

/// Name-based UUIDs for one release.
struct Ids<'a> {
    release: &'a str,
}

impl<'a> Ids<'a> {
    fn new(release: &'a str) -> Self {
        Self { release }
    }

    fn uuid(&self, role: &str) -> String {
        uuid_v5_sha256(&format!(
            "trailmark-dossier-oscal\n{}\n{role}",
            self.release
        ))
    }
}

/// An RFC 4122 UUID derived from SHA-256 of `name`: the first 16 bytes of the digest, with the
/// version nibble set to 5 and the variant bits to `10`, formatted lower-case 8-4-4-4-12.
pub fn uuid_v5_sha256(name: &str) -> String {
    let digest = Sha256::digest(name.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|byte| format!("{byte:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The catalog form of a NIST SP 800-53 control id (`CM-3` → `cm-3`, `AC-2(1)` → `ac-2.1`), or
/// `None` when the id does not have that shape.
pub fn nist_control_id(id: &str) -> Option<String> {
    let compact: String = id.chars().filter(|c| !c.is_whitespace()).collect();
    let (base, enhancement) = match compact.split_once('(') {
        Some((base, rest)) => (base, Some(rest.strip_suffix(')')?)),
        None => (compact.as_str(), None),
    };
    let (family, number) = base.split_once('-')?;
    let family_ok = family.len() == 2 && family.chars().all(|c| c.is_ascii_alphabetic());
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    if !family_ok || !digits(number) || !enhancement.is_none_or(digits) {
        return None;
    }
    let mut out = format!("{}-{}", family.to_ascii_lowercase(), number);
    if let Some(e) = enhancement {
        out.push('.');
        out.push_str(e);
    }
    Some(out)
}

/// The catalog control id, when the control is a NIST SP 800-53 one.
fn catalog_id(control: &Control) -> Option<String> {
    if control.framework == NIST {
        nist_control_id(&control.id)
    } else {
        None
    }
}

/// The finding's `objective-id` target: the catalog's objective for NIST controls, a local
/// token otherwise (`SOC 2`/`CC8.1` → `soc-2_cc8.1_obj`).
fn objective_id(control: &Control) -> String {
    match catalog_id(control) {
        Some(id) => format!("{id}_obj"),
        None => format!("{}_{}_obj", slug(&control.framework), slug(&control.id)),
    }
}

/// A lower-case OSCAL token fragment: letters, digits, `.`, `-`, `_`; anything else becomes
/// `-`. It starts with a letter or `_`, as tokens must.
fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.trim().chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() || c == '.' || c == '_' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-').to_owned();
    match out.chars().next() {
        Some(c) if c.is_alphabetic() || c == '_' => out,
        _ => format!("_{out}"),
    }
}

/// A trailmark prop, or nothing when the value is blank (OSCAL prop values must be non-empty
/// without surrounding whitespace).
fn prop(name: &str, value: &str) -> Option<Value> {
    let value = value.trim();
    (!value.is_empty()).then(|| json!({"name": name, "ns": NS, "value": value}))
}

fn control_props(control: &Control) -> Vec<Value> {
    [
        prop("framework", &control.framework),
        prop("control-id", &control.id),
        prop("status", &control.status),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn result_props(view: &View, meta: &ExportMeta) -> Vec<Value> {
    let certification = meta.certification_record.map(|r| r.to_string());
    [
        prop("release-id", &view.release.id),
        prop("project", &view.release.project),
        prop("environment", &view.environment),
        prop("evidence-digest", &view.evidence_digest),
        prop("log-origin", &meta.origin),
        prop("checkpoint-size", &meta.checkpoint_size.to_string()),
        prop("checkpoint-root", &meta.checkpoint_root),
        prop("records", &meta.records.to_string()),
        certification
            .as_deref()
            .and_then(|r| prop("certification-record", r)),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn reviewed_controls(view: &View) -> Value {
    let mut include: Vec<String> = Vec::new();
    let mut others: Vec<Value> = Vec::new();
    for control in &view.controls {
        match catalog_id(control) {
            Some(id) => {
                if !include.contains(&id) {
                    include.push(id);
                }
            }
            None => others.extend(prop(
                "framework-control",
                &format!("{}: {}", control.framework, control.id),
            )),
        }
    }
    let mut selection = Map::new();
    selection.insert(
        "description".into(),
        "Controls the release's evidence was mapped to. NIST SP 800-53 controls are selected \
         from its catalog; controls of frameworks without an OSCAL catalog are listed as \
         framework-control props."
            .into(),
    );
    insert_nonempty(&mut selection, "props", others);
    insert_nonempty(
        &mut selection,
        "include-controls",
        include
            .into_iter()
            .map(|id| json!({"control-id": id}))
            .collect(),
    );
    json!({"control-selections": [Value::Object(selection)]})
}

fn observation(ids: &Ids<'_>, view: &View, control: &Control, role: &str) -> Value {
    let mut o = Map::new();
    o.insert(
        "uuid".into(),
        ids.uuid(&format!("observation/{role}")).into(),
    );
    o.insert(
        "title".into(),
        format!("{} {}: {}", control.framework, control.id, control.title).into(),
    );
    o.insert(
        "description".into(),
        format!(
            "Examined the release's log records for {} {} ({}): {} record{}.",
            control.framework,
            control.id,
            control.title,
            control.evidence.len(),
            if control.evidence.len() == 1 { "" } else { "s" }
        )
        .into(),
    );
    insert_nonempty(&mut o, "props", control_props(control));
    o.insert("methods".into(), json!(["EXAMINE"]));
    o.insert("types".into(), json!(["control-objective"]));
    insert_nonempty(
        &mut o,
        "relevant-evidence",
        control
            .evidence
            .iter()
            .map(|index| {
                json!({
                    "href": format!("trailmark:record/{index}"),
                    "description": format!("Log record {index}, with its inclusion proof in the dossier."),
                })
            })
            .collect(),
    );
    o.insert("collected".into(), timestamp(&view.as_of).into());
    Value::Object(o)
}

fn finding(ids: &Ids<'_>, control: &Control, role: &str) -> Value {
    let satisfied = control.status == "met";
    let description = if satisfied {
        format!(
            "Satisfied: the release's evidence meets {} {}.",
            control.framework, control.id
        )
    } else {
        let mut d = format!(
            "Not satisfied ({}): {} {}.",
            control.status, control.framework, control.id
        );
        for note in &control.notes {
            d.push(' ');
            d.push_str(note);
        }
        d
    };
    let mut f = Map::new();
    f.insert("uuid".into(), ids.uuid(&format!("finding/{role}")).into());
    f.insert(
        "title".into(),
        format!("{} {}: {}", control.framework, control.id, control.title).into(),
    );
    f.insert("description".into(), description.into());
    insert_nonempty(&mut f, "props", control_props(control));
    f.insert(
        "target".into(),
        json!({
            "type": "objective-id",
            "target-id": objective_id(control),
            "status": {
                "state": if satisfied { "satisfied" } else { "not-satisfied" },
                "reason": if satisfied { "pass" } else { "fail" },
            },
        }),
    );
    f.insert(
        "related-observations".into(),
        json!([{"observation-uuid": ids.uuid(&format!("observation/{role}"))}]),
    );
    Value::Object(f)
}

fn risk(ids: &Ids<'_>, index: usize, gap: &str) -> Value {
    json!({
        "uuid": ids.uuid(&format!("risk/{index}")),
        "title": format!("Gap {}", index + 1),
        "description": gap,
        "statement": "Until it is resolved or accepted, the release's audit trail does not fully \
                      evidence the change; an auditor would raise it as an exception.",
        "status": "open",
    })
}

/// An RFC 3339 instant in the form OSCAL's date-time pattern accepts (UTC, `Z`); the input
/// unchanged when it does not parse, so nothing is invented (and validation says so).
fn timestamp(s: &str) -> String {
    s.parse::<jiff::Timestamp>()
        .map_or_else(|_| s.to_owned(), |t| t.to_string())
}

/// Sets `key` to the array, leaving it out when empty (OSCAL arrays have at least one item).
fn insert_nonempty(map: &mut Map<String, Value>, key: &str, items: Vec<Value>) {
    if !items.is_empty() {
        map.insert(key.into(), Value::Array(items));
    }
}
