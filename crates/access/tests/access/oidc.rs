//! OIDC identity tokens: real RS256/ES256 signatures made with the test keys in `tests/data`
//! (throwaway keys, see its README), key sets from a file and over loopback HTTP.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::{SignedDuration, Timestamp};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use trailmark_access::{
    AccessError, ClaimRule, Grant, JwksSource, OidcError, OidcProvider, OidcVerifier, PrincipalKind,
};

const ISSUER: &str = "https://token.actions.githubusercontent.com";
const AUDIENCE: &str = "https://trailmark.example";
const SUBJECT: &str = "repo:octo/hello:ref:refs/heads/main";

const RSA_A: &[u8] = include_bytes!("../data/test-only-rsa-a.key.pem");
const RSA_A_PUBLIC: &[u8] = include_bytes!("../data/test-only-rsa-a.pub.pem");
const RSA_B: &[u8] = include_bytes!("../data/test-only-rsa-b.key.pem");
const EC: &[u8] = include_bytes!("../data/test-only-ec-p256.key.pem");

fn now() -> Timestamp {
    "2026-03-01T12:00:00Z".parse().unwrap()
}

fn rsa_a() -> EncodingKey {
    EncodingKey::from_rsa_pem(RSA_A).unwrap()
}

fn rsa_b() -> EncodingKey {
    EncodingKey::from_rsa_pem(RSA_B).unwrap()
}

fn ec() -> EncodingKey {
    EncodingKey::from_ec_pem(EC).unwrap()
}

fn jwk(key: &EncodingKey, alg: Algorithm, kid: &str) -> Jwk {
    let mut jwk = Jwk::from_encoding_key(key, alg).unwrap();
    jwk.common.key_id = Some(kid.to_owned());
    jwk
}

/// The public key set: RSA key A (`rsa-a`) and the P-256 key (`ec-1`); key B is not in it
/// unless asked for (rotation).
fn key_set(with_b: bool) -> String {
    let mut keys = vec![
        jwk(&rsa_a(), Algorithm::RS256, "rsa-a"),
        jwk(&ec(), Algorithm::ES256, "ec-1"),
    ];
    if with_b {
        keys.push(jwk(&rsa_b(), Algorithm::RS256, "rsa-b"));
    }
    let mut document = serde_json::to_value(JwkSet { keys }).unwrap();
    // A symmetric key in the set must never be used, whatever the token says.
    document["keys"].as_array_mut().unwrap().push(json!({
        "kty": "oct", "kid": "hmac", "k": URL_SAFE_NO_PAD.encode(b"shared secret")
    }));
    document.to_string()
}

fn claims() -> Value {
    let t = now().as_second();
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": SUBJECT,
        "repository": "octo/hello",
        "repository_owner": "octo",
        "ref": "refs/heads/main",
        "run_id": 42,
        "iat": t - 10,
        "nbf": t - 10,
        "exp": t + 300,
    })
}

fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn rs256(claims: &Value) -> String {
    sign(Algorithm::RS256, Some("rsa-a"), &rsa_a(), claims)
}

fn rules() -> Vec<ClaimRule> {
    vec![
        ClaimRule {
            claim: "repository".into(),
            equals: "octo/hello".into(),
            grant: "ingest@acme/payments".parse().unwrap(),
        },
        ClaimRule {
            claim: "repository_owner".into(),
            equals: "octo".into(),
            grant: "developer@acme".parse().unwrap(),
        },
        ClaimRule {
            claim: "repository".into(),
            equals: "octo/other".into(),
            grant: "admin@acme".parse().unwrap(),
        },
        ClaimRule {
            claim: "run_id".into(),
            equals: "42".into(),
            grant: "admin@acme".parse().unwrap(),
        },
    ]
}

fn provider(jwks: JwksSource) -> OidcProvider {
    OidcProvider {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        jwks,
        rules: rules(),
        leeway_secs: 60,
    }
}

