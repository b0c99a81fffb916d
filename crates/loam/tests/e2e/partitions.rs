//! Partitions between real processes on separate "machines" (issue 13): etcd, a Coordinator and three
//! workers, each in a network namespace of its own with its own address (`loam_testsupport::netns`), every
//! worker on the default ports (28080, 29998), and a client host that talks to them with `curl`. Faults
//! are nftables rules inside the namespaces. What each side does is written in docs/SEMANTICS.md
//! ("Partitions"); these tests assert it: no wrong byte on the data path, the Coordinator's view right
//! while cut off and again within the lease TTL plus 5 s after the partition heals.

use crate::cluster::wait_until;
use crate::process::{LOAM, Server, log_path, strings, tail};
use loam_testsupport::auth::ALL_ROLES;
use loam_testsupport::data::content;
use loam_testsupport::netns::Net;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const ETCD: usize = 0;
const COORDINATOR: usize = 1;
const WORKERS: [usize; 3] = [2, 3, 4];
const CLIENT: usize = 5;
/// The workers' lease TTL, seconds.
const LEASE_TTL: u64 = 3;
/// How long the cluster may take to see a change: the lease TTL plus 5 s (the issue's bound).
const SETTLE: Duration = Duration::from_secs(LEASE_TTL + 5);
/// The `ip` command, which runs a program in a namespace (and execs it: the server's pid is the program's).
const IP: &str = "/usr/sbin/ip";

/// The cluster on its hosts, and where its files are.
struct Sim {
    net: Net,
    dir: tempfile::TempDir,
    ufs: PathBuf,
    servers: Vec<Server>,
}

impl Sim {
    fn url(&self, host: usize, port: u16) -> String {
        format!("http://{}:{port}", self.net.host(host).addr)
    }

