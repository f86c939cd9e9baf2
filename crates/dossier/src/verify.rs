//! Offline verification of a dossier: no server, database or network. Trusts only the
//! verifier key given; size and root come only from the verified checkpoint. Reports every
//! failure precisely rather than stopping at the first.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use trailmark_ingest::identity::IdentityMap;
use trailmark_log::{
    Hash, NodeCache, VerifierKey, leaf_hash, verify_checkpoint, verify_consistency,
};
use trailmark_model::{Digest, Payload, Timestamp, decode_leaf};
use trailmark_policy::input::GateInput;
use trailmark_policy::{Decision, Policy, kinds};
use trailmark_store::StoredRecord;

use crate::bundle::{ConsistencyEntry, Dossier, manifest_digest_of, view_digest};
use crate::mem::MemSource;
use crate::view::ViewVersion;

/// The dossier could not be read at all (exit 2), as opposed to read and found wrong.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unreadable(pub String);

#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub release: String,
    /// The file's format, which names the view computation the view was checked with.
    pub format: String,
    pub checkpoint_size: u64,
    pub records: usize,
    pub blobs: usize,
    pub consistency_proofs: usize,
    pub gate_decisions_recomputed: usize,
    pub certifications: usize,
    /// The identity map version (record) people were resolved with, checked against the map
    /// the dossier carries; `None` when the dossier names none.
    pub identity_map_record: Option<u64>,
    /// Every check that failed, each naming what and why. Empty means verified.
    pub failures: Vec<String>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }

    /// One line saying what a successful verification covered (for a terminal or a log).
    pub fn summary(&self) -> String {
        format!(
            "verified ({}): {} records proven into checkpoint {}, {} gate decisions recomputed, {} certifications, {} consistency proofs, {}",
            self.format,
            self.records,
            self.checkpoint_size,
            self.gate_decisions_recomputed,
            self.certifications,
            self.consistency_proofs,
            self.identity_map_record.map_or_else(
                || "no recorded identity map".to_owned(),
                |i| format!("identity map version at record {i}")
            )
        )
    }
}

fn hashes<S: AsRef<str>>(list: &[S]) -> Result<Vec<Hash>, String> {
    list.iter()
        .map(|h| {
            let h = h.as_ref();
            Hash::from_base64(h).map_err(|e| format!("{h:?}: {e}"))
        })
        .collect()
}

/// The dossier as [`verify`] reads it: the same fields as [`Dossier`] (and as strict: unknown,
/// repeated and missing fields are refused as serde's derive refuses them), but the record
/// entries' base64 text is borrowed from the file rather than copied into 150,000 small
/// strings, and the entries are decoded while the rest of the file is still being parsed (see
/// [`parse_and_decode`]). A field added to [`Dossier`] must be added here; the
/// build-then-verify tests fail until it is.
struct DossierIn<'a> {
    format: String,
    release: String,
    as_of: String,
    policy_record: u64,
    checkpoint: String,
    // `records` is not kept here: its entries come back with their decoded runs.
    /// From format v3 (see [`Dossier::proof_hashes`]).
    proof_hashes: Option<Vec<Text<'a>>>,
    consistency: Vec<ConsistencyEntry>,
    blobs: BTreeMap<String, Text<'a>>,
    /// Parsed beside the entries' decoding, not in the one-thread parse of the file.
    view: &'a RawValue,
    people: Value,
    people_record: Option<u64>,
    export_record: u64,
}

/// The top-level fields of a dossier, in [`Dossier`]'s order.
const FIELDS: &[&str] = &[
    "format",
    "release",
    "as_of",
    "policy_record",
    "checkpoint",
    "records",
    "proof_hashes",
    "consistency",
    "blobs",
    "view",
    "people",
    "people_record",
    "export_record",
];

/// Where the decoding of the record entries goes while the file is parsed: runs of entries are
/// handed to rayon's pool as soon as they are read, and come back here with their [`Part`].
type Decoding<'a> = std::sync::Mutex<Vec<(usize, Vec<EntryIn<'a>>, Part)>>;

/// Parses the file and decodes its record entries at once: the parse is one thread's work, and
/// the entries (most of the file) are decoded on the other cores run by run as the parser
/// passes them, instead of after the whole file is read. Returns the fields with the entries in
/// file order, and the entries' parts in file order.
fn parse_and_decode<'s, 'a: 's>(
    text: &'a str,
    scope: &rayon::Scope<'s>,
    decoding: &'s Decoding<'a>,
) -> Result<DossierIn<'a>, serde_json::Error> {
    use serde::de::DeserializeSeed as _;
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = FileSeed { scope, decoding }.deserialize(&mut de)?;
    // As `serde_json::from_str`: nothing but whitespace may follow the value.
    de.end()?;
    Ok(parsed)
}

