//! The page store's in-memory index: file records, which pages are cached in which tier, and each tier's
//! LRU order.
//!
//! It does no I/O, so the store holds its lock only for these short calls and does disk work outside it.
//! Methods that drop pages from the disk tier return them in [`Effects`] for the caller to delete.
//!
//! The disk tier is one LRU order per cache directory, each with its own capacity (clamped to the room
//! its file system has, see `dirs.rs`); a file's pages live in the directory its id hashes to
//! ([`super::disk::dir_of`]). Room for a page write is made *before* the write ([`Index::reserve`]),
//! so a directory's page files never outgrow its capacity by more than the writes in flight.
//!
//! A page's identity in the tiers is `(generation, index)`: the generation changes whenever a file is
//! cached anew, so a page key never refers to two versions of a file, and a disk read that started before
//! a replacement is recognised afterwards by its stale generation.

use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};

use super::Usage;
use super::error::PageStoreError;
use super::lru::{DEFAULT_PRIORITY, Lru, Priority, Victim};
use super::record::{FileRecord, StoredRecord};
use super::recovery::RecoveredFile;

/// A page in the tiers' LRU orders.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct PageKey {
    generation: u64,
    index: u64,
}

/// One cached page; it exists while at least one tier holds it.
#[derive(Debug)]
struct PageEntry {
    len: u64,
    cached_ms: i64,
    memory: Option<Bytes>,
    /// Set while the disk tier holds the page; a fresh value per write, so a reader can tell whether the
    /// page it read is still the one indexed.
    disk_stamp: Option<u64>,
}

#[derive(Debug)]
struct FileEntry {
    record: FileRecord,
    generation: u64,
    /// Changes with every change of the record; `persisted_seq` is the last one written to disk.
    seq: u64,
    persisted_seq: Option<u64>,
    /// The eviction priority of the file's pages (from the priority rules).
    priority: Priority,
    pages: BTreeMap<u64, PageEntry>,
}

/// A page file to delete, if it still belongs to `generation`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DiskPage {
    pub(super) file_id: String,
    pub(super) index: u64,
    pub(super) generation: u64,
}

/// What an index change requires of the caller.
#[derive(Debug, Default)]
pub(super) struct Effects {
    /// Page files to delete.
    pub(super) delete: Vec<DiskPage>,
    /// Pages evicted from memory.
    pub(super) evicted_memory: u64,
    /// Pages evicted from disk.
    pub(super) evicted_disk: u64,
    /// A page write that no tier admitted (priority admission).
    pub(super) refused: bool,
    /// Bytes of pages that left the cache (no tier holds them now) to make room among data of the same
    /// or higher priority, or because a tier shrank.
    pub(super) evicted_capacity_bytes: u64,
    /// Bytes of pages that left the cache to make way for data of a higher priority.
    pub(super) evicted_priority_bytes: u64,
}

impl Effects {
    /// Adds `other`'s evictions and deletions to these.
    pub(super) fn absorb(&mut self, other: Effects) {
        self.delete.extend(other.delete);
        self.evicted_memory += other.evicted_memory;
        self.evicted_disk += other.evicted_disk;
        self.evicted_capacity_bytes += other.evicted_capacity_bytes;
        self.evicted_priority_bytes += other.evicted_priority_bytes;
    }

    /// Forgets the evictions (pages dropped with a failed directory are not evicted).
    pub(super) fn clear_evictions(&mut self) {
        self.evicted_disk = 0;
        self.evicted_capacity_bytes = 0;
        self.evicted_priority_bytes = 0;
    }

    /// Counts `bytes` of a page that left the cache: for priority when it made way for data of a higher
    /// priority than its own (`incoming`), else for capacity.
    fn left_cache(&mut self, bytes: u64, victim: Priority, incoming: Option<Priority>) {
        match incoming {
            Some(p) if victim < p => self.evicted_priority_bytes += bytes,
            _ => self.evicted_capacity_bytes += bytes,
        }
    }
}

/// Where a page can be read.
#[derive(Debug)]
pub(super) enum Lookup {
    Miss,
    Memory(Bytes),
    Disk(DiskRead),
}

/// A page to read from disk, and what the index expected when the read started.
#[derive(Debug, Clone, Copy)]
pub(super) struct DiskRead {
    pub(super) generation: u64,
    pub(super) stamp: u64,
    pub(super) len: u64,
    /// Whether the memory tier takes the page when it is read (decided at the lookup, so that the read
    /// knows whether to buffer it for the tier or may map it: a mapping never enters the memory tier).
    pub(super) promote: bool,
}

