//! End to end: `loam job rebalance` against a real `loam local` process — `--sync` with the final line on
//! stdout, `--json`, `--skip-prune` keeping second copies and a plain run pruning them, a running job (held
//! back by `--prune-bandwidth`) seen with `--progress`, resubmitted (409), stopped with `--stop`, `job list`,
//! and errors as one line.

use crate::local_process::{cli, ok_quiet as ok, start_local};

#[test]
fn rebalance_commands_against_loam_local() {
    let data_dir = tempfile::tempdir().unwrap();
    let ufs = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(ufs.path().join("a")).unwrap();
    for i in 0..5u8 {
        std::fs::write(ufs.path().join(format!("a/f{i}")), vec![i; 1000 + i as usize]).unwrap();
    }
    std::fs::create_dir_all(ufs.path().join("big")).unwrap();
    std::fs::write(ufs.path().join("big/f"), vec![7u8; 3 << 20]).unwrap();
    let l = start_local(data_dir.path(), &["--workers", "2", "--job-retention", "1h"]);
    assert!(ok(&l, &["mount", "add", "/data", &format!("file://{}", ufs.path().display())]).contains("mounted"));
    // Two copies of each file: one on its owner, one on the other worker.
    assert!(ok(&l, &["job", "load", "--path", "/data/a", "--replicas", "2", "--sync"]).contains("SUCCEEDED"));

    // --skip-prune: every file is on its owner already; the second copies stay.
    let out = ok(&l, &["job", "rebalance", "--target", "ALL", "--skip-prune", "--sync"]);
    assert_eq!(out.lines().count(), 1, "{out:?}");
    assert!(!out.contains('\r'), "{out:?}");
    assert!(out.contains("SUCCEEDED") && out.contains("workers 2/2") && out.contains("preserved 5"), "{out}");
    assert!(out.contains("pruned 0"), "{out}");
    let first = out.split_whitespace().next().unwrap().to_string();

    // A plain run prunes the second copies.
    let v: serde_json::Value =
        serde_json::from_str(&ok(&l, &["--json", "job", "rebalance", "--target", "all", "--sync"])).unwrap();
    assert_eq!(v["state"], "SUCCEEDED", "{v}");
    let n = |k: &str| v[k].as_u64().unwrap();
    assert_eq!((n("filesPreserved"), n("filesPruned"), n("bytesPruned")), (5, 5, 5010), "{v}");
    assert_eq!((n("totalWorkers"), n("succeededWorkers"), n("failedWorkers")), (2, 2, 0), "{v}");

    // A job held back by its prune bandwidth: running, a twin of it, stopped.
    assert!(ok(&l, &["job", "load", "--path", "/data/big", "--replicas", "2", "--sync"]).contains("SUCCEEDED"));
    let out = ok(&l, &["job", "rebalance", "--target", "ALL", "--prune-bandwidth", "64KiB"]);
    assert!(out.contains("submitted"), "{out}");
    let id = out.split_whitespace().nth(2).unwrap().trim_end_matches(':').to_string();
    assert!(ok(&l, &["job", "rebalance", "--target", "ALL", "--progress"]).contains(&format!("{id} RUNNING")));
    let out = ok(&l, &["job", "rebalance", "--target", "ALL"]);
    assert!(out.contains(&id) && out.contains("exists"), "{out}");
    assert_eq!(
        ok(&l, &["job", "rebalance", "--target", "ALL", "--stop"]).trim(),
        format!("stopped rebalance job {id}")
    );
    let v: serde_json::Value =
        serde_json::from_str(&ok(&l, &["--json", "job", "rebalance", "--target", "ALL", "--progress"])).unwrap();
    assert_eq!((v["id"].as_str(), v["state"].as_str()), (Some(id.as_str()), Some("STOPPED")), "{v}");

    let list = ok(&l, &["job", "list"]);
    for j in [first.as_str(), id.as_str()] {
        assert!(list.lines().any(|x| x.starts_with("rebalance") && x.contains(j)), "{j} in {list}");
    }
    let all: serde_json::Value = serde_json::from_str(&ok(&l, &["--json", "job", "list"])).unwrap();
    assert_eq!(all["rebalance"].as_array().unwrap().len(), 3, "{all}");

    // Errors: one line on stderr, non-zero exit, nothing on stdout.
    let unknown = "worker-00000000-0000-4000-8000-000000000000";
    for (args, why) in [
        (vec!["job", "rebalance", "--target", unknown], "unknown worker id"),
        (vec!["job", "rebalance", "--target", unknown, "--progress"], "404"),
        (vec!["job", "rebalance", "--target", &l.workers[0].1, "--stop"], "404"),
    ] {
        let o = cli(&l, &args);
        assert!(!o.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(why), "{args:?}: {err}");
        assert!(o.stdout.is_empty(), "{args:?}");
    }
}
