//! The inode table: which cluster path each inode number the kernel holds stands for.
//!
//! A path's number is a hash of the path (FNV-1a, 64 bits), so it is the same for the whole mount
//! (and across mounts) without remembering paths the kernel has let go of: an entry lives from the
//! first `lookup` that returns it until the kernel `forget`s it as often as it was looked up, which
//! keeps the table as large as the kernel's inode cache and no larger (it never grows per lookup of
//! the same path). Two paths whose hashes collide get the next free number; such a path's number may
//! change after the kernel forgets it, which the kernel handles as any new inode.
//!
//! Each entry caches the path's metadata with the time it was fetched, so the TTL can be judged.

use crate::meta::Meta;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// The root directory's inode number (FUSE's fixed root).
pub const ROOT: u64 = 1;

/// What an inode stands for.
#[derive(Clone, Debug)]
pub struct Node {
    /// Cluster path: `/` for the root, `/data` for a mount point, `/data/dir/f` below.
    pub path: Arc<str>,
    /// The full UFS URI (`None` for the root, which only lists the mount points).
    pub uri: Option<Arc<str>>,
    /// The metadata last fetched.
    pub meta: Meta,
    /// When `meta` was fetched.
    pub fetched: Instant,
    /// Lookups the kernel has not forgotten yet.
    lookups: u64,
}

/// Inode number -> node, and path -> inode number.
pub struct InodeTable {
    nodes: HashMap<u64, Node>,
    by_path: HashMap<Arc<str>, u64>,
}

/// FNV-1a of `path`, moved off the numbers FUSE reserves (0 is invalid, 1 is the root).
fn hash_ino(path: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in path.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    if h <= ROOT { h + 2 } else { h }
}

impl InodeTable {
    /// A table holding the root, with `root` as its metadata.
    pub fn new(root: Meta) -> Self {
        let path: Arc<str> = Arc::from("/");
        let node = Node { path: path.clone(), uri: None, meta: root, fetched: Instant::now(), lookups: 1 };
        Self { nodes: HashMap::from([(ROOT, node)]), by_path: HashMap::from([(path, ROOT)]) }
    }

    /// The node of `ino`.
    pub fn get(&self, ino: u64) -> Option<&Node> {
        self.nodes.get(&ino)
    }

    /// The number `path` has, or would get from a lookup now (directory listings show it).
    pub fn ino_for(&self, path: &str) -> u64 {
        if let Some(&ino) = self.by_path.get(path) {
            return ino;
        }
        let mut ino = hash_ino(path);
        while self.nodes.contains_key(&ino) {
            ino = ino.wrapping_add(1).max(ROOT + 1);
        }
        ino
    }

    /// Records a lookup of `path` (one more reference the kernel holds) with fresh metadata; its number.
    pub fn lookup(&mut self, path: &str, uri: Option<&str>, meta: Meta) -> u64 {
        let ino = self.ino_for(path);
        let now = Instant::now();
        match self.nodes.get_mut(&ino) {
            Some(n) => {
                n.lookups += 1;
                n.meta = meta;
                n.fetched = now;
                if let Some(u) = uri {
                    n.uri = Some(Arc::from(u));
                }
            }
            None => {
                let path: Arc<str> = Arc::from(path);
                self.by_path.insert(path.clone(), ino);
                let node = Node { path, uri: uri.map(Arc::from), meta, fetched: now, lookups: 1 };
                self.nodes.insert(ino, node);
            }
        }
        ino
    }

    /// Stores metadata fetched for `ino` (a `getattr` past the TTL).
    pub fn refresh(&mut self, ino: u64, meta: Meta) {
        if let Some(n) = self.nodes.get_mut(&ino) {
            n.meta = meta;
            n.fetched = Instant::now();
        }
    }

    /// The kernel dropped `n` references to `ino`; true when the entry is gone.
    pub fn forget(&mut self, ino: u64, n: u64) -> bool {
        if ino == ROOT {
            return false;
        }
        let Some(node) = self.nodes.get_mut(&ino) else { return false };
        node.lookups = node.lookups.saturating_sub(n);
        if node.lookups > 0 {
            return false;
        }
        let path = node.path.clone();
        self.nodes.remove(&ino);
        self.by_path.remove(&path);
        true
    }

    /// Entries held (the root included).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the table holds nothing (never true: the root is always held).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn file(size: u64) -> Meta {
        Meta { dir: false, size, mtime: UNIX_EPOCH, mode: 0o644 }
    }

    #[test]
    fn a_path_keeps_its_number_across_lookups_and_forgets() {
        let mut t = InodeTable::new(Meta::synthetic_dir(UNIX_EPOCH));
        let a = t.lookup("/data/a", Some("file:///u/a"), file(1));
        assert!(a > ROOT);
        assert_eq!(t.lookup("/data/a", None, file(2)), a);
        assert_eq!(t.get(a).map(|n| (n.meta.size, n.uri.as_deref())), Some((2, Some("file:///u/a"))));
        assert_eq!(t.len(), 2, "repeated lookups of one path hold one entry");
        assert!(!t.forget(a, 1));
        assert!(t.forget(a, 1), "gone once forgotten as often as looked up");
        assert_eq!(t.len(), 1);
        assert!(t.get(a).is_none());
        assert_eq!(t.ino_for("/data/a"), a, "the same number after it was forgotten");
        assert_eq!(t.lookup("/data/a", Some("file:///u/a"), file(1)), a);
    }

    #[test]
    fn many_lookups_and_forgets_leave_only_the_root() {
        let mut t = InodeTable::new(Meta::synthetic_dir(UNIX_EPOCH));
        let inos: Vec<u64> = (0..1000).map(|i| t.lookup(&format!("/d/f{i}"), Some("file:///x"), file(i))).collect();
        let distinct: std::collections::HashSet<_> = inos.iter().collect();
        assert_eq!(distinct.len(), 1000, "distinct paths, distinct numbers");
        for ino in inos {
            t.forget(ino, 1);
        }
        assert_eq!(t.len(), 1);
        assert!(!t.forget(ROOT, 100), "the root is never forgotten");
        assert!(t.get(ROOT).is_some());
    }

    #[test]
    fn a_colliding_hash_gets_the_next_free_number() {
        let mut t = InodeTable::new(Meta::synthetic_dir(UNIX_EPOCH));
        let a = t.lookup("/d/a", None, file(0));
        // Force a collision: occupy the number "/d/b" hashes to with another path.
        let b_hash = hash_ino("/d/b");
        let node = Node { path: Arc::from("/d/other"), uri: None, meta: file(0), fetched: Instant::now(), lookups: 1 };
        t.nodes.insert(b_hash, node);
        t.by_path.insert(Arc::from("/d/other"), b_hash);
        let b = t.lookup("/d/b", None, file(0));
        assert_ne!(b, b_hash);
        assert_ne!(b, a);
        assert_eq!(t.ino_for("/d/b"), b);
        assert_eq!(t.get(b).map(|n| n.path.to_string()), Some("/d/b".into()));
    }

    #[test]
    fn reserved_numbers_are_never_handed_out() {
        assert!(hash_ino("") > ROOT);
        let mut t = InodeTable::new(Meta::synthetic_dir(UNIX_EPOCH));
        assert_ne!(t.lookup("/x", None, file(0)), 0);
    }
}
