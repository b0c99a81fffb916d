//! `loam-bench fuse`: fio through the FUSE mount against fio on the same bytes on local disk. One
//! file (default 1 GiB) is written to a `file://` UFS, read once through an in-process worker (embedded
//! store) so that the cluster holds it, and mounted in this process with `loam-fuse`. Then the jobs run
//! on the mounted file and on the UFS file itself: sequential 1 MiB reads, random 4 KiB reads and random
//! 256 KiB reads (psync, one job, queue depth 1); with `--iodepth D` (D > 1) random 4 KiB reads with D
//! in flight (libaio, `--direct=1`: the page cache is out of it on both sides); with `--jobs N` (N > 1)
//! random 4 KiB reads from N jobs at once (psync); and the second epoch of a training run: `dd bs=1M`
//! of the file right after a first `dd` read it whole, timed on the second (with the kernel's page
//! cache kept across opens, the mount's second epoch is the page cache's speed, as local disk's is).
//! Rounds are interleaved (every job on both sides once per round) and the medians printed with the
//! ratio FUSE / local.
//!
//! fio drops a file's page cache before each job (its `invalidate=1` default), so the local side reads
//! the disk; on the FUSE side that drops only the kernel's copy of the mounted file, not the worker's
//! cache (its memory tier, and its disk tier through the page cache), which is what the mount serves
//! from. `--memory-size` decides which tier that is: 0 keeps the file in the disk tier only, a size
//! above the file's in memory too. Everything runs on this machine, so the worker, the mount and fio
//! share its cores.
//!
//! CPU (`crate::cpu`), in CPU seconds per GiB read: the serving side of the FUSE jobs is this whole
//! process (the worker and the FUSE session; nothing else runs in it while fio does), sampled around
//! each job (for the second epoch, around the second `dd`); the local jobs have no server (the kernel's
//! work is charged to the reader). The reader (fio or dd), the client, is measured as a waited-for child
//! (`getrusage(RUSAGE_CHILDREN)`); the ratio is of the totals.

use crate::cpu;
use crate::median;
use anyhow::{Context, bail};
use clap::Args;
use futures::StreamExt;
use loam_client::{Client, MembershipView, WorkerEndpoint};
use loam_core::size::parse_size;
use loam_fuse::FuseConfig;
use loam_testsupport::cluster::{Cluster, Options};
use loam_ufs::{Mount, MountTable};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Flags of `loam-bench fuse`.
#[derive(Args, Debug, Clone)]
pub struct FuseBenchArgs {
    /// Size of the test file.
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    pub size: u64,
    /// Rounds (each runs every job on both sides once).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Seconds each random-read job runs (the sequential job reads the whole file once).
    #[arg(long, default_value_t = 10)]
    pub runtime: u64,
    /// Working directory (test file, worker cache, mount point); a temp dir by default.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Memory tier of the worker (0: the file is served from the disk tier only).
    #[arg(long, default_value = "256MiB", value_parser = parse_size)]
    pub memory_size: u64,
    /// Adds random 4 KiB reads with this many in flight (fio libaio, direct); 1 adds nothing.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub iodepth: u32,
    /// Adds random 4 KiB reads from this many fio jobs at once (psync); 1 adds nothing.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub jobs: u32,
    /// Leaves out the second-epoch re-read (`dd bs=1M` of a file just read).
    #[arg(long)]
    pub no_epoch2: bool,
    /// Threads of the mount's FUSE session (`loam fuse --threads`); the mount's default otherwise.
    #[arg(long)]
    pub fuse_threads: Option<usize>,
    /// The mount's `max-background` (`loam fuse --max-background`); the mount's default otherwise.
    #[arg(long)]
    pub max_background: Option<u16>,
    /// fio binary.
    #[arg(long, default_value = "fio")]
    pub fio: PathBuf,
    /// Short-circuit reads of the worker's page files (`false`: every read over HTTP, the baseline).
    #[arg(long, default_value_t = loam_fuse::config::DEFAULT_SHORT_CIRCUIT, action = clap::ArgAction::Set)]
    pub short_circuit: bool,
}

/// How a job reads a file.
#[derive(Clone, Debug)]
enum Reader {
    /// fio with these arguments (engine, depth and jobs included).
    Fio(Vec<String>),
    /// `dd bs=1M` twice, the second timed.
    Epoch2,
}

