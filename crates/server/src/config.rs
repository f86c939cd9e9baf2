//! Server configuration: a TOML file, then environment overrides, then validation into types
//! the rest of the server can trust ("parse, don't validate": a [`Config`] that exists is usable).
//!
//! ```toml
//! listen = "127.0.0.1:8080"
//! data_dir = "trailmark-data"
//! # database_url = "postgres://trailmark@db.internal/trailmark"   # the log in PostgreSQL
//! default_org = "default"
//! max_body_bytes = 10485760
//! log_format = "text"            # or "json"
//! # Web UI sessions. Cookies are `Secure` unless listening on loopback; set true behind HTTPS.
//! # secure_cookies = true
//! # session_idle_minutes = 30
//! # session_max_hours = 12
//! # Optional: sign in to the web UI with an OpenID Connect provider (code flow + PKCE). The
//! # claim `user_claim` of the ID token names the local user, who must exist.
//! # [login_oidc]
//! # name = "Acme SSO"
//! # issuer = "https://sso.acme.example"
//! # client_id = "trailmark"
//! # client_secret_file = "/run/secrets/oidc-client"   # or TRAILMARK_LOGIN_OIDC_SECRET
//! # authorization_endpoint = "https://sso.acme.example/authorize"
//! # token_endpoint = "https://sso.acme.example/token"
//! # jwks_url = "https://sso.acme.example/jwks"
//! # redirect_url = "https://trailmark.acme.example/ui/login/oidc/callback"
//! # user_claim = "preferred_username"
//!
//! [[hooks]]
//! source = "github"              # github | gitlab | jira | jenkins | cdevents
//! secret_file = "/run/secrets/github-webhook"   # or secret = "..." (prefer a file or the env)
//! scope = "acme/payments"        # where its evidence belongs (an org, or org/project)
//! # name = "payments"            # optional: served at /hooks/github/payments instead
//! # Answer deployment protection requests with the release gate (github: a GitHub App;
//! # gitlab: a token allowed to approve deployments). Callbacks only go to api_url.
//! # [hooks.respond]
//! # api_url = "https://api.github.com"
//! # app_id = 12345
//! # private_key_file = "/run/secrets/github-app.pem"
//! # (gitlab: api_url = "https://gitlab.example.com", token_file = "/run/secrets/gitlab-token")
//!
//! [[oidc]]
//! issuer = "https://token.actions.githubusercontent.com"
//! audience = "trailmark"
//! jwks_url = "https://token.actions.githubusercontent.com/.well-known/jwks"
//! rules = [{ claim = "repository", equals = "acme/payments", role = "ingest", scope = "acme/payments" }]
//! ```
//!
//! Environment overrides: `TRAILMARK_LISTEN`, `TRAILMARK_DATA`, `TRAILMARK_DATABASE_URL`,
//! `TRAILMARK_DEFAULT_ORG`,
//! `TRAILMARK_MAX_BODY_BYTES`, `TRAILMARK_LOG_FORMAT`, `TRAILMARK_SECURE_COOKIES`, and `TRAILMARK_HOOK_<SOURCE>_SECRET` (the
//! secret of the unnamed hook of that source, e.g. `TRAILMARK_HOOK_GITHUB_SECRET`).

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use trailmark_access::{ClaimRule, Grant, JwksSource, OidcProvider, OrgName, Role, Scope};

/// A configuration problem, naming the setting and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {reason}")]
pub struct ConfigError {
    pub setting: String,
    pub reason: String,
}

fn bad(setting: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        setting: setting.into(),
        reason: reason.into(),
    }
}

/// The sources that can push webhooks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HookSource {
    Github,
    Gitlab,
    Jira,
    Jenkins,
    Cdevents,
}

impl HookSource {
    pub const ALL: [HookSource; 5] = [
        HookSource::Github,
        HookSource::Gitlab,
        HookSource::Jira,
        HookSource::Jenkins,
        HookSource::Cdevents,
    ];

    pub fn name(self) -> &'static str {
        match self {
            HookSource::Github => "github",
            HookSource::Gitlab => "gitlab",
            HookSource::Jira => "jira",
            HookSource::Jenkins => "jenkins",
            HookSource::Cdevents => "cdevents",
        }
    }

    pub fn parse(s: &str) -> Option<HookSource> {
        HookSource::ALL.into_iter().find(|h| h.name() == s)
    }

    pub fn format(self) -> trailmark_ingest::Format {
        match self {
            HookSource::Github => trailmark_ingest::Format::Github,
            HookSource::Gitlab => trailmark_ingest::Format::Gitlab,
            HookSource::Jira => trailmark_ingest::Format::Jira,
            HookSource::Jenkins => trailmark_ingest::Format::Jenkins,
            HookSource::Cdevents => trailmark_ingest::Format::Cdevents,
        }
    }
}

