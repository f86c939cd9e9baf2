//! A release built from the real shared fixtures is exported, verified offline, and every kind
//! of tampering is rejected with the right reason.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use trailmark_dossier::{BuildOptions, Dossier, ViewVersion, build, cert, verify};
use trailmark_ingest::identity::IdentityMap;
use trailmark_ingest::{Context, Format};
use trailmark_log::SignerKey;
use trailmark_model::parse_record;
use trailmark_policy::{Actor, Governance, Policy};
use trailmark_store::{PgStore, SqliteStore, Store};

const HEAD: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
const ARTIFACT: &str = "sha256:ec8ff1bb40da2a36e3e9113dd7a5dd452c5125f7013e849519c0754b3c9fda89";
const PEOPLE: &str = r#"{"people": [{"id": "codertocat", "identities": ["github:Codertocat"]}, {"id": "hubot", "identities": ["github:hubot"]}, {"id": "alice", "identities": ["person:alice"]}]}"#;
const POLICY: &str = r#"
name = "default"
[approvals.release]
roles = ["approver"]
[tickets]
approved_states = ["Done"]
[gates.production]
checks = ["commits_have_tickets", "tickets_approved", "prs_reviewed", "tests_pass", "scans_clean", "sbom_present", "provenance_present", "approvals", "separation_of_duties"]
"#;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/ingest")
}

pub struct World {
    _dir: tempfile::TempDir,
    pub store: Box<dyn Store>,
    _db: Option<PgDatabase>,
    pub signer: SignerKey,
    pub people: IdentityMap,
}

impl World {
    pub fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let signer = SignerKey::from_seed("test.example/log", [5u8; 32]).unwrap();
        let store = SqliteStore::create(
            &dir.path().join("log.db"),
            "test.example/log",
            signer.clone(),
        )
        .unwrap();
        World::with_store(dir, Box::new(store), signer, None)
    }

    /// The same world on the PostgreSQL backend, in a database of its own.
    pub fn on_postgres() -> World {
        let dir = tempfile::tempdir().unwrap();
        let signer = SignerKey::from_seed("test.example/log", [5u8; 32]).unwrap();
        let db = PgDatabase::new();
        let store = PgStore::create(&db.url, "test.example/log", signer.clone()).unwrap();
        World::with_store(dir, Box::new(store), signer, Some(db))
    }

    fn with_store(
        dir: tempfile::TempDir,
        store: Box<dyn Store>,
        signer: SignerKey,
        db: Option<PgDatabase>,
    ) -> World {
        let w = World {
            _dir: dir,
            store,
            _db: db,
            signer,
            people: IdentityMap::from_json(PEOPLE).unwrap(),
        };
        let (_, json) = Policy::from_toml(POLICY, &|_| Err("none".into())).unwrap();
        w.gov().apply_policy(&json, "person:rm").unwrap();
        trailmark_policy::people::record(w.store.as_ref(), &w.people, "person:admin").unwrap();
        w
    }

    pub fn gov(&self) -> Governance<'_> {
        Governance::new(self.store.as_ref(), &self.people)
    }

    pub fn ingest(&self, bytes: &[u8], format: Format, event: Option<&str>, commit: Option<&str>) {
        let ctx = Context {
            event: event.map(str::to_owned),
            commit: commit.map(str::to_owned),
            ..Context::default()
        };
        let out = trailmark_ingest::ingest(bytes, Some(format), &ctx).unwrap();
        self.store
            .append_with_blobs(out.records, vec![out.raw])
            .unwrap();
    }

    pub fn fixture(&self, rel: &str, format: Format, commit: Option<&str>) {
        self.ingest(
            &std::fs::read(fixtures().join(rel)).unwrap(),
            format,
            None,
            commit,
        );
    }

    /// A compliant release, approved; returns its id.
    pub fn release(&self) -> String {
        self.fixture(
            "github/pull_request/opened.payload.json",
            Format::Github,
            None,
        );
        let mut review: Value = serde_json::from_slice(
            &std::fs::read(fixtures().join("github/pull_request_review/submitted.payload.json"))
                .unwrap(),
        )
        .unwrap();
        review["review"]["state"] = json!("approved");
        review["review"]["user"]["login"] = json!("hubot");
        self.ingest(
            &serde_json::to_vec(&review).unwrap(),
            Format::Github,
            Some("pull_request_review"),
            None,
        );
        self.fixture(
            "jira/webhook-issue-updated-resolved.json",
            Format::Jira,
            None,
        );
        self.store
            .append(vec![parse_record(&json!({"kind": "custom.link", "subjects": [{"type": "commit", "id": HEAD}], "links": [{"rel": "implements", "to": {"type": "ticket", "id": "TES-41"}}]}).to_string()).unwrap()])
            .unwrap();
        self.fixture(
            "junit/TEST-uk.co.gresearch.spark.diff.DiffOptionsSuite.xml",
            Format::Junit,
            Some(HEAD),
        );
        self.fixture("sarif/NoResults.sarif", Format::Sarif, Some(HEAD));
        self.fixture(
            "cyclonedx/valid-bom-1.7.json",
            Format::Cyclonedx,
            Some(HEAD),
        );
        self.fixture(
            "intoto-slsa/gha_generic-v1.2.1__binary-linux-amd64-push-v4.5.6.intoto.jsonl",
            Format::Intoto,
            None,
        );
        let g = self.gov();
        let (id, _) = g
            .create_release(
                "acme/hello",
                "hello",
                "1.0.0",
                &["production".into()],
                None,
                "person:rm",
            )
            .unwrap();
        g.link(
            &id,
            &[
                ("commit".into(), HEAD.into()),
                ("artifact".into(), ARTIFACT.into()),
            ],
            &[],
            "explicit",
            "person:rm",
        )
        .unwrap();
        g.decide_release(
            &id,
            &Actor {
                identity: "person:alice".into(),
                roles: vec!["approver".into()],
            },
            true,
            None,
            Some("ok"),
        )
        .unwrap();
        id
    }

    /// The real deployment_status payload, deploying the release's commit to production.
    pub fn deploy(&self) {
        let mut v: Value = serde_json::from_slice(
            &std::fs::read(fixtures().join("github/deployment_status/payload.json")).unwrap(),
        )
        .unwrap();
        v["deployment"]["sha"] = json!(HEAD);
        self.ingest(
            &serde_json::to_vec(&v).unwrap(),
            Format::Github,
            Some("deployment_status"),
            None,
        );
    }

    /// The whole story: a compliant release, certified for production, deployed, exported.
    pub fn certified_deployed_export(&self) -> (String, cert::Certified, Dossier) {
        let id = self.release();
        let c = cert::certify(
            self.store.as_ref(),
            &self.people,
            "default",
            &id,
            "production",
            &self.signer,
            "person:rm",
        )
        .unwrap();
        self.deploy();
        let d = self.export(&id);
        (id, c, d)
    }

    pub fn export(&self, id: &str) -> Dossier {
        self.export_as(id, ViewVersion::LATEST)
    }

    pub fn export_as(&self, id: &str, version: ViewVersion) -> Dossier {
        build(
            self.store.as_ref(),
            &self.people,
            "default",
            id,
            &BuildOptions {
                raw_inputs: true,
                actor: "person:auditor".into(),
                version,
            },
        )
        .unwrap()
    }
}

