//! Finding unknown ids by listing the mounted UFSs and hashing every file's URI.
//!
//! - **One scan at a time, shared.** Requests for unknown ids wait for the next scan that starts after
//!   they arrived (one that was already running may have passed their file); a scan serves every request
//!   waiting when it runs. So a burst of cold reads costs one listing, not one per file.
//! - **Early stop.** A scan remembers every file it lists, and stops as soon as every id waiting for it
//!   has been found, or after `limit` files (the map's capacity: more could not be remembered anyway).
//! - **Paced.** A scan starts no sooner after the previous one ended than that one took (capped at
//!   [`MAX_PAUSE`]), so a client asking for ids that exist nowhere keeps the UFS busy half the time at
//!   most, and a small mount (milliseconds to list) is not slowed at all.

use super::{PathIds, RawId, raw_id_of};
use crate::read_through::ReadThrough;
use futures::StreamExt;
use loam_ufs::ListOptions;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// The longest pause between two scans.
pub const MAX_PAUSE: Duration = Duration::from_secs(10);
/// Entries asked per listing request.
const LIST_PAGE: usize = 1000;

/// Scans the mounts for ids nobody told this worker about.
pub struct Scanner {
    rt: Arc<ReadThrough>,
    limit: usize,
    /// Held for the whole of a scan: scans run one at a time.
    running: tokio::sync::Mutex<()>,
    /// Scans started so far.
    started: AtomicU64,
    /// Ids waiting, with how many requests wait for each.
    waiting: Mutex<HashMap<RawId, usize>>,
    /// When the last scan ended and how long it took.
    last: Mutex<Option<(Instant, Duration)>>,
}

/// Takes a request's id off the waiting list when the request ends, however it ends.
struct Waiting<'a> {
    scanner: &'a Scanner,
    id: RawId,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut waiting = self.scanner.waiting.lock();
        if let Some(n) = waiting.get_mut(&self.id) {
            *n -= 1;
            if *n == 0 {
                waiting.remove(&self.id);
            }
        }
    }
}

impl Scanner {
    /// A scanner of `rt`'s mounts that lists at most `limit` files per scan.
    pub fn new(rt: Arc<ReadThrough>, limit: usize) -> Self {
        Self {
            rt,
            limit: limit.max(1),
            running: tokio::sync::Mutex::new(()),
            started: AtomicU64::new(0),
            waiting: Mutex::new(HashMap::new()),
            last: Mutex::new(None),
        }
    }

    /// The URI of `id`, found by (or already found by) a scan that started after this call.
    pub async fn find(&self, ids: &PathIds, id: RawId) -> Option<String> {
        *self.waiting.lock().entry(id).or_insert(0) += 1;
        let _waiting = Waiting { scanner: self, id };
        let seen = self.started.load(Ordering::SeqCst);
        let _running = self.running.lock().await;
        if let Some(uri) = ids.get_raw(&id) {
            return Some(uri);
        }
        // A scan started (and, since the lock is ours, ended) after this request arrived: it looked.
        if self.started.load(Ordering::SeqCst) == seen {
            self.started.fetch_add(1, Ordering::SeqCst);
            self.pace().await;
            let began = Instant::now();
            self.scan(ids).await;
            *self.last.lock() = Some((Instant::now(), began.elapsed()));
        }
        ids.get_raw(&id)
    }

    async fn pace(&self) {
        let last = *self.last.lock();
        if let Some((ended, took)) = last {
            tokio::time::sleep_until(ended + took.min(MAX_PAUSE)).await;
        }
    }

    /// Lists every mount, remembering each file, until every waiting id is known or `limit` files passed.
    async fn scan(&self, ids: &PathIds) {
        let mut listed = 0usize;
        for mount in self.rt.mounts().snapshot().iter() {
            let ufs = match self.rt.resolve(&mount.ufs) {
                Ok((_, ufs)) => ufs,
                Err(e) => {
                    tracing::warn!("cannot scan mount {} for file ids: {e}", mount.path);
                    continue;
                }
            };
            let opts = ListOptions { recursive: true, page_size: Some(LIST_PAGE) };
            let mut entries = ufs.list(&mount.ufs, opts);
            while let Some(entry) = entries.next().await {
                let entry = match entry {
                    Ok(e) => e,
                    Err(e) => {
                        tracing::warn!("scan of mount {} for file ids stopped: {e}", mount.path);
                        break;
                    }
                };
                let id = raw_id_of(&entry.uri);
                ids.insert_raw(id, Arc::from(entry.uri.as_str()));
                listed += 1;
                if self.waiting.lock().contains_key(&id) && self.all_found(ids) {
                    return;
                }
                if listed >= self.limit {
                    tracing::warn!("scan for file ids stopped after {listed} files (the id map's capacity)");
                    return;
                }
            }
        }
        tracing::debug!("scanned {listed} files for file ids");
    }

    fn all_found(&self, ids: &PathIds) -> bool {
        let waiting: Vec<RawId> = self.waiting.lock().keys().copied().collect();
        waiting.iter().all(|id| ids.knows(id))
    }
}
