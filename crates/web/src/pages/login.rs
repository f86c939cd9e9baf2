//! Sign-in and sign-out. A successful sign-in is recorded (`access.login`), and so is a failed
//! one (`security.login_failed`, naming the user name tried, never the password): both are
//! access-governance evidence.

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use trailmark_access::AccessError;
use trailmark_server::AppState;
use trailmark_server::auth::{governance_record, principal_subject};
use trailmark_server::extract::Body;
use trailmark_server::session::{
    LOGIN_CSRF_COOKIE, SESSION_COOKIE, cookie, random_token, same_token, set_cookie,
};

use super::{form, query, render, work};
use crate::error::UiError;
use crate::viewer::Viewer;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    next: &'a str,
    csrf: &'a str,
    error: Option<&'a str>,
    user: &'a str,
    /// "Sign in with …": the provider's name and the link that starts it.
    provider: Option<(String, String)>,
}

#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// Only a path inside the UI: never another site (an open redirect after sign-in).
pub(crate) fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with("/ui/") && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/ui/",
    }
}

pub(crate) fn login_page(
    state: &AppState,
    status: StatusCode,
    next: &str,
    user: &str,
    error: Option<&str>,
) -> Result<Response, UiError> {
    let csrf = random_token();
    if csrf.is_empty() {
        return Err(UiError::Internal(
            "no randomness for a sign-in token".into(),
        ));
    }
    // The provider's button, when sign-in through one is built in and configured.
    let provider = if cfg!(feature = "oidc-login") {
        state.config.login_oidc.as_ref().map(|l| {
            (
                l.name.clone(),
                format!("/ui/login/oidc?next={}", super::encode_component(next)),
            )
        })
    } else {
        None
    };
    let mut res = render(&LoginPage {
        next,
        csrf: &csrf,
        error,
        user,
        provider,
    })?;
    *res.status_mut() = status;
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            LOGIN_CSRF_COOKIE,
            &csrf,
            state.config.secure_cookies,
            std::time::Duration::from_secs(3600),
        ),
    );
    Ok(res)
}

pub async fn form_page(state: &AppState, raw: Option<String>) -> Result<Response, UiError> {
    let q: LoginQuery = query(raw)?;
    login_page(
        state,
        StatusCode::OK,
        safe_next(q.next.as_deref()),
        "",
        None,
    )
}

pub async fn show(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, UiError> {
    form_page(&state, raw).await
}

#[derive(Debug, Deserialize)]
pub struct Credentials {
    username: String,
    password: String,
    csrf: String,
    next: Option<String>,
}

/// Why a password sign-in was refused.
enum Refused {
    /// Too many failures for the user name in the window: the password was not checked.
    Throttled,
    Wrong,
}

pub async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, UiError> {
    let c: Credentials = form(&body)?;
    let next = safe_next(c.next.as_deref()).to_owned();
    // Double-submit check: the form's token must equal the cookie set with the form, which a
    // cross-site page can neither read nor set (login CSRF).
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or("");
    if !same_token(expected, &c.csrf) {
        return login_page(
            &state,
            StatusCode::FORBIDDEN,
            &next,
            &c.username,
            Some("The sign-in form expired or came from elsewhere. Please try again."),
        );
    }
    let user = c.username.trim().to_owned();
    let password = c.password;
    let attempt = user.clone();
    let outcome = work(&state, move |st| {
        let access = |e: AccessError| UiError::from(trailmark_server::ApiError::from(e));
        if !st.logins.allows(&attempt).map_err(access)? {
            return Ok(Err(Refused::Throttled));
        }
        match st.access.authenticate_user(&attempt, &password) {
            Ok(p) => {
                st.logins.succeeded(&attempt).map_err(access)?;
                record_login(
                    st,
                    &p,
                    &attempt,
                    json!({"via": "web", "method": "password"}),
                )?;
                Ok(Ok(p))
            }
            Err(AccessError::BadCredentials) => {
                if !st.logins.failed(&attempt).map_err(access)? {
                    tracing::warn!("failed web sign-in not recorded: over the per-minute budget");
                    return Ok(Err(Refused::Wrong));
                }
                let rec = governance_record(
                    "security.login_failed",
                    "trailmark-server",
                    std::slice::from_ref(&st.config.default_org),
                    Vec::new(),
                    json!({"via": "web", "username": attempt}),
                )?;
                st.store
                    .append(vec![rec])
                    .map_err(trailmark_server::ApiError::from)?;
                Ok(Err(Refused::Wrong))
            }
            Err(e) => Err(trailmark_server::ApiError::from(e).into()),
        }
    })
    .await?;
    if let Err(why) = outcome {
        let (status, message) = match why {
            Refused::Throttled => {
                tracing::warn!("web sign-in throttled after repeated failures");
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many failed attempts for this user name: try again in 15 minutes.",
                )
            }
            Refused::Wrong => {
                tracing::info!("web sign-in refused");
                (
                    StatusCode::UNAUTHORIZED,
                    "Unknown user name or wrong password.",
                )
            }
        };
        return login_page(&state, status, &next, &user, Some(message));
    }
    let mut res = signed_in(&state, &user, next).await?;
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            LOGIN_CSRF_COOKIE,
            "",
            state.config.secure_cookies,
            std::time::Duration::ZERO,
        ),
    );
    Ok(res)
}

/// Starts `user`'s session and sends the browser on to `next` with its cookie.
pub(crate) async fn signed_in(
    state: &AppState,
    user: &str,
    next: String,
) -> Result<Response, UiError> {
    let (st, who) = (state.clone(), user.to_owned());
    let (token, _) = trailmark_server::error::blocking(move || {
        st.sessions
            .start(&who, st.config.session_max)
            .map_err(trailmark_server::ApiError::from)
    })
    .await?;
    let mut res = (StatusCode::SEE_OTHER, [(header::LOCATION, next)]).into_response();
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            SESSION_COOKIE,
            &token,
            state.config.secure_cookies,
            state.config.session_max,
        ),
    );
    Ok(res)
}

/// Appends the `access.login` record of `user` signing in (`how`: method and details).
pub(crate) fn record_login(
    st: &AppState,
    principal: &trailmark_access::Principal,
    user: &str,
    how: serde_json::Value,
) -> Result<(), UiError> {
    let orgs = trailmark_server::auth::Caller(principal.clone()).orgs();
    let actor = format!("user:{user}");
    let rec = governance_record(
        "access.login",
        &actor,
        &orgs,
        principal_subject(&actor).into_iter().collect(),
        how,
    )?;
    st.store
        .append(vec![rec])
        .map_err(trailmark_server::ApiError::from)?;
    Ok(())
}

#[derive(Debug, Deserialize)]
pub struct LogoutForm {
    csrf: String,
}

pub async fn logout(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, UiError> {
    let f: LogoutForm = form(&body)?;
    super::check_csrf(&viewer, &f.csrf)?;
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        let (st, token) = (state.clone(), token.to_owned());
        trailmark_server::error::blocking(move || {
            st.sessions
                .end(&token)
                .map_err(trailmark_server::ApiError::from)
        })
        .await?;
    }
    let mut res = (StatusCode::SEE_OTHER, [(header::LOCATION, "/ui/login")]).into_response();
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            SESSION_COOKIE,
            "",
            state.config.secure_cookies,
            std::time::Duration::ZERO,
        ),
    );
    Ok(res)
}
