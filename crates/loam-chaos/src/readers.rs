//! The verified readers: four kinds, each on its own thread (and the Python ones in their own process),
//! reading whole files of the soak in a loop from start to end, every body checked against the version
//! its first bytes name ([`crate::data`]).
//!
//! | kind | client | how it finds a worker |
//! | --- | --- | --- |
//! | `s3` | boto3 (`py/chaos_reader.py`), no retries | always worker 0's S3 API, which serves or forwards to the owner |
//! | `alluxio` | the unmodified `alluxio==1.0.0` client | its own ring from etcd (refreshed every second): it addresses the owner directly |
//! | `fs-cat` | a `loam fs cat --etcd … --no-ufs-fallback` process per read | `loam-client`'s ring with failover (and the view it kept while etcd is down) |
//! | `fuse` | `loam fuse --no-ufs-fallback`, read with `std::fs` | `loam-client`, as `fs-cat` |
//!
//! No reader falls back to the UFS: every byte comes from a worker. Each read becomes an [`Event`]: its
//! time, and whether it was right, wrong (bytes of no version) or failed (the error text).

use crate::cluster::{Endpoints, loam_command, loam_server};
use crate::data::{self, Files, Seen, Verdict};
use loam_testsupport::process::Server;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The reader kinds, in report order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    S3,
    Alluxio,
    FsCat,
    Fuse,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::S3, Kind::Alluxio, Kind::FsCat, Kind::Fuse];

    pub fn name(self) -> &'static str {
        match self {
            Kind::S3 => "s3",
            Kind::Alluxio => "alluxio",
            Kind::FsCat => "fs-cat",
            Kind::Fuse => "fuse",
        }
    }
}

/// How one read ended.
#[derive(Clone, Debug)]
pub enum Outcome {
    Right,
    /// Bytes of no version of the file: what is wrong with them.
    Wrong(String),
    /// Pages of different versions, each right, from a client that reads page by page (see
    /// [`data::Verdict::AcrossRequests`]).
    AcrossRequests(String),
    /// The read failed: the error.
    Failed(String),
}

/// One read.
#[derive(Clone, Debug)]
pub struct Event {
    pub kind: Kind,
    /// Seconds since the soak started.
    pub t: f64,
    pub file: usize,
    pub outcome: Outcome,
}

/// Where readers put their events, and the soak's clock.
#[derive(Clone)]
pub struct Log {
    start: Instant,
    events: Arc<Mutex<Vec<Event>>>,
}

impl Log {
    pub fn new(start: Instant) -> Self {
        Self { start, events: Default::default() }
    }

    /// Seconds since the soak started.
    pub fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    pub fn push(&self, kind: Kind, file: usize, outcome: Outcome) {
        let e = Event { kind, t: self.now(), file, outcome };
        self.events.lock().expect("events").push(e);
    }

    /// Every event so far, in time order.
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().expect("events").clone()
    }
}

/// The running readers.
pub struct Readers {
    stop: Arc<AtomicBool>,
    children: Vec<Child>,
    threads: Vec<JoinHandle<()>>,
    fuse: Option<FuseMount>,
    /// Reader kinds that could not run here, and why.
    pub skipped: Vec<(Kind, String)>,
}

