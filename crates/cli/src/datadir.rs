//! The data directory: `trailmark.db`, `signing.key` (mode 0600), `verifier.key` and
//! `access.db`. With a `postgres://` database the log lives in PostgreSQL and the directory
//! keeps the keys (every instance of a scaled-out deployment needs the same signing key).

use std::io::Write;
use std::path::{Path, PathBuf};

use trailmark_log::{SignerKey, VerifierKey};
use trailmark_store::{PgStore, SqliteStore, Store};

use crate::error::{CliError, input, io};

pub struct DataDir {
    root: PathBuf,
    /// A `postgres://` URL when the log is in PostgreSQL; `None` for the embedded store.
    database: Option<String>,
}

impl DataDir {
    pub fn new(root: PathBuf) -> DataDir {
        DataDir {
            root,
            database: None,
        }
    }

    /// Keeps the log in the database `url` names (`postgres://…`); `None` or a `sqlite:` path
    /// in the data directory means the embedded store.
    pub fn with_database(mut self, url: Option<String>) -> Result<DataDir, CliError> {
        self.database = match url {
            None => None,
            Some(u) if u.is_empty() => None,
            Some(u) if PgStore::is_url(&u) => Some(u),
            Some(u) => {
                return Err(input(format!(
                    "database {:?} is not a postgres:// URL (the embedded store needs no setting)",
                    redact_url(&u)
                )));
            }
        };
        Ok(self)
    }

    /// The access store: in the same PostgreSQL database as the log when there is one (so
    /// every instance shares orgs, users and tokens), else `access.db` here.
    pub fn open_access(
        &self,
    ) -> Result<trailmark_access::AccessStore, trailmark_access::AccessError> {
        match &self.database {
            Some(url) => trailmark_access::AccessStore::open_postgres(url),
            None => trailmark_access::AccessStore::open(&self.access_db()),
        }
    }

    /// Where the log is, for messages (never a password).
    pub fn describe(&self) -> String {
        match &self.database {
            Some(u) => redact_url(u),
            None => self.db().display().to_string(),
        }
    }

    /// Whether the log is in PostgreSQL rather than the embedded store.
    pub fn is_postgres(&self) -> bool {
        self.database.is_some()
    }

    /// The signing key's file (a secret: copied only on request).
    pub fn signing_key_file(&self) -> PathBuf {
        self.signing_key()
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

    /// Whether this directory already holds a store (for PostgreSQL: its signing key).
    pub fn exists(&self) -> bool {
        match self.database {
            Some(_) => self.signing_key().exists(),
            None => self.db().exists(),
        }
    }

    /// Creates the directory, a fresh Ed25519 key and an empty log. Refuses to touch an existing
    /// store: re-initialising would orphan its signing key.
    pub fn init(&self, origin: Option<String>) -> Result<(Box<dyn Store>, VerifierKey), CliError> {
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
        let store: Box<dyn Store> = match &self.database {
            Some(url) => Box::new(PgStore::create(url, &origin, signer)?),
            None => Box::new(SqliteStore::create(&self.db(), &origin, signer)?),
        };
        Ok((store, verifier))
    }

    /// The log's signing key from this directory.
    pub fn signer(&self) -> Result<SignerKey, CliError> {
        let text = std::fs::read_to_string(self.signing_key())
            .map_err(io(format!("reading {}", self.signing_key().display())))?;
        SignerKey::parse(text.trim()).map_err(|e| {
            CliError::Environment(format!(
                "{} is not a signing key: {e}",
                self.signing_key().display()
            ))
        })
    }

    pub fn open(&self) -> Result<Box<dyn Store>, CliError> {
        self.require()?;
        let signer = self.signer()?;
        Ok(match &self.database {
            Some(url) => Box::new(PgStore::open(url, signer)?),
            None => Box::new(SqliteStore::open(&self.db(), signer)?),
        })
    }

    pub fn open_read_only(&self) -> Result<Box<dyn Store>, CliError> {
        if let Some(url) = &self.database {
            return Ok(Box::new(PgStore::open_read_only(url)?));
        }
        self.require()?;
        Ok(Box::new(SqliteStore::open_read_only(&self.db())?))
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

/// A database URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
