//! CI workload identities: OIDC identity tokens (JWTs) from GitHub Actions, GitLab `id_tokens`
//! and similar issuers, verified against the issuer's published keys (JWKS) and turned into a
//! [`Principal`] by claim rules.
//!
//! Checks, in order: the `alg` header is an asymmetric signature algorithm (RS*, PS*, ES256,
//! ES384: never `none`, never HMAC, whose "secret" an attacker would take from the public key);
//! the issuer is configured; its key set has the `kid`; the signature verifies with that key
//! (whose type and curve must fit `alg`); the audience includes the configured one; `exp`,
//! `nbf` and `iat` fit the caller's clock within the leeway; at least one claim rule matches.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::{SignedDuration, Timestamp};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use crate::error::{AccessError, OidcError};
use crate::principal::{Principal, PrincipalKind};
use crate::role::Grant;

/// Algorithms accepted in the `alg` header. Everything else (including `none` and `HS*`) is
/// refused before any key is looked at.
const ACCEPTED: [&str; 8] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
];
/// A key set is fetched again (for an unknown `kid`, or after a failure) at most this often.
const REFETCH_AFTER: SignedDuration = SignedDuration::from_secs(60);
/// Identity tokens are a few KiB; anything much larger is not one.
const MAX_JWT_BYTES: usize = 16 * 1024;
/// Key sets are a few KiB; this bounds what a misbehaving endpoint can make us hold.
const MAX_JWKS_BYTES: u64 = 1024 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_LEEWAY_SECS: u64 = 60;

/// One trusted issuer of identity tokens.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcProvider {
    /// The exact `iss` claim, e.g. `https://token.actions.githubusercontent.com`.
    pub issuer: String,
    /// The `aud` value tokens must carry for this server (GitHub: the `audience` input of
    /// `getIDToken`; GitLab: the `aud` of the `id_tokens` entry).
    pub audience: String,
    /// Where the issuer's public keys are.
    pub jwks: JwksSource,
    /// Which identities get which grants.
    pub rules: Vec<ClaimRule>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
}

fn default_leeway() -> u64 {
    DEFAULT_LEEWAY_SECS
}

impl OidcProvider {
    /// GitHub Actions (`token.actions.githubusercontent.com`), 60 s leeway, no rules yet.
    pub fn github_actions(audience: &str) -> OidcProvider {
        OidcProvider {
            issuer: "https://token.actions.githubusercontent.com".to_owned(),
            audience: audience.to_owned(),
            jwks: JwksSource::Url(
                "https://token.actions.githubusercontent.com/.well-known/jwks".to_owned(),
            ),
            rules: Vec::new(),
            leeway_secs: DEFAULT_LEEWAY_SECS,
        }
    }

    /// GitLab.com `id_tokens` (issuer `https://gitlab.com`), 60 s leeway, no rules yet.
    pub fn gitlab_com(audience: &str) -> OidcProvider {
        OidcProvider {
            issuer: "https://gitlab.com".to_owned(),
            audience: audience.to_owned(),
            jwks: JwksSource::Url("https://gitlab.com/oauth/discovery/keys".to_owned()),
            rules: Vec::new(),
            leeway_secs: DEFAULT_LEEWAY_SECS,
        }
    }
}

/// Where an issuer's JSON Web Key Set comes from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JwksSource {
    /// A local file (air-gapped setups, self-hosted issuers, tests).
    File(PathBuf),
    /// An `https://` URL (plain `http://` only for loopback addresses).
    Url(String),
}

impl fmt::Display for JwksSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwksSource::File(path) => write!(f, "{}", path.display()),
            JwksSource::Url(url) => f.write_str(url),
        }
    }
}

/// Grants `grant` to identities whose claim `claim` is the string `equals` (e.g. `repository`
/// = `octo/hello` → ingest on `acme/payments`). A claim that is missing or not a string never
/// matches.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimRule {
    pub claim: String,
    pub equals: String,
    pub grant: Grant,
}

impl ClaimRule {
    fn matches(&self, claims: &Map<String, Value>) -> bool {
        matches!(claims.get(&self.claim), Some(Value::String(v)) if *v == self.equals)
    }
}

/// Verifies identity tokens from the configured providers. Key sets are loaded on first use
/// and cached; shareable across threads.
#[derive(Debug)]
pub struct OidcVerifier {
    providers: Vec<ProviderState>,
}

