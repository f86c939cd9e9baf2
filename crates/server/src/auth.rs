//! Who is calling, and may they: bearer authentication (API tokens and OIDC identity tokens),
//! role checks against the scope evidence belongs to, and the access-governance records every
//! person's read and every change of access leaves in the log.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use serde_json::{Value, json};
use trailmark_access::{Decision, OrgName, Permission, Principal, PrincipalKind, Scope};
use trailmark_model::{Kind, NewRecord, Record, Subject, Timestamp};

use crate::error::{ApiError, blocking};
use crate::session::SESSION_COOKIE;
use crate::state::AppState;

/// Subject types only the server may set: they decide who can see a record, or say who did
/// something to access. A client supplying one is refused, or it could file evidence into
/// another tenant or forge access records.
pub const RESERVED_SUBJECT_TYPES: &[&str] = &["org", "project", "principal"];
/// Kind prefixes only the server writes.
pub const RESERVED_KIND_PREFIXES: &[&str] = &[
    "access.",
    "security.",
    // Governance records come only from the governance endpoints, which enforce their rules
    // (a client must not be able to write an approval or a certification as plain evidence).
    "release.",
    "approval.",
    "policy.",
    "gate.",
    "exception.",
    "rollback.",
    "dossier.",
    // The identity map decides who counts as whom for separation of duties: a client that
    // could record a version could make an author and an approver different people.
    "identity.",
];

/// The authenticated caller of a request.
#[derive(Clone, Debug)]
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            // A signed-in person's browser may read (GET/HEAD) with its session cookie; writes
            // need a bearer token, so a cross-site form can never write through the API.
            if parts.method.is_safe()
                && let Some(token) = crate::session::cookie(&parts.headers, SESSION_COOKIE)
            {
                return session_caller(state, token).await;
            }
            return Err(ApiError::Unauthenticated(
                "no credentials: send `Authorization: Bearer <token>`".into(),
            ));
        };
        let text = value.to_str().map_err(|_| {
            ApiError::Unauthenticated("the Authorization header is not text".into())
        })?;
        let Some(token) = text
            .strip_prefix("Bearer ")
            .or_else(|| text.strip_prefix("bearer "))
        else {
            return Err(ApiError::Unauthenticated(
                "unsupported Authorization scheme: use `Bearer <token>`".into(),
            ));
        };
        let token = token.trim().to_owned();
        let state = state.clone();
        let now = jiff::Timestamp::now();
        blocking(move || {
            let result = if token.starts_with("tmk_") {
                state.access.authenticate_token(&token, now)
            } else if token.split('.').count() == 3 {
                state.oidc.verify(&token, now)
            } else {
                return Err(ApiError::Unauthenticated(
                    "the bearer token is neither a Trailmark API token (tmk_...) nor a JWT".into(),
                ));
            };
            // Every authentication failure is a 401 naming why (expired, revoked, wrong
            // audience...) but never echoing the token.
            result.map(Caller).map_err(|e| {
                if e.is_client_error() {
                    ApiError::Unauthenticated(e.to_string())
                } else {
                    ApiError::from(e)
                }
            })
        })
        .await
    }
}

/// The caller behind a web session cookie, with the user's current grants.
pub async fn session_caller(state: &AppState, token: &str) -> Result<Caller, ApiError> {
    let state = state.clone();
    let token = token.to_owned();
    blocking(move || {
        let Some(session) =
            state
                .sessions
                .find(&token, state.config.session_idle, state.config.session_max)?
        else {
            return Err(ApiError::Unauthenticated(
                "the session has ended: sign in again".into(),
            ));
        };
        state
            .access
            .user_principal(&session.user)
            .map(Caller)
            .map_err(ApiError::from)
    })
    .await
}

impl Caller {
    pub fn id(&self) -> &str {
        &self.0.id
    }

    /// Who the trail names: the person behind a person token (`user:alice`), else the
    /// principal itself.
    pub fn actor(&self) -> String {
        match &self.0.person {
            Some(p) => format!("user:{p}"),
            None => self.0.id.clone(),
        }
    }

    /// Allows or refuses `p` on evidence in `scope`, with a 403 that says who lacked what where.
    pub fn require(&self, p: Permission, scope: &Scope) -> Result<(), ApiError> {
        match self.0.decide(p, scope) {
            Decision::Allow => Ok(()),
            _ => Err(ApiError::Forbidden(format!(
                "{} may not {} in {scope}{}",
                self.0.id,
                permission_text(p),
                self.grants_text()
            ))),
        }
    }

    /// Refuses unless `p` is allowed somewhere (for lists, filtered per item afterwards).
    pub fn require_somewhere(&self, p: Permission) -> Result<Vec<Scope>, ApiError> {
        let scopes = self.0.readable_scopes(p);
        if scopes.is_empty() {
            return Err(ApiError::Forbidden(format!(
                "{} may not {} anywhere{}",
                self.0.id,
                permission_text(p),
                self.grants_text()
            )));
        }
        Ok(scopes)
    }

    fn grants_text(&self) -> String {
        if self.0.grants.is_empty() {
            return " (it holds no roles)".into();
        }
        let g: Vec<String> = self
            .0
            .grants
            .iter()
            .map(|g| format!("{} on {}", g.role, g.scope))
            .collect();
        format!(" (it holds: {})", g.join(", "))
    }

    /// The organisations this caller holds any role in: where its access records are filed.
    pub fn orgs(&self) -> Vec<OrgName> {
        let mut orgs: Vec<OrgName> = self
            .0
            .grants
            .iter()
            .map(|g| g.scope.org().clone())
            .collect();
        orgs.sort();
        orgs.dedup();
        orgs
    }

