//! The disk tier's directory layout and page file format. Everything here is blocking I/O, called from
//! `spawn_blocking`.
//!
//! Layout `v3`: `<dir>/loam-pages/v3/<id[0..2]>/<id>.<generation>.<index>.page` holds page `index` of
//! the version `generation` of file `id`, and
//! `<dir>/loam-pages/v3/records.log` the records of the files whose pages live in that directory (see
//! `record_log.rs`). A file's cache directory is chosen by hashing its id over the configured
//! directories. `v3` is the layout version (`v2` had page files without block checksums).
//!
//! Why flat, with records in a log: layout `v1` gave each file a directory holding its pages and a
//! `record.json`, i.e. three inodes (directory, record, page) for a file of one page. Creating inodes
//! is what a load of many small files spent its time on (`ext4_mkdir`/`ext4_create` were over half of a
//! worker's samples), so a small file now costs one inode and one appended log line. Removing a file
//! deletes the page files the index knows; recovery deletes any it missed. The generation is in the name
//! so that two versions of a file never share a page file: deleting an old version's page can never
//! remove a newer one written meanwhile under the same name.
//!
//! A page file is a [`HEADER_LEN`]-byte header, the table of block checksums (`blocks.rs`: a CRC32 per 16
//! KiB of data), then the data. Header, little-endian: magic `LMPG` (4), format version (u16), reserved
//! (u16), generation (u64), page index (u64), page size (u64), data length (u64), cached time in ms (i64),
//! CRC32 of the data (u32), CRC32 of the 52 bytes before it (u32). The generation ties the page to one
//! version of its file (see `record.rs`); index and page size guard against a file under the wrong name or
//! a changed page size. A whole-page read checks the data's CRC32; a read of part of a page
//! ([`read_part`]) reads the header, the table and the blocks under the part, and checks those blocks.
//!
//! Writes go to a uniquely named temp file that is renamed over the final name, so a crash leaves the
//! old page, the new one, or a temp file that recovery deletes, never half a page under the real name.
//! There is no fsync: this is a cache, and a page torn by a power loss fails its checksum on read and
//! is read again from the UFS.

use crate::blocks;
use bytes::Bytes;
use loam_core::private_fs;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// The directory under each cache dir that holds Loam's pages.
pub(super) const LAYOUT_DIR: &str = "loam-pages";
/// Version of the directory layout.
pub(super) const LAYOUT_VERSION_DIR: &str = "v3";
/// Layouts this build replaces: their trees are deleted at start-up (a cache, so nothing is lost but
/// the time to re-read it).
const OLD_LAYOUT_DIRS: [&str; 2] = ["v1", "v2"];
/// Name of the record log in each layout root.
pub(super) const RECORD_LOG: &str = "records.log";
const PAGE_SUFFIX: &str = ".page";
const TEMP_MARKER: &str = ".tmp-";
const MAGIC: [u8; 4] = *b"LMPG";
/// Version of the page file format.
pub(super) const PAGE_FORMAT_VERSION: u16 = 2;
/// Bytes of the page file header.
pub(super) const HEADER_LEN: usize = 56;

/// Where files and pages live across the configured cache directories.
#[derive(Debug, Clone)]
pub(super) struct Layout {
    roots: Vec<PathBuf>,
}

impl Layout {
    /// The layout over `dirs` (must not be empty).
    pub(super) fn new(dirs: &[PathBuf]) -> Self {
        Self { roots: dirs.iter().map(|d| d.join(LAYOUT_DIR).join(LAYOUT_VERSION_DIR)).collect() }
    }

    /// `<dir>/loam-pages/<layout version>` of each cache directory, in configuration order.
    pub(super) fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    /// Trees of older layouts present in the cache directories.
    pub(super) fn old_layouts(&self) -> Vec<PathBuf> {
        let parents = self.roots.iter().filter_map(|r| r.parent());
        parents.flat_map(|p| OLD_LAYOUT_DIRS.iter().map(move |v| p.join(v))).filter(|p| p.exists()).collect()
    }

    /// Which cache directory holds `file_id`.
    pub(super) fn dir_index(&self, file_id: &str) -> usize {
        dir_of(file_id, self.roots.len())
    }

