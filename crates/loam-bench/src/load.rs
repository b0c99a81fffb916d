//! `loam-bench load`: distributed load jobs against a plain parallel copy of the same bytes, in one run.
//!
//! Set-up: moto (the S3 test server) and etcd (both `loam_testsupport`'s), a `loam coordinator --etcd`
//! and three `loam worker --etcd` processes (this binary's `loam` command, `procs`), all on free loopback
//! ports, the processes' data and logs under a temp dir. Two data sets are
//! uploaded to a bucket with OpenDAL — many small objects and a few large ones (`data`) — and the bucket
//! is mounted at `/bench`.
//!
//! Each round runs, per data set: (a) the baseline, listing the prefix and reading every object with
//! `concurrency` OpenDAL reads in flight, the same client library the workers use; (b) `POST
//! /api/v1/load` with `sync: true` on the set's cluster path, timed from the request to the answer (the
//! job's scheduling, the workers' UFS reads and cache writes included), then checked: `SUCCEEDED`, every
//! file and byte loaded; (c) `POST /api/v1/free` (sync) so the next round starts cold. Medians over the
//! rounds are reported, as files/s, MB/s (10^6 bytes/s) and job/baseline ratios, with the coordinator's
//! and the workers' peak RSS (`VmHWM`) during the jobs.
//!
//! `--pin-s3-cpus` gives the S3 server CPUs of its own (`pinning`), as a remote store would have; `--dir`
//! puts the processes' data (the S3 server's objects and the workers' caches) on a file system of choice.
//!
//! CPU (`crate::cpu`), in CPU seconds per GiB copied or loaded, sampled around the copy and around the
//! job: Loam's side is the coordinator and worker processes, the client this process (OpenDAL's reads in
//! the copy; only the request in the job). The S3 server, which serves both the same requests, is not
//! counted. The ratio is of the totals (Loam + this process) of the job to the copy's.

mod data;
mod pinning;
pub(crate) mod procs;

use crate::cpu;
use anyhow::{Context, bail};
use clap::Args;
use data::{Copied, DataSet};
use loam_core::job_api::{FreeProgress, LoadProgress};
use loam_core::path::UfsUri;
use loam_core::size::parse_size;
use loam_testsupport::process::Server;
use loam_testsupport::{EtcdServer, S3TestServer, free_port};
use loam_ufs::OpendalUfs;
use pinning::Pinning;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Flags of `loam-bench load`.
#[derive(Args, Debug, Clone)]
pub struct LoadBenchArgs {
    /// Objects in the small-file data set (0 skips it).
    #[arg(long, default_value_t = 20_000)]
    pub small_files: u64,
    /// Size of each small object.
    #[arg(long, default_value = "4KiB", value_parser = parse_size)]
    pub small_size: u64,
    /// Objects in the large-file data set (0 skips it).
    #[arg(long, default_value_t = 4)]
    pub large_files: u64,
    /// Size of each large object.
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    pub large_size: u64,
    /// Rounds (each runs the baseline and the job once per data set).
    #[arg(long, default_value_t = 1)]
    pub rounds: usize,
    /// Reads in flight in the baseline copy.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Range size of the baseline's reads of large objects (the worker reads the UFS in 4 MiB runs).
    #[arg(long, default_value = "4MiB", value_parser = parse_size)]
    pub range_size: u64,
    /// Files per batch of the load job (0: the coordinator's default).
    #[arg(long, default_value_t = 0)]
    pub batch_size: u64,
    /// Working directory (process data and logs); a temp dir by default.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// etcd binary (`--etcd` is the global flag naming a cluster's endpoints).
    #[arg(long, default_value = "/usr/bin/etcd")]
    pub etcd_bin: PathBuf,
    /// Serve S3 with this `s3s-fs` binary instead of moto: real ranged reads, so 1 GiB objects are
    /// measurable (`cargo install s3s-fs@0.14.1 --features binary`).
    #[arg(long)]
    pub s3s_fs: Option<PathBuf>,
    /// Runs the S3 server on these CPUs (`0`, `0-1`, ...) and everything else on the others, as a remote
    /// store would be: the cache's work then cannot slow the server it is measured against (`taskset`).
    #[arg(long)]
    pub pin_s3_cpus: Option<String>,
}

/// The bucket the data sets live in.
const BUCKET: &str = "loam-bench";
/// Data set `x` is mounted at `/bench-x`.
const MOUNT_PREFIX: &str = "/bench-";
/// Workers in the cluster.
const WORKERS: usize = 3;

/// The S3 server the data sets live on.
enum S3Server {
    /// moto, `loam_testsupport`'s S3 test server.
    Moto(S3TestServer),
    /// s3s-fs (`--s3s-fs`), on a port of its own.
    S3sFs { _server: Server, port: u16 },
}

