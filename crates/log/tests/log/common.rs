//! Helpers shared by the test modules: fixture paths, a naive Merkle tree
//! and an in-memory node source.

use trailmark_log::{
    Checkpoint, Frontier, Hash, NodeId, NodeSource, SignerKey, VerifierKey, empty_root, leaf_hash,
    node_hash,
};

/// The shared fixtures sit beside the workspace root.
pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures");

/// Leaves of the serverless-log test log, in order.
pub const WORDS: [&str; 15] = [
    "one", "two", "three", "four", "five", "six", "seven", "eit", "nain", "ten", "ileven", "twelf",
    "threeten", "fourten", "fivten",
];
pub const ORIGIN: &str = "example.com/testdata";
pub const SIGNER: &str = "PRIVATE+KEY+astra+cad5a3d2+ASgwwenlc0uuYcdy7kI44pQvuz1fw8cS5NqS8RkZBXoy";
pub const VERIFIER: &str = "astra+cad5a3d2+AZJqeuyE/GnknsCNh1eCtDtwdAwKBddOlS8M2eI1Jt4b";

pub fn signer() -> SignerKey {
    SignerKey::parse(SIGNER).unwrap()
}

pub fn verifier() -> VerifierKey {
    VerifierKey::parse(VERIFIER).unwrap()
}

/// Bytes of `checkpoints/serverless-log/checkpoint.N`.
pub fn checkpoint_file(n: usize) -> String {
    let path = format!("{FIXTURES}/checkpoints/serverless-log/checkpoint.{n}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

pub fn word_leaves() -> Vec<Hash> {
    WORDS.iter().map(|w| leaf_hash(w.as_bytes())).collect()
}

/// Checkpoint of the first `n` words, built with a `Frontier`.
pub fn word_checkpoint(n: usize) -> Checkpoint {
    let mut frontier = Frontier::new();
    for leaf in &word_leaves()[..n] {
        frontier.append(*leaf, |_, _| {});
    }
    Checkpoint::new(ORIGIN, frontier.size(), frontier.root())
}

/// Distinct leaf hashes for property tests.
pub fn test_leaves(n: usize) -> Vec<Hash> {
    (0..n)
        .map(|i| leaf_hash(format!("leaf {i}").as_bytes()))
        .collect()
}

/// RFC 6962 section 2.1 MTH, computed by the definition.
pub fn mth(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            // Largest power of two strictly below n.
            let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
            node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

/// Every perfect node of a tree, level by level, computed naively.
pub struct MemTree {
    levels: Vec<Vec<Hash>>,
}

impl MemTree {
    pub fn new(leaves: &[Hash]) -> MemTree {
        let mut levels = vec![leaves.to_vec()];
        loop {
            let below = levels.last().unwrap();
            if below.len() < 2 {
                break;
            }
            let above = below
                .chunks_exact(2)
                .map(|pair| node_hash(&pair[0], &pair[1]))
                .collect();
            levels.push(above);
        }
        MemTree { levels }
    }

    pub fn node(&self, id: NodeId) -> Option<Hash> {
        self.levels
            .get(usize::from(id.level))?
            .get(usize::try_from(id.index).ok()?)
            .copied()
    }

    /// A node source restricted to the tree of the first `size` leaves: a
    /// node reaching past `size` is an error, so proofs that would use a
    /// node not yet complete at that size fail.
    pub fn source(&self, size: u64) -> MemSource<'_> {
        MemSource {
            tree: self,
            size,
            calls: 0,
            reads: 0,
        }
    }
}

pub struct MemSource<'a> {
    tree: &'a MemTree,
    size: u64,
    pub calls: usize,
    pub reads: usize,
}

impl NodeSource for MemSource<'_> {
    type Error = String;
    fn nodes(&mut self, ids: &[NodeId]) -> Result<Vec<Hash>, String> {
        self.calls += 1;
        self.reads += ids.len();
        ids.iter()
            .map(|&id| match id.leaves() {
                Some((_, end)) if end <= self.size => self
                    .tree
                    .node(id)
                    .ok_or_else(|| format!("{id:?} is not in the tree")),
                _ => Err(format!("{id:?} is not complete at size {}", self.size)),
            })
            .collect()
    }
}

/// A deterministic stream of numbers for sampling (no randomness needed to
/// reproduce a failure).
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 11
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `h` with bit `bit` (0..256) flipped.
pub fn flip(h: &Hash, bit: usize) -> Hash {
    let mut b = h.0;
    b[bit / 8] ^= 1 << (bit % 8);
    Hash(b)
}
