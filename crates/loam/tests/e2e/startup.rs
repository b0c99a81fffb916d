//! Startup that says what is wrong and stays up (issue 15): real `loam coordinator` and `loam worker`
//! processes against a real etcd that is down when they start, and a token file that appears late. Each
//! logs the exact reason in its first line, serves liveness `200` and readiness `503` with that reason,
//! and turns ready when the thing appears, with no restart; SIGTERM while waiting exits 0. And `advertise-host`:
//! a worker bound to `0.0.0.0` without it refuses to start (exit 2); with it, it registers that address.

use crate::process::loam;
use loam_testsupport::{EtcdServer, free_port};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A safety cap on every wait, so a broken build fails instead of hanging (never a measured threshold).
const CAP: Duration = Duration::from_secs(90);

/// A `loam` server process whose stderr lines are collected.
struct Proc {
    child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    fn spawn(args: &[String]) -> Self {
        let mut child = loam().args(args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = stderr.clone();
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        Self { child, stderr }
    }

    fn first_line(&self) -> String {
        self.stderr.lock().unwrap().first().cloned().unwrap_or_default()
    }

    fn still_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, then the exit code.
    fn terminate(mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let t0 = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(t0.elapsed() < CAP, "the process did not exit on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET url`: status and body; 0 when nothing answers.
fn get(url: &str) -> (u16, String) {
    let out = Command::new("curl").args(["-s", "-m", "10", "-w", "\n%{http_code}", url]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// Polls `url` until `want(status, body)`; returns the body.
fn poll(url: &str, what: &str, want: impl Fn(u16, &str) -> bool) -> String {
    let t0 = Instant::now();
    loop {
        let (status, body) = get(url);
        if want(status, &body) {
            return body;
        }
        assert!(t0.elapsed() < CAP, "timed out waiting for {what} at {url}: last {status} {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn reason(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["ready"], false, "{body}");
    v["reason"].as_str().unwrap().to_string()
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn coordinator_args(dir: &Path, etcd: &str, port: u16) -> Vec<String> {
    let data = dir.join("c").display().to_string();
    s(&["coordinator", "--etcd", etcd, "--port", &port.to_string(), "--data-dir", &data])
}

fn worker_args(dir: &Path, etcd: &str, port: u16) -> Vec<String> {
    let data = dir.join("w").display().to_string();
    let s3 = free_port().to_string();
    s(&["worker", "--etcd", etcd, "--http-port", &port.to_string(), "--s3-port", &s3, "--data-dir", &data])
}

/// Starts `args` against a stopped etcd: the first log line and readiness name the endpoint and
/// "connection refused", liveness is 200; then etcd starts and the same process turns ready.
fn waits_for_etcd(args: impl Fn(&Path, &str, u16) -> Vec<String>, health: &str, ready: &str) {
    let mut etcd = EtcdServer::start();
    etcd.stop();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut p = Proc::spawn(&args(dir.path(), &etcd.endpoint(), port));
    let base = format!("http://127.0.0.1:{port}");
    let body = poll(&format!("{base}{ready}"), "readiness 503", |st, _| st == 503);
    let why = reason(&body);
    let expected = format!("etcd unreachable at {} (TCP connect: Connection refused", etcd.endpoint());
    assert!(why.starts_with(&expected), "{why}");
    assert_eq!(get(&format!("{base}{health}")), (200, "OK".to_string()));
    let first = p.first_line();
    assert!(first.contains("not ready: ") && first.contains(&expected), "first log line: {first}");
    etcd.start_again();
    poll(&format!("{base}{ready}"), "readiness 200", |st, b| st == 200 && b.contains(r#""ready":true"#));
    assert!(p.still_running(), "ready without a restart");
    assert_eq!(p.terminate(), Some(0));
}

#[test]
fn a_coordinator_waits_for_etcd_then_turns_ready_without_a_restart() {
    waits_for_etcd(coordinator_args, "/api/v1/health", "/api/v1/ready");
}

#[test]
fn a_worker_waits_for_etcd_then_registers_and_turns_ready() {
    waits_for_etcd(worker_args, "/v1/health", "/v1/ready");
}

#[test]
fn a_worker_waits_for_a_token_file_that_appears_late() {
    let etcd = EtcdServer::start();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let tokens = dir.path().join("secrets/tokens");
    let mut args = worker_args(dir.path(), &etcd.endpoint(), port);
    args.extend(s(&["--auth-token-file", &tokens.display().to_string()]));
    let mut p = Proc::spawn(&args);
    let ready = format!("http://127.0.0.1:{port}/v1/ready");
    let why = reason(&poll(&ready, "readiness 503", |st, _| st == 503));
    let expected = format!("waiting for {}, named by `auth-token-file` (flag --auth-token-file)", tokens.display());
    assert!(why.starts_with(&expected) && why.ends_with("it does not exist (yet)"), "{why}");
    assert!(p.first_line().contains(&expected), "first log line: {}", p.first_line());
    std::fs::create_dir_all(tokens.parent().unwrap()).unwrap();
    std::fs::write(&tokens, loam_testsupport::auth::token_file_text()).unwrap();
    poll(&ready, "readiness 200", |st, _| st == 200);
    assert!(p.still_running());
    assert_eq!(p.terminate(), Some(0));
}

#[test]
fn sigterm_while_waiting_for_a_file_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let missing = dir.path().join("not-yet").display().to_string();
    let mut args = coordinator_args(dir.path(), "http://127.0.0.1:1", port);
    args.extend(s(&["--auth-token-file", &missing]));
    let p = Proc::spawn(&args);
    poll(&format!("http://127.0.0.1:{port}/api/v1/ready"), "readiness 503", |st, _| st == 503);
    assert_eq!(p.terminate(), Some(0));
}

#[test]
fn a_worker_bound_to_every_interface_needs_an_advertise_host() {
    let etcd = EtcdServer::start();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut args = worker_args(dir.path(), &etcd.endpoint(), port);
    args.extend(s(&["--host", "0.0.0.0"]));
    let out = loam().args(&args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("would advertise 0.0.0.0 (`host` (flag --host))") && err.contains("--advertise-host"),
        "{err}"
    );
    let mut cmd = loam();
    cmd.args(&args).env("LOAM_ADVERTISE_HOST", "localhost");
    let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let p = Proc { child, stderr: Arc::default() };
    poll(&format!("http://127.0.0.1:{port}/v1/ready"), "readiness 200", |st, _| st == 200);
    let members = etcd.etcdctl(None, None, &["get", "--prefix", "/"]);
    let registered = members.contains(r#""Host":"localhost""#);
    assert!(registered, "the membership holds the advertised host: {members}");
    assert_eq!(p.terminate(), Some(0));
}