impl S3Server {
    /// Starts the server, on the CPUs `pin` gives it if any, with [`BUCKET`] made.
    fn start(dir: &Path, s3s_fs: Option<&Path>, pin: Option<&Pinning>) -> anyhow::Result<Self> {
        Ok(match s3s_fs {
            Some(bin) => {
                let port = free_port();
                // s3s-fs's buckets are the directories under its root at its start.
                Self::S3sFs { _server: procs::start_s3s_fs(dir, bin, port, BUCKET, pin)?, port }
            }
            None => {
                let moto = S3TestServer::start_on_cpus(pin.map(|p| p.s3.as_str()));
                moto.create_bucket(BUCKET);
                Self::Moto(moto)
            }
        })
    }

    /// Mount options that reach it.
    fn options(&self) -> BTreeMap<String, String> {
        match self {
            Self::Moto(m) => m.mount_options(),
            Self::S3sFs { port, .. } => [
                ("s3a.accessKeyId", "loam-bench".to_string()),
                ("s3a.secretKey", "loam-bench".to_string()),
                ("alluxio.underfs.s3.endpoint", format!("http://127.0.0.1:{port}")),
                ("alluxio.underfs.s3.endpoint.region", "us-east-1".to_string()),
                ("alluxio.underfs.s3.disable.dns.buckets", "true".to_string()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        }
    }
}

/// The cluster: field order is drop order (workers, coordinator, etcd, the S3 server).
struct Cluster {
    workers: Vec<Server>,
    coordinator: Server,
    _etcd: EtcdServer,
    s3: S3Server,
    coordinator_url: String,
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

impl Cluster {
    /// Starts moto, etcd, the coordinator and the workers (each with `cache_size` of disk cache).
    async fn start(
        dir: &Path,
        etcd_bin: &Path,
        s3s_fs: Option<&Path>,
        pin: Option<&Pinning>,
        cache_size: u64,
        http: &reqwest::Client,
    ) -> anyhow::Result<Self> {
        let s3 = S3Server::start(dir, s3s_fs, pin)?;
        let etcd = EtcdServer::start_binary(etcd_bin);
        let etcd_url = etcd.endpoint();
        let port = free_port().to_string();
        let cdir = dir.join("coordinator").display().to_string();
        let args = ["coordinator", "--etcd", &etcd_url, "--host", "127.0.0.1", "--port", &port, "--data-dir", &cdir];
        let coordinator = procs::loam("coordinator", dir, &strings(&args))?;
        let coordinator_url = format!("http://127.0.0.1:{port}");
        let mut workers = Vec::new();
        for i in 0..WORKERS {
            let wdir = dir.join(format!("worker-{i}")).display().to_string();
            let (port, cache) = (free_port().to_string(), cache_size.to_string());
            let args = [
                "worker",
                "--etcd",
                &etcd_url,
                "--coordinator",
                &coordinator_url,
                "--host",
                "127.0.0.1",
                "--http-port",
                &port,
                "--s3-port",
                "0",
                "--data-dir",
                &wdir,
                "--cache-size",
                &cache,
                "--max-age",
                "3600",
            ];
            workers.push(procs::loam(&format!("worker-{i}"), dir, &strings(&args))?);
        }
        let c = Self { workers, coordinator, _etcd: etcd, s3, coordinator_url };
        c.wait_online(http).await?;
        Ok(c)
    }

    async fn wait_online(&self, http: &reqwest::Client) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let nodes: serde_json::Value =
                http.get(format!("{}/api/v1/nodes", self.coordinator_url)).send().await?.json().await?;
            let online = nodes["result"]
                .as_array()
                .map(|l| l.iter().filter(|n| n["status"] == "ONLINE").count())
                .unwrap_or_default();
            if online == WORKERS {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{online} of {WORKERS} workers ONLINE after 60 s: {nodes}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Resets every process's peak RSS (where the kernel allows it).
    fn reset_peaks(&self) {
        for p in self.workers.iter().chain([&self.coordinator]) {
            if let Err(e) = procs::reset_peak_rss(p.pid()) {
                eprintln!("cannot reset the peak RSS of pid {} ({e}); peaks are since start", p.pid());
            }
        }
    }

    /// CPU seconds of the coordinator and the workers together.
    fn cpu(&self) -> anyhow::Result<f64> {
        let mut total = 0.0;
        for p in self.workers.iter().chain([&self.coordinator]) {
            total += cpu::process(p.pid())?;
        }
        Ok(total)
    }

    /// The coordinator's peak RSS and the largest of the workers'.
    fn peaks(&self) -> anyhow::Result<(u64, u64)> {
        let mut worker = 0;
        for w in &self.workers {
            worker = worker.max(procs::peak_rss(w.pid())?);
        }
        Ok((procs::peak_rss(self.coordinator.pid())?, worker))
    }

    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        http: &reqwest::Client,
        api: &str,
        body: serde_json::Value,
    ) -> anyhow::Result<T> {
        let r = http.post(format!("{}/api/v1/{api}", self.coordinator_url)).json(&body).send().await?;
        let status = r.status();
        let text = r.text().await?;
        if !status.is_success() {
            bail!("POST /api/v1/{api}: HTTP {status}: {text}");
        }
        serde_json::from_str(&text).with_context(|| format!("POST /api/v1/{api} answered {text}"))
    }
}

/// One round's measurements of one data set.
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    copy_secs: f64,
    job_secs: f64,
    job_elapsed_ms: u64,
    coordinator_peak: u64,
    worker_peak: u64,
    /// CPU seconds of this process during the copy.
    copy_client_cpu: f64,
    /// CPU seconds of the coordinator and the workers during the job.
    job_loam_cpu: f64,
    /// CPU seconds of this process during the job.
    job_client_cpu: f64,
}

/// Runs the load benchmark and prints a table.
pub async fn run(args: LoadBenchArgs) -> anyhow::Result<()> {
    let tmp = tempfile::Builder::new().prefix("loam-bench-load-").tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let sets: Vec<DataSet> = [
        DataSet { name: "small", prefix: "small", count: args.small_files, size: args.small_size },
        DataSet { name: "large", prefix: "large", count: args.large_files, size: args.large_size },
    ]
    .into_iter()
    .filter(|s| s.count > 0)
    .collect();
    let total: u64 = sets.iter().map(DataSet::bytes).sum();
    // Any one worker may be handed every file: room for all of it, plus the pages' overhead.
    let cache_size = total + total / 4 + (256 << 20);
    let http = loam_testsupport::auth::client_with(loam_testsupport::auth::ALL_ROLES);
    let pin = match &args.pin_s3_cpus {
        Some(list) => {
            let cpus = std::thread::available_parallelism().map(usize::from).unwrap_or(1);
            let pin = Pinning::new(list, cpus)?;
            pin.pin_self()?;
            eprintln!("S3 server on CPUs {}, everything else on CPUs {}", pin.s3, pin.rest);
            Some(pin)
        }
        None => None,
    };
    eprintln!("starting moto, etcd, a coordinator and {WORKERS} workers in {}…", dir.display());
    let cluster = Cluster::start(&dir, &args.etcd_bin, args.s3s_fs.as_deref(), pin.as_ref(), cache_size, &http).await?;
    let root = format!("s3://{BUCKET}");
    let ufs = OpendalUfs::new(&UfsUri::parse(&root)?, &cluster.s3.options())?;
    for set in &sets {
        // Large objects are held in memory while they upload (here and in moto): two at a time.
        let parallel = if set.size >= 64 << 20 { 2 } else { args.concurrency };
        let took = data::upload(&ufs, &root, set, parallel).await?;
        eprintln!("uploaded {} × {} bytes ({}) in {:.1} s", set.count, set.size, set.name, took.as_secs_f64());
    }
    // One mount per data set, rooted at its prefix: a job then stats the mount root, never a directory
    // key (s3s-fs answers a HEAD of a "directory" with a 500).
    for set in &sets {
        let ufs_root = format!("{root}/{}/", set.prefix);
        let mount = json!({ "path": mount_path(set), "ufs": ufs_root, "options": cluster.s3.options() });
        let _: serde_json::Value = cluster.post(&http, "mount", mount).await?;
    }

    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); sets.len()];
    for round in 0..args.rounds {
        for (i, set) in sets.iter().enumerate() {
            let s = one_round(&cluster, &http, &ufs, &root, set, &args).await?;
            eprintln!(
                "round {round}: {:<5} copy {:.2} s, job {:.2} s (job's own {:.2} s), peak RSS coordinator {} MiB, \
                 worker {} MiB",
                set.name,
                s.copy_secs,
                s.job_secs,
                s.job_elapsed_ms as f64 / 1e3,
                s.coordinator_peak >> 20,
                s.worker_peak >> 20
            );
            samples[i].push(s);
        }
    }
    report(&sets, &samples, &args);
    Ok(())
}

