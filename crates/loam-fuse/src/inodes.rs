//! The inode table: which cluster path, and for a file which version of it, each inode number the
//! kernel holds stands for.
//!
//! A directory's number is a hash of its path (FNV-1a, 64 bits); a file's is a hash of its path and
//! version tag (`loam_core::version`), so each version of a file is its own inode, as a file replaced
//! by a rename is on a local file system. That is what keeps a FUSE read to one version: the kernel
//! keeps one size and one page cache per inode and clamps reads to that size, so an inode shared by
//! two versions let a read return one version's bytes cut to the other's length (RELIABILITY.md,
//! finding 4). With an inode per version, the size the kernel holds, the pages it caches and the
//! version an open handle is pinned to (`files.rs`) are always the same version's; a lookup that
//! finds a new version returns a new number, and handles open on the old one read on from it.
//!
//! Numbers are the same for the whole mount (and across mounts) without remembering what the kernel
//! has let go of: an entry lives from the first `lookup` that returns it until the kernel `forget`s it
//! as often as it was looked up, which keeps the table as large as the kernel's inode cache and no
//! larger (it never grows per lookup of the same version). Two entries whose hashes collide get the
//! next free number; such a number may change after the kernel forgets it, which the kernel handles as
//! any new inode.
//!
//! Each entry caches its metadata with the time it was fetched, so the TTL can be judged (a file
//! version's metadata never changes).

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
    /// A file's version tag (`None` for directories): the version this inode stands for.
    pub version: Option<Arc<str>>,
    /// The metadata last fetched.
    pub meta: Meta,
    /// When `meta` was fetched.
    pub fetched: Instant,
    /// Lookups the kernel has not forgotten yet.
    lookups: u64,
    /// Fetched since the last open: the next open may trust `version` without checking it.
    unopened: bool,
}

/// Inode number -> node, and path -> the inode number its last lookup returned.
pub struct InodeTable {
    nodes: HashMap<u64, Node>,
    by_path: HashMap<Arc<str>, u64>,
}

