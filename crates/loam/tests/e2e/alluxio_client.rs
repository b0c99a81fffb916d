//! The unmodified Python client `alluxio==1.0.0`, configured with `etcd_hosts`, against a real etcd, a
//! real coordinator and three real `loam worker` processes (the `distributed` suite's cluster), reading
//! and writing a `file://` UFS: `tests/py/alluxio_client.py` compares every byte it reads with the
//! originals this test wrote (see its docstring for the phases).
//!
//! The first reads hit a cold cluster: before the script runs, no worker has been asked about any of the
//! files (the mount is awaited by asking each worker for the primary of a probe path, not of a file) and
//! every worker reports zero cached files.

use crate::cluster::{CAP, Cluster, wait_until};
use crate::http;
use crate::process;
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

/// The Python side of this test.
fn script() -> std::path::PathBuf {
    loam_testsupport::package_file("tests/py/alluxio_client.py")
}
/// How long the script may take on a loaded machine (imports, a few MiB of reads, the write phase).
const PYTHON_CAP: Duration = Duration::from_secs(300);
const MIB: usize = 1024 * 1024;

#[test]
fn the_alluxio_python_client_reads_and_writes_through_loam() {
    let c = Cluster::start(3);
    c.mount_data();
    // The files, of the sizes that sit on page edges: empty, one byte, exactly a page, a page and a byte,
    // a few MiB, and a few small ones so the three workers share them.
    let sizes = [0, 1, MIB, MIB + 1, 3 * MIB + 12_345, 10, 4097, 100_000];
    let mut files = BTreeMap::new();
    for (i, len) in sizes.iter().enumerate() {
        let rel = format!("py/f{i}-{len}.bin");
        c.write_file(&rel, *len, i as u32 * 7 + 1);
        files.insert(c.ufs_uri(&rel), c.ufs.path().join(&rel).display().to_string());
    }
    // Wait until every worker knows the mount, without naming any of the files.
    let probe = c.ufs_uri("probe-not-a-file");
    for w in &c.workers {
        wait_until("the worker knows the mount", CAP, || http::node_of(&w.url(), &probe).ok());
        let cached = http::metric(&w.metrics(), "loam_worker_cached_files");
        assert_eq!(cached, 0.0, "worker {} is cold", w.id);
    }

    let plan = serde_json::json!({
        "dir": c.ufs_uri("py"),
        "files": files,
        "workers": c.workers.iter().map(|w| w.url()).collect::<Vec<_>>(),
    });
    let python = loam_testsupport::s3_server::venv_dir().join("bin/python");
    assert!(python.is_file(), "{} not found: run scripts/setup-test-deps.sh", python.display());
    let etcd = c.etcd_url();
    let (host, port) = etcd.trim_start_matches("http://").trim_end_matches('/').rsplit_once(':').expect("etcd port");
    let mut cmd = Command::new(&python);
    cmd.arg(script()).arg(host).arg(port);
    // etcd3 0.12's generated code predates protobuf 4 (see `distributed/rings.rs`).
    cmd.env("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python");
    cmd.env("LOAM_TOKEN", loam_testsupport::auth::ALL_ROLES);
    let out = process::run_capped(cmd, Some(serde_json::to_vec(&plan).expect("plan JSON")), PYTHON_CAP);
    assert!(out.status.success(), "alluxio_client.py failed ({}):\n{}", out.status, out.stderr);
    let counts: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON summary ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    let n = sizes.len() as u64;
    assert_eq!(counts["reads"], n, "{counts}");
    assert_eq!(counts["listed"], n, "{counts}");
    assert_eq!(counts["statuses"], n, "{counts}");
    assert!(counts["ranges"].as_u64().unwrap_or(0) >= 15 * n, "{counts}");
    assert_eq!(counts["page_writes"], 1, "{counts}");
    assert_eq!(counts["write_ops"], 6, "{counts}");
    // The reads were served by the workers: together they read the UFS and cached what they read.
    let ufs_reads: f64 = c.workers.iter().map(|w| http::metric(&w.metrics(), "loam_worker_ufs_reads_total")).sum();
    assert!(ufs_reads > 0.0, "the workers read the UFS");
}
