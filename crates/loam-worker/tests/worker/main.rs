//! The worker's integration tests, one binary: real workers started in process by
//! `loam_testsupport::cluster` (a real embedded store, a `file://` UFS behind `FaultyUfs`, real HTTP on
//! free ports), driven over their HTTP and S3 APIs.
//! nextest runs every test in a process of its own.

mod auth;
mod cache_integrity;
mod cold_stream;
mod http_api;
mod mapped_reads;
mod metrics;
mod non_owner;
mod one_version;
mod path_ids;
mod peer_copy;
mod priority;
mod quota;
mod read_through;
mod s3_api;
mod s3_big_copy;
mod s3_clients;
mod s3_conditional_writes;
mod s3_expect;
mod s3_keys;
mod s3_metadata;
mod s3_protocol;
mod s3_uploads;
mod tasks;
mod ttl;
mod write_api;

use loam_testsupport::cluster::{Cluster, Options};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The page size of the test workers (`Options::default()`'s).
const PAGE: u64 = 64 * 1024;

/// One worker with the default test options that trusts its cache for `max_age`.
async fn one_worker(max_age: Duration) -> Cluster {
    Cluster::start(Options { max_age, ..Options::default() }).await
}

/// Worker 0's cache directory under a cluster data dir `root` (`<root>/worker-0/cache`), made a tmpfs of
/// `size` (as `mount -o size=`) until the guard is dropped; `None` where a tmpfs cannot be mounted (not
/// root): the caller skips.
fn tmpfs_cache(root: &Path, size: &str) -> Option<(PathBuf, Unmount)> {
    let cache = root.join("worker-0/cache");
    std::fs::create_dir_all(&cache).unwrap();
    let size = format!("size={size}");
    let mounted = std::process::Command::new("mount").args(["-t", "tmpfs", "-o", &size, "tmpfs"]).arg(&cache).status();
    if !mounted.is_ok_and(|s| s.success()) {
        eprintln!("cannot mount a tmpfs (not root?): skipped");
        return None;
    }
    Some((cache.clone(), Unmount(cache)))
}

/// Unmounts a test's tmpfs (lazily, so a file still open does not stop it).
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Every regular file under `dir`.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() { stack.push(p) } else { out.push(p) }
            }
        }
    }
    out
}
