//! Web sessions for people signed in with a password: a random token in an `HttpOnly`,
//! `SameSite=Strict` cookie, held server-side only as its SHA-256 (like API tokens), with an
//! idle and an absolute lifetime, and a per-session CSRF token every form must echo.
//!
//! Sessions live in the access store (only the token's SHA-256), so a restart signs no one out
//! and every instance sharing the store accepts them; a new password ends all of a user's
//! sessions. The session names only the user; grants are re-read from the access store on
//! every request, so a revoked role takes effect at once. The CSRF token is derived from the
//! session token, not stored.
//!
//! A session cookie authenticates the API's *safe* methods too (GET/HEAD: the UI's export and
//! download links reuse the API handlers and their role checks); it never authenticates an API
//! write, which needs a bearer token — UI writes go through form handlers that check the CSRF
//! token.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use trailmark_access::AccessError;

use axum::http::{HeaderMap, HeaderValue, header};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "trailmark_session";
/// The sign-in form's CSRF cookie (double-submit: there is no session yet to bind it to).
pub const LOGIN_CSRF_COOKIE: &str = "trailmark_login_csrf";

/// What a live session says about the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub user: String,
    /// Forms must echo it; compared in constant time by [`Session::csrf_matches`].
    pub csrf: String,
}

impl Session {
    pub fn csrf_matches(&self, given: &str) -> bool {
        same_token(&self.csrf, given)
    }
}

/// Compares two secret tokens in constant time (for equal lengths); empty never matches.
pub fn same_token(expected: &str, given: &str) -> bool {
    !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

/// The web sessions, kept in the access store (so every process on it — a restarted server,
/// the other instances of a scaled-out deployment — knows them), by the SHA-256 of their token.
/// Blocking: call it off the async threads.
#[derive(Clone, Debug)]
pub struct Sessions {
    store: std::sync::Arc<trailmark_access::AccessStore>,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A session's CSRF token, derived from its (secret) cookie token rather than stored: a page
/// holding it reveals nothing about the cookie, and every process computes the same one.
fn csrf_of(token: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"trailmark web csrf v1\0");
    h.update(token.as_bytes());
    hex::encode(h.finalize())
}

/// 32 random bytes, hex: unguessable and cookie-safe.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    // getrandom failing means the OS has no entropy source; refuse to mint a weak token.
    if getrandom::fill(&mut b).is_err() {
        return String::new();
    }
    hex::encode(b)
}

impl Sessions {
    pub fn new(store: std::sync::Arc<trailmark_access::AccessStore>) -> Sessions {
        Sessions { store }
    }

    /// Starts a session for `user`; returns the cookie token (shown to the browser only).
    pub fn start(&self, user: &str, max: Duration) -> Result<(String, Session), AccessError> {
        let token = random_token();
        if token.is_empty() {
            return Err(AccessError::Storage {
                op: "starting a session",
                message: "the operating system gave no random bytes".into(),
            });
        }
        self.store
            .start_session(&digest(&token), user, jiff::Timestamp::now(), max)?;
        let session = Session {
            user: user.to_owned(),
            csrf: csrf_of(&token),
        };
        Ok((token, session))
    }

    /// The live session for `token`, keeping it alive; an expired one is removed.
    pub fn find(
        &self,
        token: &str,
        idle: Duration,
        max: Duration,
    ) -> Result<Option<Session>, AccessError> {
        Ok(self
            .store
            .session_user(&digest(token), jiff::Timestamp::now(), idle, max)?
            .map(|user| Session {
                user,
                csrf: csrf_of(token),
            }))
    }

    /// Ends the session (sign-out). Unknown tokens are ignored.
    pub fn end(&self, token: &str) -> Result<(), AccessError> {
        self.store.end_session(&digest(token))
    }
}

/// Sign-in attempts: after [`MAX_FAILURES`] failures for one user name within
/// [`FAILURE_WINDOW`], further attempts for it are refused without checking the password
/// (online guessing), until the window passes. Failed attempts are evidence, but an anonymous
/// client must not be able to grow the log without bound: at most [`MAX_RECORDED_PER_MINUTE`]
/// failures a minute are recorded; the rest are counted in the server's log only.
#[derive(Debug)]
pub struct LoginThrottle {
    /// Failures per user name, in the access store: shared by every instance on it, so the
    /// limit holds however many instances answer sign-ins.
    store: std::sync::Arc<trailmark_access::AccessStore>,
    recorded: RecordBudget,
}

