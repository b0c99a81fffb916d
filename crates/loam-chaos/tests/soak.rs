//! The CI version of the chaos soak: `loam-chaos --duration 3m --json` against a real cluster, with the
//! goal of issue 13 asserted from its JSON result (0 wrong bytes, 0 lost or wrongly SUCCEEDED jobs, read
//! errors only for clients addressing a dead worker, within the lease TTL plus the margin) and its
//! exit status. It cannot pass by doing nothing: every reader kind must have read, every fault must have
//! run (none skipped), and jobs must have been submitted.
//!
//! Needs root (the full-disk fault mounts a tmpfs), /dev/fuse, etcd and the test venv
//! (scripts/setup-test-deps.sh); without them the soak reports the fault or reader that could not run,
//! and this test fails saying so.

use std::process::Command;

#[test]
fn a_three_minute_soak_meets_the_goal() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_loam-chaos"))
        .args(["--duration", "3m", "--seed", "13", "--json", "--dir"])
        .arg(dir.path())
        .output()
        .expect("run loam-chaos");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON result ({e}), exit {}:\n{stderr}", out.status));
    let pretty = serde_json::to_string_pretty(&v).unwrap();
    assert_eq!(v["violations"], serde_json::json!([]), "{pretty}\n{stderr}");
    assert_eq!(v["passed"], true, "{pretty}");
    assert!(out.status.success(), "exit {} although passed:\n{stderr}", out.status);

    let rows = v["faults"].as_array().expect("faults");
    for fault in [
        "worker-kill",
        "coordinator-kill",
        "etcd-kill",
        "etcd-stop",
        "disk-full",
        "page-flip",
        "cache-dir-removed",
        "ufs-rewrite",
    ] {
        let row = rows.iter().find(|r| r["fault"] == fault).unwrap_or_else(|| panic!("{fault} never ran: {pretty}"));
        assert!(row["runs"].as_u64() >= Some(1) && row["skipped"] == 0, "{fault} ran: {row}");
    }
    for reader in ["s3", "alluxio", "fs-cat", "fuse"] {
        let reads: u64 = rows.iter().filter_map(|r| r["readers"][reader]["reads"].as_u64()).sum();
        assert!(reads > 0, "{reader} read nothing: {pretty}");
    }
    let jobs: u64 = rows.iter().filter_map(|r| r["jobs"].as_u64()).sum();
    assert!(jobs >= 2, "jobs were submitted: {pretty}");
    let detail =
        v["runs"].as_array().unwrap().iter().find(|r| r["fault"] == "coordinator-kill").unwrap()["detail"].clone();
    assert!(detail.as_str().unwrap_or("").contains("mid-load"), "the coordinator was killed under a load: {detail}");
}
