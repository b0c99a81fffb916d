//! End to end: `loam index list|add|remove`, `loam fs locate` and `loam cache clear-stale [--stop]` against a
//! real `loam local` process, whose workers report their cached files to the coordinator's index.

use crate::local_process::{cli, ok_quiet as ok, start_local};

use std::time::{Duration, Instant};

#[test]
fn index_locate_and_clear_stale_commands() {
    let data_dir = tempfile::tempdir().unwrap();
    let ufs = tempfile::tempdir().unwrap();
    std::fs::write(ufs.path().join("f"), vec![3u8; 5000]).unwrap();
    let l = start_local(data_dir.path(), &["--workers", "2"]);
    ok(&l, &["mount", "add", "/data", &format!("file://{}", ufs.path().display())]);
    let uri = format!("file://{}/f", ufs.path().display());

    // Reading the file caches it on its worker, which reports it within a second or so.
    assert_eq!(ok(&l, &["fs", "cat", "/data/f"]).len(), 5000);
    let deadline = Instant::now() + Duration::from_secs(60);
    let located = loop {
        let o = cli(&l, &["fs", "locate", "/data/f"]);
        if o.status.success() {
            break String::from_utf8(o.stdout).unwrap();
        }
        assert!(Instant::now() < deadline, "never indexed: {}", String::from_utf8_lossy(&o.stderr));
        std::thread::sleep(Duration::from_millis(100));
    };
    let words: Vec<&str> = located.split_whitespace().collect();
    assert_eq!(words.len(), 2, "one worker, `identity address`: {located:?}");
    assert!(words[0].starts_with("worker-") && words[1].starts_with("127.0.0.1:"), "{located:?}");
    assert_eq!(ok(&l, &["index", "list"]).trim(), uri);

    assert_eq!(ok(&l, &["index", "add", "s3://x/1", "s3://x/2"]).trim(), "2 entries added");
    assert_eq!(ok(&l, &["index", "list", "--prefix", "s3://x/", "--offset", "1"]).trim(), "s3://x/2");
    assert_eq!(ok(&l, &["index", "remove", "s3://x/1", "s3://x/9"]).trim(), "1 entries removed");
    let o = cli(&l, &["fs", "locate", "s3://x/none"]);
    assert!(!o.status.success());

    assert_eq!(ok(&l, &["cache", "clear-stale"]).trim(), "clear-stale: every worker accepted");
    assert_eq!(ok(&l, &["cache", "clear-stale", "--stop"]).trim(), "stop clear-stale: every worker accepted");
    let json = ok(&l, &["--json", "cache", "clear-stale"]);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&json).unwrap(), serde_json::json!({"errors": {}}));
    // Both workers own what they cache here (each file is read through its owner), so nothing is dropped.
    assert_eq!(ok(&l, &["fs", "locate", "/data/f"]), located);
}