pub const MAX_FAILURES: u32 = 10;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
pub const MAX_RECORDED_PER_MINUTE: u32 = 60;

/// How many records of one kind of unauthenticated failure (a failed sign-in, a webhook whose
/// signature does not match) may be appended per minute. Each failure is evidence, but an
/// anonymous client must not be able to grow the log without bound; past the budget the
/// failure is only counted in the server's own log.
#[derive(Debug)]
pub struct RecordBudget {
    per_minute: u32,
    /// The current minute's start and the records appended in it.
    minute: Mutex<Option<(Instant, u32)>>,
}

impl RecordBudget {
    pub const fn new(per_minute: u32) -> RecordBudget {
        RecordBudget {
            per_minute,
            minute: Mutex::new(None),
        }
    }

    /// Takes one record from this minute's budget; `false` when it is spent.
    pub fn take(&self) -> bool {
        let now = Instant::now();
        let Ok(mut m) = self.minute.lock() else {
            return false;
        };
        let (start, used) = match *m {
            Some((start, used)) if now.duration_since(start) < Duration::from_secs(60) => {
                (start, used)
            }
            _ => (now, 0),
        };
        let ok = used < self.per_minute;
        *m = Some((start, if ok { used + 1 } else { used }));
        ok
    }
}

impl LoginThrottle {
    pub fn new(store: std::sync::Arc<trailmark_access::AccessStore>) -> LoginThrottle {
        LoginThrottle {
            store,
            recorded: RecordBudget::new(MAX_RECORDED_PER_MINUTE),
        }
    }

    /// Whether an attempt for `user` may be checked now. Blocking.
    pub fn allows(&self, user: &str) -> Result<bool, AccessError> {
        let n = self
            .store
            .login_failures(user, jiff::Timestamp::now(), FAILURE_WINDOW)?;
        Ok(n < MAX_FAILURES)
    }

    /// Counts a failure for `user`; returns whether it should be recorded in the log. Blocking.
    pub fn failed(&self, user: &str) -> Result<bool, AccessError> {
        self.store
            .record_login_failure(user, jiff::Timestamp::now(), FAILURE_WINDOW)?;
        Ok(self.recorded.take())
    }

    /// A successful sign-in clears the user's failures. Blocking.
    pub fn succeeded(&self, user: &str) -> Result<(), AccessError> {
        self.store.clear_login_failures(user)
    }
}

/// The cookie that ties an OpenID Connect sign-in to the browser that started it. `Lax`, not
/// `Strict`: the provider's redirect back is a cross-site top-level navigation.
pub const OIDC_STATE_COOKIE: &str = "trailmark_oidc_state";
const PENDING_LIFETIME: Duration = Duration::from_secs(10 * 60);

/// An OpenID Connect sign-in waiting for the provider's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingLogin {
    /// Must come back in the ID token (replay of another sign-in's token).
    pub nonce: String,
    /// The PKCE code verifier (RFC 7636): only this server can redeem the code.
    pub verifier: String,
    pub next: String,
}

/// More sign-ins in progress than this and new ones are refused: the store stays bounded
/// whatever anyone does with the sign-in button.
const MAX_PENDING: u64 = 100_000;

/// Sign-ins through the identity provider started and not yet finished, kept in the access
/// store (so the provider may send the browser back to any instance) by the SHA-256 of their
/// `state`; each can be finished once, within ten minutes. Blocking: call it off the async
/// threads.
#[derive(Clone, Debug)]
pub struct PendingLogins {
    store: std::sync::Arc<trailmark_access::AccessStore>,
}

impl PendingLogins {
    pub fn new(store: std::sync::Arc<trailmark_access::AccessStore>) -> PendingLogins {
        PendingLogins { store }
    }

    /// Starts one; returns its `state` (also the cookie's value), or `None` when too many are
    /// under way.
    pub fn start(&self, next: &str) -> Result<Option<(String, PendingLogin)>, AccessError> {
        let (state, nonce, verifier) = (random_token(), random_token(), random_token());
        if state.is_empty() || nonce.is_empty() || verifier.is_empty() {
            return Err(AccessError::Storage {
                op: "starting a sign-in",
                message: "the operating system gave no random bytes".into(),
            });
        }
        let p = PendingLogin {
            nonce,
            verifier,
            next: next.to_owned(),
        };
        let started = self.store.start_pending_login(
            &digest(&state),
            &p.nonce,
            &p.verifier,
            &p.next,
            jiff::Timestamp::now(),
            PENDING_LIFETIME,
            MAX_PENDING,
        )?;
        Ok(started.then_some((state, p)))
    }

