//! Warm restart: rebuilds the disk tier's contents from the cache directories.
//!
//! Per cache directory: the record log is replayed (`record_log.rs`); a record is kept if its file id
//! hashes to this directory and no other record claims its generation. Page files are then indexed from
//! their headers alone (the data is checked on every read anyway): a page is kept only if its file has a
//! record of the generation its name says, it sits under the right prefix, its header is intact, the
//! file size matches, and its generation, index, page size and length agree with the record. Everything else under the layout root —
//! pages without a record, temp files left by a crash, unknown entries — is deleted. Finally the log is
//! rewritten with the surviving records, so it starts each run compact and without torn lines.
//! Trees of older layouts are deleted by the store (see `disk.rs`); unknown layout versions are left
//! alone, for the build that knows them.

use std::collections::{HashMap, HashSet};
use std::fs::{self, DirEntry};
use std::path::Path;

use super::disk::{self, Layout, PageFileError, RECORD_LOG};
use super::error::PageStoreError;
use super::record::StoredRecord;
use super::record_log::RecordLog;

/// A cached page found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RecoveredPage {
    pub(super) index: u64,
    pub(super) len: u64,
    pub(super) cached_ms: i64,
}

/// A file found on disk, with its usable pages.
#[derive(Debug)]
pub(super) struct RecoveredFile {
    pub(super) stored: StoredRecord,
    pub(super) pages: Vec<RecoveredPage>,
}

/// Everything recovery found.
#[derive(Debug, Default)]
pub(super) struct Recovered {
    pub(super) files: Vec<RecoveredFile>,
    /// Entries deleted or skipped as unusable (files, pages, temp files, directories, log lines).
    pub(super) discarded: u64,
}

/// Scans cache directory `dir_index` (creating it if missing) into `out`, returning its record log,
/// rewritten and open for appending. `generations` are those claimed by the directories scanned before.
pub(super) fn scan_dir(
    layout: &Layout,
    dir_index: usize,
    page_size: u64,
    generations: &mut HashSet<u64>,
    out: &mut Recovered,
) -> Result<RecordLog, PageStoreError> {
    {
        let root = &layout.roots()[dir_index];
        loam_core::private_fs::create_dir_all(root).map_err(PageStoreError::io("create", root))?;
        let log_path = layout.record_log_path(dir_index);
        let replayed = RecordLog::replay(&log_path).map_err(PageStoreError::io("read", &log_path))?;
        out.discarded += replayed.skipped;
        let mut records: HashMap<String, StoredRecord> = HashMap::new();
        for (id, stored) in replayed.records {
            let placed = loam_core::id::is_file_id(&id) && layout.dir_index(&id) == dir_index;
            // Two records claiming one generation (edited by hand?) would share page keys.
            if placed && generations.insert(stored.generation) {
                records.insert(id, stored);
            } else {
                out.discarded += 1;
            }
        }
        let mut pages: HashMap<String, Vec<RecoveredPage>> = HashMap::new();
        for prefix in entries(root)? {
            let (name, path) = (prefix.file_name(), prefix.path());
            if name == RECORD_LOG {
                continue;
            }
            let Some(prefix_name) =
                name.to_str().filter(|n| n.len() == 2 && n.bytes().all(is_lower_hex) && is_dir(&prefix))
            else {
                discard(&path, out)?;
                continue;
            };
            for entry in entries(&path)? {
                let (name, path) = (entry.file_name(), entry.path());
                let page = name
                    .to_str()
                    .and_then(disk::parse_page_name)
                    .filter(|(id, _, _)| id.starts_with(prefix_name))
                    .and_then(|(id, generation, index)| {
                        records.get(id).filter(|s| s.generation == generation).map(|stored| (stored, index))
                    });
                let Some((stored, index)) = page else {
                    discard(&path, out)?;
                    continue;
                };
                match disk::read_header(&path) {
                    Ok(h)
                        if h.generation == stored.generation
                            && h.index == index
                            && h.page_size == page_size
                            && Some(h.len) == stored.record.page_len(page_size, index) =>
                    {
                        let page = RecoveredPage { index, len: h.len, cached_ms: h.cached_ms };
                        pages.entry(stored.record.file_id.clone()).or_default().push(page);
                    }
                    Ok(_) | Err(PageFileError::Corrupt(_)) | Err(PageFileError::Missing) => discard(&path, out)?,
                    Err(PageFileError::Io(e)) => return Err(PageStoreError::io("read", path)(e)),
                }
            }
        }
        let log = RecordLog::create(&log_path, records.values()).map_err(PageStoreError::io("write", &log_path))?;
        for (id, stored) in records {
            let pages = pages.remove(&id).unwrap_or_default();
            out.files.push(RecoveredFile { stored, pages });
        }
        Ok(log)
    }
}

fn entries(dir: &Path) -> Result<Vec<DirEntry>, PageStoreError> {
    let read = fs::read_dir(dir).map_err(PageStoreError::io("list", dir))?;
    read.collect::<Result<_, _>>().map_err(PageStoreError::io("list", dir))
}

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

fn is_dir(entry: &DirEntry) -> bool {
    entry.file_type().is_ok_and(|t| t.is_dir())
}

fn discard(path: &Path, out: &mut Recovered) -> Result<(), PageStoreError> {
    let is_dir = fs::symlink_metadata(path).is_ok_and(|m| m.is_dir());
    let result = if is_dir { disk::remove_dir_if_present(path) } else { disk::remove_if_present(path) };
    result.map_err(PageStoreError::io("delete", path))?;
    tracing::debug!(path = %path.display(), "discarded unusable cache entry");
    out.discarded += 1;
    Ok(())
}