impl Readers {
    /// Starts one reader of each kind.
    pub fn start(ep: &Endpoints, files: Arc<Files>, log: &Log, dir: &Path, seed: u64) -> anyhow::Result<Self> {
        let mut r =
            Self { stop: Arc::default(), children: Vec::new(), threads: Vec::new(), fuse: None, skipped: Vec::new() };
        let script = dir.join("chaos_reader.py");
        std::fs::write(&script, include_str!("../py/chaos_reader.py"))?;
        let n = files.count();
        let keys: Vec<String> = (0..n).map(|f| format!("{}/{}", data::DIR, data::name(f))).collect();
        let (access_key, secret_key) = crate::cluster::S3_KEYS;
        let s3 = serde_json::json!({
            "endpoint": ep.s3, "access_key": access_key, "secret_key": secret_key, "bucket": "data", "keys": keys,
        });
        let (host, port) = ep.etcd.trim_start_matches("http://").rsplit_once(':').expect("etcd host:port");
        let uris: Vec<String> = keys.iter().map(|k| format!("{}/{k}", crate::cluster::file_uri(&ep.ufs))).collect();
        let alluxio = serde_json::json!({"etcd_host": host, "etcd_port": port, "uris": uris});
        for (kind, mode, plan) in [(Kind::S3, "s3", s3), (Kind::Alluxio, "alluxio", alluxio)] {
            let log_file = dir.join(format!("reader-{mode}.log"));
            let child = python(&script, mode, seed, &plan, &log_file)?;
            r.children.push(child);
            let stdout = r.children.last_mut().expect("pushed").stdout.take().expect("piped");
            let (files, log) = (files.clone(), log.clone());
            r.threads.push(std::thread::spawn(move || follow_python(kind, stdout, &files, &log)));
        }
        let (stop, files2, log2, etcd) = (r.stop.clone(), files.clone(), log.clone(), ep.etcd.clone());
        let cache = dir.join("cli-cache");
        r.threads.push(std::thread::spawn(move || fs_cat_loop(&etcd, &cache, &files2, &log2, &stop, seed)));
        if Path::new("/dev/fuse").exists() {
            let mount = FuseMount::start(dir, &ep.etcd)?;
            let (stop, root) = (r.stop.clone(), mount.point.join("data").join(data::DIR));
            let log = log.clone();
            r.threads.push(std::thread::spawn(move || fuse_loop(&root, &files, &log, &stop, seed)));
            r.fuse = Some(mount);
        } else {
            r.skipped
                .push((Kind::Fuse, "/dev/fuse is missing (modprobe fuse; in a container, --device /dev/fuse)".into()));
        }
        Ok(r)
    }

    /// Stops every reader and waits for its thread; the reader kinds that could not run.
    pub fn stop(mut self) -> Vec<(Kind, String)> {
        self.stop.store(true, Ordering::SeqCst);
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        // A FUSE read blocked in the kernel ends once its process is gone.
        drop(self.fuse.take());
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        std::mem::take(&mut self.skipped)
    }
}

/// `python chaos_reader.py <mode> <seed>` from the test venv, with `plan` on stdin, under the watchdog.
fn python(script: &Path, mode: &str, seed: u64, plan: &serde_json::Value, log: &Path) -> anyhow::Result<Child> {
    let python = loam_testsupport::s3_server::venv_dir().join("bin/python");
    anyhow::ensure!(python.is_file(), "{} not found: run scripts/setup-test-deps.sh", python.display());
    let mut child = loam_testsupport::watchdog::watched("loam-chaos-reader", &python)
        .arg(script)
        .args([mode, &seed.to_string()])
        // etcd3 0.12's generated code predates protobuf 4 (as in the e2e tests).
        .env("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(log)?))
        .spawn()?;
    let mut stdin = child.stdin.take().expect("piped");
    std::io::Write::write_all(&mut stdin, plan.to_string().as_bytes())?;
    Ok(child)
}

/// Turns a Python reader's lines into events until it exits.
fn follow_python(kind: Kind, stdout: impl Read, files: &Files, log: &Log) {
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
        let Some(f) = v["i"].as_u64().map(|i| i as usize) else { continue };
        if let Some(err) = v["err"].as_str() {
            log.push(kind, f, Outcome::Failed(err.to_string()));
            continue;
        }
        let head = hex::decode(v["head"].as_str().unwrap_or_default()).unwrap_or_default();
        let seen = Seen {
            len: v["len"].as_u64().unwrap_or(0) as usize,
            sha256: v["sha256"].as_str().unwrap_or(""),
            head: &head,
        };
        let pages: Vec<String> = serde_json::from_value(v["pages"].clone()).unwrap_or_default();
        let o = match files.check_pages(f, seen, &pages) {
            Verdict::Right => Outcome::Right,
            // Only the alluxio client reads page by page; one S3 response must hold one version.
            Verdict::AcrossRequests(why) if kind == Kind::Alluxio => Outcome::AcrossRequests(why),
            Verdict::AcrossRequests(why) | Verdict::Wrong(why) => Outcome::Wrong(why),
        };
        log.push(kind, f, o);
    }
}

