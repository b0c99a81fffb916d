//! End to end: a real `loam local` process and the real CLI against it — the README's walk-through as a
//! test: mount, list, nodes, ls, stat, cat twice (the second read from the cache), errors, JSON output,
//! clean shutdown on Ctrl-C (SIGINT), and a restart that keeps mounts, worker ids and the warm cache.

use crate::local_process::{Local, cli, ok, start_local};
use crate::process::LOAM;

use std::process::Command;
use std::time::{Duration, Instant};

fn ufs_reads(l: &Local) -> u64 {
    l.workers
        .iter()
        .map(|(url, _)| {
            let text = crate::http::get_ok(&format!("{url}/metrics")).unwrap_or_else(|e| panic!("{e}"));
            let text = String::from_utf8(text).unwrap();
            text.lines()
                .find_map(|x| x.strip_prefix("loam_worker_ufs_reads_total "))
                .map(|v| v.trim().parse::<u64>().unwrap())
                .unwrap_or(0)
        })
        .sum()
}

fn sigint_and_wait(mut l: Local) {
    let pid = l.child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let t0 = Instant::now();
    loop {
        if let Some(status) = l.child.try_wait().unwrap() {
            assert!(status.success(), "loam local exits 0 on Ctrl-C, got {status}");
            return;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "loam local did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn readme_walk_through() {
    let data_dir = tempfile::tempdir().unwrap();
    let ufs = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(ufs.path().join("datasets")).unwrap();
    let content: Vec<u8> = (0..3_500_000u32).map(|i| (i.wrapping_mul(7919) >> 3) as u8).collect();
    std::fs::write(ufs.path().join("datasets/train.bin"), &content).unwrap();
    std::fs::write(ufs.path().join("datasets/labels.txt"), b"cat\ndog\n").unwrap();
    let ufs_uri = format!("file://{}", ufs.path().display());

    let l = start_local(data_dir.path(), &["--workers", "3", "--max-age", "3600"]);
    assert!(ok(&l, &["mount", "add", "/data", &ufs_uri]).contains("mounted"));
    assert!(ok(&l, &["mount", "list"]).contains("/data/"));
    let nodes = ok(&l, &["nodes"]);
    assert_eq!(nodes.matches("ONLINE").count(), 3, "{nodes}");
    let ls = ok(&l, &["fs", "ls", "/data/datasets"]);
    assert!(ls.contains("/data/datasets/train.bin") && ls.contains("/data/datasets/labels.txt"), "{ls}");
    assert!(ok(&l, &["fs", "stat", "/data/datasets/train.bin"]).contains("cached:   0%"));

    let before = ufs_reads(&l);
    assert_eq!(cli(&l, &["fs", "cat", "/data/datasets/train.bin"]).stdout, content, "cold read");
    let after_cold = ufs_reads(&l);
    assert!(after_cold > before, "the cold read went to the UFS");
    assert!(ok(&l, &["fs", "stat", "/data/datasets/train.bin"]).contains("cached:   100%"));
    assert_eq!(cli(&l, &["fs", "cat", "/data/datasets/train.bin"]).stdout, content, "warm read");
    assert_eq!(ufs_reads(&l), after_cold, "the warm read is served from the cache");
    // A UFS URI works as well as a cluster path.
    let head = cli(&l, &["fs", "head", "-c", "10", &format!("{ufs_uri}/datasets/train.bin")]).stdout;
    assert_eq!(head, &content[..10]);

    // JSON output for scripts.
    let v: serde_json::Value = serde_json::from_str(&ok(&l, &["--json", "nodes"])).unwrap();
    assert_eq!(v["result"].as_array().unwrap().len(), 3);
    let v: serde_json::Value =
        serde_json::from_str(&ok(&l, &["--json", "fs", "stat", "/data/datasets/labels.txt"])).unwrap();
    assert_eq!(v["mLength"], 8);

    // Errors: one line, non-zero exit.
    for (args, needle) in [
        (vec!["mount", "add", "/data", &ufs_uri], "already mounted"),
        (vec!["fs", "cat", "/data/missing"], "no such file"),
        (vec!["fs", "ls", "/nowhere"], "No mount point"),
        (vec!["mount", "add", "/x", "file:///definitely/not/here"], "does not exist"),
    ] {
        let o = cli(&l, &args);
        assert!(!o.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one-line error: {err}");
    }
    let ids: Vec<String> = l.workers.iter().map(|w| w.1.clone()).collect();
    sigint_and_wait(l);

    // Restart: same workers, mount kept, cache warm.
    let l = start_local(data_dir.path(), &["--workers", "3", "--max-age", "3600"]);
    let mut again: Vec<String> = l.workers.iter().map(|w| w.1.clone()).collect();
    let mut ids = ids;
    again.sort();
    ids.sort();
    assert_eq!(again, ids, "workers keep their ids");
    assert!(ok(&l, &["mount", "list"]).contains("/data/"));
    assert!(ok(&l, &["fs", "stat", "/data/datasets/train.bin"]).contains("cached:   100%"));
    let before = ufs_reads(&l);
    assert_eq!(cli(&l, &["fs", "cat", "/data/datasets/train.bin"]).stdout, content);
    assert_eq!(ufs_reads(&l), before, "warm after restart");
    assert!(ok(&l, &["mount", "remove", "/data"]).contains("unmounted"));
    sigint_and_wait(l);
}

#[test]
fn unreachable_coordinator_is_a_clear_error() {
    let port = loam_testsupport::free_port();
    let o = Command::new(LOAM).args(["--coordinator", &format!("http://127.0.0.1:{port}"), "nodes"]).output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot reach the coordinator"));
}

#[test]
fn the_workers_read_a_static_mount_table_from_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let ufs = tempfile::tempdir().unwrap();
    std::fs::write(ufs.path().join("f.txt"), b"from a static mount").unwrap();
    let config = dir.path().join("local.toml");
    std::fs::write(
        &config,
        format!("workers = 2\n[[mount]]\npath = \"/data\"\nufs = \"file://{}\"\n", ufs.path().display()),
    )
    .unwrap();
    let l = start_local(&dir.path().join("data"), &["--config", &config.display().to_string()]);
    assert_eq!(l.workers.len(), 2, "workers = 2 from the file");
    assert!(ok(&l, &["mount", "list"]).contains("/data/"));
    let o = cli(&l, &["fs", "cat", "/data/f.txt", "--no-ufs-fallback"]);
    assert!(o.status.success(), "a worker serves it: {}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.stdout, b"from a static mount");
    assert!(ufs_reads(&l) >= 1, "read through a worker, which follows the table in the store");
    let o = cli(&l, &["mount", "remove", "/data"]);
    assert!(!o.status.success(), "the static table cannot be changed");
}
