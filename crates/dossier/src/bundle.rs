//! The dossier file (JSON): every record with its exact leaf bytes and an inclusion proof to
//! one signed checkpoint, consistency proofs from the checkpoints the release's gate decisions
//! were made under, the blobs gate decisions and records cite, the derived view, and a manifest
//! whose digest is itself recorded in the log (`dossier.exported`), so removing or adding a
//! record is detected.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use trailmark_ingest::identity::IdentityMap;
use trailmark_model::{Digest, LogIndex, NewRecord, Timestamp, canonical_bytes};
use trailmark_policy::collect::Reader;
use trailmark_policy::{Governance, Policy, kinds};
use trailmark_store::{Store, StoredRecord};

use crate::error::DossierError;
use crate::view::{View, ViewVersion};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dossier {
    /// The format, which names the view computation ([`ViewVersion::format`]).
    pub format: String,
    pub release: String,
    /// The instant the view describes.
    pub as_of: String,
    /// The policy version (record) the view was evaluated under.
    pub policy_record: u64,
    /// The signed checkpoint every inclusion proof leads to (C2SP signed note).
    pub checkpoint: String,
    pub records: Vec<RecordEntry>,
    /// From format v3: every hash of the records' inclusion proofs, each once (base64), in the
    /// order the records first use them; a record's `proof_refs` are positions in this list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof_hashes: Option<Vec<String>>,
    /// Consistency from earlier checkpoints (those of the gate decisions) to `checkpoint`.
    pub consistency: Vec<ConsistencyEntry>,
    /// Blobs by digest (`sha256:…` → base64): gate inputs, large payloads, raw inputs on request.
    pub blobs: BTreeMap<String, String>,
    pub view: View,
    /// The identity map the view resolved people with (see `trailmark identity`).
    pub people: Value,
    /// The `identity.map` record holding [`Dossier::people`]: the recorded version in force
    /// (who set it, when), carried among the records. Absent when the map is not a recorded
    /// version (a log that never had one: then `people` is empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub people_record: Option<u64>,
    /// The `dossier.exported` record whose payload holds this manifest's digest.
    pub export_record: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordEntry {
    pub index: u64,
    /// The exact leaf bytes (RFC 8785 JSON), base64.
    pub leaf: String,
    /// Up to format v2: the audit path to `checkpoint`, base64 hashes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<Vec<String>>,
    /// From format v3: the audit path to `checkpoint`, as positions in
    /// [`Dossier::proof_hashes`], leaf to root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof_refs: Option<Vec<u32>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyEntry {
    /// The earlier signed checkpoint.
    pub checkpoint: String,
    pub proof: Vec<String>,
}

/// What the export record commits to: the dossier minus its proofs; `leaf_hashes` are those of
/// every record but the export record itself.
pub fn manifest(d: &Dossier, leaf_hashes: &BTreeMap<u64, String>) -> Value {
    let mut m = json!({
        "format": d.format,
        "release": d.release,
        "as_of": d.as_of,
        "policy_record": d.policy_record,
        "records": leaf_hashes.iter().map(|(i, h)| json!([i, h])).collect::<Vec<_>>(),
        "blobs": d.blobs.keys().collect::<Vec<_>>(),
        "people_digest": Digest::of(&canonical_bytes(&d.people)).to_string(),
        "people_record": d.people_record,
        "view_digest": Digest::of(&canonical_bytes(&serde_json::to_value(&d.view).unwrap_or_default())).to_string(),
    });
    // Absent rather than null when there is none, so a dossier without one has the manifest it
    // had before the field existed.
    if d.people_record.is_none()
        && let Some(o) = m.as_object_mut()
    {
        o.remove("people_record");
    }
    m
}

/// SHA-256 of [`manifest`]'s canonical (RFC 8785) bytes — what the export record holds —
/// written directly rather than through a JSON value: a 10,000-record dossier's manifest is
/// 10,000 small arrays. `leaf_hashes` as in [`manifest`], in index order; the tests hold the two
/// byte-identical.
pub fn manifest_digest<'h>(
    d: &Dossier,
    leaf_hashes: impl IntoIterator<Item = (u64, &'h trailmark_log::Hash)>,
) -> Digest {
    manifest_digest_of(d, view_digest(&d.view), leaf_hashes)
}

/// The `view_digest` of [`manifest`]: SHA-256 of the view's canonical bytes. The most costly
/// part of a manifest digest (a 10,000-record release's matrix), so [`manifest_digest_of`]
/// takes it computed apart, e.g. beside other work.
pub fn view_digest(view: &crate::view::View) -> Digest {
    Digest::of(&trailmark_model::canonical_json(view))
}

/// [`manifest_digest`] with the view's digest ([`view_digest`] of `d.view`) given; `d.view`
/// is not read.
pub fn manifest_digest_of<'h>(
    d: &Dossier,
    view_digest: Digest,
    leaf_hashes: impl IntoIterator<Item = (u64, &'h trailmark_log::Hash)>,
) -> Digest {
    use trailmark_model::write_canonical_string as string;
    let mut out = Vec::with_capacity(4096);
    // Keys in JCS order (all ASCII: byte order).
    out.extend_from_slice(b"{\"as_of\":");
    string(&d.as_of, &mut out);
    out.extend_from_slice(b",\"blobs\":[");
    for (n, k) in d.blobs.keys().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        string(k, &mut out);
    }
    out.extend_from_slice(b"],\"format\":");
    string(&d.format, &mut out);
    out.extend_from_slice(b",\"people_digest\":");
    string(
        &Digest::of(&canonical_bytes(&d.people)).to_string(),
        &mut out,
    );
    if let Some(i) = d.people_record {
        out.extend_from_slice(b",\"people_record\":");
        out.extend_from_slice(i.to_string().as_bytes());
    }
    out.extend_from_slice(b",\"policy_record\":");
    out.extend_from_slice(d.policy_record.to_string().as_bytes());
    out.extend_from_slice(b",\"records\":[");
    let mut b64 = [0u8; 44];
    for (n, (i, h)) in leaf_hashes.into_iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.push(b'[');
        out.extend_from_slice(i.to_string().as_bytes());
        out.extend_from_slice(b",\"");
        // Base64 of 32 bytes is 44 characters, none of which JSON escapes.
        let len = B64.encode_slice(h.as_bytes(), &mut b64).unwrap_or(0);
        out.extend_from_slice(&b64[..len]);
        out.extend_from_slice(b"\"]");
    }
    out.extend_from_slice(b"],\"release\":");
    string(&d.release, &mut out);
    out.extend_from_slice(b",\"view_digest\":");
    string(&view_digest.to_string(), &mut out);
    out.push(b'}');
    Digest::of(&out)
}