/// The outcome of a disk read, once the page file was checked.
#[derive(Debug)]
pub(super) enum ReadResult {
    /// The file holds the expected page.
    Valid(Bytes),
    /// The file was missing, corrupt or not the expected page; `delete` names the generation to delete it
    /// under (`None`: nothing to delete).
    Invalid { delete: Option<u64> },
}

/// Which tiers a page write goes to.
#[derive(Debug, Clone, Copy)]
pub(super) struct WritePlan {
    pub(super) generation: u64,
    pub(super) memory: bool,
    pub(super) disk: bool,
}

/// The index of one page store.
#[derive(Debug)]
pub(super) struct Index {
    page_size: u64,
    files: HashMap<String, FileEntry>,
    /// File id of each live generation, to find a file from an evicted page key.
    owners: HashMap<u64, String>,
    memory: Option<Lru<PageKey>>,
    /// The disk tier of each cache directory (empty: no disk tier).
    disks: Vec<Lru<PageKey>>,
    /// Bytes of page writes in flight per cache directory, for which room was made ahead.
    reserved: Vec<u64>,
    next_generation: u64,
    counter: u64,
}

impl Index {
    /// An empty index with a disk tier of `disk_capacities[d]` bytes in cache directory `d` (none without
    /// a directory); a zero memory capacity means no memory tier. Generations start at `first_generation`
    /// (past every generation found on disk).
    pub(super) fn new(page_size: u64, memory_capacity: u64, disk_capacities: &[u64], first_generation: u64) -> Self {
        Self {
            page_size,
            files: HashMap::new(),
            owners: HashMap::new(),
            memory: (memory_capacity > 0).then(|| Lru::new(memory_capacity)),
            disks: disk_capacities.iter().map(|c| Lru::new(*c)).collect(),
            reserved: vec![0; disk_capacities.len()],
            next_generation: first_generation,
            counter: 0,
        }
    }

    /// The cache directory of `file_id`'s pages (0 without a disk tier).
    pub(super) fn dir(&self, file_id: &str) -> usize {
        super::disk::dir_of(file_id, self.disks.len().max(1))
    }

    /// The disk tier of `file_id`'s cache directory.
    fn disk_of(&mut self, file_id: &str) -> Option<&mut Lru<PageKey>> {
        let dir = self.dir(file_id);
        self.disks.get_mut(dir)
    }

    /// The capacities of the memory tier and of the disk tier (all directories) now.
    pub(super) fn capacities(&self) -> (u64, u64) {
        let memory = self.memory.as_ref().map_or(0, Lru::capacity);
        (memory, self.disks.iter().map(Lru::capacity).sum())
    }

    /// Bytes and pages of cache directory `dir`'s disk tier, and its capacity.
    pub(super) fn dir_usage(&self, dir: usize) -> (u64, u64, u64) {
        self.disks.get(dir).map_or((0, 0, 0), |l| (l.bytes(), l.len(), l.capacity()))
    }

    /// Sets the capacity of cache directory `dir`, evicting its pages down to it.
    pub(super) fn set_dir_capacity(&mut self, dir: usize, capacity: u64) -> Effects {
        let mut effects = Effects::default();
        let Some(lru) = self.disks.get_mut(dir) else { return effects };
        let mut victims = lru.set_capacity(capacity);
        // The writes in flight need their room too.
        victims.extend(lru.make_room(self.reserved[dir], &[]));
        self.evicted_from_disk(victims, None, &mut effects);
        effects
    }

    /// Makes room in `file_id`'s cache directory for writing its `pages` (index, length) of `generation`:
    /// evicts other pages until they fit beside the writes in flight, and counts their bytes (less those of
    /// the copies they replace) in flight until [`Index::release`]. Returns the effects and those bytes, or
    /// `None` (nothing evicted) when room is needed and the file's priority is below everything the
    /// directory holds (the admission rule of `lru.rs`): then the pages are not to be written to disk.
    pub(super) fn reserve(&mut self, file_id: &str, generation: u64, pages: &[(u64, u64)]) -> (Effects, Option<u64>) {
        let mut effects = Effects::default();
        let dir = self.dir(file_id);
        let priority = self.files.get(file_id).map_or(DEFAULT_PRIORITY, |f| f.priority);
        let keys: Vec<PageKey> = pages.iter().map(|&(index, _)| PageKey { generation, index }).collect();
        let Some(lru) = self.disks.get_mut(dir) else { return (effects, Some(0)) };
        let held = |key: &PageKey| lru.size(key).unwrap_or(0);
        let bytes: u64 = pages.iter().zip(&keys).map(|(&(_, len), key)| len.saturating_sub(held(key))).sum();
        let needed = self.reserved[dir] + bytes;
        if lru.refuses(needed, priority, &keys) {
            return (effects, None);
        }
        let victims = lru.make_room(needed, &keys);
        self.reserved[dir] += bytes;
        self.evicted_from_disk(victims, Some(priority), &mut effects);
        (effects, Some(bytes))
    }