fn check(d: &Dossier, key: &trailmark_log::VerifierKey) -> verify::Report {
    verify::verify(&serde_json::to_vec(d).unwrap(), key).unwrap()
}

/// A world with one release, its dossier as exported, and the key that verifies it.
fn exported() -> (World, Dossier, trailmark_log::VerifierKey) {
    let w = World::new();
    let id = w.release();
    let d = w.export(&id);
    let key = w.signer.verifier();
    (w, d, key)
}

#[test]
fn an_exported_dossier_verifies_offline_and_answers_the_auditor() {
    let w = World::new();
    let (id, c, d) = w.certified_deployed_export();
    let rep = check(&d, &w.signer.verifier());
    assert!(rep.ok(), "{:#?}", rep.failures);
    assert_eq!(rep.certifications, 1);
    assert_eq!(
        rep.gate_decisions_recomputed, 1,
        "the certification's gate decision: {rep:?}"
    );
    assert!(rep.consistency_proofs >= 1, "{rep:?}");
    // The certification is a VSA in a DSSE envelope over an in-toto statement.
    let st = cert::verify_envelope(&c.envelope, &w.signer.verifier(), &id).unwrap();
    assert_eq!(
        st["predicateType"],
        "https://slsa.dev/verification_summary/v1"
    );
    assert_eq!(
        st["subject"][0]["digest"]["sha256"],
        ARTIFACT.trim_start_matches("sha256:")
    );
    assert_eq!(st["predicate"]["verifiedLevels"][0], "SLSA_BUILD_LEVEL_1");

    let v = &d.view;
    let answers: Vec<(&str, &str)> = v
        .questions
        .iter()
        .map(|q| (q.id.as_str(), q.answer.as_str()))
        .collect();
    assert_eq!(
        answers,
        vec![
            ("change_authorization", "yes"),
            ("access_governance", "yes"),
            ("test_and_validation", "yes"),
            ("release_certification", "yes"),
            ("monitoring_and_response", "yes")
        ],
        "{:#?}",
        v.questions
    );
    assert_eq!(v.deployments.len(), 1);
    assert!(v.deployments[0].gated);
    assert_eq!(v.matrix[0].ticket, "TES-41");
    assert_eq!(v.matrix[0].commits[0].tests.pass_rate_permille, Some(1000));
    assert!(
        v.matrix[0].commits[0]
            .reviews
            .iter()
            .any(|r| r.starts_with("approved by hubot")),
        "{:?}",
        v.matrix[0].commits[0].reviews
    );
    assert!(
        v.controls
            .iter()
            .any(|c| c.id == "CC8.1" && c.status == "met")
    );
    assert!(
        v.gaps
            .iter()
            .all(|g| g.starts_with("not required by the policy: ")),
        "{:#?}",
        v.gaps
    );
    assert!(
        v.gaps
            .iter()
            .any(|g| g.contains("no branch protection was recorded")),
        "negative evidence is still stated: {:#?}",
        v.gaps
    );
    assert!(
        v.story
            .approval_at_deploy
            .as_ref()
            .is_some_and(|t| t.counted == vec!["alice".to_owned()])
    );
    // Raw inputs were asked for: the webhook bodies are in the dossier, by digest.
    let pr = trailmark_model::Digest::of(
        &std::fs::read(fixtures().join("github/pull_request/opened.payload.json")).unwrap(),
    );
    assert!(d.blobs.contains_key(&pr.to_string()));
}

