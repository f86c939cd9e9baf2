//! Offline verification of a dossier: no server, database or network. Trusts only the
//! verifier key given; size and root come only from the verified checkpoint. Reports every
//! failure precisely rather than stopping at the first.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Serialize;
use serde_json::Value;
use trailmark_ingest::identity::IdentityMap;
use trailmark_log::{
    Hash, VerifierKey, leaf_hash, verify_checkpoint, verify_consistency, verify_inclusion,
};
use trailmark_model::{Digest, Payload, Timestamp, decode_leaf};
use trailmark_policy::input::GateInput;
use trailmark_policy::{Decision, Policy, kinds};
use trailmark_store::StoredRecord;

use crate::bundle::{Dossier, FORMAT, RecordEntry, manifest_digest};
use crate::mem::MemSource;

/// The dossier could not be read at all (exit 2), as opposed to read and found wrong.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unreadable(pub String);

#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub release: String,
    pub checkpoint_size: u64,
    pub records: usize,
    pub blobs: usize,
    pub consistency_proofs: usize,
    pub gate_decisions_recomputed: usize,
    pub certifications: usize,
    /// Every check that failed, each naming what and why. Empty means verified.
    pub failures: Vec<String>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }
}

fn hashes(list: &[String]) -> Result<Vec<Hash>, String> {
    list.iter()
        .map(|h| Hash::from_base64(h).map_err(|e| format!("{h:?}: {e}")))
        .collect()
}

