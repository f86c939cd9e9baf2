//! Access tests: `model` covers names, scopes, the role matrix and decisions (pure); `store`
//! the SQLite access store (users, grants, tokens, secrets at rest); `oidc` identity-token
//! verification with real RS256/ES256 signatures and a JWKS served over loopback HTTP.
#![allow(clippy::unwrap_used)]

#[path = "access/model.rs"]
mod model;
#[path = "access/oidc.rs"]
mod oidc;
#[path = "access/store.rs"]
mod store;
