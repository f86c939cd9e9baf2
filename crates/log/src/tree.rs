//! Building Merkle trees incrementally and generating proofs from stored
//! perfect subtrees.
//!
//! A log only ever needs to persist the hashes of *perfect* subtrees (those
//! covering `2^level` leaves at an aligned position): they never change once
//! complete. Every root and proof of any tree size is a function of O(log n)
//! of them, which is what the functions here compute. Proof generation asks a
//! [`NodeSource`] for all the nodes it needs in one call so a database-backed
//! store can answer with a single query.

use crate::error::{Error, ProofError, TreeError};
use crate::hash::{Hash, empty_root, node_hash};

/// A perfect subtree: leaves `[index << level, (index + 1) << level)`.
/// Level 0 is a leaf hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    /// Height above the leaves: the node covers `2^level` leaves.
    pub level: u8,
    /// Position among the nodes of that level, counting from 0 at the left.
    pub index: u64,
}

impl NodeId {
    /// The node at `level` and `index`.
    pub const fn new(level: u8, index: u64) -> NodeId {
        NodeId { level, index }
    }

    /// The leaf range `[begin, end)` this node covers, or `None` if that range
    /// does not fit in a 64-bit tree size (such a node can exist in no tree).
    pub fn leaves(&self) -> Option<(u64, u64)> {
        let width = 1u64.checked_shl(u32::from(self.level))?;
        let begin = self.index.checked_mul(width)?;
        let end = begin.checked_add(width)?;
        Some((begin, end))
    }
}

/// Read access to the hashes of complete perfect subtrees of one tree
/// (a store implements this).
pub trait NodeSource {
    /// The store's error.
    type Error;
    /// Return the hashes of exactly these nodes, in the same order.
    fn nodes(&mut self, ids: &[NodeId]) -> Result<Vec<Hash>, Self::Error>;
}

impl<S: NodeSource + ?Sized> NodeSource for &mut S {
    type Error = S::Error;
    fn nodes(&mut self, ids: &[NodeId]) -> Result<Vec<Hash>, Self::Error> {
        (**self).nodes(ids)
    }
}

/// Compact range / right frontier of a tree of `size` leaves: the perfect
/// subtrees that make up `[0, size)`, largest first.
///
/// This is all the state needed to append leaves and compute the current
/// root, so a log can keep it in memory and persist completed nodes as they
/// appear.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// One hash per set bit of `size`, highest bit (largest subtree) first.
    hashes: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// The nodes that make up the frontier of a tree of `size` leaves,
    /// largest first: one per set bit of `size`. A store reads these to
    /// restore a frontier with [`Frontier::from_parts`].
    pub fn ids(size: u64) -> Vec<NodeId> {
        let mut ids = Vec::new();
        range_nodes(0, size, &mut ids);
        ids
    }

    /// Restore a frontier from the hashes of [`Frontier::ids`]`(size)`, in that order.
    pub fn from_parts(size: u64, hashes: Vec<Hash>) -> Result<Frontier, Error> {
        let expected = size.count_ones() as usize;
        if hashes.len() != expected {
            return Err(TreeError::FrontierLength {
                size,
                expected,
                got: hashes.len(),
            }
            .into());
        }
        Ok(Frontier { size, hashes })
    }

    /// Number of leaves in the tree.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The frontier hashes, in the order of [`Frontier::ids`]`(self.size())`.
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// Append a leaf hash; `on_node` is called for every perfect node
    /// completed by this append at level >= 1 (in increasing level), so a
    /// store can persist them. (The level-0 node is `leaf` itself, which the
    /// caller already has.)
    ///
    /// A tree of `u64::MAX` leaves cannot count another one; such an append is
    /// ignored. That needs 2^64 appends, so it cannot happen to a real log,
    /// but callers that restore frontiers of arbitrary sizes and want to
    /// detect it can use [`Frontier::try_append`].
    pub fn append(&mut self, leaf: Hash, on_node: impl FnMut(NodeId, &Hash)) {
        // The only error is a full tree, documented above.
        let _ = self.try_append(leaf, on_node);
    }

    /// Like [`Frontier::append`], but reports a full tree instead of ignoring the leaf.
    pub fn try_append(
        &mut self,
        leaf: Hash,
        mut on_node: impl FnMut(NodeId, &Hash),
    ) -> Result<(), Error> {
        let new_size = self
            .size
            .checked_add(1)
            .ok_or(TreeError::Full { size: self.size })?;
        // Adding one leaf is binary increment: every trailing 1 bit of `size`
        // is a perfect subtree that merges with the carry into the next level.
        let mut carry = leaf;
        let mut level: u8 = 0;
        while (self.size >> level) & 1 == 1 {
            let Some(left) = self.hashes.pop() else {
                // Unreachable: `hashes` has one entry per set bit of `size`.
                break;
            };
            carry = node_hash(&left, &carry);
            level += 1;
            // The completed node ends exactly at `new_size`.
            on_node(NodeId::new(level, (new_size >> level) - 1), &carry);
        }
        self.hashes.push(carry);
        self.size = new_size;
        Ok(())
    }

    /// Root hash of the tree; [`empty_root`] for size 0.
    pub fn root(&self) -> Hash {
        fold_range(&self.hashes)
    }
}