/// Verifies a dossier file's bytes against the log's verifier key.
pub fn verify(bytes: &[u8], key: &VerifierKey) -> Result<Report, Unreadable> {
    let d: Dossier = serde_json::from_slice(bytes)
        .map_err(|e| Unreadable(format!("not a Trailmark dossier: {e}")))?;
    let mut rep = Report {
        release: d.release.clone(),
        ..Report::default()
    };
    let fail = |rep: &mut Report, m: String| rep.failures.push(m);
    if d.format != FORMAT {
        fail(&mut rep, format!("format {:?} is not {FORMAT}", d.format));
    }
    let cp = match verify_checkpoint(&d.checkpoint, std::slice::from_ref(key), None) {
        Ok(cp) => cp,
        Err(e) => {
            fail(
                &mut rep,
                format!("the checkpoint does not verify with {}: {e}", key.name()),
            );
            return Ok(rep);
        }
    };
    rep.checkpoint_size = cp.size;

    // Records: each leaf proven into the signed tree, decoded strictly. Every entry is
    // checked on its own, so the entries are split over the machine's cores; the results are
    // then taken in file order, as if checked one after another.
    let mut src = MemSource::default();
    let mut leaf_hashes = BTreeMap::new();
    for (e, checked) in d
        .records
        .iter()
        .zip(check_entries(&d.records, cp.size, &cp.root))
    {
        rep.failures.extend(checked.failures);
        if let Some(r) = checked.record {
            if leaf_hashes.insert(e.index, r.leaf_hash).is_some() {
                fail(&mut rep, format!("record {} appears twice", e.index));
            }
            src.insert(r);
        }
    }
    rep.records = src.records().len();

    for (digest, b64) in &d.blobs {
        let Ok(digest_v) = digest.parse::<Digest>() else {
            fail(
                &mut rep,
                format!("blob key {digest:?} is not a sha256 digest"),
            );
            continue;
        };
        match B64.decode(b64) {
            Ok(bytes) if Digest::of(&bytes) == digest_v => {
                src.insert_blob(digest_v, bytes);
            }
            Ok(_) => fail(
                &mut rep,
                format!("blob {digest}: its bytes do not hash to its digest"),
            ),
            Err(e) => fail(&mut rep, format!("blob {digest}: not base64: {e}")),
        }
    }
    rep.blobs = src.blobs().len();
    for r in src.records().values() {
        if let Payload::Blob { digest, .. } = &r.record.payload
            && !src.blobs().contains_key(digest)
        {
            fail(
                &mut rep,
                format!(
                    "record {}: its payload blob {digest} is missing",
                    r.record.index.0
                ),
            );
        }
    }

    // The export record commits to exactly these records, blobs, view and identity map.
    match src.records().get(&d.export_record) {
        Some(r) if r.record.kind.as_str() == kinds::DOSSIER_EXPORTED => {
            let want = payload(&src, r).and_then(|p| {
                p.get("manifest_digest")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            });
            let others = leaf_hashes
                .iter()
                .filter(|(i, _)| **i != d.export_record)
                .map(|(i, h)| (*i, h));
            let got = manifest_digest(&d, others).to_string();
            if want.as_deref() != Some(got.as_str()) {
                fail(
                    &mut rep,
                    format!(
                        "the dossier is not what was exported (export record {}): records, blobs, the identity map or the view were added, removed or changed",
                        d.export_record
                    ),
                );
            }
            if r.record.subjects.iter().all(|s| s.id.as_str() != d.release) {
                fail(
                    &mut rep,
                    format!("export record {} is about another release", d.export_record),
                );
            }
        }
        _ => fail(
            &mut rep,
            format!(
                "export record {} is missing or is not a dossier.exported record",
                d.export_record
            ),
        ),
    }

    for c in &d.consistency {
        match verify_checkpoint(&c.checkpoint, std::slice::from_ref(key), None) {
            Err(e) => fail(
                &mut rep,
                format!("an earlier checkpoint does not verify: {e}"),
            ),
            Ok(old) => match hashes(&c.proof) {
                Err(e) => fail(
                    &mut rep,
                    format!("consistency proof from {}: {e}", old.size),
                ),
                Ok(proof) => {
                    match verify_consistency(old.size, cp.size, &old.root, &cp.root, &proof) {
                        Ok(()) => rep.consistency_proofs += 1,
                        Err(e) => fail(
                            &mut rep,
                            format!(
                                "the log at size {} is not a prefix of the log at {}: {e}",
                                old.size, cp.size
                            ),
                        ),
                    }
                }
            },
        }
    }

    // Every gate decision recomputed from its recorded input and policy.
    for r in src
        .records()
        .values()
        .filter(|r| r.record.kind.as_str() == kinds::GATE_DECIDED)
    {
        let i = r.record.index.0;
        let Some(p) = payload(&src, r) else {
            fail(&mut rep, format!("gate decision {i}: payload missing"));
            continue;
        };
        match recompute(&src, &p) {
            Ok(true) => rep.gate_decisions_recomputed += 1,
            Ok(false) => fail(
                &mut rep,
                format!(
                    "gate decision {i}: recomputing it from its input and policy gives a different decision"
                ),
            ),
            Err(e) => fail(&mut rep, format!("gate decision {i}: {e}")),
        }
    }

    // Certifications: a DSSE envelope signed by the log's key, recorded in the log.
    for r in src
        .records()
        .values()
        .filter(|r| r.record.kind.as_str() == kinds::RELEASE_CERTIFIED)
    {
        match payload(&src, r).map(|p| {
            crate::cert::verify_envelope(p.get("envelope").unwrap_or(&Value::Null), key, &d.release)
        }) {
            Some(Ok(_)) => rep.certifications += 1,
            Some(Err(e)) => fail(&mut rep, format!("certification {}: {e}", r.record.index.0)),
            None => fail(
                &mut rep,
                format!("certification {}: payload missing", r.record.index.0),
            ),
        }
    }

    // The view, rebuilt from the records alone.
    match rebuild_view(&src, &d) {
        Ok(v) if v == d.view => {}
        Ok(_) => fail(
            &mut rep,
            "the view (questions, matrix, controls, gaps) does not match what the records say"
                .into(),
        ),
        Err(e) => fail(
            &mut rep,
            format!("the view cannot be rebuilt from the records: {e}"),
        ),
    }
    Ok(rep)
}

/// One record entry, checked: what failed, and the record when it is in the log and decodes.
#[derive(Debug, Default)]
struct Checked {
    failures: Vec<String>,
    record: Option<StoredRecord>,
}

/// Below this many entries a second thread costs more than it saves.
const PARALLEL_FROM: usize = 512;

/// [`check_entry`] for every entry, in order; on several threads when there are many.
fn check_entries(entries: &[RecordEntry], size: u64, root: &Hash) -> Vec<Checked> {
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(entries.len() / PARALLEL_FROM)
        .max(1);
    if threads == 1 {
        return entries.iter().map(|e| check_entry(e, size, root)).collect();
    }
    let chunk = entries.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = entries
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|e| check_entry(e, size, root))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| match w.join() {
                Ok(done) => done,
                // A panic is a bug, never an answer: re-raise it on the caller's thread.
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    })
}

