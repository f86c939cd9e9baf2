//! Deployment protection responders: when a forge asks whether a deployment may proceed, the
//! release gate answers. GitHub sends `deployment_protection_rule` (action `requested`) with a
//! callback URL; GitLab sends a `deployment` hook with status `blocked` for a protected
//! environment that needs approval. Either way Trailmark finds the release (within the hook's
//! scope) that includes the deployed commit, evaluates and records the gate, and calls back
//! `approved` or `rejected` with the reasons. No release, or any doubt: `rejected` (fail closed).
//!
//! Callbacks only ever go to the configured `api_url` (a delivery cannot point Trailmark at
//! another host), and credentials are never logged.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};
use trailmark_policy::{Governance, Outcome, Status};
use utoipa::ToSchema;

use crate::config::{Hook, HookSource, Respond};
use crate::state::AppState;

const TIMEOUT: Duration = Duration::from_secs(8);

/// A deployment asking for permission.
#[derive(Clone, Debug)]
pub struct DeployRequest {
    pub environment: String,
    pub sha: String,
    pub deployer: Option<String>,
    target: Target,
}

#[derive(Clone, Debug)]
enum Target {
    Github {
        callback_url: String,
        installation: u64,
    },
    Gitlab {
        project: u64,
        deployment: u64,
    },
}

/// What the responder did, returned in the delivery's response.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Answer {
    /// The release the deployed commit belongs to, when one was found.
    pub release: Option<String>,
    /// The gate decision's record.
    pub gate_record: Option<u64>,
    /// `approved` or `rejected`: what was sent back.
    pub state: String,
    pub comment: String,
    /// `sent`, or why the callback failed.
    pub callback: String,
}

fn text<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    trailmark_model::json_at(v, ptr)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The deployment request in a delivery, if it is one this hook should answer.
pub fn request(hook: &Hook, event: Option<&str>, body: &[u8]) -> Option<DeployRequest> {
    hook.respond.as_ref()?;
    // GitHub names the event in a header: any other event's body (nearly every delivery) is not
    // parsed a second time here. The other sources besides GitLab never ask.
    match (hook.source, event) {
        (HookSource::Github, Some("deployment_protection_rule")) | (HookSource::Gitlab, _) => {}
        _ => return None,
    }
    let v: Value = serde_json::from_slice(body).ok()?;
    match hook.source {
        HookSource::Github => {
            if text(&v, "/action") != Some("requested") {
                return None;
            }
            Some(DeployRequest {
                environment: text(&v, "/environment")?.to_owned(),
                sha: text(&v, "/deployment/sha")?.to_ascii_lowercase(),
                deployer: text(&v, "/deployment/creator/login")
                    .or_else(|| text(&v, "/sender/login"))
                    .map(|l| format!("github:{l}")),
                target: Target::Github {
                    callback_url: text(&v, "/deployment_callback_url")?.to_owned(),
                    installation: v.pointer("/installation/id").and_then(Value::as_u64)?,
                },
            })
        }
        HookSource::Gitlab => {
            if text(&v, "/object_kind") != Some("deployment")
                || text(&v, "/status") != Some("blocked")
            {
                return None;
            }
            let sha = text(&v, "/commit_url")?
                .rsplit('/')
                .next()?
                .to_ascii_lowercase();
            Some(DeployRequest {
                environment: text(&v, "/environment")?.to_owned(),
                sha,
                deployer: text(&v, "/user/username").map(|u| format!("gitlab:{u}")),
                target: Target::Gitlab {
                    project: v.pointer("/project/id").and_then(Value::as_u64)?,
                    deployment: v.pointer("/deployment_id").and_then(Value::as_u64)?,
                },
            })
        }
        _ => None,
    }
}

