//! The in-memory cache of upper subtree hashes, shared by the backends.

use std::collections::HashMap;
use std::sync::Mutex;

use trailmark_log::Hash;

/// Subtree hashes are immutable once written, so upper levels (few, and on every proof's path)
/// are kept in memory. Proofs are checked by their verifiers against signed roots, so a cache
/// cannot make a wrong proof pass.
#[derive(Debug, Default)]
pub(crate) struct NodeCache {
    nodes: Mutex<HashMap<(u8, u64), Hash>>,
}

impl NodeCache {
    /// Only levels this high are cached: 1/64 of the leaves' worth of entries at most.
    const MIN_LEVEL: u8 = 6;
    const CAPACITY: usize = 1 << 20;

    pub(crate) fn get(&self, level: u8, index: u64) -> Option<Hash> {
        if level < Self::MIN_LEVEL {
            return None;
        }
        self.nodes.lock().ok()?.get(&(level, index)).copied()
    }

    pub(crate) fn put(&self, level: u8, index: u64, hash: Hash) {
        if level < Self::MIN_LEVEL {
            return;
        }
        if let Ok(mut nodes) = self.nodes.lock() {
            if nodes.len() >= Self::CAPACITY {
                nodes.clear();
            }
            nodes.insert((level, index), hash);
        }
    }
}