/// FNV-1a of `path` (and, for a file, a NUL and its `version`), moved off the numbers FUSE reserves (0
/// is invalid, 1 is the root).
fn hash_ino(path: &str, version: Option<&str>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let tail = version.map(|v| std::iter::once(0).chain(v.bytes()));
    for b in path.bytes().chain(tail.into_iter().flatten()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    if h <= ROOT { h + 2 } else { h }
}

impl InodeTable {
    /// A table holding the root, with `root` as its metadata.
    pub fn new(root: Meta) -> Self {
        let path: Arc<str> = Arc::from("/");
        let node = Node {
            path: path.clone(),
            uri: None,
            version: None,
            meta: root,
            fetched: Instant::now(),
            lookups: 1,
            unopened: true,
        };
        Self { nodes: HashMap::from([(ROOT, node)]), by_path: HashMap::from([(path, ROOT)]) }
    }

    /// The node of `ino`.
    pub fn get(&self, ino: u64) -> Option<&Node> {
        self.nodes.get(&ino)
    }

    /// The number `path` (at `version`, for a file) has, or would get from a lookup now (directory
    /// listings show it).
    pub fn ino_for(&self, path: &str, version: Option<&str>) -> u64 {
        let is = |n: &Node| &*n.path == path && n.version.as_deref() == version;
        if let Some(&ino) = self.by_path.get(path)
            && self.nodes.get(&ino).is_some_and(is)
        {
            return ino;
        }
        let mut ino = hash_ino(path, version);
        while let Some(n) = self.nodes.get(&ino) {
            if is(n) {
                break;
            }
            ino = ino.wrapping_add(1).max(ROOT + 1);
        }
        ino
    }

    /// Records a lookup of `path` (at `version`, for a file: one more reference the kernel holds) with
    /// fresh metadata; its number.
    pub fn lookup(&mut self, path: &str, uri: Option<&str>, version: Option<&str>, meta: Meta) -> u64 {
        let ino = self.ino_for(path, version);
        let now = Instant::now();
        match self.nodes.get_mut(&ino) {
            Some(n) => {
                n.lookups += 1;
                n.meta = meta;
                n.fetched = now;
                n.unopened = true;
                if let Some(u) = uri {
                    n.uri = Some(Arc::from(u));
                }
                self.by_path.insert(n.path.clone(), ino);
            }
            None => {
                let path: Arc<str> = Arc::from(path);
                self.by_path.insert(path.clone(), ino);
                let (uri, version) = (uri.map(Arc::from), version.map(Arc::from));
                let node = Node { path, uri, version, meta, fetched: now, lookups: 1, unopened: true };
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
            n.unopened = true;
        }
    }

    /// An open of `ino`: whether it was fetched since the last open (which this one now is).
    pub fn open(&mut self, ino: u64) -> bool {
        self.nodes.get_mut(&ino).is_some_and(|n| std::mem::replace(&mut n.unopened, false))
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
        // An older version forgotten leaves the path's current number alone.
        if self.by_path.get(&path) == Some(&ino) {
            self.by_path.remove(&path);
        }
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
        let a = t.lookup("/data/a", Some("file:///u/a"), Some("1-0"), file(1));
        assert!(a > ROOT);
        assert_eq!(t.lookup("/data/a", None, Some("1-0"), file(1)), a);
        assert_eq!(t.get(a).map(|n| (n.meta.size, n.uri.as_deref())), Some((1, Some("file:///u/a"))));
        assert_eq!(t.len(), 2, "repeated lookups of one path hold one entry");
        assert!(!t.forget(a, 1));
        assert!(t.forget(a, 1), "gone once forgotten as often as looked up");
        assert_eq!(t.len(), 1);
        assert!(t.get(a).is_none());
        assert_eq!(t.ino_for("/data/a", Some("1-0")), a, "the same number after it was forgotten");
        assert_eq!(t.lookup("/data/a", Some("file:///u/a"), Some("1-0"), file(1)), a);
    }

    #[test]
    fn many_lookups_and_forgets_leave_only_the_root() {
        let mut t = InodeTable::new(Meta::synthetic_dir(UNIX_EPOCH));
        let inos: Vec<u64> =
            (0..1000).map(|i| t.lookup(&format!("/d/f{i}"), Some("file:///x"), Some("v"), file(i))).collect();
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
        let a = t.lookup("/d/a", None, Some("v"), file(0));
        // Force a collision: occupy the number "/d/b" hashes to with another path.
        let b_hash = hash_ino("/d/b", Some("v"));
        let fetched = Instant::now();
        let node = Node {
            path: Arc::from("/d/other"),
            uri: None,
            version: None,
            meta: file(0),
            fetched,
            lookups: 1,
            unopened: true,
        };
        t.nodes.insert(b_hash, node);
        t.by_path.insert(Arc::from("/d/other"), b_hash);
        let b = t.lookup("/d/b", None, Some("v"), file(0));
        assert_ne!(b, b_hash);
        assert_ne!(b, a);
        assert_eq!(t.ino_for("/d/b", Some("v")), b);
        assert_eq!(t.lookup("/d/b", None, Some("v"), file(0)), b, "found again past the collision");
        assert_eq!(t.get(b).map(|n| n.path.to_string()), Some("/d/b".into()));
    }

    #[test]
    fn reserved_numbers_are_never_handed_out() {
        assert!(hash_ino("", None) > ROOT);
        let mut t = InodeTable::new(Meta::synthetic_dir(UNIX_EPOCH));
        assert_ne!(t.lookup("/x", None, None, file(0)), 0);
    }

    #[test]
    fn each_version_of_a_file_is_its_own_inode_until_the_kernel_forgets_it() {
        let mut t = InodeTable::new(Meta::synthetic_dir(UNIX_EPOCH));
        let v1 = t.lookup("/d/f", Some("file:///u/f"), Some("8-1"), file(8));
        let v2 = t.lookup("/d/f", Some("file:///u/f"), Some("a-2"), file(10));
        assert_ne!(v1, v2, "a new version, a new inode");
        assert_eq!(t.ino_for("/d/f", Some("a-2")), v2);
        assert_eq!(t.get(v1).map(|n| (n.meta.size, n.version.as_deref())), Some((8, Some("8-1"))), "v1 kept as it was");
        assert_eq!(t.get(v2).map(|n| (n.meta.size, n.version.as_deref())), Some((10, Some("a-2"))));
        assert!(t.forget(v1, 1), "the old version goes once forgotten");
        assert_eq!(t.by_path.get("/d/f"), Some(&v2), "and leaves the path's current inode alone");
        assert_eq!(t.lookup("/d/f", None, Some("a-2"), file(10)), v2);
        assert_eq!(t.len(), 2);
        let dir = t.lookup("/d", Some("file:///u"), None, Meta::synthetic_dir(UNIX_EPOCH));
        assert_eq!(dir, hash_ino("/d", None), "a directory's number is its path's");
        assert!(t.open(v2), "the first open after a lookup may trust it");
        assert!(!t.open(v2), "a second one checks");
        t.lookup("/d/f", None, Some("a-2"), file(10));
        assert!(t.open(v2), "until the next lookup");
    }
}