/// The person who set the identity map in force also approved the release. From format v2 the
/// gaps say so; a v1 export of the same release (for a verifier that reads only v1) does not.
/// Each verifies with its own format's computation, and the format cannot be swapped.
#[test]
fn an_identity_map_set_by_an_approver_is_a_gap_from_v2_on() {
    let mut w = World::new();
    let mut people: Value = serde_json::from_str(PEOPLE).unwrap();
    people["people"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "carol", "identities": ["person:carol"]}));
    w.people = IdentityMap::from_json(&people.to_string()).unwrap();
    trailmark_policy::people::record(w.store.as_ref(), &w.people, "person:alice").unwrap();
    let id = w.release();
    let key = w.signer.verifier();
    let (v1, v2) = (
        w.export_as(&id, ViewVersion::V1),
        w.export_as(&id, ViewVersion::V2),
    );
    assert_eq!(
        (v1.format.as_str(), v2.format.as_str()),
        ("trailmark.dossier/v1", "trailmark.dossier/v2")
    );
    let gap = |d: &Dossier| {
        d.view
            .gaps
            .iter()
            .find(|g| g.starts_with("the identity map in force"))
            .cloned()
    };
    let g = gap(&v2).unwrap_or_else(|| panic!("no identity-map gap: {:#?}", v2.view.gaps));
    assert!(
        g.contains(&format!(
            "(record {}) was set by alice, who also approved it (record ",
            v2.people_record.unwrap()
        )),
        "{g}"
    );
    assert_eq!(gap(&v1), None, "v1 views do not have it");
    for d in [&v1, &v2] {
        let rep = check(d, &key);
        assert!(rep.ok(), "{}: {:#?}", d.format, rep.failures);
    }

    // A v1 file relabelled v2 does not verify: the format is in the manifest the log committed
    // to, and it names the computation the view is checked with.
    let mut t = v1.clone();
    t.format = ViewVersion::V2.format().into();
    let rep = check(&t, &key);
    assert_fails_with(&rep, "the dossier is not what was exported");
    assert_fails_with(
        &rep,
        "the view (questions, matrix, controls, gaps) does not match",
    );
    // A format this build does not know is named.
    let mut t = v2.clone();
    t.format = "trailmark.dossier/v9".into();
    assert_fails_with(
        &check(&t, &key),
        "format \"trailmark.dossier/v9\" is not one this verifier reads (trailmark.dossier/v1, trailmark.dossier/v2, trailmark.dossier/v3)",
    );
}

/// From format v3 a record's inclusion proof is a list of positions in the file's one table of
/// proof hashes, each hash once. Every proof reads the table: a hash changed there fails every
/// record whose proof uses it, and only those; a position beyond the table, an unreadable table
/// entry and a proof in the other format's form are named at their record; a table in a v2 file
/// makes it unreadable. The same release's v2 export is larger.
#[test]
fn v3_proofs_are_positions_in_one_table_of_hashes() {
    let (w, d, key) = exported();
    assert_eq!(d.format, "trailmark.dossier/v3");
    let table = d.proof_hashes.clone().unwrap();
    let distinct: std::collections::BTreeSet<&String> = table.iter().collect();
    assert_eq!(distinct.len(), table.len(), "each hash once");
    assert!(
        d.records
            .iter()
            .all(|e| e.proof.is_none() && e.proof_refs.is_some())
    );
    let v2 = w.export_as(&d.release, ViewVersion::V2);
    assert!(check(&v2, &key).ok());
    let (len3, len2) = (
        serde_json::to_vec(&d).unwrap().len(),
        serde_json::to_vec(&v2).unwrap().len(),
    );
    assert!(len3 < len2, "v3 {len3} bytes, v2 {len2}");

    let uses = |k: u32| -> Vec<u64> {
        d.records
            .iter()
            .filter(|e| e.proof_refs.as_ref().unwrap().contains(&k))
            .map(|e| e.index)
            .collect()
    };
    let not_in_log = |rep: &verify::Report| -> Vec<u64> {
        rep.failures
            .iter()
            .filter(|f| f.contains(": not in the log"))
            .map(|f| f["record ".len()..f.find(':').unwrap()].parse().unwrap())
            .collect()
    };
    // A table hash changed: exactly the records whose proofs use it fail. The last hash of the
    // table is the root side of some proof; the first, a leaf's neighbour.
    for k in [0, table.len() - 1] {
        let mut t = d.clone();
        t.proof_hashes.as_mut().unwrap()[k] = B64.encode([7u8; 32]);
        let k = u32::try_from(k).unwrap();
        assert!(!uses(k).is_empty());
        assert_eq!(not_in_log(&check(&t, &key)), uses(k), "table entry {k}");
    }
    // A table entry that is not a hash.
    let mut t = d.clone();
    t.proof_hashes.as_mut().unwrap()[0] = "not base64!".into();
    let first = uses(0)[0];
    assert_fails_with(
        &check(&t, &key),
        &format!("record {first}: proof step 0 is proof_hashes[0], which is not a hash: "),
    );
    // A position beyond the table.
    let mut t = d.clone();
    let j = t.records.iter().position(|r| proof_len(r) > 0).unwrap();
    t.records[j].proof_refs.as_mut().unwrap()[0] = u32::try_from(table.len()).unwrap();
    assert_fails_with(
        &check(&t, &key),
        &format!(
            "record {}: proof step 0 refers to proof_hashes[{}], beyond the {} the file has",
            t.records[j].index,
            table.len(),
            table.len()
        ),
    );
    // A proof written as v2 writes it, in a v3 file: with the positions and without them.
    let mut t = d.clone();
    t.records[j].proof = Some(vec![table[0].clone()]);
    assert_fails_with(
        &check(&t, &key),
        &format!(
            "record {}: has a `proof` of base64 hashes, which this format does not use",
            t.records[j].index
        ),
    );
    t.records[j].proof_refs = None;
    assert_fails_with(
        &check(&t, &key),
        &format!(
            "record {}: has no `proof_refs` (the proof, in this format)",
            t.records[j].index
        ),
    );
    // A v2 file has no table.
    let mut t = v2.clone();
    t.proof_hashes = Some(Vec::new());
    match verify::verify(&serde_json::to_vec(&t).unwrap(), &key) {
        Err(e) => assert!(
            e.to_string()
                .contains("`proof_hashes` is not a field of format trailmark.dossier/v2"),
            "{e}"
        ),
        Ok(r) => panic!("read: {r:?}"),
    }
}

