//! The global file index: which UFS files are cached, and by which workers, cluster-wide.
//!
//! - **Structure.** One sorted `BTreeMap<Box<str>, u64>` from UFS URI to a bitmask of worker *slots*;
//!   worker ids are interned once into a slot table (`slots`). A million entries of ~60-byte URIs take
//!   about 125 MB (the `file_index_memory` test measures it), well under the 300 MB budget,, and the sorted order gives `?prefix=` and paging for free.
//! - **Keeping it current.** Workers diff their page store's file list against what they last reported
//!   and send the difference every second ([`FileIndex::apply_report`]); any cause of change (load, free,
//!   TTL, eviction, read-through, clear-stale) is covered without hooks in the page store. On coordinator
//!   start the index is rebuilt by asking every live worker for its full list (`rebuild`).
//! - **Decision (user entries):** `POST` adds entries held by no worker (an empty mask); they stay until a
//!   `DELETE` removes them or a worker that held the file reports dropping it. An entry whose last worker
//!   drops the file disappears.
//! - **Decision (slots):** at most 64 workers hold entries at a time (one `u64` mask). When a 65th worker
//!   reports, slots of workers that hold nothing any more are reclaimed; if none is free, the report is
//!   refused (the worker retries, and the refusal is logged) rather than the index lying.
//! - **Decision (workers that leave):** their entries stay (a worker that comes back keeps its cache) until
//!   its next first report, which carries `reset` and replaces them, or the coordinator restarts; `GET
//!   ?file=` shows such a worker without an address.
//! - **Decision (disabled):** with the index disabled (`--disable-file-index`) every method, including the
//!   workers' reports, answers `404 {"status": "Global file index is not enabled"}`.

mod rebuild;

use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::ops::Bound;

pub use rebuild::rebuild;

/// Most workers that hold entries at one time.
pub const MAX_WORKER_SLOTS: usize = 64;

/// Why an index update was refused.
#[derive(Debug, thiserror::Error)]
pub enum FileIndexError {
    /// The index is disabled.
    #[error("Global file index is not enabled")]
    Disabled,
    /// Every worker slot is taken by a worker that still holds files.
    #[error("the file index tracks at most {MAX_WORKER_SLOTS} workers holding files; {0} was refused")]
    TooManyWorkers(String),
}

impl FileIndexError {
    /// The layer-independent kind.
    pub fn kind(&self) -> loam_core::ErrorKind {
        match self {
            FileIndexError::Disabled => loam_core::ErrorKind::NotFound,
            FileIndexError::TooManyWorkers(_) => loam_core::ErrorKind::Unavailable,
        }
    }
}

/// The index, shared by the API handlers and the rebuild task.
pub struct FileIndex {
    enabled: bool,
    inner: RwLock<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: BTreeMap<Box<str>, u64>,
    slots: Vec<Option<Box<str>>>,
}

impl FileIndex {
    /// An empty index; a disabled one refuses every call with [`FileIndexError::Disabled`].
    pub fn new(enabled: bool) -> Self {
        Self { enabled, inner: RwLock::new(Inner::default()) }
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
        let mut added = 0;
        for f in files {
            if !inner.entries.contains_key(f.as_ref()) {
                inner.entries.insert(f.as_ref().into(), 0);
                added += 1;
            }
        }
        Ok(added)
    }

    /// Removes `files`; answers how many were present.
    pub fn remove<S: AsRef<str>>(&self, files: &[S]) -> Result<u64, FileIndexError> {
        self.ensure_enabled()?;
        let mut inner = self.inner.write();
        Ok(files.iter().filter(|f| inner.entries.remove(f.as_ref()).is_some()).count() as u64)
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
        Ok(inner.entries.get(uri).map(|&mask| {
            (0..MAX_WORKER_SLOTS)
                .filter(|i| mask & (1 << i) != 0)
                .filter_map(|i| inner.slots.get(i).cloned().flatten().map(String::from))
                .collect()
        }))
    }

