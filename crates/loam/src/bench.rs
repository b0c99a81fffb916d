//! `loam bench …`: benchmarks that measure Loam against a baseline in the same run, with interleaved
//! rounds and medians, so that the ratios hold on whatever machine runs them (results go to
//! BENCHMARKS.md; no timing threshold ever goes into the test suite).
//!
//! - `read`: one large file through an in-process worker against nginx and the local file system.
//! - `load`: distributed load jobs on a real cluster (etcd, a coordinator and three worker processes)
//!   from the moto S3 test server, against a plain parallel copy with the same client library.
//! - `fuse`: fio through the FUSE mount against fio on the same bytes on local disk.
//! - `s3`: GetObject through the workers' S3 API (an in-process `loam local`) against reading the same
//!   bytes from the local disk, whole and in concurrent ranges.

pub mod fuse;
pub mod load;
pub mod read;
pub mod s3;

use std::io::Write;
use std::path::Path;

/// A free TCP port on loopback (another process may take it before it is used; the benches start once).
pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The median of `v` (the upper one of an even count; 0 when empty); sorts `v`.
pub(crate) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

/// Writes `size` pseudo-random bytes (xorshift, so not compressible) to `path`, unless a file of that
/// size is there already (a rerun with the same `--dir` reuses it).
pub(crate) fn write_test_file(path: &Path, size: u64) -> std::io::Result<()> {
    if std::fs::metadata(path).is_ok_and(|m| m.len() == size) {
        return Ok(());
    }
    eprintln!("writing a {size} byte test file…");
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut block = vec![0u8; 1 << 20];
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let mut left = size;
    while left > 0 {
        for b in block.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b.copy_from_slice(&x.to_le_bytes()[..b.len()]);
        }
        let n = left.min(block.len() as u64) as usize;
        f.write_all(&block[..n])?;
        left -= n as u64;
    }
    f.flush()
}