/// A verifier reading the key set from a file (kept alive by the returned directory).
fn file_verifier() -> (OidcVerifier, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, key_set(false)).unwrap();
    let gitlab = OidcProvider {
        issuer: "https://gitlab.com".into(),
        audience: AUDIENCE.into(),
        jwks: JwksSource::File(path.clone()),
        rules: vec![ClaimRule {
            claim: "project_path".into(),
            equals: "octo/hello".into(),
            grant: "ingest@acme/web".parse().unwrap(),
        }],
        leeway_secs: 0,
    };
    let verifier = OidcVerifier::new(vec![provider(JwksSource::File(path)), gitlab]).unwrap();
    (verifier, dir)
}

fn oidc_err(result: Result<trailmark_access::Principal, AccessError>) -> OidcError {
    match result {
        Err(AccessError::Oidc(e)) => e,
        other => panic!("expected an OIDC error, got {other:?}"),
    }
}

#[test]
fn valid_rs256_token() {
    let (verifier, _dir) = file_verifier();
    let p = verifier.verify(&rs256(&claims()), now()).unwrap();
    assert_eq!(p.id, format!("oidc:{ISSUER}#{SUBJECT}"));
    assert_eq!(p.kind, PrincipalKind::Workload);
    assert!(!p.is_person());
    assert_eq!(p.person, None);
    // Both matching rules, sorted; not the rule for another repository, and not the rule on
    // `run_id`, whose value is a number, not a string.
    let expected: Vec<Grant> = vec![
        "developer@acme".parse().unwrap(),
        "ingest@acme/payments".parse().unwrap(),
    ];
    assert_eq!(p.grants, expected);
}

#[test]
fn valid_es256_token() {
    let (verifier, _dir) = file_verifier();
    let jwt = sign(Algorithm::ES256, Some("ec-1"), &ec(), &claims());
    let p = verifier.verify(&jwt, now()).unwrap();
    assert_eq!(p.id, format!("oidc:{ISSUER}#{SUBJECT}"));
}

#[test]
fn second_provider_and_its_rules() {
    let (verifier, _dir) = file_verifier();
    let mut c = claims();
    c["iss"] = json!("https://gitlab.com");
    c["sub"] = json!("project_path:octo/hello:ref_type:branch:ref:main");
    c["project_path"] = json!("octo/hello");
    let p = verifier.verify(&rs256(&c), now()).unwrap();
    assert_eq!(
        p.id,
        "oidc:https://gitlab.com#project_path:octo/hello:ref_type:branch:ref:main"
    );
    assert_eq!(p.grants, ["ingest@acme/web".parse::<Grant>().unwrap()]);
}

#[test]
fn wrong_issuer() {
    let (verifier, _dir) = file_verifier();
    let mut c = claims();
    c["iss"] = json!("https://evil.example");
    let e = oidc_err(verifier.verify(&rs256(&c), now()));
    assert_eq!(
        e,
        OidcError::WrongIssuer {
            issuer: "https://evil.example".into()
        }
    );
    // Issuer comparison is exact.
    c["iss"] = json!(format!("{ISSUER}/"));
    assert!(matches!(
        oidc_err(verifier.verify(&rs256(&c), now())),
        OidcError::WrongIssuer { .. }
    ));
}

#[test]
fn audience() {
    let (verifier, _dir) = file_verifier();
    let mut c = claims();
    c["aud"] = json!("https://other.example");
    assert!(matches!(
        oidc_err(verifier.verify(&rs256(&c), now())),
        OidcError::WrongAudience { .. }
    ));
    c.as_object_mut().unwrap().remove("aud");
    assert!(matches!(
        oidc_err(verifier.verify(&rs256(&c), now())),
        OidcError::WrongAudience { .. }
    ));
    // An array containing ours is fine.
    c["aud"] = json!(["https://other.example", AUDIENCE]);
    verifier.verify(&rs256(&c), now()).unwrap();
}

