//! Release certification: an in-toto Statement v1 with a SLSA Verification Summary Attestation
//! predicate, in a DSSE envelope signed with the log's Ed25519 key, recorded in the log
//! (`release.certified`) — before the deploy it certifies. Only a release whose gate allows, or
//! whose every denial is covered by an *approved* exception, can be certified.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use trailmark_ingest::identity::IdentityMap;
use trailmark_log::dsse::pae;
use trailmark_log::{SignerKey, VerifierKey};
use trailmark_model::{Digest, canonical_bytes};
use trailmark_policy::eval::{ExceptionState, Outcome, Status};
use trailmark_policy::{Governance, kinds};
use trailmark_store::Store;

use crate::error::DossierError;

pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const VSA_TYPE: &str = "https://slsa.dev/verification_summary/v1";

fn keyid(k: &VerifierKey) -> String {
    format!(
        "{}+{}",
        k.name(),
        k.key_id()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

/// Signs `payload` as a DSSE envelope.
pub fn envelope(signer: &SignerKey, payload: &[u8]) -> Value {
    let sig = signer.sign_raw(&pae(PAYLOAD_TYPE, payload));
    json!({
        "payloadType": PAYLOAD_TYPE,
        "payload": B64.encode(payload),
        "signatures": [{"keyid": keyid(&signer.verifier()), "sig": B64.encode(sig)}],
    })
}

/// Checks an envelope's signature with `key` and that it certifies `release`; returns the
/// statement.
pub fn verify_envelope(env: &Value, key: &VerifierKey, release: &str) -> Result<Value, String> {
    if env.get("payloadType").and_then(Value::as_str) != Some(PAYLOAD_TYPE) {
        return Err(format!("payloadType is not {PAYLOAD_TYPE}"));
    }
    let payload = env
        .get("payload")
        .and_then(Value::as_str)
        .and_then(|p| B64.decode(p).ok())
        .ok_or("the envelope's payload is not base64")?;
    let msg = pae(PAYLOAD_TYPE, &payload);
    let signed = env
        .get("signatures")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|s| s.get("keyid").and_then(Value::as_str) == Some(keyid(key).as_str()))
        .filter_map(|s| {
            s.get("sig")
                .and_then(Value::as_str)
                .and_then(|b| B64.decode(b).ok())
        })
        .any(|sig| key.verify_raw(&msg, &sig));
    if !signed {
        return Err(format!("no valid signature by {}", keyid(key)));
    }
    let st: Value = serde_json::from_slice(&payload).map_err(|e| format!("statement: {e}"))?;
    if st.get("_type").and_then(Value::as_str) != Some(STATEMENT_TYPE)
        || st.get("predicateType").and_then(Value::as_str) != Some(VSA_TYPE)
    {
        return Err("not an in-toto Statement v1 with a SLSA VSA predicate".into());
    }
    if st.pointer("/predicate/resourceUri").and_then(Value::as_str)
        != Some(resource(release).as_str())
    {
        return Err(format!("it certifies another resource than {release}"));
    }
    if st
        .pointer("/predicate/verificationResult")
        .and_then(Value::as_str)
        != Some("PASSED")
    {
        return Err("its verification result is not PASSED".into());
    }
    Ok(st)
}

fn resource(release: &str) -> String {
    format!("trailmark:release/{release}")
}

fn sha256_of(digest: &str) -> String {
    digest.strip_prefix("sha256:").unwrap_or(digest).to_owned()
}

/// What a certification produced.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Certified {
    pub record: u64,
    pub gate_record: u64,
    pub envelope: Value,
}

