//! `loam-bench s3`: GetObject throughput through the workers' S3 API against reading the same bytes from
//! the local disk, in one run.
//!
//! Set-up: an in-process `loam local` (coordinator and workers on the embedded store, free ports,
//! anonymous read on) under a temp dir, with a test file (default 1 GiB) in a `file://` UFS mounted at
//! `/bench`. A first GET through the object's owner fills its cache (reported as "cold", outside the
//! rounds) and its bytes are checked against the file as they stream; a read of the file warms the OS
//! page cache, so both sides start warm (the worker's page files are in the page cache too after the
//! fill).
//!
//! Each round runs every variant once, interleaved; medians are reported in MB/s (10^6 bytes/s), with
//! each S3 variant's ratio to the local-disk read of the same shape:
//! - local disk, 1 stream: the file read start to end with a 1 MiB buffer;
//! - local disk, N ranges: the file cut into `--range-size` pieces, `--concurrency` read at a time
//!   (positioned reads on blocking threads);
//! - S3 through the owner / through another worker (which fetches from the owner), 1 stream: one
//!   whole-object GET;
//! - the same two endpoints, N ranges: ranged GETs of `--range-size`, `--concurrency` in flight;
//! - through the other worker with `redirect-to-owner` on (switched on that worker for these two variants
//!   only): each GET answered `307` to the owner, which the client follows (1 stream, N ranges).
//!
//! After the table, the ratio: through the other worker / through the owner, proxied and
//! redirected.
//!
//! The client is reqwest, unsigned (anonymous read): SigV4 would add one HMAC chain per request on the
//! client and the worker, a few microseconds against an 8 MiB body.
//!
//! CPU (`crate::cpu`): the cluster runs on the serving runtime in this process, the client on the
//! bench's; each read is sampled around, in CPU seconds per GiB, the workers' and the client's (the local
//! disk reads have no server: their CPU, the kernel's copy included, is the reading threads', so the
//! client's). The ratio is of the totals (server + client), to the local read of the same shape.

