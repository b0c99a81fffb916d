//! A distributed cluster for one test: its own etcd (`loam_testsupport::EtcdServer`), one `loam
//! coordinator` and N `loam worker` processes on free loopback ports, and a `file://` UFS in a temp dir.
//! Workers keep their port and data directory across restarts (the same identity and cache); each
//! coordinator start gets a fresh data directory, so whatever survives a coordinator restart can only
//! have come from etcd.
//!
//! Waiting is always on a condition with a generous cap ([`wait_until`]), never a fixed sleep, so the
//! tests hold on a loaded 2-core machine. On a failed test the processes' logs are printed; on drop
//! every process is killed (workers, then the coordinator, then etcd).
//!
//! [`Cluster::start_secure`] runs the same cluster on an etcd that serves TLS only, wants client
//! certificates and has `auth enable` with a user `loam`: every process and the CLI get the `--etcd-*`
//! flags ([`Cluster::etcd_flags`]).

use crate::http;
use crate::process::{CliOutput, Server, log_path, run_cli_env, server, strings, tail};
use loam_testsupport::certs::TestCa;
use loam_testsupport::{EtcdServer, EtcdTls};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The lease TTL the workers run with: short, so OFFLINE comes quickly.
pub const LEASE_TTL_SECS: u64 = 3;
/// The cap for conditions that need no more than a few round trips on a loaded machine.
pub const CAP: Duration = Duration::from_secs(30);
/// Fresh ports to try when a server exits at start (its port was taken between `free_port` and bind).
const START_ATTEMPTS: usize = 3;

/// A worker's status in `GET /api/v1/nodes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// `worker-<uuid>`.
    pub identity: String,
    /// `host:port`.
    pub address: String,
    /// `ONLINE` or `OFFLINE`.
    pub status: String,
}

/// One worker: its stable identity, port and data directory, and its process while it runs.
pub struct Worker {
    /// `worker-<uuid>`, as printed at its first start.
    pub id: String,
    /// HTTP port (kept across restarts).
    pub port: u16,
    data_dir: PathBuf,
    server: Option<Server>,
}