struct FileSeed<'r, 's, 'a> {
    scope: &'r rayon::Scope<'s>,
    decoding: &'s Decoding<'a>,
}

impl<'de: 's, 'r, 's> serde::de::DeserializeSeed<'de> for FileSeed<'r, 's, 'de> {
    type Value = DossierIn<'de>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_struct("Dossier", FIELDS, self)
    }
}

impl<'de: 's, 'r, 's> serde::de::Visitor<'de> for FileSeed<'r, 's, 'de> {
    type Value = DossierIn<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("struct Dossier")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        use serde::de::Error as _;
        let (mut format, mut release, mut as_of, mut policy_record, mut checkpoint) =
            (None, None, None, None, None);
        let (mut records, mut consistency, mut blobs, mut view, mut people) =
            (None, None, None, None, None);
        let (mut people_record, mut export_record) = (None::<Option<u64>>, None);
        let mut proof_hashes = None::<Option<Vec<Text<'de>>>>;
        macro_rules! once {
            ($slot:ident, $name:literal, $value:expr) => {{
                if $slot.is_some() {
                    return Err(A::Error::duplicate_field($name));
                }
                $slot = Some($value);
            }};
        }
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match key.as_ref() {
                "format" => once!(format, "format", map.next_value::<String>()?),
                "release" => once!(release, "release", map.next_value::<String>()?),
                "as_of" => once!(as_of, "as_of", map.next_value::<String>()?),
                "policy_record" => {
                    once!(policy_record, "policy_record", map.next_value::<u64>()?)
                }
                "checkpoint" => once!(checkpoint, "checkpoint", map.next_value::<String>()?),
                "records" => {
                    if records.is_some() {
                        return Err(A::Error::duplicate_field("records"));
                    }
                    // Decoded records of a first `records` would be mixed with a second's.
                    records = Some(map.next_value_seed(EntriesSeed {
                        scope: self.scope,
                        decoding: self.decoding,
                    })?);
                }
                "proof_hashes" => once!(
                    proof_hashes,
                    "proof_hashes",
                    map.next_value::<Option<Vec<Text<'de>>>>()?
                ),
                "consistency" => once!(
                    consistency,
                    "consistency",
                    map.next_value::<Vec<ConsistencyEntry>>()?
                ),
                "blobs" => once!(
                    blobs,
                    "blobs",
                    map.next_value::<BTreeMap<String, Text<'de>>>()?
                ),
                "view" => once!(view, "view", map.next_value::<&'de RawValue>()?),
                "people" => once!(people, "people", map.next_value::<Value>()?),
                "people_record" => once!(
                    people_record,
                    "people_record",
                    map.next_value::<Option<u64>>()?
                ),
                "export_record" => {
                    once!(export_record, "export_record", map.next_value::<u64>()?)
                }
                other => return Err(A::Error::unknown_field(other, FIELDS)),
            }
        }
        let missing = A::Error::missing_field;
        records.ok_or_else(|| missing("records"))?;
        Ok(DossierIn {
            format: format.ok_or_else(|| missing("format"))?,
            release: release.ok_or_else(|| missing("release"))?,
            as_of: as_of.ok_or_else(|| missing("as_of"))?,
            policy_record: policy_record.ok_or_else(|| missing("policy_record"))?,
            checkpoint: checkpoint.ok_or_else(|| missing("checkpoint"))?,
            proof_hashes: proof_hashes.flatten(),
            consistency: consistency.ok_or_else(|| missing("consistency"))?,
            blobs: blobs.ok_or_else(|| missing("blobs"))?,
            view: view.ok_or_else(|| missing("view"))?,
            people: people.ok_or_else(|| missing("people"))?,
            people_record: people_record.flatten(),
            export_record: export_record.ok_or_else(|| missing("export_record"))?,
        })
    }
}

/// The `records` array, read entry by entry; each full run goes to the pool to be decoded.
struct EntriesSeed<'r, 's, 'a> {
    scope: &'r rayon::Scope<'s>,
    decoding: &'s Decoding<'a>,
}

impl<'de: 's, 'r, 's> serde::de::DeserializeSeed<'de> for EntriesSeed<'r, 's, 'de> {
    /// How many entries were read.
    type Value = usize;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de: 's, 'r, 's> serde::de::Visitor<'de> for EntriesSeed<'r, 's, 'de> {
    type Value = usize;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a sequence of record entries")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
        let (mut run, mut runs, mut count) = (Vec::with_capacity(PART_MIN), 0usize, 0usize);
        let decoding = self.decoding;
        let hand_over = |run: Vec<EntryIn<'de>>, n: usize| {
            self.scope.spawn(move |_| {
                let part = decode_run(n * PART_MIN, &run, &BTreeSet::new());
                if let Ok(mut d) = decoding.lock() {
                    d.push((n, run, part));
                }
            });
        };
        while let Some(e) = seq.next_element::<EntryIn<'de>>()? {
            run.push(e);
            count += 1;
            if run.len() == PART_MIN {
                hand_over(
                    std::mem::replace(&mut run, Vec::with_capacity(PART_MIN)),
                    runs,
                );
                runs += 1;
            }
        }
        if !run.is_empty() {
            hand_over(run, runs);
        }
        Ok(count)
    }
}