/// Hash of a range given by its perfect subtrees, largest (leftmost) first:
/// RFC 6962 splits at the largest power of two, so the root folds the
/// subtrees from the right.
fn fold_range(hashes: &[Hash]) -> Hash {
    let Some((last, rest)) = hashes.split_last() else {
        return empty_root();
    };
    rest.iter().rev().fold(*last, |acc, h| node_hash(h, &acc))
}

/// Append the maximal aligned perfect subtrees covering `[begin, end)`, left
/// to right.
fn range_nodes(mut begin: u64, end: u64, out: &mut Vec<NodeId>) {
    while begin < end {
        // Largest block that is aligned at `begin` and fits before `end`.
        let align = begin.trailing_zeros(); // 64 for begin == 0
        let fits = 63 - (end - begin).leading_zeros(); // floor(log2(end - begin))
        let level = align.min(fits);
        // level <= 63, so both the cast and the shift are exact.
        out.push(NodeId::new(level as u8, begin >> level));
        begin += 1u64 << level;
    }
}

/// Largest power of two strictly smaller than `n` (for n >= 2): the RFC 6962
/// split point `k`.
fn split_point(n: u64) -> u64 {
    1u64 << (63 - (n - 1).leading_zeros())
}

/// Node reads planned for one proof: each proof element is the hash of a leaf
/// range, itself folded from one or more perfect nodes.
#[derive(Default)]
struct Plan {
    ids: Vec<NodeId>,
    /// End offset into `ids` of each proof element.
    ends: Vec<usize>,
}

impl Plan {
    fn push_range(&mut self, begin: u64, end: u64) {
        range_nodes(begin, end, &mut self.ids);
        self.ends.push(self.ids.len());
    }

    /// Fetch all nodes in one call and fold each element.
    fn fetch<S: NodeSource>(self, src: &mut S) -> Result<Vec<Hash>, ProofError<S::Error>> {
        if self.ids.is_empty() {
            return Ok(Vec::new());
        }
        let hashes = src.nodes(&self.ids).map_err(ProofError::Source)?;
        if hashes.len() != self.ids.len() {
            return Err(ProofError::SourceCount {
                expected: self.ids.len(),
                got: hashes.len(),
            });
        }
        let mut start = 0;
        let mut out = Vec::with_capacity(self.ends.len());
        for end in self.ends {
            out.push(fold_range(&hashes[start..end]));
            start = end;
        }
        Ok(out)
    }
}

/// Root of the tree of `size` leaves, from stored perfect nodes (O(log n) node reads).
pub fn root<S: NodeSource>(size: u64, src: &mut S) -> Result<Hash, ProofError<S::Error>> {
    if size == 0 {
        return Ok(empty_root());
    }
    let mut plan = Plan::default();
    plan.push_range(0, size);
    let hashes = plan.fetch(src)?;
    Ok(hashes.first().copied().unwrap_or_else(empty_root))
}

/// RFC 6962 audit path (section 2.1.1) for leaf `index` in a tree of `size`
/// (index < size), ordered from the leaf's sibling up to the root's child.
///
/// Reads O(log n) nodes with at most one call to `src.nodes` (none for a
/// one-leaf tree, whose proof is empty).
pub fn inclusion_proof<S: NodeSource>(
    index: u64,
    size: u64,
    src: &mut S,
) -> Result<Vec<Hash>, ProofError<S::Error>> {
    inclusion_plan(index, size)?.fetch(src)
}

