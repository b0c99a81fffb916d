//! The cluster of the partition tests on its hosts: etcd, a Coordinator and three workers, each in a
//! network namespace of its own (`loam_testsupport::netns`), every worker on the default ports (HTTP
//! 28080, S3 29998, anonymous S3 reads on, as `alluxiofs` needs), and a client host that talks to them
//! with `curl`. The jobs a test submits are kept here for the shared "no lost job" check (`jobs.rs`).

use super::jobs::Expect;
use crate::cluster::wait_until;
use crate::process::{LOAM, Server, log_path, strings, tail};
use loam_testsupport::auth::ALL_ROLES;
use loam_testsupport::netns::Net;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

pub const ETCD: usize = 0;
pub const COORDINATOR: usize = 1;
pub const WORKERS: [usize; 3] = [2, 3, 4];
pub const CLIENT: usize = 5;
/// The workers' lease TTL, seconds.
pub const LEASE_TTL: u64 = 3;
/// How long the cluster may take to see a change: the lease TTL plus 5 s (the issue's bound).
pub const SETTLE: Duration = Duration::from_secs(LEASE_TTL + 5);
/// The workers' HTTP port (every worker on its own host, so the default everywhere).
pub const HTTP_PORT: u16 = 28080;
/// The `ip` command, which runs a program in a namespace (and execs it: the server's pid is the program's).
const IP: &str = "/usr/sbin/ip";

/// The cluster on its hosts, and where its files are.
pub struct Sim {
    pub net: Net,
    pub dir: tempfile::TempDir,
    /// The `file://` UFS mounted at `/data`.
    pub ufs: PathBuf,
    servers: Vec<Server>,
    /// The jobs the Coordinator accepted, with what the test expects of each.
    pub(super) jobs: Mutex<Vec<(String, Expect)>>,
}

impl Sim {
    pub fn url(&self, host: usize, port: u16) -> String {
        format!("http://{}:{port}", self.net.host(host).addr)
    }

    pub fn coordinator(&self) -> String {
        self.url(COORDINATOR, 19999)
    }

    /// The `file://` URI of `rel` in the UFS.
    pub fn uri(&self, rel: &str) -> String {
        format!("file://{}/{rel}", self.ufs.display())
    }

    /// `host:28080` of the worker on host `w`, as membership and `/v1/node` name it.
    pub fn worker_addr(&self, w: usize) -> String {
        format!("{}:{HTTP_PORT}", self.net.host(w).addr)
    }

    /// `curl` on the client host: the status and the body (an unreachable server is status 0).
    pub fn curl(&self, args: &[&str]) -> (u16, Vec<u8>) {
        let out = self
            .net
            .command(CLIENT, "curl")
            .args(["-s", "--max-time", "10", "-H", &format!("Authorization: Bearer {ALL_ROLES}")])
            .args(["-w", "\n%{http_code}"])
            .args(args)
            .output()
            .expect("run curl");
        let mut body = out.stdout;
        let cut = body.iter().rposition(|b| *b == b'\n').unwrap_or(0);
        let status = String::from_utf8_lossy(&body[cut..]).trim().parse().unwrap_or(0);
        body.truncate(cut);
        (status, body)
    }

    /// `curl` of `url` whose answer must be `200` with JSON.
    pub fn json(&self, url: &str) -> Option<serde_json::Value> {
        let (status, body) = self.curl(&[url]);
        (status == 200).then(|| serde_json::from_slice(&body).ok()).flatten()
    }

    /// The Coordinator's view: worker address → status (`ONLINE`/`OFFLINE`), or `None` when it cannot answer.
    pub fn nodes(&self) -> Option<Vec<(String, String)>> {
        let v = self.json(&format!("{}/api/v1/nodes", self.coordinator()))?;
        let mut out: Vec<(String, String)> = v["result"]
            .as_array()?
            .iter()
            .map(|n| (n["address"].as_str().unwrap_or("").to_string(), n["status"].as_str().unwrap_or("").to_string()))
            .collect();
        out.sort();
        Some(out)
    }

    pub fn status_of(&self, worker: usize) -> Option<String> {
        let addr = self.worker_addr(worker);
        self.nodes()?.into_iter().find(|(a, _)| *a == addr).map(|(_, s)| s)
    }

    /// Waits (at most [`SETTLE`]) until the Coordinator shows the three workers `ONLINE`.
    pub fn wait_all_online(&self, what: &str) {
        wait_until(what, SETTLE, || self.nodes().filter(|n| n.len() == 3 && n.iter().all(|(_, s)| s == "ONLINE")));
    }

