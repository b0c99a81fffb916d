//! End to end: `loam job` against a real `loam local` process — `--sync` loads and frees that end
//! SUCCEEDED with the final progress on stdout, `--json` output that parses, `job list`, `--progress` and
//! `--stop` by id on a job slowed down by `--bandwidth` (and a second `--stop`, refused: the job is not
//! running), and a bad regex as a one-line error.

use crate::local_process::{cli, ok_quiet as ok, start_local};

#[test]
fn job_commands_against_loam_local() {
    let data_dir = tempfile::tempdir().unwrap();
    let ufs = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(ufs.path().join("a/sub")).unwrap();
    for i in 0..5u8 {
        let rel = if i % 2 == 0 { format!("a/f{i}") } else { format!("a/sub/f{i}") };
        std::fs::write(ufs.path().join(rel), vec![i; 1000 + i as usize]).unwrap();
    }
    std::fs::create_dir_all(ufs.path().join("big")).unwrap();
    std::fs::write(ufs.path().join("big/f"), vec![7u8; 3 << 20]).unwrap();
    let l = start_local(data_dir.path(), &["--workers", "2", "--job-retention", "1h"]);
    assert!(ok(&l, &["mount", "add", "/data", &format!("file://{}", ufs.path().display())]).contains("mounted"));

    // --sync: one line on stdout with the final progress, no bar (stderr is not a terminal).
    let out = ok(&l, &["job", "load", "--path", "/data/a", "--sync"]);
    assert_eq!(out.lines().count(), 1, "{out:?}");
    assert!(!out.contains('\r'), "{out:?}");
    assert!(out.contains("SUCCEEDED") && out.contains("files 5/5") && out.contains("100%"), "{out}");
    let first = out.split_whitespace().next().unwrap().to_string();

    let v: serde_json::Value =
        serde_json::from_str(&ok(&l, &["--json", "job", "load", "--path", "/data/a", "--sync"])).unwrap();
    assert_eq!(v["state"], "SUCCEEDED", "{v}");
    assert_eq!((v["scannedFiles"].as_u64(), v["totalBytes"].as_u64()), (Some(5), Some(5010)), "{v}");
    assert_ne!(v["id"], first.as_str(), "a finished twin is a new job");

    // A job slowed down by --bandwidth, stopped and looked at by id.
    let out = ok(&l, &["job", "load", "--path", "/data/big", "--bandwidth", "64KiB"]);
    assert!(out.contains("submitted"), "{out}");
    let id = out.split_whitespace().nth(2).unwrap().trim_end_matches(':').to_string();
    assert!(ok(&l, &["job", "load", "--progress", "--id", &id]).contains("RUNNING"));
    assert!(ok(&l, &["job", "load", "--stop", "--id", &id]).contains(&format!("stopped load job {id}")));
    let v: serde_json::Value =
        serde_json::from_str(&ok(&l, &["--json", "job", "load", "--progress", "--path", "/data/big"])).unwrap();
    assert_eq!((v["id"].as_str(), v["state"].as_str()), (Some(id.as_str()), Some("STOPPED")), "{v}");
    // Stopping it again: the Coordinator's 410, as one line naming the job and its state.
    let o = cli(&l, &["job", "load", "--stop", "--id", &id]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && o.stdout.is_empty(), "{err}");
    assert_eq!(err.trim_end(), format!("error: load job {id} is not running (STOPPED): nothing to stop"));

    let list = ok(&l, &["job", "list"]);
    for j in [first.as_str(), v["id"].as_str().unwrap()] {
        assert!(list.lines().any(|x| x.starts_with("load") && x.contains(j)), "{j} in {list}");
    }
    let all: serde_json::Value = serde_json::from_str(&ok(&l, &["--json", "job", "list"])).unwrap();
    assert_eq!(all["load"].as_array().unwrap().len(), 3, "{all}");

    let out = ok(&l, &["job", "free", "--path", "/data/a", "--sync"]);
    assert!(out.contains("SUCCEEDED") && out.contains("files 5/5"), "{out}");
    assert!(ok(&l, &["job", "list"]).lines().any(|x| x.starts_with("free")));

    // Errors: one line on stderr, non-zero exit, nothing on stdout.
    for args in [
        vec!["job", "load", "--path", "/data/a", "--filter", "("],
        vec!["job", "load", "--progress", "--id", "nope"],
        vec!["job", "free", "--path", "/nowhere", "--sync"],
    ] {
        let o = cli(&l, &args);
        assert!(!o.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(o.stdout.is_empty(), "{args:?}");
    }
    let err = String::from_utf8(cli(&l, &["job", "load", "--path", "/data/a", "--filter", "("]).stderr).unwrap();
    assert!(err.contains("fileFilterRegex") && err.contains("400"), "{err}");
}
