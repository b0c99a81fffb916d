//! Resolving a `path_id` (the SHA-256 of a UFS URI, see `loam_core::id`) back to its URI, for page reads
//! that come without `ufsFullPath` — the `alluxio` 1.0.0 Python client sends only the id.
//!
//! A hash cannot be inverted, so the worker remembers the URIs it has been told about: every path of
//! `/v1/info`, `/v1/node`, each entry of a `/v1/files` listing, page reads that named their file, and
//! files written through this worker. Files with cached pages are found by their page-store record (not
//! kept here). The map is bounded ([`DEFAULT_CAPACITY`] ids) and approximately LRU: two generations of
//! hash maps; inserts go to the young one, a hit in the old one moves the entry to the young one, and when
//! the young one holds half the capacity the old one is dropped and the young one becomes old. Every
//! operation is O(1) and never more than `capacity` entries are held (about 150 bytes each with 100-byte
//! URIs: ~150 MB at the default, only when a worker has really been asked about a million files).
//!
//! An id that is nowhere known is looked for in the UFS (`scan`): the `alluxio` client's `read(path)`
//! sends nothing before its first page read, so on a cold worker no other source can know it.

mod scan;

use crate::error::{WorkerError, WorkerResult};
use crate::read_through::ReadThrough;
use parking_lot::Mutex;
use scan::Scanner;
use std::collections::HashMap;
use std::sync::Arc;

/// Ids remembered by default.
pub const DEFAULT_CAPACITY: usize = 1_000_000;

/// A path id, as its 32 raw bytes (half the memory of its hex form).
type RawId = [u8; 32];

/// The bounded id → URI map and the UFS scan behind it.
pub struct PathIds {
    map: Mutex<Generations>,
    scanner: Scanner,
}

struct Generations {
    young: HashMap<RawId, Arc<str>>,
    old: HashMap<RawId, Arc<str>>,
    /// Entries per generation before it is rotated.
    half: usize,
}

impl Generations {
    fn get(&mut self, id: &RawId) -> Option<Arc<str>> {
        if let Some(uri) = self.young.get(id) {
            return Some(uri.clone());
        }
        let uri = self.old.remove(id)?;
        self.insert(*id, uri.clone());
        Some(uri)
    }

    fn insert(&mut self, id: RawId, uri: Arc<str>) {
        if self.young.len() >= self.half && !self.young.contains_key(&id) {
            self.old = std::mem::take(&mut self.young);
        }
        self.old.remove(&id);
        self.young.insert(id, uri);
    }

    fn contains(&self, id: &RawId) -> bool {
        self.young.contains_key(id) || self.old.contains_key(id)
    }

    fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }
}

fn raw_id(id: &str) -> Option<RawId> {
    if !loam_core::id::is_file_id(id) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(id.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn raw_id_of(uri: &str) -> RawId {
    // A file id is always 64 hex digits, so this cannot fail; the zero id matches no real file.
    raw_id(&loam_core::file_id(uri)).unwrap_or_default()
}

impl PathIds {
    /// An empty map of at most `capacity` ids (at least 2), scanning `rt`'s mounts for unknown ids.
    pub fn new(rt: Arc<ReadThrough>, capacity: usize) -> Arc<Self> {
        let half = (capacity / 2).max(1);
        let map = Generations { young: HashMap::new(), old: HashMap::new(), half };
        Arc::new(Self { map: Mutex::new(map), scanner: Scanner::new(rt, capacity) })
    }

    /// Remembers `uri` under its own id.
    pub fn remember(&self, uri: &str) {
        self.map.lock().insert(raw_id_of(uri), Arc::from(uri));
    }

    /// Remembers `uri` under the id of `asked` too: a client hashes the path as *it* spelled it
    /// (`s3a://`, a doubled slash), which may differ from the normalised URI the worker serves.
    pub fn remember_as(&self, asked: &str, uri: &str) {
        let uri: Arc<str> = Arc::from(uri);
        let mut map = self.map.lock();
        map.insert(raw_id_of(&uri), uri.clone());
        if *asked != *uri {
            map.insert(raw_id_of(asked), uri);
        }
    }

    /// The URI remembered for `id`, if any (without scanning).
    pub fn get(&self, id: &str) -> Option<String> {
        self.get_raw(&raw_id(id)?)
    }

    /// Ids remembered now.
    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The URI of `id`: remembered, else found by a scan of the mounted UFSs; `NotFound` if neither knows it.
    pub async fn resolve(&self, id: &str) -> WorkerResult<String> {
        let raw = raw_id(id)
            .ok_or_else(|| WorkerError::InvalidInput(format!("{id:?} is not a file id (64 lowercase hex digits)")))?;
        if let Some(uri) = self.get_raw(&raw) {
            return Ok(uri);
        }
        self.scanner.find(self, raw).await.ok_or_else(|| {
            WorkerError::NotFound(format!(
                "unknown file id {id}: no file under any mount has this id (the SHA-256 of its full UFS URI); \
                 pass ufsFullPath"
            ))
        })
    }

    fn insert_raw(&self, id: RawId, uri: Arc<str>) {
        self.map.lock().insert(id, uri);
    }

    fn get_raw(&self, id: &RawId) -> Option<String> {
        self.map.lock().get(id).map(|u| u.to_string())
    }

    fn knows(&self, id: &RawId) -> bool {
        self.map.lock().contains(id)
    }
}

#[cfg(test)]
mod tests;