/// [`crate::bundle::RecordEntry`], borrowed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryIn<'a> {
    index: u64,
    #[serde(borrow)]
    leaf: Text<'a>,
    /// Up to format v2.
    #[serde(borrow, default)]
    proof: Option<Vec<Text<'a>>>,
    /// From format v3: kept as the file's text, parsed where the proofs are checked (beside
    /// the view rebuild), not by the one thread that parses the file.
    #[serde(borrow, default)]
    proof_refs: Option<&'a RawValue>,
}

/// A JSON string borrowed from the input when it has no escapes (base64 never needs one), and
/// copied when a writer escaped something anyway (`\/` is legal JSON for `/`).
struct Text<'a>(Cow<'a, str>);

impl AsRef<str> for Text<'_> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// Verifies a dossier file's bytes against the log's verifier key.
pub fn verify(bytes: &[u8], key: &VerifierKey) -> Result<Report, Unreadable> {
    // UTF-8 is checked once for the whole file, so that the parser, reading a `str`, does not
    // check it again string by string (10 MB of base64 at 10,000 records).
    let text = std::str::from_utf8(bytes)
        .map_err(|e| Unreadable(format!("not a Trailmark dossier: not UTF-8 text: {e}")))?;
    let decoding = Decoding::default();
    // The blobs' checks are done on this thread once the parser is past them (the end of the
    // file), while the pool is still decoding the last runs of entries.
    let (parsed, decoded_blobs) = rayon::scope(|s| {
        let parsed = parse_and_decode(text, s, &decoding)
            .map_err(|e| Unreadable(format!("not a Trailmark dossier: {e}")))?;
        let blobs = decode_blobs(&parsed.blobs);
        Ok::<_, Unreadable>((parsed, blobs))
    })?;
    // Every run the parser handed over is decoded (the scope waited for them): in file order.
    let mut runs = decoding.into_inner().unwrap_or_default();
    runs.sort_unstable_by_key(|(n, _, _)| *n);
    let mut records = Vec::with_capacity(runs.len() * PART_MIN);
    let mut parts = Vec::with_capacity(runs.len());
    for (_, run, part) in runs {
        records.extend(run);
        parts.push(part);
    }
    let DossierIn {
        format,
        release,
        as_of,
        policy_record,
        checkpoint,
        proof_hashes,
        consistency,
        blobs,
        view: view_text,
        people,
        people_record,
        export_record,
    } = parsed;
    let mut rep = Report {
        release: release.clone(),
        format: format.clone(),
        ..Report::default()
    };
    let fail = |rep: &mut Report, m: String| rep.failures.push(m);
    // The view is data of the file like any other: a view that does not parse makes the file
    // unreadable, whatever else is wrong with it. It is parsed beside the view rebuild, which
    // does not read it, rather than with the rest of the file (see below).
    let parse_view = || {
        serde_json::from_str::<crate::view::View>(view_text.get())
            .map_err(|e| Unreadable(format!("not a Trailmark dossier: view: {e}")))
    };
    // The view is recomputed as the file's format says it was computed; a format this build
    // does not know is named, and its view compared with the latest computation's.
    let version = ViewVersion::of_format(&format).unwrap_or_else(|| {
        let known: Vec<&str> = ViewVersion::ALL.iter().map(|v| v.format()).collect();
        fail(
            &mut rep,
            format!(
                "format {format:?} is not one this verifier reads ({})",
                known.join(", ")
            ),
        );
        ViewVersion::LATEST
    });
    // How the file's inclusion proofs are written is fixed by its format; a file of a format
    // this build does not know is read the way its fields say.
    let shared = ViewVersion::of_format(&format)
        .map_or(proof_hashes.is_some(), ViewVersion::shares_proof_hashes);
    match (&proof_hashes, shared) {
        (None, true) => {
            return Err(Unreadable(format!(
                "not a Trailmark dossier: missing field `proof_hashes` (format {format} keeps the records' proof hashes there)"
            )));
        }
        (Some(_), false) => {
            return Err(Unreadable(format!(
                "not a Trailmark dossier: `proof_hashes` is not a field of format {format}"
            )));
        }
        _ => {}
    }
    let cp = match verify_checkpoint(&checkpoint, std::slice::from_ref(key), None) {
        Ok(cp) => cp,
        Err(e) => {
            fail(
                &mut rep,
                format!("the checkpoint does not verify with {}: {e}", key.name()),
            );
            parse_view()?;
            return Ok(rep);
        }
    };
    rep.checkpoint_size = cp.size;

    // Records: each leaf was decoded strictly during the parse; each is proven into the signed
    // tree below.
    let mut d = Dossier {
        format,
        release,
        as_of,
        policy_record,
        checkpoint,
        records: Vec::new(),
        proof_hashes: None,
        consistency,
        blobs: blobs.keys().map(|k| (k.clone(), String::new())).collect(),
        // Set once parsed (below); nothing before that reads it.
        view: crate::view::View::default(),
        people,
        people_record,
        export_record,
    };
    let mut m = Merged::of(parts, decoded_blobs);

    // The view rebuild, the longest single check, runs beside all the others: the inclusion
    // proofs, what the file commits to (manifest digest, consistency between checkpoints) and
    // what the records commit to (the export record, gate decisions, certifications). The
    // proofs run beside the rest rather than before it: a leaf that is not in the tree is
    // rare, and then everything after the proofs is done again without it. The file's view is
    // parsed on that side too: only the manifest's digest and the final comparison read it, and
    // the rebuild is the longer side (~3 ms of parsing at 10k records, taken off the parse).
    let after_proofs = |m: &Merged, view_digest: Digest| {
        let file = file_commitments(&d, view_digest, &m.leaf_hashes, &cp, key);
        let others = record_commitments(&d, &m.src, &file, key);
        (file, others)
    };
    let (mut rebuilt, (proven, viewed)) = rayon::join(
        || rebuild_view(&m.src, &d, version),
        || {
            rayon::join(
                || {
                    let table = proof_hashes.as_deref().map(proof_table);
                    prove_entries(&records, table.as_ref(), &m.hashed, cp.size, &cp.root)
                },
                || {
                    let view = parse_view()?;
                    let digest = view_digest(&view);
                    Ok::<_, Unreadable>((view, digest, after_proofs(&m, digest)))
                },
            )
        },
    );
    let (view, digest, (mut file, mut others)) = viewed?;
    if !proven.absent.is_empty() {
        // As if the entries whose leaf is not in the tree were not in the file.
        let absent: BTreeSet<usize> = proven.absent.iter().copied().collect();
        let old = std::mem::replace(
            &mut m,
            Merged::of(decode_entries(&records, &absent), decode_blobs(&blobs)),
        );
        rayon::spawn(move || drop(old));
        rebuilt = rebuild_view(&m.src, &d, version);
        (file, others) = after_proofs(&m, digest);
    }
    d.view = view;
    drop(records);

    let mut entry_failures = std::mem::take(&mut m.entry_failures);
    entry_failures.extend(proven.failures);
    entry_failures.sort_by_key(|(at, stage, _)| (*at, *stage));
    rep.failures
        .extend(entry_failures.into_iter().map(|(_, _, f)| f));
    rep.failures.append(&mut m.failures);
    rep.records = m.src.records().len();
    rep.blobs = m.src.blobs().len();
    rep.failures.extend(others.failures);
    rep.consistency_proofs = file.consistency_proofs;
    rep.gate_decisions_recomputed = others.gate_decisions_recomputed;
    rep.certifications = others.certifications;
    rep.identity_map_record = d.people_record;

    // The view, rebuilt from the records alone.
    match rebuilt {
        Ok(v) if v == d.view => {}
        Ok(v) => {
            let mut m = view_mismatch(&d.view, &v);
            if others.as_exported {
                m.push_str(&format!(
                    "; the file's view is the one the log committed to at export (record {}), so the exporter computed it differently from this verifier",
                    d.export_record
                ));
            }
            fail(&mut rep, m);
        }
        Err(e) => fail(
            &mut rep,
            format!("the view cannot be rebuilt from the records: {e}"),
        ),
    }
    // Freeing 10,000 records and their payloads is a tenth of the work above and decides
    // nothing: leave it to rayon's pool (the threads that checked the entries, idle now) so
    // the answer is not kept waiting for it, and no thread is started per call.
    rayon::spawn(move || drop((m, d)));
    Ok(rep)
}

