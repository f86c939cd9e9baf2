//! Exhaustive and property tests of proof generation and verification
//! against the naive RFC 6962 definitions.

use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;

use proptest::prelude::*;
use trailmark_log::{
    Frontier, Hash, NodeCache, NodeId, NodeSource, ProofError, VerifyError, consistency_proof,
    empty_root, inclusion_proof, inclusion_proofs, leaf_hash, node_hash, root, verify_consistency,
    verify_inclusion,
};

use crate::common::{Lcg, MemTree, flip, mth, test_leaves};

const MAX: usize = 1024;

struct World {
    leaves: Vec<Hash>,
    tree: MemTree,
    /// roots[n] = naive MTH of the first n leaves.
    roots: Vec<Hash>,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let leaves = test_leaves(MAX);
        let tree = MemTree::new(&leaves);
        let roots = (0..=MAX).map(|n| mth(&leaves[..n])).collect();
        World {
            leaves,
            tree,
            roots,
        }
    })
}

/// ceil(log2(n)), the height of a tree of n leaves.
fn height(n: u64) -> usize {
    (64 - (n.max(1) - 1).leading_zeros()) as usize
}

/// Bits to flip in a hash: all 256 for small trees; for larger ones a bit
/// that varies with `salt`, so that across the many proofs every byte and
/// bit position is still hit while the debug-build runtime stays small.
fn bits(all: bool, salt: usize) -> Vec<usize> {
    if all {
        (0..256).collect()
    } else {
        vec![(salt * 37) % 256]
    }
}

#[test]
fn frontier_matches_naive_root_and_emits_completed_nodes() {
    let w = world();
    let mut f = Frontier::new();
    assert_eq!(f.root(), empty_root());
    assert_eq!(f.size(), 0);
    assert!(Frontier::ids(0).is_empty());
    for i in 0..MAX {
        let mut emitted = Vec::new();
        f.append(w.leaves[i], |id, h| emitted.push((id, *h)));
        let size = (i + 1) as u64;
        // Exactly the perfect nodes of level >= 1 that end at `size`.
        let mut expected = Vec::new();
        let mut level = 1u8;
        while size.is_multiple_of(1u64 << level) {
            let id = NodeId::new(level, (size >> level) - 1);
            expected.push((id, w.tree.node(id).unwrap()));
            level += 1;
        }
        assert_eq!(emitted, expected, "size {size}");
        assert_eq!(f.size(), size);
        assert_eq!(f.root(), w.roots[i + 1], "size {size}");

        // The frontier is exactly the stored nodes of ids(size).
        let ids = Frontier::ids(size);
        assert_eq!(ids.len(), size.count_ones() as usize);
        let stored: Vec<Hash> = ids.iter().map(|id| w.tree.node(*id).unwrap()).collect();
        assert_eq!(f.hashes(), &stored[..]);
        assert_eq!(Frontier::from_parts(size, stored).unwrap(), f);

        let mut src = w.tree.source(size);
        assert_eq!(root(size, &mut src).unwrap(), w.roots[i + 1]);
        assert_eq!(src.calls, 1);
    }
    assert_eq!(root(0, &mut w.tree.source(0)).unwrap(), empty_root());
    assert!(Frontier::from_parts(3, vec![empty_root()]).is_err());
}

#[test]
fn frontier_at_u64_max_is_full() {
    let mut f = Frontier::from_parts(u64::MAX, vec![empty_root(); 64]).unwrap();
    assert!(f.try_append(empty_root(), |_, _| {}).is_err());
    f.append(empty_root(), |_, _| {});
    assert_eq!(f.size(), u64::MAX);
    // The last possible append completes 63 levels without overflow.
    let mut f = Frontier::from_parts(u64::MAX - 1, vec![empty_root(); 63]).unwrap();
    let mut levels = Vec::new();
    f.try_append(empty_root(), |id, _| levels.push(id.level))
        .unwrap();
    assert!(levels.is_empty());
    assert_eq!(f.size(), u64::MAX);
    let mut f = Frontier::from_parts((1 << 63) - 1, vec![empty_root(); 63]).unwrap();
    f.try_append(empty_root(), |id, _| levels.push(id.level))
        .unwrap();
    assert_eq!(levels, (1..=63).collect::<Vec<u8>>());
    assert_eq!(f.hashes().len(), 1);
}

