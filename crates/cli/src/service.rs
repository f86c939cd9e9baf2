//! `serve` and the access-management commands (`token`, `user`, `org`). Thin: configuration,
//! opening the stores, and calling `trailmark_server`.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::json;
use trailmark_access::{AccessStore, Grant, OrgName, ProjectName, Role, Scope, TokenId};
use trailmark_server::governance::{self, NewToken};
use trailmark_server::{ApiError, AppState, Config};
use trailmark_store::Store;

use crate::args::{OrgCommand, TokenCommand, UserCommand};
use crate::datadir::DataDir;
use crate::error::{CliError, input, io};

/// Who the audit trail names when a local operator changes access from the command line.
fn operator() -> String {
    let user = std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "unknown".into());
    format!("local:{user}")
}

impl From<ApiError> for CliError {
    fn from(e: ApiError) -> CliError {
        match e {
            ApiError::Internal(m) | ApiError::Unavailable(m) => CliError::Environment(m),
            other => CliError::Input(other.to_string()),
        }
    }
}

fn access_err(e: trailmark_access::AccessError) -> CliError {
    CliError::from(governance::conflict_or(e))
}

fn open_access(dir: &DataDir) -> Result<AccessStore, CliError> {
    dir.open_access().map_err(access_err)
}

fn env_map() -> BTreeMap<String, String> {
    std::env::vars()
        .filter(|(k, _)| k.starts_with("TRAILMARK_"))
        .collect()
}

pub fn serve(
    data_dir: PathBuf,
    data_dir_explicit: bool,
    database: Option<String>,
    config_path: Option<PathBuf>,
    listen: Option<String>,
) -> Result<(), CliError> {
    let mut env = env_map();
    if let Some(l) = listen {
        env.insert("TRAILMARK_LISTEN".into(), l);
    }
    if let Some(d) = database {
        env.insert("TRAILMARK_DATABASE_URL".into(), d);
    }
    if data_dir_explicit {
        env.insert("TRAILMARK_DATA".into(), data_dir.display().to_string());
    }
    let mut config = Config::load(config_path.as_deref(), &env)
        .map_err(|e| input(format!("configuration: {e}")))?;
    if !data_dir_explicit && !env.contains_key("TRAILMARK_DATA") && config_path.is_none() {
        config.data_dir = data_dir;
    }
    trailmark_server::init_logging(config.log_format);
    let dir = DataDir::new(config.data_dir.clone()).with_database(config.database_url.clone())?;
    let fresh = !dir.exists();
    let store: Arc<dyn Store> = if fresh {
        Arc::from(dir.init(None)?.0)
    } else {
        Arc::from(dir.open()?)
    };
    let access = Arc::new(open_access(&dir)?);
    if fresh {
        bootstrap(&dir, store.as_ref(), &access, &config.default_org)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(io("starting the async runtime".into()))?;
    let state = AppState::new(store, access, config.clone())
        .map_err(|e| input(format!("configuration: {e}")))?;
    // Certifications are signed with the log's key, which lives in the data directory.
    if let Ok(signer) = dir.signer() {
        state.set_certifier(signer);
    }
    // People and their identities across tools, for separation of duties: kept in the log,
    // where a data directory's legacy people.json is recorded while the log holds no version.
    crate::governance::people(&dir, state.store.as_ref())?;
    let result = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(io(format!("listening on {}", config.listen)))?;
        let addr = listener
            .local_addr()
            .map_err(io("reading the listen address".into()))?;
        eprintln!(
            "Trailmark is serving http://{addr}/ (web UI /ui/, API /api/v1, OpenAPI /api/openapi.json, health /healthz); log in {}",
            dir.describe()
        );
        let password_file = dir.root().join("admin.password");
        if password_file.exists() {
            eprintln!(
                "  sign in at http://{addr}/ui/ as `admin` with the password in {}",
                password_file.display()
            );
        }
        for hook in state.hooks.values() {
            eprintln!("  webhook: http://{addr}{} ({} → {})", hook.path(), hook.source, hook.scope);
        }
        let app = trailmark_web::app(state.clone());
        trailmark_server::serve_app(app, state, listener, trailmark_server::shutdown_signal())
            .await
            .map_err(io("serving".into()))
    });
    // The runtime (and with it the last handle to the store) is dropped here: the writer thread
    // finishes its queue before the process exits.
    drop(runtime);
    eprintln!("Trailmark stopped");
    result
}