/// Some failure of `rep` contains `text`.
fn assert_fails_with(rep: &verify::Report, text: &str) {
    assert!(
        rep.failures.iter().any(|f| f.contains(text)),
        "no failure says {text:?}: {:#?}",
        rep.failures
    );
}

/// The manifest digest is written directly (no JSON value) for speed; it must be exactly the
/// SHA-256 of the documented manifest's RFC 8785 bytes, awkward strings included.
#[test]
fn the_direct_manifest_digest_is_the_canonical_manifests() {
    use trailmark_dossier::bundle::{manifest, manifest_digest};
    use trailmark_model::{Digest, canonical_bytes};
    let w = World::new();
    let id = w.release();
    let mut d = w.export(&id);
    let reference = |d: &Dossier| {
        let hashes = d
            .records
            .iter()
            .map(|r| {
                let leaf = B64.decode(&r.leaf).unwrap();
                (
                    r.index,
                    B64.encode(trailmark_log::leaf_hash(&leaf).as_bytes()),
                )
            })
            .collect();
        Digest::of(&canonical_bytes(&manifest(d, &hashes)))
    };
    let direct = |d: &Dossier| {
        let hashes: Vec<(u64, trailmark_log::Hash)> = d
            .records
            .iter()
            .map(|r| {
                (
                    r.index,
                    trailmark_log::leaf_hash(&B64.decode(&r.leaf).unwrap()),
                )
            })
            .collect();
        manifest_digest(d, hashes.iter().map(|(i, h)| (*i, h)))
    };
    assert_eq!(direct(&d), reference(&d));
    d.release = "acme/pay/\"quoted\" \\ \u{1}\u{1f}\t\n é \u{10000} \u{e000}@1".into();
    d.as_of = "\u{7f}</script>".into();
    d.format = String::new();
    d.policy_record = u64::MAX;
    d.blobs.insert("\u{ffff}\u{10ffff}".into(), String::new());
    d.blobs.insert("\u{8}\u{c}".into(), String::new());
    d.view.gaps.push("\u{0}".into());
    d.people = json!({"z": 1, "a": ["\u{2028}"]});
    assert_eq!(direct(&d), reference(&d));
    d.people_record = None;
    assert_eq!(direct(&d), reference(&d));
    d.people_record = Some(u64::MAX);
    assert_eq!(direct(&d), reference(&d));
    d.records.clear();
    assert_eq!(direct(&d), reference(&d));
}

/// The hashes of every node of the tree over `leaves`, computed from the leaves themselves.
struct Leaves<'a>(&'a [trailmark_log::Hash]);

impl trailmark_log::NodeSource for Leaves<'_> {
    type Error = std::convert::Infallible;
    fn nodes(
        &mut self,
        ids: &[trailmark_log::NodeId],
    ) -> Result<Vec<trailmark_log::Hash>, Self::Error> {
        fn node(leaves: &[trailmark_log::Hash], level: u8, index: u64) -> trailmark_log::Hash {
            if level == 0 {
                return leaves[usize::try_from(index).unwrap()];
            }
            trailmark_log::node_hash(
                &node(leaves, level - 1, 2 * index),
                &node(leaves, level - 1, 2 * index + 1),
            )
        }
        Ok(ids
            .iter()
            .map(|id| node(self.0, id.level, id.index))
            .collect())
    }
}

/// `d` as a log of `leaves` would have exported it: its checkpoint signed over those leaves by
/// `signer`, every entry's proof into that tree.
fn resealed(d: &Dossier, leaves: &[trailmark_log::Hash], signer: &SignerKey) -> Dossier {
    let size = leaves.len() as u64;
    let root = trailmark_log::root(size, &mut Leaves(leaves)).unwrap();
    let mut d = d.clone();
    d.checkpoint = trailmark_log::Checkpoint::new(signer.name(), size, root)
        .sign(signer)
        .unwrap();
    let proofs: Vec<Vec<trailmark_log::Hash>> = d
        .records
        .iter()
        .map(|e| trailmark_log::inclusion_proof(e.index, size, &mut Leaves(leaves)).unwrap())
        .collect();
    set_proofs(&mut d, &proofs);
    d
}

