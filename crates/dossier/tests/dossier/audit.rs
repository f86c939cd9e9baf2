//! The auditor's population, reconciled; a sample anyone can recompute.

use serde_json::{Value, json};
use trailmark_dossier::audit;
use trailmark_ingest::Format;
use trailmark_model::Timestamp;

use crate::build_verify::World;

#[test]
fn the_population_is_reconciled_and_the_sample_is_reproducible() {
    let from = Timestamp::now();
    let w = World::new();
    let id = w.release();
    w.gov().gate(&id, "production", None).unwrap();
    w.deploy(); // gated, in a release
    // A second deployment of a commit no release includes, from the same real payload.
    let mut v: Value = serde_json::from_slice(
        &std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/fixtures/ingest/github/deployment_status/payload.json"),
        )
        .unwrap(),
    )
    .unwrap();
    v["deployment"]["id"] = json!(2);
    w.ingest(
        &serde_json::to_vec(&v).unwrap(),
        Format::Github,
        Some("deployment_status"),
        None,
    );
    let to = Timestamp(Timestamp::now().0 + jiff::SignedDuration::from_secs(60));
    let pop = audit::population(
        w.store.as_ref(),
        &w.people,
        "default",
        "production",
        from,
        to,
    )
    .unwrap();
    assert_eq!(pop.deployments.len(), 2, "{pop:#?}");
    let (good, bad) = (&pop.deployments[0], &pop.deployments[1]);
    assert_eq!(good.release.as_deref(), Some(id.as_str()));
    assert!(good.gated && good.findings.is_empty(), "{good:#?}");
    assert!(bad.release.is_none());
    assert!(
        bad.findings[0].contains("belongs to no release"),
        "{bad:#?}"
    );
    assert!(
        pop.completeness
            .iter()
            .any(|c| c.contains(&format!("deployment {}", bad.record)))
    );
    // Other environments are not in the population.
    assert!(
        audit::population(w.store.as_ref(), &w.people, "default", "staging", from, to)
            .unwrap()
            .deployments
            .is_empty()
    );

    let cp = w.store.latest_checkpoint().unwrap().unwrap();
    let a = audit::sample(&pop, 1, &cp);
    let b = audit::sample(&pop, 1, &cp);
    assert_eq!(
        a.selected, b.selected,
        "the same checkpoint draws the same sample"
    );
    assert_eq!(a.selected.len(), 1);
    assert_eq!(
        audit::sample(&pop, 10, &cp).selected.len(),
        2,
        "never more than the population"
    );
    // The seed is the checkpoint's: recompute it by hand.
    use sha2::Digest as _;
    let seed = sha2::Sha256::new()
        .chain_update(b"trailmark-sample/v1\n")
        .chain_update(cp.note.as_bytes())
        .finalize();
    assert_eq!(
        a.seed,
        seed.iter().map(|x| format!("{x:02x}")).collect::<String>()
    );
}

#[test]
fn a_ticket_done_but_never_deployed_is_a_completeness_finding() {
    let from = Timestamp::now();
    let w = World::new();
    let _id = w.release(); // TES-41 → Done, its commit linked, but nothing deployed
    let to = Timestamp(Timestamp::now().0 + jiff::SignedDuration::from_secs(60));
    let pop = audit::population(
        w.store.as_ref(),
        &w.people,
        "default",
        "production",
        from,
        to,
    )
    .unwrap();
    assert!(pop.deployments.is_empty());
    assert!(
        pop.completeness
            .iter()
            .any(|c| c
                .contains("ticket TES-41 was marked Done but none of its commits was deployed")),
        "{:#?}",
        pop.completeness
    );
    // The world recorded its identity map in the period, and the population says who did.
    assert_eq!(
        pop.identity_map_changes.len(),
        1,
        "{:#?}",
        pop.identity_map_changes
    );
    assert_eq!(
        pop.identity_map_changes[0].actor.as_deref(),
        Some("person:admin")
    );
    // A period after it holds no change.
    let later = audit::population(
        w.store.as_ref(),
        &w.people,
        "default",
        "production",
        to,
        Timestamp(to.0 + jiff::SignedDuration::from_secs(60)),
    )
    .unwrap();
    assert!(later.identity_map_changes.is_empty());
}
