//! Real `loam` processes for the tests: a long-running server ([`Server`]: `loam coordinator` or `loam
//! worker`) that is ready once it prints "Press Ctrl-C to stop.", and one-shot runs ([`run_cli`], [`run_capped`]).
//!
//! Nothing here can hang a test: the banner is read on a thread and waited on with a cap, CLI runs are
//! killed after a cap, and a server is killed and reaped on drop (a panicking test unwinds through it).
//! A test binary that is itself killed runs no `Drop`, so a server runs under a shell watchdog (as
//! `loam_testsupport::EtcdServer`'s etcd does) that kills it once the test process is gone: no process
//! outlives its test. Servers write stderr to a log file that the cluster prints when a
//! test fails; restarts append to the same file.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The binary under test.
pub const LOAM: &str = env!("CARGO_BIN_EXE_loam");

/// How long a server may take to print its banner on a loaded machine.
const START_CAP: Duration = Duration::from_secs(60);
/// How long one CLI run may take.
const CLI_CAP: Duration = Duration::from_secs(60);
/// The banner's last line.
const READY_LINE: &str = "Press Ctrl-C to stop.";

/// `loam` with none of the user's `LOAM_*` settings, so a test sees only what it passes.
pub fn loam() -> Command {
    clean_env(Command::new(LOAM))
}

fn clean_env(mut c: Command) -> Command {
    for var in ["LOAM_COORDINATOR", "LOAM_ETCD", "LOAM_CLUSTER_NAME", "LOAM_WORKERS_FILE", "RUST_LOG"] {
        c.env_remove(var);
    }
    c
}

/// A running server process, killed on drop.
pub struct Server {
    child: Child,
    /// The lines printed before "Press Ctrl-C to stop.".
    pub banner: Vec<String>,
}

impl Server {
    /// Starts `loam <args>` with stderr appended to `log`, and waits for its banner. `Err` (with the log's
    /// tail) when the process exits before it is ready, e.g. because its port was taken meanwhile.
    pub fn start(args: &[String], log: &Path) -> Result<Self, String> {
        let err = OpenOptions::new().create(true).append(true).open(log).expect("open the process log");
        let mut child = clean_env(loam_testsupport::watchdog::watched("loam-watchdog", LOAM))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(err))
            .spawn()
            .expect("spawn loam");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        // Keeps draining stdout after the banner so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut server = Self { child, banner: Vec::new() };
        let deadline = Instant::now() + START_CAP;
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) if line == READY_LINE => return Ok(server),
                Ok(line) => server.banner.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = server.child.wait().map(|s| s.to_string()).unwrap_or_default();
                    return Err(format!("loam {args:?} exited before it was ready ({status}):\n{}", tail(log)));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("loam {args:?} was not ready within {START_CAP:?}:\n{}", tail(log))
                }
            }
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends `signal` (e.g. "-INT") and waits for the exit, which must be clean.
    pub fn stop_with(mut self, signal: &str) {
        let pid = self.pid().to_string();
        let sent = Command::new("kill").args([signal, &pid]).status().expect("run kill");
        assert!(sent.success(), "kill {signal} {pid}");
        let status = self.wait_exit();
        assert!(status.success(), "loam exits 0 on {signal}, got {status}");
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
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a one-shot run printed.
pub struct CliOutput {
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error, as text.
    pub stderr: String,
}

/// Runs `loam <args>` to completion; killed (and the test failed) after a cap.
pub fn run_cli(args: &[String]) -> CliOutput {
    let mut cmd = loam();
    cmd.args(args);
    run_capped(cmd, None, CLI_CAP)
}

/// Runs `cmd` to completion with `stdin` (if any) as its input; killed (and the test failed) after `cap`.
pub fn run_capped(mut cmd: Command, stdin: Option<Vec<u8>>, cap: Duration) -> CliOutput {
    let input = if stdin.is_some() { Stdio::piped() } else { Stdio::null() };
    let mut child = cmd
        .stdin(input)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // On a thread: a child that does not read its input must not block the cap.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        });
    }
    let out = drain(child.stdout.take().expect("piped stdout"));
    let err = drain(child.stderr.take().expect("piped stderr"));
    let deadline = Instant::now() + cap;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {cap:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = out.join().expect("stdout reader");
    let stderr = String::from_utf8_lossy(&err.join().expect("stderr reader")).into_owned();
    CliOutput { status, stdout, stderr }
}

fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

/// The last lines of a log file, for failure messages.
pub fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// A log file's path for a process named `name` under `dir`.
pub fn log_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.log"))
}
