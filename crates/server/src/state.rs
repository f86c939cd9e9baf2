//! What every handler shares: the evidence store, the access store, the OIDC verifier and the
//! validated configuration.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use trailmark_access::{AccessError, AccessStore, OidcVerifier};
use trailmark_store::Store;

use crate::config::{Config, Hook};

/// Cheap to clone: one `Arc`.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

#[allow(missing_debug_implementations)] // AppState's Debug covers it
pub struct Inner {
    pub store: Arc<dyn Store>,
    pub access: Arc<AccessStore>,
    pub oidc: OidcVerifier,
    pub config: Config,
    /// Hooks by path (`/hooks/github`, `/hooks/github/payments`).
    pub hooks: BTreeMap<String, Hook>,
    /// People and their identities across tools (separation of duties): see
    /// [`AppState::people`].
    people: std::sync::RwLock<People>,
    /// Signed-in people of the web UI.
    pub sessions: crate::session::Sessions,
    /// Failed web sign-ins per user name.
    pub logins: crate::session::LoginThrottle,
    /// Rejected webhook deliveries recorded this minute (see [`crate::session::RecordBudget`]).
    pub webhook_rejections: crate::session::RecordBudget,
    /// OpenID Connect sign-ins under way, and the verifier of their ID tokens.
    pub pending_logins: crate::session::PendingLogins,
    pub login_verifier: Option<OidcVerifier>,
    /// The key release certifications are signed with (the log's), when this server may certify.
    certifier: std::sync::RwLock<Option<trailmark_log::SignerKey>>,
    draining: AtomicBool,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("origin", &self.0.store.origin())
            .field("listen", &self.0.config.listen)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// Fails when an OIDC provider's configuration is unusable (e.g. its JWKS file).
    pub fn new(
        store: Arc<dyn Store>,
        access: Arc<AccessStore>,
        config: Config,
    ) -> Result<AppState, AccessError> {
        let hooks = config.hooks.iter().map(|h| (h.path(), h.clone())).collect();
        let oidc = OidcVerifier::new(config.oidc.clone())?;
        let login_verifier = match &config.login_oidc {
            Some(l) => Some(OidcVerifier::new(vec![l.provider.clone()])?),
            None => None,
        };
        let sessions = crate::session::Sessions::new(access.clone());
        let pending_logins = crate::session::PendingLogins::new(access.clone());
        let logins = crate::session::LoginThrottle::new(access.clone());
        Ok(AppState(Arc::new(Inner {
            store,
            access,
            oidc,
            config,
            hooks,
            people: std::sync::RwLock::new(People::default()),
            sessions,
            logins,
            webhook_rejections: crate::session::RecordBudget::new(
                crate::hooks::MAX_REJECTIONS_RECORDED_PER_MINUTE,
            ),
            pending_logins,
            login_verifier,
            certifier: std::sync::RwLock::new(None),
            draining: AtomicBool::new(false),
        })))
    }

    /// Sets the identity map used while the log holds no version of one (see
    /// [`AppState::people`]).
    pub fn set_people(&self, map: trailmark_ingest::identity::IdentityMap) {
        if let Ok(mut p) = self.0.people.write() {
            p.given = Arc::new(map);
        }
    }

    /// Lets this server certify releases, signing with `key`.
    pub fn set_certifier(&self, key: trailmark_log::SignerKey) {
        if let Ok(mut c) = self.0.certifier.write() {
            *c = Some(key);
        }
    }

    pub fn certifier(&self) -> Option<trailmark_log::SignerKey> {
        self.0.certifier.read().ok().and_then(|c| c.clone())
    }

    /// The identity map in force: the latest version recorded in the log, which a command
    /// run beside the server (`trailmark people set`) may have just recorded. Each call looks up
    /// the latest version's record (an index lookup) and re-reads the map only when it moved.
    /// While the log holds no version, the map given to [`AppState::set_people`] (none by
    /// default). Blocking: call it off the async threads.
    pub fn people(&self) -> Arc<trailmark_ingest::identity::IdentityMap> {
        let known = match self.0.people.read() {
            Ok(p) => p.clone(),
            Err(_) => return Arc::default(),
        };
        let latest = match trailmark_policy::people::latest_record(self.0.store.as_ref()) {
            Ok(latest) => latest,
            Err(e) => {
                // The operation that asked will read the same store and fail on its own; the
                // map it was last known to be is the best answer meanwhile.
                tracing::error!(error = %e, "reading the identity map's latest version");
                return known.logged.map_or(known.given, |(_, m)| m);
            }
        };
        match (latest, &known.logged) {
            (None, _) => known.given,
            (Some(i), Some((at, map))) if *at == i => map.clone(),
            (Some(i), _) => match trailmark_policy::people::version_at(self.0.store.as_ref(), i) {
                Ok(v) => {
                    let map = Arc::new(v.map);
                    if let Ok(mut p) = self.0.people.write() {
                        p.logged = Some((i, map.clone()));
                    }
                    map
                }
                Err(e) => {
                    tracing::error!(error = %e, record = i, "reading the identity map");
                    known.logged.map_or(known.given, |(_, m)| m)
                }
            },
        }
    }

    /// Marks the server as shutting down: readiness fails so load balancers stop sending.
    pub fn start_draining(&self) {
        self.0.draining.store(true, Ordering::SeqCst);
    }

    pub fn draining(&self) -> bool {
        self.0.draining.load(Ordering::SeqCst)
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// The identity maps [`AppState::people`] chooses between.
#[derive(Clone, Debug, Default)]
struct People {
    /// Given with [`AppState::set_people`]: used while the log holds no version.
    given: Arc<trailmark_ingest::identity::IdentityMap>,
    /// The latest version read from the log, and its record index.
    logged: Option<(u64, Arc<trailmark_ingest::identity::IdentityMap>)>,
}