/// Options for [`build`].
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    /// Include the raw inputs (webhook bodies, reports) records were derived from.
    pub raw_inputs: bool,
    /// Who is exporting (recorded on the export record).
    pub actor: String,
    /// The format to export (normally [`ViewVersion::LATEST`]; an earlier one for a verifier
    /// that reads only that).
    pub version: ViewVersion,
}

/// Builds the dossier of `release`, appending its `dossier.exported` record.
pub fn build(
    store: &dyn Store,
    people: &IdentityMap,
    policy_name: &str,
    release: &str,
    opts: &BuildOptions,
) -> Result<Dossier, DossierError> {
    let mut gov = Governance::new(store, people);
    gov.policy_name = policy_name.to_owned();
    let policy = gov.active_policy()?;
    let as_of = Timestamp::now();
    // Discover what the view reads, over the store.
    let discovered =
        crate::compute::view(store, people, release, as_of, &policy.policy, opts.version)?;
    // The records the discovery read, kept to be exported without reading them again.
    let mut read = discovered.records;
    let mut indices: std::collections::BTreeSet<u64> = read.keys().copied().collect();
    let mut fetch = |i: u64| -> Result<Arc<StoredRecord>, DossierError> {
        if let Some(r) = read.get(&i) {
            return Ok(r.clone());
        }
        let r = Arc::new(
            store
                .record(LogIndex(i))?
                .ok_or_else(|| DossierError::Missing(format!("record {i}")))?,
        );
        read.insert(i, r.clone());
        Ok(r)
    };
    let mut blob_digests: std::collections::BTreeSet<Digest> =
        discovered.blobs.iter().copied().collect();
    indices.insert(policy.record);
    // The recorded version of the identity map the view resolved people with, so an auditor
    // sees who set the map that decided who counts as whom.
    let people_record = trailmark_policy::people::in_force(store, people)?;
    indices.extend(people_record);
    // Every gate decision's input document and policy version, so each can be recomputed.
    let r: Reader<'_> = Reader::new(store, people);
    let mut gate_sizes = Vec::new();
    for g in &discovered.view.gate_decisions {
        let rec = fetch(g.record)?;
        let p = r.payload(&rec.record)?;
        if let Some(d) = p
            .get("input_digest")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<Digest>().ok())
        {
            blob_digests.insert(d);
        }
        if let Some(pr) = p.get("policy_record").and_then(Value::as_u64) {
            indices.insert(pr);
        }
        gate_sizes.push(g.record + 1);
    }
    let mut entries_leaf: Leaves = BTreeMap::new();
    let mut mem = crate::mem::MemSource::default();
    for i in &indices {
        let rec = fetch(*i)?;
        add_record(&rec, opts.raw_inputs, &mut blob_digests, &mut entries_leaf);
        mem.insert(rec);
    }
    for d in &blob_digests {
        let bytes = store
            .blob(d)?
            .ok_or_else(|| DossierError::Missing(format!("blob {d}")))?;
        mem.insert_blob(*d, bytes);
    }
    // The view must be what a verifier computes from exactly what the dossier carries. When
    // nothing read was recorded after `as_of`, the discovery run read exactly those records,
    // so its view is that view; otherwise compute it again from the dossier's records.
    let view = if mem
        .records()
        .values()
        .all(|r| r.record.recorded_at <= as_of)
    {
        discovered.view
    } else {
        view_of(&mem, people, release, as_of, &policy.policy, opts.version)?
    };
    let blobs = mem
        .blobs()
        .iter()
        .map(|(d, b)| (d.to_string(), B64.encode(b)))
        .collect();
    let mut dossier = Dossier {
        format: opts.version.format().into(),
        release: release.to_owned(),
        as_of: as_of.to_string(),
        policy_record: policy.record,
        checkpoint: String::new(),
        records: Vec::new(),
        proof_hashes: None,
        consistency: Vec::new(),
        blobs,
        view,
        people: people.to_json(),
        people_record,
        export_record: 0,
    };
    let manifest_digest = manifest_digest(&dossier, entries_leaf.iter().map(|(i, (_, h))| (*i, h)));
    let project = dossier.view.release.project.clone();
    let export: NewRecord = trailmark_model::input::from_value(&json!({
        "kind": kinds::DOSSIER_EXPORTED,
        "subjects": [{"type": "release", "id": release}, {"type": "project", "id": project}],
        "actor": opts.actor,
        "payload": {"manifest_digest": manifest_digest.to_string(), "records": entries_leaf.len(), "as_of": dossier.as_of, "raw_inputs": opts.raw_inputs},
    }))
    .map_err(|e| DossierError::Refused(format!("export record: {e}")))?;
    let appended = store.append(vec![export])?;
    let export_index = appended
        .first()
        .map(|a| a.index.0)
        .ok_or_else(|| DossierError::Missing("export record".into()))?;
    dossier.export_record = export_index;
    let export = store
        .record(LogIndex(export_index))?
        .ok_or_else(|| DossierError::Missing(format!("record {export_index}")))?;
    add_record(&export, false, &mut blob_digests, &mut entries_leaf);
    let cp = store
        .latest_checkpoint()?
        .ok_or_else(|| DossierError::Missing("a signed checkpoint".into()))?;
    dossier.checkpoint = cp.note.clone();
    let indices: Vec<LogIndex> = entries_leaf.keys().map(|i| LogIndex(*i)).collect();
    let proofs = store.inclusion_proofs(&indices, cp.size)?;
    let mut table = ProofTable::default();
    for ((i, (leaf, _)), proof) in entries_leaf.iter().zip(proofs) {
        let (proof, proof_refs) = if opts.version.shares_proof_hashes() {
            (None, Some(table.refs(&proof)?))
        } else {
            (Some(proof.iter().map(|h| h.to_base64()).collect()), None)
        };
        dossier.records.push(RecordEntry {
            index: *i,
            leaf: B64.encode(leaf),
            proof,
            proof_refs,
        });
    }
    if opts.version.shares_proof_hashes() {
        dossier.proof_hashes = Some(table.hashes);
    }
    gate_sizes.sort_unstable();
    gate_sizes.dedup();
    for size in gate_sizes {
        // A gate decision committed alone ends its batch, so a checkpoint at its size exists;
        // when group commit merged it, the next checkpoint is as good.
        if let Some(old) = store.checkpoint(size)? {
            let proof = store.consistency_proof(old.size, cp.size)?;
            dossier.consistency.push(ConsistencyEntry {
                checkpoint: old.note,
                proof: proof.iter().map(|h| h.to_base64()).collect(),
            });
        }
    }
    Ok(dossier)
}

