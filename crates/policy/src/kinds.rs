//! The record kinds governance writes. Each is an ordinary evidence record in the log.

/// A release was created: `release:<org>/<project>/<name>@<version>`.
pub const RELEASE_CREATED: &str = "release.created";
/// Work items, commits, pull requests, artifacts or documents linked to a release.
pub const RELEASE_LINKED: &str = "release.linked";
/// Post-deploy monitoring of a release cleared.
pub const RELEASE_CLEARED: &str = "release.cleared";
/// A person's approve/reject decision over an exact evidence digest.
pub const APPROVAL_DECIDED: &str = "approval.decided";
/// A version of a policy (the whole policy, Rego sources included).
pub const POLICY_VERSION: &str = "policy.version";
/// A gate evaluation: decision, each check, input and policy digests.
pub const GATE_DECIDED: &str = "gate.decided";
/// A break-glass exception.
pub const EXCEPTION_RAISED: &str = "exception.raised";
pub const EXCEPTION_CLOSED: &str = "exception.closed";
/// A rollback decision and each change of its status.
pub const ROLLBACK_DECIDED: &str = "rollback.decided";

/// A release certified for an environment: an in-toto Statement with a SLSA VSA predicate in
/// a DSSE envelope, recorded before the deploy it certifies.
pub const RELEASE_CERTIFIED: &str = "release.certified";
/// A dossier was exported: the digest of its manifest (what it contains).
pub const DOSSIER_EXPORTED: &str = "dossier.exported";
/// A version of the identity map (people and their identities across tools): the whole map,
/// its digest, and who set it. The latest is in force (see [`crate::people`]).
pub const IDENTITY_MAP: &str = "identity.map";

/// Records governance writes about evidence; never evidence of the content itself.
pub fn is_governance(kind: &str) -> bool {
    [
        "release.",
        "approval.",
        "policy.",
        "gate.",
        "exception.",
        "rollback.",
        "access.",
        "security.",
        "dossier.",
        "identity.",
    ]
    .iter()
    .any(|p| kind.starts_with(p))
}
