//! `loam-bench memory`: a worker's resident memory under sustained reads and loads, against its memory
//! tier, with Loam's bounds and without them, in one run.
//!
//! Set-up per variant: etcd, a `loam coordinator --etcd` and one `loam worker --etcd` (this binary's `loam`
//! command) with a small memory tier (`--memory-size`, default 64 MiB) and a disk cache, on free loopback
//! ports; a `file://` UFS of large and small files in the bench's directory, mounted at `/m` (a local UFS
//! answers as fast as the worker can take it, so the worker, not the store, is the bottleneck).
//!
//! For `--duration`, `--readers` clients read whole files through `/v1/range` (a quarter of them slowly,
//! at `--slow-rate`, so their responses stay open and hold what they read ahead), picking files at random
//! so reads are cold and warm; meanwhile a load job of the large files and a free of them run in a loop.
//! The worker's RSS (`VmRSS`) is sampled every 100 ms.
//!
//! Variants: **bounded** is the worker as shipped; **unbounded** is the same binary with what bounds its
//! memory turned off: glibc's default arenas (`MALLOC_ARENA_MAX` = 8 per core) and a read-ahead budget
//! large enough never to limit (`--read-ahead-size 1TiB`: the pages read ahead and the UFS runs read for
//! responses). Page-per-buffer reads and the allocator trimmer cannot be turned off; both variants have them. The table gives each variant's peak and mean
//! RSS, the peak over the tier, and the bytes served per second (so a bound that costs throughput shows).
//!
//! CPU (`crate::cpu`), in CPU seconds per GiB served to the readers: the serving side is the worker and
//! the coordinator processes, the client this process (the readers, the load loop, the RSS sampler),
//! sampled when the readers start and once they have all stopped.

use crate::cpu;
use crate::load::procs;
use anyhow::{Context, bail};
use clap::Args;
use futures::StreamExt;
use loam_core::size::parse_size;
use loam_testsupport::auth::{ALL_ROLES, client_with};
use loam_testsupport::process::Server;
use loam_testsupport::{EtcdServer, free_port};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Flags of `loam-bench memory`.
#[derive(Args, Debug, Clone)]
pub struct MemoryBenchArgs {
    /// The worker's memory tier.
    #[arg(long, default_value = "64MiB", value_parser = parse_size)]
    pub memory_size: u64,
    /// How long each variant runs.
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// Concurrent readers (a quarter of them slow).
    #[arg(long, default_value_t = 32)]
    pub readers: usize,
    /// Bytes per second of a slow reader.
    #[arg(long, default_value = "16MiB", value_parser = parse_size)]
    pub slow_rate: u64,
    /// Large files in the UFS (loaded and freed in a loop, and read).
    #[arg(long, default_value_t = 16)]
    pub large_files: u64,
    /// Size of each large file.
    #[arg(long, default_value = "64MiB", value_parser = parse_size)]
    pub large_size: u64,
    /// Small files in the UFS (read).
    #[arg(long, default_value_t = 1000)]
    pub small_files: u64,
    /// Working directory (the UFS, the processes' data and logs); a temp dir by default.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// etcd binary.
    #[arg(long, default_value = "/usr/bin/etcd")]
    pub etcd_bin: PathBuf,
}

/// The mount point of the UFS.
const MOUNT: &str = "/m";
/// Size of each small file.
const SMALL_SIZE: u64 = 64 << 10;

/// What one variant turns off.
struct Variant {
    name: &'static str,
    /// Environment of the worker (`KEY=value`).
    env: Vec<String>,
    worker_args: Vec<String>,
}

/// One variant's measurements.
#[derive(Debug, Default)]
struct Outcome {
    peak_rss: u64,
    mean_rss: u64,
    served: u64,
    reads: u64,
    loads: u64,
    secs: f64,
    /// CPU seconds of the worker and the coordinator.
    server_cpu: f64,
    /// CPU seconds of this process (the client).
    client_cpu: f64,
}

/// Runs the memory benchmark and prints a table.
pub async fn run(args: MemoryBenchArgs) -> anyhow::Result<()> {
    let tmp = tempfile::Builder::new().prefix("loam-bench-memory-").tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let ufs = dir.join("ufs");
    write_files(&ufs, &args)?;
    let cpus = std::thread::available_parallelism().map(usize::from).unwrap_or(1);
    let variants = [
        Variant { name: "bounded (as shipped)", env: Vec::new(), worker_args: Vec::new() },
        Variant {
            name: "unbounded",
            env: vec![format!("MALLOC_ARENA_MAX={}", 8 * cpus)],
            worker_args: vec!["--read-ahead-size".into(), "1TiB".into()],
        },
    ];
    let mut outcomes = Vec::new();
    for (i, v) in variants.iter().enumerate() {
        let vdir = dir.join(format!("variant-{i}"));
        eprintln!("{}: {} s of reads and loads…", v.name, args.seconds);
        let o = one_variant(&vdir, &ufs, v, &args).await?;
        eprintln!("  peak RSS {} MiB, {} reads, {} loads", o.peak_rss >> 20, o.reads, o.loads);
        outcomes.push(o);
    }
    report(&variants, &outcomes, &args);
    Ok(())
}

