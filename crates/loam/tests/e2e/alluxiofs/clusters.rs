//! Loam clusters whose workers each serve on their own loopback address with the default ports (HTTP
//! 28080, S3 29998), as `alluxiofs` needs: a `loam local` process (`--worker-addresses`), and a distributed
//! cluster of etcd, a coordinator and `loam worker` processes (whose workers can be killed one by one).
//!
//! The addresses are `127.<r>.<r>.<2..>` with random `r`, checked free on both ports, so that two runs of
//! the suite on one machine (or two tests of this binary) do not collide; a start that fails anyway (a
//! port taken between the check and the bind) is retried on fresh addresses. The coordinator listens on
//! a free port of 127.0.0.1.

use crate::cluster::{CAP, LEASE_TTL_SECS, wait_until};
use crate::http;
use crate::process::{Server, log_path, run_cli, server, strings, tail};
use loam_testsupport::EtcdServer;
use std::hash::{BuildHasher, Hasher};
use std::net::TcpListener;
use std::path::{Path, PathBuf};

/// The worker HTTP port alluxiofs defaults to.
pub const HTTP_PORT: u16 = 28080;
/// The S3 port alluxiofs always reads from.
pub const S3_PORT: u16 = 29998;
/// Fresh addresses to try when a start fails.
const START_ATTEMPTS: usize = 3;

/// `n` loopback addresses on which both ports are free at the moment.
pub fn free_addresses(n: usize) -> Vec<String> {
    for _ in 0..100 {
        // RandomState is seeded per process from the OS: a cheap random source without a dependency.
        let r = std::collections::hash_map::RandomState::new().build_hasher().finish();
        let (a, b) = (1 + r % 254, 1 + (r >> 8) % 254);
        let hosts: Vec<String> = (0..n).map(|i| format!("127.{a}.{b}.{}", 2 + i)).collect();
        let free = |h: &String| [HTTP_PORT, S3_PORT].iter().all(|p| TcpListener::bind((h.as_str(), *p)).is_ok());
        if hosts.iter().all(free) {
            return hosts;
        }
    }
    panic!("no free loopback addresses for ports {HTTP_PORT} and {S3_PORT}");
}

/// Runs the CLI against the coordinator at `url`; it must succeed.
pub fn cli_ok(url: &str, args: &[&str]) -> String {
    let mut all = strings(&["--coordinator", url]);
    all.extend(strings(args));
    let o = run_cli(&all);
    assert!(o.status.success(), "loam {args:?} failed: {}", o.stderr);
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Waits until every worker resolves `path` (a cluster path under a mount) with `/v1/node`.
pub fn wait_for_mount(hosts: &[String], path: &str) {
    for h in hosts {
        let url = format!("http://{h}:{HTTP_PORT}");
        wait_until(&format!("{h} knows the mount of {path}"), CAP, || http::node_of(&url, path).ok());
    }
}

/// A `loam local` process with its workers on their own addresses.
pub struct LocalOnLoopback {
    /// The worker addresses, in order.
    pub hosts: Vec<String>,
    /// The Coordinator's URL.
    pub coordinator: String,
    _server: Server,
    log: PathBuf,
}

impl LocalOnLoopback {
    /// `loam local` with `n` workers, its state under `dir`.
    pub fn start(dir: &Path, n: usize) -> Self {
        let log = log_path(dir, "local");
        let mut last = String::new();
        for attempt in 0..START_ATTEMPTS {
            let hosts = free_addresses(n);
            let port = loam_testsupport::free_port();
            let data = dir.join(format!("local-{attempt}"));
            let args = strings(&[
                "local",
                "--worker-addresses",
                &hosts.join(","),
                "--coordinator-port",
                &port.to_string(),
                "--data-dir",
                &data.display().to_string(),
                "--cache-size",
                "256MiB",
                "--memory-size",
                "16MiB",
            ]);
            match server(&args, &log) {
                Ok(s) => {
                    let coordinator = format!("http://127.0.0.1:{port}");
                    for h in &hosts {
                        let line = format!("http://{h}:{HTTP_PORT}");
                        assert!(s.banner.iter().any(|l| l.contains(&line)), "a worker on {line}: {:?}", s.banner);
                    }
                    return Self { hosts, coordinator, _server: s, log };
                }
                Err(e) => last = e,
            }
        }
        panic!("loam local did not start: {last}");
    }
}

impl Drop for LocalOnLoopback {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("----- loam local log (tail) -----\n{}", tail(&self.log));
        }
    }
}

