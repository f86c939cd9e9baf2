//! Newtypes for every identifier that crosses a crate boundary.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// Position of a record in the log (0-based, contiguous, never reused).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogIndex(pub u64);

impl fmt::Display for LogIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A SHA-256 content digest (of a blob, an input document, ...), written `sha256:<hex>`.
///
/// Distinct from the Merkle tree's node hash type on purpose: a content digest is over raw bytes,
/// a tree hash carries RFC 6962 domain separation, and mixing them up must not type-check.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(Sha256::digest(bytes).into())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Digest {
    type Err = &'static str;
    fn from_str(s: &str) -> Result<Digest, &'static str> {
        let hex_part = s
            .strip_prefix("sha256:")
            .ok_or("a digest must start with `sha256:`")?;
        if hex_part.len() != 64
            || !hex_part
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            return Err("a digest must be `sha256:` followed by 64 lowercase hex digits");
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut out).map_err(|_| "invalid hex in digest")?;
        Ok(Digest(out))
    }
}

/// An instant, always rendered as RFC 3339 in UTC (`Z`), so one instant has one spelling in
/// signed bytes whatever offset the submitter used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub jiff::Timestamp);

impl Timestamp {
    /// The current time, truncated to microseconds: finer digits are noise in evidence and
    /// would only lengthen every signed leaf.
    pub fn now() -> Timestamp {
        let now = jiff::Timestamp::now();
        let micros = now.as_microsecond();
        Timestamp(jiff::Timestamp::from_microsecond(micros).unwrap_or(now))
    }

    /// Parses RFC 3339 with an explicit offset (`Z` or `±hh:mm`). A bare local time is refused:
    /// evidence whose instant is ambiguous is not evidence.
    pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
        s.parse::<jiff::Timestamp>().ok().map(Timestamp)
    }

    pub fn as_millis(&self) -> i64 {
        self.0.as_millisecond()
    }

    /// Microseconds since the Unix epoch: the precision of `now()`, so comparisons at this
    /// granularity are exact.
    pub fn as_micros(&self) -> i64 {
        self.0.as_microsecond()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // jiff prints UTC with `Z` and only as many fractional digits as are non-zero: canonical.
        self.0.fmt(f)
    }
}

fn check_token(s: &str, max: usize, dotted: bool) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("must not be empty");
    }
    if s.len() > max {
        return Err("is too long");
    }
    let segment_ok = |seg: &str| {
        let mut chars = seg.chars();
        matches!(chars.next(), Some('a'..='z'))
            && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '-'))
    };
    if dotted {
        let mut parts = s.split('.');
        let first = parts.next().unwrap_or_default();
        let rest: Vec<&str> = parts.collect();
        if rest.is_empty() {
            return Err(
                "must be namespaced like `custom.note` (lowercase segments separated by dots)",
            );
        }
        if !segment_ok(first)
            || !rest.iter().all(|p| {
                !p.is_empty()
                    && p.chars()
                        .all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '-'))
            })
        {
            return Err(
                "must be lowercase segments of [a-z0-9_-] separated by dots, starting with a letter",
            );
        }
    } else if !segment_ok(s) {
        return Err("must be lowercase [a-z0-9_-], starting with a letter");
    }
    Ok(())
}

macro_rules! token {
    ($(#[$doc:meta])* $name:ident, $max:expr, $dotted:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: &str) -> Result<$name, &'static str> {
                check_token(s, $max, $dotted)?;
                Ok($name(s.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

token!(
    /// What a record is evidence of, namespaced: `custom.note`, `github.pull_request`, ...
    Kind, 128, true
);
token!(
    /// The type of a subject: `commit`, `pr`, `ticket`, `artifact`, `build`, `environment`,
    /// `release`, `person`, or a custom lowercase word.
    SubjectType, 64, false
);
token!(
    /// The relation a link states, e.g. `implements`, `tests`, `deploys`.
    Rel, 64, false
);