/// Writes `proofs` (one per entry) as `d`'s format writes them: base64 hashes per entry up to
/// v2, positions in one table of hashes from v3.
fn set_proofs(d: &mut Dossier, proofs: &[Vec<trailmark_log::Hash>]) {
    if d.proof_hashes.is_none() {
        for (e, p) in d.records.iter_mut().zip(proofs) {
            e.proof = Some(p.iter().map(|h| h.to_base64()).collect());
        }
        return;
    }
    let mut table: Vec<String> = Vec::new();
    for (e, p) in d.records.iter_mut().zip(proofs) {
        let refs = p
            .iter()
            .map(|h| {
                let b = h.to_base64();
                let k = table.iter().position(|t| *t == b).unwrap_or_else(|| {
                    table.push(b);
                    table.len() - 1
                });
                u32::try_from(k).unwrap()
            })
            .collect();
        e.proof_refs = Some(refs);
    }
    d.proof_hashes = Some(table);
}

/// Entry `j`'s proof with its first step replaced by `hash`, touching no other entry's proof:
/// in a v3 file the step then refers to a table entry of its own.
fn alter_first_step(d: &mut Dossier, j: usize, hash: [u8; 32]) {
    match (&mut d.proof_hashes, &mut d.records[j]) {
        (Some(table), e) => {
            table.push(B64.encode(hash));
            e.proof_refs.as_mut().unwrap()[0] = u32::try_from(table.len() - 1).unwrap();
        }
        (None, e) => e.proof.as_mut().unwrap()[0] = B64.encode(hash),
    }
}

/// How many steps entry `e`'s proof has, in either form.
fn proof_len(e: &trailmark_dossier::RecordEntry) -> usize {
    e.proof_refs
        .as_ref()
        .map_or_else(|| e.proof.as_ref().map_or(0, Vec::len), Vec::len)
}

/// A log that committed a leaf that is not the canonical encoding of its record (a faulty or
/// hostile writer; here the log is re-signed over such a leaf with its own key): the entry's
/// proof holds, and still it fails as `decode_leaf` fails it, and every other check reports
/// what it reports without the entry. Two byte strings must never mean the same record.
#[test]
fn a_leaf_the_log_committed_in_a_form_not_canonical_is_refused() {
    let (w, d, key) = exported();
    let size = trailmark_log::verify_checkpoint(&d.checkpoint, std::slice::from_ref(&key), None)
        .unwrap()
        .size;
    let mut leaves: Vec<trailmark_log::Hash> = (0..size)
        .map(|i| {
            w.store
                .record(trailmark_model::LogIndex(i))
                .unwrap()
                .unwrap()
                .leaf_hash
        })
        .collect();
    // Resealing the log as it is changes nothing.
    let same = resealed(&d, &leaves, &w.signer);
    assert_eq!(same.checkpoint, d.checkpoint);
    assert!(check(&same, &key).ok(), "{:?}", check(&same, &key).failures);

    // The approval the view reports, with a space after its first brace: the same record.
    let j = d
        .records
        .iter()
        .position(|r| r.index == d.view.story.approvals[0].record)
        .unwrap();
    let index = d.records[j].index;
    let leaf = B64.decode(&d.records[j].leaf).unwrap();
    let loose = [b"{ ".as_slice(), &leaf[1..]].concat();
    assert_eq!(
        serde_json::from_slice::<Value>(&loose).unwrap(),
        serde_json::from_slice::<Value>(&leaf).unwrap()
    );
    leaves[usize::try_from(index).unwrap()] = trailmark_log::leaf_hash(&loose);
    let mut forged = d.clone();
    forged.records[j].leaf = B64.encode(&loose);
    let forged = resealed(&forged, &leaves, &w.signer);
    let rep = check(&forged, &key);
    assert!(
        rep.failures[0].starts_with(&format!("record {index}: leaf does not decode: "))
            && rep.failures[0].contains("not the canonical encoding"),
        "{:#?}",
        rep.failures
    );
    assert!(
        !rep.failures.iter().any(|f| f.contains("not in the log")),
        "{:#?}",
        rep.failures
    );
    let mut without = forged.clone();
    without.records.remove(j);
    let without = check(&without, &key);
    assert_eq!(rep.failures[1..], without.failures[..]);
    assert_eq!(rep.records, d.records.len() - 1);
    assert_eq!(rep.records, without.records);
    // Without the approval the view's answers change: the file's view is not the records'.
    assert!(
        rep.failures
            .iter()
            .any(|f| f.starts_with("the view (questions, matrix, controls, gaps) does not match")),
        "{:#?}",
        rep.failures
    );
}