    /// Applies a worker's report: it now holds `added` and no longer holds `removed`.
    pub fn apply_report(&self, worker: &str, added: &[String], removed: &[String]) -> Result<(), FileIndexError> {
        self.ensure_enabled()?;
        let mut inner = self.inner.write();
        let bit = 1u64 << inner.slot(worker)?;
        for uri in removed {
            inner.clear(uri, bit);
        }
        for uri in added {
            inner.set(uri, bit);
        }
        Ok(())
    }

    /// Replaces everything `worker` holds by `files` (a rebuild from its full list).
    pub fn replace_worker(&self, worker: &str, files: &[String]) -> Result<(), FileIndexError> {
        self.ensure_enabled()?;
        let mut inner = self.inner.write();
        let bit = 1u64 << inner.slot(worker)?;
        inner.entries.retain(|_, mask| {
            let held = *mask & bit != 0;
            *mask &= !bit;
            !(held && *mask == 0)
        });
        for uri in files {
            inner.set(uri, bit);
        }
        Ok(())
    }
}

impl Inner {
    /// The slot of `worker`, interning it (and reclaiming slots of workers that hold nothing) if new.
    fn slot(&mut self, worker: &str) -> Result<usize, FileIndexError> {
        if let Some(i) = self.slots.iter().position(|s| s.as_deref() == Some(worker)) {
            return Ok(i);
        }
        if self.slots.len() < MAX_WORKER_SLOTS {
            self.slots.push(Some(worker.into()));
            return Ok(self.slots.len() - 1);
        }
        let used = self.entries.values().fold(0u64, |acc, m| acc | m);
        let free = (0..MAX_WORKER_SLOTS)
            .find(|i| used & (1 << i) == 0)
            .ok_or_else(|| FileIndexError::TooManyWorkers(worker.to_string()))?;
        self.slots[free] = Some(worker.into());
        Ok(free)
    }

    fn set(&mut self, uri: &str, bit: u64) {
        match self.entries.get_mut(uri) {
            Some(mask) => *mask |= bit,
            None => {
                self.entries.insert(uri.into(), bit);
            }
        }
    }

    fn clear(&mut self, uri: &str, bit: u64) {
        if let Some(mask) = self.entries.get_mut(uri)
            && *mask & bit != 0
        {
            *mask &= !bit;
            if *mask == 0 {
                self.entries.remove(uri);
            }
        }
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
        let ix = FileIndex::new(true);
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
        let ix = FileIndex::new(true);
        assert_eq!(ix.add(&["s3://b/x/1", "s3://b/x/2", "s3://b/y", "s3://b/x/1"]).unwrap(), 3);
        assert_eq!(ix.list("s3://b/x/", 0, None).unwrap(), s(&["s3://b/x/1", "s3://b/x/2"]));
        assert_eq!(ix.list("s3://b/", 1, Some(1)).unwrap(), s(&["s3://b/x/2"]));
        assert_eq!(ix.locate("s3://b/y").unwrap(), Some(vec![]));
        assert_eq!(ix.remove(&["s3://b/y", "s3://b/none"]).unwrap(), 1);
        assert!(matches!(FileIndex::new(false).add(&["x"]), Err(FileIndexError::Disabled)));
    }

    #[test]
    fn slots_of_workers_holding_nothing_are_reused() {
        let ix = FileIndex::new(true);
        for i in 0..MAX_WORKER_SLOTS {
            ix.apply_report(&format!("w{i}"), &s(&[&format!("u{i}")]), &[]).unwrap();
        }
        assert!(matches!(ix.apply_report("late", &s(&["u"]), &[]), Err(FileIndexError::TooManyWorkers(_))));
        ix.apply_report("w3", &[], &s(&["u3"])).unwrap();
        ix.apply_report("late", &s(&["u"]), &[]).unwrap();
        assert_eq!(ix.locate("u").unwrap(), Some(s(&["late"])));
    }
}
