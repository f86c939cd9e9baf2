//! in-toto / SLSA adapter: DSSE envelopes (JSON or JSON Lines), Sigstore bundles v0.1–v0.3
//! (`dsseEnvelope`), npm attestation documents (`attestations[].bundle`) and Google Cloud Build
//! provenance summaries (`provenance_summary.provenance[].envelope`).
//!
//! Each envelope's payload is decoded as an in-toto Statement (v0.1 or v1) and becomes one
//! record: `attestation.slsa_provenance`, `attestation.slsa_vsa` or `attestation.intoto`.
//! Subjects are the statement's subject digests (`artifact:sha256:<hex>`, or `algo:<hex>` when
//! no SHA-256 is given); the source commit, when known in full, is linked as `built_from`.
//!
//! Signatures: DSSE signatures are checked over the PAE encoding against the Ed25519 keys in
//! [`Context::trusted_ed25519`]. The payload's `signature.status` is `verified` (a trusted key
//! verified a signature), `invalid` (trusted keys were given, an Ed25519-shaped signature is
//! present, and none of them verifies it) or `unverified` (no key given, or a scheme we were
//! not given a key for — ECDSA, Sigstore certificates, which are not chained to a root here).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use ed25519_dalek::{Signature, VerifyingKey};
use serde_json::{Map, Value, json};

use crate::{Context, Draft, Format, IngestError, Parsed, Skipped};

const F: Format = Format::Intoto;
const INTOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// Where an envelope was found in the input.
struct Envelope<'a> {
    /// A path for messages, e.g. `line 2`, `attestations[1].bundle.dsseEnvelope`.
    at: String,
    /// `dsse`, `sigstore_bundle`, `npm_attestation`, `gcb_provenance`.
    container: &'static str,
    /// The bundle's media type, when in a bundle.
    media_type: Option<String>,
    /// Whether the container carries an X.509 certificate (Sigstore / keyless).
    has_certificate: bool,
    env: &'a Map<String, Value>,
}

pub fn parse(bytes: &[u8], ctx: &Context) -> Result<Parsed, IngestError> {
    let docs = read_documents(bytes)?;
    let mut envelopes = Vec::new();
    for (i, (label, doc)) in docs.iter().enumerate() {
        let at = if docs.len() > 1 {
            label.clone()
        } else {
            String::new()
        };
        collect(doc, &at, i, &mut envelopes)?;
    }
    if envelopes.is_empty() {
        return Err(IngestError::schema(
            F,
            "no DSSE envelope found in the input",
        ));
    }
    let mut out = Parsed::default();
    for e in &envelopes {
        if let Some(r) = envelope_record(e, ctx, &mut out.skipped)? {
            out.records.push(r);
        }
    }
    Ok(out)
}

/// The whole input as one JSON document, or else JSON Lines (one document per line).
fn read_documents(bytes: &[u8]) -> Result<Vec<(String, Value)>, IngestError> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let whole_err = match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => return Ok(vec![(String::new(), v)]),
        Err(e) => e,
    };
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Err(IngestError::json(F, &whole_err));
    };
    let mut docs = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(v) => docs.push((format!("line {}", n + 1), v)),
            // Not JSON Lines either: report the whole-document error (position in the file).
            Err(_) => return Err(IngestError::json(F, &whole_err)),
        }
    }
    if docs.len() < 2 {
        return Err(IngestError::json(F, &whole_err));
    }
    Ok(docs)
}

fn join(at: &str, part: &str) -> String {
    if at.is_empty() {
        part.to_owned()
    } else {
        format!("{at}: {part}")
    }
}