use crate::cpu::{self, InProcess};
use crate::median;
use anyhow::{Context, bail};
use clap::Args;
use futures::{StreamExt, TryStreamExt};
use loam_core::size::parse_size;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Flags of `loam-bench s3`.
#[derive(Args, Debug, Clone)]
pub struct S3BenchArgs {
    /// Size of the test object.
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    pub size: u64,
    /// Rounds (each runs every variant once).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Ranged GETs (and local range reads) in flight.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Size of each ranged GET.
    #[arg(long, default_value = "8MiB", value_parser = parse_size)]
    pub range_size: u64,
    /// Workers in the cluster (at least 2, so that one is not the owner).
    #[arg(long, default_value_t = 3)]
    pub workers: u16,
    /// Memory tier of each worker.
    #[arg(long, default_value = "256MiB", value_parser = parse_size)]
    pub memory_size: u64,
    /// Working directory (test file, cluster state); a temp dir by default.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// The variants, in the order each round runs them.
pub const VARIANTS: [&str; 8] = [
    "local disk (1 stream)",
    "local disk (N ranges)",
    "S3 via owner (1 stream)",
    "S3 via owner (N ranges)",
    "S3 via other worker (1 stream)",
    "S3 via other worker (N ranges)",
    "S3 via other worker, 307 to owner (1 stream)",
    "S3 via other worker, 307 to owner (N ranges)",
];

/// What a run measured.
#[derive(Debug, Clone)]
pub struct S3BenchReport {
    /// MB/s of the cold GET through the owner (the cache fill).
    pub cold_mbps: f64,
    /// Median MB/s of each of [`VARIANTS`].
    pub medians: Vec<f64>,
    /// CPU seconds per GiB of the cold GET: (workers, client).
    pub cold_cpu: (f64, f64),
    /// CPU seconds per GiB, over all rounds, of the workers for each of [`VARIANTS`] (0 for the local reads).
    pub server_cpu: Vec<f64>,
    /// CPU seconds per GiB, over all rounds, of the client for each of [`VARIANTS`].
    pub client_cpu: Vec<f64>,
}

impl S3BenchReport {
    /// Server + client CPU seconds per GiB of variant `i`.
    fn total_cpu(&self, i: usize) -> f64 {
        self.server_cpu[i] + self.client_cpu[i]
    }
}

/// Runs the benchmark and prints a table.
pub async fn run(args: S3BenchArgs, serve: &tokio::runtime::Handle) -> anyhow::Result<()> {
    let r = measure(&args, serve).await?;
    let m = &r.medians;
    println!(
        "\nobject {} bytes, {} rounds, {} ranges of {} bytes in flight, medians (MB/s = 10^6 bytes/s; CPU = \
         user + system seconds per GiB read, over all rounds):",
        args.size, args.rounds, args.concurrency, args.range_size
    );
    println!(
        "| variant | MB/s | vs local disk (same shape) | server CPU s/GiB | client CPU s/GiB | CPU vs local disk \
         (same shape) |\n| --- | ---: | ---: | ---: | ---: | ---: |"
    );
    let (cs, cc) = r.cold_cpu;
    println!(
        "| S3 via owner, cold (fills the cache) | {:.0} | {:.2}x | {cs:.2} | {cc:.2} | {} |",
        r.cold_mbps,
        r.cold_mbps / m[0],
        cpu::ratio(cs + cc, r.total_cpu(0))
    );
    for (i, (name, v)) in VARIANTS.iter().zip(m).enumerate() {
        let server = if i < 2 { "—".to_string() } else { format!("{:.2}", r.server_cpu[i]) };
        println!(
            "| {name} | {v:.0} | {:.2}x | {server} | {:.2} | {} |",
            v / m[i % 2],
            r.client_cpu[i],
            cpu::ratio(r.total_cpu(i), r.total_cpu(i % 2))
        );
    }
    println!(
        "\nother worker / owner: proxied {:.2}x (1 stream), {:.2}x (N ranges); redirected {:.2}x (1 stream), \
         {:.2}x (N ranges)",
        m[4] / m[2],
        m[5] / m[3],
        m[6] / m[2],
        m[7] / m[3]
    );
    Ok(())
}

/// Sets the cluster up, runs the rounds, and shuts it down.
/// The cluster runs on `serve` (the client on the caller's runtime), so that their CPU is told apart.
pub async fn measure(args: &S3BenchArgs, serve: &tokio::runtime::Handle) -> anyhow::Result<S3BenchReport> {
    if args.workers < 2 || args.range_size == 0 || args.concurrency == 0 || args.size == 0 {
        bail!("--workers must be at least 2; --range-size, --concurrency and --size more than 0");
    }
    let tmp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let ufs_dir = dir.join("ufs");
    std::fs::create_dir_all(&ufs_dir)?;
    let file = ufs_dir.join("big.bin");
    crate::write_test_file(&file, args.size)?;
    let cluster = serve
        .spawn(loam::local::start(local_args(args.workers, args.memory_size, args.size, &dir.join("cluster"))?))
        .await??;
    let result = rounds(args, &cluster, &ufs_dir, &file).await;
    cluster.shutdown().await;
    result
}

/// `loam local`'s settings for a bench: its defaults (parsed, so a new flag needs no change here), with
/// `workers` workers, free ports, anonymous S3 reads, the data under `data_dir`, and a disk tier that holds
/// a file of `size` bytes twice over. Shared by `s3` and `requests`.
pub(crate) fn local_args(
    workers: u16,
    memory_size: u64,
    size: u64,
    data_dir: &Path,
) -> anyhow::Result<loam::local::LocalArgs> {
    #[derive(clap::Parser)]
    struct Local {
        #[command(flatten)]
        local: loam::local::LocalArgs,
    }
    let cache = (size * 2 + (256 << 20)).to_string();
    let argv = [
        "loam-local",
        "--coordinator-port=0",
        "--worker-http-port=0",
        "--worker-s3-port=0",
        "--s3-anonymous-read=true",
        &format!("--workers={workers}"),
        &format!("--memory-size={memory_size}"),
        &format!("--cache-size={cache}"),
        &format!("--data-dir={}", data_dir.display()),
    ];
    Ok(<Local as clap::Parser>::try_parse_from(argv)?.local)
}

async fn rounds(
    args: &S3BenchArgs,
    cluster: &loam::local::LocalCluster,
    ufs_dir: &Path,
    file: &Path,
) -> anyhow::Result<S3BenchReport> {
    // The admin token mounts; S3 reads go unsigned (anonymous reads are on in `loam local`).
    let admin = loam_testsupport::auth::client_with(&cluster.admin_token);
    let http = loam_testsupport::auth::anonymous_client();
    let mount = serde_json::json!({ "path": "/bench", "ufs": format!("file://{}", ufs_dir.display()) });
    let r = admin.post(format!("{}/api/v1/mount", cluster.coordinator_url)).json(&mount).send().await?;
    if !r.status().is_success() {
        bail!("mounting /bench: HTTP {}: {}", r.status(), r.text().await.unwrap_or_default());
    }
    let uri = format!("file://{}", file.display());
    let ring = cluster.workers[0].state.members.ring();
    let (_, primary) = ring.primary(&uri).context("no worker on the ring")?;
    let owner = cluster.workers.iter().position(|w| w.id == primary.id).context("the owner is not local")?;
    let other = (owner + 1) % cluster.workers.len();
    let url = |i: usize| format!("{}/bench/big.bin", cluster.workers[i].s3_base());
    let size = args.size;

    // Every worker must know the mount before the first GET (they follow the store).
    for i in [owner, other] {
        wait_for(&http, &url(i)).await?;
    }
    let want = std::fs::read(file)?;
    let cpu0 = InProcess::sample()?;
    let t0 = Instant::now();
    let mut body = http.get(url(owner)).send().await?.error_for_status()?.bytes_stream();
    let mut pos = 0;
    // Compared as it streams: collecting 1 GiB first would time the client's buffer growth too.
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        if want.get(pos..pos + chunk.len()) != Some(&chunk[..]) {
            bail!("the cold GET differs from the file in bytes {pos}..{}", pos + chunk.len());
        }
        pos += chunk.len();
    }
    let cold_mbps = size as f64 / t0.elapsed().as_secs_f64() / 1e6;
    let used = InProcess::sample()?.since(cpu0);
    let cold_cpu = (cpu::per_gib(used.server, size), cpu::per_gib(used.client, size));
    if pos != want.len() {
        bail!("the cold GET returned {pos} bytes, the file has {}", want.len());
    }
    drop(want);
    eprintln!("cold GET through the owner (cache fill): {cold_mbps:.1} MB/s");
    local_stream(file.to_path_buf()).await?;

