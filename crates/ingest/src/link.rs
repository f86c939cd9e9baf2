//! Finding ticket keys in free text (commit messages, PR titles, branch names).

use regex::Regex;

/// The default ticket key pattern: Jira-style keys on word boundaries, so `ABC-12` in
/// `feature/ABC-12-login` counts and `xABC-12` does not.
pub const DEFAULT_TICKET_PATTERN: &str = r"\b[A-Z][A-Z0-9]+-[0-9]+\b";

/// Which words are ticket keys: a regular expression (default [`DEFAULT_TICKET_PATTERN`]).
/// Every match is a key; with a capture group, the first group is the key.
#[derive(Clone, Debug)]
pub struct TicketPattern {
    regex: Regex,
}

/// Compiled once: building the automaton costs far more than matching (it was a quarter of a
/// webhook delivery's CPU when every `Context::default()` recompiled it). Clones share it.
static DEFAULT: std::sync::LazyLock<TicketPattern> = std::sync::LazyLock::new(|| {
    #[allow(clippy::expect_used)] // a compile-time constant, checked by the tests
    TicketPattern::new(DEFAULT_TICKET_PATTERN).expect("the default ticket pattern compiles")
});

impl Default for TicketPattern {
    fn default() -> TicketPattern {
        DEFAULT.clone()
    }
}

impl PartialEq for TicketPattern {
    fn eq(&self, other: &TicketPattern) -> bool {
        self.regex.as_str() == other.regex.as_str()
    }
}

impl TicketPattern {
    /// Compiles a pattern, refusing one that can match the empty string (every position would
    /// be a "ticket").
    pub fn new(pattern: &str) -> Result<TicketPattern, String> {
        let regex = Regex::new(pattern).map_err(|e| format!("ticket pattern {pattern:?}: {e}"))?;
        if regex.is_match("") {
            return Err(format!(
                "ticket pattern {pattern:?} matches the empty string"
            ));
        }
        Ok(TicketPattern { regex })
    }

    pub fn as_str(&self) -> &str {
        self.regex.as_str()
    }

    /// Ticket keys in `text`, in order of first appearance, without duplicates.
    pub fn find(&self, text: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for c in self.regex.captures_iter(text) {
            let key = c.get(1).or_else(|| c.get(0)).map(|m| m.as_str());
            if let Some(key) = key
                && !key.is_empty()
                && !out.iter().any(|o| o == key)
            {
                out.push(key.to_owned());
            }
        }
        out
    }
}