fn sample(size: u64, all_below: u64, rng: &mut Lcg, extra: &[u64]) -> BTreeSet<u64> {
    if size <= all_below {
        return (0..size).collect();
    }
    let mut set: BTreeSet<u64> = extra.iter().copied().filter(|&i| i < size).collect();
    for _ in 0..4 {
        set.insert(rng.below(size));
    }
    set
}

#[test]
fn inclusion_proofs_verify_and_every_mutation_fails() {
    let w = world();
    let mut rng = Lcg(1);
    // One cache across every check, warmed by the valid proofs: each verdict below is also
    // asserted to be the cache's verdict, so a cache hit can never accept what the plain
    // algorithm rejects (or the other way round).
    let mut cache = NodeCache::new();
    let mut verify_inclusion = |index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash| {
        let plain = verify_inclusion(index, size, leaf, proof, root);
        assert_eq!(
            cache.verify_inclusion(index, size, leaf, proof, root),
            plain,
            "cached verdict for {index}/{size}"
        );
        plain
    };
    for size in 1..=MAX as u64 {
        let root_n = &w.roots[size as usize];
        let indices = sample(
            size,
            64,
            &mut rng,
            &[0, 1, size / 2, size.saturating_sub(2), size - 1],
        );
        for index in indices {
            let leaf = &w.leaves[index as usize];
            let mut src = w.tree.source(size);
            let proof = inclusion_proof(index, size, &mut src).unwrap();
            assert!(src.calls <= 1);
            assert!(
                src.reads <= 2 * height(size),
                "{index}/{size}: {} reads",
                src.reads
            );
            assert!(proof.len() <= height(size));
            verify_inclusion(index, size, leaf, &proof, root_n)
                .unwrap_or_else(|e| panic!("{index}/{size}: {e}"));

            let all = size <= 16;
            let salt = (size as usize) * 31 + index as usize;
            for j in 0..proof.len() {
                for bit in bits(all, salt + j) {
                    let mut bad = proof.clone();
                    bad[j] = flip(&bad[j], bit);
                    assert!(verify_inclusion(index, size, leaf, &bad, root_n).is_err());
                }
            }
            for bit in bits(all, salt) {
                assert!(verify_inclusion(index, size, &flip(leaf, bit), &proof, root_n).is_err());
                assert!(verify_inclusion(index, size, leaf, &proof, &flip(root_n, bit)).is_err());
            }
            // Wrong index, with the true tree.
            for j in [index.wrapping_sub(1), index + 1, index ^ 1, index ^ 2] {
                if j < size && j != index {
                    assert!(verify_inclusion(j, size, leaf, &proof, root_n).is_err());
                }
            }
            // Wrong size, with that size's true root.
            for s in [size - 1, size + 1, size * 2, size / 2] {
                if s > index && s != size && s <= MAX as u64 {
                    let r = &w.roots[s as usize];
                    assert!(
                        verify_inclusion(index, s, leaf, &proof, r).is_err(),
                        "{index} {size}->{s}"
                    );
                }
            }
            // Truncated, extended, reversed proofs.
            if let Some((_, short)) = proof.split_last() {
                assert!(verify_inclusion(index, size, leaf, short, root_n).is_err());
            }
            let mut long = proof.clone();
            long.push(*leaf);
            assert!(verify_inclusion(index, size, leaf, &long, root_n).is_err());
            if proof.len() > 1 && proof.first() != proof.last() {
                let rev: Vec<Hash> = proof.iter().rev().copied().collect();
                assert!(verify_inclusion(index, size, leaf, &rev, root_n).is_err());
            }
        }
    }
}

