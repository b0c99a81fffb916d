//! Warm restart: rebuilds the disk tier's contents from the cache directories.
//!
//! Each file directory must hold a readable `record.json` of the current format; otherwise the whole
//! directory goes (pages without a record cannot be trusted). Page files are indexed from their headers
//! alone (the data is checked on every read anyway): a page is kept only if its header is intact, the file
//! size matches, and its generation, index, page size and length agree with the record. Temp files left by
//! a crash, misplaced directories (a file hashed to another cache dir) and unknown entries are deleted.
//! Other layout versions next to `v1` are left alone, for the build that knows them.

use std::collections::HashSet;
use std::fs::{self, DirEntry};
use std::path::Path;

use super::disk::{self, Layout, PageFileError, RECORD_FILE};
use super::error::PageStoreError;
use super::record::{self, RecordFileError, StoredRecord};

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
    /// Entries deleted as unusable (files, pages, temp files, directories).
    pub(super) discarded: u64,
}

/// Scans every cache directory (creating missing ones).
pub(super) fn scan(layout: &Layout, page_size: u64) -> Result<Recovered, PageStoreError> {
    let mut out = Recovered::default();
    let mut generations = HashSet::new();
    for (dir_index, root) in layout.roots().iter().enumerate() {
        fs::create_dir_all(root).map_err(PageStoreError::io("create", root))?;
        for prefix in entries(root)? {
            let (name, path) = (prefix.file_name(), prefix.path());
            let Some(prefix_name) =
                name.to_str().filter(|n| n.len() == 2 && n.bytes().all(is_lower_hex) && is_dir(&prefix))
            else {
                discard(&path, &mut out)?;
                continue;
            };
            for file_dir in entries(&path)? {
                let (name, path) = (file_dir.file_name(), file_dir.path());
                let placed = name.to_str().filter(|id| {
                    loam_core::id::is_file_id(id)
                        && id.starts_with(prefix_name)
                        && layout.dir_index(id) == dir_index
                        && is_dir(&file_dir)
                });
                let Some(id) = placed else {
                    discard(&path, &mut out)?;
                    continue;
                };
                match scan_file(&path, id, page_size, &mut out)? {
                    // Two directories claiming one generation (copied by hand?) would share page keys.
                    Some(file) if !generations.insert(file.stored.generation) => discard(&path, &mut out)?,
                    Some(file) => out.files.push(file),
                    None => {}
                }
            }
        }
    }
    Ok(out)
}

fn scan_file(
    dir: &Path,
    id: &str,
    page_size: u64,
    out: &mut Recovered,
) -> Result<Option<RecoveredFile>, PageStoreError> {
    let record_path = dir.join(RECORD_FILE);
    let stored = match record::read(&record_path) {
        Ok(stored) if stored.record.file_id == id => stored,
        Ok(stored) => return reject(dir, &format!("record of {}", stored.record.file_id), out),
        Err(RecordFileError::Invalid(why)) => return reject(dir, &why, out),
        Err(RecordFileError::Io(e)) => return Err(PageStoreError::io("read", record_path)(e)),
    };
    let mut pages = Vec::new();
    for entry in entries(dir)? {
        let (name, path) = (entry.file_name(), entry.path());
        let name = name.to_str().unwrap_or_default();
        if name == RECORD_FILE {
            continue;
        }
        let Some(index) = disk::parse_page_name(name) else {
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
                pages.push(RecoveredPage { index, len: h.len, cached_ms: h.cached_ms });
            }
            Ok(_) | Err(PageFileError::Corrupt(_)) | Err(PageFileError::Missing) => discard(&path, out)?,
            Err(PageFileError::Io(e)) => return Err(PageStoreError::io("read", path)(e)),
        }
    }
    Ok(Some(RecoveredFile { stored, pages }))
}

fn reject(dir: &Path, why: &str, out: &mut Recovered) -> Result<Option<RecoveredFile>, PageStoreError> {
    tracing::warn!(dir = %dir.display(), why, "cached file without a usable record dropped");
    discard(dir, out)?;
    Ok(None)
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