/// The leaf is base64, hashes into the tree of `size` leaves with `root` along its proof, and
/// decodes strictly to a record with the entry's index.
fn check_entry(e: &RecordEntry, size: u64, root: &Hash) -> Checked {
    let mut out = Checked::default();
    let leaf = match B64.decode(&e.leaf) {
        Ok(l) => l,
        Err(err) => {
            out.failures
                .push(format!("record {}: leaf is not base64: {err}", e.index));
            return out;
        }
    };
    let h = leaf_hash(&leaf);
    match hashes(&e.proof) {
        Err(err) => out
            .failures
            .push(format!("record {}: proof hash {err}", e.index)),
        Ok(proof) => {
            if let Err(err) = verify_inclusion(e.index, size, &h, &proof, root) {
                out.failures.push(format!(
                    "record {}: not in the log at checkpoint size {size}: {err}",
                    e.index
                ));
                return out;
            }
        }
    }
    match decode_leaf(&leaf) {
        Err(err) => out
            .failures
            .push(format!("record {}: leaf does not decode: {err}", e.index)),
        Ok(record) if record.index.0 != e.index => out.failures.push(format!(
            "record {}: its leaf says index {}",
            e.index, record.index.0
        )),
        Ok(record) => {
            out.record = Some(StoredRecord {
                record,
                leaf,
                leaf_hash: h,
            })
        }
    }
    out
}

fn payload(src: &MemSource, r: &StoredRecord) -> Option<Value> {
    match &r.record.payload {
        Payload::Inline(v) => Some(v.clone()),
        Payload::Blob { digest, .. } => src
            .blobs()
            .get(digest)
            .and_then(|b| serde_json::from_slice(b).ok()),
    }
}

fn recompute(src: &MemSource, p: &Value) -> Result<bool, String> {
    let recorded: Decision = serde_json::from_value(p.get("decision").cloned().unwrap_or_default())
        .map_err(|e| format!("decision: {e}"))?;
    let digest: Digest = p
        .get("input_digest")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .ok_or("no input digest")?;
    let bytes = src
        .blobs()
        .get(&digest)
        .ok_or_else(|| format!("its input document {digest} is missing"))?;
    let input: GateInput =
        serde_json::from_slice(bytes).map_err(|e| format!("input document: {e}"))?;
    let pr = p
        .get("policy_record")
        .and_then(Value::as_u64)
        .ok_or("no policy record")?;
    let prec = src
        .records()
        .get(&pr)
        .ok_or_else(|| format!("its policy version (record {pr}) is missing"))?;
    if prec.record.kind.as_str() != kinds::POLICY_VERSION {
        return Err(format!("record {pr} is not a policy version"));
    }
    let pjson = payload(src, prec)
        .and_then(|v| v.get("policy").cloned())
        .ok_or("policy payload missing")?;
    let policy = Policy::from_json(&pjson).map_err(|e| e.to_string())?;
    let pd = trailmark_policy::policy::digest(&pjson).to_string();
    if Some(pd.as_str()) != p.get("policy_digest").and_then(Value::as_str) {
        return Err(format!(
            "policy record {pr} does not have the digest the decision cites"
        ));
    }
    Ok(trailmark_policy::evaluate(&policy, &input) == recorded)
}

fn rebuild_view(src: &MemSource, d: &Dossier) -> Result<crate::view::View, String> {
    let people = IdentityMap::from_json(&d.people.to_string()).map_err(|e| e.to_string())?;
    let prec = src
        .records()
        .get(&d.policy_record)
        .ok_or_else(|| format!("policy record {} is missing", d.policy_record))?;
    let pjson = payload(src, prec)
        .and_then(|v| v.get("policy").cloned())
        .ok_or("policy payload missing")?;
    let policy = Policy::from_json(&pjson).map_err(|e| e.to_string())?;
    let as_of = Timestamp::parse_rfc3339(&d.as_of).ok_or("as_of is not RFC 3339")?;
    crate::bundle::view_of(src, &people, &d.release, as_of, &policy).map_err(|e| e.to_string())
}