#[test]
fn expired_with_leeway() {
    let (verifier, _dir) = file_verifier();
    let t = now().as_second();
    let mut c = claims();
    c["exp"] = json!(t - 30);
    verifier.verify(&rs256(&c), now()).unwrap(); // within the 60 s leeway
    c["exp"] = json!(t - 61);
    assert_eq!(
        oidc_err(verifier.verify(&rs256(&c), now())),
        OidcError::Expired {
            issuer: ISSUER.into(),
            expired_at: Timestamp::from_second(t - 61).unwrap()
        }
    );
    // The caller's clock decides, not the machine's.
    let valid_now = claims();
    let later = now() + SignedDuration::from_hours(1);
    assert!(matches!(
        oidc_err(verifier.verify(&rs256(&valid_now), later)),
        OidcError::Expired { .. }
    ));
    // No expiry at all is refused.
    c.as_object_mut().unwrap().remove("exp");
    assert!(matches!(
        oidc_err(verifier.verify(&rs256(&c), now())),
        OidcError::Malformed { .. }
    ));
}

#[test]
fn not_yet_valid() {
    let (verifier, _dir) = file_verifier();
    let t = now().as_second();
    let mut c = claims();
    c["nbf"] = json!(t + 30);
    verifier.verify(&rs256(&c), now()).unwrap(); // within the leeway
    c["nbf"] = json!(t + 120);
    assert_eq!(
        oidc_err(verifier.verify(&rs256(&c), now())),
        OidcError::NotYetValid {
            issuer: ISSUER.into(),
            valid_from: Timestamp::from_second(t + 120).unwrap()
        }
    );
    let mut c = claims();
    c["iat"] = json!(t + 120);
    assert!(matches!(
        oidc_err(verifier.verify(&rs256(&c), now())),
        OidcError::NotYetValid { .. }
    ));
    let mut c = claims();
    c["nbf"] = json!("soon");
    assert!(matches!(
        oidc_err(verifier.verify(&rs256(&c), now())),
        OidcError::Malformed { .. }
    ));
}

#[test]
fn bad_signature() {
    let (verifier, _dir) = file_verifier();
    // Signed by key B but claiming to be key A.
    let forged = sign(Algorithm::RS256, Some("rsa-a"), &rsa_b(), &claims());
    assert_eq!(
        oidc_err(verifier.verify(&forged, now())),
        OidcError::BadSignature {
            issuer: ISSUER.into()
        }
    );
    // A genuine token whose claims were edited afterwards.
    let genuine = rs256(&claims());
    let parts: Vec<&str> = genuine.split('.').collect();
    let mut edited = claims();
    edited["repository"] = json!("octo/other");
    let edited = URL_SAFE_NO_PAD.encode(edited.to_string());
    let tampered = format!("{}.{edited}.{}", parts[0], parts[2]);
    assert!(matches!(
        oidc_err(verifier.verify(&tampered, now())),
        OidcError::BadSignature { .. }
    ));
    // An ES256 token whose signature is from another key is refused the same way.
    let mut es = sign(Algorithm::ES256, Some("ec-1"), &ec(), &claims());
    let other = sign(
        Algorithm::ES256,
        Some("ec-1"),
        &ec(),
        &json!({"iss": ISSUER}),
    );
    es.truncate(es.rfind('.').unwrap());
    es.push_str(&other[other.rfind('.').unwrap()..]);
    assert!(matches!(
        oidc_err(verifier.verify(&es, now())),
        OidcError::BadSignature { .. }
    ));
}

#[test]
fn unknown_kid() {
    let (verifier, _dir) = file_verifier();
    let jwt = sign(Algorithm::RS256, Some("rsa-b"), &rsa_b(), &claims());
    assert_eq!(
        oidc_err(verifier.verify(&jwt, now())),
        OidcError::UnknownKey {
            issuer: ISSUER.into(),
            kid: Some("rsa-b".into())
        }
    );
    // Without a kid, a set with several keys cannot say which one is meant.
    let jwt = sign(Algorithm::RS256, None, &rsa_a(), &claims());
    assert!(matches!(
        oidc_err(verifier.verify(&jwt, now())),
        OidcError::UnknownKey { kid: None, .. }
    ));
}

