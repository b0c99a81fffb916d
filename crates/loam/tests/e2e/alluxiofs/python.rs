//! `tests/py/alluxiofs_client.py` (or another script of `tests/py`, e.g. `alluxiofs_partitions.py`, which
//! may run on a host of its own: `ip netns exec <ns>`) as a child the test talks with: the plan goes in as the first line of
//! its stdin, its stdout comes back line by line (the failover mode asks for a kill and waits for the
//! answer on stdin), and its stderr is kept for the failure message.
//!
//! Nothing can hang the test: every wait has a cap, the script is killed on drop, and it runs under
//! `loam_testsupport`'s watchdog so that it dies with a test binary that is itself killed.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The running script.
pub struct Script {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    stderr: Option<JoinHandle<String>>,
}

impl Script {
    /// Starts `tests/py/alluxiofs_client.py` in `mode` with `plan`, in the working directory `cwd`.
    pub fn start(mode: &str, plan: &serde_json::Value, cwd: &std::path::Path) -> Self {
        Self::start_as(&[], "alluxiofs_client.py", mode, plan, cwd)
    }

    /// Starts `tests/py/<file>` in `mode` with `plan`, in the working directory `cwd`, through
    /// `launcher` (a command that runs the one after it, as `ip netns exec <ns>` does; none: directly).
    pub fn start_as(
        launcher: &[&str],
        file: &str,
        mode: &str,
        plan: &serde_json::Value,
        cwd: &std::path::Path,
    ) -> Self {
        let python = loam_testsupport::s3_server::venv_dir().join("bin/python");
        assert!(python.is_file(), "{} not found: run scripts/setup-test-deps.sh", python.display());
        let script = loam_testsupport::package_file(&format!("tests/py/{file}"));
        let mut command = match launcher.split_first() {
            Some((program, args)) => {
                let mut c = loam_testsupport::watchdog::watched(file, program);
                c.args(args).arg(&python);
                c
            }
            None => loam_testsupport::watchdog::watched(file, &python),
        };
        let mut child = command
            .arg(script)
            .arg(mode)
            .current_dir(cwd)
            // etcd3 0.12 (under alluxio 1.0.0) has generated code that predates protobuf 4.
            .env("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")
            .env("LOAM_TOKEN", loam_testsupport::auth::ALL_ROLES)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut err = child.stderr.take().expect("piped stderr");
        let stderr = Some(std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        }));
        let stdin = child.stdin.take().expect("piped stdin");
        let mut script = Self { child, stdin, lines, stderr };
        script.send(&serde_json::to_string(plan).expect("plan JSON"));
        script
    }

    /// Writes `line` to the script's stdin.
    pub fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").and_then(|_| self.stdin.flush()).expect("write to the script");
    }

    /// The next line of its stdout, waiting at most `cap`; panics with its stderr if it ended instead.
    pub fn line(&mut self, cap: Duration) -> String {
        match self.lines.recv_timeout(cap) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                let _ = self.child.kill();
                panic!("the script printed nothing within {cap:?}:\n{}", self.stderr())
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.child.wait().map(|s| s.to_string()).unwrap_or_default();
                panic!("the script ended ({status}):\n{}", self.stderr())
            }
        }
    }

    /// The next line of its stdout that starts with `prefix` (the client libraries may print too).
    pub fn line_starting(&mut self, prefix: &str, cap: Duration) -> String {
        let deadline = Instant::now() + cap;
        loop {
            let line = self.line(deadline.saturating_duration_since(Instant::now()));
            if line.starts_with(prefix) {
                return line;
            }
        }
    }

    /// Waits (at most `cap`) for the script to exit, which must be with 0; the JSON summary it printed.
    pub fn finish(mut self, cap: Duration) -> serde_json::Value {
        let line = self.line_starting("{", cap);
        let deadline = Instant::now() + cap;
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait for the script") {
                break s;
            }
            assert!(Instant::now() < deadline, "the script did not exit within {cap:?}");
            std::thread::sleep(Duration::from_millis(20));
        };
        let stderr = self.stderr();
        assert!(status.success(), "the script failed ({status}):\n{stderr}");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("no JSON summary ({e}): {line}\n{stderr}"))
    }

    fn stderr(&mut self) -> String {
        let _ = self.child.kill();
        self.stderr.take().and_then(|h| h.join().ok()).unwrap_or_default()
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