/// The jobs of a run, in order: (row name, reader).
fn jobs(args: &FuseBenchArgs) -> Vec<(String, Reader)> {
    let fio = |name: &str, a: &[&str]| {
        let sync = ["--ioengine=psync", "--iodepth=1", "--numjobs=1"];
        (name.to_string(), Reader::Fio(sync.iter().chain(a).map(|s| s.to_string()).collect()))
    };
    let mut out = vec![
        fio("sequential read, 1 MiB", &["--rw=read", "--bs=1M"]),
        fio("random read, 4 KiB", &["--rw=randread", "--bs=4k", "--time_based"]),
        fio("random read, 256 KiB", &["--rw=randread", "--bs=256k", "--time_based"]),
    ];
    let random_4k = ["--rw=randread", "--bs=4k", "--time_based"].map(String::from);
    if args.iodepth > 1 {
        let depth = [format!("--iodepth={}", args.iodepth), "--ioengine=libaio".into(), "--direct=1".into()];
        let name = format!("random read, 4 KiB, iodepth {} (libaio, direct)", args.iodepth);
        out.push((
            name,
            Reader::Fio(depth.into_iter().chain(["--numjobs=1".into()]).chain(random_4k.clone()).collect()),
        ));
    }
    if args.jobs > 1 {
        let jobs = ["--ioengine=psync".into(), "--iodepth=1".into(), format!("--numjobs={}", args.jobs)];
        let name = format!("random read, 4 KiB, {} jobs", args.jobs);
        out.push((name, Reader::Fio(jobs.into_iter().chain(random_4k).collect())));
    }
    if !args.no_epoch2 {
        out.push(("second epoch: dd bs=1M of a file just read".into(), Reader::Epoch2));
    }
    out
}

/// One measurement.
#[derive(Clone, Copy, Debug, Default)]
struct Measured {
    mb_per_s: f64,
    iops: f64,
    /// Bytes read.
    bytes: u64,
    /// CPU seconds of the serving side (this process; 0 for the local side).
    server_cpu: f64,
    /// CPU seconds of the reader (fio, dd).
    client_cpu: f64,
}

/// Runs `read`, filling in the CPU seconds of this process (when `served`) and of the waited-for
/// children it ran.
fn with_cpu(served: bool, read: impl FnOnce() -> anyhow::Result<Measured>) -> anyhow::Result<Measured> {
    let (server0, client0) = (cpu::process(std::process::id())?, cpu::children());
    let mut m = read()?;
    let server = cpu::process(std::process::id())? - server0;
    m.server_cpu = if served { server } else { 0.0 };
    m.client_cpu = cpu::children() - client0;
    Ok(m)
}

/// Runs one fio job on `file` and reads its JSON report (of all its jobs together).
fn fio(bin: &Path, file: &Path, size: u64, runtime: u64, job: &[String]) -> anyhow::Result<Measured> {
    let out = std::process::Command::new(bin)
        .arg("--name=bench")
        .arg(format!("--filename={}", file.display()))
        .arg(format!("--size={size}"))
        .arg(format!("--runtime={runtime}"))
        .args(["--readonly", "--group_reporting", "--output-format=json"])
        .args(job)
        .output()
        .with_context(|| format!("running {} (apt-get install fio)", bin.display()))?;
    if !out.status.success() {
        bail!("fio {job:?} on {} failed: {}", file.display(), String::from_utf8_lossy(&out.stderr));
    }
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).context("reading fio's JSON report")?;
    let read = &report["jobs"][0]["read"];
    let (bw, iops) = (read["bw_bytes"].as_f64(), read["iops"].as_f64());
    let bytes = read["io_bytes"].as_u64().unwrap_or_default();
    match (bw, iops, report["jobs"][0]["error"].as_i64()) {
        (Some(bw), Some(iops), Some(0)) => Ok(Measured { mb_per_s: bw / 1e6, iops, bytes, ..Default::default() }),
        _ => bail!("fio {job:?} on {}: unexpected report {}", file.display(), report["jobs"][0]),
    }
}

/// `dd bs=1M` of `file` to /dev/null; the bytes it copied.
fn dd(file: &Path) -> anyhow::Result<u64> {
    let out = std::process::Command::new("dd")
        .arg(format!("if={}", file.display()))
        .args(["of=/dev/null", "bs=1M"])
        .output()
        .context("running dd")?;
    if !out.status.success() {
        bail!("dd of {} failed: {}", file.display(), String::from_utf8_lossy(&out.stderr));
    }
    // dd's last line: "<bytes> bytes (…) copied, …".
    let text = String::from_utf8_lossy(&out.stderr);
    let copied = text.lines().rev().find_map(|l| l.split(' ').next()?.parse().ok());
    copied.with_context(|| format!("dd of {}: no byte count in {text:?}", file.display()))
}

/// The second epoch: `file` read whole by `dd`, then read again and timed (CPU around the second).
fn epoch2(file: &Path, served: bool) -> anyhow::Result<Measured> {
    dd(file)?;
    with_cpu(served, || {
        let start = std::time::Instant::now();
        let bytes = dd(file)?;
        let secs = start.elapsed().as_secs_f64();
        Ok(Measured {
            mb_per_s: bytes as f64 / secs / 1e6,
            iops: bytes as f64 / f64::from(1 << 20) / secs,
            bytes,
            ..Default::default()
        })
    })
}

