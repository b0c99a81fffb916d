//! The soak's cluster, all real processes: etcd (`loam_testsupport::EtcdServer`), one `loam coordinator`
//! and three `loam worker`s, each `<this binary> loam …` (the `loam` command built into `loam-chaos`, as
//! `loam-bench` does), under the watchdog that kills them when the soak is gone. A `file://` UFS in the
//! soak's directory is mounted at `/data`.
//!
//! Workers keep their ports, data directory and cache across restarts (the same identity), and so does
//! the Coordinator (its data directory and port), as an operator's restart would. Each worker's cache
//! directory lies on a tmpfs of its own, smaller than `--cache-size`, so that "a full disk" is a real
//! ENOSPC; without root (no tmpfs) it is a plain directory and the disk-full fault is skipped, saying so.
//!
//! The processes' pids are published in [`Pids`] for the RSS sampler, which reads them while faults
//! restart the processes.

use crate::http;
use anyhow::{Context, bail};
use loam_testsupport::process::{Server, log_path};
use loam_testsupport::{EtcdServer, free_port};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The token every soak client sends (the test token of every role; the servers accept it).
pub const TOKEN: &str = loam_testsupport::auth::ALL_ROLES;
/// The S3 key pair of the workers.
pub const S3_KEYS: (&str, &str) = ("chaos-access", "chaos-secret-0123456789");
/// Each worker's `--cache-size`: larger than its tmpfs, so the worker must learn the real room.
const CACHE_SIZE: &str = "64MiB";
/// The tmpfs under each worker's cache directory.
const TMPFS_SIZE: &str = "24m";
/// Each worker's memory tier: small, so most reads come from the disk tier (where faults are).
const MEMORY_SIZE: &str = "2MiB";
/// How long a start or a condition may take on a loaded machine.
const CAP: Duration = Duration::from_secs(60);

/// The pids of the running workers (by index), for the RSS sampler.
#[derive(Clone, Default)]
pub struct Pids(Arc<Mutex<Vec<Option<u32>>>>);

impl Pids {
    /// The pids of the workers running now.
    pub fn workers(&self) -> Vec<u32> {
        self.0.lock().expect("pids").iter().flatten().copied().collect()
    }

    fn set(&self, i: usize, pid: Option<u32>) {
        let mut v = self.0.lock().expect("pids");
        if v.len() <= i {
            v.resize(i + 1, None);
        }
        v[i] = pid;
    }
}

/// One worker: fixed ports and directories, and its process while it runs.
pub struct Worker {
    pub http_port: u16,
    pub s3_port: u16,
    data_dir: PathBuf,
    /// The tmpfs (or plain directory) holding `cache/`.
    pub cache_fs: PathBuf,
    server: Option<Server>,
}

impl Worker {
    /// `http://127.0.0.1:<http port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// Its cache directory (`--cache-dir`).
    pub fn cache_dir(&self) -> PathBuf {
        self.cache_fs.join("cache")
    }
}

/// What the readers and the jobs loop need to reach the cluster; fixed for the whole soak.
#[derive(Clone, Debug)]
pub struct Endpoints {
    pub etcd: String,
    pub coordinator: String,
    pub workers: Vec<String>,
    /// The S3 API of worker 0, the S3 readers' fixed worker.
    pub s3: String,
    /// The UFS root mounted at `/data`.
    pub ufs: PathBuf,
}

/// The running cluster; dropping it kills every process and takes the tmpfs mounts down.
pub struct Cluster {
    pub workers: Vec<Worker>,
    coordinator: Option<Server>,
    coordinator_port: u16,
    pub etcd: EtcdServer,
    /// Whether the workers' caches are on tmpfs mounts of their own.
    pub tmpfs: bool,
    pub pids: Pids,
    pub dir: PathBuf,
    lease_ttl: Duration,
}