#[test]
fn consistency_proofs_verify_and_every_mutation_fails() {
    let w = world();
    let mut rng = Lcg(2);
    for n in 1..=MAX as u64 {
        let pow2 = 1u64 << (63 - n.leading_zeros());
        let olds: BTreeSet<u64> = sample(
            n + 1,
            65,
            &mut rng,
            &[1, 2, n / 2, pow2, pow2 + 1, n - 1, n],
        )
        .into_iter()
        .filter(|&m| m >= 1 && m <= n)
        .collect();
        let root_n = &w.roots[n as usize];
        for m in olds {
            let root_m = &w.roots[m as usize];
            let mut src = w.tree.source(n);
            let proof = consistency_proof(m, n, &mut src).unwrap();
            assert!(src.calls <= 1);
            assert!(
                src.reads <= 2 * height(n) + 1,
                "{m}->{n}: {} reads",
                src.reads
            );
            if m == n {
                assert!(proof.is_empty());
            }
            verify_consistency(m, n, root_m, root_n, &proof)
                .unwrap_or_else(|e| panic!("{m}->{n}: {e}"));

            let all = n <= 16;
            let salt = (n as usize) * 17 + m as usize;
            for j in 0..proof.len() {
                for bit in bits(all, salt + j) {
                    let mut bad = proof.clone();
                    bad[j] = flip(&bad[j], bit);
                    assert!(verify_consistency(m, n, root_m, root_n, &bad).is_err());
                }
            }
            for bit in bits(all, salt) {
                assert!(verify_consistency(m, n, &flip(root_m, bit), root_n, &proof).is_err());
                assert!(verify_consistency(m, n, root_m, &flip(root_n, bit), &proof).is_err());
            }
            for m2 in [m - 1, m + 1] {
                if m2 >= 1 && m2 <= n && m2 != m {
                    let r = &w.roots[m2 as usize];
                    assert!(
                        verify_consistency(m2, n, r, root_n, &proof).is_err(),
                        "{m}->{n} as {m2}"
                    );
                }
            }
            for n2 in [n - 1, n + 1] {
                if n2 >= m && n2 <= MAX as u64 && n2 != n {
                    let r = &w.roots[n2 as usize];
                    assert!(
                        verify_consistency(m, n2, root_m, r, &proof).is_err(),
                        "{m}->{n} as {n2}"
                    );
                }
            }
            if let Some((_, short)) = proof.split_last() {
                assert!(verify_consistency(m, n, root_m, root_n, short).is_err());
            }
            let mut long = proof.clone();
            long.push(*root_m);
            assert!(verify_consistency(m, n, root_m, root_n, &long).is_err());
        }
    }
}

#[test]
fn bad_proof_arguments_rejected() {
    let w = world();
    let mut src = w.tree.source(8);
    assert!(matches!(
        inclusion_proof(8, 8, &mut src),
        Err(ProofError::IndexOutOfRange { index: 8, size: 8 })
    ));
    assert!(matches!(
        inclusion_proof(0, 0, &mut src),
        Err(ProofError::IndexOutOfRange { .. })
    ));
    assert!(matches!(
        consistency_proof(0, 8, &mut src),
        Err(ProofError::ConsistencyFromEmpty)
    ));
    assert!(matches!(
        consistency_proof(0, 0, &mut src),
        Err(ProofError::ConsistencyFromEmpty)
    ));
    assert!(matches!(
        consistency_proof(9, 8, &mut src),
        Err(ProofError::SizeDecreased { old: 9, new: 8 })
    ));
    assert_eq!(src.calls, 0);
    // The source's own error comes through unchanged.
    let mut src = w.tree.source(4);
    assert_eq!(
        inclusion_proof(0, 8, &mut src).unwrap_err(),
        ProofError::Source("NodeId { level: 2, index: 1 } is not complete at size 4".to_owned())
    );

    let e = empty_root();
    assert_eq!(
        verify_inclusion(3, 3, &e, &[], &e),
        Err(VerifyError::IndexOutOfRange { index: 3, size: 3 })
    );
    assert_eq!(
        verify_consistency(0, 0, &e, &e, &[]),
        Err(VerifyError::ConsistencyFromEmpty)
    );
    assert_eq!(
        verify_consistency(5, 4, &e, &e, &[]),
        Err(VerifyError::SizeDecreased { old: 5, new: 4 })
    );
    assert_eq!(
        verify_consistency(4, 4, &e, &e, &[e]),
        Err(VerifyError::WrongProofSize {
            expected: 0,
            got: 1
        })
    );
    assert_eq!(
        verify_inclusion(0, 4, &e, &[e], &e),
        Err(VerifyError::WrongProofSize {
            expected: 2,
            got: 1
        })
    );
}

