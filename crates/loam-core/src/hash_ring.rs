//! The consistent hash ring that places a file on workers, exactly as Alluxio 3.x and its Python clients do.
//!
//! Each worker contributes `V` points (`murmur3(identifier_bytes ‖ le32(version) ‖ le32(i))`, read as a
//! signed 32-bit integer). A key is hashed with an attempt counter (`murmur3(utf8(key) ‖ le32(a))`) and
//! owned by the first point strictly above it, wrapping around; further attempts find replicas, skipping
//! workers already chosen. Reproduces every vector in `loam-core/tests/vectors/hash-ring`.

use crate::id::WorkerIdentity;
use crate::murmur3::murmur3_x86_32;
use std::collections::BTreeMap;

/// Virtual nodes per worker; the Python clients hard-code 5.
pub const DEFAULT_VIRTUAL_NODES: u32 = 5;

/// How many hashing attempts a lookup makes before giving up on finding more distinct workers.
pub const MAX_LOOKUP_ATTEMPTS: u32 = 100;

/// A ring over members of type `T` (a worker's address, a handle, or just its identity).
#[derive(Clone, Debug)]
pub struct HashRing<T> {
    members: Vec<(WorkerIdentity, T)>,
    points: BTreeMap<i32, usize>,
}

/// The ring point of `identity`'s `index`-th virtual node.
pub fn ring_point(identity: &WorkerIdentity, index: u32) -> i32 {
    let mut buf = identity.identifier_bytes();
    buf.extend_from_slice(&identity.version.to_le_bytes());
    buf.extend_from_slice(&index.to_le_bytes());
    murmur3_x86_32(&buf, 0) as i32
}

/// The hash of `key` for lookup attempt `attempt` (1-based).
pub fn key_hash(key: &str, attempt: u32) -> i32 {
    let mut buf = Vec::with_capacity(key.len() + 4);
    buf.extend_from_slice(key.as_bytes());
    buf.extend_from_slice(&attempt.to_le_bytes());
    murmur3_x86_32(&buf, 0) as i32
}

impl<T> HashRing<T> {
    /// Builds a ring with `virtual_nodes` points per member. Members are deduplicated by identity
    /// (the first wins); on a point collision the later member in identity order wins, deterministically.
    pub fn new(members: impl IntoIterator<Item = (WorkerIdentity, T)>, virtual_nodes: u32) -> Self {
        let mut members: Vec<(WorkerIdentity, T)> = members.into_iter().collect();
        members.sort_by(|a, b| a.0.cmp(&b.0));
        members.dedup_by(|a, b| a.0 == b.0);
        let mut points = BTreeMap::new();
        for (idx, (identity, _)) in members.iter().enumerate() {
            for i in 0..virtual_nodes {
                points.insert(ring_point(identity, i), idx);
            }
        }
        Self { members, points }
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the ring has no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The members, in identity order.
    pub fn members(&self) -> impl Iterator<Item = (&WorkerIdentity, &T)> {
        self.members.iter().map(|(i, t)| (i, t))
    }

    /// Every ring point and the identity that owns it, in ring order.
    pub fn points(&self) -> impl Iterator<Item = (i32, &WorkerIdentity)> {
        self.points.iter().map(|(p, idx)| (*p, &self.members[*idx].0))
    }

    /// Up to `n` distinct members for `key`, primary first.
    pub fn lookup(&self, key: &str, n: usize) -> Vec<(&WorkerIdentity, &T)> {
        let mut chosen: Vec<usize> = Vec::with_capacity(n);
        if self.points.is_empty() {
            return Vec::new();
        }
        let want = n.min(self.members.len());
        for attempt in 1..=MAX_LOOKUP_ATTEMPTS {
            if chosen.len() >= want {
                break;
            }
            let h = key_hash(key, attempt);
            let idx = match self.points.range(h.saturating_add(1)..).next() {
                Some((_, idx)) if h != i32::MAX => *idx,
                _ => *self.points.values().next().expect("ring is not empty"),
            };
            if !chosen.contains(&idx) {
                chosen.push(idx);
            }
        }
        chosen.into_iter().map(|i| (&self.members[i].0, &self.members[i].1)).collect()
    }

    /// The primary member for `key`.
    pub fn primary(&self, key: &str) -> Option<(&WorkerIdentity, &T)> {
        self.lookup(key, 1).into_iter().next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ident(hex: &str) -> WorkerIdentity {
        WorkerIdentity { version: 1, identifier: hex.into() }
    }

    #[test]
    fn lookup_returns_distinct_members_and_caps_at_size() {
        let ring = HashRing::new((0..3).map(|i| (ident(&format!("{:032x}", i + 1)), i)), DEFAULT_VIRTUAL_NODES);
        let got = ring.lookup("s3://b/k", 5);
        assert_eq!(got.len(), 3);
        let mut ids: Vec<_> = got.iter().map(|(i, _)| i.identifier.clone()).collect();
        ids.dedup();
        assert_eq!(ids.len(), 3);
        assert_eq!(ring.points().count(), 15);
    }

    #[test]
    fn empty_ring_finds_nothing() {
        let ring: HashRing<()> = HashRing::new(Vec::new(), 5);
        assert!(ring.lookup("x", 1).is_empty());
        assert!(ring.primary("x").is_none());
    }

    #[test]
    fn removing_a_worker_only_moves_its_keys() {
        let all: Vec<_> = (0..5).map(|i| (ident(&format!("{:032x}", i + 7)), i)).collect();
        let ring = HashRing::new(all.clone(), 5);
        let smaller = HashRing::new(all.into_iter().filter(|(_, i)| *i != 2), 5);
        for k in 0..500 {
            let key = format!("s3://b/{k}");
            let before = *ring.primary(&key).unwrap().1;
            let after = *smaller.primary(&key).unwrap().1;
            if before != 2 {
                assert_eq!(before, after, "{key} moved although its worker stayed");
            }
        }
    }
}