impl Cluster {
    /// etcd, a Coordinator and `n` workers in `dir`, with `/data` mounted on `<dir>/ufs`; returns once
    /// every worker is ONLINE and knows the mount.
    pub fn start(dir: &Path, n: usize, lease_ttl: Duration) -> anyhow::Result<Self> {
        let ufs = dir.join("ufs");
        std::fs::create_dir_all(&ufs)?;
        let mut c = Self {
            workers: Vec::new(),
            coordinator: None,
            coordinator_port: free_port(),
            etcd: EtcdServer::start(),
            tmpfs: false,
            pids: Pids::default(),
            dir: dir.to_path_buf(),
            lease_ttl,
        };
        c.tmpfs = is_root();
        for i in 0..n {
            let cache_fs = dir.join(format!("worker-{i}-cachefs"));
            std::fs::create_dir_all(&cache_fs)?;
            if c.tmpfs {
                let ok = Command::new("mount")
                    .args(["-t", "tmpfs", "-o", &format!("size={TMPFS_SIZE}"), "tmpfs"])
                    .arg(&cache_fs)
                    .status()
                    .is_ok_and(|s| s.success());
                c.tmpfs &= ok;
            }
            let data_dir = dir.join(format!("worker-{i}"));
            c.workers.push(Worker { http_port: free_port(), s3_port: free_port(), data_dir, cache_fs, server: None });
        }
        c.start_coordinator()?;
        for i in 0..n {
            c.start_worker(i)?;
        }
        c.wait_online(n)?;
        let out = loam_cli(&["--coordinator", &c.coordinator_url(), "mount", "add", "/data", &file_uri(&ufs)])?;
        if !out.contains("mounted") {
            bail!("loam mount add: {out}");
        }
        for w in &c.workers {
            wait(CAP, "a worker knows the mount", || {
                http::call("GET", &format!("{}/v1/node?path=/data/{}", w.url(), crate::data::DIR), None, TOKEN)
                    .is_ok_and(|(code, _)| code == 200)
            })?;
        }
        Ok(c)
    }

    /// What readers and jobs need.
    pub fn endpoints(&self) -> Endpoints {
        Endpoints {
            etcd: self.etcd.endpoint(),
            coordinator: self.coordinator_url(),
            workers: self.workers.iter().map(Worker::url).collect(),
            s3: format!("http://127.0.0.1:{}", self.workers[0].s3_port),
            ufs: self.dir.join("ufs"),
        }
    }

