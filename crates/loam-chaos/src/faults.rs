//! The faults, one at a time: each is injected, held for a few seconds, healed, and followed by a pause
//! to settle; the soak records the window it spans so the report can put every read and job in it.
//!
//! | fault | inject | heal |
//! | --- | --- | --- |
//! | `worker-kill` | `kill -9` of worker 1 or 2 in turn (worker 0 is the S3 readers' fixed worker) | start it again (same identity and cache) |
//! | `coordinator-kill` | `kill -9` of the Coordinator while a load runs | start it again (same data directory) |
//! | `etcd-kill` | `kill -9` of etcd | start it again on the same data directory |
//! | `etcd-stop` | `SIGSTOP` of etcd | `SIGCONT` |
//! | `disk-full` | fill a worker's cache tmpfs to ENOSPC with a file of its own | remove that file |
//! | `page-flip` | flip one byte in up to 8 page files of a worker's cache | nothing: a corrupt page must never be served |
//! | `cache-dir-removed` | `rm -rf` a worker's cache directory | nothing: the worker must notice and re-initialise it |
//! | `ufs-rewrite` | replace files of the UFS with new versions (different sizes), every 300 ms | stop rewriting |
//!
//! The faults on one worker's disk rotate over the three workers. The hold of a kill is longer than the
//! lease TTL, so the ring loses the worker and jobs must re-plan.

use crate::Rng;
use crate::cluster::Cluster;
use crate::data::Files;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The faults, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    WorkerKill,
    CoordinatorKill,
    EtcdKill,
    EtcdStop,
    DiskFull,
    PageFlip,
    CacheDirRemoved,
    UfsRewrite,
}

impl Fault {
    pub const ALL: [Fault; 8] = [
        Fault::WorkerKill,
        Fault::CoordinatorKill,
        Fault::EtcdKill,
        Fault::EtcdStop,
        Fault::DiskFull,
        Fault::PageFlip,
        Fault::CacheDirRemoved,
        Fault::UfsRewrite,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::WorkerKill => "worker-kill",
            Fault::CoordinatorKill => "coordinator-kill",
            Fault::EtcdKill => "etcd-kill",
            Fault::EtcdStop => "etcd-stop",
            Fault::DiskFull => "disk-full",
            Fault::PageFlip => "page-flip",
            Fault::CacheDirRemoved => "cache-dir-removed",
            Fault::UfsRewrite => "ufs-rewrite",
        }
    }

    /// Whether a fault may rightly leave a loaded file uncached on its owner: the cache lost pages (a kill,
    /// a corrupt page dropped, a removed directory), the file changed (a rewrite), or the cache shrank (a
    /// full disk lowers the directory's capacity to the room left and evicts, as issue 13 item 2 asks, so
    /// a load's later files evict its earlier ones; each was on disk when the load counted it).
    pub fn drops_cache(self) -> bool {
        matches!(
            self,
            Fault::WorkerKill | Fault::PageFlip | Fault::CacheDirRemoved | Fault::UfsRewrite | Fault::DiskFull
        )
    }
}

/// What the soak tells a fault.
pub struct Ctx<'a> {
    pub cluster: &'a mut Cluster,
    pub files: &'a Files,
    pub rng: &'a mut Rng,
    pub hold: Duration,
    /// How many times this fault ran before (picks the worker).
    pub round: usize,
    /// Whether a load is running (the Coordinator fault waits for one).
    pub load_running: &'a AtomicBool,
}

