//! What the store does when a cache directory fills or fails, and the health check that notices a
//! directory removed, replaced or recovered (see `dirs.rs` for the policy).
//!
//! Everything here is per directory and keyed by its position in the configuration. A failure marks the
//! directory unhealthy and drops its pages from the index at once (without deleting their files: the
//! directory is not to be trusted, and re-initialising it wipes it). The health check runs every
//! [`DIR_CHECK_INTERVAL`] on a task that ends with the worker's shutdown signal.

use bytes::Bytes;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::dirs;
use super::disk::{self, PageHeader};
use super::metrics::DirLabel;
use super::{PageStore, PageStoreError};

/// How often cache directories are checked (removed or replaced, room left, a failed one back).
pub const DIR_CHECK_INTERVAL: Duration = Duration::from_secs(2);

impl PageStore {
    /// Checks every cache directory every `interval` until `shutdown` turns true; `None` without a disk
    /// tier.
    pub fn spawn_dir_checks(
        self: &Arc<Self>,
        interval: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) -> Option<JoinHandle<()>> {
        if self.dirs.is_empty() {
            return None;
        }
        let store = self.clone();
        Some(tokio::spawn(async move {
            loop {
                let stop = tokio::select! {
                    _ = shutdown.wait_for(|s| *s) => true,
                    () = tokio::time::sleep(interval) => false,
                };
                if stop {
                    return;
                }
                store.check_dirs().await;
            }
        }))
    }

    /// One health check of every cache directory: a healthy one still in place has its capacity
    /// re-measured; one removed or replaced, or unhealthy, is re-initialised (empty, with a fresh record log).
    pub async fn check_dirs(&self) {
        for at in 0..self.dirs.len() {
            let dir = &self.dirs[at];
            let root = dir.root.clone();
            let this = self.dirs.clone();
            let in_place =
                dir.healthy() && tokio::task::spawn_blocking(move || this[at].still_there()).await.unwrap_or(false);
            if in_place {
                if let Err(e) = self.clamp_dir(at).await {
                    self.dir_failed(at, format!("cannot measure the room in {}: {e}", root.display()));
                }
                continue;
            }
            if dir.healthy() {
                self.dir_failed(at, format!("{} was removed or replaced", root.display()));
            }
            self.reinit_dir(at).await;
        }
    }

    /// Lets go of every cache directory's lock, at the worker's shutdown, so that the next worker on them
    /// (in this process too, where something may still hold the store) can take them. Nothing more is
    /// appended to the record logs.
    pub fn close(&self) {
        for dir in self.dirs.iter() {
            dir.mark_unhealthy("closed".into());
            dir.unlock();
        }
    }

    /// Whether pages of `file_id` cannot be cached on disk now, and why: its cache directory is unhealthy.
    pub fn disk_problem(&self, file_id: &str) -> Option<String> {
        let dir = self.dirs.get(self.index.lock().dir(file_id))?;
        let state = dir.state.lock();
        let problem = state.problem.as_deref().unwrap_or("unknown");
        (!state.healthy).then(|| format!("cache directory {} is unhealthy: {problem}", dir.path.display()))
    }

    /// Marks cache directory `at` failed for `why`: counted, warned (once per interval), and, if it was
    /// healthy, its pages dropped from the index and its capacity set to 0 until the health check brings
    /// it back.
    pub(super) fn dir_failed(&self, at: usize, why: String) {
        let Some(dir) = self.dirs.get(at) else { return };
        let label = label(dir);
        self.metrics.dir_errors.get_or_create(&label).inc();
        dir.warn(&format!("cache directory failed; its pages are dropped until it is re-initialised: {why}"));
        if dir.mark_unhealthy(why) {
            let mut idx = self.index.lock();
            let mut effects = idx.set_dir_capacity(at, 0);
            // Dropped with their directory, not evicted for room; their files are not deleted (see above).
            effects.clear_evictions();
            self.publish(&idx, &effects);
            self.metrics.dir_healthy.get_or_create(&label).set(0);
            self.metrics.dir_capacity.get_or_create(&label).set(0);
        }
    }

    /// Counts a write that found cache directory `at` full and warns (once per interval).
    pub(super) fn dir_full(&self, at: usize, e: &io::Error) {
        let Some(dir) = self.dirs.get(at) else { return };
        self.metrics.dir_errors.get_or_create(&label(dir)).inc();
        dir.warn(&format!("cache directory full; its capacity is lowered to the room left and pages evicted: {e}"));
    }