fn collect<'a>(
    doc: &'a Value,
    at: &str,
    _i: usize,
    out: &mut Vec<Envelope<'a>>,
) -> Result<(), IngestError> {
    let Some(obj) = doc.as_object() else {
        return Err(IngestError::schema(
            F,
            join(
                at,
                "expected a JSON object (DSSE envelope or Sigstore bundle)",
            ),
        ));
    };
    if obj.contains_key("payloadType") || obj.contains_key("payload") {
        out.push(Envelope {
            at: join(at, "envelope"),
            container: "dsse",
            media_type: None,
            has_certificate: obj
                .get("signatures")
                .and_then(Value::as_array)
                .is_some_and(|s| {
                    s.iter()
                        .any(|s| s.get("cert").is_some_and(|c| !c.is_null()))
                }),
            env: obj,
        });
        return Ok(());
    }
    if let Some(env) = obj.get("dsseEnvelope") {
        out.push(bundle_envelope(
            obj,
            env,
            join(at, "dsseEnvelope"),
            "sigstore_bundle",
        )?);
        return Ok(());
    }
    if let Some(list) = obj.get("attestations") {
        let list = list
            .as_array()
            .ok_or_else(|| IngestError::schema(F, join(at, "attestations is not an array")))?;
        for (i, a) in list.iter().enumerate() {
            let where_ = join(at, &format!("attestations[{i}].bundle.dsseEnvelope"));
            let bundle = a.get("bundle").and_then(Value::as_object);
            let env = bundle.and_then(|b| b.get("dsseEnvelope"));
            match (bundle, env) {
                (Some(b), Some(env)) => {
                    out.push(bundle_envelope(b, env, where_, "npm_attestation")?)
                }
                _ => return Err(IngestError::schema(F, format!("{where_}: missing"))),
            }
        }
        return Ok(());
    }
    if let Some(summary) = obj.get("provenance_summary") {
        let list = summary
            .get("provenance")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                IngestError::schema(F, join(at, "provenance_summary.provenance is not an array"))
            })?;
        for (i, p) in list.iter().enumerate() {
            let where_ = join(at, &format!("provenance_summary.provenance[{i}].envelope"));
            let env = p
                .get("envelope")
                .and_then(Value::as_object)
                .ok_or_else(|| IngestError::schema(F, format!("{where_}: missing")))?;
            out.push(Envelope {
                at: where_,
                container: "gcb_provenance",
                media_type: None,
                has_certificate: false,
                env,
            });
        }
        return Ok(());
    }
    Err(IngestError::schema(
        F,
        join(
            at,
            "not a DSSE envelope, Sigstore bundle (dsseEnvelope), npm attestations or Cloud Build provenance summary",
        ),
    ))
}

fn bundle_envelope<'a>(
    bundle: &'a Map<String, Value>,
    env: &'a Value,
    at: String,
    container: &'static str,
) -> Result<Envelope<'a>, IngestError> {
    let env = env
        .as_object()
        .ok_or_else(|| IngestError::schema(F, format!("{at}: not an object")))?;
    let vm = bundle.get("verificationMaterial");
    let has_certificate = vm.is_some_and(|vm| {
        vm.get("x509CertificateChain").is_some() || vm.get("certificate").is_some()
    });
    Ok(Envelope {
        at,
        container,
        media_type: bundle
            .get("mediaType")
            .and_then(Value::as_str)
            .map(str::to_owned),
        has_certificate,
        env,
    })
}

fn decode_b64(s: &str) -> Result<Vec<u8>, base64::DecodeError> {
    STANDARD
        .decode(s)
        .or_else(|e| URL_SAFE.decode(s).map_err(|_| e.clone()))
        .or_else(|e| STANDARD_NO_PAD.decode(s).map_err(|_| e.clone()))
        .or_else(|e| URL_SAFE_NO_PAD.decode(s).map_err(|_| e))
}

/// Signatures are decoded leniently (non-zero trailing bits, any padding): a damaged signature
/// is then judged by verification, not lost to a decoding error.
fn decode_sig(s: &str) -> Result<Vec<u8>, base64::DecodeError> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let cfg = GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent);
    GeneralPurpose::new(&base64::alphabet::STANDARD, cfg)
        .decode(s)
        .or_else(|e| {
            GeneralPurpose::new(&base64::alphabet::URL_SAFE, cfg)
                .decode(s)
                .map_err(|_| e)
        })
}

/// DSSE pre-authentication encoding.
pub use trailmark_log::dsse::pae;

