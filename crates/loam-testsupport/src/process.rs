//! Server processes started by tests and benchmarks: `loam coordinator`, `loam worker`, `loam local`, or
//! any program that is ready once a check passes (an S3 server).
//!
//! Nothing here can hang its caller: a start is waited on with a cap (the banner is read on a thread),
//! and a server is killed and reaped on drop (a panicking test unwinds through it). A caller that is itself
//! killed runs no `Drop`, so a server runs under the watchdog ([`crate::watchdog`]) that kills it once the
//! calling process is gone. The watchdog `exec`s the server, so [`Server::pid`] is the server's own (its
//! `/proc/<pid>/status` is the server's). Output goes to a log file that callers print when a test fails;
//! restarts append to the same file.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a server may take to start on a loaded machine.
const START_CAP: Duration = Duration::from_secs(60);
/// The last line of the banner a `loam` server prints when it is ready.
pub const READY_LINE: &str = "Press Ctrl-C to stop.";
/// The user's settings a server must not inherit: a test or a benchmark passes everything it means.
const CLEARED_ENV: [&str; 9] = [
    "LOAM_COORDINATOR",
    "LOAM_ETCD",
    "LOAM_CLUSTER_NAME",
    "LOAM_WORKERS_FILE",
    "LOAM_TOKEN",
    "LOAM_TOKEN_FILE",
    "LOAM_AUTH_TOKEN_FILE",
    "LOAM_CLUSTER_TOKEN_FILE",
    "RUST_LOG",
];

/// [`clean_env`] with the test tokens ([`crate::auth::with_test_tokens`]): what servers start with.
fn test_env(cmd: Command) -> Command {
    crate::auth::with_test_tokens(clean_env(cmd))
}

/// `cmd` without the user's `LOAM_*` settings and `RUST_LOG`, so it sees only what its caller passes.
pub fn clean_env(mut cmd: Command) -> Command {
    for var in CLEARED_ENV {
        cmd.env_remove(var);
    }
    cmd
}

/// A running server process, killed on drop.
pub struct Server {
    child: Child,
    log: PathBuf,
    /// The lines it printed before [`READY_LINE`] (empty for a server started with [`Server::start_until`]).
    pub banner: Vec<String>,
}

impl Server {
    /// Starts `program args…` with stderr appended to `log`, and waits for its banner (the lines up to
    /// [`READY_LINE`]). `Err` (with the log's tail) when the process exits before it is ready, e.g. because
    /// its port was taken meanwhile. Panics when it is not ready within a minute.
    pub fn start(program: &Path, args: &[String], log: &Path) -> Result<Self, String> {
        let err = OpenOptions::new().create(true).append(true).open(log).expect("open the process log");
        let mut child = test_env(crate::watchdog::watched("loam-watchdog", program))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        // Keeps draining stdout after the banner so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut server = Self { child, log: log.to_path_buf(), banner: Vec::new() };
        let deadline = Instant::now() + START_CAP;
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) if line == READY_LINE => return Ok(server),
                Ok(line) => server.banner.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = server.child.wait().map(|s| s.to_string()).unwrap_or_default();
                    let program = program.display();
                    return Err(format!("{program} {args:?} exited before it was ready ({status}):\n{}", tail(log)));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("{} {args:?} was not ready within {START_CAP:?}:\n{}", program.display(), tail(log))
                }
            }
        }
    }

    /// Starts `program args…` with stdout and stderr appended to `log`, and waits until `ready()` holds.
    /// `Err` (with the log's tail) when the process exits first; panics when it is not ready within a minute.
    pub fn start_until(program: &Path, args: &[String], log: &Path, ready: impl Fn() -> bool) -> Result<Self, String> {
        let out = OpenOptions::new().create(true).append(true).open(log).expect("open the process log");
        let err = out.try_clone().expect("clone the log file handle");
        let child = test_env(crate::watchdog::watched("loam-watchdog", program))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let mut server = Self { child, log: log.to_path_buf(), banner: Vec::new() };
        let deadline = Instant::now() + START_CAP;
        while !ready() {
            if !server.is_running() {
                let program = program.display();
                return Err(format!("{program} {args:?} exited before it was ready:\n{}", tail(log)));
            }
            assert!(
                Instant::now() < deadline,
                "{} was not ready within {START_CAP:?}:\n{}",
                program.display(),
                tail(log)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(server)
    }

    /// The process id (the server's own: the watchdog shell `exec`s it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The last lines of its log.
    pub fn log_tail(&self) -> String {
        tail(&self.log)
    }

    /// Sends `signal` (e.g. "-INT") and waits for the exit, which must be clean.
    pub fn stop_with(mut self, signal: &str) {
        let pid = self.pid().to_string();
        let sent = Command::new("kill").args([signal, &pid]).status().expect("run kill");
        assert!(sent.success(), "kill {signal} {pid}");
        let status = self.wait_exit();
        assert!(status.success(), "the server exits 0 on {signal}, got {status}");
    }

    /// `kill -9`: no clean-up of any kind runs in the process.
    pub fn kill9(mut self) {
        self.child.kill().expect("SIGKILL the process");
        self.wait_exit();
    }

    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + START_CAP;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the process") {
                return status;
            }
            assert!(Instant::now() < deadline, "pid {} did not exit within {START_CAP:?}", self.pid());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // An error means it has exited already; either way nothing is left running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last 40 lines of a log file, for failure messages.
pub fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// The log file of a process named `name` under `dir`: `<dir>/<name>.log`.
pub fn log_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.log"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        vec!["-c".into(), script.into()]
    }

    #[test]
    fn a_server_is_ready_on_its_banner_and_gone_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let log = log_path(dir.path(), "banner");
        let script = format!("echo one; echo on stderr >&2; echo '{READY_LINE}'; exec sleep 600");
        let mut s = Server::start(Path::new("/bin/sh"), &sh(&script), &log).unwrap();
        assert_eq!(s.banner, ["one"]);
        assert!(s.is_running());
        let pid = s.pid();
        drop(s);
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "killed and reaped on drop");
        assert!(tail(&log).contains("on stderr"), "stderr goes to the log");

        let e = Server::start(Path::new("/bin/sh"), &sh("echo early exit >&2; exit 3"), &log).err().unwrap();
        assert!(e.contains("exited before it was ready") && e.contains("early exit"), "{e}");
    }

    #[test]
    fn a_server_is_ready_when_its_check_passes_and_stops_on_a_signal() {
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("ready");
        let script = format!("trap 'exit 0' TERM; echo started; touch {}; while :; do sleep 0.1; done", flag.display());
        let log = log_path(dir.path(), "check");
        let s = Server::start_until(Path::new("/bin/sh"), &sh(&script), &log, || flag.exists()).unwrap();
        assert!(s.banner.is_empty());
        s.stop_with("-TERM");
        assert!(tail(&log).contains("started"), "stdout goes to the log");
        let e = Server::start_until(Path::new("/bin/sh"), &sh("exit 1"), &log, || false).err().unwrap();
        assert!(e.contains("exited before it was ready"), "{e}");
    }
}