    /// Finishes one: returns it once, if it is live.
    pub fn take(&self, state: &str) -> Result<Option<PendingLogin>, AccessError> {
        Ok(self
            .store
            .take_pending_login(&digest(state), jiff::Timestamp::now(), PENDING_LIFETIME)?
            .map(|(nonce, verifier, next)| PendingLogin {
                nonce,
                verifier,
                next,
            }))
    }
}

/// A cookie like [`set_cookie`] but `SameSite=Lax` (sent on the provider's redirect back).
pub fn set_lax_cookie(name: &str, value: &str, secure: bool, max_age: Duration) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!(
        "{name}={value}; Path=/ui/login/oidc; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        max_age.as_secs()
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The value of cookie `name` in the request, if present once.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, `Path=/`, `Secure` when asked;
/// `max_age` zero clears the cookie.
pub fn set_cookie(name: &str, value: &str, secure: bool, max_age: Duration) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        max_age.as_secs()
    );
    // Names are constants and values hex: always a valid header value.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_kept_in_the_access_store_expire_and_end() {
        let store = std::sync::Arc::new(
            trailmark_access::AccessStore::open_in_memory().expect("access store"),
        );
        store
            .create_user("alice", "a long enough password")
            .expect("user");
        let s = Sessions::new(store.clone());
        let minute = Duration::from_secs(60);
        assert!(
            s.start("nobody", minute).is_err(),
            "an unknown user has no session"
        );
        let (token, session) = s.start("alice", minute).expect("session");
        assert_eq!(token.len(), 64);
        let found = s.find(&token, minute, minute).expect("read").expect("live");
        assert_eq!(found, session);
        assert!(found.csrf_matches(&session.csrf));
        assert!(!found.csrf_matches("nope"));
        assert_ne!(session.csrf, token);
        // Another process on the same store knows the session.
        let other = Sessions::new(store.clone());
        assert_eq!(
            other.find(&token, minute, minute).expect("read"),
            Some(session)
        );
        assert_eq!(s.find("other", minute, minute).expect("read"), None);
        // An idle limit of zero has always elapsed: the session is gone, and stays gone.
        assert_eq!(s.find(&token, Duration::ZERO, minute).expect("read"), None);
        assert_eq!(s.find(&token, minute, minute).expect("read"), None);
        let (t2, _) = s.start("alice", minute).expect("session");
        s.end(&t2).expect("end");
        assert_eq!(s.find(&t2, minute, minute).expect("read"), None);
        // A new password ends every session of the user.
        let (t3, _) = s.start("alice", minute).expect("session");
        store
            .set_password("alice", "another long password")
            .expect("password");
        assert_eq!(s.find(&t3, minute, minute).expect("read"), None);
    }

    #[test]
    fn repeated_failures_throttle_one_user_name_only_across_instances() {
        let store = std::sync::Arc::new(
            trailmark_access::AccessStore::open_in_memory().expect("access store"),
        );
        let t = LoginThrottle::new(store.clone());
        // A second instance on the same store sees the same failures.
        let other = LoginThrottle::new(store);
        for i in 0..MAX_FAILURES {
            let (a, b) = if i % 2 == 0 {
                (&t, &other)
            } else {
                (&other, &t)
            };
            assert!(a.allows("Alice").expect("read"));
            assert!(b.failed("alice").expect("count"));
        }
        assert!(
            !t.allows("alice").expect("read"),
            "the eleventh attempt is not checked"
        );
        assert!(!other.allows("ALICE").expect("read"));
        assert!(t.allows("bob").expect("read"));
        t.succeeded("alice").expect("clear");
        assert!(other.allows("alice").expect("read"));
        // The log records at most MAX_RECORDED_PER_MINUTE failures a minute per instance,
        // whoever they are for.
        let recorded = (0..100)
            .filter(|i| t.failed(&format!("user{i}")).expect("count"))
            .count();
        assert_eq!(recorded as u32, MAX_RECORDED_PER_MINUTE - MAX_FAILURES / 2);
    }

    #[test]
    fn cookies_are_parsed_and_set_strictly() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; trailmark_session=abc"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "b"), None);
        let v = set_cookie(SESSION_COOKIE, "abc", true, Duration::from_secs(5));
        assert_eq!(
            v.to_str().ok(),
            Some("trailmark_session=abc; Path=/; HttpOnly; SameSite=Strict; Max-Age=5; Secure")
        );
    }
}
