//! Names, scopes, roles, grants and decisions: pure functions, no store.

use trailmark_access::{
    AccessError, Decision, Grant, OrgName, Permission, Principal, PrincipalKind, ProjectName, Role,
    Scope, UserName,
};

fn scope(text: &str) -> Scope {
    text.parse().unwrap()
}

fn grant(text: &str) -> Grant {
    text.parse().unwrap()
}

fn principal(kind: PrincipalKind, grants: &[&str]) -> Principal {
    Principal {
        id: "user:test".to_owned(),
        kind,
        grants: grants.iter().map(|g| grant(g)).collect(),
        person: None,
    }
}

#[test]
fn org_and_project_names() {
    let org: OrgName = "acme".parse().unwrap();
    assert_eq!(org.as_str(), "acme");
    assert_eq!(org.to_string(), "acme");
    assert_eq!(
        ProjectName::parse("pay-ments-2").unwrap().as_str(),
        "pay-ments-2"
    );
    for bad in ["", "-x", "Acme", "a_b", "a/b", "a b", "ü"] {
        let err = bad.parse::<OrgName>().unwrap_err();
        assert!(
            matches!(
                err,
                AccessError::InvalidName {
                    what: "org name",
                    ..
                }
            ),
            "{bad}: {err}"
        );
        assert!(err.is_client_error());
    }
    assert!(matches!(
        "x".repeat(64).parse::<ProjectName>(),
        Err(AccessError::InvalidName {
            what: "project name",
            ..
        })
    ));
}

#[test]
fn user_names() {
    for ok in ["alice", "a.b_c-d", "0", &"a".repeat(64)] {
        assert_eq!(UserName::parse(ok).unwrap().as_str(), ok);
    }
    for bad in ["", ".alice", "_a", "Alice", "a b", "a@b", &"a".repeat(65)] {
        assert!(
            matches!(
                UserName::parse(bad),
                Err(AccessError::InvalidName {
                    what: "user name",
                    ..
                })
            ),
            "{bad}"
        );
    }
}

#[test]
fn scope_text_round_trips() {
    for text in ["acme", "acme/payments", "0/0"] {
        assert_eq!(scope(text).to_string(), text);
    }
    assert_eq!(scope("acme/payments").org().as_str(), "acme");
    assert_eq!(scope("acme").project(), None);
    for bad in [
        "",
        "/",
        "acme/",
        "/payments",
        "acme/payments/x",
        "Acme/payments",
        "acme/Pay",
    ] {
        assert!(bad.parse::<Scope>().is_err(), "{bad}");
    }
    assert!(matches!(
        "a/b/c".parse::<Scope>(),
        Err(AccessError::InvalidScope { .. })
    ));
}

#[test]
fn org_scope_covers_its_projects_project_scope_only_itself() {
    let acme = scope("acme");
    let pay = scope("acme/payments");
    let web = scope("acme/web");
    let other = scope("globex");
    let other_pay = scope("globex/payments");

    assert!(acme.covers(&acme));
    assert!(acme.covers(&pay));
    assert!(acme.covers(&web));
    assert!(!acme.covers(&other));
    assert!(!acme.covers(&other_pay));

    assert!(pay.covers(&pay));
    assert!(!pay.covers(&acme));
    assert!(!pay.covers(&web));
    assert!(!pay.covers(&other_pay));

    assert_eq!(acme.intersect(&pay), Some(pay.clone()));
    assert_eq!(pay.intersect(&acme), Some(pay.clone()));
    assert_eq!(pay.intersect(&web), None);
    assert_eq!(acme.intersect(&other), None);
}

#[test]
fn scopes_sort_by_org_then_org_scope_first() {
    let mut scopes = [
        scope("globex"),
        scope("acme/web"),
        scope("acme"),
        scope("acme/payments"),
    ];
    scopes.sort();
    let texts: Vec<String> = scopes.iter().map(Scope::to_string).collect();
    assert_eq!(texts, ["acme", "acme/payments", "acme/web", "globex"]);
}

#[test]
fn role_and_permission_text_forms() {
    let texts = [
        "admin",
        "release-manager",
        "approver",
        "auditor",
        "developer",
        "ingest",
    ];
    assert_eq!(Role::ALL.len(), texts.len());
    for (role, text) in Role::ALL.into_iter().zip(texts) {
        assert_eq!(role.to_string(), text);
        assert_eq!(text.parse::<Role>().unwrap(), role);
    }
    for p in Permission::ALL {
        assert_eq!(p.to_string().parse::<Permission>().unwrap(), p);
    }
    let err = "root".parse::<Role>().unwrap_err();
    assert!(err.to_string().contains("release-manager"), "{err}");
    assert!("Admin".parse::<Role>().is_err());
}

