//! The REST API under `/api/v1`, health endpoints, and the OpenAPI document generated from the
//! handlers' annotations.

pub mod access;
pub mod dossier;
pub mod evidence;
pub mod health;
pub mod log;
pub mod metrics;
pub mod releases;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "Trailmark", description = "A verifiable system of record for software-delivery evidence."),
    paths(
        evidence::append, evidence::query, evidence::one, evidence::graph, evidence::blob,
        metrics::metrics,
        log::latest, log::at_size, log::inclusion, log::consistency,
        access::create_token, access::list_tokens, access::revoke_token, access::create_user,
        access::add_grant, access::revoke_grant, access::create_project, access::whoami,
        releases::create, releases::link, releases::show, releases::decide, releases::gate, releases::pending,
        releases::checks, releases::policy_show, releases::policy_apply, releases::policy_decide,
        releases::raise_exception, releases::exceptions, releases::decide_exception,
        releases::propose_rollback, releases::update_rollback, releases::replay, releases::clear,
        dossier::export, dossier::certify, dossier::explain, dossier::population,
        crate::hooks::receive, health::healthz, health::readyz,
    ),
    components(schemas(crate::error::Problem)),
    modifiers(&Bearer),
    tags(
        (name = "evidence", description = "Record and read evidence"),
        (name = "log", description = "Signed checkpoints and proofs"),
        (name = "access", description = "Tokens, users, roles"),
        (name = "governance", description = "Releases, approvals and release gates"),
        (name = "dossier", description = "Compliance dossiers, certification and audits"),
        (name = "webhooks", description = "Signed deliveries from delivery tools"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
pub struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(c) = openapi.components.as_mut() {
            c.add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some(
                            "A Trailmark API token (tmk_...) or an OIDC identity token (JWT) from a configured issuer",
                        ))
                        .build(),
                ),
            );
        }
    }
}

/// The OpenAPI 3.1 document, as served at `/api/openapi.json`.
pub fn openapi_json() -> String {
    let mut doc = match serde_json::to_value(ApiDoc::openapi()) {
        Ok(v) => v,
        Err(e) => return format!("{{\"error\": \"{e}\"}}"),
    };
    problem_media_type(&mut doc);
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// utoipa declares every body as `application/json`; errors are served as RFC 9457
/// `application/problem+json`, so the document says so.
fn problem_media_type(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            if let Some(serde_json::Value::Object(content)) = m.get_mut("content")
                && content
                    .get("application/json")
                    .and_then(|c| c.pointer("/schema/$ref"))
                    .is_some_and(|r| r == "#/components/schemas/Problem")
                && let Some(c) = content.remove("application/json")
            {
                content.insert("application/problem+json".into(), c);
            }
            m.values_mut().for_each(problem_media_type);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(problem_media_type),
        _ => {}
    }
}