/// First start on a fresh data directory: the default organisation and an admin token for it,
/// written to `<data-dir>/admin.token` (mode 0600) rather than to a log or the terminal.
fn bootstrap(
    dir: &DataDir,
    store: &dyn Store,
    access: &AccessStore,
    org: &OrgName,
) -> Result<(), CliError> {
    let actor = operator();
    if !access.orgs().map_err(access_err)?.contains(org) {
        governance::create_org(store, access, &actor, org)?;
    }
    let (secret, info) = governance::create_token(
        store,
        access,
        &actor,
        NewToken {
            name: "bootstrap admin".into(),
            grant: Grant {
                role: Role::Admin,
                scope: Scope::Org(org.clone()),
            },
            owner: None,
            expires_at: None,
        },
    )?;
    let path = dir.root().join("admin.token");
    crate::datadir::write_new(&path, &format!("{}\n", secret.expose()), true)?;
    // A person to sign in to the web UI as: `admin`, with a random password kept beside the
    // token (mode 0600), never printed.
    let password = trailmark_server::session::random_token();
    if password.is_empty() {
        return Err(input("no randomness available for the admin password"));
    }
    let password = password.get(..24).unwrap_or(&password).to_owned();
    if access
        .users()
        .map_err(access_err)?
        .iter()
        .all(|u| u != "admin")
    {
        governance::create_user(store, access, &actor, org, "admin", &password)?;
        governance::grant(
            store,
            access,
            &actor,
            "admin",
            &Grant {
                role: Role::Admin,
                scope: Scope::Org(org.clone()),
            },
        )?;
        crate::datadir::write_new(
            &dir.root().join("admin.password"),
            &format!("{password}\n"),
            true,
        )?;
    }
    eprintln!(
        "Created a new store in {}: organisation `{org}`, and admin token {} written to {} (keep it secret; revoke with `trailmark token revoke {}`)",
        dir.root().display(),
        info.id,
        path.display(),
        info.id
    );
    Ok(())
}

fn parse_scope(s: &str) -> Result<Scope, CliError> {
    s.parse::<Scope>()
        .map_err(|e| input(format!("--scope {s:?}: {e}")))
}

fn parse_role(s: &str) -> Result<Role, CliError> {
    s.parse::<Role>()
        .map_err(|e| input(format!("--role {s:?}: {e}")))
}

/// An RFC 3339 instant, or a duration from now: `30d`, `12h`, `90m`.
fn parse_expiry(s: &str) -> Result<jiff::Timestamp, CliError> {
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Ok(t);
    }
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = num.parse().map_err(|_| {
        input(format!(
            "--expires {s:?}: not an RFC 3339 instant or a duration like 30d"
        ))
    })?;
    let secs = match unit {
        "d" => n.checked_mul(86_400),
        "h" => n.checked_mul(3_600),
        "m" => n.checked_mul(60),
        _ => None,
    }
    .filter(|s| *s > 0)
    .ok_or_else(|| {
        input(format!(
            "--expires {s:?}: use a positive number of d, h or m"
        ))
    })?;
    jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(secs))
        .map_err(|e| input(format!("--expires {s:?}: {e}")))
}

pub fn token(dir: &DataDir, cmd: TokenCommand, out: &mut impl Write) -> Result<(), CliError> {
    let store = dir.open()?;
    let access = open_access(dir)?;
    match cmd {
        TokenCommand::Create {
            name,
            role,
            scope,
            owner,
            expires,
        } => {
            let grant = Grant {
                role: parse_role(&role)?,
                scope: parse_scope(&scope)?,
            };
            let expires_at = expires.as_deref().map(parse_expiry).transpose()?;
            let (secret, info) = governance::create_token(
                store.as_ref(),
                &access,
                &operator(),
                NewToken {
                    name,
                    grant,
                    owner,
                    expires_at,
                },
            )?;
            eprintln!(
                "created token {} ({} on {}); it is shown once, below",
                info.id, info.grant.role, info.grant.scope
            );
            writeln!(out, "{}", secret.expose()).map_err(crate::commands::stdout_err)
        }
        TokenCommand::List { org } => {
            let org = org
                .map(|o| {
                    o.parse::<OrgName>()
                        .map_err(|e| input(format!("--org {o:?}: {e}")))
                })
                .transpose()?;
            for t in access.tokens(org.as_ref()).map_err(access_err)? {
                writeln!(out, "{}", governance::token_json(&t))
                    .map_err(crate::commands::stdout_err)?;
            }
            Ok(())
        }
        TokenCommand::Revoke { id } => {
            let id: TokenId = id
                .parse()
                .map_err(|e| input(format!("token id {id:?}: {e}")))?;
            let info = governance::revoke_token(store.as_ref(), &access, &operator(), &id)?;
            writeln!(out, "{}", governance::token_json(&info)).map_err(crate::commands::stdout_err)
        }
    }
}