/// A source that lies about how many hashes it has.
struct Short;
impl NodeSource for Short {
    type Error = ();
    fn nodes(&mut self, ids: &[NodeId]) -> Result<Vec<Hash>, ()> {
        Ok(vec![empty_root(); ids.len().saturating_sub(1)])
    }
}

#[test]
fn short_source_answer_is_an_error_not_a_panic() {
    assert!(matches!(
        inclusion_proof(5, 100, &mut Short),
        Err(ProofError::SourceCount { .. })
    ));
    assert!(matches!(
        root(100, &mut Short),
        Err(ProofError::SourceCount { .. })
    ));
}

/// A consistent tree of any size up to u64::MAX that is cheap to query: all
/// leaves are equal except a few "special" ones, so a perfect subtree
/// without a special leaf has a per-level constant hash, and only the few
/// nodes above special leaves are computed (and memoized).
struct Synthetic {
    specials: BTreeSet<u64>,
    plain: Vec<Hash>,
    memo: HashMap<NodeId, Hash>,
    calls: usize,
}

impl Synthetic {
    fn new(specials: impl IntoIterator<Item = u64>) -> Synthetic {
        let mut plain = vec![leaf_hash(b"plain")];
        for l in 0..64 {
            let h = plain[l];
            plain.push(node_hash(&h, &h));
        }
        Synthetic {
            specials: specials.into_iter().collect(),
            plain,
            memo: HashMap::new(),
            calls: 0,
        }
    }

    fn leaf(&self, index: u64) -> Hash {
        if self.specials.contains(&index) {
            leaf_hash(&index.to_be_bytes())
        } else {
            self.plain[0]
        }
    }

    fn node(&mut self, id: NodeId) -> Hash {
        let begin = u128::from(id.index) << id.level;
        let end = begin + (1u128 << id.level);
        // Requested nodes lie inside a tree of at most u64::MAX leaves.
        let lo = u64::try_from(begin).unwrap();
        let hi = u64::try_from(end - 1).unwrap();
        let has_special = self.specials.range(lo..=hi).next().is_some();
        if !has_special {
            return self.plain[usize::from(id.level)];
        }
        if id.level == 0 {
            return self.leaf(id.index);
        }
        if let Some(h) = self.memo.get(&id) {
            return *h;
        }
        let l = self.node(NodeId::new(id.level - 1, id.index * 2));
        let r = self.node(NodeId::new(id.level - 1, id.index * 2 + 1));
        let h = node_hash(&l, &r);
        self.memo.insert(id, h);
        h
    }
}

impl NodeSource for Synthetic {
    type Error = ();
    fn nodes(&mut self, ids: &[NodeId]) -> Result<Vec<Hash>, ()> {
        self.calls += 1;
        Ok(ids.iter().map(|id| self.node(*id)).collect())
    }
}

