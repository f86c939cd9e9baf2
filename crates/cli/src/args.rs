use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Trailmark: a verifiable system of record for software-delivery evidence.
#[derive(Debug, Parser)]
#[command(name = "trailmark", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    /// Data directory of the embedded store.
    #[arg(
        long,
        global = true,
        env = "TRAILMARK_DATA",
        default_value = "trailmark-data"
    )]
    pub data_dir: PathBuf,
    /// Keep the log in PostgreSQL (`postgres://user@host/db`) instead of the embedded store;
    /// the data directory then holds only the keys and access database.
    #[arg(long, global = true, env = "TRAILMARK_DATABASE_URL")]
    pub database: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

const EXIT_CODES: &str = "Exit codes: 0 ok, 1 verification failed (or the stored log was found damaged), 2 bad input or usage, 3 storage or I/O error.";

#[derive(Clone, Copy, Debug, Default, ValueEnum, PartialEq, Eq)]
pub enum Format {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new store and signing key in the data directory; prints the verifier key.
    Init {
        /// Log origin (first line of every checkpoint); also the key name. Default: a unique one.
        #[arg(long)]
        origin: Option<String>,
    },
    /// Append evidence: one JSON record, a JSON array, or JSON Lines, from FILE or `-` (stdin).
    /// All records are validated first; one bad record stores nothing.
    Record {
        file: PathBuf,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// List records (JSON Lines), filtered.
    Log {
        /// Only records of this kind.
        #[arg(long)]
        kind: Option<String>,
        /// Only records about this subject, as TYPE:ID (e.g. ticket:PROJ-1).
        #[arg(long)]
        subject: Option<String>,
        /// Only records recorded at or after this RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// Only records recorded before this RFC 3339 time.
        #[arg(long)]
        until: Option<String>,
        /// Only records with an index greater than this (pagination).
        #[arg(long)]
        after: Option<u64>,
        #[arg(long, default_value_t = 1000)]
        limit: u32,
    },
    /// Everything linked to a subject, transitively, in both directions (JSON).
    Graph {
        /// TYPE:ID, e.g. ticket:PROJ-1
        subject: String,
        /// Subject hops to follow.
        #[arg(long, default_value_t = 6)]
        depth: u32,
        /// Stop after this many records (the output says when it stopped early).
        #[arg(long, default_value_t = 10_000)]
        limit: usize,
    },
    /// Print one record: its JSON, or with --leaf the exact signed leaf bytes.
    Show {
        #[arg(long)]
        index: u64,
        #[arg(long)]
        leaf: bool,
    },
    /// Print a stored blob (a raw input or a large payload) by its digest, byte for byte.
    Blob {
        /// `sha256:<hex>`
        digest: String,
    },
    /// Print the latest signed checkpoint (or the one at --size).
    Checkpoint {
        #[arg(long)]
        size: Option<u64>,
    },
    /// Produce inclusion or consistency proofs.
    Proof {
        #[command(subcommand)]
        kind: ProofCommand,
    },
    /// Recompute every leaf and the tree from the stored records and check every checkpoint.
    Verify {
        /// Verifier key (text or a file holding it). Default: the data directory's verifier.key.
        #[arg(long)]
        vkey: Vec<String>,
        /// Also decode every record and require its canonical encoding (slower).
        #[arg(long)]
        deep: bool,
    },
    /// Verify a tlog-proof file offline against a verifier key.
    VerifyProof {
        file: PathBuf,
        #[arg(long, required = true)]
        vkey: Vec<String>,
        /// File with the exact leaf bytes (see `trailmark show --leaf`).
        #[arg(long, conflicts_with = "leaf_hash")]
        leaf: Option<PathBuf>,
        /// The leaf hash, hex or base64.
        #[arg(long)]
        leaf_hash: Option<String>,
        /// Require this checkpoint origin.
        #[arg(long)]
        origin: Option<String>,
    },
    /// Verify any C2SP signed checkpoint offline against a verifier key.
    VerifyCheckpoint {
        file: PathBuf,
        #[arg(long, required = true)]
        vkey: Vec<String>,
        #[arg(long)]
        origin: Option<String>,
    },
    /// Turn tool output (webhook bodies, reports, attestations) into evidence. Each file is
    /// all-or-nothing; the raw bytes are kept content-addressed beside the records.
    Ingest {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Input format; detected from the content when omitted.
        #[arg(long)]
        format: Option<String>,
        /// Commit the input is about (reports).
        #[arg(long)]
        commit: Option<String>,
        /// Build the input came from (reports).
        #[arg(long)]
        build: Option<String>,
        /// Webhook event name (e.g. the X-GitHub-Event header); inferred when omitted.
        #[arg(long)]
        event: Option<String>,
        /// Delivery id (e.g. X-GitHub-Delivery): a re-delivery appends nothing.
        #[arg(long)]
        delivery: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        output: Format,
    },
    /// Import history from another system of record.
    Import {
        #[command(subcommand)]
        source: ImportSource,
    },
    /// Resolve raw identities (email:, github:, gitlab:, jira:, idp:) to people, with the
    /// identity map in force in the log or with a mapping file (to try one out before `trailmark
    /// people set`); prints one JSON line per identity.
    Identity {
        /// people.json: {"people": [{"id": "alice", "identities": ["email:…", "github:…"]}]}
        #[arg(long)]
        map: Option<PathBuf>,
        #[arg(required = true)]
        identities: Vec<String>,
    },
    /// Initialise (if needed), record sample evidence, print the checkpoint and verify the log.
    Quickstart,
    /// Run the HTTP service (API, webhooks). On a fresh data directory it first creates the
    /// store, the default organisation and an admin token (written to <data-dir>/admin.token).
    Serve {
        /// TOML configuration file (see the server docs); environment variables override it.
        #[arg(long, env = "TRAILMARK_CONFIG")]
        config: Option<PathBuf>,
        /// Address to listen on (overrides the config file and TRAILMARK_LISTEN).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Move the embedded store into PostgreSQL, verbatim (same leaves, checkpoints and roots),
    /// then check every checkpoint and the whole copy. The target database must be empty; the
    /// data directory's signing key must be the log's.
    Migrate {
        /// sqlite://PATH (or a path) of the embedded store; default: the data directory's.
        #[arg(long)]
        from: Option<String>,
        /// postgres://user@host/db — an empty database.
        #[arg(long)]
        to: String,
    },
    /// Copy the embedded store into a new directory, safely while it is in use (a running
    /// server, other commands): a consistent snapshot of the log and of the access database,
    /// verified before the command succeeds. The result is a data directory: `trailmark
    /// --data-dir DIR verify` checks it, and it is restored by putting it in place. The signing
    /// key (a secret) is copied only with --with-signing-key.
    Backup {
        /// A directory that does not exist yet, or is empty.
        dir: PathBuf,
        /// Also copy signing.key (owner-only permissions), so the copy can take appends.
        #[arg(long)]
        with_signing_key: bool,
    },
    /// API tokens: create (shown once), list, revoke.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Local users (for the web UI) and their role grants.
    #[command(subcommand)]
    User(UserCommand),
    /// Organisations (tenants) and their projects.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Releases: create, link work items and documents, show state and checks, approve/reject,
    /// clear post-deploy monitoring.
    #[command(subcommand)]
    Release(crate::governance::ReleaseCommand),
    /// Evaluate the release gate for a deploy and record the decision. Exit 0 allow (or allowed
    /// under a break-glass exception), 1 deny; a human summary on stderr, JSON on stdout.
    Gate(crate::governance::GateArgs),
    /// Approval policies: apply a file (a new recorded version), show, approve a proposed
    /// version, replay a past gate decision.
    #[command(subcommand)]
    Policy(crate::governance::PolicyCommand),
    /// The identity map (people and their identities across tools), kept in the log: record a
    /// new version from a file, or show the map in force and its history.
    #[command(subcommand)]
    People(crate::governance::PeopleCommand),
    /// Approvals waiting for a decision, most urgent first, with their SLA state.
    Approvals(crate::governance::ApprovalsArgs),
    /// Break-glass exceptions: raise, approve retrospectively, close, list.
    #[command(subcommand)]
    Exception(crate::governance::ExceptionCommand),
    /// Rollback decisions: propose, move through approved/executing/executed/cancelled.
    #[command(subcommand)]
    Rollback(crate::governance::RollbackCommand),
    /// Export a release's compliance dossier: every record with its proof, the gate decisions
    /// with their inputs and policies, and the auditor's view (JSON, HTML or OSCAL). The export
    /// itself is recorded.
    Dossier(crate::dossier::DossierArgs),
    /// Certify a release for an environment: evaluates the gate and, if it allows (or approved
    /// exceptions cover every denial), records a DSSE-signed in-toto SLSA VSA. Prints the envelope.
    Certify(crate::dossier::CertifyArgs),
    /// Verify a dossier offline against the log's verifier key: proofs, signatures, digests,
    /// recomputed gate decisions and view. Exit 0 verified, 1 not, 2 unreadable.
    VerifyDossier(crate::dossier::VerifyDossierArgs),
    /// Auditor workflows: the population of deployments in a period, reproducible samples.
    #[command(subcommand)]
    Audit(crate::dossier::AuditCommand),
    /// The five auditor questions for a release, answered with evidence.
    Explain(crate::dossier::ExplainArgs),
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; prints it once on stdout (only its SHA-256 is kept).
    Create {
        /// What it is for, e.g. "payments CI".
        #[arg(long)]
        name: String,
        /// admin, release-manager, approver, auditor, developer or ingest.
        #[arg(long)]
        role: String,
        /// ORG or ORG/PROJECT.
        #[arg(long)]
        scope: String,
        /// The user this token acts for (a person token; never more than that user may do).
        #[arg(long)]
        owner: Option<String>,
        /// Expiry: an RFC 3339 instant or a duration like 30d, 12h.
        #[arg(long)]
        expires: Option<String>,
    },
    /// List tokens (JSON Lines; never secrets).
    List {
        #[arg(long)]
        org: Option<String>,
    },
    /// Revoke a token at once.
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a local user; the password is read from stdin (first line).
    Create {
        name: String,
        /// Organisation under which the creation is recorded.
        #[arg(long)]
        org: String,
    },
    /// Grant a role on ORG or ORG/PROJECT.
    Grant {
        name: String,
        #[arg(long)]
        role: String,
        #[arg(long)]
        scope: String,
    },
    /// Withdraw a role grant.
    Revoke {
        name: String,
        #[arg(long)]
        role: String,
        #[arg(long)]
        scope: String,
    },
    /// List users and their grants (JSON Lines).
    List,
}

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an organisation.
    Create { name: String },
    /// Create a project (team) inside an organisation: ORG/PROJECT.
    Project { name: String },
    /// List organisations and their projects (JSON Lines).
    List,
}

#[derive(Debug, Subcommand)]
pub enum ProofCommand {
    /// Inclusion proof of record --index in the tree of --size (default: latest checkpoint).
    Inclusion {
        #[arg(long)]
        index: u64,
        /// Tree size; must have a stored checkpoint. Default: the latest.
        #[arg(long)]
        size: Option<u64>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Consistency proof between two tree sizes, as JSON {size1,size2,root1,root2,proof}.
    Consistency {
        #[arg(long)]
        from: u64,
        /// Default: the latest checkpoint's size.
        #[arg(long)]
        to: Option<u64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ImportSource {
    /// Every commit reachable from the local branches and HEAD of a git repository. Re-running
    /// appends only commits not imported before.
    Git {
        path: PathBuf,
        /// Skip this revision and its ancestors (already imported).
        #[arg(long)]
        since: Option<String>,
        /// Regular expression for ticket keys (first capture group, or the whole match).
        #[arg(long, default_value = trailmark_ingest::link::DEFAULT_TICKET_PATTERN)]
        ticket_pattern: String,
    },
}
