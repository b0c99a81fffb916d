//! `loam-bench …`: benchmarks that measure Loam against a baseline in the same run, with interleaved
//! rounds and medians, so that the ratios hold on whatever machine runs them (results go to
//! BENCHMARKS.md; no timing threshold ever goes into the test suite). A binary of its own, outside the
//! shipped `loam`, built on the `loam` library and the test harness (`loam-testsupport`).
//!
//! - `read`: one large file through an in-process worker against nginx and the local file system.
//! - `load`: distributed load jobs on a real cluster (etcd, a coordinator and three worker processes)
//!   from the moto S3 test server, against a plain parallel copy with the same client library.
//! - `fuse`: fio through the FUSE mount against fio on the same bytes on local disk.
//! - `memory`: a worker's RSS under sustained reads and loads against its memory tier, with Loam's memory
//!   bounds and without them.
//! - `requests`: small random `Range` reads (what one request costs) through a worker's HTTP and S3 APIs
//!   against nginx, from many connections.
//! - `s3`: GetObject through the workers' S3 API (an in-process `loam local`) against reading the same
//!   bytes from the local disk, whole and in concurrent ranges.
//! - `scale`: a thousand stand-in workers on a real etcd: ring build and watch traffic on a client, the
//!   etcd load per 1,000 workers, the file index's memory, and a Coordinator planning a load over 10 M
//!   listed files and a rebalance (the hidden `scale-index` and `scale-coordinator` are its children).
//!
//! `loam-bench loam <args>` (not listed in the help) is the `loam` command itself (`loam::cli::main`):
//! the load benchmark starts its coordinator and workers that way, so they run the code this binary was
//! built from and `cargo build --release -p loam-bench` is all a benchmark needs.

mod cpu;
mod fuse;
mod load;
mod memory;
mod read;
mod requests;
mod s3;
mod scale;

use clap::{Parser, Subcommand};
use std::ffi::OsString;
use std::io::Write;
use std::path::Path;

/// The hidden first argument that runs the `loam` command instead of a benchmark.
const LOAM: &str = "loam";

/// Loam's benchmarks: each measures Loam against a baseline in the same run.
#[derive(Parser, Debug)]
#[command(name = "loam-bench", version, about)]
struct Cli {
    /// More log output (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// The benchmark.
    #[command(subcommand)]
    command: Command,
}

/// Benchmarks.
#[derive(Subcommand, Debug)]
enum Command {
    /// Read one large file through a worker (cold, warm) against nginx and the local file system.
    Read(read::BenchArgs),
    /// Distributed load jobs from S3 (moto) into a 3-worker cluster against a plain parallel copy.
    Load(load::LoadBenchArgs),
    /// A worker's RSS under sustained reads and loads against its memory tier, bounded and unbounded.
    Memory(memory::MemoryBenchArgs),
    /// GetObject through a worker's S3 API (whole and 8 MiB ranges) against the local disk.
    S3(s3::S3BenchArgs),
    /// Small random Range reads through a worker's HTTP and S3 APIs against nginx (requests/s, CPU/request).
    Requests(requests::RequestsArgs),
    /// fio through the FUSE mount (sequential 1 MiB, random 4 KiB and 256 KiB reads, a second-epoch re-read;
    /// queue depth and several jobs on request) against local disk.
    Fuse(fuse::FuseBenchArgs),
    /// A thousand stand-in workers on etcd: ring build, watch traffic, etcd load, file index memory,
    /// and a Coordinator planning a load over 10 M listed files and a rebalance.
    Scale(scale::ScaleBenchArgs),
    /// `scale`'s child that measures the file index in a process of its own.
    #[command(hide = true)]
    ScaleIndex(scale::IndexArgs),
    /// `scale`'s child that runs the Coordinator in a process of its own.
    #[command(hide = true)]
    ScaleCoordinator(scale::CoordinatorArgs),
}

fn main() -> std::process::ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == LOAM) {
        return loam::cli::main(args.into_iter().skip(1));
    }
    let cli = Cli::parse_from(args);
    loam::logging::init(cli.verbose, None);
    // TLS (for S3 over https) needs its crypto provider installed before any HTTP client is built.
    loam_ufs::install_process_defaults();
    // The bench (the client) runs on this runtime; in-process servers on `serve` (see `cpu`).
    let client = tokio::runtime::Builder::new_multi_thread()
        .thread_name(cpu::CLIENT_THREAD)
        .thread_keep_alive(cpu::KEEP_ALIVE)
        .enable_all()
        .build();
    let (rt, serve) = match (client, cpu::serve_runtime()) {
        (Ok(rt), Ok(serve)) => (rt, serve),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let handle = serve.handle().clone();
    let result = rt.block_on(async {
        match cli.command {
            Command::Read(args) => read::run(args, &handle).await,
            Command::Load(args) => load::run(args).await,
            Command::Memory(args) => memory::run(args).await,
            Command::S3(args) => s3::run(args, &handle).await,
            Command::Requests(args) => requests::run(args, &handle).await,
            Command::Fuse(args) => fuse::run(args).await,
            Command::Scale(args) => scale::run(args).await,
            Command::ScaleIndex(args) => scale::run_index_child(args),
            Command::ScaleCoordinator(args) => scale::run_coordinator_child(args).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn load_flags_parse_with_defaults() {
        let cli = Cli::try_parse_from(["loam-bench", "load", "--small-files", "10", "--large-size", "1MiB"]).unwrap();
        let Command::Load(b) = cli.command else { panic!("not bench load") };
        assert_eq!((b.small_files, b.small_size, b.large_files, b.large_size), (10, 4096, 4, 1 << 20));
        assert_eq!((b.rounds, b.concurrency, b.range_size), (1, 32, 4 << 20));
        assert_eq!(b.etcd_bin, Path::new("/usr/bin/etcd"), "the etcd binary is --etcd-bin");
        let cli = Cli::try_parse_from(["loam-bench", "load", "--etcd-bin", "/opt/etcd"]).unwrap();
        let Command::Load(b) = cli.command else { panic!("not bench load") };
        assert_eq!(b.etcd_bin, Path::new("/opt/etcd"));
    }

    #[test]
    fn fuse_flags_parse_with_defaults() {
        let cli = Cli::try_parse_from(["loam-bench", "fuse", "--size", "64MiB"]).unwrap();
        let Command::Fuse(b) = cli.command else { panic!("not bench fuse") };
        assert_eq!((b.size, b.rounds, b.runtime, b.memory_size), (64 << 20, 3, 10, 256 << 20));
    }

    #[test]
    fn memory_flags_parse_with_defaults() {
        let cli = Cli::try_parse_from(["loam-bench", "memory", "--seconds", "5"]).unwrap();
        let Command::Memory(b) = cli.command else { panic!("not bench memory") };
        assert_eq!((b.memory_size, b.seconds, b.readers, b.large_size), (64 << 20, 5, 32, 64 << 20));
    }

    #[test]
    fn medians_take_the_upper_middle() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 3.0);
        assert_eq!(median(&mut []), 0.0);
    }
}
