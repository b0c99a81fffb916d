//! The global file index: which UFS files are cached, and by which workers, cluster-wide.
//!
//! - **Structure.** One sorted `BTreeMap<Box<str>, Holders>` from UFS URI to the set of worker *slots*
//!   holding it; worker ids are interned once into a slot table (`slots`, with a name → slot map). A
//!   [`Holders`] is a 64-bit mask of slots 0..64 and, only when a slot past 63 holds the file, a sorted boxed
//!   slice of those: as small and as fast as one mask for up to 64 workers, and any number of workers beyond.
//!   A million entries of ~60-byte URIs take about 140 MB (the `file_index_memory` test measures it), under
//!   the 300 MB budget, and the sorted order gives `?prefix=` and paging for free.
//! - **Size cap.** At most `max_entries` entries (`--file-index-max-entries`, default
//!   [`DEFAULT_MAX_ENTRIES`], about 280 MB of ~60-byte URIs). A report or a `POST` that would go past it is
//!   refused whole — nothing changes — with [`FileIndexError::Full`], `507 Insufficient Storage`: the
//!   index, not the caller's rate, is the limit (a `429` would say "slow down", which cannot help), and
//!   a worker retries its report (a `5xx`) until entries are dropped.
//! - **Who may report.** A report names its worker; the API takes it only from a current member of the
//!   ring (`400` otherwise, nothing changed; `403` is the auth layer's answer to a missing role), so forged workers cannot fill the slot table or the index.
//! - **Keeping it current.** Workers diff their page store's file list against what they last reported
//!   and send the difference every second ([`FileIndex::apply_report`]); any cause of change (load, free,
//!   TTL, eviction, read-through, clear-stale) is covered without hooks in the page store. When a
//!   Coordinator comes to lead (at start, or taking over in a highly available deployment) the index is
//!   rebuilt by asking every live worker for its full list (`rebuild`).
//! - **Decision (user entries):** `POST` adds entries held by no worker (an empty mask); they stay until a
//!   `DELETE` removes them or a worker that held the file reports dropping it. An entry whose last worker
//!   drops the file disappears.
//! - **Decision (slots):** a new worker takes the lowest slot whose worker holds nothing (each slot counts
//!   the entries it holds), else a new one; the table stays as long as the number of workers that hold
//!   entries.
//! - **Decision (workers that leave):** their entries stay (a worker that comes back keeps its cache) until
//!   its next first report, which carries `reset` and replaces them, or the coordinator restarts; `GET
//!   ?file=` shows such a worker without an address.
//! - **Decision (disabled):** with the index disabled (`--disable-file-index`) every method, including the
//!   workers' reports, answers `404 {"status": "Global file index is not enabled"}`.

mod rebuild;

use parking_lot::RwLock;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Bound;

pub use rebuild::rebuild;

/// Default of `--file-index-max-entries`.
pub const DEFAULT_MAX_ENTRIES: u64 = 2_000_000;

/// Why an index update was refused.
#[derive(Debug, thiserror::Error)]
pub enum FileIndexError {
    /// The index is disabled.
    #[error("Global file index is not enabled")]
    Disabled,
    /// The update would take the index past its size cap.
    #[error("the global file index is full ({max} entries, --file-index-max-entries); nothing was changed")]
    Full {
        /// The cap.
        max: usize,
    },
}

impl FileIndexError {
    /// The layer-independent kind.
    pub fn kind(&self) -> loam_core::ErrorKind {
        match self {
            FileIndexError::Disabled => loam_core::ErrorKind::NotFound,
            FileIndexError::Full { .. } => loam_core::ErrorKind::Unavailable,
        }
    }
}

/// The index, shared by the API handlers and the rebuild task.
pub struct FileIndex {
    enabled: bool,
    max_entries: usize,
    inner: RwLock<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: BTreeMap<Box<str>, Holders>,
    /// Slot → worker id (`None`: never used).
    slots: Vec<Option<Box<str>>>,
    /// Worker id → slot.
    by_name: HashMap<Box<str>, u32>,
    /// Slot → number of entries it holds.
    held: Vec<u64>,
}