    let mut results: Vec<Vec<f64>> = vec![Vec::new(); VARIANTS.len()];
    let (mut server, mut client) =
        (vec![cpu::Tally::default(); VARIANTS.len()], vec![cpu::Tally::default(); VARIANTS.len()]);
    for round in 0..args.rounds {
        for (i, name) in VARIANTS.iter().enumerate() {
            // Only the last two variants are redirected (by the other worker, to the owner).
            cluster.workers[other].state.redirect_to_owner.store(i >= 6, std::sync::atomic::Ordering::Relaxed);
            let cpu0 = InProcess::sample()?;
            let t0 = Instant::now();
            let n = match i {
                0 => local_stream(file.to_path_buf()).await?,
                1 => local_ranges(file, size, args.range_size, args.concurrency).await?,
                2 | 4 | 6 => get(&http, &url(if i == 2 { owner } else { other }), None).await?,
                _ => {
                    let u = url(if i == 3 { owner } else { other });
                    let ranges = pieces(size, args.range_size);
                    let reads = ranges.map(|r| get(&http, &u, Some(r)));
                    futures::stream::iter(reads).buffer_unordered(args.concurrency).try_fold(0, add).await?
                }
            };
            if n != size {
                bail!("{name}: read {n} bytes, expected {size}");
            }
            let mbps = size as f64 / t0.elapsed().as_secs_f64() / 1e6;
            let used = InProcess::sample()?.since(cpu0);
            eprintln!("round {round}: {name:<32} {mbps:>9.1} MB/s");
            results[i].push(mbps);
            // The local reads have no server; what else this process ran meanwhile is not theirs.
            server[i].add(if i < 2 { 0.0 } else { used.server }, size);
            client[i].add(used.client, size);
        }
    }
    cluster.workers[other].state.redirect_to_owner.store(false, std::sync::atomic::Ordering::Relaxed);
    if args.rounds > 0 && cluster.workers[other].state.metrics.data.redirects.get() == 0 {
        bail!("the redirected variants were not redirected");
    }
    Ok(S3BenchReport {
        cold_mbps,
        medians: results.iter_mut().map(|v| median(v)).collect(),
        cold_cpu,
        server_cpu: server.iter().map(cpu::Tally::per_gib).collect(),
        client_cpu: client.iter().map(cpu::Tally::per_gib).collect(),
    })
}

async fn add(a: u64, b: u64) -> anyhow::Result<u64> {
    Ok(a + b)
}

/// `[start, end)` pieces of `range` bytes covering `size`.
fn pieces(size: u64, range: u64) -> impl Iterator<Item = (u64, u64)> {
    (0..size.div_ceil(range)).map(move |i| (i * range, ((i + 1) * range).min(size)))
}

