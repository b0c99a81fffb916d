//! Reading a live store's page files from another process on the same host: the FUSE mount's
//! short-circuit reads (`loam-fuse/src/short_circuit.rs`). The format stays in `disk.rs`; this is the read-only
//! door to it for a process that does not own the store.
//!
//! - **Which store.** The reader is given the store's cache directories, its layout version and its
//!   *instance* (a random id each [`PageStore::open`](crate::PageStore::open) makes), as the worker's
//!   `GET /v1/short-circuit` answers them. [`LocalPages::open`] refuses a layout version it does not know
//!   (it would compute the wrong file names) and checks that each directory's lock file
//!   (`<dir>/loam-pages/lock`, which the store rewrites with its instance whenever it takes the lock) holds
//!   that instance: the directories at those paths, as this process sees them, are that live store's, and
//!   not a same-named directory of another host, container or an earlier store whose page generations
//!   would mean other versions.
//! - **Which page.** The caller names the file id, the generation of the version it reads, the page index,
//!   the store's page size and the file's length (from the same answer); [`LocalPages::read_part`] reads
//!   the header, the block checksums and the data under the part asked for ([`LocalPages::read_page`]: all
//!   of it), and checks the header (magic, format, header CRC), the file's length, that generation, index
//!   and page size are the ones asked for and the data the page's length, and each block's CRC32. Anything else
//!   is an error the caller answers by reading over HTTP; nothing here deletes or changes a file (the
//!   store owns them: a corrupt page is dropped by the worker when it next reads it).
//! - **Races.** The store may evict or replace the file while a read runs. A page file is replaced only by
//!   rename and the generation is in its name, so a read sees the whole page of the generation asked for
//!   (those bytes are the version the caller pinned) or no file at all.

use crate::disk::{self, Layout, PageFileError, Wait};
use bytes::Bytes;
use std::io;
use std::path::{Path, PathBuf};

/// The layout version this build reads and writes (the `v3` of `<dir>/loam-pages/v3`).
pub const LAYOUT_VERSION: &str = disk::LAYOUT_VERSION_DIR;

/// Where a store keeps its pages, for a reader on the same host ([`PageStore::local_dirs`](crate::PageStore::local_dirs)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalDirs {
    /// [`LAYOUT_VERSION`].
    pub layout: String,
    /// The cache directories, in configuration order (a file's directory is a hash of its id over them).
    pub dirs: Vec<PathBuf>,
    /// This opening of the store, as its lock files name it.
    pub instance: String,
}

/// Why a page could not be read locally.
#[derive(Debug, thiserror::Error)]
pub enum LocalReadError {
    /// The store uses a directory layout this build does not know.
    #[error("unknown page layout version {0:?} (this build reads {LAYOUT_VERSION})")]
    UnknownLayout(String),
    /// The directories are not (or no longer) the store's as this process sees them.
    #[error("not the worker's cache directories: {0}")]
    NotThisStore(String),
    /// There is no such page file (never cached, or evicted).
    #[error("no page file")]
    Missing,
    /// The page file fails a check (header, checksum, length).
    #[error("corrupt page file: {0}")]
    Corrupt(String),
    /// The page file is sound but another page than the one asked for (generation, index, page size).
    #[error("page file mismatch: {0}")]
    Mismatch(String),
    /// Reading failed.
    #[error("reading the page file: {0}")]
    Io(io::Error),
    /// (A read with [`Wait::Cached`]) Some of the bytes are not in the page cache: reading them would
    /// wait on the disk.
    #[error("not in the page cache")]
    WouldBlock,
}

impl From<PageFileError> for LocalReadError {
    fn from(e: PageFileError) -> Self {
        match e {
            e if e.would_block() => Self::WouldBlock,
            PageFileError::Missing => Self::Missing,
            PageFileError::Corrupt(why) => Self::Corrupt(why),
            PageFileError::Io(e) => Self::Io(e),
        }
    }
}

/// A live store's cache directories, checked to be its own. Blocking I/O: call from `spawn_blocking`.
#[derive(Debug, Clone)]
pub struct LocalPages {
    layout: Layout,
}

impl LocalPages {
    /// The directories `dirs` (in the store's configuration order) of the store `instance` with layout
    /// `layout_version`, once each directory's lock file names that instance.
    pub fn open(layout_version: &str, dirs: &[PathBuf], instance: &str) -> Result<Self, LocalReadError> {
        if layout_version != LAYOUT_VERSION {
            return Err(LocalReadError::UnknownLayout(layout_version.to_string()));
        }
        if dirs.is_empty() || instance.is_empty() {
            return Err(LocalReadError::NotThisStore("the worker has no disk tier".into()));
        }
        for dir in dirs {
            let path = crate::dirs::lock_path(dir);
            match std::fs::read(&path) {
                Ok(held) if held == instance.as_bytes() => {}
                Ok(_) => {
                    return Err(LocalReadError::NotThisStore(format!(
                        "{} names another store instance",
                        path.display()
                    )));
                }
                Err(e) => return Err(LocalReadError::NotThisStore(format!("cannot read {}: {e}", path.display()))),
            }
        }
        Ok(Self { layout: Layout::new(dirs) })
    }

