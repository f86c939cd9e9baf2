//! Governance: releases, approval policies, separation of duties, release gates, break-glass
//! exceptions and rollback decisions — enforced at the moment of deployment, and recorded.
//!
//! Layers, in the order data flows:
//! - [`policy`]: policy files (TOML) parsed into a [`Policy`] valid by construction; stored in
//!   the log as JSON with every Rego module's source embedded, identified by its digest.
//! - [`collect`]: reads the log (release links, commits, reviews, tests, scans, SBOMs,
//!   provenance, tickets, approvals, exceptions, branch protection) into a [`GateInput`]
//!   document; people resolved across tools with the identity map.
//! - [`eval`]: pure `evaluate(policy, input) → Decision`, with Rego rules from [`rego`]. No
//!   store, clock or network, so a recorded decision can be recomputed offline.
//! - [`people`]: the identity map, kept in the log as versions (who set it, when).
//! - [`ops`]: the operations the CLI and server share ([`Governance`]); each appends its record
//!   (see [`kinds`]) in one durable append, or refuses with nothing stored.
#![forbid(unsafe_code)]

pub mod collect;
mod error;
pub mod eval;
pub mod input;
pub mod kinds;
pub mod ops;
pub mod people;
pub mod policy;
pub mod rego;
pub mod span;

pub use error::PolicyError;
pub use eval::{CheckOutcome, Decision, Outcome, Status, evaluate};
pub use input::GateInput;
pub use ops::{Actor, Governance};
pub use policy::{Check, Policy, Severity, Target};
pub use span::Span;
