//! Real S3 clients from Debian against the workers' S3 API, every byte checked: `rclone` (`copy`,
//! `check`, `sync`, `mount --read-only`) and `s3fs` (a read-only mount), each on a `file://` bucket and
//! on a bucket of a moto S3 server. What a client writes through one worker is read through another.
//!
//! `rclone check --download` compares the bytes of both sides (a `file://` object's ETag is no MD5, so a
//! plain check could only compare sizes), and each check is proven able to fail: after a byte of the
//! local tree changes behind rclone's back it must report that file. Clients run with `--retries 1`
//! (rclone) and `retries=1` (s3fs), so that an error of ours is not hidden by a retry that succeeds.
//! The AWS CLI has its own tests (`s3_api.rs`, `s3_big_copy.rs`).

pub(crate) mod tools;

use crate::PAGE;
use crate::s3_api::options;
use loam_testsupport::cluster::{Cluster, MOTO_BUCKET, Options};
use loam_testsupport::data::pattern;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use tools::{FuseMount, assert_same_files, both, ok, run, tool, tree, write_tree};

/// The test key pair (what `options` configures the workers with).
pub(crate) fn keys() -> (String, String) {
    let c = options(1, PAGE).s3.credentials.expect("the S3 tests' key pair");
    (c.access_key, c.secret_key)
}

/// rclone remotes by environment: `w<i>` is worker `i`'s S3 endpoint with the test keys, path-style
/// (rclone's `force_path_style`, its default for provider `Other`, spelled out as a user would), and
/// `ufs` is the moto server itself (to check what reached the UFS, past Loam).
fn rclone_env(c: &Cluster) -> Vec<(String, String)> {
    let (ak, sk) = keys();
    let mut remotes: Vec<(String, String, String, String)> =
        c.endpoints().into_iter().enumerate().map(|(i, ep)| (format!("W{i}"), ep, ak.clone(), sk.clone())).collect();
    if let Some(m) = &c.moto {
        remotes.push(("UFS".into(), m.endpoint(), m.access_key().into(), m.secret_key().into()));
    }
    let mut env = Vec::new();
    for (name, endpoint, ak, sk) in remotes {
        for (k, v) in [
            ("TYPE", "s3"),
            ("PROVIDER", "Other"),
            ("ENDPOINT", &endpoint),
            ("ACCESS_KEY_ID", &ak),
            ("SECRET_ACCESS_KEY", &sk),
            ("REGION", "us-east-1"),
            ("FORCE_PATH_STYLE", "true"),
        ] {
            env.push((format!("RCLONE_CONFIG_{name}_{k}"), v.to_string()));
        }
    }
    env
}

/// Runs `rclone <args>` with the test's remotes, an empty config file and no retries.
async fn rclone(home: &Path, env: &[(String, String)], args: &[&str]) -> std::process::Output {
    let config = home.join("rclone.conf");
    std::fs::write(&config, "").unwrap();
    let mut all = vec!["--config", config.to_str().unwrap(), "--retries", "1", "--low-level-retries", "1"];
    all.extend_from_slice(args);
    run(&tool("rclone"), &all, home, env).await
}

/// `rclone check --download src remote` must pass.
async fn check_passes(home: &Path, env: &[(String, String)], src: &Path, remote: &str) {
    let out = rclone(home, env, &["check", "--download", src.to_str().unwrap(), remote]).await;
    ok(&format!("rclone check --download {remote}"), &out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("0 differences found"), "{}", both(&out));
}

