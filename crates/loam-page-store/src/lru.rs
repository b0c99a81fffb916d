//! One tier's eviction order, with a capacity in bytes.
//!
//! Entries are ordered by `(priority, last_use_tick)` in a `BTreeMap`, so the next victim is the first key:
//! the least recently used entry of the lowest priority (priority rules: all `low` data goes before any
//! `medium`, all `medium` before any `high`; LRU within a level). Ticks come from a per-tier counter, so
//! keys are unique and every operation is O(log n).
//!
//! Admission follows the spec's priority Decision: when an insert needs room and the new entry's priority
//! is lower than every other entry's, it is refused rather than evicting better data.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

/// Eviction priority: lower values are evicted first.
pub(super) type Priority = u8;

/// The priority of data under no rule (medium; `loam_core::rules::Priority::index`).
pub(super) const DEFAULT_PRIORITY: Priority = 1;

/// An evicted entry: its key, size and priority (the priority tells an eviction for room among equals
/// from one that made way for better data).
pub(super) type Victim<K> = (K, u64, Priority);

/// Where an entry sits in the order, and how many bytes it holds.
#[derive(Clone, Copy, Debug)]
struct Slot {
    order: (Priority, u64),
    size: u64,
}

/// An LRU order over keys of type `K`, bounded in bytes.
#[derive(Debug)]
pub(super) struct Lru<K> {
    capacity: u64,
    bytes: u64,
    tick: u64,
    order: BTreeMap<(Priority, u64), K>,
    slots: HashMap<K, Slot>,
}

impl<K: Copy + Eq + Hash> Lru<K> {
    /// An empty order holding at most `capacity` bytes.
    pub(super) fn new(capacity: u64) -> Self {
        Self { capacity, bytes: 0, tick: 0, order: BTreeMap::new(), slots: HashMap::new() }
    }

    /// Bytes held now.
    pub(super) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Entries held now.
    pub(super) fn len(&self) -> u64 {
        self.slots.len() as u64
    }

    /// The capacity in bytes.
    pub(super) fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Sets the capacity, evicting least recently used entries (lowest priority first) until the entries
    /// fit; returns the evicted entries and their sizes.
    pub(super) fn set_capacity(&mut self, capacity: u64) -> Vec<Victim<K>> {
        self.capacity = capacity;
        self.make_room(0, &[])
    }

    /// Evicts least recently used entries (lowest priority first), except those in `keep`, until `extra`
    /// more bytes fit under the capacity (or nothing is left); returns the evicted entries, their sizes and
    /// priorities.
    pub(super) fn make_room(&mut self, extra: u64, keep: &[K]) -> Vec<Victim<K>> {
        let mut evicted = Vec::new();
        while self.bytes + extra > self.capacity {
            let Some((&order, &victim)) = self.order.iter().find(|(_, k)| !keep.contains(k)) else { break };
            self.order.remove(&order);
            if let Some(slot) = self.slots.remove(&victim) {
                self.bytes -= slot.size;
                evicted.push((victim, slot.size, order.0));
            }
        }
        evicted
    }

    /// Whether making room for `extra` more bytes would evict better data: room is needed and `priority`
    /// is lower than that of every entry not in `keep` (the admission rule of [`Lru::insert`]).
    pub(super) fn refuses(&self, extra: u64, priority: Priority, keep: &[K]) -> bool {
        self.bytes + extra > self.capacity
            && self.order.iter().find(|(_, k)| !keep.contains(k)).is_some_and(|(&(lowest, _), _)| priority < lowest)
    }

    /// The size of `key`, if present.
    pub(super) fn size(&self, key: &K) -> Option<u64> {
        self.slots.get(key).map(|s| s.size)
    }

    /// Whether an entry of `size` bytes can ever fit.
    pub(super) fn admits(&self, size: u64) -> bool {
        size <= self.capacity
    }

    /// Inserts (or replaces) `key` as the most recently used entry, evicting least recently used entries
    /// (never `key` itself) until it fits. Returns the evicted entries and their sizes, or `None` (and
    /// changes nothing) when `size` exceeds the capacity, or when room is needed and `priority` is lower
    /// than that of every other entry.
    pub(super) fn insert(&mut self, key: K, size: u64, priority: Priority) -> Option<Vec<Victim<K>>> {
        if !self.admits(size) {
            return None;
        }
        let existing = self.slots.get(&key).map_or(0, |s| s.size);
        if self.bytes - existing + size > self.capacity
            && let Some((&(lowest, _), _)) = self.order.iter().find(|(_, k)| **k != key)
            && priority < lowest
        {
            return None;
        }
        self.remove(&key);
        let evicted = self.make_room(size, &[]);
        let order = (priority, self.next_tick());
        self.order.insert(order, key);
        self.slots.insert(key, Slot { order, size });
        self.bytes += size;
        Some(evicted)
    }

    /// Marks `key` as just used (keeping its priority). Returns whether it was present.
    pub(super) fn touch(&mut self, key: &K) -> bool {
        let tick = self.next_tick();
        let Some(slot) = self.slots.get_mut(key) else { return false };
        self.order.remove(&slot.order);
        slot.order.1 = tick;
        self.order.insert(slot.order, *key);
        true
    }