fn outcome(wrong: Option<String>) -> Outcome {
    wrong.map_or(Outcome::Right, Outcome::Wrong)
}

/// How long one `loam fs cat` may take before it counts as failed (and is killed).
const CLI_CAP: Duration = Duration::from_secs(30);

fn fs_cat_loop(etcd: &str, cache: &Path, files: &Files, log: &Log, stop: &AtomicBool, seed: u64) {
    let mut rng = crate::Rng::new(seed ^ 0xf5);
    while !stop.load(Ordering::SeqCst) {
        let f = rng.below(files.count());
        let path = format!("/data/{}/{}", data::DIR, data::name(f));
        let out = loam_command().map_err(|e| e.to_string()).and_then(|mut cmd| {
            cmd.args(["fs", "cat", "--etcd", etcd, "--no-ufs-fallback", &path]).env("XDG_CACHE_HOME", cache);
            run_capped(cmd, CLI_CAP)
        });
        match out {
            Ok(body) => log.push(Kind::FsCat, f, outcome(files.check_body(f, &body))),
            Err(e) => log.push(Kind::FsCat, f, Outcome::Failed(e)),
        }
    }
}

/// Runs `cmd`; its stdout when it exits 0, else the last line of its stderr (or that it took too long).
fn run_capped(mut cmd: Command, cap: Duration) -> Result<Vec<u8>, String> {
    let mut child =
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().map_err(|e| e.to_string())?;
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("piped")));
    let err = drain(Box::new(child.stderr.take().expect("piped")));
    let deadline = Instant::now() + cap;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let (out, err) = (out.join().unwrap_or_default(), err.join().unwrap_or_default());
    match status {
        Some(s) if s.success() => Ok(out),
        Some(s) => {
            let text = String::from_utf8_lossy(&err);
            Err(format!("{s}: {}", text.lines().last().unwrap_or("").trim()))
        }
        None => Err(format!("did not finish within {cap:?}")),
    }
}

fn fuse_loop(root: &Path, files: &Files, log: &Log, stop: &AtomicBool, seed: u64) {
    let mut rng = crate::Rng::new(seed ^ 0xf05e);
    while !stop.load(Ordering::SeqCst) {
        let f = rng.below(files.count());
        match std::fs::read(root.join(data::name(f))) {
            Ok(body) => log.push(Kind::Fuse, f, outcome(files.check_body(f, &body))),
            Err(e) if stop.load(Ordering::SeqCst) => drop(e),
            Err(e) => {
                log.push(Kind::Fuse, f, Outcome::Failed(e.to_string()));
                // A failing mount fails at once: do not flood the log.
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// A `loam fuse --foreground` process and its mount point; unmounted on drop.
struct FuseMount {
    server: Option<Server>,
    point: PathBuf,
}

impl FuseMount {
    fn start(dir: &Path, etcd: &str) -> anyhow::Result<Self> {
        let point = dir.join("fuse-mnt");
        std::fs::create_dir_all(&point)?;
        let p = point.display().to_string();
        // No attribute cache: a rewritten file's new length is seen at once.
        let args =
            ["fuse", "--foreground", "--mount-point", &p, "--etcd", etcd, "--no-ufs-fallback", "--attr-timeout", "0"];
        let server = loam_server("fuse", dir, &args)?;
        Ok(Self { server: Some(server), point })
    }
}

impl Drop for FuseMount {
    fn drop(&mut self) {
        drop(self.server.take());
        for (bin, args) in [("fusermount3", ["-u", "-z"]), ("umount", ["-l", "--"])] {
            let _ = Command::new(bin).args(args).arg(&self.point).output();
        }
    }
}