impl FileIndex {
    /// An empty index of at most `max_entries` entries; a disabled one refuses every call with
    /// [`FileIndexError::Disabled`].
    pub fn new(enabled: bool, max_entries: usize) -> Self {
        Self { enabled, max_entries, inner: RwLock::new(Inner::default()) }
    }

    fn fits(&self, after: usize) -> Result<(), FileIndexError> {
        if after > self.max_entries { Err(FileIndexError::Full { max: self.max_entries }) } else { Ok(()) }
    }

    /// Whether the index is enabled.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// `Err(Disabled)` when the index is disabled.
    pub fn ensure_enabled(&self) -> Result<(), FileIndexError> {
        if self.enabled { Ok(()) } else { Err(FileIndexError::Disabled) }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.inner.read().entries.len()
    }

    /// Whether the index holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds `files` as entries; answers how many were new.
    pub fn add<S: AsRef<str>>(&self, files: &[S]) -> Result<u64, FileIndexError> {
        self.ensure_enabled()?;
        let mut inner = self.inner.write();
        let new: HashSet<&str> = files.iter().map(|f| f.as_ref()).filter(|f| !inner.entries.contains_key(*f)).collect();
        self.fits(inner.entries.len() + new.len())?;
        for f in &new {
            inner.entries.insert((*f).into(), Holders::default());
        }
        Ok(new.len() as u64)
    }

