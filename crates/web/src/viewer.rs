//! The signed-in person viewing a page: their session (for the CSRF token) and their current
//! grants, re-read from the access store on every request.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use trailmark_access::{Permission, Scope};
use trailmark_server::AppState;
use trailmark_server::auth::Caller;
use trailmark_server::session::{SESSION_COOKIE, Session, cookie};

use crate::error::UiError;

/// A signed-in person. Extracting it from a request without a live session redirects to the
/// sign-in page (and back afterwards).
#[derive(Clone, Debug)]
pub struct Viewer {
    pub caller: Caller,
    pub session: Session,
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Viewer, UiError> {
        let next = parts
            .uri
            .path_and_query()
            .map_or("/ui/", |p| p.as_str())
            .to_owned();
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(UiError::SignIn { next });
        };
        let st = state.clone();
        let token = token.to_owned();
        let found = trailmark_server::error::blocking(move || {
            let Some(session) =
                st.sessions
                    .find(&token, st.config.session_idle, st.config.session_max)?
            else {
                return Ok(None);
            };
            st.access
                .user_principal(&session.user)
                .map(|p| Some((session, p)))
                .map_err(trailmark_server::ApiError::from)
        })
        .await?;
        let Some((session, principal)) = found else {
            return Err(UiError::SignIn { next });
        };
        Ok(Viewer {
            caller: Caller(principal),
            session,
        })
    }
}

impl Viewer {
    pub fn user(&self) -> &str {
        &self.session.user
    }

    /// Refuses unless `p` is allowed on `scope` (the API's check and wording).
    pub fn require(&self, p: Permission, scope: &Scope) -> Result<(), UiError> {
        self.caller.require(p, scope).map_err(UiError::from)
    }

    /// The scopes `p` is allowed in; refused when none.
    pub fn scopes(&self, p: Permission) -> Result<Vec<Scope>, UiError> {
        self.caller.require_somewhere(p).map_err(UiError::from)
    }

    pub fn can(&self, p: Permission) -> bool {
        !self.caller.0.readable_scopes(p).is_empty()
    }

    /// Whether `scope` is readable by this person.
    pub fn may_read(&self, scope: &Scope) -> bool {
        self.caller
            .0
            .readable_scopes(Permission::ReadEvidence)
            .iter()
            .any(|s| s.covers(scope))
    }

    /// What the layout needs: who is signed in, the links their roles open, the CSRF token.
    pub fn nav(&self, current: &'static str) -> Nav {
        Nav {
            user: self.session.user.clone(),
            csrf: self.session.csrf.clone(),
            current,
            read: self.can(Permission::ReadEvidence),
            approve: self.can(Permission::Approve),
            audit: self.can(Permission::ExportEvidence),
            roles: self
                .caller
                .0
                .grants
                .iter()
                .map(|g| format!("{} on {}", g.role, g.scope))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

/// The layout's navigation, shaped by the viewer's roles (links they could not use are not
/// shown; the pages refuse them anyway).
#[derive(Clone, Debug)]
pub struct Nav {
    pub user: String,
    pub csrf: String,
    pub current: &'static str,
    pub read: bool,
    pub approve: bool,
    pub audit: bool,
    pub roles: String,
}

impl Nav {
    /// `aria-current="page"` for the current section's link.
    pub fn is(&self, section: &str) -> bool {
        self.current == section
    }
}