    /// `GET /v1/range` of the whole file `rel` from the worker on host `worker`.
    pub fn read(&self, worker: usize, rel: &str) -> (u16, Vec<u8>) {
        let uri = self.uri(rel);
        let url = format!(
            "{}/v1/range/{}?ufsFullPath={uri}&offset=0&length={}",
            self.url(worker, HTTP_PORT),
            loam_core::file_id(&uri),
            1u64 << 40
        );
        self.curl(&[&url])
    }

    /// Every log, for a failing test.
    pub fn logs(&self) -> String {
        ["etcd", "coordinator", "worker-2", "worker-3", "worker-4"]
            .iter()
            .map(|n| format!("--- {n}\n{}", tail(&log_path(self.dir.path(), n))))
            .collect()
    }
}

/// Starts `loam args` on host `i` (a server: ready on its banner).
fn loam_on(net: &Net, i: usize, args: &[String], log: &Path) -> Server {
    let mut all = strings(&["netns", "exec", &net.host(i).ns, LOAM]);
    all.extend(args.iter().cloned());
    Server::start(Path::new(IP), &all, log).unwrap_or_else(|e| panic!("host {i}: {e}"))
}

/// etcd, a Coordinator and three workers on their hosts, `/data` mounted on a local directory with `files`.
pub fn start(files: &[(&str, &[u8])]) -> Sim {
    start_with(files, &[])
}

/// [`start`], with `coordinator_flags` added to the Coordinator's.
pub fn start_with(files: &[(&str, &[u8])], coordinator_flags: &[&str]) -> Sim {
    let net = Net::new(6);
    let dir = tempfile::tempdir().unwrap();
    let ufs = dir.path().join("ufs");
    std::fs::create_dir_all(&ufs).unwrap();
    for (rel, bytes) in files {
        std::fs::write(ufs.join(rel), bytes).unwrap();
    }
    let mut sim = Sim { net, dir, ufs, servers: Vec::new(), jobs: Mutex::new(Vec::new()) };
    let etcd_url = sim.url(ETCD, 2379);
    let peer_url = sim.url(ETCD, 2380);
    let etcd_args = strings(&[
        "netns",
        "exec",
        &sim.net.host(ETCD).ns,
        "etcd",
        "--name",
        "n0",
        "--data-dir",
        &sim.dir.path().join("etcd").display().to_string(),
        "--listen-client-urls",
        &etcd_url,
        "--advertise-client-urls",
        &etcd_url,
        "--listen-peer-urls",
        &peer_url,
        "--initial-advertise-peer-urls",
        &peer_url,
        "--initial-cluster",
        &format!("n0={peer_url}"),
        "--heartbeat-interval",
        "50",
        "--election-timeout",
        "250",
        "--log-level",
        "error",
    ]);
    let health = format!("{etcd_url}/health");
    let etcd = Server::start_until(Path::new(IP), &etcd_args, &log_path(sim.dir.path(), "etcd"), || {
        sim.curl(&[&health]).0 == 200
    })
    .expect("etcd starts");
    sim.servers.push(etcd);
    let host = |i: usize| sim.net.host(i).addr.to_string();
    let mut args = strings(&[
        "coordinator",
        "--etcd",
        &etcd_url,
        "--host",
        &host(COORDINATOR),
        "--data-dir",
        &sim.dir.path().join("coordinator").display().to_string(),
        "--allow-local-ufs",
        &sim.dir.path().display().to_string(),
    ]);
    args.extend(strings(coordinator_flags));
    let coordinator = loam_on(&sim.net, COORDINATOR, &args, &log_path(sim.dir.path(), "coordinator"));
    sim.servers.push(coordinator);
    for w in WORKERS {
        let args = strings(&[
            "worker",
            "--etcd",
            &etcd_url,
            "--coordinator",
            &sim.coordinator(),
            "--host",
            &host(w),
            "--data-dir",
            &sim.dir.path().join(format!("worker-{w}")).display().to_string(),
            "--cache-size",
            "64MiB",
            "--memory-size",
            "8MiB",
            "--lease-ttl",
            &LEASE_TTL.to_string(),
            // alluxiofs reads GetObject from port 29998 without credentials.
            "--s3-anonymous-read=true",
        ]);
        let server = loam_on(&sim.net, w, &args, &log_path(sim.dir.path(), &format!("worker-{w}")));
        sim.servers.push(server);
    }
    let mount = format!(r#"{{"path": "/data", "ufs": "file://{}"}}"#, sim.ufs.display());
    let url = format!("{}/api/v1/mount", sim.coordinator());
    let (status, body) = sim.curl(&["-X", "POST", "-H", "Content-Type: application/json", "-d", &mount, &url]);
    assert_eq!(status, 200, "mount: {}", String::from_utf8_lossy(&body));
    sim.wait_all_online("three workers ONLINE");
    sim
}