    /// Moves `key` to `priority`, keeping its recency. Returns whether it was present.
    pub(super) fn set_priority(&mut self, key: &K, priority: Priority) -> bool {
        let Some(slot) = self.slots.get_mut(key) else { return false };
        if slot.order.0 != priority {
            self.order.remove(&slot.order);
            slot.order.0 = priority;
            self.order.insert(slot.order, *key);
        }
        true
    }

    /// Removes `key`, returning its size if it was present.
    pub(super) fn remove(&mut self, key: &K) -> Option<u64> {
        let slot = self.slots.remove(key)?;
        self.order.remove(&slot.order);
        self.bytes -= slot.size;
        Some(slot.size)
    }

    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(evicted: Option<Vec<Victim<u32>>>) -> Vec<u32> {
        evicted.expect("admitted").into_iter().map(|(k, _, _)| k).collect()
    }

    #[test]
    fn evicts_least_recently_used_first() {
        let mut lru = Lru::new(30);
        assert!(keys(lru.insert(1, 10, DEFAULT_PRIORITY)).is_empty());
        assert!(keys(lru.insert(2, 10, DEFAULT_PRIORITY)).is_empty());
        assert!(keys(lru.insert(3, 10, DEFAULT_PRIORITY)).is_empty());
        assert!(lru.touch(&1));
        assert_eq!(keys(lru.insert(4, 10, DEFAULT_PRIORITY)), vec![2]);
        assert_eq!(keys(lru.insert(5, 20, DEFAULT_PRIORITY)), vec![3, 1]);
        assert_eq!((lru.bytes(), lru.len()), (30, 2));
    }

    #[test]
    fn lower_priority_goes_first() {
        let mut lru = Lru::new(20);
        lru.insert(1, 10, 0);
        lru.insert(2, 10, 2);
        lru.touch(&1);
        // 1 is the most recently used, but its priority is lower.
        assert_eq!(keys(lru.insert(3, 10, DEFAULT_PRIORITY)), vec![1]);
        assert_eq!(keys(lru.insert(4, 10, DEFAULT_PRIORITY)), vec![3]);
    }

    #[test]
    fn a_full_tier_refuses_data_below_everything_it_holds() {
        let mut lru = Lru::new(20);
        lru.insert(1, 10, 1);
        lru.insert(2, 10, 2);
        assert!(lru.insert(3, 10, 0).is_none(), "low data does not displace medium or high data");
        assert_eq!((lru.bytes(), lru.len()), (20, 2));
        // With room to spare, or with something as low in the tier, it is admitted.
        assert_eq!(keys(lru.insert(4, 10, 1)), vec![1]);
        lru.remove(&4);
        assert!(keys(lru.insert(5, 10, 0)).is_empty());
        assert_eq!(keys(lru.insert(6, 10, 0)), vec![5]);
    }

    #[test]
    fn a_new_priority_moves_an_entry_in_the_eviction_order() {
        let mut lru = Lru::new(20);
        lru.insert(1, 10, 1);
        lru.insert(2, 10, 1);
        assert!(lru.set_priority(&1, 2));
        assert!(!lru.set_priority(&9, 2));
        assert_eq!(keys(lru.insert(3, 10, 1)), vec![2]);
        assert!(lru.set_priority(&1, 0));
        assert_eq!(keys(lru.insert(4, 10, 1)), vec![1]);
    }

    #[test]
    fn never_evicts_the_entry_being_inserted() {
        let mut lru = Lru::new(20);
        lru.insert(1, 10, DEFAULT_PRIORITY);
        lru.insert(2, 10, DEFAULT_PRIORITY);
        // Re-inserting 1 with a larger size evicts 2, not the old copy of 1 counted twice.
        assert_eq!(keys(lru.insert(1, 20, DEFAULT_PRIORITY)), vec![2]);
        assert_eq!((lru.bytes(), lru.len()), (20, 1));
    }

    #[test]
    fn refuses_what_can_never_fit() {
        let mut lru = Lru::new(10);
        lru.insert(1, 10, DEFAULT_PRIORITY);
        assert!(lru.insert(2, 11, DEFAULT_PRIORITY).is_none());
        assert_eq!((lru.bytes(), lru.len()), (10, 1));
        assert!(!lru.admits(11));
    }

    #[test]
    fn a_smaller_capacity_or_room_made_ahead_evicts_in_order() {
        let mut lru = Lru::new(40);
        for k in 1..=4 {
            lru.insert(k, 10, DEFAULT_PRIORITY);
        }
        lru.set_priority(&1, 2);
        assert_eq!(lru.set_capacity(25).into_iter().map(|(k, _, _)| k).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!((lru.bytes(), lru.capacity()), (20, 25));
        assert!(lru.make_room(5, &[]).is_empty(), "5 more bytes fit already");
        assert_eq!(lru.make_room(10, &[4]).into_iter().map(|(k, _, _)| k).collect::<Vec<_>>(), vec![1], "4 is kept");
        assert_eq!(lru.set_capacity(0).len(), 1);
        assert_eq!((lru.bytes(), lru.len()), (0, 0));
    }

    #[test]
    fn remove_and_touch_of_absent_keys() {
        let mut lru: Lru<u32> = Lru::new(10);
        assert!(!lru.touch(&7));
        assert_eq!(lru.remove(&7), None);
        lru.insert(7, 4, DEFAULT_PRIORITY);
        assert_eq!(lru.remove(&7), Some(4));
        assert_eq!((lru.bytes(), lru.len()), (0, 0));
    }
}