type Leaves = BTreeMap<u64, (Vec<u8>, trailmark_log::Hash)>;

/// A v3 file's table of proof hashes, built as the records' audit paths are added.
#[derive(Default)]
struct ProofTable {
    hashes: Vec<String>,
    at: std::collections::HashMap<trailmark_log::Hash, u32>,
}

impl ProofTable {
    /// The audit path as positions in the table, adding the hashes it has not seen.
    fn refs(&mut self, proof: &[trailmark_log::Hash]) -> Result<Vec<u32>, DossierError> {
        proof
            .iter()
            .map(|h| match self.at.get(h) {
                Some(k) => Ok(*k),
                None => {
                    let k = u32::try_from(self.hashes.len()).map_err(|_| {
                        DossierError::Refused("more than 2^32 distinct proof hashes".into())
                    })?;
                    self.hashes.push(h.to_base64());
                    self.at.insert(*h, k);
                    Ok(k)
                }
            })
            .collect()
    }
}

/// Adds a record's leaf (and the blobs it cites) to what the dossier carries.
fn add_record(
    rec: &StoredRecord,
    raw_inputs: bool,
    blobs: &mut std::collections::BTreeSet<Digest>,
    leaves: &mut Leaves,
) {
    if raw_inputs {
        for l in rec
            .record
            .links
            .iter()
            .filter(|l| l.to.ty.as_str() == "input")
        {
            if let Ok(d) = l.to.id.as_str().parse::<Digest>() {
                blobs.insert(d);
            }
        }
    }
    if let trailmark_model::Payload::Blob { digest, .. } = &rec.record.payload {
        blobs.insert(*digest);
    }
    leaves.insert(rec.record.index.0, (rec.leaf.clone(), rec.leaf_hash));
}

