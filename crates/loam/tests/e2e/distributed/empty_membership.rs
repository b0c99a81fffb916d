//! `loam fs cat --etcd` while etcd answers but lists no live worker (every lease expired at once, as
//! after etcd paused past the TTL, and the workers not yet re-registered): the command reads through
//! the workers of the view it kept, and does not replace that view with an empty one.
//!
//! The moment is made deterministic: the worker is `SIGSTOP`ped until its lease expires (etcd then
//! lists nobody), the command is started, and the worker gets `SIGCONT` only once the command has
//! connected to it, so the command surely read the empty membership and then had to use the worker
//! it kept. The old code failed at once with `no worker is online` and kept an empty view.

use crate::cluster::{CAP, Cluster, wait_until};
use loam_core::membership::{DEFAULT_CLUSTER_NAME, liveness_prefix};
use std::io::Read;
use std::process::{Child, Stdio};

/// Sends `signal` to `pid`.
fn signal(sig: &str, pid: u32) {
    let ok = std::process::Command::new("kill").args([sig, &pid.to_string()]).status().expect("run kill").success();
    assert!(ok, "kill {sig} {pid}");
}

/// `SIGCONT`s the worker on drop, so a failing test leaves no stopped process behind it.
struct Stopped(u32);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill").args(["-CONT", &self.0.to_string()]).status();
    }
}

/// Whether process `pid` has an established TCP connection to local port `port`: its sockets' inodes
/// (`/proc/<pid>/fd`) looked up in `/proc/net/tcp{,6}`.
fn connected_to(pid: u32, port: u16) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return false };
    let inodes: Vec<String> = fds
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| Some(l.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?.to_string()))
        .collect();
    let remote = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|table| {
        std::fs::read_to_string(table).unwrap_or_default().lines().skip(1).any(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            f.len() > 9 && f[2].ends_with(&remote) && f[3] == "01" && inodes.iter().any(|i| i == f[9])
        })
    })
}

/// The number of workers in the view `loam fs` kept (the one file under the cache's `loam/views`).
fn kept_workers(c: &Cluster) -> usize {
    let dir = c.cli_cache().join("loam/views");
    let mut files = std::fs::read_dir(&dir).expect("the kept views' directory");
    let file = files.next().expect("a kept view").expect("an entry").path();
    let view: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).expect("read it")).expect("JSON");
    view["workers"].as_array().expect("a workers list").len()
}

fn read_all(r: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut r = r;
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

/// `loam fs cat <path>` started as [`Cluster::cli`] would run it, without waiting.
fn spawn_cat(c: &Cluster, path: &str) -> Child {
    let mut cmd = crate::process::loam();
    cmd.args(["--coordinator", &c.coordinator_url(), "--etcd", &c.etcd_url(), "fs", "cat", path])
        .env("XDG_CACHE_HOME", c.cli_cache())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.spawn().expect("start loam fs cat")
}

#[test]
fn fs_cat_reads_through_the_kept_workers_while_etcd_lists_none_and_keeps_the_view() {
    let c = Cluster::start(1);
    c.mount_data();
    let bytes = c.write_file("empty/f", 300_000, 7);
    let o = c.cli(&["fs", "cat", "/data/empty/f"]);
    assert!(o.status.success() && o.stdout == bytes, "cat with the worker listed: {}", o.stderr);
    assert_eq!(kept_workers(&c), 1, "the view kept names the worker");

    // The worker stopped until its lease expires: etcd lists nobody.
    let pid = c.worker_pid(0);
    signal("-STOP", pid);
    let stopped = Stopped(pid);
    let prefix = liveness_prefix(DEFAULT_CLUSTER_NAME);
    wait_until("etcd lists no live worker", CAP, || {
        c.etcd.etcdctl(None, None, &["get", "--prefix", "--keys-only", &prefix]).trim().is_empty().then_some(())
    });

    let mut cat = spawn_cat(&c, "/data/empty/f");
    let (out, err) = (read_all(cat.stdout.take().unwrap()), read_all(cat.stderr.take().unwrap()));
    let port = c.workers[0].port;
    wait_until("the command has connected to the kept worker, or ended", CAP, || {
        (connected_to(cat.id(), port) || matches!(cat.try_wait(), Ok(Some(_)))).then_some(())
    });
    drop(stopped);
    let status = wait_until("the command ends", CAP, || cat.try_wait().expect("wait for cat"));
    let (stdout, stderr) = (out.join().unwrap(), String::from_utf8_lossy(&err.join().unwrap()).into_owned());
    assert!(status.success(), "cat while etcd lists no worker: {stderr}");
    assert!(stdout == bytes, "cat while etcd lists no worker returned other bytes");
    assert!(stderr.contains("warning: etcd lists no live worker"), "{stderr}");
    assert_eq!(kept_workers(&c), 1, "an empty membership is never kept");

    // Re-registered, the worker is read as usual again.
    wait_until("etcd lists the worker again", CAP, || {
        (!c.etcd.etcdctl(None, None, &["get", "--prefix", "--keys-only", &prefix]).trim().is_empty()).then_some(())
    });
    let o = c.cli(&["fs", "cat", "/data/empty/f"]);
    assert!(o.status.success() && o.stdout == bytes && !o.stderr.contains("warning"), "cat: {}", o.stderr);
}
