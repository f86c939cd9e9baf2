//! Finding ticket keys in free text (commit messages, PR titles, branch names).

/// Which words are ticket keys. Default: Jira-style `[A-Z][A-Z0-9]+-[0-9]+`, matched on word
/// boundaries (so `ABC-12` in `feature/ABC-12-login` counts, `xABC-12` does not).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TicketPattern {
    /// Only keys with these project prefixes (empty = any).
    pub projects: Vec<String>,
}

impl TicketPattern {
    /// Ticket keys in `text`, in order of first appearance, without duplicates.
    pub fn find(&self, text: &str) -> Vec<String> {
        let b = text.as_bytes();
        let mut out: Vec<String> = Vec::new();
        let mut i = 0;
        while i < b.len() {
            let boundary = i == 0 || !b[i - 1].is_ascii_alphanumeric();
            if boundary && b[i].is_ascii_uppercase() {
                let mut j = i + 1;
                while j < b.len() && (b[j].is_ascii_uppercase() || b[j].is_ascii_digit()) {
                    j += 1;
                }
                if j - i >= 2 && j < b.len() && b[j] == b'-' {
                    let mut k = j + 1;
                    while k < b.len() && b[k].is_ascii_digit() {
                        k += 1;
                    }
                    let end_ok = k == b.len() || !b[k].is_ascii_alphanumeric();
                    if k > j + 1 && end_ok {
                        let key = &text[i..k];
                        let project = &text[i..j];
                        if (self.projects.is_empty() || self.projects.iter().any(|p| p == project))
                            && !out.iter().any(|o| o == key)
                        {
                            out.push(key.to_owned());
                        }
                        i = k;
                        continue;
                    }
                }
                i = j;
                continue;
            }
            i += 1;
        }
        out
    }
}
