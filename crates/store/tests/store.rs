//! Store tests. `conformance` holds backend-independent tests written against the `Store`
//! trait; `backend_tests!` instantiates them for each backend. `sqlite` holds what only the
//! embedded backend can be asked (tampering with the file, triggers, migrations).
#![allow(clippy::unwrap_used)]

#[path = "store/common.rs"]
mod common;
#[path = "store/conformance.rs"]
mod conformance;
#[path = "store/sqlite.rs"]
mod sqlite;