fn any_size() -> impl Strategy<Value = u64> {
    prop_oneof![
        1..=u64::MAX,
        (u64::MAX - 2000)..=u64::MAX,
        1..=5000u64,
        (0..64u32).prop_map(|b| 1u64 << b),
        (1..64u32).prop_map(|b| (1u64 << b) - 1),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn huge_tree_inclusion(size in any_size(), a in any::<u64>(), b in any::<u64>(), bit in 0..256usize) {
        let index = a % size;
        let mut src = Synthetic::new([index, b % size, size - 1]);
        let r = root(size, &mut src).unwrap();
        let proof = inclusion_proof(index, size, &mut src).unwrap();
        prop_assert!(src.calls <= 2);
        prop_assert!(proof.len() <= 64);
        let leaf = src.leaf(index);
        prop_assert_eq!(verify_inclusion(index, size, &leaf, &proof, &r), Ok(()));
        if !proof.is_empty() {
            let mut bad = proof.clone();
            let j = (b as usize) % bad.len();
            bad[j] = flip(&bad[j], bit);
            prop_assert!(verify_inclusion(index, size, &leaf, &bad, &r).is_err());
        }
    }

    #[test]
    fn huge_tree_consistency(n in any_size(), a in any::<u64>(), bit in 0..256usize) {
        let m = a % n + 1;
        let mut src = Synthetic::new([m - 1, m.min(n - 1), n - 1, a % n]);
        let root_m = root(m, &mut src).unwrap();
        let root_n = root(n, &mut src).unwrap();
        let proof = consistency_proof(m, n, &mut src).unwrap();
        prop_assert!(proof.len() <= 2 * 64);
        prop_assert_eq!(verify_consistency(m, n, &root_m, &root_n, &proof), Ok(()));
        if !proof.is_empty() {
            let mut bad = proof.clone();
            let j = (a as usize) % bad.len();
            bad[j] = flip(&bad[j], bit);
            prop_assert!(verify_consistency(m, n, &root_m, &root_n, &bad).is_err());
        }
    }

    #[test]
    fn verifiers_never_panic(
        index in any::<u64>(),
        size in any_size(),
        size2 in any_size(),
        n in 0..130usize,
    ) {
        let proof = vec![empty_root(); n];
        let h = empty_root();
        let _ = verify_inclusion(index, size, &h, &proof, &h);
        let _ = verify_inclusion(index % size, size, &h, &proof, &h);
        let _ = verify_consistency(size, size2, &h, &h, &proof);
        let _ = verify_consistency(size.min(size2), size.max(size2), &h, &h, &proof);
        let _ = verify_consistency(index, size, &h, &h, &proof);
    }
}

#[test]
fn many_inclusion_proofs_at_once_are_the_one_by_one_proofs_from_one_read() {
    let w = world();
    let mut rng = Lcg(0x5eed_1234);
    for size in [1u64, 2, 3, 7, 8, 9, 100, 255, 256, 257, 1000, MAX as u64] {
        // Every index, then a sample out of order with repeats.
        let mut sets: Vec<Vec<u64>> = vec![(0..size).collect()];
        sets.push((0..20).map(|_| rng.next() % size).collect());
        for indices in sets {
            let mut src = w.tree.source(size);
            let all = inclusion_proofs(&indices, size, &mut src).unwrap();
            assert!(src.calls <= 1, "{} calls", src.calls);
            let mut one = 0;
            for (&i, proof) in indices.iter().zip(&all) {
                let mut s1 = w.tree.source(size);
                assert_eq!(
                    proof,
                    &inclusion_proof(i, size, &mut s1).unwrap(),
                    "{i}/{size}"
                );
                one += s1.reads;
            }
            // Each node is read once, however many proofs need it.
            assert!(src.reads <= one, "{} reads against {one}", src.reads);
            if size >= 256 && indices.len() as u64 == size {
                assert!(src.reads * 4 < one, "{} reads against {one}", src.reads);
            }
        }
    }
    let mut src = w.tree.source(8);
    assert_eq!(
        inclusion_proofs(&[], 8, &mut src).unwrap(),
        Vec::<Vec<Hash>>::new()
    );
    assert_eq!(src.calls, 0);
    assert!(matches!(
        inclusion_proofs(&[0, 8], 8, &mut src),
        Err(ProofError::IndexOutOfRange { index: 8, size: 8 })
    ));
    assert_eq!(src.calls, 0, "nothing is read when an index is refused");
}
