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
    stat_file, stat_dir, stat_missing, ranged_reads, pinned_reads, pieced_reads, streamed_reads,
    concurrent_reads, write_then_read,
    list_non_recursive_paginated, list_recursive_paginated, list_missing_is_empty,
    delete_file, delete_recursive, copy, rename, create_dir, outside_root_is_invalid,
    write_stream_large, write_stream_empty, write_stream_failing_body_keeps_the_old_file, exact_paths,
    metadata_round_trip, conditional_writes,
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

/// Symlinks are what `readdir` reports as neither file nor directory; one that stays beneath the root lists
/// as its target, one that leads outside (absolute or through `..`) is left out, as a dangling one is.
#[tokio::test]
async fn symlinks_list_as_their_targets_inside_the_root_only() {
    use futures::TryStreamExt;
    let (env, tmp) = setup();
    std::fs::write(tmp.path().join("rootx/target"), b"12345").unwrap();
    std::fs::write(tmp.path().join("root/inner"), b"123").unwrap();
    std::os::unix::fs::symlink(tmp.path().join("rootx/target"), tmp.path().join("root/out-abs")).unwrap();
    std::os::unix::fs::symlink("../rootx/target", tmp.path().join("root/out-rel")).unwrap();
    std::os::unix::fs::symlink("inner", tmp.path().join("root/link")).unwrap();
    let mut listed: Vec<_> = env.ufs.list(&env.root, Default::default()).try_collect().await.unwrap();
    listed.sort_by(|a, b| a.uri.cmp(&b.uri));
    let got: Vec<_> = listed.iter().map(|s| (s.uri.clone(), s.is_dir, s.length)).collect();
    assert_eq!(got, [(format!("{}/inner", env.root), false, 3), (format!("{}/link", env.root), false, 3)]);
}

fn refused<T: std::fmt::Debug>(what: &str, r: Result<T, UfsError>) {
    assert!(matches!(&r, Err(UfsError::PermissionDenied(m)) if m.contains("outside the mount root")), "{what}: {r:?}");
}