    /// The page file of page `index` of version `generation` of `file_id` (which the store has checked to
    /// be a file id, so it is a safe name).
    pub(super) fn page_path(&self, file_id: &str, generation: u64, index: u64) -> PathBuf {
        let prefix = file_id.get(..2).unwrap_or(file_id);
        let name = format!("{file_id}.{generation}.{index}{PAGE_SUFFIX}");
        self.roots[self.dir_index(file_id)].join(prefix).join(name)
    }

    /// The record log of cache directory `dir_index`.
    pub(super) fn record_log_path(&self, dir_index: usize) -> PathBuf {
        self.roots[dir_index].join(RECORD_LOG)
    }
}

/// Which of `dirs` (at least 1) cache directories holds `file_id`'s pages and record.
pub(super) fn dir_of(file_id: &str, dirs: usize) -> usize {
    crc32fast::hash(file_id.as_bytes()) as usize % dirs
}

/// The file id, generation and page index of a page file name (`<id>.<generation>.<index>.page`, numbers
/// in canonical decimal), or `None`.
pub(super) fn parse_page_name(name: &str) -> Option<(&str, u64, u64)> {
    let (id, numbers) = name.strip_suffix(PAGE_SUFFIX)?.split_once('.')?;
    let (generation, index) = numbers.split_once('.')?;
    let canonical = |digits: &str| digits.parse::<u64>().ok().filter(|n| n.to_string() == digits);
    let (generation, index) = (canonical(generation)?, canonical(index)?);
    loam_core::id::is_file_id(id).then_some((id, generation, index))
}

/// The header of a page file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PageHeader {
    /// Generation of the file version the page belongs to.
    pub(super) generation: u64,
    /// Page index within the file.
    pub(super) index: u64,
    /// Page size of the store that wrote it.
    pub(super) page_size: u64,
    /// Data length.
    pub(super) len: u64,
    /// When the page was cached (ms since the epoch).
    pub(super) cached_ms: i64,
    /// CRC32 of the data.
    pub(super) data_crc: u32,
}

impl PageHeader {
    /// The header for `data`, but for its checksum, which [`write_page`] sets (on its blocking thread, in
    /// the same pass as the block checksums).
    pub(super) fn for_data(generation: u64, index: u64, page_size: u64, cached_ms: i64, data: &[u8]) -> Self {
        Self { generation, index, page_size, len: data.len() as u64, cached_ms, data_crc: 0 }
    }

    /// Where the data starts in the page file: after the header and the block table.
    pub(super) fn data_offset(&self) -> usize {
        HEADER_LEN + blocks::table_len(self.len as usize)
    }

    /// The header's bytes.
    pub(super) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(&MAGIC);
        b[4..6].copy_from_slice(&PAGE_FORMAT_VERSION.to_le_bytes());
        b[8..16].copy_from_slice(&self.generation.to_le_bytes());
        b[16..24].copy_from_slice(&self.index.to_le_bytes());
        b[24..32].copy_from_slice(&self.page_size.to_le_bytes());
        b[32..40].copy_from_slice(&self.len.to_le_bytes());
        b[40..48].copy_from_slice(&self.cached_ms.to_le_bytes());
        b[48..52].copy_from_slice(&self.data_crc.to_le_bytes());
        let header_crc = crc32fast::hash(&b[..52]);
        b[52..56].copy_from_slice(&header_crc.to_le_bytes());
        b
    }

    /// Parses a header, checking magic, header checksum and format version.
    pub(super) fn decode(b: &[u8]) -> Result<Self, String> {
        let b: &[u8; HEADER_LEN] = b.get(..HEADER_LEN).and_then(|h| h.try_into().ok()).ok_or("truncated header")?;
        if b[0..4] != MAGIC {
            return Err("bad magic".into());
        }
        if crc32fast::hash(&b[..52]) != u32_at(b, 52) {
            return Err("header checksum mismatch".into());
        }
        let version = u16::from_le_bytes([b[4], b[5]]);
        if version != PAGE_FORMAT_VERSION {
            return Err(format!("unknown page format version {version}"));
        }
        Ok(Self {
            generation: u64_at(b, 8),
            index: u64_at(b, 16),
            page_size: u64_at(b, 24),
            len: u64_at(b, 32),
            cached_ms: u64_at(b, 40) as i64,
            data_crc: u32_at(b, 48),
        })
    }
}