    /// Removes `files`; answers how many were present.
    pub fn remove<S: AsRef<str>>(&self, files: &[S]) -> Result<u64, FileIndexError> {
        self.ensure_enabled()?;
        let mut inner = self.inner.write();
        let mut removed = 0;
        for f in files {
            if let Some(h) = inner.entries.remove(f.as_ref()) {
                inner.uncount(&h);
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// The URIs starting with `prefix`, in order, `offset` skipped, at most `limit`.
    pub fn list(&self, prefix: &str, offset: usize, limit: Option<usize>) -> Result<Vec<String>, FileIndexError> {
        self.ensure_enabled()?;
        let inner = self.inner.read();
        Ok(inner
            .entries
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .skip(offset)
            .take(limit.unwrap_or(usize::MAX))
            .map(|(k, _)| k.to_string())
            .collect())
    }

    /// The workers holding `uri`; `None` when the file is not in the index.
    pub fn locate(&self, uri: &str) -> Result<Option<Vec<String>>, FileIndexError> {
        self.ensure_enabled()?;
        let inner = self.inner.read();
        Ok(inner.entries.get(uri).map(|h| {
            h.iter().filter_map(|i| inner.slots.get(i as usize).cloned().flatten().map(String::from)).collect()
        }))
    }

    /// Applies a worker's report: it now holds `added` and no longer holds `removed`.
    pub fn apply_report(&self, worker: &str, added: &[String], removed: &[String]) -> Result<(), FileIndexError> {
        self.ensure_enabled()?;
        let mut inner = self.inner.write();
        let slot = inner.slot(worker);
        // Entries that disappear (this worker was their only holder) and entries that are new.
        let removed: HashSet<&str> = removed.iter().map(String::as_str).collect();
        let added: HashSet<&str> = added.iter().map(String::as_str).filter(|u| !removed.contains(u)).collect();
        let gone = removed.iter().filter(|u| inner.entries.get(**u).is_some_and(|h| h.only(slot))).count();
        let new = added.iter().filter(|u| !inner.entries.contains_key(**u)).count();
        if let Err(e) = self.fits(inner.entries.len() - gone + new) {
            inner.release_if_unused(slot);
            return Err(e);
        }
        for uri in removed {
            inner.clear(uri, slot);
        }
        for uri in added {
            inner.set(uri, slot);
        }
        Ok(())
    }

    /// Replaces everything `worker` holds by `files` (a rebuild from its full list).
    pub fn replace_worker(&self, worker: &str, files: &[String]) -> Result<(), FileIndexError> {
        self.ensure_enabled()?;
        let mut inner = self.inner.write();
        let slot = inner.slot(worker);
        let files: HashSet<&str> = files.iter().map(String::as_str).collect();
        let only_mine = inner.entries.values().filter(|h| h.only(slot)).count();
        let kept_or_new = files.iter().filter(|u| inner.entries.get(**u).is_none_or(|h| h.only(slot))).count();
        if let Err(e) = self.fits(inner.entries.len() - only_mine + kept_or_new) {
            inner.release_if_unused(slot);
            return Err(e);
        }
        inner.entries.retain(|_, h| {
            let held = h.remove(slot);
            !(held && h.is_empty())
        });
        inner.held[slot as usize] = 0;
        for uri in files {
            inner.set(uri, slot);
        }
        Ok(())
    }
}

impl Inner {
    /// The slot of `worker`, interning it if new: the lowest slot whose worker holds nothing, else a new one.
    fn slot(&mut self, worker: &str) -> u32 {
        if let Some(&i) = self.by_name.get(worker) {
            return i;
        }
        let i = match self.held.iter().position(|&n| n == 0) {
            Some(i) => {
                if let Some(old) = self.slots[i].take() {
                    self.by_name.remove(&old);
                }
                i
            }
            None => {
                self.slots.push(None);
                self.held.push(0);
                self.slots.len() - 1
            }
        };
        self.slots[i] = Some(worker.into());
        self.by_name.insert(worker.into(), i as u32);
        i as u32
    }

    /// Forgets `slot`'s worker when it holds nothing (a refused first report leaves no trace).
    fn release_if_unused(&mut self, slot: u32) {
        if self.held[slot as usize] == 0
            && let Some(name) = self.slots[slot as usize].take()
        {
            self.by_name.remove(&name);
        }
    }

    fn uncount(&mut self, h: &Holders) {
        for i in h.iter() {
            self.held[i as usize] -= 1;
        }
    }

    fn set(&mut self, uri: &str, slot: u32) {
        let added = match self.entries.get_mut(uri) {
            Some(h) => h.insert(slot),
            None => {
                let mut h = Holders::default();
                h.insert(slot);
                self.entries.insert(uri.into(), h);
                true
            }
        };
        if added {
            self.held[slot as usize] += 1;
        }
    }

    fn clear(&mut self, uri: &str, slot: u32) {
        if let Some(h) = self.entries.get_mut(uri)
            && h.remove(slot)
        {
            self.held[slot as usize] -= 1;
            if h.is_empty() {
                self.entries.remove(uri);
            }
        }
    }
}

/// The slots holding one file: slots 0..64 as a mask; higher ones, rare, in a sorted boxed slice.
#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub struct Holders {
    low: u64,
    high: Option<Box<[u32]>>,
}

impl Holders {
    /// Adds `slot`; whether it was new.
    fn insert(&mut self, slot: u32) -> bool {
        if slot < 64 {
            let had = self.low & (1 << slot) != 0;
            self.low |= 1 << slot;
            return !had;
        }
        let mut v: Vec<u32> = self.high.take().map(Vec::from).unwrap_or_default();
        let new = match v.binary_search(&slot) {
            Ok(_) => false,
            Err(at) => {
                v.insert(at, slot);
                true
            }
        };
        self.high = Some(v.into_boxed_slice());
        new
    }

    /// Removes `slot`; whether it was there.
    fn remove(&mut self, slot: u32) -> bool {
        if slot < 64 {
            let had = self.low & (1 << slot) != 0;
            self.low &= !(1 << slot);
            return had;
        }
        let Some(high) = self.high.take() else { return false };
        let mut v = Vec::from(high);
        let had = match v.binary_search(&slot) {
            Ok(at) => {
                v.remove(at);
                true
            }
            Err(_) => false,
        };
        self.high = (!v.is_empty()).then(|| v.into_boxed_slice());
        had
    }

    fn is_empty(&self) -> bool {
        self.low == 0 && self.high.is_none()
    }

    /// Whether `slot` is the one holder.
    fn only(&self, slot: u32) -> bool {
        match &self.high {
            None => slot < 64 && self.low == 1 << slot,
            Some(h) => self.low == 0 && h.len() == 1 && h[0] == slot,
        }
    }

    fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        (0..64u32).filter(|i| self.low & (1 << i) != 0).chain(self.high.iter().flat_map(|h| h.iter().copied()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn reports_track_holders_and_drop_entries_nobody_holds() {
        let ix = FileIndex::new(true, 1000);
        ix.apply_report("w1", &s(&["s3://b/a", "s3://b/b"]), &[]).unwrap();
        ix.apply_report("w2", &s(&["s3://b/a"]), &[]).unwrap();
        assert_eq!(ix.locate("s3://b/a").unwrap(), Some(s(&["w1", "w2"])));
        ix.apply_report("w1", &[], &s(&["s3://b/a", "s3://b/b"])).unwrap();
        assert_eq!(ix.locate("s3://b/a").unwrap(), Some(s(&["w2"])));
        assert_eq!(ix.locate("s3://b/b").unwrap(), None);
        ix.replace_worker("w2", &s(&["s3://b/c"])).unwrap();
        assert_eq!(ix.list("", 0, None).unwrap(), s(&["s3://b/c"]));
    }

    #[test]
    fn user_entries_count_and_page() {
        let ix = FileIndex::new(true, 1000);
        assert_eq!(ix.add(&["s3://b/x/1", "s3://b/x/2", "s3://b/y", "s3://b/x/1"]).unwrap(), 3);
        assert_eq!(ix.list("s3://b/x/", 0, None).unwrap(), s(&["s3://b/x/1", "s3://b/x/2"]));
        assert_eq!(ix.list("s3://b/", 1, Some(1)).unwrap(), s(&["s3://b/x/2"]));
        assert_eq!(ix.locate("s3://b/y").unwrap(), Some(vec![]));
        assert_eq!(ix.remove(&["s3://b/y", "s3://b/none"]).unwrap(), 1);
        assert!(matches!(FileIndex::new(false, 1000).add(&["x"]), Err(FileIndexError::Disabled)));
    }

    #[test]
    fn any_number_of_workers_and_slots_of_workers_holding_nothing_are_reused() {
        let ix = FileIndex::new(true, 1000);
        for i in 0..200 {
            ix.apply_report(&format!("w{i}"), &s(&[&format!("u{i}"), "shared"]), &[]).unwrap();
        }
        assert_eq!(ix.locate("u150").unwrap(), Some(s(&["w150"])));
        let shared = ix.locate("shared").unwrap().unwrap();
        assert_eq!(shared.len(), 200);
        assert_eq!((shared[0].as_str(), shared[199].as_str()), ("w0", "w199"));
        ix.apply_report("w3", &[], &s(&["u3", "shared"])).unwrap();
        ix.apply_report("late", &s(&["u"]), &[]).unwrap();
        assert_eq!(ix.locate("u").unwrap(), Some(s(&["late"])));
        assert_eq!(ix.inner.read().slots.len(), 200, "w3's slot was reused");
        for i in 0..200 {
            ix.apply_report(&format!("w{i}"), &[], &s(&[&format!("u{i}"), "shared"])).unwrap();
        }
        assert_eq!(ix.list("", 0, None).unwrap(), s(&["u"]));
    }

    #[test]
    fn the_size_cap_refuses_whole_updates() {
        let ix = FileIndex::new(true, 3);
        ix.apply_report("w1", &s(&["a", "b"]), &[]).unwrap();
        let full = ix.apply_report("w2", &s(&["c", "d"]), &[]).unwrap_err();
        assert!(matches!(full, FileIndexError::Full { max: 3 }), "{full}");
        assert_eq!(ix.len(), 2, "nothing changed");
        assert!(!ix.inner.read().by_name.contains_key("w2"), "the refused worker holds no slot");
        ix.apply_report("w1", &s(&["c"]), &s(&["a"])).unwrap();
        ix.apply_report("w2", &s(&["b", "c"]), &[]).unwrap(); // already indexed: no new entry
        assert!(matches!(ix.add(&["x", "y"]), Err(FileIndexError::Full { .. })));
        assert_eq!(ix.add(&["x"]).unwrap(), 1);
        assert!(matches!(ix.replace_worker("w3", &s(&["z"])), Err(FileIndexError::Full { .. })));
        assert!(matches!(ix.replace_worker("w1", &s(&["z"])), Err(FileIndexError::Full { .. })), "b, c stay (w2)");
        ix.remove(&["x"]).unwrap();
        ix.replace_worker("w1", &s(&["z"])).unwrap();
        assert_eq!(ix.list("", 0, None).unwrap(), s(&["b", "c", "z"]));
        assert_eq!(ix.locate("b").unwrap(), Some(s(&["w2"])));
    }
}