/// Why the file's view is not the one rebuilt from its records, precisely: the first place
/// (a JSON pointer into the view) where they differ, and what each has there. An edited answer
/// and a gap worded differently by another exporter then read differently.
fn view_mismatch(file: &crate::view::View, rebuilt: &crate::view::View) -> String {
    let mut m = "the view (questions, matrix, controls, gaps) does not match what the records say"
        .to_owned();
    if let (Ok(f), Ok(r)) = (serde_json::to_value(file), serde_json::to_value(rebuilt))
        && let Some((at, f, r)) = first_difference(&f, &r, String::new())
    {
        m.push_str(&format!(
            ": at {at} the file has {f} where the records give {r}"
        ));
    }
    m
}

/// The first place where two JSON values differ (object members in key order, as the canonical
/// form sorts them; array items in order): its JSON pointer and both sides, shortened
/// (`nothing` where one side has no such place).
fn first_difference(a: &Value, b: &Value, at: String) -> Option<(String, String, String)> {
    fn shown(v: Option<&Value>) -> String {
        const MAX: usize = 120;
        let Some(v) = v else {
            return "nothing".into();
        };
        let text = v.to_string();
        match text.char_indices().nth(MAX) {
            Some((cut, _)) => format!("{}…", &text[..cut]),
            None => text,
        }
    }
    let key = |k: &str| format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                (Some(va), Some(vb)) => first_difference(va, vb, key(k)),
                (va, vb) => Some((key(k), shown(va), shown(vb))),
            })
        }
        (Value::Array(x), Value::Array(y)) => {
            (0..x.len().max(y.len())).find_map(|i| match (x.get(i), y.get(i)) {
                (Some(va), Some(vb)) => first_difference(va, vb, format!("{at}/{i}")),
                (va, vb) => Some((format!("{at}/{i}"), shown(va), shown(vb))),
            })
        }
        _ if a == b => None,
        _ => Some((
            if at.is_empty() { "/".into() } else { at },
            shown(Some(a)),
            shown(Some(b)),
        )),
    }
}