async fn one_round(
    cluster: &Cluster,
    http: &reqwest::Client,
    ufs: &OpendalUfs,
    root: &str,
    set: &DataSet,
    args: &LoadBenchArgs,
) -> anyhow::Result<Sample> {
    let me = || cpu::process(std::process::id());
    let client0 = me()?;
    let t0 = Instant::now();
    let copied = data::copy(ufs, root, set, args.concurrency, args.range_size).await?;
    let copy_secs = t0.elapsed().as_secs_f64();
    let copy_client_cpu = me()? - client0;
    let want = Copied { files: set.count, bytes: set.bytes() };
    if (copied.files, copied.bytes) != (want.files, want.bytes) {
        bail!("the copy of {} read {copied:?}, expected {want:?}", set.name);
    }
    let path = mount_path(set);
    cluster.reset_peaks();
    let (loam0, client0) = (cluster.cpu()?, me()?);
    let t0 = Instant::now();
    let options = json!({ "sync": true, "batchSize": args.batch_size });
    let p: LoadProgress = cluster.post(http, "load", json!({ "paths": [path], "options": options })).await?;
    let job_secs = t0.elapsed().as_secs_f64();
    let (job_loam_cpu, job_client_cpu) = (cluster.cpu()? - loam0, me()? - client0);
    let (coordinator_peak, worker_peak) = cluster.peaks()?;
    if p.state != "SUCCEEDED" || p.loaded_non_empty_files != set.count || p.loaded_bytes != set.bytes() {
        bail!("the load of {path} did not load everything: {p:?}");
    }
    let f: FreeProgress = cluster.post(http, "free", json!({ "paths": [path], "options": { "sync": true } })).await?;
    if f.state != "SUCCEEDED" || f.freed_files != set.count {
        bail!("the free of {path} did not free everything: {f:?}");
    }
    Ok(Sample {
        copy_secs,
        job_secs,
        job_elapsed_ms: p.time_elapsed_milliseconds,
        coordinator_peak,
        worker_peak,
        copy_client_cpu,
        job_loam_cpu,
        job_client_cpu,
    })
}

