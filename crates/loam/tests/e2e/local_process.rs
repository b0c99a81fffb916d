//! A real `loam local` process for the CLI tests, and the CLI run against it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Output, Stdio};

/// A running `loam local`; killed on drop.
pub struct Local {
    pub child: Child,
    pub coordinator: String,
    /// (HTTP base URL, worker id) of each worker, in the order printed.
    pub workers: Vec<(String, String)>,
    /// The admin token it printed (`LOAM_TOKEN=…`).
    pub token: String,
    /// The S3 endpoint of each worker, in the order printed.
    pub s3: Vec<String>,
    /// What it printed on stdout up to "Press Ctrl-C to stop." (it prints nothing after).
    pub banner: Vec<String>,
}

impl Drop for Local {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `loam local` on a free coordinator port with `data_dir` and `extra` flags; returns when it is ready.
pub fn start_local(data_dir: &Path, extra: &[&str]) -> Local {
    let data_dir = data_dir.display().to_string();
    let args: Vec<&str> = extra.iter().copied().chain(["--data-dir", &data_dir]).collect();
    spawn_local(crate::process::loam(), &args)
}

/// Starts `cmd` (`loam` with its environment and working directory) as `loam local <extra>` on a free
/// coordinator port and free worker ports; returns when it is ready.
pub fn spawn_local(cmd: std::process::Command, extra: &[&str]) -> Local {
    spawn_local_to(cmd, extra, Stdio::inherit())
}

/// [`spawn_local`] with its stderr (the log) going to `stderr`, e.g. a file a test reads.
pub fn spawn_local_to(mut cmd: std::process::Command, extra: &[&str], stderr: Stdio) -> Local {
    let port = loam_testsupport::free_port();
    let mut child = cmd
        .args(["local", "--worker-http-port", "0", "--worker-s3-port", "0"])
        .args(extra)
        .arg("--coordinator-port")
        .arg(port.to_string())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("start loam local");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut coordinator, mut workers, mut token, mut s3) = (String::new(), Vec::new(), String::new(), Vec::new());
    let mut banner = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        banner.push(line.clone());
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["coordinator", url, ..] => coordinator = url.to_string(),
            ["worker", _, url, id] => workers.push((url.to_string(), id.to_string())),
            _ if line.starts_with("LOAM_TOKEN=") => token = line["LOAM_TOKEN=".len()..].to_string(),
            ["s3", _, url, ..] if url.starts_with("http") => s3.push(url.to_string()),
            _ if line.starts_with("Press Ctrl-C") => break,
            _ => {}
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let scheme = if extra.contains(&"--tls-cert") { "https" } else { "http" };
    assert_eq!(coordinator, format!("{scheme}://127.0.0.1:{port}"));
    Local { child, coordinator, workers, token, s3, banner }
}

/// Runs the CLI against `l` (stderr is a pipe, so no progress bar is drawn).
pub fn cli(l: &Local, args: &[&str]) -> Output {
    crate::process::loam().env("LOAM_COORDINATOR", &l.coordinator).args(args).output().expect("run loam")
}

/// Runs the CLI and returns its stdout; panics unless it succeeded.
pub fn ok(l: &Local, args: &[&str]) -> String {
    let o = cli(l, args);
    assert!(o.status.success(), "loam {args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

/// Like [`ok`], and also requires an empty stderr.
pub fn ok_quiet(l: &Local, args: &[&str]) -> String {
    let o = cli(l, args);
    assert!(o.status.success(), "loam {args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
    assert!(o.stderr.is_empty(), "loam {args:?} wrote to stderr: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}