fn u64_at(b: &[u8; HEADER_LEN], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

fn u32_at(b: &[u8; HEADER_LEN], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Why a page file could not be used.
#[derive(Debug)]
pub(super) enum PageFileError {
    /// There is no such file.
    Missing,
    /// The file is truncated, fails a checksum, or has an unknown format.
    Corrupt(String),
    /// Reading failed.
    Io(io::Error),
}

impl PageFileError {
    /// A [`Wait::Cached`] read found bytes outside the page cache: nothing is wrong with the file.
    pub(super) fn would_block(&self) -> bool {
        matches!(self, PageFileError::Io(e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}

impl From<io::Error> for PageFileError {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::NotFound => PageFileError::Missing,
            io::ErrorKind::UnexpectedEof => PageFileError::Corrupt("truncated header".into()),
            _ => PageFileError::Io(e),
        }
    }
}

/// Writes a page file atomically; returns its header as written (with the data's checksum).
pub(super) fn write_page(path: &Path, header: &PageHeader, data: &[u8]) -> io::Result<PageHeader> {
    let (table, data_crc) = blocks::table_of(data);
    let header = PageHeader { data_crc, len: data.len() as u64, ..*header };
    write_atomically(path, &[&header.encode(), &table, data])?;
    Ok(header)
}

/// Reads a whole page file in one read and checks it. The data is a slice of the read buffer: the
/// header is skipped without copying.
pub(super) fn read_page(path: &Path) -> Result<(PageHeader, Bytes), PageFileError> {
    check_page(Bytes::from(fs::read(path)?))
}

/// Checks a whole page file's bytes (read, or mapped: `mapped.rs`): header, length and data CRC32. The
/// data is a slice of `buf`.
pub(super) fn check_page(buf: Bytes) -> Result<(PageHeader, Bytes), PageFileError> {
    let header = PageHeader::decode(&buf).map_err(PageFileError::Corrupt)?;
    let data = buf.slice(header.data_offset().min(buf.len())..);
    if data.len() as u64 != header.len {
        return Err(PageFileError::Corrupt(format!("{} data bytes, header says {}", data.len(), header.len)));
    }
    if crc32fast::hash(&data) != header.data_crc {
        return Err(PageFileError::Corrupt("data checksum mismatch".into()));
    }
    Ok((header, data))
}

/// Reads only a page file's header, checking it and that the file's size matches it.
pub(super) fn read_header(path: &Path) -> Result<PageHeader, PageFileError> {
    let mut file = File::open(path)?;
    let mut b = [0u8; HEADER_LEN];
    file.read_exact(&mut b)?;
    let header = PageHeader::decode(&b).map_err(PageFileError::Corrupt)?;
    let size = file.metadata()?.len();
    if size != header.data_offset() as u64 + header.len {
        return Err(PageFileError::Corrupt(format!("file is {size} bytes, header says {}", header.len)));
    }
    Ok(header)
}

/// How a read of a page file may wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// As long as the disk takes.
    Block,
    /// Not at all: only what the page cache holds, else `io::ErrorKind::WouldBlock`.
    Cached,
}

/// Table entries read with the header, in the same read: a 4 MiB page's whole table (a part of a larger
/// page, or a longer part, reads the rest of its entries apart).
const ENTRIES_WITH_HEADER: usize = 256;

/// Reads bytes `range` of a page file's data (clipped to its length) and checks them: the header, and the
/// checksum of every block the range touches. Two reads (the header with the table entries the range
/// needs, then its blocks), three for a part past [`ENTRIES_WITH_HEADER`] blocks; nothing else of the page
/// is read. A file shorter than its header says where the range lies is corrupt; its size is not asked
/// otherwise (an `fstat` per part, and every byte served is checked by its block's checksum anyway). With
/// [`Wait::Cached`] the reads take only what the page cache holds (the `open` may still touch the disk).
pub(super) fn read_part(path: &Path, range: Range<usize>, wait: Wait) -> Result<(PageHeader, Bytes), PageFileError> {
    let file = File::open(path)?;
    let read = |len: usize, at: usize| match wait {
        Wait::Block => loam_core::read_at::read_at_most(&file, len, at as u64),
        Wait::Cached => loam_core::read_at::read_at_most_cached(&file, len, at as u64),
    };
    let exact = |len: usize, at: usize| -> Result<Vec<u8>, PageFileError> {
        let b = read(len, at)?;
        match b.len() == len {
            true => Ok(b),
            false => Err(PageFileError::Corrupt(format!("the file ends before byte {}", at + len))),
        }
    };
    // What lies past the table in this read is data, not used: the blocks are read (and checked) apart.
    let first = read(HEADER_LEN + blocks::covering(&range).end.min(ENTRIES_WITH_HEADER) * blocks::ENTRY, 0)?;
    let header = PageHeader::decode(&first).map_err(PageFileError::Corrupt)?;
    let len = header.len as usize;
    let range = range.start.min(len)..range.end.min(len);
    let blocks = blocks::covering(&range);
    if blocks.is_empty() {
        return Ok((header, Bytes::new()));
    }
    let entries = HEADER_LEN + blocks.start * blocks::ENTRY..HEADER_LEN + blocks.end * blocks::ENTRY;
    let table = match first.get(entries.clone()) {
        Some(t) => t.to_vec(),
        None => exact(entries.len(), entries.start)?,
    };
    let lo = blocks.start * blocks::BLOCK;
    let hi = (blocks.end * blocks::BLOCK).min(len);
    let data = exact(hi - lo, header.data_offset() + lo)?;
    // `table` holds the entries from `blocks.start` on: the blocks are numbered from 0 in it.
    blocks::verify(&table, 0, &data).map_err(PageFileError::Corrupt)?;
    Ok((header, Bytes::from(data).slice(range.start - lo..range.end - lo)))
}

/// Deletes a file, treating "already gone" as success.
pub(super) fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Deletes a directory tree, treating "already gone" as success.
pub(super) fn remove_dir_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Writes `parts` to a temp file next to `path`, then renames it to `path`. Creates the directory if
/// needed; removes the temp file if anything fails.
pub(super) fn write_atomically(path: &Path, parts: &[&[u8]]) -> io::Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!("{name}{TEMP_MARKER}{}", uuid::Uuid::new_v4().simple()));
    let result = write_then_rename(&tmp, path, parts);
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn write_then_rename(tmp: &Path, path: &Path, parts: &[&[u8]]) -> io::Result<()> {
    let mut file = match private_fs::create_file(tmp) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(dir) = tmp.parent() {
                private_fs::create_dir_all(dir)?;
            }
            private_fs::create_file(tmp)?
        }
        other => other?,
    };
    for part in parts {
        file.write_all(part)?;
    }
    drop(file);
    fs::rename(tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(data: &[u8]) -> PageHeader {
        PageHeader::for_data(3, 2, 64, 1_700_000_000_123, data)
    }

    #[test]
    fn header_round_trips() {
        let h = header(b"hello");
        assert_eq!(PageHeader::decode(&h.encode()), Ok(h));
    }

    #[test]
    fn header_corruption_is_detected() {
        let good = header(b"hello").encode();
        for at in [0, 5, 9, 30, 45, 50, 54] {
            let mut bad = good;
            bad[at] ^= 0x40;
            assert!(PageHeader::decode(&bad).is_err(), "flip at {at} not detected");
        }
        assert!(PageHeader::decode(&good[..HEADER_LEN - 1]).is_err());
    }

    #[test]
    fn unknown_format_version_is_rejected() {
        let mut b = header(b"x").encode();
        b[4..6].copy_from_slice(&1u16.to_le_bytes());
        let crc = crc32fast::hash(&b[..52]);
        b[52..56].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(PageHeader::decode(&b), Err("unknown page format version 1".to_string()));
    }

    #[test]
    fn page_file_round_trips_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/x.2.page");
        let h = write_page(&path, &header(b"some page bytes"), b"some page bytes").unwrap();
        assert_eq!(h.data_crc, crc32fast::hash(b"some page bytes"));
        let (read, data) = read_page(&path).unwrap();
        assert_eq!((read, &data[..]), (h, &b"some page bytes"[..]));
        assert_eq!(read_header(&path).unwrap(), h);
        let names: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("x.2.page")]);
    }

    #[test]
    fn flipped_data_byte_and_truncation_are_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.page");
        let data = vec![7u8; 100];
        write_page(&path, &header(&data), &data).unwrap();
        let mut raw = fs::read(&path).unwrap();
        raw[HEADER_LEN + 10] ^= 1;
        fs::write(&path, &raw).unwrap();
        assert!(matches!(read_page(&path), Err(PageFileError::Corrupt(_))));
        raw[HEADER_LEN + 10] ^= 1;
        fs::write(&path, &raw[..raw.len() - 1]).unwrap();
        assert!(matches!(read_page(&path), Err(PageFileError::Corrupt(_))));
        assert!(matches!(read_header(&path), Err(PageFileError::Corrupt(_))));
        fs::write(&path, &raw[..10]).unwrap();
        assert!(matches!(read_header(&path), Err(PageFileError::Corrupt(_))));
        assert!(matches!(read_page(&dir.path().join("9.page")), Err(PageFileError::Missing)));
    }

    #[test]
    fn names_and_layout() {
        let id = loam_core::file_id("s3://b/k");
        assert_eq!(parse_page_name(&format!("{id}.7.12.page")), Some((id.as_str(), 7, 12)));
        assert_eq!(parse_page_name(&format!("{id}.7.012.page")), None);
        assert_eq!(parse_page_name(&format!("{id}.07.12.page")), None);
        assert_eq!(parse_page_name(&format!("{id}.12.page")), None);
        assert_eq!(parse_page_name(&format!("{id}.7.12.page.tmp-abc")), None);
        assert_eq!(parse_page_name("7.12.page"), None);
        assert_eq!(parse_page_name("nothex.1.1.page"), None);
        assert_eq!(parse_page_name(RECORD_LOG), None);
        let layout = Layout::new(&[PathBuf::from("/a"), PathBuf::from("/b")]);
        let root = &layout.roots()[layout.dir_index(&id)];
        assert_eq!(layout.page_path(&id, 9, 3), root.join(&id[..2]).join(format!("{id}.9.3.page")));
        assert_eq!(layout.record_log_path(1), PathBuf::from("/b/loam-pages/v3/records.log"));
    }

    #[test]
    fn a_part_is_its_blocks_checked_and_a_file_cut_or_damaged_under_it_is_corrupt() {
        use blocks::BLOCK;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.page");
        // More blocks than the table entries read with the header: a part past them reads its own.
        let data: Vec<u8> = (0..300 * BLOCK + 100).map(|i| (i % 251) as u8).collect();
        let h = write_page(&path, &header(&data), &data).unwrap();
        let len = data.len();
        let parts = [
            0..1,
            4096..8192,
            BLOCK - 1..BLOCK + 1,
            280 * BLOCK + 5..290 * BLOCK,
            299 * BLOCK..len + 50,
            100..100,
            len + 5..len + 9,
            0..usize::MAX,
        ];
        for wait in [Wait::Block, Wait::Cached] {
            for r in parts.clone() {
                let (got_header, got) = read_part(&path, r.clone(), wait).unwrap();
                assert_eq!((got_header, &got[..]), (h, &data[r.start.min(len)..r.end.min(len)]), "{r:?}");
            }
        }
        let corrupt = |r: Range<usize>| matches!(read_part(&path, r, Wait::Block), Err(PageFileError::Corrupt(_)));
        let mut raw = fs::read(&path).unwrap();
        let flipped = h.data_offset() + 285 * BLOCK + 7;
        raw[flipped] ^= 1;
        fs::write(&path, &raw).unwrap();
        assert!(corrupt(285 * BLOCK..285 * BLOCK + 10) && corrupt(0..usize::MAX));
        assert_eq!(&read_part(&path, 0..4096, Wait::Block).unwrap().1[..], &data[..4096], "other blocks are whole");
        raw[flipped] ^= 1;
        // Cut in block 2: the blocks before it are whole; a part on it or past it is corrupt.
        fs::write(&path, &raw[..h.data_offset() + 2 * BLOCK + 10]).unwrap();
        assert_eq!(&read_part(&path, 10..BLOCK, Wait::Block).unwrap().1[..], &data[10..BLOCK]);
        assert!(corrupt(2 * BLOCK..2 * BLOCK + 5) && corrupt(290 * BLOCK..290 * BLOCK + 1));
        // Cut in the table, and in the header.
        fs::write(&path, &raw[..HEADER_LEN + 8]).unwrap();
        assert!(corrupt(0..10) && corrupt(280 * BLOCK..280 * BLOCK + 1));
        fs::write(&path, &raw[..HEADER_LEN - 1]).unwrap();
        assert!(corrupt(0..10));
        assert!(matches!(read_part(&dir.path().join("9.page"), 0..1, Wait::Block), Err(PageFileError::Missing)));
    }
}