/// [`inclusion_proof`] for each of `indices` (each < size), in order, reading every node the
/// proofs need once, in one call to `src.nodes`: neighbouring leaves' audit paths share most of
/// their nodes, and a store answers one call of many nodes faster than many calls.
pub fn inclusion_proofs<S: NodeSource>(
    indices: &[u64],
    size: u64,
    src: &mut S,
) -> Result<Vec<Vec<Hash>>, ProofError<S::Error>> {
    let plans = indices
        .iter()
        .map(|&i| inclusion_plan(i, size))
        .collect::<Result<Vec<_>, _>>()?;
    let mut wanted: Vec<NodeId> = plans.iter().flat_map(|p| p.ids.iter().copied()).collect();
    wanted.sort_unstable();
    wanted.dedup();
    if wanted.is_empty() {
        return Ok(plans.iter().map(|_| Vec::new()).collect());
    }
    let hashes = src.nodes(&wanted).map_err(ProofError::Source)?;
    if hashes.len() != wanted.len() {
        return Err(ProofError::SourceCount {
            expected: wanted.len(),
            got: hashes.len(),
        });
    }
    let hash_of = |id: &NodeId| {
        // Every id of every plan is in `wanted`, which is sorted.
        wanted.binary_search(id).map(|k| hashes[k]).ok()
    };
    plans
        .into_iter()
        .map(|plan| {
            let mut start = 0;
            let mut out = Vec::with_capacity(plan.ends.len());
            for end in plan.ends {
                let nodes = plan.ids[start..end]
                    .iter()
                    .map(|id| {
                        hash_of(id).ok_or(ProofError::SourceCount {
                            expected: wanted.len(),
                            got: hashes.len(),
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                out.push(fold_range(&nodes));
                start = end;
            }
            Ok(out)
        })
        .collect()
}

/// The nodes an inclusion proof is folded from.
fn inclusion_plan<E>(index: u64, size: u64) -> Result<Plan, ProofError<E>> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    // Walk down from the root as RFC 6962 PATH does, remembering the sibling
    // range at every level; the proof lists them bottom-up.
    let mut siblings = Vec::new();
    let (mut start, mut n) = (0u64, size);
    while n > 1 {
        let k = split_point(n);
        if index - start < k {
            siblings.push((start + k, start + n));
            n = k;
        } else {
            siblings.push((start, start + k));
            start += k;
            n -= k;
        }
    }
    let mut plan = Plan::default();
    for &(begin, end) in siblings.iter().rev() {
        plan.push_range(begin, end);
    }
    Ok(plan)
}

/// RFC 6962 consistency proof (section 2.1.2) between sizes `old` (> 0) and
/// `new` (>= old). Empty when the sizes are equal.
///
/// Reads O(log n) nodes with at most one call to `src.nodes`.
pub fn consistency_proof<S: NodeSource>(
    old: u64,
    new: u64,
    src: &mut S,
) -> Result<Vec<Hash>, ProofError<S::Error>> {
    if old == 0 {
        return Err(ProofError::ConsistencyFromEmpty);
    }
    if old > new {
        return Err(ProofError::SizeDecreased { old, new });
    }
    // RFC 6962 SUBPROOF(m, D[start..start+n], b), unrolled top-down.
    let mut items = Vec::new();
    let (mut start, mut n, mut m) = (0u64, new, old);
    // `b` in the RFC: whether the current subtree's root is the old root
    // itself, which the verifier already knows and so is left out.
    let mut is_old_root = true;
    while m < n {
        let k = split_point(n);
        if m <= k {
            items.push((start + k, start + n));
            n = k;
        } else {
            items.push((start, start + k));
            start += k;
            n -= k;
            m -= k;
            is_old_root = false;
        }
    }
    if !is_old_root {
        items.push((start, start + n));
    }
    let mut plan = Plan::default();
    for &(begin, end) in items.iter().rev() {
        plan.push_range(begin, end);
    }
    plan.fetch(src)
}