pub fn user(dir: &DataDir, cmd: UserCommand, out: &mut impl Write) -> Result<(), CliError> {
    let store = dir.open()?;
    let access = open_access(dir)?;
    match cmd {
        UserCommand::Create { name, org } => {
            let org: OrgName = org
                .parse()
                .map_err(|e| input(format!("--org {org:?}: {e}")))?;
            let mut password = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut password)
                .map_err(io("reading the password from stdin".into()))?;
            let password = password.trim_end_matches(['\n', '\r']);
            governance::create_user(store.as_ref(), &access, &operator(), &org, &name, password)?;
            eprintln!("created user {name}");
            Ok(())
        }
        UserCommand::Grant { name, role, scope } => {
            let grant = Grant {
                role: parse_role(&role)?,
                scope: parse_scope(&scope)?,
            };
            governance::grant(store.as_ref(), &access, &operator(), &name, &grant)?;
            eprintln!("granted {} on {} to {name}", grant.role, grant.scope);
            Ok(())
        }
        UserCommand::Revoke { name, role, scope } => {
            let grant = Grant {
                role: parse_role(&role)?,
                scope: parse_scope(&scope)?,
            };
            if !governance::revoke_grant(store.as_ref(), &access, &operator(), &name, &grant)? {
                return Err(input(format!(
                    "{name} does not hold {} on {}",
                    grant.role, grant.scope
                )));
            }
            eprintln!("revoked {} on {} from {name}", grant.role, grant.scope);
            Ok(())
        }
        UserCommand::List => {
            for u in access.users().map_err(access_err)? {
                let grants: Vec<_> = access
                    .grants(&u)
                    .map_err(access_err)?
                    .iter()
                    .map(|g| json!({"role": g.role.to_string(), "scope": g.scope.to_string()}))
                    .collect();
                writeln!(out, "{}", json!({"user": u, "grants": grants}))
                    .map_err(crate::commands::stdout_err)?;
            }
            Ok(())
        }
    }
}

pub fn org(dir: &DataDir, cmd: OrgCommand, out: &mut impl Write) -> Result<(), CliError> {
    let store = dir.open()?;
    let access = open_access(dir)?;
    match cmd {
        OrgCommand::Create { name } => {
            let org: OrgName = name
                .parse()
                .map_err(|e| input(format!("organisation {name:?}: {e}")))?;
            governance::create_org(store.as_ref(), &access, &operator(), &org)?;
            eprintln!("created organisation {org}");
            Ok(())
        }
        OrgCommand::Project { name } => {
            let Some((o, p)) = name.split_once('/') else {
                return Err(input(format!("{name:?}: give ORG/PROJECT")));
            };
            let org: OrgName = o
                .parse()
                .map_err(|e| input(format!("organisation {o:?}: {e}")))?;
            let project: ProjectName = p
                .parse()
                .map_err(|e| input(format!("project {p:?}: {e}")))?;
            governance::create_project(store.as_ref(), &access, &operator(), &org, &project)?;
            eprintln!("created project {org}/{project}");
            Ok(())
        }
        OrgCommand::List => {
            for o in access.orgs().map_err(access_err)? {
                let projects: Vec<String> = access
                    .projects(&o)
                    .map_err(access_err)?
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                writeln!(
                    out,
                    "{}",
                    json!({"org": o.to_string(), "projects": projects})
                )
                .map_err(crate::commands::stdout_err)?;
            }
            Ok(())
        }
    }
}