/// The whole matrix, written out independently of `Role::allows`, cell by cell.
#[test]
fn the_matrix_exhaustively() {
    use Permission::*;
    let expected: [(Role, &[Permission]); 6] = [
        (
            Role::Admin,
            &[
                ReadEvidence,
                WriteEvidence,
                ExportEvidence,
                ReadLog,
                Approve,
                ManageReleases,
                ManageAccess,
            ],
        ),
        (
            Role::ReleaseManager,
            &[
                ReadEvidence,
                WriteEvidence,
                ExportEvidence,
                ReadLog,
                ManageReleases,
            ],
        ),
        (Role::Approver, &[ReadEvidence, ReadLog, Approve]),
        (Role::Auditor, &[ReadEvidence, ExportEvidence, ReadLog]),
        (Role::Developer, &[ReadEvidence, ReadLog]),
        (Role::Ingest, &[WriteEvidence]),
    ];
    assert_eq!(expected.map(|(r, _)| r), Role::ALL);
    let mut cells = 0;
    for (role, allowed) in expected {
        for p in Permission::ALL {
            assert_eq!(role.allows(p), allowed.contains(&p), "{role} / {p}");
            cells += 1;
        }
        assert_eq!(role.permissions(), allowed, "{role}");
    }
    assert_eq!(cells, 6 * 7);
}

#[test]
fn grant_text_and_serde_forms() {
    let g = grant("ingest@acme/payments");
    assert_eq!(g, Grant::new(Role::Ingest, scope("acme/payments")));
    assert_eq!(g.to_string(), "ingest@acme/payments");
    let json = serde_json::to_string(&g).unwrap();
    assert_eq!(json, r#"{"role":"ingest","scope":"acme/payments"}"#);
    assert_eq!(serde_json::from_str::<Grant>(&json).unwrap(), g);
    assert!(serde_json::from_str::<Grant>(r#"{"role":"root","scope":"acme"}"#).is_err());
    assert!(matches!(
        "ingest".parse::<Grant>(),
        Err(AccessError::InvalidGrant { .. })
    ));
}

#[test]
fn decide_needs_both_role_and_scope() {
    let dev = principal(
        PrincipalKind::User,
        &["developer@acme/payments", "ingest@acme/web"],
    );
    let pay = scope("acme/payments");
    let web = scope("acme/web");
    let acme = scope("acme");
    assert_eq!(dev.decide(Permission::ReadEvidence, &pay), Decision::Allow);
    assert_eq!(dev.decide(Permission::ReadLog, &pay), Decision::Allow);
    assert_eq!(dev.decide(Permission::WriteEvidence, &pay), Decision::Deny);
    assert_eq!(dev.decide(Permission::WriteEvidence, &web), Decision::Allow);
    assert_eq!(dev.decide(Permission::ReadEvidence, &web), Decision::Deny);
    // A project grant says nothing about the org as a whole.
    assert_eq!(dev.decide(Permission::ReadEvidence, &acme), Decision::Deny);

    let admin = principal(PrincipalKind::User, &["admin@acme"]);
    for p in Permission::ALL {
        for target in [&acme, &pay, &web] {
            assert!(admin.decide(p, target).is_allow(), "{p} on {target}");
        }
        assert_eq!(admin.decide(p, &scope("globex")), Decision::Deny);
        assert_eq!(admin.decide(p, &scope("globex/payments")), Decision::Deny);
    }

    let nobody = principal(PrincipalKind::User, &[]);
    assert_eq!(
        nobody.decide(Permission::ReadEvidence, &pay),
        Decision::Deny
    );
}

#[test]
fn readable_scopes_are_minimal_and_sorted() {
    let p = principal(
        PrincipalKind::User,
        &[
            "developer@globex/app",
            "auditor@acme/payments",
            "developer@acme",
            "ingest@initech/x",
            "approver@globex/app",
        ],
    );
    let texts = |ps: Vec<Scope>| ps.iter().map(Scope::to_string).collect::<Vec<_>>();
    assert_eq!(
        texts(p.readable_scopes(Permission::ReadEvidence)),
        ["acme", "globex/app"]
    );
    assert_eq!(
        texts(p.readable_scopes(Permission::ExportEvidence)),
        ["acme/payments"]
    );
    assert_eq!(
        texts(p.readable_scopes(Permission::WriteEvidence)),
        ["initech/x"]
    );
    assert_eq!(
        texts(p.readable_scopes(Permission::Approve)),
        ["globex/app"]
    );
    assert!(p.readable_scopes(Permission::ManageAccess).is_empty());
}

#[test]
fn who_is_a_person() {
    let mut p = principal(PrincipalKind::User, &[]);
    assert!(p.is_person());
    p.kind = PrincipalKind::Token;
    assert!(!p.is_person());
    p.person = Some("alice".to_owned());
    assert!(p.is_person());
    p.kind = PrincipalKind::Workload;
    assert!(!p.is_person());
}

#[test]
fn grant_intersection_allows_exactly_what_both_allow() {
    let scopes = ["acme", "acme/payments", "acme/web", "globex"].map(scope);
    for a_role in Role::ALL {
        for b_role in Role::ALL {
            for a_scope in &scopes {
                for b_scope in &scopes {
                    let a = Grant::new(a_role, a_scope.clone());
                    let b = Grant::new(b_role, b_scope.clone());
                    let both = a.intersect(&b);
                    for p in Permission::ALL {
                        for target in &scopes {
                            let expected = a.allows(p, target) && b.allows(p, target);
                            let got = both.as_ref().is_some_and(|g| g.allows(p, target));
                            assert_eq!(got, expected, "{a} ∩ {b}: {p} on {target}");
                        }
                    }
                }
            }
        }
    }
}
