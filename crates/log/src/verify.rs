//! Verification of Merkle inclusion and consistency proofs, following the
//! algorithms of RFC 9162 sections 2.1.3.2 and 2.1.4.2.
//!
//! Before running the RFC algorithm the proof length is checked against the
//! exact length the sizes imply; the RFC algorithm alone would also reject a
//! wrong length, but only with a generic root mismatch, and an exact length
//! check removes any room for padding tricks.

use crate::error::VerifyError;
use crate::hash::{Hash, node_hash};

/// Split the audit path of leaf `index` in a tree of `size` (index < size)
/// into the `inner` part (siblings below the point where the path to the
/// leaf and the path to the last leaf diverge) and the `border` part (left
/// siblings above it).
fn decompose(index: u64, size: u64) -> (usize, usize) {
    let inner = 64 - (index ^ (size - 1)).leading_zeros();
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner as usize, border as usize)
}

/// The root that `proof` leads to from `leaf` at `index` in a tree of
/// `size`. The caller must compare it with a trusted root; prefer
/// [`verify_inclusion`], which does.
pub fn root_from_inclusion_proof(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
) -> Result<Hash, VerifyError> {
    root_with(index, size, leaf, proof, &mut node_hash)
}

/// Remembers the last node hash computed at each step of an audit path, so that checking
/// many proofs of neighbouring leaves (a dossier carries one per record) hashes each shared
/// upper node once instead of once per leaf.
///
/// It is a cache of the pure function `node_hash(left, right)`: an entry is used only when
/// both inputs are byte-for-byte the ones it was computed from, so a proof checked through
/// it succeeds or fails exactly as [`verify_inclusion`] would. Keep one per thread.
#[derive(Clone, Debug, Default)]
pub struct NodeCache {
    /// Per audit-path step: `(left, right, node_hash(left, right))`.
    steps: Vec<Option<(Hash, Hash, Hash)>>,
}

impl NodeCache {
    pub fn new() -> NodeCache {
        NodeCache::default()
    }

    /// [`verify_inclusion`], reusing node hashes computed for earlier proofs.
    pub fn verify_inclusion(
        &mut self,
        index: u64,
        size: u64,
        leaf: &Hash,
        proof: &[Hash],
        root: &Hash,
    ) -> Result<(), VerifyError> {
        let mut step = 0;
        let steps = &mut self.steps;
        let computed = root_with(index, size, leaf, proof, &mut |l: &Hash, r: &Hash| {
            if steps.len() <= step {
                steps.push(None);
            }
            let slot = &mut steps[step];
            step += 1;
            if let Some((a, b, h)) = slot
                && a == l
                && b == r
            {
                return *h;
            }
            let h = node_hash(l, r);
            *slot = Some((*l, *r, h));
            h
        })?;
        same_root(computed, root)
    }
}

/// RFC 9162's inclusion algorithm with the node hash function as a parameter (see
/// [`NodeCache`]); `node(left, right)` must return `node_hash(left, right)`.
fn root_with(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    node: &mut impl FnMut(&Hash, &Hash) -> Hash,
) -> Result<Hash, VerifyError> {
    if index >= size {
        return Err(VerifyError::IndexOutOfRange { index, size });
    }
    let (inner, border) = decompose(index, size);
    let expected = inner + border;
    if proof.len() != expected {
        return Err(VerifyError::WrongProofSize {
            expected,
            got: proof.len(),
        });
    }
    let wrong_size = VerifyError::WrongProofSize {
        expected,
        got: proof.len(),
    };
    // RFC 9162 section 2.1.3.2, with `fn` renamed `f` (a keyword in Rust).
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return Err(wrong_size);
        }
        if f & 1 == 1 || f == s {
            r = node(p, &r);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            r = node(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(wrong_size);
    }
    Ok(r)
}

/// Check that `leaf` is the leaf hash at `index` in the tree of `size` leaves
/// whose root is `root`.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), VerifyError> {
    same_root(root_from_inclusion_proof(index, size, leaf, proof)?, root)
}

/// `computed` is the trusted `root`, or the mismatch naming both.
fn same_root(computed: Hash, root: &Hash) -> Result<(), VerifyError> {
    if computed != *root {
        return Err(VerifyError::RootMismatch {
            expected: *root,
            computed,
        });
    }
    Ok(())
}

/// Check that the tree of `size2` leaves with root `root2` extends the tree
/// of `size1` leaves with root `root1`.
///
/// A proof from size 0 is rejected (RFC 9162 defines none, and every tree
/// trivially extends the empty one, so accepting one would prove nothing).
/// For equal sizes the proof must be empty and the roots equal.
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    root1: &Hash,
    root2: &Hash,
    proof: &[Hash],
) -> Result<(), VerifyError> {
    if size1 == 0 {
        return Err(VerifyError::ConsistencyFromEmpty);
    }
    if size2 < size1 {
        return Err(VerifyError::SizeDecreased {
            old: size1,
            new: size2,
        });
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(VerifyError::WrongProofSize {
                expected: 0,
                got: proof.len(),
            });
        }
        if root1 != root2 {
            return Err(VerifyError::EqualSizeRootsDiffer {
                size: size1,
                root1: *root1,
                root2: *root2,
            });
        }
        return Ok(());
    }

    // Exact expected length: the inclusion path of the old tree's last leaf
    // in the new tree, minus the levels inside the old tree's rightmost
    // perfect subtree, plus that subtree's root unless it is the whole old
    // tree (then the verifier already has it: root1).
    let shift = size1.trailing_zeros();
    let (inner, border) = decompose(size1 - 1, size2);
    let inner = inner.saturating_sub(shift as usize);
    let old_is_perfect = size1 == 1u64 << shift;
    let expected = usize::from(!old_is_perfect) + inner + border;
    if proof.len() != expected {
        return Err(VerifyError::WrongProofSize {
            expected,
            got: proof.len(),
        });
    }
    let wrong_size = VerifyError::WrongProofSize {
        expected,
        got: proof.len(),
    };

    // RFC 9162 section 2.1.4.2.
    let (seed, rest) = if old_is_perfect {
        (root1, proof)
    } else {
        match proof.split_first() {
            Some((first, rest)) => (first, rest),
            None => return Err(wrong_size),
        }
    };
    let (mut f, mut s) = (size1 - 1, size2 - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (*seed, *seed);
    for c in rest {
        if s == 0 {
            return Err(wrong_size);
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(wrong_size);
    }
    if fr != *root1 {
        return Err(VerifyError::OldRootMismatch {
            expected: *root1,
            computed: fr,
        });
    }
    if sr != *root2 {
        return Err(VerifyError::RootMismatch {
            expected: *root2,
            computed: sr,
        });
    }
    Ok(())
}