/// Waits until `url` answers a HEAD with 200 (the mount has reached the worker).
pub(crate) async fn wait_for(http: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    for _ in 0..500 {
        if http.head(url).send().await.is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("{url} never answered 200")
}

/// GETs `url` (bytes `[start, end)` of it when given) and counts the body's bytes.
async fn get(http: &reqwest::Client, url: &str, range: Option<(u64, u64)>) -> anyhow::Result<u64> {
    let mut req = http.get(url);
    if let Some((lo, hi)) = range {
        req = req.header("Range", format!("bytes={lo}-{}", hi - 1));
    }
    let mut body = req.send().await?.error_for_status()?.bytes_stream();
    let mut n = 0u64;
    while let Some(c) = body.next().await {
        n += c?.len() as u64;
    }
    Ok(n)
}

/// Reads `file` start to end with a 1 MiB buffer; the bytes read.
async fn local_stream(file: PathBuf) -> anyhow::Result<u64> {
    tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
        let mut f = std::fs::File::open(file)?;
        let mut buf = vec![0u8; 1 << 20];
        let mut n = 0u64;
        loop {
            match f.read(&mut buf)? {
                0 => return Ok(n),
                k => n += k as u64,
            }
        }
    })
    .await?
    .map_err(Into::into)
}

/// Reads `file` in `range`-byte pieces, `concurrency` at a time on blocking threads; the bytes read.
async fn local_ranges(file: &Path, size: u64, range: u64, concurrency: usize) -> anyhow::Result<u64> {
    let f = std::sync::Arc::new(std::fs::File::open(file)?);
    let reads = pieces(size, range).map(|(lo, hi)| {
        let f = f.clone();
        async move {
            tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
                // One buffer per blocking thread, reused: a fresh 8 MiB buffer per read would cost more
                // in page faults than the copy from the page cache that is measured.
                thread_local!(static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) });
                BUF.with_borrow_mut(|buf| {
                    buf.resize((hi - lo) as usize, 0);
                    f.read_exact_at(buf, lo)?;
                    Ok(buf.len() as u64)
                })
            })
            .await?
            .map_err(anyhow::Error::from)
        }
    });
    futures::stream::iter(reads).buffer_unordered(concurrency).try_fold(0, add).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cover_the_object_once() {
        let p: Vec<_> = pieces(10, 4).collect();
        assert_eq!(p, [(0, 4), (4, 8), (8, 10)]);
        assert_eq!(pieces(8, 4).count(), 2);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_small_run_reads_every_variant_whole() {
        let dir = tempfile::tempdir().unwrap();
        let args = S3BenchArgs {
            size: (3 << 20) + 5,
            rounds: 1,
            concurrency: 3,
            range_size: 1 << 20,
            workers: 2,
            memory_size: 4 << 20,
            dir: Some(dir.path().to_path_buf()),
        };
        let serve = cpu::serve_runtime().unwrap();
        // `measure` fails if a variant reads other than `size` bytes or the cold GET differs from the file.
        let r = measure(&args, serve.handle()).await.unwrap();
        serve.shutdown_background();
        assert_eq!(r.medians.len(), VARIANTS.len());
        assert!(r.cold_mbps > 0.0 && r.medians.iter().all(|m| *m > 0.0), "{r:?}");
        assert_eq!((r.server_cpu.len(), r.client_cpu.len()), (VARIANTS.len(), VARIANTS.len()));
        let cpu = r.server_cpu.iter().chain(&r.client_cpu).chain([&r.cold_cpu.0, &r.cold_cpu.1]);
        assert!(cpu.clone().all(|c| c.is_finite() && *c >= 0.0), "{r:?}");
        assert!(r.server_cpu[..2].iter().all(|c| *c == 0.0), "the local reads have no server: {r:?}");
        assert!(dir.path().join("cluster/worker-1").is_dir(), "the cluster lived under --dir");
    }

    #[tokio::test]
    async fn one_worker_is_refused() {
        let args =
            S3BenchArgs { size: 1, rounds: 1, concurrency: 1, range_size: 1, workers: 1, memory_size: 0, dir: None };
        let serve = cpu::serve_runtime().unwrap();
        let e = measure(&args, serve.handle()).await.unwrap_err();
        serve.shutdown_background();
        assert!(e.to_string().contains("at least 2"), "{e}");
    }
}
