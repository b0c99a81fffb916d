//! Mapped reads of page files: a disk-tier hit served from the kernel's page cache without a copy into a
//! buffer of ours.
//!
//! A buffered read (`disk::read_page`) copies the page file into a heap buffer, which hyper then copies
//! into the socket (or rustls into its records): two copies. Here the page file is mapped read-only
//! (`MAP_SHARED | MAP_POPULATE`: the whole page is faulted in by the `mmap` call itself, on the blocking
//! thread, not by the first touch on a runtime thread); its header and CRC32 are checked *on the
//! mapping*, and the data is handed on as `Bytes::from_owner(mapping)` sliced past the header. The one copy
//! left is page cache → socket, made by the writer of the response, so it works under TLS as well. The
//! mapping is unmapped when the last `Bytes` of it is dropped (when the response has sent it).
//!
//! Why a mapping and not `sendfile`/`splice`: hyper writes bodies of `Bytes` and cannot send a file; the
//! listener would have to write the body itself (bypassing hyper's HTTP/1 framing, and impossible under
//! rustls, which must see the bytes to encrypt them). A mapping keeps every layer above the page store as
//! it is: ranges, the page API and the S3 API slice the same `Bytes`.
//!
//! What a mapping must not meet is a file that shrinks under it: touching a mapped page past the file's
//! end raises `SIGBUS`. Page files are never truncated or rewritten in place (written to a temp name and
//! renamed; deleted by unlink, which keeps the inode alive while mapped), and the mapping covers exactly
//! the length `fstat` gave on the open handle, checked against the header before anything is sent. What
//! this does not protect against is another process truncating a page file in the (private, `0700`)
//! cache directory while it is mapped: see docs/SEMANTICS.md.
//!
//! Small pages are read, not mapped: below [`MAP_MIN_DATA`] bytes of data a copy costs less than the
//! `mmap`/`munmap` pair and its TLB flush. A file system that refuses `mmap` falls back to the buffered
//! read of the same open handle.

use crate::disk::{self, HEADER_LEN, PageFileError, PageHeader};
use bytes::Bytes;
use std::ffi::c_void;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::ptr::NonNull;

/// Pages with less data than this are read into a buffer rather than mapped. A copy of 64 KiB takes a few
/// microseconds, about what mapping, populating and unmapping 16 pages costs; above it the copy grows with
/// the page and the mapping barely does (the lead measures the crossing: `loam-bench read --buffered`).
pub(super) const MAP_MIN_DATA: u64 = 64 << 10;

/// A read-only shared mapping of a whole page file, unmapped on drop.
pub(super) struct Mapping {
    ptr: NonNull<c_void>,
    len: usize,
}

// SAFETY: the mapping is read-only memory owned by this value alone; no `&mut` access to it exists, so
// sharing it between threads is sharing an immutable byte slice.
unsafe impl Send for Mapping {}
// SAFETY: as above: only shared reads.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps the first `len` (> 0) bytes of `file` read-only, populated at once.
    fn new(file: &File, len: usize) -> io::Result<Self> {
        use rustix::mm::{MapFlags, ProtFlags, mmap};
        // SAFETY: a fresh mapping at an address the kernel picks (no existing memory is replaced); `len` is
        // not more than the file's size as `fstat` gave it, so every mapped page lies within the file.
        let ptr = unsafe {
            mmap(std::ptr::null_mut(), len, ProtFlags::READ, MapFlags::SHARED | MapFlags::POPULATE, file, 0)
        }?;
        let ptr = NonNull::new(ptr).ok_or_else(|| io::Error::other("mmap returned a null mapping"))?;
        Ok(Self { ptr, len })
    }
}

impl AsRef<[u8]> for Mapping {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `ptr` is a live mapping of `len` readable bytes until `drop`; page files are never
        // truncated by the store (see the module header for what is not protected).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().cast::<u8>(), self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`, once; no slice of it outlives `self` (the
        // `Bytes` that own it drop it last).
        if let Err(e) = unsafe { rustix::mm::munmap(self.ptr.as_ptr(), self.len) } {
            tracing::warn!(error = %e, "cannot unmap a page file");
        }
    }
}