/// Injects `fault`, holds it, heals it; what it did (or `Err` when it could not run here, saying why).
pub fn run(fault: Fault, ctx: Ctx<'_>) -> anyhow::Result<String> {
    let n = ctx.cluster.workers.len();
    let any_worker = ctx.round % n;
    match fault {
        Fault::WorkerKill => {
            // Worker 0 is the S3 readers' own worker: its loss is not a fault the readers can ride out.
            let i = 1 + ctx.round % (n - 1);
            ctx.cluster.kill_worker(i);
            std::thread::sleep(ctx.hold);
            ctx.cluster.start_worker(i)?;
            Ok(format!("worker {i} killed for {:?}", ctx.hold))
        }
        Fault::CoordinatorKill => {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !ctx.load_running.load(Ordering::SeqCst) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let mid_job = ctx.load_running.load(Ordering::SeqCst);
            ctx.cluster.kill_coordinator();
            std::thread::sleep(ctx.hold);
            ctx.cluster.start_coordinator()?;
            Ok(format!(
                "coordinator killed {} for {:?}",
                if mid_job { "mid-load" } else { "(no load running)" },
                ctx.hold
            ))
        }
        Fault::EtcdKill => {
            ctx.cluster.etcd.stop();
            std::thread::sleep(ctx.hold);
            ctx.cluster.etcd.start_again();
            Ok(format!("etcd killed for {:?}", ctx.hold))
        }
        Fault::EtcdStop => {
            let pid = ctx.cluster.etcd_pid().ok_or_else(|| anyhow::anyhow!("etcd is not running"))?.to_string();
            signal("-STOP", &pid)?;
            std::thread::sleep(ctx.hold);
            signal("-CONT", &pid)?;
            Ok(format!("etcd stopped for {:?}", ctx.hold))
        }
        Fault::DiskFull => {
            anyhow::ensure!(ctx.cluster.tmpfs, "skipped: the caches are not on tmpfs mounts (not root)");
            let filler = ctx.cluster.workers[any_worker].cache_fs.join("filler");
            let filled = fill(&filler);
            std::thread::sleep(ctx.hold);
            let _ = std::fs::remove_file(&filler);
            Ok(format!("worker {any_worker}'s cache disk filled ({} MiB written) for {:?}", filled >> 20, ctx.hold))
        }
        Fault::PageFlip => {
            let dir = ctx.cluster.workers[any_worker].cache_dir();
            let mut pages = page_files(&dir);
            let mut flipped = 0;
            while flipped < 8 && !pages.is_empty() {
                let p = pages.swap_remove(ctx.rng.below(pages.len()));
                flipped += usize::from(flip_byte(&p, ctx.rng).is_ok());
            }
            std::thread::sleep(ctx.hold);
            Ok(format!("{flipped} page files of worker {any_worker} had a byte flipped"))
        }
        Fault::CacheDirRemoved => {
            let dir = ctx.cluster.workers[any_worker].cache_dir();
            std::fs::remove_dir_all(&dir)?;
            std::thread::sleep(ctx.hold);
            Ok(format!("worker {any_worker}'s cache directory removed"))
        }
        Fault::UfsRewrite => {
            let end = Instant::now() + ctx.hold;
            let mut rewrites = 0;
            while Instant::now() < end {
                ctx.files.rewrite(ctx.rng.below(ctx.files.count()))?;
                rewrites += 1;
                std::thread::sleep(Duration::from_millis(300));
            }
            Ok(format!("{rewrites} UFS files replaced by new versions"))
        }
    }
}

fn signal(sig: &str, pid: &str) -> anyhow::Result<()> {
    anyhow::ensure!(Command::new("kill").args([sig, pid]).status()?.success(), "kill {sig} {pid}");
    Ok(())
}

/// Writes `path` until the file system is full; the bytes written.
fn fill(path: &Path) -> u64 {
    let Ok(mut f) = std::fs::File::create(path) else { return 0 };
    let block = vec![0xa5u8; 1 << 16];
    let mut written = 0u64;
    while let Ok(n) = f.write(&block) {
        if n == 0 {
            break;
        }
        written += n as u64;
    }
    let _ = f.sync_all();
    written
}

/// The page files under `dir` (`*.page`, any depth).
fn page_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "page") {
                out.push(p);
            }
        }
    }
    out
}

/// Flips the bits of one byte in the second half of `path` (the data, past the header).
fn flip_byte(path: &Path, rng: &mut Rng) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().read(true).write(true).open(path)?;
    let len = f.metadata()?.len();
    if len < 2 {
        return Ok(());
    }
    let at = len / 2 + rng.below((len / 2) as usize) as u64;
    let mut b = [0u8];
    f.seek(SeekFrom::Start(at))?;
    f.read_exact(&mut b)?;
    f.seek(SeekFrom::Start(at))?;
    f.write_all(&[b[0] ^ 0xff])
}