/// The view over a dossier's records: only those recorded by `as_of` count (the export record
/// and anything appended while exporting come after).
pub fn view_of(
    mem: &crate::mem::MemSource,
    people: &IdentityMap,
    release: &str,
    as_of: Timestamp,
    policy: &Policy,
    version: ViewVersion,
) -> Result<View, DossierError> {
    let visible = mem.until(as_of);
    Ok(crate::compute::view(&visible, people, release, as_of, policy, version)?.view)
}

/// The policy a dossier's view was evaluated under, from its own records.
pub fn policy_of(payload: &Value) -> Result<Policy, DossierError> {
    let json = payload.get("policy").cloned().unwrap_or_default();
    Ok(Policy::from_json(&json)?)
}

impl Dossier {
    /// Where the dossier's evidence comes from, for the HTML and OSCAL renderings.
    pub fn meta(&self) -> crate::view::ExportMeta {
        let mut lines = self.checkpoint.lines();
        let origin = lines.next().unwrap_or_default().to_owned();
        let checkpoint_size = lines.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        let checkpoint_root = lines.next().unwrap_or_default().to_owned();
        let records = || {
            self.records.iter().rev().filter_map(|r| {
                B64.decode(&r.leaf)
                    .ok()
                    .and_then(|l| trailmark_model::decode_leaf(&l).ok())
            })
        };
        let certification_record = records()
            .find(|r| r.kind.as_str() == kinds::RELEASE_CERTIFIED)
            .map(|r| r.index.0);
        let identity_map = self.people_record.and_then(|i| {
            records()
                .find(|r| r.index.0 == i && r.kind.as_str() == kinds::IDENTITY_MAP)
                .map(|r| {
                    format!(
                        "record {i}, set by {} at {}",
                        r.actor.as_deref().unwrap_or("(no actor)"),
                        r.recorded_at
                    )
                })
        });
        crate::view::ExportMeta {
            origin,
            checkpoint_size,
            checkpoint_root,
            records: self.records.len() as u64,
            generated_at: self.as_of.clone(),
            certification_record,
            identity_map,
        }
    }
}