#[test]
fn gaps_are_stated_and_an_ungated_deploy_is_named() {
    let w = World::new();
    let id = w.release();
    w.deploy(); // no gate decision before it
    w.fixture("junit/junit.fail.xml", Format::Junit, Some(HEAD));
    let d = w.export(&id);
    assert!(check(&d, &w.signer.verifier()).ok());
    let gaps = d.view.gaps.join("\n");
    assert!(
        gaps.contains("was not preceded by an allowing gate decision"),
        "{gaps}"
    );
    assert!(gaps.contains("1 failed"), "{gaps}");
    assert!(
        gaps.contains("alice's decision (record") && gaps.contains("it lapsed"),
        "the new report changed the content: {gaps}"
    );
    let q: Vec<&str> = d.view.questions.iter().map(|q| q.answer.as_str()).collect();
    assert_eq!(q[2], "partial", "tests failed, scans clean");
    assert_eq!(q[4], "no", "an ungated deploy");
    assert!(
        d.view
            .controls
            .iter()
            .any(|c| c.id == "CC8.1" && c.status != "met")
    );
}

#[test]
fn tampering_is_rejected_with_the_right_reason() {
    let w = World::new();
    let id = w.release();
    cert::certify(
        w.store.as_ref(),
        &w.people,
        "default",
        &id,
        "production",
        &w.signer,
        "person:rm",
    )
    .unwrap();
    let d = w.export(&id);
    let key = w.signer.verifier();
    assert!(check(&d, &key).ok());
    let fails = |d: &Dossier| check(d, &key).failures.join("\n");

    // A record changed: its leaf no longer hashes into the signed tree.
    let mut t = d.clone();
    let i = t
        .records
        .iter()
        .position(|r| r.index == d.view.story.approvals[0].record)
        .unwrap();
    let leaf = String::from_utf8(B64.decode(&t.records[i].leaf).unwrap())
        .unwrap()
        .replace("\"approve\"", "\"reject\"");
    t.records[i].leaf = B64.encode(leaf);
    let f = fails(&t);
    assert!(
        f.contains(&format!("record {}: not in the log", t.records[i].index)),
        "{f}"
    );

    // A record removed: the dossier is no longer what was exported, and the view changes.
    let mut t = d.clone();
    t.records.remove(i);
    let f = fails(&t);
    assert!(f.contains("is not what was exported"), "{f}");

    // A proof altered.
    let mut t = d.clone();
    let j = t.records.iter().position(|r| proof_len(r) > 0).unwrap();
    alter_first_step(&mut t, j, [0u8; 32]);
    assert!(fails(&t).contains(&format!("record {}: not in the log", t.records[j].index)));
    // ... and the record then counts as absent: every other check reports exactly what it
    // reports when the entry is removed (proofs are checked beside the other checks, which
    // are then done again without it).
    let altered = check(&t, &key);
    let mut removed = d.clone();
    removed.records.remove(j);
    let removed = check(&removed, &key);
    assert_eq!(altered.failures[1..], removed.failures[..]);
    assert_eq!(altered.records, removed.records);
    assert_eq!(
        altered.gate_decisions_recomputed,
        removed.gate_decisions_recomputed
    );

    // A checkpoint swapped for an earlier (genuinely signed) one.
    let mut t = d.clone();
    t.checkpoint = w.store.checkpoint(3).unwrap().unwrap().note;
    let f = fails(&t);
    assert!(f.contains("not in the log at checkpoint size 3"), "{f}");

    // A checkpoint signed by another key.
    let other = SignerKey::from_seed("test.example/log", [6u8; 32]).unwrap();
    assert!(fails(&d).is_empty());
    let f = check(&d, &other.verifier()).failures.join("\n");
    assert!(f.contains("the checkpoint does not verify"), "{f}");

    // A blob changed: a gate decision's input document.
    let mut t = d.clone();
    let g = d.view.gate_decisions[0].input_digest.clone();
    t.blobs.insert(g.clone(), B64.encode(b"{}"));
    let f = fails(&t);
    assert!(
        f.contains(&format!("blob {g}: its bytes do not hash")),
        "{f}"
    );

    // The identity map: carried as the recorded version, which an edit no longer is.
    let map_record = d.people_record.expect("the recorded identity map is named");
    assert_eq!(check(&d, &key).identity_map_record, Some(map_record));
    assert!(d.records.iter().any(|r| r.index == map_record));
    // The gate decision's recorded input names the same version.
    let g = &d.view.gate_decisions[0].input_digest;
    let input: serde_json::Value =
        serde_json::from_slice(&B64.decode(&d.blobs[g]).unwrap()).unwrap();
    assert_eq!(input["identity_map"], json!(map_record));
    // The HTML's verification facts say which version, and who set it.
    let named = d
        .meta()
        .identity_map
        .expect("the map's version in the meta");
    assert!(
        named.starts_with(&format!("record {map_record}, set by person:admin at ")),
        "{named}"
    );
    let mut t = d.clone();
    t.people["people"][0]["identities"] = json!(["github:hubot"]);
    let f = fails(&t);
    assert!(
        f.contains(&format!(
            "the identity map is not the version recorded at record {map_record}"
        )),
        "{f}"
    );
    assert!(f.contains("is not what was exported"), "{f}");
    // ... nor is another record passed off as the map's version.
    let mut t = d.clone();
    t.people_record = Some(d.policy_record);
    let f = fails(&t);
    assert!(
        f.contains(&format!(
            "identity map record {} is missing or is not an identity.map record",
            d.policy_record
        )),
        "{f}"
    );

    // The view edited to add a gap: the failure names where, and the file is not what the log
    // committed to at export, so it does not blame the exporter.
    let mut t = d.clone();
    t.view.gaps.push("nothing to see".into());
    let f = fails(&t);
    assert!(
        f.contains(&format!(
            "the view (questions, matrix, controls, gaps) does not match what the records say: at /gaps/{} the file has \"nothing to see\" where the records give nothing",
            d.view.gaps.len()
        )),
        "{f}"
    );
    assert!(f.contains("the dossier is not what was exported"), "{f}");
    assert!(!f.contains("the exporter computed it differently"), "{f}");

    // Unreadable input is not a verification failure but an error.
    assert!(verify::verify(b"{\"format\": 1}", &key).is_err());
}