#[test]
fn alg_none_is_refused() {
    let (verifier, _dir) = file_verifier();
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"rsa-a","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims().to_string());
    for jwt in [
        format!("{header}.{payload}."),
        format!("{header}.{payload}.AAAA"),
    ] {
        assert_eq!(
            oidc_err(verifier.verify(&jwt, now())),
            OidcError::UnsupportedAlgorithm { alg: "none".into() }
        );
    }
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"None","kid":"rsa-a"}"#);
    assert!(matches!(
        oidc_err(verifier.verify(&format!("{header}.{payload}."), now())),
        OidcError::UnsupportedAlgorithm { .. }
    ));
}

#[test]
fn hmac_with_the_public_key_as_secret_is_refused() {
    let (verifier, _dir) = file_verifier();
    // The classic algorithm confusion: HS256 keyed with the RSA public key an attacker can
    // download, naming the RSA key's kid.
    for (alg, kid) in [
        (Algorithm::HS256, "rsa-a"),
        (Algorithm::HS384, "rsa-a"),
        (Algorithm::HS512, "rsa-a"),
        (Algorithm::HS256, "hmac"),
    ] {
        let jwt = sign(
            alg,
            Some(kid),
            &EncodingKey::from_secret(RSA_A_PUBLIC),
            &claims(),
        );
        assert!(
            matches!(
                oidc_err(verifier.verify(&jwt, now())),
                OidcError::UnsupportedAlgorithm { .. }
            ),
            "{alg:?} {kid}"
        );
    }
    // Even the symmetric key the set really contains is never used.
    let jwt = sign(
        Algorithm::HS256,
        Some("hmac"),
        &EncodingKey::from_secret(b"shared secret"),
        &claims(),
    );
    assert!(matches!(
        oidc_err(verifier.verify(&jwt, now())),
        OidcError::UnsupportedAlgorithm { .. }
    ));
}

#[test]
fn key_type_must_fit_the_algorithm() {
    let (verifier, _dir) = file_verifier();
    // RS256 header naming the EC key, and ES256 naming an RSA key.
    let jwt = sign(Algorithm::RS256, Some("ec-1"), &rsa_a(), &claims());
    assert!(matches!(
        oidc_err(verifier.verify(&jwt, now())),
        OidcError::UnsupportedAlgorithm { .. }
    ));
    let jwt = sign(Algorithm::ES256, Some("rsa-a"), &ec(), &claims());
    assert!(matches!(
        oidc_err(verifier.verify(&jwt, now())),
        OidcError::UnsupportedAlgorithm { .. }
    ));
    // The key states RS256; a PS256 token with it is refused even though the key type fits.
    let jwt = sign(Algorithm::PS256, Some("rsa-a"), &rsa_a(), &claims());
    assert!(matches!(
        oidc_err(verifier.verify(&jwt, now())),
        OidcError::UnsupportedAlgorithm { .. }
    ));
}

#[test]
fn no_rule_matched() {
    let (verifier, _dir) = file_verifier();
    let mut c = claims();
    c["repository"] = json!("mallory/evil");
    c["repository_owner"] = json!("mallory");
    assert_eq!(
        oidc_err(verifier.verify(&rs256(&c), now())),
        OidcError::NoRuleMatched {
            issuer: ISSUER.into(),
            subject: SUBJECT.into()
        }
    );
    // A claim value that is not a string never matches, even if it "looks" equal.
    c["repository"] = json!(["octo/hello"]);
    c["repository_owner"] = json!({"name": "octo"});
    let err = verifier.verify(&rs256(&c), now()).unwrap_err();
    assert!(matches!(
        err,
        AccessError::Oidc(OidcError::NoRuleMatched { .. })
    ));
    assert!(err.is_client_error());
}

