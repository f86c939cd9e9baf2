//! Sign-in through an OpenID Connect provider (feature `oidc-login`): the authorization code
//! flow with PKCE (RFC 7636), `state` bound to the browser by a cookie, a `nonce` checked in the
//! ID token, and the ID token verified like a CI identity token (signature from the provider's
//! key set, issuer, audience = our client id, times). Its `user_claim` names the local user,
//! who must exist: roles are granted to local users, never taken from the provider.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use trailmark_server::AppState;
use trailmark_server::session::{OIDC_STATE_COOKIE, cookie, same_token, set_lax_cookie};

use super::login::{login_page, record_login, safe_next, signed_in};
use super::{query, work};
use crate::error::UiError;

const TOKEN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
const MAX_TOKEN_RESPONSE: u64 = 1024 * 1024;

#[derive(Debug, Default, Deserialize)]
pub struct StartQuery {
    next: Option<String>,
}

/// Sends the browser to the provider.
pub async fn start(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, UiError> {
    let Some(cfg) = state.config.login_oidc.as_ref() else {
        return Err(UiError::NotFound(
            "sign-in with a provider is not configured".into(),
        ));
    };
    let q: StartQuery = query(raw)?;
    let next = safe_next(q.next.as_deref());
    let (st, next_owned) = (state.clone(), next.to_owned());
    let started = trailmark_server::error::blocking(move || {
        st.pending_logins
            .start(&next_owned)
            .map_err(trailmark_server::ApiError::from)
    })
    .await?;
    let Some((st, pending)) = started else {
        return Err(UiError::Unavailable(
            "too many sign-ins under way; try again in a few minutes".into(),
        ));
    };
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(pending.verifier.as_bytes()));
    let params = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", cfg.client_id.as_str()),
        ("redirect_uri", cfg.redirect_url.as_str()),
        ("scope", "openid profile email"),
        ("state", st.as_str()),
        ("nonce", pending.nonce.as_str()),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ])
    .map_err(|e| UiError::Internal(e.to_string()))?;
    let sep = if cfg.authorization_endpoint.contains('?') {
        '&'
    } else {
        '?'
    };
    let to = format!("{}{sep}{params}", cfg.authorization_endpoint);
    let mut res = (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response();
    res.headers_mut().append(
        header::SET_COOKIE,
        set_lax_cookie(
            OIDC_STATE_COOKIE,
            &st,
            state.config.secure_cookies,
            std::time::Duration::from_secs(600),
        ),
    );
    Ok(res)
}

#[derive(Debug, Default, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

fn refused(state: &AppState, status: StatusCode, why: &str) -> Result<Response, UiError> {
    login_page(state, status, "/ui/", "", Some(why))
}