/// Evaluates the gate for the request and calls the forge back. Blocking: run it off the
/// async threads.
pub fn answer(state: &AppState, hook: &Hook, req: &DeployRequest) -> Answer {
    let scope = hook.scope.to_string();
    let people = state.people();
    let mut g = Governance::new(state.store.as_ref(), &people);
    g.policy_name = hook.scope.org().to_string();
    let (release, gate_record, approved, comment) = match g.release_including(&req.sha, &scope) {
        Err(e) => (
            None,
            None,
            false,
            format!("Trailmark could not look up the release: {e}"),
        ),
        Ok(None) => (
            None,
            None,
            false,
            format!("no release in {scope} includes commit {}", req.sha),
        ),
        Ok(Some(release)) => match g.gate(&release, &req.environment, req.deployer.as_deref()) {
            Err(e) => (
                Some(release),
                None,
                false,
                format!("the gate could not be evaluated: {e}"),
            ),
            Ok(r) => {
                let ok = r.decision.decision.permits();
                let mut c = match r.decision.decision {
                    Outcome::Allow => {
                        format!("Trailmark gate allowed {release} to {}", req.environment)
                    }
                    Outcome::AllowWithException => format!(
                        "Trailmark gate allowed {release} to {} under exception {}",
                        req.environment,
                        r.decision.exception.as_deref().unwrap_or("?")
                    ),
                    Outcome::Deny => {
                        format!("Trailmark gate denied {release} to {}:", req.environment)
                    }
                };
                for check in r
                    .decision
                    .checks
                    .iter()
                    .filter(|c| c.status == Status::Fail)
                {
                    for why in &check.reasons {
                        c.push_str(&format!("\n- {why}"));
                    }
                }
                c.push_str(&format!("\n(decision record {})", r.record));
                (Some(release), Some(r.record), ok, c)
            }
        },
    };
    // GitHub limits the comment; keep it readable and bounded.
    let comment: String = comment.chars().take(1000).collect();
    let state_text = if approved { "approved" } else { "rejected" };
    let callback = match call_back(hook, req, state_text, &comment) {
        Ok(()) => "sent".to_owned(),
        Err(e) => {
            tracing::warn!(hook = %hook.path(), error = %e, "deployment callback failed");
            format!("failed: {e}")
        }
    };
    Answer {
        release,
        gate_record,
        state: state_text.to_owned(),
        comment,
        callback,
    }
}

fn agent(api_url: &str) -> ureq::Agent {
    let mut config = ureq::Agent::config_builder()
        .timeout_global(Some(TIMEOUT))
        .max_redirects(0)
        .user_agent("trailmark");
    if api_url.starts_with("http://127.0.0.1")
        || api_url.starts_with("http://localhost")
        || api_url.starts_with("http://[::1]")
    {
        config = config.proxy(None);
    } else {
        config = config.https_only(true);
    }
    config.build().into()
}

fn post(
    agent: &ureq::Agent,
    url: &str,
    auth: (&str, &str),
    body: &Value,
) -> Result<String, String> {
    let mut res = agent
        .post(url)
        .header(auth.0, auth.1)
        .header("accept", "application/json")
        .header("content-type", "application/json")
        .send(body.to_string())
        .map_err(|e| e.to_string())?;
    res.body_mut()
        .with_config()
        .limit(1 << 20)
        .read_to_string()
        .map_err(|e| e.to_string())
}

fn call_back(hook: &Hook, req: &DeployRequest, state: &str, comment: &str) -> Result<(), String> {
    match (&hook.respond, &req.target) {
        (
            Some(Respond::Github {
                api_url,
                app_id,
                private_key,
            }),
            Target::Github {
                callback_url,
                installation,
            },
        ) => {
            if !callback_url.starts_with(&format!("{api_url}/")) {
                return Err(format!(
                    "callback URL is not under the configured api_url {api_url}"
                ));
            }
            let agent = agent(api_url);
            let now = jiff::Timestamp::now().as_second();
            let key = jsonwebtoken::EncodingKey::from_rsa_pem(private_key.expose())
                .map_err(|_| "the App key is unusable".to_owned())?;
            // Backdated a minute for clock drift; GitHub accepts at most ten minutes.
            let claims = json!({"iat": now - 60, "exp": now + 540, "iss": app_id.to_string()});
            let jwt = jsonwebtoken::encode(
                &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
                &claims,
                &key,
            )
            .map_err(|e| format!("signing the App JWT: {e}"))?;
            let tokens = post(
                &agent,
                &format!("{api_url}/app/installations/{installation}/access_tokens"),
                ("authorization", &format!("Bearer {jwt}")),
                &json!({}),
            )
            .map_err(|e| format!("installation token: {e}"))?;
            let token = serde_json::from_str::<Value>(&tokens)
                .ok()
                .and_then(|v| v.get("token").and_then(Value::as_str).map(str::to_owned))
                .ok_or("installation token: no token in the answer")?;
            post(
                &agent,
                callback_url,
                ("authorization", &format!("Bearer {token}")),
                &json!({"environment_name": req.environment, "state": state, "comment": comment}),
            )
            .map(|_| ())
        }
        (
            Some(Respond::Gitlab { api_url, token }),
            Target::Gitlab {
                project,
                deployment,
            },
        ) => {
            let agent = agent(api_url);
            let token = std::str::from_utf8(token.expose())
                .map_err(|_| "the token is not UTF-8".to_owned())?;
            post(
                &agent,
                &format!("{api_url}/api/v4/projects/{project}/deployments/{deployment}/approval"),
                ("private-token", token),
                &json!({"status": state, "comment": comment}),
            )
            .map(|_| ())
        }
        _ => Err("this hook is not configured to answer this forge".into()),
    }
}