#[derive(Debug)]
struct ProviderState {
    config: OidcProvider,
    cache: Mutex<KeyCache>,
}

#[derive(Default)]
struct KeyCache {
    keys: Vec<CachedKey>,
    /// Last load attempt (successful or not), by the callers' clock.
    attempted_at: Option<Timestamp>,
    /// Why the last attempt failed, while no keys could ever be loaded.
    last_error: Option<OidcError>,
    loaded: bool,
}

impl fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyCache")
            .field(
                "kids",
                &self.keys.iter().map(|k| &k.kid).collect::<Vec<_>>(),
            )
            .field("attempted_at", &self.attempted_at)
            .field("loaded", &self.loaded)
            .finish()
    }
}

struct CachedKey {
    kid: Option<String>,
    /// The key's own `alg`, if the key set states one.
    alg: Option<String>,
    curve: Option<EllipticCurve>,
    key: DecodingKey,
}

impl OidcVerifier {
    /// Checks the configuration: issuers non-empty and distinct, audiences non-empty, key set
    /// URLs `https://` (or `http://` to a loopback address).
    pub fn new(providers: Vec<OidcProvider>) -> Result<OidcVerifier, AccessError> {
        let mut states: Vec<ProviderState> = Vec::with_capacity(providers.len());
        for p in providers {
            let config_error = |m: String| Err(AccessError::OidcConfig(m));
            if p.issuer.is_empty() {
                return config_error("a provider has an empty issuer".to_owned());
            }
            if p.audience.is_empty() {
                return config_error(format!("provider {} has an empty audience", p.issuer));
            }
            if states.iter().any(|s| s.config.issuer == p.issuer) {
                return config_error(format!("issuer {} is configured twice", p.issuer));
            }
            if let JwksSource::Url(url) = &p.jwks
                && !url.starts_with("https://")
                && !is_loopback_http(url)
            {
                return config_error(format!(
                    "the key set URL of {} must be https:// (plain http only for loopback): {url}",
                    p.issuer
                ));
            }
            states.push(ProviderState {
                config: p,
                cache: Mutex::new(KeyCache::default()),
            });
        }
        Ok(OidcVerifier { providers: states })
    }

    /// The configured providers.
    pub fn providers(&self) -> impl Iterator<Item = &OidcProvider> {
        self.providers.iter().map(|p| &p.config)
    }

    /// Loads every provider's key set now, so a server can refuse to start with a missing
    /// file or an unreachable URL instead of failing the first CI job. Counts as a fetch for
    /// the once-a-minute limit.
    pub fn load_keys(&self, now: Timestamp) -> Result<(), AccessError> {
        for provider in &self.providers {
            let mut cache = provider
                .cache
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            provider.reload(&mut cache, now)?;
        }
        Ok(())
    }

    /// Verifies `jwt` at time `now` and returns the workload principal
    /// `oidc:<iss>#<sub>` with the grants of every matching rule.
    ///
    /// May fetch the issuer's key set (blocking, up to 10 s): on first use, and when a token
    /// names an unknown `kid` (key rotation), at most once a minute by `now`.
    pub fn verify(&self, jwt: &str, now: Timestamp) -> Result<Principal, AccessError> {
        Ok(self.verify_inner(jwt, now)?)
    }

    /// Verifies a token (signature, issuer, audience, times: everything but the claim rules)
    /// and returns its claims: for a web sign-in, which maps a claim to a local user and checks
    /// its own nonce.
    pub fn verify_claims(
        &self,
        jwt: &str,
        now: Timestamp,
    ) -> Result<Map<String, Value>, AccessError> {
        Ok(self.verified(jwt, now)?.1)
    }

    fn verify_inner(&self, jwt: &str, now: Timestamp) -> Result<Principal, OidcError> {
        let (provider, claims) = self.verified(jwt, now)?;
        let config = &provider.config;
        let malformed = |reason: &str| OidcError::Malformed {
            reason: reason.to_owned(),
        };
        let subject = match claims.get("sub") {
            Some(Value::String(sub)) if !sub.is_empty() => sub.clone(),
            _ => return Err(malformed("the claims have no \"sub\" string")),
        };

        let mut grants: Vec<Grant> = config
            .rules
            .iter()
            .filter(|r| r.matches(&claims))
            .map(|r| r.grant.clone())
            .collect();
        grants.sort();
        grants.dedup();
        if grants.is_empty() {
            return Err(OidcError::NoRuleMatched {
                issuer: config.issuer.clone(),
                subject,
            });
        }
        Ok(Principal {
            id: format!("oidc:{}#{subject}", config.issuer),
            kind: PrincipalKind::Workload,
            grants,
            person: None,
        })
    }