/// Evaluates (and records) the gate for `env`, and if it allows — or approved exceptions cover
/// every denial — records the signed certification.
pub fn certify(
    store: &dyn Store,
    people: &IdentityMap,
    policy_name: &str,
    release: &str,
    env: &str,
    signer: &SignerKey,
    actor: &str,
) -> Result<Certified, DossierError> {
    let mut gov = Governance::new(store, people);
    gov.policy_name = policy_name.to_owned();
    let (snap, policy) = gov.snapshot(release, Some(env), None)?;
    let gate = gov.gate(release, env, None)?;
    match gate.decision.decision {
        Outcome::Allow => {}
        Outcome::AllowWithException => {
            let id = gate.decision.exception.clone().unwrap_or_default();
            let approved = gov
                .exceptions(&snap.release.project)?
                .into_iter()
                .any(|(e, s)| e.id == id && s == ExceptionState::Approved);
            if !approved {
                return Err(DossierError::Refused(format!(
                    "cannot certify {release} for {env}: exception {id} covers the failing checks but has no retrospective approval yet (gate record {})",
                    gate.record
                )));
            }
        }
        Outcome::Deny => {
            let why: Vec<String> = gate
                .decision
                .checks
                .iter()
                .filter(|c| c.status == Status::Fail)
                .flat_map(|c| c.reasons.clone())
                .collect();
            return Err(DossierError::Refused(format!(
                "cannot certify {release} for {env}: the gate denies (record {}): {}",
                gate.record,
                why.join("; ")
            )));
        }
    }
    let input = &snap.input;
    let all_provenance =
        !input.artifacts.is_empty() && input.artifacts.iter().all(|a| !a.provenance.is_empty());
    let mut subjects: Vec<Value> = input
        .artifacts
        .iter()
        .filter(|a| a.digest.starts_with("sha256:"))
        .map(|a| json!({"name": a.digest, "digest": {"sha256": sha256_of(&a.digest)}}))
        .collect();
    subjects.push(json!({"name": resource(release), "digest": {"sha256": sha256_of(&input.approval.evidence_digest)}}));
    let statement = json!({
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": VSA_TYPE,
        "predicate": {
            "verifier": {"id": format!("trailmark:log/{}", store.origin()), "version": {"trailmark": env!("CARGO_PKG_VERSION")}},
            "timeVerified": input.evaluated_at,
            "resourceUri": resource(release),
            "policy": {"uri": format!("trailmark:policy/{policy_name}/record/{}", policy.record), "digest": {"sha256": sha256_of(&policy.digest.to_string())}},
            "inputAttestations": [{"uri": format!("trailmark:record/{}", gate.record), "digest": {"sha256": sha256_of(&gate.input_digest)}}],
            "verificationResult": "PASSED",
            "verifiedLevels": [if all_provenance { "SLSA_BUILD_LEVEL_1" } else { "SLSA_BUILD_LEVEL_0" }],
            "slsaVersion": "1.0",
        },
    });
    let env_json = envelope(signer, &canonical_bytes(&statement));
    let mut links: Vec<Value> = input
        .artifacts
        .iter()
        .map(|a| json!({"rel": "certifies", "to": {"type": "artifact", "id": a.digest}}))
        .collect();
    links.push(json!({"rel": "certified_by", "to": {"type": "input", "id": gate.input_digest}}));
    let rec = trailmark_model::input::from_value(&json!({
        "kind": kinds::RELEASE_CERTIFIED,
        "subjects": [{"type": "release", "id": release}, {"type": "environment", "id": env}, {"type": "project", "id": snap.release.project}],
        "links": links,
        "actor": actor,
        "payload": {"environment": env, "gate_record": gate.record, "envelope": env_json, "envelope_digest": Digest::of(&canonical_bytes(&env_json)).to_string()},
    }))
    .map_err(|e| DossierError::Refused(format!("certification record: {e}")))?;
    let appended = store.append(vec![rec])?;
    let record = appended
        .first()
        .map(|a| a.index.0)
        .ok_or_else(|| DossierError::Missing("certification record".into()))?;
    Ok(Certified {
        record,
        gate_record: gate.record,
        envelope: env_json,
    })
}