/// The large files under `large/` and the small ones under `small/`, made once.
fn write_files(ufs: &Path, args: &MemoryBenchArgs) -> anyhow::Result<()> {
    for (sub, count, size) in [("large", args.large_files, args.large_size), ("small", args.small_files, SMALL_SIZE)] {
        std::fs::create_dir_all(ufs.join(sub))?;
        for i in 0..count {
            let path = ufs.join(sub).join(format!("f{i}"));
            if size == SMALL_SIZE {
                std::fs::write(&path, vec![i as u8; size as usize])?;
            } else {
                crate::write_test_file(&path, size)?;
            }
        }
    }
    Ok(())
}

async fn one_variant(dir: &Path, ufs: &Path, v: &Variant, args: &MemoryBenchArgs) -> anyhow::Result<Outcome> {
    std::fs::create_dir_all(dir)?;
    let etcd = EtcdServer::start_binary(&args.etcd_bin);
    let (cport, wport) = (free_port().to_string(), free_port().to_string());
    let ufs_dir = ufs.display().to_string();
    let cdir = dir.join("coordinator").display().to_string();
    let c_args = ["coordinator", "--etcd", &etcd.endpoint(), "--host", "127.0.0.1", "--port", &cport];
    let c_args: Vec<String> = c_args
        .iter()
        .map(|s| s.to_string())
        .chain(["--data-dir".into(), cdir, "--allow-local-ufs".into(), ufs_dir.clone()])
        .collect();
    let coordinator_proc = procs::loam("coordinator", dir, &c_args)?;
    let coordinator = format!("http://127.0.0.1:{cport}");
    let wdir = dir.join("worker").display().to_string();
    let memory = args.memory_size.to_string();
    let mut w_args: Vec<String> = [
        "worker",
        "--etcd",
        &etcd.endpoint(),
        "--coordinator",
        &coordinator,
        "--host",
        "127.0.0.1",
        "--http-port",
        &wport,
        "--s3-port",
        "0",
        "--data-dir",
        &wdir,
        "--memory-size",
        &memory,
        "--cache-size",
        "64GiB",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    w_args.extend(v.worker_args.iter().cloned());
    let worker = start_with_env(dir, &v.env, &w_args)?;
    let http = client_with(ALL_ROLES);
    wait_online(&http, &coordinator).await?;
    let mount = json!({ "path": MOUNT, "ufs": format!("file://{ufs_dir}") });
    post(&http, &coordinator, "mount", mount).await?;

    let server_cpu =
        || -> std::io::Result<f64> { Ok(cpu::process(worker.pid())? + cpu::process(coordinator_proc.pid())?) };
    let (server0, client0) = (server_cpu()?, cpu::process(std::process::id())?);
    let stop = Arc::new(AtomicBool::new(false));
    let (served, reads, loads) =
        (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let worker_url = format!("http://127.0.0.1:{wport}");
    let mut tasks = Vec::new();
    for r in 0..args.readers {
        let rate = (r % 4 == 0).then_some(args.slow_rate);
        let (http, url, ufs_dir, stop, served, reads) =
            (http.clone(), worker_url.clone(), ufs_dir.clone(), stop.clone(), served.clone(), reads.clone());
        let (large, small) = (args.large_files, args.small_files);
        tasks.push(tokio::spawn(async move {
            let mut x = 0x9e3779b97f4a7c15u64 ^ (r as u64 + 1);
            while !stop.load(Ordering::Relaxed) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let file = if x.is_multiple_of(4) || large == 0 {
                    format!("small/f{}", (x >> 8) % small.max(1))
                } else {
                    format!("large/f{}", (x >> 8) % large)
                };
                let uri = format!("file://{ufs_dir}/{file}");
                let url = format!("{url}/v1/range/{}?ufsFullPath={uri}", loam_core::id::file_id(&uri));
                served.fetch_add(read_whole(&http, &url, rate).await?, Ordering::Relaxed);
                reads.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    {
        let (http, coordinator, stop, loads) = (http.clone(), coordinator.clone(), stop.clone(), loads.clone());
        tasks.push(tokio::spawn(async move {
            let paths = json!([format!("{MOUNT}/large")]);
            while !stop.load(Ordering::Relaxed) {
                let p =
                    post(&http, &coordinator, "load", json!({ "paths": paths, "options": { "sync": true } })).await?;
                if p["state"] != "SUCCEEDED" {
                    bail!("a load did not succeed: {p}");
                }
                post(&http, &coordinator, "free", json!({ "paths": paths, "options": { "sync": true } })).await?;
                loads.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    let t0 = Instant::now();
    let (mut peak, mut sum, mut samples) = (0u64, 0u64, 0u64);
    while t0.elapsed() < Duration::from_secs(args.seconds) {
        let rss = procs::rss(worker.pid())?;
        (peak, sum, samples) = (peak.max(rss), sum + rss, samples + 1);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let secs = t0.elapsed().as_secs_f64();
    for t in tasks {
        t.await??;
    }
    let (server_cpu, client_cpu) = (server_cpu()? - server0, cpu::process(std::process::id())? - client0);
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    Ok(Outcome {
        peak_rss: peak.max(procs::peak_rss(worker.pid())?),
        mean_rss: sum / samples.max(1),
        served: load(&served),
        reads: load(&reads),
        loads: load(&loads),
        secs,
        server_cpu,
        client_cpu,
    })
}

/// `loam <args>` as the worker, with `env` set (through `env`, which `exec`s: the pid stays the worker's).
fn start_with_env(dir: &Path, env: &[String], args: &[String]) -> anyhow::Result<Server> {
    let exe = std::env::current_exe().context("finding the loam-bench binary")?;
    let all: Vec<String> = env
        .iter()
        .cloned()
        .chain([exe.display().to_string(), crate::LOAM.to_string()])
        .chain(args.iter().cloned())
        .collect();
    let log = loam_testsupport::process::log_path(dir, "worker");
    Server::start(Path::new("/usr/bin/env"), &all, &log).map_err(anyhow::Error::msg)
}

/// Reads a whole response, at `rate` bytes per second when given; the bytes read.
async fn read_whole(http: &reqwest::Client, url: &str, rate: Option<u64>) -> anyhow::Result<u64> {
    let r = http.get(url).send().await?;
    if !r.status().is_success() {
        bail!("GET {url}: HTTP {}: {}", r.status(), r.text().await.unwrap_or_default());
    }
    let t0 = Instant::now();
    let mut got = 0u64;
    let mut body = r.bytes_stream();
    while let Some(chunk) = body.next().await {
        got += chunk?.len() as u64;
        if let Some(rate) = rate {
            let due = Duration::from_secs_f64(got as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(t0.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
    }
    Ok(got)
}

async fn wait_online(http: &reqwest::Client, coordinator: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let nodes: serde_json::Value = http.get(format!("{coordinator}/api/v1/nodes")).send().await?.json().await?;
        if nodes["result"].as_array().is_some_and(|l| l.iter().any(|n| n["status"] == "ONLINE")) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the worker is not ONLINE after 60 s: {nodes}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn post(
    http: &reqwest::Client,
    coordinator: &str,
    api: &str,
    body: serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let r = http.post(format!("{coordinator}/api/v1/{api}")).json(&body).send().await?;
    let status = r.status();
    let text = r.text().await?;
    if !status.is_success() {
        bail!("POST /api/v1/{api}: HTTP {status}: {text}");
    }
    Ok(serde_json::from_str(&text)?)
}

fn report(variants: &[Variant], outcomes: &[Outcome], args: &MemoryBenchArgs) {
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!(
        "\n{} s per variant, memory tier {} MiB, {} readers ({} slow at {} MiB/s), loads and frees of {} × {} MiB in a loop\n",
        args.seconds,
        mib(args.memory_size),
        args.readers,
        args.readers.div_ceil(4),
        mib(args.slow_rate),
        args.large_files,
        mib(args.large_size)
    );
    println!(
        "| variant | peak RSS (MiB) | peak over tier (MiB) | mean RSS (MiB) | served MB/s | reads | loads | \
         server CPU s/GiB | client CPU s/GiB |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (v, o) in variants.iter().zip(outcomes) {
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {:.0} | {} | {} | {:.2} | {:.2} |",
            v.name,
            mib(o.peak_rss),
            mib(o.peak_rss.saturating_sub(args.memory_size)),
            mib(o.mean_rss),
            o.served as f64 / o.secs / 1e6,
            o.reads,
            o.loads,
            cpu::per_gib(o.server_cpu, o.served),
            cpu::per_gib(o.client_cpu, o.served)
        );
    }
    if let [bounded, unbounded] = outcomes {
        println!(
            "\nbounded / unbounded: peak RSS {:.2}x, served bytes per second {:.2}x, server CPU per GiB served {}",
            bounded.peak_rss as f64 / unbounded.peak_rss.max(1) as f64,
            (bounded.served as f64 / bounded.secs) / (unbounded.served as f64 / unbounded.secs).max(1.0),
            cpu::ratio(
                cpu::per_gib(bounded.server_cpu, bounded.served),
                cpu::per_gib(unbounded.server_cpu, unbounded.served)
            )
        );
    }
}