    fn verified(
        &self,
        jwt: &str,
        now: Timestamp,
    ) -> Result<(&ProviderState, Map<String, Value>), OidcError> {
        let malformed = |reason: &str| OidcError::Malformed {
            reason: reason.to_owned(),
        };
        if jwt.len() > MAX_JWT_BYTES {
            return Err(malformed("longer than 16 KiB"));
        }
        let parts: Vec<&str> = jwt.split('.').collect();
        let [header_b64, claims_b64, _signature] = parts.as_slice() else {
            return Err(malformed(
                "not three '.'-separated parts (JWS compact form)",
            ));
        };
        let header = decode_json_part(header_b64, "header")?;
        let alg_text = match header.get("alg") {
            Some(Value::String(alg)) => alg.as_str(),
            _ => return Err(malformed("the header has no \"alg\" string")),
        };
        if !ACCEPTED.contains(&alg_text) {
            return Err(OidcError::UnsupportedAlgorithm {
                alg: alg_text.to_owned(),
            });
        }
        let alg = Algorithm::from_str(alg_text).map_err(|_| OidcError::UnsupportedAlgorithm {
            alg: alg_text.to_owned(),
        })?;
        if header.contains_key("crit") {
            // RFC 7515 §4.1.11: critical extensions we do not implement must be refused.
            return Err(malformed("the header has critical extensions (\"crit\")"));
        }
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(kid)) => Some(kid.as_str()),
            Some(_) => return Err(malformed("the \"kid\" header is not a string")),
        };

        // The unverified issuer only chooses whose keys to verify with; every claim used below
        // comes from the verified token.
        let unverified = decode_json_part(claims_b64, "claims")?;
        let issuer = match unverified.get("iss") {
            Some(Value::String(iss)) => iss,
            _ => return Err(malformed("the claims have no \"iss\" string")),
        };
        let provider = self
            .providers
            .iter()
            .find(|p| p.config.issuer == *issuer)
            .ok_or_else(|| OidcError::WrongIssuer {
                issuer: crate::error::quoted(issuer),
            })?;
        let config = &provider.config;
        let key = provider.key_for(kid, alg, alg_text, now)?;

        let mut validation = Validation::new(alg);
        // Times, issuer and audience are checked below against the caller's clock and with
        // typed errors; the library checks only the signature here.
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        let claims = jsonwebtoken::decode::<Map<String, Value>>(jwt, &key, &validation)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature => OidcError::BadSignature {
                    issuer: config.issuer.clone(),
                },
                ErrorKind::InvalidAlgorithm | ErrorKind::UnsupportedAlgorithm => {
                    OidcError::UnsupportedAlgorithm {
                        alg: alg_text.to_owned(),
                    }
                }
                ErrorKind::InvalidRsaKey(_)
                | ErrorKind::InvalidEcdsaKey
                | ErrorKind::InvalidKeyFormat => OidcError::Jwks {
                    issuer: config.issuer.clone(),
                    source_name: config.jwks.to_string(),
                    reason: format!("key {kid:?} is not a valid {alg_text} public key"),
                },
                _ => malformed("the signature or claims do not decode"),
            })?
            .claims;

        if claims.get("iss").and_then(Value::as_str) != Some(config.issuer.as_str()) {
            // Cannot differ from the unverified claims (same bytes); checked anyway so the
            // issuer decision visibly rests on verified data.
            return Err(OidcError::WrongIssuer {
                issuer: crate::error::quoted(issuer),
            });
        }
        if !audience_contains(claims.get("aud"), &config.audience) {
            return Err(OidcError::WrongAudience {
                issuer: config.issuer.clone(),
                expected: config.audience.clone(),
            });
        }
        check_times(&claims, config, now)?;
        Ok((provider, claims))
    }
}

fn is_loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    ["127.0.0.1", "localhost", "[::1]"].iter().any(|host| {
        rest.strip_prefix(host)
            .is_some_and(|after| after.is_empty() || after.starts_with([':', '/']))
    })
}