impl Worker {
    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:port`, as the nodes API and the rings name it.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Its `/metrics` text.
    pub fn metrics(&self) -> String {
        let body = http::get_ok(&format!("{}/metrics", self.url())).unwrap_or_else(|e| panic!("{e}"));
        String::from_utf8_lossy(&body).into_owned()
    }
}

/// The cluster. Field order is drop order: workers, coordinator, etcd, then the directories.
pub struct Cluster {
    /// The workers, by index.
    pub workers: Vec<Worker>,
    coordinator: Option<Server>,
    coordinator_port: u16,
    coordinator_starts: usize,
    /// The cluster's etcd.
    pub etcd: EtcdServer,
    /// The UFS root (mounted at `/data` by [`Cluster::mount_data`]).
    pub ufs: tempfile::TempDir,
    dir: tempfile::TempDir,
    /// The `--etcd-*` flags of TLS and the user (none for a plain etcd).
    pub etcd_flags: Vec<String>,
    /// The CA of a TLS etcd (its directory holds the certificates and the password file).
    pub ca: Option<TestCa>,
}

/// The password of the etcd user `loam` in a secure cluster.
pub const ETCD_PASSWORD: &str = "etcd-pw-2c41d9";

impl Cluster {
    /// etcd, a coordinator and `n` workers, all ONLINE.
    pub fn start(n: usize) -> Self {
        Self::start_on(n, EtcdServer::start(), Vec::new(), None)
    }

    /// [`Cluster::start`] on an etcd with TLS, client certificates and the user `loam`.
    pub fn start_secure(n: usize) -> Self {
        let ca = TestCa::new("loam-e2e-ca");
        let etcd =
            EtcdServer::start_tls(EtcdTls { ca: ca.cert.clone(), server: ca.leaf("etcd"), auth_token_ttl: None });
        let client = ca.leaf("loam-node");
        etcd.enable_auth(&client, "root-pw-e2e", "loam", ETCD_PASSWORD);
        let password_file = ca.cert.with_file_name("etcd-password");
        std::fs::write(&password_file, format!("{ETCD_PASSWORD}\n")).expect("write the password file");
        let path = |p: &std::path::Path| p.display().to_string();
        let flags = vec![
            "--etcd-ca-cert".to_string(),
            path(&ca.cert),
            "--etcd-cert".into(),
            path(&client.cert),
            "--etcd-key".into(),
            path(&client.key),
            "--etcd-user".into(),
            "loam".into(),
            "--etcd-password-file".into(),
            path(&password_file),
        ];
        Self::start_on(n, etcd, flags, Some(ca))
    }

    fn start_on(n: usize, etcd: EtcdServer, etcd_flags: Vec<String>, ca: Option<TestCa>) -> Self {
        let mut c = Self {
            workers: Vec::new(),
            coordinator: None,
            coordinator_port: loam_testsupport::free_port(),
            coordinator_starts: 0,
            etcd,
            ufs: tempfile::tempdir().expect("UFS temp dir"),
            dir: tempfile::tempdir().expect("cluster temp dir"),
            etcd_flags,
            ca,
        };
        c.start_coordinator();
        for _ in 0..n {
            c.add_worker();
        }
        c.wait_all_online();
        c
    }

    /// etcd's client URL.
    pub fn etcd_url(&self) -> String {
        self.etcd.endpoint()
    }

    /// The coordinator's URL (the same across restarts).
    pub fn coordinator_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.coordinator_port)
    }

    /// Starts a coordinator on the cluster's etcd, with a data directory it has never used.
    pub fn start_coordinator(&mut self) {
        assert!(self.coordinator.is_none(), "a coordinator is running already");
        self.coordinator_starts += 1;
        let data_dir = self.dir.path().join(format!("coordinator-{}", self.coordinator_starts));
        let log = log_path(self.dir.path(), "coordinator");
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            let args = self.coordinator_args(self.coordinator_port, &data_dir);
            match server(&args, &log) {
                Ok(s) => {
                    assert!(
                        s.banner.iter().any(|l| l.contains(&self.coordinator_url())),
                        "the coordinator prints its URL: {:?}",
                        s.banner
                    );
                    self.coordinator = Some(s);
                    // After a `kill -9` the dead one's leader lease lasts its TTL: writes wait for this one to lead.
                    let url = format!("{}/api/v1/coordinators", self.coordinator_url());
                    wait_until("the coordinator leads", CAP, || {
                        http::get(&url).ok().filter(|a| a.text().contains(r#""leading":true"#)).map(drop)
                    });
                    return;
                }
                // Only a first start may move: a restarted coordinator must keep its URL.
                Err(e) if self.coordinator_starts == 1 => {
                    last = e;
                    self.coordinator_port = loam_testsupport::free_port();
                }
                Err(e) => panic!("{e}"),
            }
        }
        panic!("the coordinator did not start: {last}");
    }

    fn coordinator_args(&self, port: u16, data_dir: &std::path::Path) -> Vec<String> {
        let mut args = strings(&[
            "coordinator",
            "--etcd",
            &self.etcd_url(),
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--data-dir",
            &data_dir.display().to_string(),
            // The tests' file:// UFSs are temp dirs.
            "--allow-local-ufs",
            &std::env::temp_dir().display().to_string(),
            // Short, so a killed leader is replaced quickly.
            "--leader-lease-ttl",
            "3s",
        ]);
        args.extend(self.etcd_flags.iter().cloned());
        args
    }

    /// Starts another Coordinator (`name` names its log and data directory) on the cluster's etcd, on a
    /// port of its own; its process and URL. It follows the cluster's first Coordinator while that leads.
    pub fn start_another_coordinator(&self, name: &str) -> (Server, String) {
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = loam_testsupport::free_port();
            let args = self.coordinator_args(port, &self.dir.path().join(name));
            match server(&args, &log_path(self.dir.path(), name)) {
                Ok(s) => return (s, format!("http://127.0.0.1:{port}")),
                Err(e) => last = e,
            }
        }
        panic!("coordinator {name} did not start: {last}");
    }

    /// Stops the coordinator with `signal` ("-INT" waits for a clean exit; "-9" kills it outright).
    pub fn stop_coordinator(&mut self, signal: &str) {
        let s = self.coordinator.take().expect("a running coordinator");
        if signal == "-9" { s.kill9() } else { s.stop_with(signal) }
    }

    /// Starts worker `i` (again: same port, data directory and so identity); returns the id it printed.
    pub fn start_worker(&mut self, i: usize) -> String {
        assert!(self.workers[i].server.is_none(), "worker {i} is running already");
        let first = self.workers[i].port == 0;
        let log = log_path(self.dir.path(), &format!("worker-{i}"));
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            if first {
                self.workers[i].port = loam_testsupport::free_port();
            }
            let w = &self.workers[i];
            let mut args = strings(&[
                "worker",
                "--etcd",
                &self.etcd_url(),
                "--coordinator",
                &self.coordinator_url(),
                "--host",
                "127.0.0.1",
                "--http-port",
                &w.port.to_string(),
                "--s3-port",
                "0",
                "--data-dir",
                &w.data_dir.display().to_string(),
                "--cache-size",
                "64MiB",
                "--memory-size",
                "8MiB",
                "--max-age",
                "3600",
                "--lease-ttl",
                &LEASE_TTL_SECS.to_string(),
                // The unmodified Python clients send no credentials.
                "--anonymous-read",
            ]);
            args.extend(self.etcd_flags.iter().cloned());
            match server(&args, &log) {
                Ok(s) => {
                    let id = worker_line(&s.banner, &w.url());
                    let w = &mut self.workers[i];
                    if first {
                        w.id = id.clone();
                    }
                    w.server = Some(s);
                    return id;
                }
                Err(e) if first => last = e,
                Err(e) => panic!("{e}"),
            }
        }
        panic!("worker {i} did not start: {last}");
    }

    /// Starts one more worker (a new identity, port and data directory); its index.
    pub fn add_worker(&mut self) -> usize {
        let i = self.workers.len();
        let data_dir = self.dir.path().join(format!("worker-{i}"));
        self.workers.push(Worker { id: String::new(), port: 0, data_dir, server: None });
        self.start_worker(i);
        i
    }

    /// `kill -9` of worker `i`: its lease is neither revoked nor kept alive.
    pub fn kill_worker(&mut self, i: usize) {
        self.workers[i].server.take().expect("a running worker").kill9();
    }

    /// Stops worker `i` with `signal` (e.g. "-INT": it leaves the ring first) and waits for a clean exit.
    pub fn stop_worker(&mut self, i: usize, signal: &str) {
        self.workers[i].server.take().expect("a running worker").stop_with(signal);
    }

    /// Worker `i`'s process id (to `SIGSTOP` it).
    pub fn worker_pid(&self, i: usize) -> u32 {
        self.workers[i].server.as_ref().expect("a running worker").pid()
    }

    /// Whether every worker process started by the cluster is still running (none crashed).
    pub fn workers_running(&mut self) -> bool {
        self.workers.iter_mut().all(|w| w.server.as_mut().is_some_and(Server::is_running))
    }

    /// Runs the CLI as a user of this cluster would (`--coordinator` and `--etcd` given), with its cache
    /// directory (`XDG_CACHE_HOME`, where `loam fs` keeps the cluster view) in [`Cluster::cli_cache`].
    pub fn cli(&self, args: &[&str]) -> CliOutput {
        self.cli_cached_in(&self.cli_cache(), args)
    }

    /// [`Cluster::cli`] with its cache directory in `cache`.
    pub fn cli_cached_in(&self, cache: &std::path::Path, args: &[&str]) -> CliOutput {
        let mut all = strings(&["--coordinator", &self.coordinator_url(), "--etcd", &self.etcd_url()]);
        all.extend(self.etcd_flags.iter().cloned());
        all.extend(strings(args));
        run_cli_env(&all, &[("XDG_CACHE_HOME", cache)])
    }

    /// The CLI's cache directory (`XDG_CACHE_HOME`) in [`Cluster::cli`].
    pub fn cli_cache(&self) -> PathBuf {
        self.dir.path().join("cli-cache")
    }

    /// [`Cluster::cli`], which must succeed; its stdout as text.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.cli(args);
        assert!(o.status.success(), "loam {args:?} failed: {}", o.stderr);
        String::from_utf8(o.stdout).expect("UTF-8 output")
    }

    /// `loam mount add /data file://<ufs>`.
    pub fn mount_data(&self) {
        let out = self.ok(&["mount", "add", "/data", &self.ufs_uri("")]);
        assert!(out.contains("mounted"), "{out}");
    }

