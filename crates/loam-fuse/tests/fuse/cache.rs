//! What the kernel keeps and how many reads it sends at once, counted in the mount's own metrics: a file
//! read twice is read through the mount once (the kernel's page cache is kept across opens while the
//! version is unchanged) and a rewritten file is read anew; direct asynchronous reads (fio `libaio`,
//! queue depth 16) reach the mount many at a time, not one by one.

use crate::mount::{blocking, cluster, cluster_with, require_fuse};
use loam_testsupport::cluster::Options;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The value of the sample `series` in the mount's metrics text, or 0 when absent.
fn sample(m: &loam_fuse::MountedFs, series: &str) -> f64 {
    let text = m.metrics().encode().unwrap();
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.split(' ').next()?.parse().ok()).unwrap_or(0.0)
}

fn reads(m: &loam_fuse::MountedFs) -> (f64, f64) {
    (sample(m, "loam_fuse_operation_duration_seconds_count{op=\"read\"}"), sample(m, "loam_fuse_read_bytes_total"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_file_read_again_comes_from_the_kernels_cache_until_it_is_rewritten() {
    require_fuse();
    // A worker that checks the UFS on every open, so that the rewrite is seen at once.
    let opts = Options { workers: 1, max_age: Duration::ZERO, ..Options::worker_defaults(16 << 20, 256 << 20) };
    let c = cluster_with(opts).await;
    let v1 = c.write("f", (3 << 20) + 5, 1);
    let m = c.mount();
    let path = m.mount_point().join("data/f");
    let p = path.clone();
    let v1_ = v1.clone();
    blocking(move || assert!(std::fs::read(&p).unwrap() == v1_, "the first read is version 1")).await;
    let first = reads(&m);
    assert_eq!(first.1, v1.len() as f64, "every byte of the first read came through the mount");

    // The second epoch: opened again, the same version, read whole from the kernel's pages.
    let p = path.clone();
    let v1_ = v1.clone();
    blocking(move || {
        for _ in 0..3 {
            assert!(std::fs::read(&p).unwrap() == v1_, "read again: version 1");
        }
    })
    .await;
    assert_eq!(reads(&m), first, "no read reached the mount for a file the kernel holds");

    // Rewritten in the UFS (same length, so only the version tag tells): the next open reads it anew,
    // whole, and then it is cached in turn.
    std::thread::sleep(Duration::from_millis(20));
    let v2 = c.write("f", v1.len(), 2);
    assert!(v2 != v1);
    let p = path.clone();
    let v2_ = v2.clone();
    blocking(move || assert!(std::fs::read(&p).unwrap() == v2_, "after the rewrite: version 2")).await;
    let second = reads(&m);
    assert_eq!(second.1, (v1.len() + v2.len()) as f64, "version 2 was read through the mount");
    let p = path.clone();
    let v2_ = v2.clone();
    blocking(move || assert!(std::fs::read(&p).unwrap() == v2_, "read again: version 2")).await;
    assert_eq!(reads(&m), second, "version 2 is kept in turn");
    blocking(move || m.unmount().unwrap()).await;
}

/// Runs fio with `args`, failing clearly when it is missing or fails.
fn fio(args: &[String]) {
    let out = Command::new("fio").args(args).output().unwrap_or_else(|e| {
        panic!("cannot run fio ({e}): run scripts/setup-test-deps.sh (Debian package fio)");
    });
    assert!(
        out.status.success(),
        "fio {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn fio_file_args(path: &Path) -> Vec<String> {
    // No verify state file: fio would write it into the working directory.
    ["--name=j", "--bs=4k", "--size=8m", "--verify=crc32c", "--verify_state_save=0"]
        .iter()
        .map(|s| s.to_string())
        .chain([format!("--filename={}", path.display())])
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn direct_asynchronous_reads_reach_the_mount_many_at_a_time_and_read_the_right_blocks() {
    require_fuse();
    let c = cluster(1).await;
    // Blocks that carry their offset and checksum (fio's verify headers), written to the UFS directly.
    let mut write = fio_file_args(&c.cluster.ufs_root().join("aio"));
    write.extend(["--rw=write", "--do_verify=0"].map(String::from));
    blocking(move || fio(&write)).await;
    let m = c.mount();
    assert_eq!(m.metrics().peak_reads_in_flight(), 0);
    let mut read = fio_file_args(&m.mount_point().join("data/aio"));
    read.extend(
        ["--rw=randread", "--ioengine=libaio", "--iodepth=16", "--direct=1", "--readonly", "--do_verify=1"]
            .map(String::from),
    );
    blocking(move || fio(&read)).await;
    // Without FUSE_ASYNC_DIO the kernel sends each of these reads only once the one before is answered.
    let peak = m.metrics().peak_reads_in_flight();
    assert!(peak > 1, "a queue of 16 reached the mount {peak} read at a time");
    assert!(peak <= 16, "no more than fio queued: {peak}");
    assert_eq!(sample(&m, "loam_fuse_reads_in_flight"), 0.0, "every read was answered");
    blocking(move || m.unmount().unwrap()).await;
}