/// The attack: a symlink inside a `file://` mount that points at a file (or a directory) outside it. No
/// operation follows it out: reads, stats, listings, writes, deletes, renames, copies, directory creation.
#[tokio::test]
async fn no_operation_follows_a_symlink_out_of_the_root() {
    use futures::TryStreamExt;
    let (env, tmp) = setup();
    let secret = tmp.path().join("rootx/secret");
    std::fs::write(&secret, b"TOPSECRET").unwrap();
    let root = tmp.path().join("root");
    std::os::unix::fs::symlink(&secret, root.join("passwd")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", root.join("etc-passwd")).unwrap();
    std::os::unix::fs::symlink(tmp.path().join("rootx"), root.join("dir-out")).unwrap();
    std::os::unix::fs::symlink("../rootx", root.join("dir-out-rel")).unwrap();
    std::fs::create_dir(root.join("sub")).unwrap();
    std::os::unix::fs::symlink("../../rootx/secret", root.join("sub/up")).unwrap();
    let u = |rel: &str| format!("{}/{rel}", env.root);
    for rel in ["passwd", "etc-passwd", "dir-out/secret", "dir-out-rel/secret", "sub/up"] {
        refused(&format!("read {rel}"), env.ufs.read_range(&u(rel), 0, 100).await);
        refused(&format!("stat {rel}"), env.ufs.stat(&u(rel)).await);
        refused(&format!("write {rel}"), env.ufs.write(&u(rel), bytes::Bytes::from_static(b"owned")).await);
        refused(&format!("delete {rel}"), env.ufs.delete(&u(rel), false).await);
        refused(&format!("rename from {rel}"), env.ufs.rename(&u(rel), &u("stolen")).await);
        refused(&format!("copy from {rel}"), env.ufs.copy(&u(rel), &u("stolen")).await);
    }
    std::fs::write(root.join("mine"), b"mine").unwrap();
    refused("rename onto", env.ufs.rename(&u("mine"), &u("dir-out/planted")).await);
    refused("copy onto", env.ufs.copy(&u("mine"), &u("dir-out/planted")).await);
    refused("write under", env.ufs.write(&u("dir-out/new/deeper"), bytes::Bytes::from_static(b"x")).await);
    refused("create_dir under", env.ufs.create_dir(&u("dir-out/newdir")).await);
    refused("recursive delete", env.ufs.delete(&u("dir-out"), true).await);
    refused("list", env.ufs.list(&u("dir-out"), Default::default()).try_collect::<Vec<_>>().await);
    assert_eq!(std::fs::read(&secret).unwrap(), b"TOPSECRET", "untouched");
    let outside: Vec<_> =
        std::fs::read_dir(tmp.path().join("rootx")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(outside, ["secret"], "nothing created outside");
    assert!(!root.join("stolen").exists());
    // Inside the root, a symlink is followed as before.
    std::os::unix::fs::symlink("mine", root.join("alias")).unwrap();
    assert_eq!(&env.ufs.read_range(&u("alias"), 0, 100).await.unwrap()[..], b"mine");
    assert_eq!(env.ufs.stat(&u("alias")).await.unwrap().length, 4);
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

/// A file and a directory of one name cannot both exist on a file system: a write under a file, a file
/// where a directory is, and a directory where a file is are `Conflict` at once (they were `Other` or a
/// retried `Unavailable`, which the worker answered 500 or 503), and nothing changes.
#[tokio::test]
async fn a_file_and_a_directory_of_one_name_conflict() {
    use futures::{StreamExt, TryStreamExt};
    let (env, _tmp) = setup();
    let u = |rel: &str| format!("{}/{rel}", env.root);
    let b = |s: &'static str| bytes::Bytes::from_static(s.as_bytes());
    env.ufs.write(&u("f"), b("file")).await.unwrap();
    env.ufs.write(&u("d/child"), b("child")).await.unwrap();
    let body = || futures::stream::iter(vec![Ok(b("x"))]).boxed();
    let results = [
        ("write under a file", env.ufs.write(&u("f/x"), b("x")).await),
        (
            "streamed write under a file",
            env.ufs.write_stream(&u("f/x/y"), body(), Default::default()).await.map(|_| ()),
        ),
        ("directory where a file is", env.ufs.create_dir(&u("f")).await),
        ("directory under a file", env.ufs.create_dir(&u("f/sub")).await),
        ("file where a directory is", env.ufs.write_stream(&u("d"), body(), Default::default()).await.map(|_| ())),
        ("copy under a file", env.ufs.copy(&u("d/child"), &u("f/copy")).await),
    ];
    for (what, r) in results {
        assert!(matches!(&r, Err(UfsError::Conflict(_))), "{what}: {r:?}");
    }
    assert_eq!(env.ufs.read_range(&u("f"), 0, 10).await.unwrap(), b("file"));
    assert_eq!(env.ufs.read_range(&u("d/child"), 0, 10).await.unwrap(), b("child"));
    assert!(env.ufs.stat(&u("d")).await.unwrap().is_dir);
    let listed: Vec<_> = env.ufs.list(&env.root, loam_ufs::ListOptions::default()).try_collect().await.unwrap();
    let mut left: Vec<_> = listed.into_iter().map(|s| s.uri).collect();
    left.sort();
    assert_eq!(left, vec![u("d"), u("f")], "no temporary file is left, no directory made");
}

/// The metadata record names the version it describes: a file rewritten outside Loam (another length and
/// time) has none, and the record is an extended attribute of the file itself.
#[tokio::test]
async fn metadata_of_a_file_rewritten_outside_loam_is_dropped() {
    use futures::StreamExt;
    use loam_ufs::{ObjectMetadata, WriteOptions};
    let (env, tmp) = setup();
    let u = format!("{}/m.txt", env.root);
    let meta = ObjectMetadata { content_type: Some("text/csv".into()), ..Default::default() };
    let body = futures::stream::iter(vec![Ok(bytes::Bytes::from_static(b"a,b"))]).boxed();
    env.ufs.write_stream(&u, body, WriteOptions::with_metadata(meta.clone())).await.unwrap();
    assert_eq!(env.ufs.stat(&u).await.unwrap().meta, Some(meta));
    let path = tmp.path().join("root/m.txt");
    let xattr = rustix::fs::getxattr(&path, loam_ufs::object_meta::XATTR_NAME, &mut [0u8; 4096][..]);
    assert!(xattr.is_ok_and(|n| n > 0), "the record is an extended attribute of the file");
    std::fs::write(&path, b"a,b,c,d").unwrap();
    assert_eq!(env.ufs.stat(&u).await.unwrap().meta, Some(ObjectMetadata::default()), "stale record ignored");
}

#[tokio::test]
async fn a_record_too_large_for_the_file_system_drops_the_part_details_never_what_the_client_sent() {
    use futures::StreamExt;
    use loam_ufs::{ObjectMetadata, UfsError, WriteOptions};
    let (env, _tmp) = setup();
    let body = || futures::stream::iter(vec![Ok(bytes::Bytes::from_static(b"abc"))]).boxed();
    // 10,000 parts (S3's most), sizes and checksums: over ext4's 4 KiB, and over any file system's 64 KiB.
    let parts = ObjectMetadata {
        content_type: Some("text/csv".into()),
        parts: vec![5 << 20; 10_000],
        part_checksums: vec!["AAAAAA==".into(); 10_000],
        ..Default::default()
    };
    let u = format!("{}/parts", env.root);
    env.ufs.write_stream(&u, body(), WriteOptions::with_metadata(parts)).await.expect("the object is written");
    let meta = env.ufs.stat(&u).await.unwrap().meta.expect("with a record");
    assert_eq!(meta.content_type.as_deref(), Some("text/csv"), "what the client sent is kept");
    assert!(meta.part_checksums.is_empty() && meta.parts.is_empty(), "the part details are left out");

    let huge = ObjectMetadata { content_type: Some("x".repeat(100_000)), ..Default::default() };
    let u = format!("{}/huge", env.root);
    let r = env.ufs.write_stream(&u, body(), WriteOptions::with_metadata(huge)).await;
    assert!(matches!(r, Err(UfsError::InvalidInput(_))), "{r:?}");
    assert!(env.ufs.stat(&u).await.is_err(), "nothing written");
}