/// A view that is not a view makes the file unreadable (an error, exit 2), not a failed check,
/// whatever else is wrong with the file: the verifier parses it beside the view rebuild, and
/// when the checkpoint fails first it still reads it before answering.
#[test]
fn a_view_that_does_not_parse_makes_the_file_unreadable() {
    let (_w, d, key) = exported();
    let mut v = serde_json::to_value(&d).unwrap();
    v["view"]["verdict"] = json!("approved");
    let unknown_member = serde_json::to_vec(&v).unwrap();
    let mut v = serde_json::to_value(&d).unwrap();
    v["view"]["questions"] = json!("all answered");
    let wrong_type = serde_json::to_vec(&v).unwrap();
    let other = SignerKey::from_seed("test.example/log", [6u8; 32])
        .unwrap()
        .verifier();
    for (bytes, says) in [
        (&unknown_member, "unknown field `verdict`"),
        (&wrong_type, "invalid type: string \"all answered\""),
    ] {
        for k in [&key, &other] {
            let e = verify::verify(bytes, k).unwrap_err().to_string();
            assert!(e.contains("view: ") && e.contains(says), "{e}");
        }
    }
}

/// The offline verifier reads files an auditor was handed: whatever their bytes, it answers
/// without panicking, and it accepts only a file that says exactly what was exported. A JSON
/// writer may spell the same file differently (`\/` for `/`), and that still verifies.
#[test]
fn any_change_to_the_file_is_refused_or_means_the_same() {
    let (_w, d, key) = exported();
    let bytes = serde_json::to_vec(&d).unwrap();
    assert!(verify::verify(&bytes, &key).unwrap().ok());

    // The same dossier with every `/` escaped (legal JSON, the same strings): the record
    // entries' base64 is then copied rather than borrowed, and still verifies.
    let escaped = String::from_utf8(bytes.clone())
        .unwrap()
        .replace('/', "\\/");
    assert!(escaped.contains("\\/"));
    let r = verify::verify(escaped.as_bytes(), &key).unwrap();
    assert!(r.ok(), "{:?}", r.failures);

    // Single-byte changes, deletions and truncations at positions spread over the file.
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move |n: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n as u64) as usize
    };
    let (mut refused, mut unreadable) = (0, 0);
    for round in 0..150 {
        let mut t = bytes.clone();
        let at = next(t.len());
        match round % 3 {
            0 => t[at] ^= 1 << next(8),
            1 => {
                t.remove(at);
            }
            _ => t.truncate(at),
        }
        match verify::verify(&t, &key) {
            Err(_) => unreadable += 1,
            Ok(r) if !r.ok() => refused += 1,
            Ok(_) => {
                let same: Dossier = serde_json::from_slice(&t).expect("it verified, so it parses");
                assert_eq!(
                    same, d,
                    "round {round}: a changed file verified (byte {at})"
                );
            }
        }
    }
    assert!(
        refused > 0 && unreadable > 0,
        "{refused} refused, {unreadable} unreadable"
    );
}

/// The verifier decodes the record entries in runs while it is still parsing the file: with
/// entries over several runs, every entry is counted once, and each failure is named at its
/// place in the file whatever run it fell in.
#[test]
fn entries_over_several_decoding_runs_are_each_checked_in_file_order() {
    let w = World::new();
    let reports: Vec<_> = (0..1_200)
        .map(|i| {
            parse_record(&json!({"kind": "test.report", "subjects": [{"type": "commit", "id": HEAD}],
                "links": [{"rel": "tests", "to": {"type": "commit", "id": HEAD}}],
                "payload": {"name": format!("suite {i}"), "totals": {"tests": 1, "passed": 1, "failures": 0, "errors": 0, "skipped": 0, "flaky": 0}, "cases": []}})
            .to_string())
            .unwrap()
        })
        .collect();
    w.store.append(reports).unwrap();
    let id = w.release();
    let d = w.export(&id);
    let key = w.signer.verifier();
    // More than two runs of 512 entries, the last one partial.
    assert!(d.records.len() > 2 * 512 + 1, "{}", d.records.len());
    let rep = check(&d, &key);
    assert!(rep.ok(), "{:#?}", rep.failures);
    assert_eq!(rep.records, d.records.len());

    // Entries broken in the first, second and last runs, named in file order.
    let mut t = d.clone();
    let last = t.records.len() - 2;
    for p in [last, 3, 700] {
        t.records[p].leaf = "not base64!".into();
    }
    let named: Vec<String> = check(&t, &key)
        .failures
        .into_iter()
        .filter(|f| f.contains("leaf is not base64"))
        .collect();
    let expected: Vec<String> = [3, 700, last]
        .iter()
        .map(|&p| format!("record {}: leaf is not base64", t.records[p].index))
        .collect();
    assert_eq!(named.len(), 3, "{named:?}");
    for (n, e) in named.iter().zip(&expected) {
        assert!(n.starts_with(e.as_str()), "{n} is not {e}");
    }
}

