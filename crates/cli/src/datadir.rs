//! The data directory: `trailmark.db`, `signing.key` (mode 0600) and `verifier.key`.

use std::io::Write;
use std::path::{Path, PathBuf};

use trailmark_log::{SignerKey, VerifierKey};
use trailmark_store::SqliteStore;

use crate::error::{CliError, input, io};

pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    pub fn new(root: PathBuf) -> DataDir {
        DataDir { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Access state (organisations, users, token hashes): mutable, so apart from the log.
    pub fn access_db(&self) -> PathBuf {
        self.root.join("access.db")
    }

    pub fn db(&self) -> PathBuf {
        self.root.join("trailmark.db")
    }

    fn signing_key(&self) -> PathBuf {
        self.root.join("signing.key")
    }

    pub fn verifier_key(&self) -> PathBuf {
        self.root.join("verifier.key")
    }

    pub fn exists(&self) -> bool {
        self.db().exists()
    }

    /// Creates the directory, a fresh Ed25519 key and an empty log. Refuses to touch an existing
    /// store: re-initialising would orphan its signing key.
    pub fn init(&self, origin: Option<String>) -> Result<(SqliteStore, VerifierKey), CliError> {
        if self.exists() || self.signing_key().exists() {
            return Err(input(format!(
                "{} already holds a Trailmark store; refusing to re-initialise it",
                self.root.display()
            )));
        }
        std::fs::create_dir_all(&self.root)
            .map_err(io(format!("creating {}", self.root.display())))?;
        let origin = match origin {
            Some(o) => o,
            None => {
                let mut b = [0u8; 4];
                getrandom::fill(&mut b)
                    .map_err(|e| CliError::Environment(format!("no randomness: {e}")))?;
                format!(
                    "trailmark.local/log-{}",
                    b.iter().map(|x| format!("{x:02x}")).collect::<String>()
                )
            }
        };
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|e| CliError::Environment(format!("no randomness: {e}")))?;
        let signer = SignerKey::from_seed(&origin, seed)
            .map_err(|e| input(format!("origin {origin:?} cannot name a key: {e}")))?;
        let verifier = signer.verifier();
        write_new(&self.signing_key(), &format!("{signer}\n"), true)?;
        write_new(&self.verifier_key(), &format!("{verifier}\n"), false)?;
        let store = SqliteStore::create(&self.db(), &origin, signer)?;
        Ok((store, verifier))
    }

    pub fn open(&self) -> Result<SqliteStore, CliError> {
        self.require()?;
        let text = std::fs::read_to_string(self.signing_key())
            .map_err(io(format!("reading {}", self.signing_key().display())))?;
        let signer = SignerKey::parse(text.trim()).map_err(|e| {
            CliError::Environment(format!(
                "{} is not a signing key: {e}",
                self.signing_key().display()
            ))
        })?;
        Ok(SqliteStore::open(&self.db(), signer)?)
    }

    pub fn open_read_only(&self) -> Result<SqliteStore, CliError> {
        self.require()?;
        Ok(SqliteStore::open_read_only(&self.db())?)
    }

    fn require(&self) -> Result<(), CliError> {
        if !self.exists() {
            return Err(input(format!(
                "no Trailmark store in {} (run `trailmark init`, or pass --data-dir / TRAILMARK_DATA)",
                self.root.display()
            )));
        }
        Ok(())
    }

    /// The verifier keys to trust: those given (text or file), else the data directory's own.
    pub fn verifiers(&self, given: &[String]) -> Result<Vec<VerifierKey>, CliError> {
        if given.is_empty() {
            let path = self.verifier_key();
            let text = std::fs::read_to_string(&path).map_err(|e| {
                input(format!(
                    "no --vkey given and {} cannot be read: {e}",
                    path.display()
                ))
            })?;
            return Ok(vec![parse_vkey_text(
                text.trim(),
                &path.display().to_string(),
            )?]);
        }
        given.iter().map(|g| load_vkey(g)).collect()
    }
}

/// A verifier key given on the command line: the key text itself or a file holding it.
pub fn load_vkey(arg: &str) -> Result<VerifierKey, CliError> {
    if let Ok(k) = VerifierKey::parse(arg.trim()) {
        return Ok(k);
    }
    let path = Path::new(arg);
    if path.is_file() {
        let text = std::fs::read_to_string(path).map_err(io(format!("reading {arg}")))?;
        return parse_vkey_text(text.trim(), arg);
    }
    Err(input(format!(
        "--vkey {arg:?} is neither a verifier key (name+hex8+base64) nor a readable file"
    )))
}

fn parse_vkey_text(text: &str, what: &str) -> Result<VerifierKey, CliError> {
    VerifierKey::parse(text).map_err(|e| input(format!("{what}: not a verifier key: {e}")))
}

pub(crate) fn write_new(path: &Path, content: &str, secret: bool) -> Result<(), CliError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut f = opts
        .open(path)
        .map_err(io(format!("creating {}", path.display())))?;
    f.write_all(content.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(io(format!("writing {}", path.display())))
}