/// The provider's redirect back: checks `state`, redeems the code, verifies the ID token and
/// its nonce, and signs the local user in.
pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, UiError> {
    let Some(cfg) = state.config.login_oidc.clone() else {
        return Err(UiError::NotFound(
            "sign-in with a provider is not configured".into(),
        ));
    };
    let q: CallbackQuery = query(raw)?;
    if let Some(e) = q.error {
        let detail = q.error_description.unwrap_or_default();
        return refused(
            &state,
            StatusCode::UNAUTHORIZED,
            &format!("The identity provider did not sign you in: {e} {detail}"),
        );
    }
    let (Some(code), Some(st)) = (q.code, q.state) else {
        return Err(UiError::BadRequest(
            "the provider's answer has no code or state".into(),
        ));
    };
    // The sign-in must finish in the browser that started it, once.
    let bound = cookie(&headers, OIDC_STATE_COOKIE).unwrap_or("");
    if !same_token(bound, &st) {
        return refused(
            &state,
            StatusCode::FORBIDDEN,
            "This sign-in was not started in this browser. Please start again.",
        );
    }
    let (app, state_value) = (state.clone(), st.clone());
    let taken = trailmark_server::error::blocking(move || {
        app.pending_logins
            .take(&state_value)
            .map_err(trailmark_server::ApiError::from)
    })
    .await?;
    let Some(pending) = taken else {
        return refused(
            &state,
            StatusCode::FORBIDDEN,
            "This sign-in expired or was already used. Please start again.",
        );
    };
    let outcome = work(&state, move |s| {
        let verifier = s
            .login_verifier
            .as_ref()
            .ok_or_else(|| UiError::Internal("no ID token verifier".into()))?;
        let id_token = match redeem(&cfg, &code, &pending.verifier) {
            Ok(t) => t,
            Err(why) => return Ok(Err(why)),
        };
        let claims = match verifier.verify_claims(&id_token, jiff::Timestamp::now()) {
            Ok(c) => c,
            Err(e) => return Ok(Err(format!("the ID token was refused: {e}"))),
        };
        let nonce = claims.get("nonce").and_then(Value::as_str).unwrap_or("");
        if !same_token(&pending.nonce, nonce) {
            return Ok(Err(
                "the ID token is not the answer to this sign-in (nonce)".into(),
            ));
        }
        let Some(user) = claims
            .get(&cfg.user_claim)
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            return Ok(Err(format!(
                "the ID token has no {:?} claim naming the user",
                cfg.user_claim
            )));
        };
        let known = s
            .access
            .users()
            .map_err(|e| UiError::from(trailmark_server::ApiError::from(e)))?;
        if !known.contains(&user) {
            return Ok(Err(format!(
                "{user} has no Trailmark account: an administrator creates it and grants its roles"
            )));
        }
        let principal = s
            .access
            .user_principal(&user)
            .map_err(|e| UiError::from(trailmark_server::ApiError::from(e)))?;
        record_login(
            s,
            &principal,
            &user,
            json!({"via": "web", "method": "oidc", "issuer": cfg.provider.issuer,
                   "subject": claims.get("sub").cloned().unwrap_or(Value::Null)}),
        )?;
        Ok(Ok((user, pending.next)))
    })
    .await?;
    let (user, next) = match outcome {
        Ok(x) => x,
        Err(why) => {
            tracing::info!("web sign-in through the identity provider refused");
            return refused(&state, StatusCode::UNAUTHORIZED, &why);
        }
    };
    let mut res = signed_in(&state, &user, next).await?;
    res.headers_mut().append(
        header::SET_COOKIE,
        set_lax_cookie(
            OIDC_STATE_COOKIE,
            "",
            state.config.secure_cookies,
            std::time::Duration::ZERO,
        ),
    );
    Ok(res)
}

/// The token request (RFC 6749 §4.1.3 with the PKCE verifier): the ID token, or why not.
fn redeem(
    cfg: &trailmark_server::config::LoginOidc,
    code: &str,
    verifier: &str,
) -> Result<String, String> {
    let mut config = ureq::Agent::config_builder()
        .timeout_global(Some(TOKEN_TIMEOUT))
        .max_redirects(0)
        .http_status_as_error(false)
        .user_agent("trailmark");
    if cfg.token_endpoint.starts_with("http://") {
        // Config allows plain http only to loopback: never through a proxy.
        config = config.proxy(None);
    } else {
        config = config.https_only(true);
    }
    let agent: ureq::Agent = config.build().into();
    let secret = String::from_utf8_lossy(cfg.client_secret.expose()).into_owned();
    let res = agent.post(&cfg.token_endpoint).send_form([
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", cfg.redirect_url.as_str()),
        ("client_id", cfg.client_id.as_str()),
        ("client_secret", secret.as_str()),
        ("code_verifier", verifier),
    ]);
    let res = res.map_err(|e| format!("the token endpoint could not be reached: {e}"))?;
    let status = res.status().as_u16();
    let body = res
        .into_body()
        .with_config()
        .limit(MAX_TOKEN_RESPONSE)
        .read_to_string()
        .map_err(|e| format!("the token endpoint's answer could not be read: {e}"))?;
    let v: Value = serde_json::from_str(&body)
        .map_err(|_| format!("the token endpoint answered {status} without JSON"))?;
    if status != 200 {
        let e = v
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("unknown error");
        return Err(format!(
            "the token endpoint refused the code ({status}: {e})"
        ));
    }
    v.get("id_token")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| "the token endpoint's answer has no id_token".into())
}