/// etcd, a coordinator and one `loam worker` process per address.
pub struct DistributedOnLoopback {
    /// The worker addresses, in order.
    pub hosts: Vec<String>,
    /// The worker processes by index; `None` once killed.
    pub workers: Vec<Option<Server>>,
    /// The Coordinator's URL.
    pub coordinator: String,
    _coordinator: Server,
    /// The cluster's etcd.
    pub etcd: EtcdServer,
    dir: PathBuf,
}

impl DistributedOnLoopback {
    /// The cluster with `n` workers, all ONLINE; state and logs under `dir`.
    pub fn start(dir: &Path, n: usize) -> Self {
        let etcd = EtcdServer::start();
        let port = loam_testsupport::free_port();
        let coordinator = format!("http://127.0.0.1:{port}");
        let args = strings(&[
            "coordinator",
            "--etcd",
            &etcd.endpoint(),
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--data-dir",
            &dir.join("coordinator").display().to_string(),
            // The test's file:// UFS is under its temp dir.
            "--allow-local-ufs",
            &dir.display().to_string(),
        ]);
        let coordinator_server = server(&args, &log_path(dir, "coordinator")).unwrap_or_else(|e| panic!("{e}"));
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            let hosts = free_addresses(n);
            let started: Result<Vec<Server>, String> =
                hosts.iter().enumerate().map(|(i, h)| Self::start_worker(dir, &etcd, &coordinator, i, h)).collect();
            match started {
                Ok(servers) => {
                    let c = Self {
                        hosts,
                        workers: servers.into_iter().map(Some).collect(),
                        coordinator,
                        _coordinator: coordinator_server,
                        etcd,
                        dir: dir.to_path_buf(),
                    };
                    c.wait_online(n);
                    return c;
                }
                Err(e) => last = e,
            }
        }
        panic!("the workers did not start: {last}");
    }

    fn start_worker(dir: &Path, etcd: &EtcdServer, coordinator: &str, i: usize, host: &str) -> Result<Server, String> {
        let args = strings(&[
            "worker",
            "--etcd",
            &etcd.endpoint(),
            "--coordinator",
            coordinator,
            "--host",
            host,
            "--http-port",
            &HTTP_PORT.to_string(),
            "--s3-port",
            &S3_PORT.to_string(),
            "--s3-anonymous-read=true",
            "--data-dir",
            &dir.join(format!("worker-{i}-{host}")).display().to_string(),
            "--cache-size",
            "256MiB",
            "--memory-size",
            "16MiB",
            "--max-age",
            "3600",
            "--lease-ttl",
            &LEASE_TTL_SECS.to_string(),
        ]);
        server(&args, &log_path(dir, &format!("worker-{i}")))
    }

    /// Waits until the Coordinator lists `n` ONLINE workers.
    fn wait_online(&self, n: usize) {
        let url = format!("{}/api/v1/nodes", self.coordinator);
        wait_until("every worker ONLINE", CAP, || {
            let body = http::get_ok(&url).ok()?;
            let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
            let online = v["result"].as_array()?.iter().filter(|w| w["status"] == "ONLINE").count();
            (online == n).then_some(())
        });
    }

    /// `kill -9` of the worker on `host`: its lease is neither revoked nor kept alive.
    pub fn kill(&mut self, host: &str) {
        let i = self.hosts.iter().position(|h| h == host).unwrap_or_else(|| panic!("no worker on {host}"));
        self.workers[i].take().unwrap_or_else(|| panic!("the worker on {host} is dead already")).kill9();
    }
}

impl Drop for DistributedOnLoopback {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut names = vec!["coordinator".to_string()];
            names.extend((0..self.hosts.len()).map(|i| format!("worker-{i}")));
            for name in names {
                eprintln!("----- {name} log (tail) -----\n{}", tail(&log_path(&self.dir, &name)));
            }
        }
    }
}
