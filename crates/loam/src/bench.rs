//! `loam bench …`: benchmarks that measure Loam against a baseline in the same run, with interleaved
//! rounds and medians, so that the ratios hold on whatever machine runs them (results go to
//! BENCHMARKS.md; no timing threshold ever goes into the test suite).
//!
//! - `read`: one large file through an in-process worker against nginx and the local file system.
//! - `load`: distributed load jobs on a real cluster (etcd, a coordinator and three worker processes)
//!   from the moto S3 test server, against a plain parallel copy with the same client library.

pub mod load;
pub mod read;

/// A free TCP port on loopback (another process may take it before it is used; the benches start once).
pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The median of `v` (the upper one of an even count; 0 when empty); sorts `v`.
pub(crate) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}
