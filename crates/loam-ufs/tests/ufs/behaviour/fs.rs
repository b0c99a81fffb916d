//! The behaviour cases against the local file system (`file://` under a temp dir).

use super::cases::Env;
use loam_core::path::UfsUri;
use loam_ufs::{MountOptions, OpendalUfs, UfsError};
use std::sync::Arc;
use tempfile::TempDir;

/// A fresh UFS rooted at `<tmp>/root`; `<tmp>/rootx` exists beside it (outside the root).
fn setup() -> (Env, TempDir) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let base = tmp.path().to_str().expect("utf-8 temp path").trim_start_matches('/').to_string();
    std::fs::create_dir(tmp.path().join("root")).expect("create root");
    std::fs::create_dir(tmp.path().join("rootx")).expect("create sibling");
    let root = format!("file:///{base}/root");
    let ufs = OpendalUfs::new(&UfsUri::parse(&root).expect("root uri"), &MountOptions::new()).expect("fs ufs");
    let outside =
        vec![format!("file:///{base}/rootx/f"), format!("file:///{base}/f"), "s3://bucket/root/f".to_string()];
    (Env { ufs: Arc::new(ufs), root, has_etag: false, outside }, tmp)
}

crate::behaviour_tests!(setup;
    stat_file, stat_dir, stat_missing, ranged_reads, concurrent_reads, write_then_read,
    list_non_recursive_paginated, list_recursive_paginated, list_missing_is_empty,
    delete_file, delete_recursive, copy, rename, create_dir, outside_root_is_invalid,
    write_stream_large, write_stream_empty, write_stream_failing_body_keeps_the_old_file,
);

#[test]
fn bad_roots_are_refused() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let missing = UfsUri::parse(&format!("file://{}/missing", tmp.path().display())).unwrap();
    assert!(matches!(OpendalUfs::new(&missing, &MountOptions::new()), Err(UfsError::NotFound(_))));
    assert!(!tmp.path().join("missing").exists(), "a missing root is not created");
    std::fs::write(tmp.path().join("file"), b"x").unwrap();
    let file = UfsUri::parse(&format!("file://{}/file", tmp.path().display())).unwrap();
    assert!(matches!(OpendalUfs::new(&file, &MountOptions::new()), Err(UfsError::InvalidInput(_))));
}

/// Symlinks are what `readdir` reports as neither file nor directory; they list as their targets.
#[tokio::test]
async fn symlinks_list_as_their_targets() {
    use futures::TryStreamExt;
    let (env, tmp) = setup();
    std::fs::write(tmp.path().join("rootx/target"), b"12345").unwrap();
    std::os::unix::fs::symlink(tmp.path().join("rootx/target"), tmp.path().join("root/link")).unwrap();
    let listed: Vec<_> = env.ufs.list(&env.root, Default::default()).try_collect().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].uri.as_str(), listed[0].is_dir, listed[0].length),
        (format!("{}/link", env.root).as_str(), false, 5)
    );
}

/// A path component longer than the file system allows is the caller's error, at once (it was `Other`,
/// which the worker retried and answered 503).
#[tokio::test]
async fn a_name_over_the_limit_is_invalid_input() {
    let (env, _tmp) = setup();
    let long = format!("{}/{}", env.root, "n".repeat(300));
    for r in [env.ufs.stat(&long).await.map(|_| ()), env.ufs.write(&long, bytes::Bytes::from_static(b"x")).await] {
        assert!(matches!(&r, Err(UfsError::InvalidInput(m)) if m.contains("longer than")), "{r:?}");
    }
}
