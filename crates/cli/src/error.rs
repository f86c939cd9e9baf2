use std::fmt;

use trailmark_store::StoreError;

/// A failed command, classified by the exit code it maps to.
#[derive(Debug)]
pub enum CliError {
    /// Exit 1: something was checked and did not verify.
    Verification(String),
    /// Exit 2: the user's input or invocation is wrong; nothing was changed.
    Input(String),
    /// Exit 3: storage or I/O failed.
    Environment(String),
    /// The reader of stdout went away (`trailmark log | head`): stop quietly, exit 0.
    BrokenPipe,
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Verification(_) => 1,
            CliError::Input(_) => 2,
            CliError::Environment(_) => 3,
            CliError::BrokenPipe => 0,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Verification(m) => write!(f, "verification failed: {m}"),
            CliError::Input(m) | CliError::Environment(m) => f.write_str(m),
            CliError::BrokenPipe => f.write_str("stdout closed"),
        }
    }
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> CliError {
        match e {
            StoreError::InvalidRequest(_) => CliError::Input(e.to_string()),
            // The stored log or its schema history was changed behind Trailmark's back: what was
            // read did not verify, whichever command read it. Not "storage error" (exit 3),
            // which a script may retry.
            StoreError::Corrupt { .. }
            | StoreError::Damaged(_)
            | StoreError::MigrationAltered { .. } => CliError::Verification(e.to_string()),
            other => CliError::Environment(other.to_string()),
        }
    }
}

pub fn input(msg: impl Into<String>) -> CliError {
    CliError::Input(msg.into())
}

pub fn io(what: String) -> impl FnOnce(std::io::Error) -> CliError {
    move |e| CliError::Environment(format!("{what}: {e}"))
}
