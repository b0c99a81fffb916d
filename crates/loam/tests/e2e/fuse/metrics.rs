//! `loam fuse --metrics-port`: the real binary mounted over a `loam local`, its `/metrics` scraped over
//! HTTP on loopback after reads through the mount; a port that cannot be bound fails the command and
//! leaves nothing mounted.

use super::local_cluster;
use super::mount_process::{FuseProcess, require_fuse_and_tools, run, run_ok};
use crate::http::{get_as, metric};
use crate::process::LOAM;
use loam_testsupport::data::content;

#[test]
fn the_mount_serves_its_operation_and_read_metrics_on_loopback() {
    require_fuse_and_tools();
    let dir = tempfile::tempdir().unwrap();
    let bytes = content(3 << 20, 7);
    std::fs::create_dir_all(dir.path().join("ufs")).unwrap();
    std::fs::write(dir.path().join("ufs/f"), &bytes).unwrap();
    let l = local_cluster(dir.path());
    let port = loam_testsupport::free_port().to_string();
    let f = FuseProcess::start(
        &dir.path().join("mnt"),
        &["--coordinator", &l.coordinator, "--metrics-port", &port],
        &dir.path().join("fuse.log"),
    );
    let url = format!("http://127.0.0.1:{port}/metrics");
    assert!(run_ok("cat", &[&f.path("data/f").display().to_string()]) == bytes);
    assert!(!run("cat", &[&f.path("data/missing").display().to_string()]).status.success());

    // Anonymous, as the worker's /metrics is to its read role; nothing else is served.
    let a = get_as(&url, None).unwrap();
    assert_eq!(a.status, 200, "{}", a.text());
    let text = a.text();
    assert_eq!(metric(&text, "loam_fuse_read_bytes_total"), bytes.len() as f64, "{text}");
    assert_eq!(metric(&text, "loam_fuse_operation_duration_seconds_count{op=\"open\"}"), 1.0, "{text}");
    assert!(metric(&text, "loam_fuse_operation_duration_seconds_count{op=\"read\"}") >= 1.0, "{text}");
    assert_eq!(metric(&text, "loam_fuse_operation_errors_total{op=\"lookup\",errno=\"ENOENT\"}"), 1.0, "{text}");
    let reads = metric(&text, "loam_fuse_operation_duration_seconds_count{op=\"read\"}");
    assert_eq!(metric(&text, "loam_fuse_readahead_reads_total"), reads, "each read a hit or a miss:\n{text}");
    assert_eq!(get_as(&format!("http://127.0.0.1:{port}/other"), None).unwrap().status, 404);
    drop(f);
}

#[test]
fn a_metrics_port_in_use_fails_the_command_and_leaves_nothing_mounted() {
    require_fuse_and_tools();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("ufs")).unwrap();
    let l = local_cluster(dir.path());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let mnt_s = mnt.display().to_string();
    let args =
        ["fuse", "--foreground", "--mount-point", &mnt_s, "--coordinator", &l.coordinator, "--metrics-port", &port];
    let o = run(LOAM, &args);
    assert!(!o.status.success(), "a busy metrics port fails loam fuse");
    assert!(o.stderr.contains("binding the metrics listener on 127.0.0.1:"), "{}", o.stderr);
    assert!(!loam_fuse::is_mounted(&mnt), "nothing left mounted");
}