    /// People's reads are governance evidence; pipelines' are not (issue: "by a person").
    pub fn is_person(&self) -> bool {
        self.0.is_person()
    }
}

pub fn permission_text(p: Permission) -> &'static str {
    match p {
        Permission::ReadEvidence => "read evidence",
        Permission::WriteEvidence => "record evidence",
        Permission::ExportEvidence => "export evidence",
        Permission::ReadLog => "read checkpoints and proofs",
        Permission::Approve => "approve",
        Permission::ManageReleases => "manage releases",
        Permission::ManageAccess => "manage access",
    }
}

/// The scope a stored record belongs to: its `project:` subject, else its `org:` subject, else
/// the default organisation (records from before the server, CLI imports).
pub fn record_scope(record: &Record, default_org: &OrgName) -> Scope {
    let mut org = None;
    for s in &record.subjects {
        match s.ty.as_str() {
            "project" => {
                if let Ok(scope) = s.id.parse::<Scope>()
                    && matches!(scope, Scope::Project(..))
                {
                    return scope;
                }
            }
            "org" if org.is_none() => {
                if let Ok(o) = s.id.parse::<OrgName>() {
                    org = Some(o);
                }
            }
            _ => {}
        }
    }
    Scope::Org(org.unwrap_or_else(|| default_org.clone()))
}

/// The subject that files a record under `scope`.
pub fn scope_subject(scope: &Scope) -> Result<Subject, ApiError> {
    let (ty, id) = match scope {
        Scope::Project(..) => ("project", scope.to_string()),
        Scope::Org(o) => ("org", o.to_string()),
    };
    Subject::parse(ty, &id)
        .map_err(|e| ApiError::Internal(format!("scope {scope} makes no subject: {e:?}")))
}

/// Refuses records that try to set what only the server sets.
pub fn check_client_record(r: &NewRecord, item: usize) -> Result<(), ApiError> {
    for s in &r.subjects {
        if RESERVED_SUBJECT_TYPES.contains(&s.ty.as_str()) {
            return Err(ApiError::BadRequest(format!(
                "record {item}: subject type `{}` is reserved: the server sets it from your credentials",
                s.ty
            )));
        }
    }
    for l in &r.links {
        if RESERVED_SUBJECT_TYPES.contains(&l.to.ty.as_str()) {
            return Err(ApiError::BadRequest(format!(
                "record {item}: links to `{}:` subjects are reserved to the server",
                l.to.ty
            )));
        }
    }
    if let Some(p) = RESERVED_KIND_PREFIXES
        .iter()
        .find(|p| r.kind.as_str().starts_with(**p))
    {
        return Err(ApiError::BadRequest(format!(
            "record {item}: kinds starting with `{p}` are written by the server only"
        )));
    }
    Ok(())
}

/// Files records under `scope`: adds its subject and keys idempotency per scope, so one
/// tenant's keys can never make another tenant's evidence look like a duplicate.
pub fn stamp(records: &mut [NewRecord], scope: &Scope) -> Result<(), ApiError> {
    let subject = scope_subject(scope)?;
    for r in records {
        r.subjects.insert(0, subject.clone());
        if let Some(k) = &r.idempotency_key {
            r.idempotency_key = Some(format!("{scope}|{k}"));
        }
    }
    Ok(())
}

/// A server-written governance record (access reads, grants, rejected webhooks).
pub fn governance_record(
    kind: &str,
    actor: &str,
    orgs: &[OrgName],
    extra_subjects: Vec<Subject>,
    payload: Value,
) -> Result<NewRecord, ApiError> {
    let kind = Kind::parse(kind)
        .map_err(|e| ApiError::Internal(format!("governance kind {kind:?}: {e}")))?;
    let mut subjects: Vec<Subject> = orgs
        .iter()
        .map(|o| scope_subject(&Scope::Org(o.clone())))
        .collect::<Result<_, _>>()?;
    subjects.extend(extra_subjects);
    Ok(NewRecord {
        kind,
        subjects,
        payload,
        occurred_at: Some(Timestamp::now()),
        actor: Some(actor.to_owned()),
        source: Some("trailmark-server".to_owned()),
        links: Vec::new(),
        idempotency_key: None,
    })
}

/// The `principal:` subject for a caller.
pub fn principal_subject(id: &str) -> Option<Subject> {
    Subject::parse("principal", id).ok()
}

/// Appends an `access.read` record before a person is served evidence; if it cannot be made
/// durable the read is refused, so no person reads evidence without a trace.
pub async fn log_read(
    state: &AppState,
    caller: &Caller,
    action: &str,
    detail: Value,
) -> Result<(), ApiError> {
    if !caller.is_person() {
        return Ok(());
    }
    let actor = caller.actor();
    let mut subjects = Vec::new();
    if let Some(s) = principal_subject(&actor) {
        subjects.push(s);
    }
    // Which credential was used, when it is not the person themselves.
    let via = (actor != caller.id()).then(|| caller.id().to_owned());
    let mut payload = json!({ "action": action, "via": via });
    if let (Value::Object(p), Value::Object(d)) = (&mut payload, detail) {
        p.extend(d);
    }
    let record = governance_record("access.read", &actor, &caller.orgs(), subjects, payload)?;
    let store = state.store.clone();
    store.append_queued(vec![record], vec![]).await?;
    Ok(())
}

/// Whether a principal is a machine identity (OIDC workload).
pub fn is_workload(p: &Principal) -> bool {
    matches!(p.kind, PrincipalKind::Workload)
}