    /// The data of page `index` of generation `generation` of `file_id`, a file of `length` bytes cached
    /// with `page_size`-byte pages, checked (see the module documentation).
    pub fn read_page(
        &self,
        file_id: &str,
        generation: u64,
        index: u64,
        page_size: u64,
        length: u64,
    ) -> Result<Bytes, LocalReadError> {
        self.read_part(file_id, generation, index, page_size, length, 0..usize::MAX, Wait::Block)
    }

    /// Bytes `part` of that page (clipped to it): only the checksum blocks under `part` are read and
    /// checked (`blocks.rs`), with the same header checks as [`LocalPages::read_page`]. With
    /// [`Wait::Cached`], only from the page cache: [`LocalReadError::WouldBlock`] where a byte would have
    /// to come from the disk — for a thread that must not wait on a disk (the FUSE session thread serves a
    /// read this way and hands only the others to threads that may wait).
    #[allow(clippy::too_many_arguments)]
    pub fn read_part(
        &self,
        file_id: &str,
        generation: u64,
        index: u64,
        page_size: u64,
        length: u64,
        part: std::ops::Range<usize>,
        wait: Wait,
    ) -> Result<Bytes, LocalReadError> {
        if !loam_core::id::is_file_id(file_id) || page_size == 0 {
            return Err(LocalReadError::Mismatch(format!("{file_id:?} with {page_size}-byte pages is not a page")));
        }
        let start = index.saturating_mul(page_size);
        if start >= length {
            return Err(LocalReadError::Mismatch(format!("page {index} is past the end of a {length}-byte file")));
        }
        let path = self.layout.page_path(file_id, generation, index);
        let (h, data) = disk::read_part(&path, part, wait)?;
        let expected = (h.generation, h.index, h.page_size, h.len);
        let asked = (generation, index, page_size, page_size.min(length - start));
        if expected != asked {
            return Err(LocalReadError::Mismatch(format!(
                "{} holds (generation, index, page size, length) {expected:?}, not {asked:?}",
                short(&path)
            )));
        }
        Ok(data)
    }
}