    /// Ends the reservation of `bytes` in cache directory `dir` (the writes were committed or failed).
    pub(super) fn release(&mut self, dir: usize, bytes: u64) {
        if let Some(r) = self.reserved.get_mut(dir) {
            *r = r.saturating_sub(bytes);
        }
    }

    fn next(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    /// The record of `file_id`.
    pub(super) fn record(&self, file_id: &str) -> Option<&FileRecord> {
        self.files.get(file_id).map(|f| &f.record)
    }

    /// The generation of `file_id`'s cached version.
    pub(super) fn generation(&self, file_id: &str) -> Option<u64> {
        self.files.get(file_id).map(|f| f.generation)
    }

    /// Ids of all files with a record.
    pub(super) fn file_ids(&self) -> Vec<String> {
        self.files.keys().cloned().collect()
    }

    fn page(&self, file_id: &str, index: u64) -> Option<&PageEntry> {
        self.files.get(file_id)?.pages.get(&index)
    }

    /// Whether page `index` of `file_id` is cached in some tier.
    pub(super) fn has_page(&self, file_id: &str, index: u64) -> bool {
        self.page(file_id, index).is_some()
    }

    /// Whether page `index` of `file_id` is cached in the disk tier.
    pub(super) fn has_page_on_disk(&self, file_id: &str, index: u64) -> bool {
        self.page(file_id, index).is_some_and(|p| p.disk_stamp.is_some())
    }

    /// How many pages of `file_id` are cached.
    pub(super) fn cached_page_count(&self, file_id: &str) -> u64 {
        self.files.get(file_id).map_or(0, |f| f.pages.len() as u64)
    }

    /// When page `index` of `file_id` was cached.
    pub(super) fn page_cached_ms(&self, file_id: &str, index: u64) -> Option<i64> {
        self.page(file_id, index).map(|p| p.cached_ms)
    }

    /// Bytes and pages per tier, and files.
    pub(super) fn usage(&self) -> Usage {
        let tier = |t: &Option<Lru<PageKey>>| t.as_ref().map_or((0, 0), |l| (l.bytes(), l.len()));
        let (memory_bytes, memory_pages) = tier(&self.memory);
        let (disk_bytes, disk_pages) = self.disks.iter().fold((0, 0), |(b, p), l| (b + l.bytes(), p + l.len()));
        Usage { memory_bytes, memory_pages, disk_bytes, disk_pages, files: self.files.len() as u64 }
    }

    /// Creates or replaces a record, with `priority` for its pages. The same version keeps its pages,
    /// generation and first-cached time; a new or changed version gets a new generation and no pages.
    pub(super) fn put_file(&mut self, record: FileRecord, priority: Priority) -> Effects {
        let seq = self.next();
        if let Some(entry) = self.files.get_mut(&record.file_id)
            && entry.record.same_version(&record)
        {
            let file_id = record.file_id.clone();
            entry.record = FileRecord { cached_ms: entry.record.cached_ms, ..record };
            entry.seq = seq;
            self.set_priority(&file_id, priority);
            return Effects::default();
        }
        let effects = self.remove_file(&record.file_id).map(|(e, _)| e).unwrap_or_default();
        let generation = self.next_generation;
        self.next_generation += 1;
        self.owners.insert(generation, record.file_id.clone());
        let entry = FileEntry { record, generation, seq, persisted_seq: None, priority, pages: BTreeMap::new() };
        self.files.insert(entry.record.file_id.clone(), entry);
        effects
    }

    /// Bytes of `file_id`'s cached pages (each page once, whichever tiers hold it).
    pub(super) fn cached_bytes(&self, file_id: &str) -> u64 {
        self.files.get(file_id).map_or(0, |e| e.pages.values().map(|p| p.len).sum())
    }

    /// The eviction priority of `file_id`'s pages.
    pub(super) fn priority(&self, file_id: &str) -> Option<Priority> {
        self.files.get(file_id).map(|e| e.priority)
    }

    /// Moves every cached page of `file_id` to `priority` in both tiers, keeping their recency.
    pub(super) fn set_priority(&mut self, file_id: &str, priority: Priority) {
        let Some(entry) = self.files.get_mut(file_id) else { return };
        if entry.priority == priority {
            return;
        }
        entry.priority = priority;
        let dir = super::disk::dir_of(file_id, self.disks.len().max(1));
        for &index in entry.pages.keys() {
            let key = PageKey { generation: entry.generation, index };
            for tier in [self.memory.as_mut(), self.disks.get_mut(dir)].into_iter().flatten() {
                tier.set_priority(&key, priority);
            }
        }
    }

    /// Every file id with its record's UFS URI and its current priority.
    pub(super) fn file_priorities(&self) -> Vec<(String, String, Priority)> {
        self.files.iter().map(|(id, e)| (id.clone(), e.record.ufs_uri.clone(), e.priority)).collect()
    }

    /// Sets when the file was last checked against the UFS.
    pub(super) fn set_validated(&mut self, file_id: &str, validated_ms: i64) {
        let seq = self.next();
        if let Some(entry) = self.files.get_mut(file_id) {
            entry.record.validated_ms = validated_ms;
            entry.seq = seq;
        }
    }

    /// Drops a file and its pages. Returns the page files to delete and the bytes of page data dropped
    /// (each page counted once, whichever tiers held it), or `None` if there was no record.
    pub(super) fn remove_file(&mut self, file_id: &str) -> Option<(Effects, u64)> {
        let entry = self.files.remove(file_id)?;
        self.owners.remove(&entry.generation);
        let mut effects = Effects::default();
        let mut freed = 0;
        for (index, page) in entry.pages {
            let key = PageKey { generation: entry.generation, index };
            freed += page.len;
            if page.memory.is_some()
                && let Some(memory) = &mut self.memory
            {
                memory.remove(&key);
            }
            if page.disk_stamp.is_some() {
                if let Some(disk) = self.disk_of(file_id) {
                    disk.remove(&key);
                }
                effects.delete.push(DiskPage { file_id: file_id.to_owned(), index, generation: entry.generation });
            }
        }
        Some((effects, freed))
    }

    /// What the record log should say of `file_id` now, with the sequence number of that state (`None`:
    /// the file has no record).
    pub(super) fn record_state(&self, file_id: &str) -> Option<(StoredRecord, u64)> {
        let entry = self.files.get(file_id)?;
        Some((StoredRecord { record: entry.record.clone(), generation: entry.generation }, entry.seq))
    }

    /// The stored records of the files whose id `select` accepts (a record log's live records).
    pub(super) fn stored_records(&self, select: impl Fn(&str) -> bool) -> Vec<StoredRecord> {
        let files = self.files.iter().filter(|(id, _)| select(id));
        files.map(|(_, e)| StoredRecord { record: e.record.clone(), generation: e.generation }).collect()
    }

    /// The record of `file_id` and its sequence when it changed since it was last written, else `None`.
    pub(super) fn pending_record(&self, file_id: &str) -> Option<(StoredRecord, u64)> {
        let entry = self.files.get(file_id).filter(|e| e.persisted_seq != Some(e.seq))?;
        Some((StoredRecord { record: entry.record.clone(), generation: entry.generation }, entry.seq))
    }

    /// Notes that the state with sequence `seq` was written. Returns false if the record changed since
    /// (the write is stale and must be redone).
    pub(super) fn mark_persisted(&mut self, file_id: &str, seq: Option<u64>) -> bool {
        let entry = self.files.get_mut(file_id);
        if entry.as_ref().map(|e| e.seq) != seq {
            return false;
        }
        if let Some(entry) = entry {
            entry.persisted_seq = Some(entry.seq);
        }
        true
    }

    /// Files whose record changed since it was last written.
    pub(super) fn unpersisted_files(&self) -> Vec<String> {
        self.files.iter().filter(|(_, e)| e.persisted_seq != Some(e.seq)).map(|(id, _)| id.clone()).collect()
    }

    /// Checks a page write and decides its tiers (none: the page fits no tier).
    pub(super) fn plan_write(&self, file_id: &str, index: u64, len: u64) -> Result<WritePlan, PageStoreError> {
        let entry = self.files.get(file_id).ok_or_else(|| PageStoreError::NotFound(file_id.to_owned()))?;
        let expected = entry.record.page_len(self.page_size, index).ok_or_else(|| {
            PageStoreError::InvalidInput(format!("page {index} is past the end of a {}-byte file", entry.record.length))
        })?;
        if len != expected {
            return Err(PageStoreError::InvalidInput(format!("page {index} has {len} bytes, expected {expected}")));
        }
        let memory = self.memory.as_ref().is_some_and(|l| l.admits(len));
        let disk = self.disks.get(self.dir(file_id)).is_some_and(|l| l.admits(len));
        Ok(WritePlan { generation: entry.generation, memory, disk })
    }

    /// Records a written page (`on_disk`: its page file was written), evicting to make room. Returns
    /// `None`, changing nothing, if the file was removed or replaced since `plan` was made.
    pub(super) fn commit_write(
        &mut self,
        file_id: &str,
        index: u64,
        plan: WritePlan,
        data: Bytes,
        on_disk: bool,
        cached_ms: i64,
    ) -> Option<Effects> {
        if self.files.get(file_id)?.generation != plan.generation {
            return None;
        }
        let key = PageKey { generation: plan.generation, index };
        let len = data.len() as u64;
        if let Some(memory) = &mut self.memory {
            memory.remove(&key);
        }
        if let Some(disk) = self.disk_of(file_id) {
            disk.remove(&key);
        }
        let mut effects = Effects::default();
        let priority = self.files.get(file_id)?.priority;
        let disk_victims =
            if on_disk { self.disk_of(file_id).and_then(|d| d.insert(key, len, priority)) } else { None };
        let memory_victims =
            if plan.memory { self.memory.as_mut().and_then(|m| m.insert(key, len, priority)) } else { None };
        let page = PageEntry {
            len,
            cached_ms,
            disk_stamp: disk_victims.is_some().then(|| self.next()),
            memory: memory_victims.is_some().then_some(data),
        };
        if on_disk && page.disk_stamp.is_none() {
            // Written before the disk tier refused it (priority admission): the file must not stay.
            effects.delete.push(DiskPage { file_id: file_id.to_owned(), index, generation: plan.generation });
        }
        if page.disk_stamp.is_none() && page.memory.is_none() {
            self.files.get_mut(file_id)?.pages.remove(&index);
            effects.refused = true;
            return Some(effects);
        }
        self.files.get_mut(file_id)?.pages.insert(index, page);
        self.evicted_from_disk(disk_victims.unwrap_or_default(), Some(priority), &mut effects);
        self.evicted_from_memory(memory_victims.unwrap_or_default(), Some(priority), &mut effects);
        Some(effects)
    }

    /// Finds a page, marking it used if it is in memory.
    pub(super) fn lookup(&mut self, file_id: &str, index: u64) -> Lookup {
        let Some(entry) = self.files.get(file_id) else { return Lookup::Miss };
        let Some(page) = entry.pages.get(&index) else { return Lookup::Miss };
        let key = PageKey { generation: entry.generation, index };
        if let Some(data) = &page.memory {
            let data = data.clone();
            // The page's recency is one thing: a memory hit also keeps its disk copy from being evicted.
            if let Some(memory) = &mut self.memory {
                memory.touch(&key);
            }
            if let Some(disk) = self.disk_of(file_id) {
                disk.touch(&key);
            }
            return Lookup::Memory(data);
        }
        match page.disk_stamp {
            Some(stamp) => {
                let (len, priority) = (page.len, entry.priority);
                let promote = self.memory.as_ref().is_some_and(|m| m.admits(len) && !m.refuses(len, priority, &[]));
                Lookup::Disk(DiskRead { generation: entry.generation, stamp, len, promote })
            }
            None => Lookup::Miss,
        }
    }

    /// Accounts for a finished disk read. A valid page is returned only if its file still has the
    /// generation the read started under (bytes of a replaced version are never served), and is promoted
    /// into memory when the lookup said so (`DiskRead::promote`: then `data` is a buffer, never a mapping). An invalid one is dropped from the index if the index still points at that very file.
    pub(super) fn finish_read(
        &mut self,
        file_id: &str,
        index: u64,
        read: DiskRead,
        result: ReadResult,
    ) -> (Option<Bytes>, Effects) {
        let mut effects = Effects::default();
        let dir = self.dir(file_id);
        let Some(entry) = self.files.get_mut(file_id).filter(|e| e.generation == read.generation) else {
            return (None, effects);
        };
        let key = PageKey { generation: read.generation, index };
        match result {
            ReadResult::Valid(data) => {
                // The page may have been evicted while it was read; its bytes are still this version's.
                let Some(page) = entry.pages.get_mut(&index) else { return (Some(data), effects) };
                if page.disk_stamp.is_some()
                    && let Some(disk) = self.disks.get_mut(dir)
                {
                    disk.touch(&key);
                }
                let priority = entry.priority;
                if read.promote
                    && page.memory.is_none()
                    && let Some(victims) = self.memory.as_mut().and_then(|m| m.insert(key, read.len, priority))
                {
                    page.memory = Some(data.clone());
                    self.evicted_from_memory(victims, Some(priority), &mut effects);
                }
                (Some(data), effects)
            }
            ReadResult::Invalid { delete } => {
                let Some(page) = entry.pages.get_mut(&index).filter(|p| p.disk_stamp == Some(read.stamp)) else {
                    return (None, effects);
                };
                page.disk_stamp = None;
                if page.memory.is_none() {
                    entry.pages.remove(&index);
                }
                if let Some(disk) = self.disks.get_mut(dir) {
                    disk.remove(&key);
                }
                if let Some(generation) = delete {
                    effects.delete.push(DiskPage { file_id: file_id.to_owned(), index, generation });
                }
                (None, effects)
            }
        }
    }

    /// Loads what recovery found on disk: records, and pages into the disk tier in the order they were
    /// cached, evicting the oldest if they exceed the capacity.
    pub(super) fn restore(&mut self, files: Vec<RecoveredFile>) -> Effects {
        let mut pages = Vec::new();
        for file in files {
            let (record, generation) = (file.stored.record, file.stored.generation);
            let seq = self.next();
            pages.extend(file.pages.into_iter().map(|p| (p.cached_ms, generation, p.index, p.len)));
            self.owners.insert(generation, record.file_id.clone());
            let entry = FileEntry {
                record,
                generation,
                seq,
                persisted_seq: Some(seq),
                priority: DEFAULT_PRIORITY,
                pages: BTreeMap::new(),
            };
            self.files.insert(entry.record.file_id.clone(), entry);
            self.next_generation = self.next_generation.max(generation + 1);
        }
        pages.sort_unstable();
        let mut effects = Effects::default();
        for (cached_ms, generation, index, len) in pages {
            let Some(dir) = self.owners.get(&generation).map(|id| self.dir(id)) else { continue };
            let key = PageKey { generation, index };
            let Some(victims) = self.disks.get_mut(dir).and_then(|d| d.insert(key, len, DEFAULT_PRIORITY)) else {
                continue;
            };
            let disk_stamp = Some(self.next());
            if let Some(entry) = self.owners.get(&generation).and_then(|id| self.files.get_mut(id)) {
                entry.pages.insert(index, PageEntry { len, cached_ms, memory: None, disk_stamp });
            }
            self.evicted_from_disk(victims, None, &mut effects);
        }
        effects
    }

    /// Drops disk `victims` evicted to make room for data of priority `incoming` (`None`: a tier shrank).
    fn evicted_from_disk(&mut self, victims: Vec<Victim<PageKey>>, incoming: Option<Priority>, effects: &mut Effects) {
        for (key, size, victim) in victims {
            effects.evicted_disk += 1;
            let Some(file_id) = self.owners.get(&key.generation) else { continue };
            effects.delete.push(DiskPage { file_id: file_id.clone(), index: key.index, generation: key.generation });
            if let Some(entry) = self.files.get_mut(file_id)
                && let Some(page) = entry.pages.get_mut(&key.index)
            {
                page.disk_stamp = None;
                if page.memory.is_none() {
                    entry.pages.remove(&key.index);
                    effects.left_cache(size, victim, incoming);
                }
            }
        }
    }

    /// Drops memory `victims` evicted to make room for data of priority `incoming`.
    fn evicted_from_memory(
        &mut self,
        victims: Vec<Victim<PageKey>>,
        incoming: Option<Priority>,
        effects: &mut Effects,
    ) {
        for (key, size, victim) in victims {
            effects.evicted_memory += 1;
            let Some(file_id) = self.owners.get(&key.generation) else { continue };
            if let Some(entry) = self.files.get_mut(file_id)
                && let Some(page) = entry.pages.get_mut(&key.index)
            {
                page.memory = None;
                if page.disk_stamp.is_none() {
                    entry.pages.remove(&key.index);
                    effects.left_cache(size, victim, incoming);
                }
            }
        }
    }
}
