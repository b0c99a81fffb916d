//! Reading a range of a file into a fresh buffer without zeroing it first.
//!
//! `vec![0u8; n]` before a `read_at` writes every byte twice: a profile of cold reads put 4.7 % of the
//! worker's CPU in that `memset` (and more in the page faults of touching the buffer before the kernel
//! fills it). `pread` into the vector's spare capacity lets the kernel's copy be the first write.

use std::fs::File;
use std::io;

/// Reads up to `len` bytes of `file` from `offset`: fewer only where the file ends first.
pub fn read_at_most(file: &File, len: usize, offset: u64) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(len);
    while buf.len() < len {
        let at = offset + buf.len() as u64;
        // `spare_capacity` lets `pread` write into the uninitialised tail and grows `len` by what it read.
        match rustix::io::pread(file, rustix::buffer::spare_capacity(&mut buf), at) {
            Ok(0) => break,
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    buf.truncate(len); // (the allocator may have given more capacity than asked, and `pread` filled it)
    Ok(buf)
}

/// Reads exactly `len` bytes of `file` from `offset` (`UnexpectedEof` where the file ends first).
pub fn read_exact_at(file: &File, len: usize, offset: u64) -> io::Result<Vec<u8>> {
    exactly(read_at_most(file, len, offset)?, len)
}

/// Like [`read_at_most`], but only what the page cache holds: `WouldBlock` where any byte would have to
/// come from the disk (`preadv2` with `RWF_NOWAIT`; also where the file system does not support it), so a
/// thread that must not wait on a disk can hand the read to one that may.
pub fn read_at_most_cached(file: &File, len: usize, offset: u64) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len]; // (the reads this is for are small: zeroing costs less than the syscall)
    let mut filled = 0;
    while filled < len {
        let slice = &mut [io::IoSliceMut::new(&mut buf[filled..])];
        match rustix::io::preadv2(file, slice, offset + filled as u64, rustix::io::ReadWriteFlags::NOWAIT) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::OPNOTSUPP) => {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Err(e) => return Err(e.into()),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

/// Like [`read_exact_at`], but only what the page cache holds (see [`read_at_most_cached`]).
pub fn read_exact_at_cached(file: &File, len: usize, offset: u64) -> io::Result<Vec<u8>> {
    exactly(read_at_most_cached(file, len, offset)?, len)
}

/// `buf` when it is `len` bytes long, else `UnexpectedEof`.
fn exactly(buf: Vec<u8>, len: usize) -> io::Result<Vec<u8>> {
    match buf.len() == len {
        true => Ok(buf),
        false => Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("{} of {len} bytes", buf.len()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_a_range_and_stops_at_the_end_of_the_file() {
        let mut f = tempfile::tempfile().unwrap();
        let bytes: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        f.write_all(&bytes).unwrap();
        assert_eq!(read_at_most(&f, 300, 1_000).unwrap(), &bytes[1_000..1_300]);
        assert_eq!(read_at_most(&f, 5_000, 9_000).unwrap(), &bytes[9_000..]);
        assert_eq!(read_at_most(&f, 10, 20_000).unwrap(), Vec::<u8>::new());
        assert_eq!(read_at_most(&f, 0, 0).unwrap(), Vec::<u8>::new());
        assert_eq!(read_exact_at(&f, 10_000, 0).unwrap(), bytes);
        assert_eq!(read_exact_at(&f, 2, 9_999).unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn a_cached_read_reads_what_the_page_cache_holds_and_would_block_on_the_rest() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        let bytes: Vec<u8> = (0..(1u32 << 20)).map(|i| (i % 249) as u8).collect();
        f.write_all(&bytes).unwrap();
        f.as_file().sync_all().unwrap(); // clean pages, so the advice below can drop them
        let file = f.as_file();
        // Just written: in the page cache.
        assert_eq!(read_exact_at_cached(file, 4096, 8192).unwrap(), &bytes[8192..12288]);
        assert_eq!(read_exact_at_cached(file, 2, (1 << 20) - 1).unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(read_at_most_cached(file, 10, (1 << 20) - 3).unwrap(), &bytes[(1 << 20) - 3..]);
        // Dropped from the page cache: the read would have to wait on the disk.
        // The kernel may keep a page the advice names (seen once in a whole-suite run): advise again, a
        // bounded number of times, before asserting.
        let mut e = Ok(Vec::new());
        for _ in 0..50 {
            rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::DontNeed).unwrap();
            e = read_exact_at_cached(file, 4096, 500_000);
            if e.is_err() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let e = e.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock, "{e}");
        assert_eq!(
            read_exact_at(file, 4096, 500_000).unwrap(),
            &bytes[500_000..504_096],
            "a blocking read still reads it"
        );
    }
}