/// The signature verdict for one envelope.
fn signature_status(e: &Envelope<'_>, payload_type: &str, body: &[u8], keys: &[[u8; 32]]) -> Value {
    let sigs: Vec<&Value> = e
        .env
        .get("signatures")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let keyids: Vec<&str> = sigs
        .iter()
        .filter_map(|s| s.get("keyid").and_then(Value::as_str))
        .filter(|k| !k.is_empty())
        .collect();
    let decoded: Vec<Vec<u8>> = sigs
        .iter()
        .filter_map(|s| s.get("sig").and_then(Value::as_str))
        .filter_map(|s| decode_sig(s).ok())
        .collect();
    let base = |status: &str, reason: String| json!({"status": status, "reason": reason, "signatures": sigs.len(), "keyids": keyids});
    if sigs.is_empty() {
        return base("unverified", "the envelope has no signatures".into());
    }
    let msg = pae(payload_type, body);
    let verifiers: Vec<VerifyingKey> = keys
        .iter()
        .filter_map(|k| VerifyingKey::from_bytes(k).ok())
        .collect();
    let ed25519_shaped: Vec<&Vec<u8>> = decoded.iter().filter(|s| s.len() == 64).collect();
    for sig in &ed25519_shaped {
        let Ok(sig) = Signature::from_slice(sig) else {
            continue;
        };
        if let Some(i) = verifiers
            .iter()
            .position(|k| k.verify_strict(&msg, &sig).is_ok())
        {
            let key = verifiers
                .get(i)
                .map(|k| hex::encode(k.to_bytes()))
                .unwrap_or_default();
            let mut v = base(
                "verified",
                "Ed25519 signature over the DSSE PAE verified by a trusted key".into(),
            );
            v["key"] = Value::String(key);
            return v;
        }
    }
    if !verifiers.is_empty() && decoded.len() < sigs.len() {
        return base(
            "invalid",
            format!(
                "{} signature(s) are not valid base64",
                sigs.len() - decoded.len()
            ),
        );
    }
    if !verifiers.is_empty() && !ed25519_shaped.is_empty() {
        return base(
            "invalid",
            format!(
                "{} Ed25519 signature(s) do not verify against any of the {} trusted key(s)",
                ed25519_shaped.len(),
                verifiers.len()
            ),
        );
    }
    let mut reason = if verifiers.is_empty() {
        "no trusted key was given".to_owned()
    } else {
        "the signatures use a scheme we hold no trusted key for (not Ed25519, e.g. ECDSA)"
            .to_owned()
    };
    if decoded.len() < sigs.len() {
        reason.push_str(&format!(
            "; {} signature(s) are not valid base64",
            sigs.len() - decoded.len()
        ));
    }
    if !decoded.is_empty() && ed25519_shaped.is_empty() {
        reason.push_str("; signature scheme is not Ed25519 (DER-encoded, e.g. ECDSA P-256)");
    }
    if e.has_certificate {
        reason.push_str("; signed with a Sigstore certificate: certificate chain not verified");
    }
    base("unverified", reason)
}