/// The dossier's blobs that are what their digest says, and why the others are not.
#[derive(Default)]
struct Blobs {
    blobs: Vec<(Digest, Vec<u8>)>,
    failures: Vec<String>,
}

fn decode_blobs(blobs: &BTreeMap<String, Text<'_>>) -> Blobs {
    let mut out = Blobs::default();
    for (digest, b64) in blobs {
        let Ok(digest_v) = digest.parse::<Digest>() else {
            out.failures
                .push(format!("blob key {digest:?} is not a sha256 digest"));
            continue;
        };
        match B64.decode(b64.0.as_bytes()) {
            Ok(bytes) if Digest::of(&bytes) == digest_v => out.blobs.push((digest_v, bytes)),
            Ok(_) => out.failures.push(format!(
                "blob {digest}: its bytes do not hash to its digest"
            )),
            Err(e) => out.failures.push(format!("blob {digest}: not base64: {e}")),
        }
    }
    out
}

/// The checked parts taken in file order into one source, with the dossier's blobs.
struct Merged {
    src: MemSource,
    /// `(index, leaf hash)` of every record, by index.
    leaf_hashes: BTreeMap<u64, Hash>,
    /// The leaf hash of each entry whose leaf is base64, by position in the file.
    hashed: Vec<(usize, Hash)>,
    entry_failures: Vec<EntryFailure>,
    /// Duplicates, blobs, missing payload blobs: reported after the entries.
    failures: Vec<String>,
}

impl Merged {
    fn of(parts: Vec<Part>, blobs: Blobs) -> Merged {
        let (mut entry_failures, mut hashed) = (Vec::new(), Vec::new());
        let (mut srcs, mut hashes) = (Vec::new(), Vec::new());
        for part in parts {
            entry_failures.extend(part.failures);
            hashed.extend(part.hashed);
            hashes.push(part.leaf_hashes);
            srcs.push(part.src);
        }
        // The index of leaf hashes and the merged source are built at once.
        let (mut src, (leaf_hashes, mut failures)) = rayon::join(
            || MemSource::concat(srcs),
            || {
                let mut map = BTreeMap::new();
                let mut twice = Vec::new();
                for (index, hash) in hashes.into_iter().flatten() {
                    if map.insert(index, hash).is_some() {
                        twice.push(format!("record {index} appears twice"));
                    }
                }
                (map, twice)
            },
        );
        for (digest, bytes) in blobs.blobs {
            src.insert_blob(digest, bytes);
        }
        failures.extend(blobs.failures);
        for r in src.records().values() {
            if let Payload::Blob { digest, .. } = &r.record.payload
                && !src.blobs().contains_key(digest)
            {
                failures.push(format!(
                    "record {}: its payload blob {digest} is missing",
                    r.record.index.0
                ));
            }
        }
        Merged {
            src,
            leaf_hashes,
            hashed,
            entry_failures,
            failures,
        }
    }
}

/// What the file commits to, from the leaf hashes and the file alone.
struct FileCommitments {
    /// The manifest digest of this file, for the export record to hold.
    manifest: Digest,
    /// Consistency-proof failures (before the gate decisions' in the report).
    failures: Vec<String>,
    consistency_proofs: usize,
}