    /// The `file://` URI of `rel` in the UFS (the root with "").
    pub fn ufs_uri(&self, rel: &str) -> String {
        let root = format!("file://{}", self.ufs.path().display());
        if rel.is_empty() { root } else { format!("{root}/{rel}") }
    }

    /// Writes a file of `len` bytes, distinct per `seed`, into the UFS; its bytes.
    pub fn write_file(&self, rel: &str, len: usize, seed: u32) -> Vec<u8> {
        let bytes = loam_testsupport::data::content(len, seed);
        let path = self.ufs.path().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create UFS directories");
        }
        std::fs::write(&path, &bytes).expect("write a UFS file");
        bytes
    }

    /// `GET /api/v1/nodes`; `Err` while the coordinator cannot answer.
    pub fn nodes(&self) -> Result<Vec<Node>, String> {
        let body = http::get_ok(&format!("{}/api/v1/nodes", self.coordinator_url()))?;
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| format!("nodes answer: {e}"))?;
        let list = v["result"].as_array().ok_or_else(|| format!("nodes answer without `result`: {v}"))?;
        Ok(list
            .iter()
            .map(|n| Node {
                identity: n["identity"].as_str().unwrap_or_default().to_string(),
                address: n["address"].as_str().unwrap_or_default().to_string(),
                status: n["status"].as_str().unwrap_or_default().to_string(),
            })
            .collect())
    }

    /// Worker `i`'s status in the nodes API, if it is listed.
    pub fn status_of(&self, i: usize) -> Result<Option<String>, String> {
        let id = &self.workers[i].id;
        Ok(self.nodes()?.into_iter().find(|n| &n.identity == id).map(|n| n.status))
    }

    /// Waits until the nodes API lists exactly the cluster's workers, all ONLINE at their addresses.
    pub fn wait_all_online(&self) {
        self.wait_all_online_within(CAP)
    }

    /// [`Cluster::wait_all_online`] with a cap of `cap`.
    pub fn wait_all_online_within(&self, cap: Duration) {
        let mut want: Vec<Node> = self
            .workers
            .iter()
            .map(|w| Node { identity: w.id.clone(), address: w.address(), status: "ONLINE".into() })
            .collect();
        want.sort_by(|a, b| a.identity.cmp(&b.identity));
        let mut last = Err(String::new());
        let reached = poll(cap, || {
            last = self.nodes();
            last.as_ref().is_ok_and(|n| *n == want)
        });
        assert!(reached, "not all workers ONLINE within {cap:?}: want {want:?}, last answer {last:?}");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut names = vec!["coordinator".to_string()];
            names.extend((0..self.workers.len()).map(|i| format!("worker-{i}")));
            for name in names {
                eprintln!("----- {name} log (tail) -----\n{}", tail(&log_path(self.dir.path(), &name)));
            }
        }
    }
}

/// Polls `f` every 100 ms until it returns `Some`, for at most `cap`; panics naming `what` after that.
pub fn wait_until<T>(what: &str, cap: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let mut out = None;
    let reached = poll(cap, || {
        out = f();
        out.is_some()
    });
    assert!(reached, "{what}: not within {cap:?}");
    out.expect("set when reached")
}

/// Whether `f` turned true within `cap`.
fn poll(cap: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + cap;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The id on the worker's banner line `  worker  <url>  <id>`.
fn worker_line(banner: &[String], url: &str) -> String {
    banner
        .iter()
        .find_map(|l| match l.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["worker", u, id] if u == &url => Some(id.to_string()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("the worker prints `worker {url} <id>`: {banner:?}"))
}