fn envelope_record(
    e: &Envelope<'_>,
    ctx: &Context,
    skipped: &mut Vec<Skipped>,
) -> Result<Option<trailmark_model::NewRecord>, IngestError> {
    let at = &e.at;
    let payload_type = e
        .env
        .get("payloadType")
        .and_then(Value::as_str)
        .unwrap_or("");
    if payload_type != INTOTO_PAYLOAD_TYPE {
        skipped.push(Skipped {
            what: at.clone(),
            reason: format!("payloadType {payload_type:?} is not {INTOTO_PAYLOAD_TYPE}"),
        });
        return Ok(None);
    }
    let payload_b64 = e
        .env
        .get("payload")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            IngestError::schema(F, format!("{at}: payload is missing or not a string"))
        })?;
    let body = decode_b64(payload_b64).map_err(|err| {
        IngestError::schema(F, format!("{at}: payload is not valid base64: {err}"))
    })?;
    let stmt: Value = serde_json::from_slice(&body).map_err(|err| {
        IngestError::schema(
            F,
            format!("{at}: payload is not a JSON in-toto statement: {err}"),
        )
    })?;
    let stmt_type = stmt.get("_type").and_then(Value::as_str).unwrap_or("");
    if !stmt_type.starts_with("https://in-toto.io/Statement/") {
        return Err(IngestError::schema(
            F,
            format!("{at}: payload _type {stmt_type:?} is not an in-toto Statement"),
        ));
    }
    let subjects_in = stmt
        .get("subject")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if subjects_in.is_empty() {
        return Err(IngestError::schema(
            F,
            format!("{at}: statement has no subjects"),
        ));
    }
    let predicate_type = stmt
        .get("predicateType")
        .and_then(Value::as_str)
        .unwrap_or("");
    let predicate = stmt.get("predicate").cloned().unwrap_or(Value::Null);
    let kind = if predicate_type.starts_with("https://slsa.dev/provenance/") {
        "attestation.slsa_provenance"
    } else if predicate_type.starts_with("https://slsa.dev/verification_summary/") {
        "attestation.slsa_vsa"
    } else {
        "attestation.intoto"
    };

    let mut draft = Draft::new(kind);
    let mut subjects_out = Vec::new();
    for (i, s) in subjects_in.iter().enumerate() {
        let name = s.get("name").and_then(Value::as_str).unwrap_or("");
        let digest = s.get("digest").and_then(Value::as_object);
        let mut ids: Vec<String> = Vec::new();
        if let Some(d) = digest {
            if let Some(h) = d
                .get("sha256")
                .and_then(Value::as_str)
                .filter(|h| is_hex(h))
            {
                ids.push(format!("sha256:{}", h.to_ascii_lowercase()));
            } else {
                for (alg, h) in d {
                    if let Some(h) = h.as_str().filter(|h| !h.is_empty() && h.len() <= 512) {
                        ids.push(format!("{}:{}", alg.to_ascii_lowercase(), h));
                    }
                }
            }
        }
        if ids.is_empty() {
            skipped.push(Skipped {
                what: format!("{at}: subject {i} {name:?}"),
                reason: "no usable digest".into(),
            });
            continue;
        }
        for id in &ids {
            draft = draft.subject("artifact", id);
        }
        if name.starts_with("pkg:") {
            draft = draft.subject("component", name);
        }
        subjects_out
            .push(json!({"name": name, "digest": s.get("digest").cloned().unwrap_or(Value::Null)}));
    }
    if subjects_out.is_empty() {
        return Err(IngestError::schema(
            F,
            format!("{at}: statement has no subjects with a usable digest"),
        ));
    }
    draft = draft
        .subject_opt("commit", ctx.commit.as_deref())
        .subject_opt("build", ctx.build.as_deref());

    let mut payload = Map::new();
    payload.insert("statement_type".into(), json!(stmt_type));
    payload.insert("predicate_type".into(), json!(predicate_type));
    payload.insert(
        "envelope".into(),
        json!({"container": e.container, "media_type": e.media_type, "payload_type": payload_type, "at": at}),
    );
    payload.insert("subjects".into(), Value::Array(subjects_out));
    let occurred: Option<String>;
    match kind {
        "attestation.slsa_vsa" => {
            payload.insert("verifier".into(), json!(str_at(&predicate, "/verifier/id")));
            payload.insert(
                "verification_result".into(),
                json!(str_at(&predicate, "/verificationResult")),
            );
            payload.insert(
                "resource_uri".into(),
                json!(str_at(&predicate, "/resourceUri")),
            );
            payload.insert("policy".into(), json!(str_at(&predicate, "/policy/uri")));
            payload.insert(
                "verified_levels".into(),
                predicate
                    .get("verifiedLevels")
                    .cloned()
                    .unwrap_or(Value::Null),
            );
            occurred = str_at(&predicate, "/timeVerified");
        }
        _ => {
            let builder = str_at(&predicate, "/builder/id")
                .or_else(|| str_at(&predicate, "/runDetails/builder/id"));
            let build_type = str_at(&predicate, "/buildType")
                .or_else(|| str_at(&predicate, "/buildDefinition/buildType"));
            let source = find_source(&predicate);
            if let Some(commit) = source
                .as_ref()
                .and_then(|s| s.commit.clone())
                .filter(|c| is_full_sha(c))
            {
                draft = draft.link("built_from", "commit", commit.to_ascii_lowercase());
            }
            payload.insert("builder".into(), json!(builder));
            payload.insert("build_type".into(), json!(build_type));
            payload.insert(
                "source".into(),
                match &source {
                    Some(s) => json!({"uri": s.uri, "commit": s.commit, "repo": s.uri.as_deref().and_then(repo_of)}),
                    None => Value::Null,
                },
            );
            payload.insert("invocation".into(), invocation(&predicate));
            occurred = str_at(&predicate, "/metadata/buildFinishedOn")
                .or_else(|| str_at(&predicate, "/runDetails/metadata/finishedOn"))
                .or_else(|| str_at(&predicate, "/metadata/buildStartedOn"))
                .or_else(|| str_at(&predicate, "/runDetails/metadata/startedOn"));
        }
    }
    payload.insert(
        "signature".into(),
        signature_status(e, payload_type, &body, &ctx.trusted_ed25519),
    );
    let occurred = occurred.filter(|t| t.parse::<jiff::Timestamp>().is_ok());
    let record = draft
        .occurred_at(occurred)
        .payload(Value::Object(payload))
        .build()
        .map_err(|m| IngestError::schema(F, format!("{at}: {m}")))?;
    Ok(Some(record))
}