#[test]
fn malformed_tokens() {
    let (verifier, _dir) = file_verifier();
    let good = rs256(&claims());
    let parts: Vec<&str> = good.split('.').collect();
    let no_sub = {
        let mut c = claims();
        c.as_object_mut().unwrap().remove("sub");
        rs256(&c)
    };
    for jwt in [
        "".to_owned(),
        "abc".to_owned(),
        "a.b".to_owned(),
        format!("{good}.extra"),
        format!("!!.{}.{}", parts[1], parts[2]),
        format!("{}.!!.{}", parts[0], parts[2]),
        format!("{}.{}.", URL_SAFE_NO_PAD.encode("[1]"), parts[1]),
        format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode("\"str\""),
            parts[2]
        ),
        format!("{}.{}!.{}", parts[0], parts[1], parts[2]),
        "x".repeat(20_000),
        no_sub,
    ] {
        let err = verifier.verify(&jwt, now()).unwrap_err();
        assert!(
            matches!(err, AccessError::Oidc(OidcError::Malformed { .. })),
            "{}: {err}",
            jwt.get(..40).unwrap_or(&jwt)
        );
        // The token is a credential: errors do not repeat it.
        if jwt.len() > 20 {
            assert!(!err.to_string().contains(&jwt[..20]));
        }
    }
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"rsa-a","crit":["exp"]}"#);
    assert!(matches!(
        oidc_err(verifier.verify(&format!("{header}.{}.{}", parts[1], parts[2]), now())),
        OidcError::Malformed { .. }
    ));
}

#[test]
fn configuration_is_checked() {
    let url = |u: &str| provider(JwksSource::Url(u.into()));
    for ok in [
        "https://token.actions.githubusercontent.com/.well-known/jwks",
        "http://127.0.0.1:8080/jwks",
        "http://localhost/jwks",
        "http://[::1]:1/",
    ] {
        OidcVerifier::new(vec![url(ok)]).unwrap();
    }
    for bad in [
        "http://example.com/jwks",
        "http://127.0.0.1.evil.example/",
        "ftp://x",
        "jwks",
    ] {
        let err = OidcVerifier::new(vec![url(bad)]).unwrap_err();
        assert!(matches!(err, AccessError::OidcConfig(_)), "{bad}");
        assert!(!err.is_client_error());
    }
    let twice = OidcVerifier::new(vec![url("https://a/"), url("https://b/")]).unwrap_err();
    assert!(twice.to_string().contains("configured twice"), "{twice}");
    let mut empty = url("https://a/");
    empty.audience.clear();
    assert!(OidcVerifier::new(vec![empty]).is_err());

    // Well-known providers, and the serde form a server configuration would use.
    let gh = OidcProvider::github_actions(AUDIENCE);
    assert_eq!(gh.issuer, ISSUER);
    OidcVerifier::new(vec![gh, OidcProvider::gitlab_com(AUDIENCE)]).unwrap();
    let parsed: OidcProvider = serde_json::from_value(json!({
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "jwks": {"url": "https://token.actions.githubusercontent.com/.well-known/jwks"},
        "rules": [{"claim": "repository", "equals": "octo/hello",
                   "grant": {"role": "ingest", "scope": "acme/payments"}}]
    }))
    .unwrap();
    assert_eq!(parsed.leeway_secs, 60);
    assert_eq!(
        parsed.rules[0].grant,
        "ingest@acme/payments".parse().unwrap()
    );
}

#[test]
fn missing_key_file_is_an_environment_error() {
    let dir = tempfile::tempdir().unwrap();
    let verifier = OidcVerifier::new(vec![provider(JwksSource::File(
        dir.path().join("absent.json"),
    ))])
    .unwrap();
    let err = verifier.verify(&rs256(&claims()), now()).unwrap_err();
    assert!(
        matches!(err, AccessError::Oidc(OidcError::Jwks { .. })),
        "{err}"
    );
    assert!(!err.is_client_error());
}