/// The cluster path a data set is mounted at.
fn mount_path(set: &DataSet) -> String {
    format!("{MOUNT_PREFIX}{}", set.prefix)
}

fn report(sets: &[DataSet], samples: &[Vec<Sample>], args: &LoadBenchArgs) {
    let med = |v: &[Sample], f: fn(&Sample) -> f64| crate::median(&mut v.iter().map(f).collect::<Vec<_>>());
    println!(
        "\n{} workers, {} round(s), medians; baseline: list + {} concurrent OpenDAL reads ({} byte ranges)",
        WORKERS, args.rounds, args.concurrency, args.range_size
    );
    println!("CPU = user + system seconds per GiB copied or loaded, over all rounds (the S3 server's not counted)");
    println!(
        "| data set | variant | files/s | MB/s | job / baseline | coordinator peak RSS | worker peak RSS | Loam CPU \
         s/GiB | client CPU s/GiB | CPU job / baseline |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (set, v) in sets.iter().zip(samples) {
        let label = format!("{} × {}", set.count, human(set.size));
        let copy = med(v, |s| s.copy_secs);
        let job = med(v, |s| s.job_secs);
        let own = med(v, |s| s.job_elapsed_ms as f64 / 1e3);
        let cpeak = v.iter().map(|s| s.coordinator_peak).max().unwrap_or_default();
        let wpeak = v.iter().map(|s| s.worker_peak).max().unwrap_or_default();
        let (n, b) = (set.count as f64, set.bytes() as f64);
        // Over all rounds (a tick is 10 ms; a median of few-tick rounds is coarse).
        let gib = |f: fn(&Sample) -> f64| cpu::per_gib(v.iter().map(f).sum(), set.bytes() * v.len() as u64);
        let (copy_cpu, loam_cpu, job_client) =
            (gib(|s| s.copy_client_cpu), gib(|s| s.job_loam_cpu), gib(|s| s.job_client_cpu));
        println!("| {label} | plain copy | {} | {:.1} | | | | — | {copy_cpu:.2} | |", rate(n / copy), b / copy / 1e6);
        println!(
            "| {label} | load job | {} | {:.1} | {:.2}x | {} MiB | {} MiB | {loam_cpu:.2} | {job_client:.2} | {} |",
            rate(n / job),
            b / job / 1e6,
            copy / job,
            cpeak >> 20,
            wpeak >> 20,
            cpu::ratio(loam_cpu + job_client, copy_cpu)
        );
        println!(
            "| {label} | load job (its own elapsed time) | {} | {:.1} | {:.2}x | | | | | |",
            rate(n / own),
            b / own / 1e6,
            copy / own
        );
    }
}

/// Files per second: whole above 10, else two decimals (a few large files take seconds each).
fn rate(x: f64) -> String {
    if x >= 10.0 { format!("{x:.0}") } else { format!("{x:.2}") }
}

/// `4KiB`, `1GiB`, or bytes.
fn human(n: u64) -> String {
    match n {
        n if n >= 1 << 30 && n % (1 << 30) == 0 => format!("{}GiB", n >> 30),
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{}MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{}KiB", n >> 10),
        n => format!("{n}B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_print_in_their_largest_exact_unit() {
        assert_eq!(human(4096), "4KiB");
        assert_eq!(human(1 << 30), "1GiB");
        assert_eq!(human(3 << 20), "3MiB");
        assert_eq!(human(1000), "1000B");
    }
}