fn str_at(v: &Value, ptr: &str) -> Option<String> {
    trailmark_model::json_at(v, ptr)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_full_sha(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && is_hex(s)
}

struct Source {
    uri: Option<String>,
    commit: Option<String>,
}

/// A `{uri, digest}` resource descriptor as a source, when it carries a commit digest.
fn source_of(v: &Value) -> Option<Source> {
    let uri = v.get("uri").and_then(Value::as_str).map(str::to_owned);
    let d = v.get("digest")?;
    let commit = ["gitCommit", "sha1", "sha256"]
        .iter()
        .find_map(|k| d.get(*k).and_then(Value::as_str))
        .map(str::to_owned);
    let git_like = uri
        .as_deref()
        .is_some_and(|u| u.starts_with("git+") || u.contains("github.com") || u.contains("gitlab"));
    if commit.is_some() && (git_like || d.get("gitCommit").is_some()) {
        Some(Source { uri, commit })
    } else {
        None
    }
}

/// The source repository and commit: v0.2 `invocation.configSource` or `materials`, v1
/// `resolvedDependencies`, or (generic builders) `externalParameters.source` / `.artifacts.source`.
fn find_source(p: &Value) -> Option<Source> {
    if let Some(s) = p.pointer("/invocation/configSource").and_then(source_of) {
        return Some(s);
    }
    let lists = [
        "/materials",
        "/buildDefinition/resolvedDependencies",
        "/resolvedDependencies",
    ];
    for l in lists {
        if let Some(s) = p
            .pointer(l)
            .and_then(Value::as_array)
            .and_then(|a| a.iter().find_map(source_of))
        {
            return Some(s);
        }
    }
    for ptr in [
        "/buildDefinition/externalParameters/source",
        "/externalParameters/source",
        "/externalParameters/artifacts/source",
        "/buildDefinition/externalParameters/artifacts/source",
    ] {
        if let Some(s) = p.pointer(ptr).and_then(source_of) {
            return Some(s);
        }
    }
    // v1 with the repository named in externalParameters but no digest anywhere.
    let uri = str_at(p, "/buildDefinition/externalParameters/workflow/repository")
        .or_else(|| str_at(p, "/invocation/configSource/uri"));
    uri.map(|u| Source {
        uri: Some(u),
        commit: None,
    })
}

/// `git+https://github.com/o/n@refs/tags/v1` → `github.com/o/n`.
fn repo_of(uri: &str) -> Option<String> {
    let u = uri.strip_prefix("git+").unwrap_or(uri);
    let u = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"))
        .or_else(|| u.strip_prefix("ssh://"))?;
    let u = u.split(['@', '?', '#']).next().unwrap_or(u);
    let u = u.trim_end_matches('/').trim_end_matches(".git");
    if u.split('/').filter(|s| !s.is_empty()).count() >= 3 {
        Some(u.to_owned())
    } else {
        None
    }
}

fn invocation(p: &Value) -> Value {
    let mut m = Map::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            m.insert(k.into(), Value::String(v));
        }
    };
    put(
        "entry_point",
        str_at(p, "/invocation/configSource/entryPoint"),
    );
    put("config_uri", str_at(p, "/invocation/configSource/uri"));
    put(
        "invocation_id",
        str_at(p, "/metadata/buildInvocationID")
            .or_else(|| str_at(p, "/runDetails/metadata/invocationId")),
    );
    put(
        "workflow_path",
        str_at(p, "/buildDefinition/externalParameters/workflow/path"),
    );
    put(
        "workflow_ref",
        str_at(p, "/buildDefinition/externalParameters/workflow/ref"),
    );
    put(
        "workflow_repository",
        str_at(p, "/buildDefinition/externalParameters/workflow/repository"),
    );
    put(
        "event_name",
        str_at(p, "/invocation/environment/github_event_name"),
    );
    if m.is_empty() {
        Value::Null
    } else {
        Value::Object(m)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ed25519_dalek::{Signer as _, SigningKey};

    fn statement() -> Vec<u8> {
        serde_json::to_vec(&json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "app", "digest": {"sha256": "ab".repeat(32)}}],
            "predicateType": "https://slsa.dev/provenance/v1",
            "predicate": {
                "buildDefinition": {
                    "buildType": "https://example.com/bt",
                    "resolvedDependencies": [{"uri": "git+https://github.com/octo/hello@refs/heads/main", "digest": {"gitCommit": "c".repeat(40)}}]
                },
                "runDetails": {"builder": {"id": "https://example.com/builder"}}
            }
        }))
        .unwrap()
    }

    fn envelope(key: &SigningKey, body: &[u8], tamper: bool) -> Vec<u8> {
        let mut sig = key.sign(&pae(INTOTO_PAYLOAD_TYPE, body)).to_bytes();
        if tamper {
            sig[0] ^= 1;
        }
        serde_json::to_vec(&json!({
            "payloadType": INTOTO_PAYLOAD_TYPE,
            "payload": STANDARD.encode(body),
            "signatures": [{"keyid": "k1", "sig": STANDARD.encode(sig)}]
        }))
        .unwrap()
    }

    fn status(bytes: &[u8], keys: Vec<[u8; 32]>) -> String {
        let ctx = Context {
            trusted_ed25519: keys,
            ..Context::default()
        };
        let parsed = parse(bytes, &ctx).unwrap();
        let v = trailmark_model::input::to_value(&parsed.records[0]);
        v.pointer("/payload/signature/status")
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn ed25519_dsse_signatures_are_verified_or_invalid() {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let other = SigningKey::from_bytes(&[9u8; 32]);
        let body = statement();
        let good = envelope(&key, &body, false);
        let bad = envelope(&key, &body, true);
        let pk = key.verifying_key().to_bytes();
        assert_eq!(status(&good, vec![pk]), "verified");
        assert_eq!(
            status(&good, vec![other.verifying_key().to_bytes()]),
            "invalid"
        );
        assert_eq!(status(&bad, vec![pk]), "invalid");
        assert_eq!(status(&good, vec![]), "unverified");
        assert_eq!(status(&bad, vec![]), "unverified");
        let mut garbled: Value = serde_json::from_slice(&good).unwrap();
        garbled["signatures"][0]["sig"] = json!("!!not base64!!");
        let garbled = serde_json::to_vec(&garbled).unwrap();
        assert_eq!(status(&garbled, vec![pk]), "invalid");
        assert_eq!(status(&garbled, vec![]), "unverified");
    }

    #[test]
    fn provenance_fields_and_commit_link() {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let good = envelope(&key, &statement(), false);
        let parsed = parse(&good, &Context::default()).unwrap();
        let v = trailmark_model::input::to_value(&parsed.records[0]);
        assert_eq!(v["kind"], "attestation.slsa_provenance");
        assert_eq!(
            v.pointer("/subjects/0/id").unwrap(),
            &json!(format!("sha256:{}", "ab".repeat(32)))
        );
        assert_eq!(v.pointer("/links/0/to/id").unwrap(), &json!("c".repeat(40)));
        assert_eq!(
            v.pointer("/payload/source/repo").unwrap(),
            "github.com/octo/hello"
        );
        assert_eq!(
            v.pointer("/payload/builder").unwrap(),
            "https://example.com/builder"
        );
    }

    #[test]
    fn hostile_inputs_do_not_panic() {
        for input in [
            &b"{}"[..],
            b"[]",
            b"{\"payloadType\": 1}",
            b"{\"payloadType\": \"application/vnd.in-toto+json\", \"payload\": \"e30=\"}",
            b"{\"dsseEnvelope\": 3}",
            b"{\"attestations\": [{}]}",
            b"{\"provenance_summary\": {}}",
            b"{\"a\":1}\n{\"b\":2}",
            b"\xff\xfe",
        ] {
            assert!(crate::ingest(input, Some(F), &Context::default()).is_err());
        }
    }
}