fn short(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PageStore, PageStoreConfig, metrics::PageStoreMetrics};

    const PAGE: u64 = 64;

    /// A store with one disk dir holding a file of 100 bytes (two pages), and a reader of its directories.
    async fn store_with_file(dir: &Path) -> (std::sync::Arc<PageStore>, LocalPages, String, u64, Vec<u8>) {
        let cfg = PageStoreConfig {
            page_size: PAGE,
            memory_capacity: 0,
            disk_dirs: vec![dir.to_owned()],
            disk_capacity: 1 << 20,
        };
        let store = PageStore::open(cfg, PageStoreMetrics::default()).unwrap();
        let data: Vec<u8> = (0..100u8).collect();
        let rec = crate::FileRecord::new("file:///x/f", 100, None, Some(1), 1);
        let id = rec.file_id.clone();
        store.put_file(rec).await.unwrap();
        store.put_page(&id, 0, Bytes::copy_from_slice(&data[..64])).await.unwrap();
        store.put_page(&id, 1, Bytes::copy_from_slice(&data[64..])).await.unwrap();
        let generation = store.file_version(&id).unwrap().1;
        let local = store.local_dirs().unwrap();
        let reader = LocalPages::open(&local.layout, &local.dirs, &local.instance).unwrap();
        (store, reader, id, generation, data)
    }

    #[tokio::test]
    async fn a_part_of_a_page_reads_back_checked_and_a_damaged_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (store, r, id, generation, data) = store_with_file(dir.path()).await;
        assert_eq!(&r.read_part(&id, generation, 0, PAGE, 100, 10..20, Wait::Block).unwrap()[..], &data[10..20]);
        assert_eq!(
            &r.read_part(&id, generation, 1, PAGE, 100, 30..99, Wait::Block).unwrap()[..],
            &data[94..100],
            "clipped"
        );
        assert!(matches!(
            r.read_part(&id, generation, 0, PAGE * 2, 100, 0..1, Wait::Block),
            Err(LocalReadError::Mismatch(_))
        ));
        let path = store.layout.as_ref().unwrap().page_path(&id, generation, 0);
        let mut raw = std::fs::read(&path).unwrap();
        let at = raw.len() - 64 + 15;
        raw[at] ^= 1;
        std::fs::write(&path, raw).unwrap();
        for wait in [Wait::Block, Wait::Cached] {
            let refused = r.read_part(&id, generation, 0, PAGE, 100, 10..20, wait);
            assert!(matches!(refused, Err(LocalReadError::Corrupt(_))), "{wait:?}");
        }
    }

    #[tokio::test]
    async fn a_cached_part_read_takes_the_page_cache_only() {
        let dir = tempfile::tempdir().unwrap();
        let (store, r, id, generation, data) = store_with_file(dir.path()).await;
        assert_eq!(&r.read_part(&id, generation, 0, PAGE, 100, 10..20, Wait::Cached).unwrap()[..], &data[10..20]);
        assert!(matches!(
            r.read_part(&id, generation + 1, 0, PAGE, 100, 0..1, Wait::Cached),
            Err(LocalReadError::Missing)
        ));
        // Out of the page cache: the cached read would wait on the disk; the other one reads it.
        let path = store.layout.as_ref().unwrap().page_path(&id, generation, 0);
        let file = std::fs::File::open(&path).unwrap();
        file.sync_all().unwrap();
        rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed).unwrap();
        assert!(matches!(
            r.read_part(&id, generation, 0, PAGE, 100, 10..20, Wait::Cached),
            Err(LocalReadError::WouldBlock)
        ));
        assert_eq!(&r.read_part(&id, generation, 0, PAGE, 100, 10..20, Wait::Block).unwrap()[..], &data[10..20]);
        // (a damaged block is refused by either: the test above)
    }

    #[tokio::test]
    async fn a_live_stores_pages_read_back_checked() {
        let dir = tempfile::tempdir().unwrap();
        let (_store, r, id, generation, data) = store_with_file(dir.path()).await;
        assert_eq!(&r.read_page(&id, generation, 0, PAGE, 100).unwrap()[..], &data[..64]);
        assert_eq!(&r.read_page(&id, generation, 1, PAGE, 100).unwrap()[..], &data[64..]);
        let mismatch = |e| matches!(e, LocalReadError::Mismatch(_));
        assert!(matches!(r.read_page(&id, generation + 1, 0, PAGE, 100), Err(LocalReadError::Missing)));
        assert!(mismatch(r.read_page(&id, generation, 0, PAGE * 2, 100).unwrap_err()), "another page size");
        assert!(mismatch(r.read_page(&id, generation, 1, PAGE, 101).unwrap_err()), "another length");
        assert!(mismatch(r.read_page(&id, generation, 2, PAGE, 100).unwrap_err()), "past the end");
        assert!(mismatch(r.read_page("../../etc", generation, 0, PAGE, 100).unwrap_err()), "not a file id");
    }

    #[tokio::test]
    async fn a_corrupt_page_file_is_refused_and_left_for_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let (_store, r, id, generation, _) = store_with_file(dir.path()).await;
        let path = r.layout.page_path(&id, generation, 1);
        let mut raw = std::fs::read(&path).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        std::fs::write(&path, &raw).unwrap();
        assert!(matches!(r.read_page(&id, generation, 1, PAGE, 100), Err(LocalReadError::Corrupt(_))));
        assert!(path.exists(), "the reader changes nothing");
    }

    #[tokio::test]
    async fn an_unknown_layout_or_another_stores_directories_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _r, ..) = store_with_file(dir.path()).await;
        let local = store.local_dirs().unwrap();
        for v in ["v1", "v2", "v4", ""] {
            let e = LocalPages::open(v, &local.dirs, &local.instance).unwrap_err();
            assert!(matches!(e, LocalReadError::UnknownLayout(_)), "{v}: {e}");
        }
        let e = LocalPages::open(LAYOUT_VERSION, &local.dirs, "another").unwrap_err();
        assert!(matches!(e, LocalReadError::NotThisStore(_)), "{e}");
        let elsewhere = tempfile::tempdir().unwrap();
        let e = LocalPages::open(LAYOUT_VERSION, &[elsewhere.path().to_owned()], &local.instance).unwrap_err();
        assert!(matches!(e, LocalReadError::NotThisStore(_)), "{e}");
        assert!(LocalPages::open(LAYOUT_VERSION, &[], &local.instance).is_err());
        // A store opened again on the directories is another instance: the old answer no longer fits.
        drop(store);
        let again = PageStore::open(
            PageStoreConfig {
                page_size: PAGE,
                disk_dirs: vec![dir.path().to_owned()],
                disk_capacity: 1 << 20,
                ..Default::default()
            },
            PageStoreMetrics::default(),
        )
        .unwrap();
        assert!(LocalPages::open(LAYOUT_VERSION, &local.dirs, &local.instance).is_err());
        let now = again.local_dirs().unwrap();
        assert!(LocalPages::open(&now.layout, &now.dirs, &now.instance).is_ok());
    }
}