/// Serves the current key set over HTTP on 127.0.0.1, counting requests. Stops (and joins
/// its thread) when dropped; serves at most 100 connections in any case.
struct JwksServer {
    addr: SocketAddr,
    body: Arc<Mutex<String>>,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl JwksServer {
    fn start(body: String) -> JwksServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let body = Arc::new(Mutex::new(body));
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (body, requests, stop) = (body.clone(), requests.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming().take(100) {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    requests.fetch_add(1, Ordering::SeqCst);
                    let body = body.lock().unwrap().clone();
                    let _ = respond(stream, &body);
                }
            })
        };
        JwksServer {
            addr,
            body,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://{}/.well-known/jwks", self.addr)
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

fn respond(stream: TcpStream, body: &str) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    // Read the request head up to the empty line.
    while reader.read_line(&mut line)? > 0 && line != "\r\n" {
        line.clear();
    }
    let mut stream = reader.into_inner();
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept so the thread sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn key_set_over_http_is_cached_and_refetched_for_unknown_kids_once_a_minute() {
    let server = JwksServer::start(key_set(false));
    let verifier = OidcVerifier::new(vec![provider(JwksSource::Url(server.url()))]).unwrap();
    assert_eq!(
        server.requests(),
        0,
        "nothing is fetched before the first token"
    );

    verifier.verify(&rs256(&claims()), now()).unwrap();
    assert_eq!(server.requests(), 1);
    let es = sign(Algorithm::ES256, Some("ec-1"), &ec(), &claims());
    verifier.verify(&es, now()).unwrap();
    assert_eq!(server.requests(), 1, "known keys come from the cache");

    // The issuer rotates in key B. Within the minute after the last fetch, an unknown kid
    // does not cause another fetch.
    *server.body.lock().unwrap() = key_set(true);
    let rotated = sign(Algorithm::RS256, Some("rsa-b"), &rsa_b(), &claims());
    let soon = now() + SignedDuration::from_secs(30);
    assert!(matches!(
        oidc_err(verifier.verify(&rotated, soon)),
        OidcError::UnknownKey { .. }
    ));
    assert_eq!(server.requests(), 1);

    // A minute later it does, and the new key verifies.
    let later = now() + SignedDuration::from_secs(61);
    let p = verifier.verify(&rotated, later).unwrap();
    assert_eq!(p.id, format!("oidc:{ISSUER}#{SUBJECT}"));
    assert_eq!(server.requests(), 2);
    // Then it is cached, and a still-unknown kid waits for the next minute.
    verifier.verify(&rotated, later).unwrap();
    let bogus = sign(Algorithm::RS256, Some("nope"), &rsa_b(), &claims());
    assert!(matches!(
        oidc_err(verifier.verify(&bogus, later)),
        OidcError::UnknownKey { .. }
    ));
    assert_eq!(server.requests(), 2);

    // The endpoint breaks. A refresh for an unknown kid reports that (an environment error),
    // but the keys already known keep working.
    *server.body.lock().unwrap() = "<html>maintenance</html>".into();
    let much_later = later + SignedDuration::from_secs(61);
    let err = verifier.verify(&bogus, much_later).unwrap_err();
    assert!(
        matches!(err, AccessError::Oidc(OidcError::Jwks { .. })),
        "{err}"
    );
    assert_eq!(server.requests(), 3);
    let mut fresh = claims();
    fresh["exp"] = json!(much_later.as_second() + 300);
    verifier.verify(&rs256(&fresh), much_later).unwrap();
    verifier
        .verify(
            &sign(Algorithm::RS256, Some("rsa-b"), &rsa_b(), &fresh),
            much_later,
        )
        .unwrap();
    assert_eq!(server.requests(), 3);
}

#[test]
fn unreachable_key_set_is_an_environment_error() {
    // A port that was just free: nothing listens there.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let verifier = OidcVerifier::new(vec![provider(JwksSource::Url(format!(
        "http://{addr}/jwks"
    )))])
    .unwrap();
    let err = verifier.verify(&rs256(&claims()), now()).unwrap_err();
    assert!(
        matches!(err, AccessError::Oidc(OidcError::Jwks { .. })),
        "{err}"
    );
    assert!(!err.is_client_error());
    // Not retried within the minute (no hammering a broken endpoint), but reported the same.
    let again = verifier.verify(&rs256(&claims()), now()).unwrap_err();
    assert!(
        matches!(again, AccessError::Oidc(OidcError::Jwks { .. })),
        "{again}"
    );

    // A server that answers with something that is not a key set.
    let server = JwksServer::start("<html>not json</html>".into());
    let verifier = OidcVerifier::new(vec![provider(JwksSource::Url(server.url()))]).unwrap();
    let err = verifier.verify(&rs256(&claims()), now()).unwrap_err();
    assert!(
        matches!(err, AccessError::Oidc(OidcError::Jwks { .. })),
        "{err}"
    );
}