impl fmt::Display for HookSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A webhook shared secret. Never printed: `Debug` redacts it.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Secret {
        Secret(bytes.into())
    }
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// One webhook endpoint: `/hooks/<source>` or `/hooks/<source>/<name>`.
#[derive(Clone, Debug)]
pub struct Hook {
    pub source: HookSource,
    pub name: Option<String>,
    pub secret: Secret,
    /// Where its evidence (and its rejected deliveries) belong.
    pub scope: Scope,
    /// Answers the forge's deployment protection requests with the gate's decision.
    pub respond: Option<Respond>,
}

/// How a hook answers deployment protection requests.
#[derive(Clone, Debug)]
pub enum Respond {
    /// A GitHub App: a JWT signed with its key buys an installation token per request.
    Github {
        api_url: String,
        app_id: u64,
        /// The App's RSA private key (PEM); never logged.
        private_key: Secret,
    },
    /// GitLab's deployment approval API, with a token allowed to approve.
    Gitlab { api_url: String, token: Secret },
}

impl Hook {
    pub fn path(&self) -> String {
        match &self.name {
            Some(n) => format!("/hooks/{}/{n}", self.source),
            None => format!("/hooks/{}", self.source),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// `postgres://…` when the log lives in PostgreSQL; `None` for the embedded store in
    /// `data_dir`.
    pub database_url: Option<String>,
    /// Records that name no organisation (CLI imports, records from before the server) belong
    /// to this one.
    pub default_org: OrgName,
    pub max_body_bytes: usize,
    pub log_format: LogFormat,
    pub hooks: Vec<Hook>,
    pub oidc: Vec<OidcProvider>,
    /// Web UI sessions: whether their cookie carries `Secure` (sent over HTTPS only). On by
    /// default unless the server listens on a loopback address (a local, plain-HTTP setup).
    pub secure_cookies: bool,
    /// How long a web UI session lasts without activity, and at most.
    pub session_idle: std::time::Duration,
    pub session_max: std::time::Duration,
    /// Web UI sign-in through an OpenID Connect provider (authorization code flow with PKCE),
    /// besides local passwords.
    pub login_oidc: Option<LoginOidc>,
}

/// An OpenID Connect provider people sign in to the web UI with. The ID token's `user_claim`
/// names the local user (who must exist: roles are granted to local users).
#[derive(Clone, Debug)]
pub struct LoginOidc {
    /// Issuer, audience (= the client id), key set and clock leeway of the ID tokens.
    pub provider: OidcProvider,
    pub client_id: String,
    pub client_secret: Secret,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    /// This server's callback, registered with the provider: `…/ui/login/oidc/callback`.
    pub redirect_url: String,
    pub user_claim: String,
    /// The sign-in button's text ("Sign in with …").
    pub name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    default_org: Option<String>,
    max_body_bytes: Option<u64>,
    log_format: Option<String>,
    #[serde(default)]
    hooks: Vec<RawHook>,
    #[serde(default)]
    oidc: Vec<RawOidc>,
    secure_cookies: Option<bool>,
    session_idle_minutes: Option<u64>,
    session_max_hours: Option<u64>,
    login_oidc: Option<RawLoginOidc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLoginOidc {
    name: Option<String>,
    issuer: String,
    client_id: String,
    client_secret: Option<String>,
    client_secret_file: Option<PathBuf>,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_file: Option<PathBuf>,
    jwks_url: Option<String>,
    redirect_url: String,
    user_claim: Option<String>,
    leeway_secs: Option<u64>,
}

/// `https://`, or plain `http://` to a loopback address only (a local test provider).
fn secure_url(url: &str) -> bool {
    if url.starts_with("https://") {
        return true;
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    ["127.0.0.1", "localhost", "[::1]"].iter().any(|host| {
        rest.strip_prefix(host)
            .is_some_and(|after| after.is_empty() || after.starts_with([':', '/']))
    })
}

fn login_oidc(raw: RawLoginOidc, env_secret: Option<String>) -> Result<LoginOidc, ConfigError> {
    let at = "login_oidc";
    for (field, url) in [
        ("authorization_endpoint", &raw.authorization_endpoint),
        ("token_endpoint", &raw.token_endpoint),
        ("redirect_url", &raw.redirect_url),
    ] {
        if !secure_url(url) {
            return Err(bad(
                format!("{at}.{field}"),
                format!("{url:?} must be https:// (plain http only for loopback)"),
            ));
        }
    }
    if !raw.redirect_url.ends_with("/ui/login/oidc/callback") {
        return Err(bad(
            format!("{at}.redirect_url"),
            "must be this server's `/ui/login/oidc/callback` URL",
        ));
    }
    if raw.client_id.is_empty() {
        return Err(bad(format!("{at}.client_id"), "is empty"));
    }
    let secret = match (env_secret, raw.client_secret, raw.client_secret_file) {
        (Some(s), _, _) | (None, Some(s), None) => s.into_bytes(),
        (None, None, Some(f)) => std::fs::read_to_string(&f)
            .map_err(|e| {
                bad(
                    format!("{at}.client_secret_file"),
                    format!("{}: {e}", f.display()),
                )
            })?
            .trim_end_matches(['\n', '\r'])
            .as_bytes()
            .to_vec(),
        (None, Some(_), Some(_)) => {
            return Err(bad(
                at,
                "give client_secret or client_secret_file, not both",
            ));
        }
        (None, None, None) => {
            return Err(bad(
                at,
                "no client secret: set client_secret_file, or TRAILMARK_LOGIN_OIDC_SECRET",
            ));
        }
    };
    let jwks = match (raw.jwks_file, raw.jwks_url) {
        (Some(f), None) => JwksSource::File(f),
        (None, Some(u)) => JwksSource::Url(u),
        _ => return Err(bad(at, "give exactly one of jwks_file, jwks_url")),
    };
    Ok(LoginOidc {
        provider: OidcProvider {
            issuer: raw.issuer.clone(),
            audience: raw.client_id.clone(),
            jwks,
            rules: Vec::new(),
            leeway_secs: raw.leeway_secs.unwrap_or(60),
        },
        client_id: raw.client_id,
        client_secret: Secret::new(secret),
        authorization_endpoint: raw.authorization_endpoint,
        token_endpoint: raw.token_endpoint,
        redirect_url: raw.redirect_url,
        user_claim: raw
            .user_claim
            .unwrap_or_else(|| "preferred_username".to_owned()),
        name: raw.name.unwrap_or(raw.issuer),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHook {
    source: String,
    name: Option<String>,
    secret: Option<String>,
    secret_file: Option<PathBuf>,
    scope: Option<String>,
    respond: Option<RawRespond>,
}

fn respond(at: &str, source: HookSource, r: RawRespond) -> Result<Respond, ConfigError> {
    let api_url = r.api_url.trim_end_matches('/').to_owned();
    if !(api_url.starts_with("https://") || api_url.starts_with("http://")) || api_url.len() < 10 {
        return Err(bad(
            format!("{at}.api_url"),
            format!("{:?} is not an http(s) URL", r.api_url),
        ));
    }
    let read = |setting: &str, f: &Path| {
        std::fs::read(f)
            .map_err(|e| bad(format!("{at}.{setting}"), format!("{}: {e}", f.display())))
    };
    match source {
        HookSource::Github => {
            if r.token_file.is_some() {
                return Err(bad(
                    at,
                    "github answers as a GitHub App: set app_id and private_key_file, not token_file",
                ));
            }
            let app_id = r
                .app_id
                .ok_or_else(|| bad(format!("{at}.app_id"), "missing"))?;
            let file = r
                .private_key_file
                .ok_or_else(|| bad(format!("{at}.private_key_file"), "missing"))?;
            let pem = read("private_key_file", &file)?;
            if jsonwebtoken::EncodingKey::from_rsa_pem(&pem).is_err() {
                return Err(bad(
                    format!("{at}.private_key_file"),
                    format!("{}: not an RSA private key in PEM", file.display()),
                ));
            }
            Ok(Respond::Github {
                api_url,
                app_id,
                private_key: Secret::new(pem),
            })
        }
        HookSource::Gitlab => {
            if r.app_id.is_some() || r.private_key_file.is_some() {
                return Err(bad(
                    at,
                    "gitlab answers with a token: set token_file, not app_id/private_key_file",
                ));
            }
            let file = r
                .token_file
                .ok_or_else(|| bad(format!("{at}.token_file"), "missing"))?;
            let token = read("token_file", &file)?;
            let token: Vec<u8> = String::from_utf8_lossy(&token).trim().as_bytes().to_vec();
            if token.is_empty() {
                return Err(bad(format!("{at}.token_file"), "is empty"));
            }
            Ok(Respond::Gitlab {
                api_url,
                token: Secret::new(token),
            })
        }
        other => Err(bad(
            at,
            format!("only github and gitlab hooks answer deployment requests, not {other}"),
        )),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRespond {
    api_url: String,
    app_id: Option<u64>,
    private_key_file: Option<PathBuf>,
    token_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOidc {
    issuer: String,
    audience: String,
    jwks_file: Option<PathBuf>,
    jwks_url: Option<String>,
    #[serde(default)]
    leeway_secs: Option<u64>,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    claim: String,
    equals: String,
    role: String,
    scope: String,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_MAX_BODY: usize = 10 * 1024 * 1024;

impl Config {
    /// Reads `path` (when given), applies `env` overrides, validates. `env` is passed in so tests
    /// need not touch the process environment.
    pub fn load(
        path: Option<&Path>,
        env: &BTreeMap<String, String>,
    ) -> Result<Config, ConfigError> {
        let raw = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| bad(p.display().to_string(), format!("cannot read: {e}")))?;
                toml::from_str::<RawConfig>(&text)
                    .map_err(|e| bad(p.display().to_string(), e.to_string()))?
            }
            None => RawConfig::default(),
        };
        Config::from_raw(raw, env)
    }

    /// Parses configuration text (for tests and `--config -`).
    pub fn from_toml(text: &str, env: &BTreeMap<String, String>) -> Result<Config, ConfigError> {
        let raw = toml::from_str::<RawConfig>(text).map_err(|e| bad("config", e.to_string()))?;
        Config::from_raw(raw, env)
    }

    fn from_raw(mut raw: RawConfig, env: &BTreeMap<String, String>) -> Result<Config, ConfigError> {
        let var = |k: &str| env.get(k).filter(|v| !v.is_empty()).cloned();
        if let Some(v) = var("TRAILMARK_LISTEN") {
            raw.listen = Some(v);
        }
        if let Some(v) = var("TRAILMARK_DATA") {
            raw.data_dir = Some(PathBuf::from(v));
        }
        if let Some(v) = var("TRAILMARK_DATABASE_URL") {
            raw.database_url = Some(v);
        }
        if let Some(v) = var("TRAILMARK_DEFAULT_ORG") {
            raw.default_org = Some(v);
        }
        if let Some(v) = var("TRAILMARK_MAX_BODY_BYTES") {
            raw.max_body_bytes = Some(v.parse().map_err(|_| {
                bad(
                    "TRAILMARK_MAX_BODY_BYTES",
                    format!("{v:?} is not a byte count"),
                )
            })?);
        }
        if let Some(v) = var("TRAILMARK_LOG_FORMAT") {
            raw.log_format = Some(v);
        }
        if let Some(v) = var("TRAILMARK_SECURE_COOKIES") {
            raw.secure_cookies = Some(match v.as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => {
                    return Err(bad(
                        "TRAILMARK_SECURE_COOKIES",
                        format!("{v:?} is not true or false"),
                    ));
                }
            });
        }
        for source in HookSource::ALL {
            let key = format!("TRAILMARK_HOOK_{}_SECRET", source.name().to_uppercase());
            if let Some(secret) = var(&key) {
                match raw
                    .hooks
                    .iter_mut()
                    .find(|h| h.source == source.name() && h.name.is_none())
                {
                    Some(h) => {
                        h.secret = Some(secret);
                        h.secret_file = None;
                    }
                    None => raw.hooks.push(RawHook {
                        source: source.name().to_owned(),
                        name: None,
                        secret: Some(secret),
                        secret_file: None,
                        scope: None,
                        respond: None,
                    }),
                }
            }
        }

        let listen_text = raw.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            bad(
                "listen",
                format!("{listen_text:?} is not an address like 127.0.0.1:8080"),
            )
        })?;
        let default_org_text = raw.default_org.unwrap_or_else(|| "default".to_owned());
        let default_org: OrgName = default_org_text
            .parse()
            .map_err(|e| bad("default_org", format!("{e}")))?;
        let max_body_bytes = match raw.max_body_bytes {
            None => DEFAULT_MAX_BODY,
            Some(0) => return Err(bad("max_body_bytes", "must be more than 0")),
            Some(n) => usize::try_from(n).map_err(|_| bad("max_body_bytes", "too large"))?,
        };
        let log_format = match raw.log_format.as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(bad(
                    "log_format",
                    format!("{other:?} is not one of: text, json"),
                ));
            }
        };

        let mut hooks = Vec::new();
        for (i, h) in raw.hooks.into_iter().enumerate() {
            let at = format!("hooks[{i}]");
            let source = HookSource::parse(&h.source).ok_or_else(|| {
                bad(
                    format!("{at}.source"),
                    format!(
                        "{:?} is not one of: github, gitlab, jira, jenkins, cdevents",
                        h.source
                    ),
                )
            })?;
            if let Some(n) = &h.name
                && (n.is_empty()
                    || n.len() > 64
                    || !n
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))
            {
                return Err(bad(
                    format!("{at}.name"),
                    format!("{n:?} must be 1-64 of a-z, 0-9 and -"),
                ));
            }
            let secret = match (h.secret, h.secret_file) {
                (Some(s), None) => s.into_bytes(),
                (None, Some(f)) => {
                    let text = std::fs::read_to_string(&f).map_err(|e| {
                        bad(format!("{at}.secret_file"), format!("{}: {e}", f.display()))
                    })?;
                    text.trim_end_matches(['\n', '\r']).as_bytes().to_vec()
                }
                (Some(_), Some(_)) => {
                    return Err(bad(at, "give secret or secret_file, not both"));
                }
                (None, None) => {
                    return Err(bad(
                        at,
                        format!(
                            "no secret: set secret_file, or TRAILMARK_HOOK_{}_SECRET",
                            source.name().to_uppercase()
                        ),
                    ));
                }
            };
            // A short secret is guessable and an HMAC keyed with it proves little.
            if secret.len() < 16 {
                return Err(bad(
                    format!("{at}.secret"),
                    "is shorter than 16 bytes; use a long random secret",
                ));
            }
            let scope = match h.scope {
                Some(s) => s
                    .parse::<Scope>()
                    .map_err(|e| bad(format!("{at}.scope"), e.to_string()))?,
                None => Scope::Org(default_org.clone()),
            };
            let respond = match h.respond {
                None => None,
                Some(r) => Some(respond(&format!("{at}.respond"), source, r)?),
            };
            let hook = Hook {
                source,
                name: h.name,
                secret: Secret::new(secret),
                scope,
                respond,
            };
            if hooks.iter().any(|o: &Hook| o.path() == hook.path()) {
                return Err(bad(at, format!("{} is configured twice", hook.path())));
            }
            hooks.push(hook);
        }

        let mut oidc = Vec::new();
        for (i, o) in raw.oidc.into_iter().enumerate() {
            let at = format!("oidc[{i}]");
            let jwks = match (o.jwks_file, o.jwks_url) {
                (Some(f), None) => JwksSource::File(f),
                (None, Some(u)) => JwksSource::Url(u),
                _ => return Err(bad(at, "give exactly one of jwks_file, jwks_url")),
            };
            if o.rules.is_empty() {
                return Err(bad(
                    format!("{at}.rules"),
                    "no rules: no token from this issuer could be granted anything",
                ));
            }
            let mut rules = Vec::new();
            for (j, r) in o.rules.into_iter().enumerate() {
                let rat = format!("{at}.rules[{j}]");
                let role: Role = r
                    .role
                    .parse()
                    .map_err(|e| bad(format!("{rat}.role"), format!("{e}")))?;
                let scope: Scope = r
                    .scope
                    .parse()
                    .map_err(|e| bad(format!("{rat}.scope"), format!("{e}")))?;
                rules.push(ClaimRule {
                    claim: r.claim,
                    equals: r.equals,
                    grant: Grant { role, scope },
                });
            }
            oidc.push(OidcProvider {
                issuer: o.issuer,
                audience: o.audience,
                jwks,
                rules,
                leeway_secs: o.leeway_secs.unwrap_or(60),
            });
        }

        let minutes = |setting: &str, v: Option<u64>, default: u64, unit: u64| match v {
            None => Ok(std::time::Duration::from_secs(default * unit)),
            Some(0) => Err(bad(setting, "must be more than 0")),
            Some(n) if n > 24 * 365 => Err(bad(setting, "is implausibly long")),
            Some(n) => Ok(std::time::Duration::from_secs(n * unit)),
        };
        let login_oidc = match raw.login_oidc {
            None => None,
            Some(l) => Some(login_oidc(l, var("TRAILMARK_LOGIN_OIDC_SECRET"))?),
        };
        let session_idle = minutes("session_idle_minutes", raw.session_idle_minutes, 30, 60)?;
        let session_max = minutes("session_max_hours", raw.session_max_hours, 12, 3600)?;
        Ok(Config {
            secure_cookies: raw
                .secure_cookies
                .unwrap_or_else(|| !listen.ip().is_loopback()),
            session_idle,
            session_max,
            login_oidc,
            listen,
            data_dir: raw
                .data_dir
                .unwrap_or_else(|| PathBuf::from("trailmark-data")),
            database_url: raw.database_url.filter(|u| !u.is_empty()),
            default_org,
            max_body_bytes,
            log_format,
            hooks,
            oidc,
        })
    }
}