/// The file is read as strictly as serde's derive reads [`Dossier`]: a top-level field that is
/// repeated, unknown or missing, or anything after the object, makes it unreadable.
#[test]
fn a_dossier_with_a_repeated_unknown_or_missing_field_is_unreadable() {
    let (_w, d, key) = exported();
    let v = serde_json::to_value(&d).unwrap();
    let text = serde_json::to_string(&v).unwrap();
    assert!(verify::verify(text.as_bytes(), &key).unwrap().ok());
    let unreadable = |bytes: &str| match verify::verify(bytes.as_bytes(), &key) {
        Err(e) => e.to_string(),
        Ok(r) => panic!("read as a dossier: {r:?}"),
    };
    let fields: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert!(fields.len() >= 11, "{fields:?}");
    for &field in fields.iter().filter(|f| **f != "people_record") {
        let mut missing = v.clone();
        missing.as_object_mut().unwrap().remove(field);
        let e = unreadable(&missing.to_string());
        assert!(e.contains(&format!("missing field `{field}`")), "{e}");
        // Repeated: the same value a second time, as the last member.
        let repeated = format!(
            "{},\"{field}\":{}}}",
            &text[..text.len() - 1],
            serde_json::to_string(&v[field]).unwrap()
        );
        let e = unreadable(&repeated);
        assert!(e.contains(&format!("duplicate field `{field}`")), "{e}");
    }
    let e = unreadable(&format!("{},\"extra\":1}}", &text[..text.len() - 1]));
    assert!(e.contains("unknown field `extra`"), "{e}");
    let e = unreadable(&format!("{text} {{}}"));
    assert!(e.contains("trailing characters"), "{e}");
    // `people_record` alone may be absent (a log that never recorded an identity map).
    let mut without = v.clone();
    without.as_object_mut().unwrap().remove("people_record");
    assert!(verify::verify(without.to_string().as_bytes(), &key).is_ok());
}

#[test]
fn a_certification_signed_with_another_key_is_rejected() {
    let w = World::new();
    let id = w.release();
    // Someone with write access records a certification signed by a key that is not the log's.
    let forger = SignerKey::from_seed("test.example/log", [9u8; 32]).unwrap();
    let stmt = json!({"_type": cert::STATEMENT_TYPE, "subject": [], "predicateType": cert::VSA_TYPE,
        "predicate": {"resourceUri": format!("trailmark:release/{id}"), "verificationResult": "PASSED"}});
    let env = cert::envelope(&forger, &trailmark_model::canonical_bytes(&stmt));
    let rec = trailmark_model::input::from_value(
        &json!({"kind": "release.certified", "subjects": [{"type": "release", "id": id}],
        "payload": {"environment": "production", "envelope": env}}),
    )
    .unwrap();
    let idx = w.store.append(vec![rec]).unwrap()[0].index.0;
    let d = w.export(&id);
    let f = check(&d, &w.signer.verifier()).failures.join("\n");
    assert!(
        f.contains(&format!(
            "certification {idx}: no valid signature by test.example/log+"
        )),
        "{f}"
    );
}

#[test]
fn certification_needs_an_allowing_gate() {
    let w = World::new();
    let g = w.gov();
    let (id, _) = g
        .create_release(
            "acme/hello",
            "bare",
            "1",
            &["production".into()],
            None,
            "person:rm",
        )
        .unwrap();
    let err = cert::certify(
        w.store.as_ref(),
        &w.people,
        "default",
        &id,
        "production",
        &w.signer,
        "person:rm",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("the gate denies"), "{err}");
}

/// A fresh PostgreSQL database on the local server (`.ci/run` starts it), dropped afterwards.
pub struct PgDatabase {
    name: String,
    pub url: String,
}

const ADMIN: &str = "postgres://postgres@127.0.0.1:5432/test";

impl PgDatabase {
    fn admin() -> postgres::Client {
        let url = std::env::var("TRAILMARK_TEST_POSTGRES").unwrap_or_else(|_| ADMIN.to_owned());
        postgres::Client::connect(&url, postgres::NoTls).unwrap_or_else(|e| {
            panic!("PostgreSQL is not reachable at {url} ({e}); .ci/run starts one")
        })
    }

    fn new() -> PgDatabase {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let name = format!(
            "trailmark_dossier_{}_{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        PgDatabase::admin()
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        let base = std::env::var("TRAILMARK_TEST_POSTGRES").unwrap_or_else(|_| ADMIN.to_owned());
        let url = format!("{}/{name}", base.rsplit_once('/').unwrap().0);
        PgDatabase { name, url }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let _ = PgDatabase::admin().batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

#[test]
fn the_same_dossier_verifies_on_the_postgresql_backend() {
    let w = World::on_postgres();
    let (_, _, d) = w.certified_deployed_export();
    let rep = check(&d, &w.signer.verifier());
    assert!(rep.ok(), "{:#?}", rep.failures);
    assert_eq!(rep.certifications, 1);
    assert!(d.view.deployments[0].gated);
    let answers: Vec<&str> = d.view.questions.iter().map(|q| q.answer.as_str()).collect();
    assert_eq!(answers, vec!["yes"; 5], "{:#?}", d.view.questions);
}
