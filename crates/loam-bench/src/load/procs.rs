//! The processes of the load benchmark that `loam_testsupport` does not start by itself: one `loam
//! coordinator --etcd` and `loam worker --etcd` processes (this binary's `loam` command, see
//! [`crate::LOAM`]) and, with `--s3s-fs`, an s3s-fs server; each on free loopback ports with its data
//! and log in the bench's directory. moto and etcd are `loam_testsupport`'s own servers.
//!
//! No process outlives the bench: each is a `loam_testsupport::process::Server`, killed and reaped on
//! drop and run under the watchdog that kills it once the bench process is gone (a bench killed with
//! SIGKILL runs no `Drop`). The watchdog `exec`s the server, so a server's pid is its own, which is what
//! [`peak_rss`] reads.

use super::pinning::Pinning;
use anyhow::{Context, bail};
use loam_testsupport::process::{Server, log_path};
use std::path::{Path, PathBuf};

/// Starts `loam <args>` (as `<this binary> loam <args>`), logging to `<dir>/<name>.log`, and waits until
/// it prints "Press Ctrl-C to stop.".
pub fn loam(name: &str, dir: &Path, args: &[String]) -> anyhow::Result<Server> {
    let exe = std::env::current_exe().context("finding the loam-bench binary")?;
    let all: Vec<String> = std::iter::once(crate::LOAM.to_string()).chain(args.iter().cloned()).collect();
    Server::start(&exe, &all, &log_path(dir, name)).map_err(anyhow::Error::msg)
}

/// Peak resident set size in bytes of process `pid` since start or the last [`reset_peak_rss`] (`VmHWM`).
pub fn peak_rss(pid: u32) -> anyhow::Result<u64> {
    status_bytes(pid, "VmHWM")
}

/// Resident set size in bytes of process `pid` now (`VmRSS`).
pub fn rss(pid: u32) -> anyhow::Result<u64> {
    status_bytes(pid, "VmRSS")
}

/// A `kB` field of `/proc/<pid>/status`, in bytes.
fn status_bytes(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .with_context(|| format!("no {field} for pid {pid}"))?;
    Ok(kib * 1024)
}

/// Resets the peak RSS of process `pid` to its current RSS (`echo 5 > /proc/<pid>/clear_refs`), so that
/// each data set reports its own peak; `Err` where the kernel refuses it (then peaks are since start).
pub fn reset_peak_rss(pid: u32) -> std::io::Result<()> {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
}

/// Starts `s3s-fs` (an S3 server over a directory, with real ranged reads) on `port`, with `bucket` made,
/// on the CPUs `pin` gives it if any.
pub fn start_s3s_fs(dir: &Path, bin: &Path, port: u16, bucket: &str, pin: Option<&Pinning>) -> anyhow::Result<Server> {
    let root = dir.join("s3s-data");
    std::fs::create_dir_all(root.join(bucket))?;
    let args: Vec<String> = ["--host", "127.0.0.1", "--port", &port.to_string(), "--access-key", "loam-bench"]
        .into_iter()
        .map(str::to_string)
        .chain(["--secret-key".to_string(), "loam-bench".to_string(), root.display().to_string()])
        .collect();
    let (program, args) = match pin {
        Some(p) => p.wrap_s3(bin, &args),
        None => (PathBuf::from(bin), args),
    };
    let ready = || loam_testsupport::http::request(port, "GET", "/").is_ok();
    match Server::start_until(&program, &args, &log_path(dir, "s3s-fs"), ready) {
        Ok(s) => Ok(s),
        Err(e) => bail!("s3s-fs did not start: {e}"),
    }
}