fn file_commitments(
    d: &Dossier,
    view_digest: Digest,
    leaf_hashes: &BTreeMap<u64, Hash>,
    cp: &trailmark_log::Checkpoint,
    key: &VerifierKey,
) -> FileCommitments {
    let others = leaf_hashes
        .iter()
        .filter(|(i, _)| **i != d.export_record)
        .map(|(i, h)| (*i, h));
    let mut rep = FileCommitments {
        manifest: manifest_digest_of(d, view_digest, others),
        failures: Vec::new(),
        consistency_proofs: 0,
    };
    let fail = |rep: &mut FileCommitments, m: String| rep.failures.push(m);
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

    rep
}

/// What the records' own commitments say: the export record holds this file's manifest
/// digest, every gate decision recomputes, every certification verifies.
#[derive(Default)]
struct RecordCommitments {
    failures: Vec<String>,
    gate_decisions_recomputed: usize,
    certifications: usize,
    /// The export record holds this file's manifest digest: records, blobs, identity map and
    /// view are exactly what was exported.
    as_exported: bool,
}

fn record_commitments(
    d: &Dossier,
    src: &MemSource,
    file: &FileCommitments,
    key: &VerifierKey,
) -> RecordCommitments {
    let mut rep = RecordCommitments::default();
    let fail = |rep: &mut RecordCommitments, m: String| rep.failures.push(m);
    // The export record commits to exactly these records, blobs, view and identity map.
    match src.records().get(&d.export_record) {
        Some(r) if r.record.kind.as_str() == kinds::DOSSIER_EXPORTED => {
            let want = payload(src, r).and_then(|p| {
                p.get("manifest_digest")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            });
            let got = file.manifest.to_string();
            rep.as_exported = want.as_deref() == Some(got.as_str());
            if !rep.as_exported {
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

    // The identity map is the recorded version the file names.
    if let Some(i) = d.people_record {
        match src.records().get(&i) {
            Some(r) if r.record.kind.as_str() == kinds::IDENTITY_MAP => {
                let digest_of = |v: &Value| {
                    IdentityMap::from_json(&v.to_string())
                        .ok()
                        .map(|m| trailmark_policy::people::digest(&m).to_string())
                };
                let p = payload(src, r);
                let stated = p
                    .as_ref()
                    .and_then(|p| p.get("digest")?.as_str().map(str::to_owned));
                let recorded = p.as_ref().and_then(|p| digest_of(p.get("map")?));
                let carried = digest_of(&d.people);
                if carried.is_none() || carried != stated || carried != recorded {
                    fail(
                        &mut rep,
                        format!("the identity map is not the version recorded at record {i}"),
                    );
                }
            }
            _ => fail(
                &mut rep,
                format!("identity map record {i} is missing or is not an identity.map record"),
            ),
        }
    }

    // Consistency failures come after the export record's and before the gate decisions'.
    rep.failures.extend(file.failures.iter().cloned());
    // Every gate decision recomputed from its recorded input and policy.
    for r in src
        .records()
        .values()
        .filter(|r| r.record.kind.as_str() == kinds::GATE_DECIDED)
    {
        let i = r.record.index.0;
        let Some(p) = payload(src, r) else {
            fail(&mut rep, format!("gate decision {i}: payload missing"));
            continue;
        };
        match recompute(src, &p) {
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
        match payload(src, r).map(|p| {
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

    rep
}

/// A failure of one entry, placed where a one-by-one check of the entries would report it:
/// by the entry's position in the file, then by the order of the checks (leaf, proof, decode).
type EntryFailure = (usize, u8, String);

/// A run of consecutive entries, decoded and indexed (their proofs are checked apart).
#[derive(Default)]
struct Part {
    failures: Vec<EntryFailure>,
    /// The leaf hash of each entry whose leaf is base64, by position in the file.
    hashed: Vec<(usize, Hash)>,
    /// `(index, leaf hash)` of every record that decoded, in file order.
    leaf_hashes: Vec<(u64, Hash)>,
    src: MemSource,
}

/// Fewer entries than this are not worth a part of their own.
const PART_MIN: usize = 512;

/// Contiguous runs of `len` entries, a few per thread (not one), so that a thread that
/// finishes other work takes runs left.
fn runs(len: usize) -> usize {
    let parts = (rayon::current_num_threads() * 4)
        .min(len / PART_MIN)
        .max(1);
    len.div_ceil(parts).max(1)
}

/// [`decode_entry`] for every entry, in contiguous parts on rayon's pool, each part indexing
/// its own records; returned in file order.
fn decode_entries(entries: &[EntryIn<'_>], absent: &BTreeSet<usize>) -> Vec<Part> {
    use rayon::prelude::*;
    let run = runs(entries.len());
    entries
        .par_chunks(run)
        .enumerate()
        .map(|(n, chunk)| decode_run(n * run, chunk, absent))
        .collect()
}

/// [`decode_entry`] for a contiguous run of entries, the first at position `first` in the file,
/// skipping the positions in `absent`; the run's records indexed in a part of their own.
fn decode_run(first: usize, run: &[EntryIn<'_>], absent: &BTreeSet<usize>) -> Part {
    let mut part = Part::default();
    for (k, e) in run.iter().enumerate() {
        let at = first + k;
        if absent.contains(&at) {
            continue;
        }
        match decode_entry(e) {
            Err((stage, failure)) => part.failures.push((at, stage, failure)),
            Ok(r) => {
                part.hashed.push((at, r.leaf_hash));
                match r.record {
                    Err(failure) => part.failures.push((at, 2, failure)),
                    Ok(record) => {
                        part.leaf_hashes.push((e.index, r.leaf_hash));
                        part.src.insert(std::sync::Arc::new(StoredRecord {
                            record,
                            leaf: r.leaf,
                            leaf_hash: r.leaf_hash,
                        }));
                    }
                }
            }
        }
    }
    part
}

/// An entry's leaf, its hash, and the record it decodes to (or why it does not).
struct Decoded {
    leaf: Vec<u8>,
    leaf_hash: Hash,
    record: Result<trailmark_model::Record, String>,
}

/// The leaf is base64 and decodes strictly to a record with the entry's index.
fn decode_entry(e: &EntryIn<'_>) -> Result<Decoded, (u8, String)> {
    let leaf = B64
        .decode(e.leaf.0.as_bytes())
        .map_err(|err| (0, format!("record {}: leaf is not base64: {err}", e.index)))?;
    let leaf_hash = leaf_hash(&leaf);
    let record = match decode_leaf(&leaf) {
        Err(err) => Err(format!("record {}: leaf does not decode: {err}", e.index)),
        Ok(record) if record.index.0 != e.index => Err(format!(
            "record {}: its leaf says index {}",
            e.index, record.index.0
        )),
        Ok(record) => Ok(record),
    };
    Ok(Decoded {
        leaf,
        leaf_hash,
        record,
    })
}

/// What the inclusion proofs say: their failures, and the entries (by position) whose leaf is
/// not in the tree, which count as if absent.
#[derive(Default)]
struct Proven {
    failures: Vec<EntryFailure>,
    absent: Vec<usize>,
}

/// Every hashed entry's proof into the tree of `size` leaves with `root`, in contiguous parts
/// (one node cache per part, whose neighbouring proofs share their upper nodes).
/// A v3 file's `proof_hashes`, decoded; a hash that does not decode is kept as its error, for
/// the proofs that use it to name.
fn proof_table(texts: &[Text<'_>]) -> Vec<Result<Hash, String>> {
    texts
        .iter()
        .map(|t| Hash::from_base64(t.as_ref()).map_err(|e| format!("{:?}: {e}", t.as_ref())))
        .collect()
}

/// A v3 entry's audit path, looked up in the file's table; an error is what is wrong with the
/// entry, worded to follow "record N: ".
fn shared_proof(e: &EntryIn<'_>, table: &[Result<Hash, String>]) -> Result<Vec<Hash>, String> {
    let Some(refs) = e.proof_refs else {
        return Err("has no `proof_refs` (the proof, in this format)".into());
    };
    if e.proof.is_some() {
        return Err("has a `proof` of base64 hashes, which this format does not use".into());
    }
    let refs: Vec<u32> = serde_json::from_str(refs.get())
        .map_err(|err| format!("`proof_refs` is not a list of positions: {err}"))?;
    refs.iter()
        .enumerate()
        .map(|(step, k)| match table.get(*k as usize) {
            Some(Ok(h)) => Ok(*h),
            Some(Err(err)) => Err(format!(
                "proof step {step} is proof_hashes[{k}], which is not a hash: {err}"
            )),
            None => Err(format!(
                "proof step {step} refers to proof_hashes[{k}], beyond the {} the file has",
                table.len()
            )),
        })
        .collect()
}

fn prove_entries(
    entries: &[EntryIn<'_>],
    table: Option<&Vec<Result<Hash, String>>>,
    hashed: &[(usize, Hash)],
    size: u64,
    root: &Hash,
) -> Proven {
    use rayon::prelude::*;
    hashed
        .par_chunks(runs(hashed.len()))
        .map(|chunk| {
            let mut cache = NodeCache::new();
            let mut texts = ProofTexts::default();
            let mut out = Proven::default();
            for (at, h) in chunk {
                let e = &entries[*at];
                let proof = match table {
                    Some(table) => shared_proof(e, table),
                    None => match (&e.proof, &e.proof_refs) {
                        (Some(proof), None) => texts
                            .decode(proof)
                            .map_err(|err| format!("proof hash {err}")),
                        (None, _) => Err("has no `proof`".into()),
                        (Some(_), Some(_)) => {
                            Err("has `proof_refs`, which this format does not use".into())
                        }
                    },
                };
                match proof {
                    // As before the proofs were checked apart: a proof that cannot be read is
                    // reported, and the record still decoded and counts.
                    Err(err) => out
                        .failures
                        .push((*at, 1, format!("record {}: {err}", e.index))),
                    Ok(proof) => {
                        if let Err(err) = cache.verify_inclusion(e.index, size, h, &proof, root) {
                            out.failures.push((
                                *at,
                                1,
                                format!(
                                    "record {}: not in the log at checkpoint size {size}: {err}",
                                    e.index
                                ),
                            ));
                            out.absent.push(*at);
                        }
                    }
                }
            }
            out
        })
        .reduce(Proven::default, |mut a, b| {
            a.failures.extend(b.failures);
            a.absent.extend(b.absent);
            a
        })
}

/// The previous proof's hashes with the text they were decoded from. Neighbouring leaves
/// share every audit-path step above the level where their paths meet, as the same base64
/// text in the same position, so most steps of a proof are the previous proof's and are not
/// decoded again.
#[derive(Default)]
struct ProofTexts<'t> {
    previous: Vec<(&'t str, Hash)>,
}

impl<'t> ProofTexts<'t> {
    /// The proof's hashes, as [`hashes`] decodes them.
    fn decode<S: AsRef<str>>(&mut self, proof: &'t [S]) -> Result<Vec<Hash>, String> {
        let mut out = Vec::with_capacity(proof.len());
        for (k, text) in proof.iter().enumerate() {
            let text = text.as_ref();
            let hash = match self.previous.get(k) {
                Some((t, h)) if *t == text => *h,
                _ => {
                    let h = Hash::from_base64(text).map_err(|e| format!("{text:?}: {e}"))?;
                    match self.previous.get_mut(k) {
                        Some(slot) => *slot = (text, h),
                        None => self.previous.push((text, h)),
                    }
                    h
                }
            };
            out.push(hash);
        }
        Ok(out)
    }
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
    // UTF-8 checked once, not string by string as `from_slice` does.
    let input = std::str::from_utf8(bytes).map_err(|e| format!("input document: {e}"))?;
    let input: GateInput =
        serde_json::from_str(input).map_err(|e| format!("input document: {e}"))?;
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

fn rebuild_view(
    src: &MemSource,
    d: &Dossier,
    version: ViewVersion,
) -> Result<crate::view::View, String> {
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
    crate::bundle::view_of(src, &people, &d.release, as_of, &policy, version)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::first_difference;

    fn diff(a: serde_json::Value, b: serde_json::Value) -> Option<(String, String, String)> {
        first_difference(&a, &b, String::new())
    }

    #[test]
    fn the_first_difference_is_named_by_its_json_pointer() {
        assert_eq!(
            diff(json!({"a": [1, {"b": "x"}]}), json!({"a": [1, {"b": "x"}]})),
            None
        );
        assert_eq!(
            diff(
                json!({"q": [{"answer": "yes"}]}),
                json!({"q": [{"answer": "partial"}]})
            ),
            Some(("/q/0/answer".into(), "\"yes\"".into(), "\"partial\"".into()))
        );
        // An item only one side has, and the first of several differences.
        assert_eq!(
            diff(json!({"gaps": ["a", "b"]}), json!({"gaps": ["a"]})),
            Some(("/gaps/1".into(), "\"b\"".into(), "nothing".into()))
        );
        assert_eq!(
            diff(json!({"a": 1, "b": 2}), json!({"a": 9, "b": 8, "c": 0})),
            Some(("/a".into(), "1".into(), "9".into()))
        );
        assert_eq!(
            diff(json!({"a": 1}), json!({"a": 1, "c": 0})),
            Some(("/c".into(), "nothing".into(), "0".into()))
        );
        // Keys are escaped as RFC 6901 says; a different type is a difference; so is the root.
        assert_eq!(
            diff(json!({"x/y~": 1}), json!({"x/y~": "1"})),
            Some(("/x~1y~0".into(), "1".into(), "\"1\"".into()))
        );
        assert_eq!(
            diff(json!(1), json!(2)),
            Some(("/".into(), "1".into(), "2".into()))
        );
    }

    #[test]
    fn long_values_are_shortened_on_a_character_boundary() {
        let long = "é".repeat(300);
        let (_, file, records) = diff(json!([long]), json!(["short"])).unwrap();
        assert_eq!(file.chars().count(), 121, "{file}");
        assert!(file.ends_with('…'));
        assert_eq!(records, "\"short\"");
    }
}
