//! The processes of the load benchmark: moto (the S3 test server), etcd, one `loam coordinator --etcd`
//! and `loam worker --etcd` processes, each on free loopback ports with its data and log in the bench's
//! temp dir.
//!
//! No process outlives the bench: each is killed and reaped on drop, and because a bench killed with
//! SIGKILL runs no `Drop`, each runs under a shell watchdog (the same one the integration tests use) that
//! kills it once the bench process is gone. The watchdog `exec`s the server, so the child's pid is the
//! server's own, which is what [`Proc::peak_rss`] reads.

use super::pinning::Pinning;
use anyhow::{Context, bail};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a server may take to come up.
const START_CAP: Duration = Duration::from_secs(60);

/// Runs `$2 "$3"...` in place of the shell after forking a watchdog that kills it when process `$1` (the
/// bench) is gone; the watchdog ends with the server. (The same wrapper as `loam_testsupport::watchdog`,
/// which is a dev-only crate the binary cannot use.)
const WATCHDOG: &str = r#"
parent=$1
shift
self=$$
(
  while kill -0 "$parent" 2>/dev/null && kill -0 "$self" 2>/dev/null; do sleep 0.5; done
  kill -0 "$parent" 2>/dev/null || kill -9 "$self" 2>/dev/null
) </dev/null >/dev/null 2>&1 &
exec "$@"
"#;

/// A running server process, killed on drop.
pub struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
    /// Lines it printed on stdout before it was ready (the loam banner), if it was started with one.
    pub banner: Vec<String>,
}

impl Proc {
    /// Starts `program args…` under the watchdog, stdout and stderr to `<dir>/<name>.log`.
    fn spawn(name: &str, dir: &Path, program: &Path, args: &[String], banner: bool) -> anyhow::Result<Self> {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let stdout = if banner { Stdio::piped() } else { Stdio::from(out.try_clone()?) };
        let child = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("loam-bench-watchdog")
            .arg(std::process::id().to_string())
            .arg(program)
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::from(out))
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        Ok(Self { name: name.to_string(), child, log, banner: Vec::new() })
    }

    /// Starts `loam <args>` and waits until it prints "Press Ctrl-C to stop.".
    pub fn loam(name: &str, dir: &Path, args: &[String]) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("finding the loam binary")?;
        let mut p = Self::spawn(name, dir, &exe, args, true)?;
        let stdout = p.child.stdout.take().context("piped stdout")?;
        let (tx, rx) = mpsc::channel();
        // Keeps draining stdout after the banner so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + START_CAP;
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) if line == "Press Ctrl-C to stop." => return Ok(p),
                Ok(line) => p.banner.push(line),
                Err(_) => bail!("{name} did not start:\n{}", p.log_tail()),
            }
        }
    }

    /// Starts `program args…` and waits until `ready()` holds.
    pub fn server(
        name: &str,
        dir: &Path,
        program: &Path,
        args: &[String],
        ready: impl Fn() -> bool,
    ) -> anyhow::Result<Self> {
        let mut p = Self::spawn(name, dir, program, args, false)?;
        let deadline = Instant::now() + START_CAP;
        while !ready() {
            if !matches!(p.child.try_wait(), Ok(None)) || Instant::now() > deadline {
                bail!("{name} did not start:\n{}", p.log_tail());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(p)
    }

    /// The process id (the server's own: the watchdog shell `exec`s it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident set size in bytes since start or the last [`Proc::reset_peak_rss`] (`VmHWM`).
    pub fn peak_rss(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .with_context(|| format!("no VmHWM for {}", self.name))?;
        Ok(kib * 1024)
    }

    /// Resets the peak RSS to the current RSS (`echo 5 > /proc/<pid>/clear_refs`), so that each data set
    /// reports its own peak; `Err` where the kernel refuses it (then peaks are since start).
    pub fn reset_peak_rss(&self) -> std::io::Result<()> {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5")
    }

    /// The last lines of its log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // An error means it has exited already; either way nothing is left running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The answer (head and body) to `GET http://127.0.0.1:<port><path>`; `None` while nothing answers.
pub fn get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).ok()?;
    answer.starts_with("HTTP/1.").then_some(answer)
}

/// Starts moto's S3 server from the venv (`$LOAM_VENV` or `~/.cache/loam/venv`) on `port`, on the CPUs
/// `pin` gives it if any.
pub fn start_moto(dir: &Path, port: u16, pin: Option<&Pinning>) -> anyhow::Result<Proc> {
    let venv = std::env::var_os("LOAM_VENV").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root"));
        home.join(".cache/loam/venv")
    });
    let moto = venv.join("bin/moto_server");
    if !moto.is_file() {
        bail!("{} not found: run scripts/setup-test-deps.sh (or set LOAM_VENV)", moto.display());
    }
    let args = ["-H".to_string(), "127.0.0.1".into(), "-p".into(), port.to_string()];
    let (program, args) = pinned(pin, &moto, &args);
    Proc::server("moto", dir, &program, &args, || get(port, "/moto-api/").is_some())
}

/// Starts `s3s-fs` (an S3 server over a directory, with real ranged reads) on `port`, with `bucket` made,
/// on the CPUs `pin` gives it if any.
pub fn start_s3s_fs(dir: &Path, bin: &Path, port: u16, bucket: &str, pin: Option<&Pinning>) -> anyhow::Result<Proc> {
    let root = dir.join("s3s-data");
    std::fs::create_dir_all(root.join(bucket))?;
    let args: Vec<String> = ["--host", "127.0.0.1", "--port", &port.to_string(), "--access-key", "loam-bench"]
        .into_iter()
        .map(str::to_string)
        .chain(["--secret-key".to_string(), "loam-bench".to_string(), root.display().to_string()])
        .collect();
    let (program, args) = pinned(pin, bin, &args);
    Proc::server("s3s-fs", dir, &program, &args, || get(port, "/").is_some())
}

fn pinned(pin: Option<&Pinning>, program: &Path, args: &[String]) -> (PathBuf, Vec<String>) {
    match pin {
        Some(p) => p.wrap_s3(program, args),
        None => (program.to_path_buf(), args.to_vec()),
    }
}

/// Starts a single-member etcd on `client` and `peer` ports with its data under `dir`.
pub fn start_etcd(dir: &Path, etcd: &Path, client: u16, peer: u16) -> anyhow::Result<Proc> {
    let (c, p) = (format!("http://127.0.0.1:{client}"), format!("http://127.0.0.1:{peer}"));
    let args: Vec<String> = [
        "--name",
        "loam-bench",
        "--data-dir",
        &dir.join("etcd").display().to_string(),
        "--listen-client-urls",
        &c,
        "--advertise-client-urls",
        &c,
        "--listen-peer-urls",
        &p,
        "--initial-advertise-peer-urls",
        &p,
        "--initial-cluster",
        &format!("loam-bench={p}"),
        "--heartbeat-interval",
        "50",
        "--election-timeout",
        "250",
        "--log-level",
        "error",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    Proc::server("etcd", dir, etcd, &args, || get(client, "/health").is_some_and(|a| a.contains(r#""health":"true""#)))
}