/// One bucket, `bucket`, end to end with rclone; `ufs` is where its `tree/` lives past Loam (a local
/// directory or the `ufs:` remote); `sync_flags` go to `rclone sync`.
async fn rclone_on(c: &Cluster, home: &Path, bucket: &str, ufs: &str, sync_flags: &[&str]) {
    let env = rclone_env(c);
    let src = home.join(format!("src-{bucket}"));
    write_tree(&src, &tree());
    let (via_w0, via_w1) = (format!("w0:{bucket}/tree"), format!("w1:{bucket}/tree"));
    let srcs = src.to_str().unwrap();

    ok("rclone copy", &rclone(home, &env, &["copy", srcs, &via_w0]).await);
    check_passes(home, &env, &src, &via_w1).await;
    check_passes(home, &env, &src, ufs).await;

    // A byte changed behind rclone's back: the check sees it.
    let changed = src.join("a/b/c/deep.bin");
    let mut bytes = std::fs::read(&changed).unwrap();
    bytes[1 << 20] ^= 0x40;
    std::fs::write(&changed, &bytes).unwrap();
    let out = rclone(home, &env, &["check", "--download", "--differ", "-", srcs, &via_w1]).await;
    assert!(!out.status.success(), "the check passed after a byte changed: {}", both(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 differences found"), "{}", both(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "a/b/c/deep.bin\n", "the file that differs");

    // Local changes, synced: the changed byte, a file added, one rewritten shorter, one deleted.
    write_tree(&src, &[("added/new file.bin", pattern(300_000, 6)), ("odd/100% + more.txt", pattern(10, 7))]);
    std::fs::remove_file(src.join("a/two MiB.bin")).unwrap();
    ok("rclone sync", &rclone(home, &env, &[&["sync", srcs, &via_w0][..], sync_flags].concat()).await);
    check_passes(home, &env, &src, &via_w1).await;
    check_passes(home, &env, &src, ufs).await;

    let mnt = home.join(format!("mnt-{bucket}"));
    let args = ["--config", "/dev/null", "mount", "--read-only", &format!("w1:{bucket}"), mnt.to_str().unwrap()];
    let mount = FuseMount::start(&tool("rclone"), &args, &mnt, home, &env).await;
    assert_same_files(&src, &mount.dir.join("tree")).await;
    assert!(std::fs::write(mount.dir.join("tree/refused"), b"x").is_err(), "the mount is read-only");
    drop(mount);
}

#[tokio::test(flavor = "multi_thread")]
async fn rclone_copies_checks_syncs_and_mounts_a_file_and_an_s3_bucket() {
    let c = Cluster::start(Options { moto: true, ..options(2, PAGE) }).await;
    let home = tempfile::tempdir().unwrap();
    let ufs_tree = c.ufs_root().join("tree");
    rclone_on(&c, home.path(), "data", ufs_tree.to_str().unwrap(), &[]).await;
    // Where the ETag is an MD5 (moto's) and only the time differs, the sync sets the time with a
    // CopyObject onto itself (`rclone_sync_sets_the_time_of_an_unchanged_object`).
    rclone_on(&c, home.path(), "s3data", &format!("ufs:{MOTO_BUCKET}/tree"), &[]).await;
}

/// rclone keeps a file's time in `x-amz-meta-mtime`. When a sync finds an object whose MD5 matches but
/// whose time differs, it sets the time with a CopyObject onto itself (`x-amz-metadata-directive:
/// REPLACE`), which S3 allows (before issue 14 item 5 Loam answered `400 InvalidRequest`, and the sync
/// failed with "Failed to set modification time").
#[tokio::test(flavor = "multi_thread")]
async fn rclone_sync_sets_the_time_of_an_unchanged_object() {
    let c = Cluster::start(Options { moto: true, ..options(1, PAGE) }).await;
    let home = tempfile::tempdir().unwrap();
    let env = rclone_env(&c);
    let src = home.path().join("src");
    write_tree(&src, &[("f.txt", b"same bytes".to_vec())]);
    let srcs = src.to_str().unwrap();
    ok("rclone copy", &rclone(home.path(), &env, &["copy", srcs, "w0:s3data/t"]).await);
    let earlier = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_500_000_000);
    std::fs::File::options().write(true).open(src.join("f.txt")).unwrap().set_modified(earlier).unwrap();
    ok("rclone sync", &rclone(home.path(), &env, &["sync", srcs, "w0:s3data/t"]).await);
    let listing = ok("rclone lsl", &rclone(home.path(), &env, &["lsl", "w0:s3data/t"]).await);
    assert!(listing.contains("2017-07-14"), "the object carries the local file's time: {listing}");
    check_passes(home.path(), &env, &src, "w0:s3data/t").await;
}

/// Mounts `bucket` read-only with s3fs through worker 1 and compares every file under `tree/` with `src`.
async fn s3fs_on(c: &Cluster, home: &Path, bucket: &str, src: &Path) {
    let passwd = home.join("passwd-s3fs");
    let (ak, sk) = keys();
    std::fs::write(&passwd, format!("{ak}:{sk}\n")).unwrap();
    // s3fs refuses a passwd file that others can read.
    std::fs::set_permissions(&passwd, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mnt = home.join(format!("s3fs-{bucket}"));
    let opts = format!(
        "passwd_file={},url={},use_path_request_style,ro,retries=1,dbglevel=info",
        passwd.display(),
        c.endpoints()[1]
    );
    let args = [bucket, mnt.to_str().unwrap(), "-f", "-o", &opts];
    let mount = FuseMount::start(&tool("s3fs"), &args, &mnt, home, &[]).await;
    assert_same_files(src, &mount.dir.join("tree")).await;
    assert!(std::fs::write(mount.dir.join("tree/refused"), b"x").is_err(), "the mount is read-only");
    let log = mount.log_text();
    assert!(!log.contains("response code 5"), "a 5xx answered s3fs:\n{log}");
    drop(mount);
}

#[tokio::test(flavor = "multi_thread")]
async fn s3fs_mounts_a_file_and_an_s3_bucket_read_only() {
    let c = Cluster::start(Options { moto: true, ..options(2, PAGE) }).await;
    let home = tempfile::tempdir().unwrap();
    let src = home.path().join("src");
    let files = tree();
    write_tree(&src, &files);
    // Written past Loam, straight into each UFS; read through worker 1's read-through.
    write_tree(&c.ufs_root().join("tree"), &files);
    let moto = c.moto.as_ref().unwrap();
    tokio::task::block_in_place(|| {
        files.iter().for_each(|(k, v)| moto.put_object(MOTO_BUCKET, &format!("tree/{k}"), v))
    });
    s3fs_on(&c, home.path(), "data", &src).await;
    s3fs_on(&c, home.path(), "s3data", &src).await;
}

/// rclone creates the bucket before `touch` (and `mkdir`, `copyto`) writes: CreateBucket of a mounted
/// name succeeds, as S3 answers a bucket's owner (it was a `501`, and `rclone touch` failed); of any other
/// name it stays a refusal and makes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn rclone_touch_writes_into_an_existing_bucket_and_mkdir_makes_no_bucket() {
    let c = Cluster::start(options(1, PAGE)).await;
    let home = tempfile::tempdir().unwrap();
    let env = rclone_env(&c);
    ok("rclone touch", &rclone(home.path(), &env, &["touch", "w0:data/touched/new file"]).await);
    assert_eq!(std::fs::read(c.ufs_root().join("touched/new file")).unwrap(), b"", "an empty object");
    let out = rclone(home.path(), &env, &["mkdir", "w0:nosuch"]).await;
    assert!(!out.status.success(), "a bucket that is no mount was made: {}", both(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("NotImplemented"), "{}", both(&out));
    let buckets = ok("rclone lsd", &rclone(home.path(), &env, &["lsd", "w0:"]).await);
    assert!(buckets.contains(" data") && !buckets.contains("nosuch"), "{buckets}");
}
