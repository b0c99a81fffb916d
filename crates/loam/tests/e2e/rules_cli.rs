//! End to end: `loam ttl|priority|quota add|list|remove` against a real `loam local` process.

use crate::local_process::{cli, ok_quiet, start_local};

#[test]
fn rule_commands() {
    let data_dir = tempfile::tempdir().unwrap();
    let ufs = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(ufs.path().join("a/b")).unwrap();
    let l = start_local(data_dir.path(), &["--workers", "1"]);
    ok_quiet(&l, &["mount", "add", "/data", &format!("file://{}", ufs.path().display())]);

    assert!(ok_quiet(&l, &["ttl", "add", "/data/a", "600"]).contains("ttl rule set on /data/a"));
    assert!(ok_quiet(&l, &["ttl", "list"]).contains("/data/a"));
    let v: serde_json::Value =
        serde_json::from_str(&ok_quiet(&l, &["--json", "ttl", "list", "--path", "/data/a"])).unwrap();
    assert_eq!(v["ttlSeconds"], 600);
    ok_quiet(&l, &["ttl", "remove", "/data/a"]);
    assert!(!ok_quiet(&l, &["ttl", "list"]).contains("/data/a"));

    ok_quiet(&l, &["priority", "add", "/data/a/b", "HIGH"]);
    let v: serde_json::Value = serde_json::from_str(&ok_quiet(&l, &["--json", "priority", "list"])).unwrap();
    assert_eq!(v["results"][0]["priority"], "high", "returned lower-case: {v}");

    ok_quiet(&l, &["quota", "add", "/data/a", "10MiB"]);
    let v: serde_json::Value =
        serde_json::from_str(&ok_quiet(&l, &["--json", "quota", "list", "--path", "/data/a"])).unwrap();
    assert_eq!(v["quotaBytes"], 10 << 20);
    assert_eq!(v["state"], "Available");

    // Errors: one line on stderr, non-zero exit, nothing on stdout.
    for (args, needle) in [
        (vec!["ttl", "add", "/data/a", "soon"], "not a number of seconds"),
        (vec!["ttl", "add", "/nowhere", "60"], "No mounted UFS found"),
        (vec!["priority", "add", "/data/a", "urgent"], "priority"),
        (vec!["quota", "add", "/data/a/b", "1GiB"], "nested"),
        (vec!["ttl", "remove", "/data/zzz"], "TTL"),
    ] {
        let o = cli(&l, &args);
        assert!(!o.status.success(), "{args:?} should fail");
        assert!(o.stdout.is_empty(), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.to_lowercase().contains(&needle.to_lowercase()), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one-line error: {err}");
    }
}