    /// Sets the capacity of healthy cache directory `at` to its share, clamped to the room its file system
    /// has, and evicts (deleting the page files) down to it.
    pub(super) async fn clamp_dir(&self, at: usize) -> Result<(), PageStoreError> {
        let dir = &self.dirs[at];
        let used = self.index.lock().dir_usage(at).0;
        let (root, page_size) = (dir.root.clone(), self.page_size);
        let room = tokio::task::spawn_blocking(move || dirs::room(&root, used, page_size))
            .await?
            .map_err(PageStoreError::io("measure", &dir.root))?;
        let capacity = room.min(dir.share);
        let effects = {
            let mut idx = self.index.lock();
            if !dir.healthy() {
                return Ok(());
            }
            let effects = idx.set_dir_capacity(at, capacity);
            self.publish(&idx, &effects);
            effects
        };
        self.metrics.dir_capacity.get_or_create(&label(dir)).set(capacity as i64);
        self.delete_pages(effects.delete).await
    }

    /// Re-initialises unhealthy cache directory `at`: lock, wipe, a fresh record log of its files' current
    /// records; then healthy with its capacity measured. On failure it stays unhealthy.
    async fn reinit_dir(&self, at: usize) {
        let records = {
            let idx = self.index.lock();
            idx.stored_records(|id| idx.dir(id) == at)
        };
        let (dirs, logs) = (self.dirs.clone(), self.logs.clone());
        let done = tokio::task::spawn_blocking(move || {
            let dir = &dirs[at];
            dir.unlock();
            dir.lock()?;
            let fail = |op: &str, e: io::Error| format!("cannot {op} {}: {e}", dir.root.display());
            super::disk::remove_dir_if_present(&dir.root).map_err(|e| fail("wipe", e))?;
            loam_core::private_fs::create_dir_all(&dir.root).map_err(|e| fail("create", e))?;
            logs[at].reset(&records).map_err(|e| fail("write the record log in", e))?;
            dir.mark_healthy().map_err(|e| fail("stat", e))
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        let dir = &self.dirs[at];
        match done {
            Ok(()) => {
                tracing::info!(dir = %dir.path.display(), "cache directory re-initialised (empty)");
                self.metrics.dir_healthy.get_or_create(&label(dir)).set(1);
                if let Err(e) = self.clamp_dir(at).await {
                    self.dir_failed(at, e.to_string());
                }
            }
            Err(why) => {
                dir.mark_unhealthy(why.clone());
                dir.warn(&format!("cache directory still unusable: {why}"));
            }
        }
    }
}

impl PageStore {
    /// Retries, once, page writes (position in the call, path, header, data) that found cache directory
    /// `at` full, after lowering its capacity to the room its file system has now; returns the positions
    /// written.
    pub(super) async fn retry_full(
        &self,
        at: usize,
        retry: Vec<(usize, PathBuf, PageHeader, Bytes)>,
    ) -> Result<Vec<usize>, PageStoreError> {
        if retry.is_empty() || !self.dirs[at].healthy() {
            return Ok(Vec::new());
        }
        if let Err(e) = self.clamp_dir(at).await {
            self.dir_failed(at, e.to_string());
            return Ok(Vec::new());
        }
        let results = tokio::task::spawn_blocking(move || {
            let write = |(pos, path, header, data): (usize, PathBuf, PageHeader, Bytes)| {
                let r = disk::write_page(&path, &header, &data);
                (pos, path, r)
            };
            retry.into_iter().map(write).collect::<Vec<_>>()
        })
        .await?;
        let mut written = Vec::new();
        for (pos, path, r) in results {
            match r {
                Ok(_) => written.push(pos),
                Err(e) if dirs::is_full(&e) => self.dir_full(at, &e),
                Err(e) => self.dir_failed(at, format!("cannot write {}: {e}", path.display())),
            }
        }
        Ok(written)
    }

    /// Accounts for a record append that failed: a full disk is counted (the record stays pending), any
    /// other failure fails the directory.
    pub(super) fn append_failed(&self, file_id: &str, e: PageStoreError) {
        let at = self.index.lock().dir(file_id);
        match &e {
            PageStoreError::Io { source, .. } if dirs::is_full(source) => self.dir_full(at, source),
            _ => self.dir_failed(at, e.to_string()),
        }
    }
}

pub(super) fn label(dir: &dirs::CacheDir) -> DirLabel {
    DirLabel { dir: dir.path.display().to_string() }
}