    /// The Coordinator's URL (the same across restarts).
    pub fn coordinator_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.coordinator_port)
    }

    /// Starts the Coordinator (again: same port and data directory).
    pub fn start_coordinator(&mut self) -> anyhow::Result<()> {
        let port = self.coordinator_port.to_string();
        let data = self.dir.join("coordinator");
        let args = [
            "coordinator",
            "--etcd",
            &self.etcd.endpoint(),
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--data-dir",
            &data.display().to_string(),
            "--allow-local-ufs",
            &self.dir.join("ufs").display().to_string(),
        ];
        self.coordinator = Some(loam_server("coordinator", &self.dir, &args)?);
        Ok(())
    }

    /// `kill -9` of the Coordinator.
    pub fn kill_coordinator(&mut self) {
        if let Some(s) = self.coordinator.take() {
            s.kill9();
        }
    }

    /// Starts worker `i` (again: same ports, data and cache directory, so the same identity and cache).
    pub fn start_worker(&mut self, i: usize) -> anyhow::Result<()> {
        let w = &self.workers[i];
        let ttl = format!("{}s", self.lease_ttl.as_secs());
        let (http_port, s3_port) = (w.http_port.to_string(), w.s3_port.to_string());
        let (data, cache) = (w.data_dir.display().to_string(), w.cache_dir().display().to_string());
        let args = [
            "worker",
            "--etcd",
            &self.etcd.endpoint(),
            "--coordinator",
            &self.coordinator_url(),
            "--host",
            "127.0.0.1",
            "--http-port",
            &http_port,
            "--s3-port",
            &s3_port,
            "--s3-access-key",
            S3_KEYS.0,
            "--s3-secret-key",
            S3_KEYS.1,
            "--data-dir",
            &data,
            "--cache-dir",
            &cache,
            "--cache-size",
            CACHE_SIZE,
            "--memory-size",
            MEMORY_SIZE,
            // Re-validate within a second: UFS rewrites reach readers while they stream.
            "--max-age",
            "1s",
            "--lease-ttl",
            &ttl,
            // The unmodified alluxio client sends no credentials.
            "--anonymous-read",
        ];
        let server = loam_server(&format!("worker-{i}"), &self.dir, &args)?;
        self.pids.set(i, Some(server.pid()));
        self.workers[i].server = Some(server);
        Ok(())
    }

    /// `kill -9` of worker `i`.
    pub fn kill_worker(&mut self, i: usize) {
        self.pids.set(i, None);
        if let Some(s) = self.workers[i].server.take() {
            s.kill9();
        }
    }

    /// Waits until the Coordinator lists `n` workers, all ONLINE.
    pub fn wait_online(&self, n: usize) -> anyhow::Result<()> {
        let url = format!("{}/api/v1/nodes", self.coordinator_url());
        wait(CAP, "every worker ONLINE", || {
            http::json("GET", &url, None, TOKEN).is_ok_and(|(code, v)| {
                let list = v["result"].as_array().cloned().unwrap_or_default();
                code == 200 && list.len() == n && list.iter().all(|w| w["status"] == "ONLINE")
            })
        })
    }

    /// etcd's pid while it runs.
    pub fn etcd_pid(&self) -> Option<u32> {
        self.etcd.pid()
    }

    /// The last lines of every process's log.
    pub fn log_tails(&self) -> String {
        let mut names = vec!["coordinator".to_string()];
        names.extend((0..self.workers.len()).map(|i| format!("worker-{i}")));
        names
            .iter()
            .map(|n| format!("----- {n} -----\n{}", loam_testsupport::process::tail(&log_path(&self.dir, n))))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.workers.len() {
            self.kill_worker(i);
        }
        self.kill_coordinator();
        if self.tmpfs {
            for w in &self.workers {
                let _ = Command::new("umount").arg("-l").arg(&w.cache_fs).status();
            }
        }
    }
}

/// `file://<path>`.
pub fn file_uri(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// `<this binary> loam <args>`, with the soak's token and none of the user's `LOAM_*` settings.
pub fn loam_command() -> anyhow::Result<Command> {
    let exe = std::env::current_exe().context("finding the loam-chaos binary")?;
    let mut cmd = loam_testsupport::auth::with_test_tokens(loam_testsupport::process::clean_env(Command::new(exe)));
    cmd.arg(crate::LOAM);
    Ok(cmd)
}

/// Runs a one-shot `loam <args>`, which must succeed; its stdout.
pub fn loam_cli(args: &[&str]) -> anyhow::Result<String> {
    let out = loam_command()?.args(args).output()?;
    if !out.status.success() {
        bail!("loam {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Starts the server `loam <args>` logging to `<dir>/<name>.log`; ready on its banner.
pub fn loam_server(name: &str, dir: &Path, args: &[&str]) -> anyhow::Result<Server> {
    let exe = std::env::current_exe().context("finding the loam-chaos binary")?;
    let all: Vec<String> = std::iter::once(crate::LOAM).chain(args.iter().copied()).map(str::to_string).collect();
    Server::start(&exe, &all, &log_path(dir, name)).map_err(anyhow::Error::msg)
}

/// Polls `f` every 100 ms until it holds, for at most `cap`.
pub fn wait(cap: Duration, what: &str, mut f: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + cap;
    while !f() {
        if Instant::now() > deadline {
            bail!("{what}: not within {cap:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Whether this process runs as root (it may mount a tmpfs).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Uid:")).map(|u| u.split_whitespace().next() == Some("0")))
        .unwrap_or(false)
}

/// The resident set size of `pid` in bytes (`VmRSS`), if it runs.
pub fn rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 =
        status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}