    /// `curl` on the client host: the status and the body (an unreachable server is status 0).
    fn curl(&self, args: &[&str]) -> (u16, Vec<u8>) {
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

    /// The Coordinator's view: worker address → status (`ONLINE`/`OFFLINE`), or `None` when it cannot answer.
    fn nodes(&self) -> Option<Vec<(String, String)>> {
        let (status, body) = self.curl(&[&format!("{}/api/v1/nodes", self.url(COORDINATOR, 19999))]);
        if status != 200 {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
        let mut out: Vec<(String, String)> = v["result"]
            .as_array()?
            .iter()
            .map(|n| (n["address"].as_str().unwrap_or("").to_string(), n["status"].as_str().unwrap_or("").to_string()))
            .collect();
        out.sort();
        Some(out)
    }

    fn status_of(&self, worker: usize) -> Option<String> {
        let addr = format!("{}:28080", self.net.host(worker).addr);
        self.nodes()?.into_iter().find(|(a, _)| *a == addr).map(|(_, s)| s)
    }

    /// `GET /v1/range` of the whole file `rel` from the worker on host `worker`.
    fn read(&self, worker: usize, rel: &str) -> (u16, Vec<u8>) {
        let uri = format!("file://{}/{rel}", self.ufs.display());
        let url = format!(
            "{}/v1/range/{}?ufsFullPath={uri}&offset=0&length={}",
            self.url(worker, 28080),
            loam_core::file_id(&uri),
            1u64 << 40
        );
        self.curl(&[&url])
    }

    /// Every log, for a failing test.
    fn logs(&self) -> String {
        ["etcd", "coordinator", "worker-2", "worker-3", "worker-4"]
            .iter()
            .map(|n| format!("--- {n}\n{}", tail(&log_path(self.dir.path(), n))))
            .collect()
    }
}

/// Starts `program args` on host `i` (a `loam` server: ready on its banner).
fn loam_on(net: &Net, i: usize, args: &[String], log: &Path) -> Server {
    let mut all = strings(&["netns", "exec", &net.host(i).ns, LOAM]);
    all.extend(args.iter().cloned());
    Server::start(Path::new(IP), &all, log).unwrap_or_else(|e| panic!("host {i}: {e}"))
}

/// etcd, a Coordinator and three workers on their hosts, `/data` mounted on a local directory with `files`.
fn start(files: &[(&str, &[u8])]) -> Sim {
    start_with(files, &[])
}

/// [`start`], with `coordinator_flags` added to the Coordinator's.
fn start_with(files: &[(&str, &[u8])], coordinator_flags: &[&str]) -> Sim {
    let net = Net::new(6);
    let dir = tempfile::tempdir().unwrap();
    let ufs = dir.path().join("ufs");
    std::fs::create_dir_all(&ufs).unwrap();
    for (rel, bytes) in files {
        std::fs::write(ufs.join(rel), bytes).unwrap();
    }
    let mut sim = Sim { net, dir, ufs, servers: Vec::new() };
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
    let mut flags = strings(coordinator_flags);
    let coordinator = loam_on(
        &sim.net,
        COORDINATOR,
        &[
            strings(&[
                "coordinator",
                "--etcd",
                &etcd_url,
                "--host",
                &host(COORDINATOR),
                "--data-dir",
                &sim.dir.path().join("coordinator").display().to_string(),
                "--allow-local-ufs",
                &sim.dir.path().display().to_string(),
            ]),
            std::mem::take(&mut flags),
        ]
        .concat(),
        &log_path(sim.dir.path(), "coordinator"),
    );
    sim.servers.push(coordinator);
    for w in WORKERS {
        let server = loam_on(
            &sim.net,
            w,
            &strings(&[
                "worker",
                "--etcd",
                &etcd_url,
                "--coordinator",
                &sim.url(COORDINATOR, 19999),
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
            ]),
            &log_path(sim.dir.path(), &format!("worker-{w}")),
        );
        sim.servers.push(server);
    }
    let mount = format!(r#"{{"path": "/data", "ufs": "file://{}"}}"#, sim.ufs.display());
    let url = format!("{}/api/v1/mount", sim.url(COORDINATOR, 19999));
    let (status, body) = sim.curl(&["-X", "POST", "-H", "Content-Type: application/json", "-d", &mount, &url]);
    assert_eq!(status, 200, "mount: {}", String::from_utf8_lossy(&body));
    wait_until("three workers ONLINE", SETTLE, || {
        sim.nodes().filter(|n| n.len() == 3 && n.iter().all(|(_, s)| s == "ONLINE"))
    });
    sim
}

#[test]
fn a_worker_cut_from_etcd_serves_its_clients_goes_offline_and_comes_back_when_healed() {
    let data = content(3 << 20, 7);
    let sim = start(&[("f.bin", &data)]);
    let worker = WORKERS[0];
    assert_eq!(sim.read(worker, "f.bin"), (200, data.clone()), "{}", sim.logs());
    sim.net.cut(worker, ETCD);
    // Its lease cannot be renewed: the Coordinator (which still reaches etcd) sees it OFFLINE.
    wait_until("the cut worker OFFLINE", SETTLE, || sim.status_of(worker).filter(|s| s == "OFFLINE"));
    // Its clients still reach it, and it serves the right bytes: the data path never waits on etcd.
    for _ in 0..3 {
        assert_eq!(sim.read(worker, "f.bin"), (200, data.clone()), "served while cut from etcd");
    }
    assert_eq!(sim.read(WORKERS[1], "f.bin"), (200, data.clone()), "the others serve too");
    sim.net.heal(worker, ETCD);
    let healed = Instant::now();
    wait_until("the worker ONLINE again", SETTLE, || sim.status_of(worker).filter(|s| s == "ONLINE"));
    eprintln!("ONLINE again {:?} after the heal", healed.elapsed());
    assert_eq!(sim.read(worker, "f.bin"), (200, data), "{}", sim.logs());
}

#[test]
fn a_coordinator_cut_from_etcd_answers_errors_while_workers_serve_and_recovers_when_healed() {
    let data = content(1 << 20, 8);
    let sim = start(&[("g.bin", &data)]);
    sim.net.cut(COORDINATOR, ETCD);
    // Its API cannot read the store: an error status (never a made-up answer); the data path is untouched.
    wait_until("the Coordinator's API fails", SETTLE, || sim.nodes().is_none().then_some(()));
    for w in WORKERS {
        assert_eq!(sim.read(w, "g.bin"), (200, data.clone()), "worker on host {w} while the Coordinator is cut off");
    }
    sim.net.heal(COORDINATOR, ETCD);
    wait_until("the Coordinator sees three workers ONLINE again", SETTLE, || {
        sim.nodes().filter(|n| n.len() == 3 && n.iter().all(|(_, s)| s == "ONLINE"))
    });
}

#[test]
fn reads_through_a_lossy_link_are_slow_but_right() {
    let data = content(2 << 20, 9);
    let sim = start(&[("h.bin", &data)]);
    sim.net.loss(WORKERS[1], 20);
    for _ in 0..3 {
        assert_eq!(sim.read(WORKERS[1], "h.bin"), (200, data.clone()), "20 % of the packets lost, no byte wrong");
    }
    sim.net.heal(WORKERS[1], CLIENT);
}

/// The state and `runningState` of load job `id`, as the Coordinator answers them.
fn job(sim: &Sim, id: &str) -> Option<serde_json::Value> {
    let (status, body) = sim.curl(&[&format!("{}/api/v1/load?id={id}", sim.url(COORDINATOR, 19999))]);
    (status == 200).then(|| serde_json::from_slice(&body).ok()).flatten()
}

#[test]
fn a_worker_cut_from_the_coordinator_stays_online_and_gets_its_files_once_healed() {
    let files: Vec<(String, Vec<u8>)> = (0..12).map(|i| (format!("f{i}.bin"), content(40_000 + i, i as u32))).collect();
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
    // Long enough a window that the job still retries the cut worker when the link heals.
    let sim = start_with(&refs, &["--job-retry-window", "60s"]);
    let worker = WORKERS[0];
    sim.net.cut(worker, COORDINATOR);
    let url = format!("{}/api/v1/load", sim.url(COORDINATOR, 19999));
    let (status, body) =
        sim.curl(&["-X", "POST", "-H", "Content-Type: application/json", "-d", r#"{"paths": ["/data"]}"#, &url]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let id = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["id"].as_str().unwrap().to_string();
    // The other workers' files load; the cut worker's batches hang or fail as unreachable, and the job keeps
    // them (retried for its window) instead of failing them.
    let j = wait_until("the other workers' files loaded", SETTLE, || {
        job(&sim, &id).filter(|j| j["loadedNonEmptyFiles"].as_u64() >= Some(1))
    });
    assert_eq!((j["state"].as_str(), j["failedFiles"].as_u64()), (Some("RUNNING"), Some(0)), "{j}");
    // Give the cut worker's batches time to fail (or hang) while cut; none of its files may be loaded yet.
    std::thread::sleep(Duration::from_secs(2));
    let j = job(&sim, &id).unwrap();
    assert_eq!(j["state"], "RUNNING", "the job waits for the cut worker: {j}");
    assert!(j["loadedNonEmptyFiles"].as_u64() < Some(files.len() as u64), "the cut worker's files wait: {j}");
    // The worker still renews its lease with etcd: the cluster sees it ONLINE, and it owns its files still.
    assert_eq!(sim.status_of(worker).as_deref(), Some("ONLINE"), "{}", sim.logs());
    sim.net.heal(worker, COORDINATOR);
    let done = wait_until("the job ends", Duration::from_secs(60), || {
        job(&sim, &id).filter(|j| j["state"] != "RUNNING" && j["state"] != "VERIFYING")
    });
    assert_eq!((done["state"].as_str(), done["failedFiles"].as_u64()), (Some("SUCCEEDED"), Some(0)), "{done}");
    // Every file reads back right through the cut worker.
    for (name, data) in &files {
        assert_eq!(sim.read(worker, name), (200, data.clone()), "{name}");
    }
}

#[test]
fn a_cut_that_outlasts_the_retry_window_fails_only_the_cut_workers_files() {
    let files: Vec<(String, Vec<u8>)> =
        (0..12).map(|i| (format!("f{i}.bin"), content(30_000 + i, 50 + i as u32))).collect();
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
    let sim = start_with(&refs, &["--job-retry-window", "3s"]);
    sim.net.cut(WORKERS[0], COORDINATOR);
    let url = format!("{}/api/v1/load", sim.url(COORDINATOR, 19999));
    let (status, body) =
        sim.curl(&["-X", "POST", "-H", "Content-Type: application/json", "-d", r#"{"paths": ["/data"]}"#, &url]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let id = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["id"].as_str().unwrap().to_string();
    // No job is lost or left hanging: it ends, with the cut worker's files failed and every other file loaded.
    let done = wait_until("the job ends", Duration::from_secs(90), || {
        job(&sim, &id).filter(|j| j["state"] != "RUNNING" && j["state"] != "VERIFYING")
    });
    let failed = done["failedFiles"].as_u64().unwrap_or(0);
    assert_eq!(done["state"], "FAILED", "{done}");
    assert!(failed > 0 && failed < files.len() as u64, "only the cut worker's files fail: {done}");
    assert_eq!(done["loadedNonEmptyFiles"].as_u64(), Some(files.len() as u64 - failed), "{done}");
    sim.net.heal(WORKERS[0], COORDINATOR);
}
