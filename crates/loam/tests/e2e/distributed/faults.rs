//! What users see around small faults, with real processes: `loam fs` reading through the cluster view
//! it kept while etcd is down, the Coordinator answering `503` while its store is unreachable (and
//! changing nothing), a job's elapsed time counting across a `kill -9` of the Coordinator, and `fs ls`
//! agreeing with `fs stat` (and the owners) on what is cached whichever worker answers the listing.

use crate::cluster::{CAP, Cluster, wait_until};
use crate::http;
use loam_testsupport::auth::ALL_ROLES;

/// `method url` with a JSON body and every role's token.
fn send(method: &str, url: &str, body: &str) -> http::Answer {
    http::send_as(method, url, Some(ALL_ROLES), Some(("application/json", body.as_bytes())))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The answer's JSON.
fn json(a: &http::Answer) -> serde_json::Value {
    serde_json::from_slice(&a.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", a.text()))
}

#[test]
fn fs_reads_through_the_kept_cluster_view_while_etcd_is_down() {
    let mut c = Cluster::start(3);
    c.mount_data();
    let files: Vec<(String, Vec<u8>)> =
        (0..3).map(|i| (format!("/data/kept/f{i}"), c.write_file(&format!("kept/f{i}"), 200_000, i))).collect();
    // One command through etcd keeps the view.
    let o = c.cli(&["fs", "cat", &files[0].0]);
    assert!(o.status.success() && o.stdout == files[0].1, "cat with etcd up: {}", o.stderr);
    assert!(!o.stderr.contains("warning"), "no warning while etcd is up: {}", o.stderr);
    let views: Vec<_> = std::fs::read_dir(c.cli_cache().join("loam/views"))
        .expect("the kept views' directory")
        .map(|e| e.expect("a directory entry").path())
        .collect();
    assert_eq!(views.len(), 1, "{views:?}");
    let text = std::fs::read_to_string(&views[0]).expect("the kept view");
    for token in loam_testsupport::auth::token_file_text().split_whitespace().filter(|t| t.starts_with("test-")) {
        assert!(!text.contains(token), "no token in the kept view: {text}");
    }
    for w in &c.workers {
        assert!(text.contains(&w.id), "the view names worker {}: {text}", w.id);
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&views[0]).expect("the view's metadata").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "only the user reads the view");

    c.etcd.stop();
    for (path, bytes) in &files {
        // Without the UFS fallback: the bytes come from the workers the kept view names.
        let o = c.cli(&["fs", "cat", path, "--no-ufs-fallback"]);
        assert!(o.status.success(), "cat {path} while etcd is down: {}", o.stderr);
        assert!(&o.stdout == bytes, "cat {path} while etcd is down returned other bytes");
        assert!(
            o.stderr.contains("warning: etcd is unreachable") && o.stderr.contains("may be stale"),
            "a warning that the view may be stale: {}",
            o.stderr
        );
    }
    let o = c.cli(&["--json", "fs", "stat", &files[1].0]);
    assert!(o.status.success(), "stat while etcd is down: {}", o.stderr);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON from fs stat");
    assert_eq!(v["mLength"], 200_000, "{v}");
    // A user who never read through etcd has no view: one clear error.
    let fresh = tempfile::tempdir().expect("a fresh cache directory");
    let o = c.cli_cached_in(fresh.path(), &["fs", "cat", &files[0].0]);
    assert!(!o.status.success() && o.stdout.is_empty(), "no kept view, no read");
    assert!(o.stderr.contains("no cluster view was kept"), "{}", o.stderr);

    c.etcd.start_again();
    c.wait_all_online();
    let o = c.cli(&["fs", "cat", &files[2].0]);
    assert!(o.status.success() && o.stdout == files[2].1, "cat after the outage: {}", o.stderr);
    assert!(!o.stderr.contains("warning"), "etcd is back: {}", o.stderr);
}

#[test]
fn fs_reads_through_the_kept_view_while_a_secure_etcd_is_down() {
    // TLS, client certificates and an etcd user: the CLI authenticates at connect, so a down etcd must
    // read as unreachable there too, not as refused credentials.
    let mut c = Cluster::start_secure(2);
    c.mount_data();
    let bytes = c.write_file("sec/f", 100_000, 3);
    let o = c.cli(&["fs", "cat", "/data/sec/f"]);
    assert!(o.status.success() && o.stdout == bytes, "cat with etcd up: {}", o.stderr);
    c.etcd.stop();
    let o = c.cli(&["fs", "cat", "/data/sec/f", "--no-ufs-fallback"]);
    assert!(o.status.success(), "cat while the secure etcd is down: {}", o.stderr);
    assert!(o.stdout == bytes, "cat while the secure etcd is down returned other bytes");
    assert!(o.stderr.contains("may be stale"), "{}", o.stderr);
    let text = std::fs::read_dir(c.cli_cache().join("loam/views"))
        .expect("the kept views' directory")
        .map(|e| std::fs::read_to_string(e.expect("an entry").path()).expect("a kept view"))
        .collect::<String>();
    assert!(!text.contains(crate::cluster::ETCD_PASSWORD), "no etcd password in the kept view: {text}");
}

#[test]
fn the_coordinator_answers_503_while_etcd_is_down_and_changes_nothing() {
    let mut c = Cluster::start(1);
    c.mount_data();
    c.write_file("s/a", 1000, 1);
    let base = c.coordinator_url();
    let more = tempfile::tempdir().expect("a second UFS");
    let mount_more = format!(r#"{{"path": "/more", "ufs": "file://{}"}}"#, more.path().display());

    c.etcd.stop();
    for (method, path, body) in [
        ("GET", "/api/v1/mount", None),
        ("GET", "/api/v1/nodes", None),
        ("GET", "/api/v1/load", None),
        ("POST", "/api/v1/mount", Some(mount_more.as_str())),
        ("POST", "/api/v1/load", Some(r#"{"paths": ["/data/s"]}"#)),
        ("DELETE", "/api/v1/mount", Some(r#"{"path": "/data"}"#)),
    ] {
        let url = format!("{base}{path}");
        let a = match body {
            Some(b) => send(method, &url, b),
            None => http::get(&url).unwrap_or_else(|e| panic!("{e}")),
        };
        let v = json(&a);
        assert_eq!(a.status, 503, "{method} {path} while etcd is down: {v}");
        let status = v["status"].as_str().unwrap_or_default();
        assert!(status.starts_with("cluster store unreachable: "), "{method} {path}: {v}");
    }

    c.etcd.start_again();
    c.wait_all_online();
    let a = http::get(&format!("{base}/api/v1/mount")).unwrap_or_else(|e| panic!("{e}"));
    let v = json(&a);
    assert_eq!(a.status, 200, "{v}");
    let mounts: Vec<&str> =
        v["results"].as_array().expect("results").iter().filter_map(|m| m["path"].as_str()).collect();
    assert_eq!(mounts, ["/data/"], "the refused mount was not added, the refused unmount did not remove /data");
    let a = http::get(&format!("{base}/api/v1/load")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((a.status, json(&a)), (200, serde_json::json!({"results": []})), "the refused load was not created");
}

#[test]
fn a_jobs_elapsed_time_counts_across_a_coordinator_kill() {
    let mut c = Cluster::start(1);
    c.mount_data();
    c.write_file("slow/big", 3 << 20, 1);
    // 64 KiB/s over 3 MiB keeps the job running for the whole test.
    let out = c.ok(&["job", "load", "--path", "/data/slow", "--bandwidth", "64KiB"]);
    let id = out.split_whitespace().nth(2).expect("the job id").trim_end_matches(':').to_string();
    let progress = |c: &Cluster| -> Option<serde_json::Value> {
        let a = http::get(&format!("{}/api/v1/load?id={id}", c.coordinator_url())).ok()?;
        (a.status == 200).then(|| json(&a))
    };
    let before = wait_until("the job has run two seconds", CAP, || {
        progress(&c).filter(|v| v["timeElapsedMilliseconds"].as_u64() >= Some(2000))
    });
    assert_eq!(before["state"], "RUNNING", "{before}");

    c.stop_coordinator("-9");
    // What the killed coordinator left in etcd: the time of the run it was in, up to its last write.
    let key = format!("{}{id}", loam_core::store_keys::jobs_prefix("DefaultAlluxioCluster", "load"));
    let stored = c.etcd.etcdctl(None, None, &["get", &key, "--print-value-only"]);
    let stored: serde_json::Value = serde_json::from_str(stored.trim()).expect("the stored job record");
    let stored_ms = stored["elapsed_ms"].as_u64().expect("elapsed_ms in the record");
    assert!(stored_ms > 0, "the stored record counts the interrupted run: {stored}");

    c.start_coordinator();
    let after =
        wait_until("the restarted coordinator runs the job", CAP, || progress(&c).filter(|v| v["state"] == "RUNNING"));
    let after_ms = after["timeElapsedMilliseconds"].as_u64().expect("timeElapsedMilliseconds");
    assert!(after_ms >= stored_ms, "counted on from {stored_ms} ms, not from 0: {after}");
    // Stopped, the job keeps the whole count.
    let a = send("DELETE", &format!("{}/api/v1/load", c.coordinator_url()), &format!(r#"{{"id": "{id}"}}"#));
    assert_eq!(a.status, 200, "{}", a.text());
    let end = progress(&c).expect("the stopped job");
    assert_eq!(end["state"], "STOPPED", "{end}");
    assert!(end["timeElapsedMilliseconds"].as_u64() >= Some(after_ms), "{end}");
}

#[test]
fn fs_ls_and_fs_stat_agree_on_what_the_owners_hold() {
    let c = Cluster::start(3);
    c.mount_data();
    let names: Vec<String> = (0..9).map(|i| format!("f{i}")).collect();
    for (i, n) in names.iter().enumerate() {
        c.write_file(&format!("agree/{n}"), 150_000 + i * 10, i as u32);
    }
    let owners: std::collections::BTreeSet<String> = names
        .iter()
        .map(|n| http::node_of(&c.workers[0].url(), &format!("/data/agree/{n}")).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    assert!(owners.len() > 1, "the files have more than one owner: {owners:?}");
    let out = c.ok(&["job", "load", "--path", "/data/agree", "--sync"]);
    assert!(out.contains("SUCCEEDED"), "{out}");

    let ls: serde_json::Value = serde_json::from_str(&c.ok(&["--json", "fs", "ls", "/data/agree"])).expect("JSON ls");
    let ls = ls.as_array().expect("a list");
    assert_eq!(ls.len(), names.len(), "{ls:?}");
    for e in ls {
        let path = e["mPath"].as_str().expect("mPath");
        let stat: serde_json::Value = serde_json::from_str(&c.ok(&["--json", "fs", "stat", path])).expect("JSON stat");
        assert_eq!(stat["mInAlluxioPercentage"], 100, "stat {path}: {stat}");
        assert_eq!(e["mInAlluxioPercentage"], stat["mInAlluxioPercentage"], "ls and stat of {path}: {e}");
    }
    // Whichever worker answers the listing, it shows what the owners hold.
    for (i, w) in c.workers.iter().enumerate() {
        let body = http::get_ok(&format!("{}/v1/files?path=/data/agree", w.url())).unwrap_or_else(|e| panic!("{e}"));
        let list: Vec<serde_json::Value> = serde_json::from_slice(&body).expect("JSON file list");
        let percents: Vec<u64> = list.iter().filter_map(|e| e["mInAlluxioPercentage"].as_u64()).collect();
        assert_eq!(percents, vec![100; names.len()], "worker {i}'s listing");
    }
}