fn decode_json_part(part: &str, what: &str) -> Result<Map<String, Value>, OidcError> {
    let malformed = || OidcError::Malformed {
        reason: format!("the {what} is not base64url-encoded JSON object"),
    };
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| malformed())?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(malformed()),
    }
}

fn audience_contains(aud: Option<&Value>, expected: &str) -> bool {
    match aud {
        Some(Value::String(aud)) => aud == expected,
        Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(expected)),
        _ => false,
    }
}

/// A NumericDate claim in whole seconds; `None` when absent, an error when not a number.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, OidcError> {
    let Some(value) = claims.get(name) else {
        return Ok(None);
    };
    let seconds = value
        .as_i64()
        .or_else(|| {
            value
                .as_f64()
                .filter(|f| f.is_finite() && f.abs() < 1e15)
                // Within ±1e15 the cast is exact enough and cannot saturate.
                .map(|f| f.floor() as i64)
        })
        .ok_or_else(|| OidcError::Malformed {
            reason: format!("the \"{name}\" claim is not a number of seconds"),
        })?;
    Ok(Some(seconds))
}

fn timestamp(seconds: i64) -> Timestamp {
    Timestamp::from_second(seconds).unwrap_or(if seconds < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

fn check_times(
    claims: &Map<String, Value>,
    config: &OidcProvider,
    now: Timestamp,
) -> Result<(), OidcError> {
    let now = now.as_second();
    let leeway = i64::try_from(config.leeway_secs).unwrap_or(i64::MAX);
    let exp = numeric_date(claims, "exp")?.ok_or_else(|| OidcError::Malformed {
        reason: "the claims have no \"exp\" (tokens without expiry are refused)".to_owned(),
    })?;
    if now >= exp.saturating_add(leeway) {
        return Err(OidcError::Expired {
            issuer: config.issuer.clone(),
            expired_at: timestamp(exp),
        });
    }
    for name in ["nbf", "iat"] {
        if let Some(t) = numeric_date(claims, name)?
            && t > now.saturating_add(leeway)
        {
            return Err(OidcError::NotYetValid {
                issuer: config.issuer.clone(),
                valid_from: timestamp(t),
            });
        }
    }
    Ok(())
}

impl ProviderState {
    fn key_for(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
        alg_text: &str,
        now: Timestamp,
    ) -> Result<DecodingKey, OidcError> {
        // Recovering from poisoning is safe: the cache is replaced whole or not at all.
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let may_fetch = |cache: &KeyCache| match cache.attempted_at {
            None => true,
            // A clock that went backwards must not stop refreshes for good.
            Some(at) => now < at || now.duration_since(at) >= REFETCH_AFTER,
        };
        if !cache.loaded {
            if !may_fetch(&cache) {
                return Err(cache.last_error.clone().unwrap_or_else(|| {
                    self.jwks_error("the last attempt failed less than a minute ago".to_owned())
                }));
            }
            self.reload(&mut cache, now)?;
        }
        if let Some(key) = find_key(&cache.keys, kid) {
            return self.usable(key, alg, alg_text);
        }
        // An unknown kid usually means the issuer rotated its keys. If the refresh fails, that
        // (an environment error) is the answer rather than "unknown key".
        if may_fetch(&cache) {
            self.reload(&mut cache, now)?;
            if let Some(key) = find_key(&cache.keys, kid) {
                return self.usable(key, alg, alg_text);
            }
        }
        Err(OidcError::UnknownKey {
            issuer: self.config.issuer.clone(),
            kid: kid.map(crate::error::quoted),
        })
    }

    fn usable(
        &self,
        key: &CachedKey,
        alg: Algorithm,
        alg_text: &str,
    ) -> Result<DecodingKey, OidcError> {
        let unsupported = || OidcError::UnsupportedAlgorithm {
            alg: alg_text.to_owned(),
        };
        if key.alg.as_deref().is_some_and(|a| a != alg_text) {
            return Err(unsupported());
        }
        if key.key.family() != alg.family() {
            return Err(unsupported());
        }
        let curve_fits = match (alg, key.curve.as_ref()) {
            (Algorithm::ES256, Some(EllipticCurve::P256))
            | (Algorithm::ES384, Some(EllipticCurve::P384)) => true,
            (Algorithm::ES256 | Algorithm::ES384, _) => false,
            _ => true,
        };
        if !curve_fits {
            return Err(unsupported());
        }
        Ok(key.key.clone())
    }

    fn jwks_error(&self, reason: String) -> OidcError {
        OidcError::Jwks {
            issuer: self.config.issuer.clone(),
            source_name: self.config.jwks.to_string(),
            reason,
        }
    }

    fn reload(&self, cache: &mut KeyCache, now: Timestamp) -> Result<(), OidcError> {
        cache.attempted_at = Some(now);
        let loaded = self.fetch().and_then(|text| self.parse_key_set(&text));
        match loaded {
            Ok(keys) => {
                cache.keys = keys;
                cache.loaded = true;
                cache.last_error = None;
                Ok(())
            }
            Err(e) => {
                // The keys we have stay in place: a failed refresh must not lock out tokens
                // signed with keys we already know.
                if !cache.loaded {
                    cache.last_error = Some(e.clone());
                }
                Err(e)
            }
        }
    }

    fn fetch(&self) -> Result<String, OidcError> {
        match &self.config.jwks {
            JwksSource::File(path) => {
                let size = std::fs::metadata(path)
                    .map_err(|e| self.jwks_error(e.to_string()))?
                    .len();
                if size > MAX_JWKS_BYTES {
                    return Err(self.jwks_error(format!("larger than {MAX_JWKS_BYTES} bytes")));
                }
                std::fs::read_to_string(path).map_err(|e| self.jwks_error(e.to_string()))
            }
            JwksSource::Url(url) => {
                let mut config = ureq::Agent::config_builder()
                    .timeout_global(Some(FETCH_TIMEOUT))
                    .max_redirects(3)
                    .user_agent("trailmark");
                if is_loopback_http(url) {
                    // A loopback key server is local by definition: never via a proxy.
                    config = config.proxy(None);
                } else {
                    config = config.https_only(true);
                }
                let agent: ureq::Agent = config.build().into();
                let response = agent
                    .get(url)
                    .call()
                    .map_err(|e| self.jwks_error(e.to_string()))?;
                response
                    .into_body()
                    .with_config()
                    .limit(MAX_JWKS_BYTES)
                    .read_to_string()
                    .map_err(|e| self.jwks_error(e.to_string()))
            }
        }
    }

    /// Parses a key set, keeping the keys that can verify an accepted algorithm. Keys of other
    /// types (symmetric, encryption-only, unknown curves) are skipped rather than failing the
    /// whole set, so an issuer publishing a new kind of key does not lock everyone out.
    fn parse_key_set(&self, text: &str) -> Result<Vec<CachedKey>, OidcError> {
        let document: Value =
            serde_json::from_str(text).map_err(|e| self.jwks_error(format!("not JSON: {e}")))?;
        let Some(Value::Array(entries)) = document.get("keys") else {
            return Err(self.jwks_error("no \"keys\" array".to_owned()));
        };
        let keys: Vec<CachedKey> = entries
            .iter()
            .filter_map(|entry| serde_json::from_value::<Jwk>(entry.clone()).ok())
            .filter_map(|jwk| {
                let curve = match &jwk.algorithm {
                    AlgorithmParameters::RSA(_) => None,
                    AlgorithmParameters::EllipticCurve(ec) => Some(ec.curve.clone()),
                    _ => return None,
                };
                if jwk
                    .common
                    .public_key_use
                    .as_ref()
                    .is_some_and(|u| *u != PublicKeyUse::Signature)
                {
                    return None;
                }
                let key = DecodingKey::from_jwk(&jwk).ok()?;
                Some(CachedKey {
                    kid: jwk.common.key_id.clone(),
                    alg: jwk.common.key_algorithm.map(|a| a.to_string()),
                    curve,
                    key,
                })
            })
            .collect();
        if keys.is_empty() {
            return Err(
                self.jwks_error("the key set has no usable RSA or EC signing key".to_owned())
            );
        }
        Ok(keys)
    }
}

/// The key named `kid`; without a `kid`, the only key of a one-key set.
fn find_key<'a>(keys: &'a [CachedKey], kid: Option<&str>) -> Option<&'a CachedKey> {
    match kid {
        Some(kid) => keys.iter().find(|k| k.kid.as_deref() == Some(kid)),
        None => match keys {
            [only] => Some(only),
            _ => None,
        },
    }
}