/// Runs the benchmark and prints a table.
pub async fn run(args: FuseBenchArgs) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let (ufs_dir, mount_point) = (dir.join("ufs"), dir.join("mnt"));
    std::fs::create_dir_all(&ufs_dir)?;
    std::fs::create_dir_all(&mount_point)?;
    let local = ufs_dir.join("big.bin");
    crate::write_test_file(&local, args.size)?;

    // A worker as `loam worker` runs by default, on the embedded store, `/bench` mounted on `<dir>/ufs`.
    let opts = Options {
        mount_path: "/bench".into(),
        dir: Some(dir.clone()),
        ..Options::worker_defaults(args.memory_size, args.size * 2)
    };
    let mut cluster = Cluster::start(opts).await;
    let mount = Mount::new("/bench", &cluster.root, Default::default())?;
    let worker = cluster.worker(0);
    let endpoint = WorkerEndpoint {
        id: worker.id,
        host: "127.0.0.1".into(),
        http_port: worker.http_addr.port(),
        s3_port: 0,
        tls: false,
    };
    let client = Client::new(loam_testsupport::auth::peer_client(), MembershipView::fixed(vec![endpoint], 5), None);

    eprintln!("warming the cluster with the file…");
    let uri = cluster.uri("big.bin");
    let mut body = client.read(&uri, 0, args.size);
    let mut warmed = 0u64;
    while let Some(chunk) = body.next().await {
        warmed += chunk?.len() as u64;
    }
    if warmed != args.size {
        bail!("warming read {warmed} bytes, expected {}", args.size);
    }

    let rt = tokio::runtime::Handle::current();
    let mut fuse_cfg = FuseConfig::new(&mount_point);
    fuse_cfg.threads = args.fuse_threads.unwrap_or(fuse_cfg.threads).max(1);
    fuse_cfg.max_background = args.max_background.unwrap_or(fuse_cfg.max_background).max(1);
    fuse_cfg.short_circuit = args.short_circuit;
    let table = Arc::new(MountTable::from_mounts([mount]));
    let mounted = tokio::task::spawn_blocking(move || loam_fuse::mount(client, table, &fuse_cfg, rt)).await??;
    let fused = mount_point.join("bench/big.bin");

    let jobs = jobs(&args);
    let mut results = vec![(Vec::new(), Vec::new()); jobs.len()];
    let outcome: anyhow::Result<()> = async {
        for round in 0..args.rounds {
            for (i, (name, reader)) in jobs.iter().enumerate() {
                for (side, file) in [("fuse", &fused), ("local", &local)] {
                    let (bin, file, reader) = (args.fio.clone(), file.clone(), reader.clone());
                    let (size, runtime, served) = (args.size, args.runtime, side == "fuse");
                    let m = tokio::task::spawn_blocking(move || match &reader {
                        Reader::Fio(job) => with_cpu(served, || fio(&bin, &file, size, runtime, job)),
                        Reader::Epoch2 => epoch2(&file, served),
                    })
                    .await??;
                    eprintln!("round {round}: {name:<48} {side:<5} {:>9.1} MB/s {:>10.0} IOPS", m.mb_per_s, m.iops);
                    let r = &mut results[i];
                    if side == "fuse" { r.0.push(m) } else { r.1.push(m) }
                }
            }
        }
        Ok(())
    }
    .await;
    let peak = mounted.metrics().peak_reads_in_flight();
    tokio::task::spawn_blocking(move || mounted.unmount()).await??;
    cluster.kill_worker(0).await;
    outcome?;

    println!(
        "\nfile {} bytes, {} rounds, random jobs {} s each, medians (MB/s = 10^6 bytes/s):",
        args.size, args.rounds, args.runtime
    );
    println!(
        "(CPU = user + system seconds per GiB read, over all rounds: FUSE server = worker + FUSE session, fio = the \
         client, dd for the second epoch; IOPS of dd = 1 MiB blocks per second)"
    );
    println!(
        "| pattern | FUSE MB/s | FUSE IOPS | local MB/s | local IOPS | FUSE / local | FUSE server CPU s/GiB | FUSE \
         fio CPU s/GiB | local fio CPU s/GiB | CPU FUSE / local |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for ((name, _), (fuse, local)) in jobs.iter().zip(results) {
        let med = |v: &[Measured], f: fn(&Measured) -> f64| median(&mut v.iter().map(f).collect::<Vec<_>>());
        let (fm, fi) = (med(&fuse, |m| m.mb_per_s), med(&fuse, |m| m.iops));
        let (lm, li) = (med(&local, |m| m.mb_per_s), med(&local, |m| m.iops));
        let gib = |v: &[Measured], f: fn(&Measured) -> f64| {
            cpu::per_gib(v.iter().map(f).sum(), v.iter().map(|m| m.bytes).sum())
        };
        let (fs, fc, lc) = (gib(&fuse, |m| m.server_cpu), gib(&fuse, |m| m.client_cpu), gib(&local, |m| m.client_cpu));
        println!(
            "| {name} | {fm:.0} | {fi:.0} | {lm:.0} | {li:.0} | {:.2}x | {fs:.2} | {fc:.2} | {lc:.2} | {} |",
            fm / lm,
            cpu::ratio(fs + fc, lc)
        );
    }
    println!("the most reads the mount had in flight at once: {peak} (loam_fuse_reads_in_flight_peak)");
    Ok(())
}