/// Reads a page file through a mapping (or, for a small page or a file system without `mmap`, into a
/// buffer from the same open handle) and checks header, length and CRC32 on what will be sent. The same
/// outcomes as `disk::read_page`.
pub(super) fn map_page(path: &Path) -> Result<(PageHeader, Bytes), PageFileError> {
    let mut file = File::open(path)?;
    // The length of this inode, on this handle: a rename over the name meanwhile cannot change it.
    let size = file.metadata()?.len();
    if size < HEADER_LEN as u64 + MAP_MIN_DATA {
        return disk::check_page(read_all(&mut file, size)?);
    }
    let len = usize::try_from(size).map_err(|_| PageFileError::Corrupt(format!("file is {size} bytes")))?;
    match Mapping::new(&file, len) {
        Ok(mapping) => disk::check_page(Bytes::from_owner(mapping)),
        Err(e) => {
            loam_core::warn_limited!("cannot map {}: {e}; reading it instead", path.display());
            disk::check_page(read_all(&mut file, size)?)
        }
    }
}

/// The rest of `file` (`size` bytes by its `fstat`) in one buffer.
fn read_all(file: &mut File, size: u64) -> io::Result<Bytes> {
    let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.read_to_end(&mut buf)?;
    Ok(Bytes::from(buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    const LEN: usize = MAP_MIN_DATA as usize + 1000;

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + 3) as u8).collect()
    }

    fn write(path: &Path, generation: u64, data: &[u8]) -> PageHeader {
        let header = PageHeader::for_data(generation, 4, 1 << 20, 1_700_000_000_000, data);
        disk::write_page(path, &header, data).unwrap()
    }

    /// Flips one bit of the file at `at`, in place (not through the store's rename).
    fn flip(path: &Path, at: usize) {
        let mut raw = fs::read(path).unwrap();
        raw[at] ^= 0x10;
        fs::write(path, raw).unwrap();
    }

    #[test]
    fn a_good_page_is_served_from_a_mapping_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.page");
        let want = data(LEN);
        let header = write(&path, 3, &want);
        let (got_header, got) = map_page(&path).unwrap();
        assert_eq!((got_header, &got[..]), (header, &want[..]));
        // The bytes are the mapping's, not a copy: deleting the name keeps the inode (and them) alive.
        fs::remove_file(&path).unwrap();
        assert_eq!(&got.slice(10..20)[..], &want[10..20]);
        // A small page takes the buffered read and is checked the same way.
        let small = data(100);
        let header = write(&path, 3, &small);
        assert_eq!(map_page(&path).unwrap(), (header, Bytes::from(small)));
    }

    #[test]
    fn a_flipped_data_bit_or_header_bit_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.page");
        for (at, why) in [(HEADER_LEN + LEN / 2, "data checksum mismatch"), (20, "header checksum mismatch")] {
            write(&path, 3, &data(LEN));
            flip(&path, at);
            match map_page(&path) {
                Err(PageFileError::Corrupt(got)) => assert_eq!(got, why),
                other => panic!("flip at {at}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_short_or_long_file_is_corrupt_and_never_read_past_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.page");
        write(&path, 3, &data(LEN));
        let raw = fs::read(&path).unwrap();
        // Shorter than its header says (cut mid-data), longer, no data at all, half a header, empty.
        let cut = |n: usize| raw[..n].to_vec();
        let longer = [raw.clone(), vec![0; 4096]].concat();
        for bytes in [cut(raw.len() - 1), cut(HEADER_LEN + 4096), longer, cut(HEADER_LEN), cut(10), Vec::new()] {
            fs::write(&path, &bytes).unwrap();
            assert!(matches!(map_page(&path), Err(PageFileError::Corrupt(_))), "{} bytes", bytes.len());
        }
        assert!(matches!(map_page(&dir.path().join("none.page")), Err(PageFileError::Missing)));
    }

    #[test]
    fn the_generation_read_is_the_one_in_the_header() {
        // The store compares it with the generation it expects (`expected_header`); a page of another
        // version, intact, reads back with that version's generation.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.page");
        write(&path, 9, &data(LEN));
        assert_eq!(map_page(&path).unwrap().0.generation, 9);
    }
}
