//! Store tests. `conformance` holds backend-independent tests written against the `Store`
//! trait; `backend_tests!` instantiates them for each backend. `sqlite` holds what only the
//! embedded backend can be asked (tampering with the file, triggers, migrations); `postgres`
//! what only a shared database can (triggers and grants, several instances on one log). The
//! PostgreSQL tests need a server (see `store/postgres.rs`) and fail without one.
#![allow(clippy::unwrap_used)]

#[path = "store/common.rs"]
mod common;
#[path = "store/conformance.rs"]
mod conformance;
#[path = "store/postgres.rs"]
mod postgres;
#[path = "store/sqlite.rs"]
mod sqlite;
