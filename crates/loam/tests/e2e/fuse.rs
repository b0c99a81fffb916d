//! End to end, the FUSE mount with the real `loam fuse` binary over real clusters: a `loam local`
//! process (the mount table and the ring from the Coordinator), and a distributed cluster (etcd, three
//! `loam worker` processes) for failover. Files of 0, 1, 1 MiB, 1 MiB + 1 and ~20 MiB bytes live in a
//! `file://` UFS in a temp dir; every read through the mount (`cat`, `dd`, `fio --verify`, reads by the
//! test itself) is compared with those bytes.
//!
//! The tests need the kernel's FUSE device and `fio`/`fusermount3` (scripts/setup-test-deps.sh); without
//! them they fail with a message saying so. Each mount is taken down when its guard drops, also when a
//! test fails (`fuse/mount_process.rs`).

mod metrics;
mod mount_process;

use self::mount_process::{FuseProcess, require_fuse_and_tools, run, run_ok};
use crate::cluster::{CAP, Cluster, wait_until};
use crate::http;
use crate::local_process::{Local, ok, start_local};
use loam_fuse::is_mounted;
use loam_testsupport::data::content;
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::path::Path;

/// The test files: (path under the mount, length).
const FILES: [(&str, usize); 6] = [
    ("empty", 0),
    ("one", 1),
    ("mib", 1 << 20),
    ("mib1", (1 << 20) + 1),
    ("big", (20 << 20) + 12_345),
    ("nested/deeper/leaf", 777),
];

/// Writes [`FILES`] into `ufs`; (name, bytes) of each.
fn write_files(ufs: &Path) -> Vec<(&'static str, Vec<u8>)> {
    FILES
        .iter()
        .enumerate()
        .map(|(i, (rel, len))| {
            let bytes = content(*len, i as u32);
            let path = ufs.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, &bytes).unwrap();
            (*rel, bytes)
        })
        .collect()
}

/// Writes `path` with fio's verification headers (crc32c per 4 KiB block, carrying the block's offset),
/// so that fio can check every block it reads back through the mount.
fn fio_write(path: &Path, size: &str) {
    let file = format!("--filename={}", path.display());
    let size = format!("--size={size}");
    // No verify state file: fio would write it into the working directory (the crate's source).
    let args = [
        "--name=w",
        &file,
        "--rw=write",
        "--bs=4k",
        &size,
        "--verify=crc32c",
        "--do_verify=0",
        "--verify_state_save=0",
    ];
    run_ok("fio", &args);
}

/// fio reads `path` with `job` arguments and checks every block (exit status non-zero on a mismatch).
fn fio_verify(path: &Path, size: &str, job: &[&str]) {
    let file = format!("--filename={}", path.display());
    let size = format!("--size={size}");
    let mut args = vec!["--name=v", &file, &size, "--verify=crc32c", "--verify_fatal=1", "--readonly"];
    args.extend_from_slice(job);
    let o = run("fio", &args);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success() && out.contains("err= 0"), "fio {job:?} failed:\n{out}\n{}", o.stderr);
}

/// A `loam local` cluster with the UFS at `dir/ufs` mounted as `/data`.
pub(crate) fn local_cluster(dir: &Path) -> Local {
    let l = start_local(&dir.join("data"), &[]);
    ok(&l, &["mount", "add", "/data", &format!("file://{}", dir.join("ufs").display())]);
    l
}

fn mount_local(l: &Local, dir: &Path) -> FuseProcess {
    FuseProcess::start(&dir.join("mnt"), &["--coordinator", &l.coordinator], &dir.join("fuse.log"))
}

fn sorted_lines(out: &[u8]) -> Vec<String> {
    let mut v: Vec<String> = String::from_utf8_lossy(out).lines().map(str::to_string).collect();
    v.sort();
    v
}

#[test]
fn ls_stat_cat_dd_and_fio_through_the_mount_match_the_ufs() {
    require_fuse_and_tools();
    let dir = tempfile::tempdir().unwrap();
    let ufs = dir.path().join("ufs");
    let files = write_files(&ufs);
    fio_write(&ufs.join("fio.bin"), "16M");
    let l = local_cluster(dir.path());
    let mut f = mount_local(&l, dir.path());
    let mnt = |rel: &str| f.path(rel).display().to_string();

    assert_eq!(sorted_lines(&run_ok("ls", &[&mnt("")])), ["data"]);
    let names = sorted_lines(&run_ok("ls", &["-1", &mnt("data")]));
    assert_eq!(names, ["big", "empty", "fio.bin", "mib", "mib1", "nested", "one"]);
    assert_eq!(sorted_lines(&run_ok("ls", &[&mnt("data/nested/deeper")])), ["leaf"]);
    assert_eq!(run_ok("stat", &["-c", "%F", &mnt("data/nested")]), b"directory\n");

    for (rel, bytes) in &files {
        let path = mnt(&format!("data/{rel}"));
        let stat = String::from_utf8(run_ok("stat", &["-c", "%s %A", &path])).unwrap();
        assert_eq!(stat.trim(), format!("{} -r--r--r--", bytes.len()), "stat {rel}");
        assert!(run_ok("cat", &[&path]) == *bytes, "cat {rel}");
    }

    // dd with 1 MiB blocks, and with odd block sizes and offsets (page boundaries, the end of the file).
    let big = &files[4].1;
    let out = dir.path().join("big.out");
    run_ok("dd", &[&format!("if={}", mnt("data/big")), &format!("of={}", out.display()), "bs=1M", "status=none"]);
    assert!(std::fs::read(&out).unwrap() == *big, "dd bs=1M");
    for (file, bytes, bs, skip, count) in [
        ("big", big, 4097, 3, 300),
        ("big", big, 1, 1_048_575, 3),
        ("big", big, 1_000_000, 1, 2),
        ("big", big, 65_536, 319, 5),
        ("mib1", &files[3].1, 1, 1_048_576, 10),
        ("mib1", &files[3].1, 333, 3149, 1),
    ] {
        let args = [
            format!("if={}", mnt(&format!("data/{file}"))),
            format!("bs={bs}"),
            format!("skip={skip}"),
            format!("count={count}"),
            "iflag=fullblock".into(),
            "status=none".into(),
        ];
        let got = run_ok("dd", &args.iter().map(String::as_str).collect::<Vec<_>>());
        let (from, to) = ((bs * skip).min(bytes.len()), (bs * (skip + count)).min(bytes.len()));
        assert!(got == bytes[from..to], "dd {file} bs={bs} skip={skip} count={count}");
    }

    // fio: sequential 1 MiB reads and random 4 KiB reads, every 4 KiB block checked.
    let fio_file = f.path("data/fio.bin");
    fio_verify(&fio_file, "16M", &["--rw=read", "--bs=1M", "--verify_interval=4096"]);
    fio_verify(&fio_file, "16M", &["--rw=randread", "--bs=4k"]);

    // Random reads by the test itself, on one open file.
    let mut file = std::fs::File::open(f.path("data/big")).unwrap();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..200 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let off = (x % big.len() as u64) as usize;
        let len = 1 + (x >> 40) as usize % 70_000;
        file.seek(SeekFrom::Start(off as u64)).unwrap();
        let mut buf = vec![0; len];
        let n = read_full(&mut file, &mut buf);
        assert_eq!(n, len.min(big.len() - off));
        assert!(buf[..n] == big[off..off + n], "random read at {off} (+{len})");
    }
    drop(file);

    // Errors: missing paths are ENOENT, writes EROFS.
    assert_eq!(std::fs::metadata(f.path("data/missing")).unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(std::fs::metadata(f.path("nomount/x")).unwrap_err().kind(), ErrorKind::NotFound);
    let o = run("cat", &[&mnt("data/missing")]);
    assert!(!o.status.success() && o.stderr.contains("No such file or directory"), "{}", o.stderr);
    for err in [
        std::fs::write(f.path("data/new"), b"x").unwrap_err(),
        std::fs::OpenOptions::new().append(true).open(f.path("data/one")).unwrap_err(),
        std::fs::create_dir(f.path("data/newdir")).unwrap_err(),
        std::fs::remove_file(f.path("data/one")).unwrap_err(),
    ] {
        assert_eq!(err.raw_os_error(), Some(30), "EROFS, got {err}");
    }

    // SIGTERM: a clean exit that leaves nothing mounted.
    let status = f.stop_with("-TERM");
    assert!(status.success(), "loam fuse exits 0 on SIGTERM, got {status}:\n{}", f.log_text());
    assert!(!is_mounted(&f.mount_point), "unmounted on SIGTERM");
}

fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]).unwrap() {
            0 => break,
            k => n += k,
        }
    }
    n
}

#[test]
fn the_mount_ends_cleanly_on_sigint_on_an_outside_unmount_and_in_the_background() {
    require_fuse_and_tools();
    let dir = tempfile::tempdir().unwrap();
    let files = write_files(&dir.path().join("ufs"));
    let l = local_cluster(dir.path());

    let mut f = mount_local(&l, dir.path());
    assert!(std::fs::read(f.path("data/one")).unwrap() == files[1].1);
    let status = f.stop_with("-INT");
    assert!(status.success(), "loam fuse exits 0 on SIGINT, got {status}:\n{}", f.log_text());
    assert!(!is_mounted(&f.mount_point));

    // Unmounted by someone else: the process notices and exits 0.
    let mut f = mount_local(&l, dir.path());
    run_ok("fusermount3", &["-u", &f.mount_point.display().to_string()]);
    let status = f.wait_exit();
    assert!(status.success(), "loam fuse exits 0 after an outside unmount, got {status}:\n{}", f.log_text());

    // Without --foreground: the command returns once mounted; the mount runs on in the background.
    let mp = dir.path().join("mnt-bg");
    std::fs::create_dir_all(&mp).unwrap();
    let log = dir.path().join("fuse-bg.log");
    let (mp_arg, log_arg) = (mp.to_str().unwrap(), log.to_str().unwrap());
    let o = run(
        crate::process::LOAM,
        &["fuse", "--coordinator", &l.coordinator, "--mount-point", mp_arg, "--log-file", log_arg],
    );
    assert!(o.status.success(), "loam fuse (background) failed: {}", o.stderr);
    let _guard = Unmount(&mp);
    assert!(is_mounted(&mp), "mounted in the background: {}", String::from_utf8_lossy(&o.stdout));
    assert!(std::fs::read(mp.join("data/mib1")).unwrap() == files[3].1);
    run_ok("fusermount3", &["-u", mp_arg]);
    assert!(!is_mounted(&mp));
    // The background process noticed and said so in its log.
    wait_until("the background mount process logs its exit", CAP, || {
        std::fs::read_to_string(&log).ok().filter(|t| t.contains("unmounted from outside")).map(drop)
    });
}

/// Detaches a mount made outside a [`FuseProcess`] (the background mode) when the test ends.
struct Unmount<'a>(&'a Path);

impl Drop for Unmount<'_> {
    fn drop(&mut self) {
        if is_mounted(self.0) {
            let _ = std::process::Command::new("umount").arg("-l").arg(self.0).output();
        }
    }
}

#[test]
fn a_read_whose_worker_is_killed_mid_stream_completes_from_the_replicas() {
    require_fuse_and_tools();
    let mut c = Cluster::start(3);
    c.mount_data();
    let len = 48 << 20;
    let bytes = c.write_file("k/stream.bin", len, 3);
    c.write_file("k/other.bin", 100_000, 4);
    let dir = tempfile::tempdir().unwrap();
    // No UFS fallback: every byte comes from a worker.
    let args = ["--etcd", &c.etcd_url(), "--no-ufs-fallback"];
    let f = FuseProcess::start(&dir.path().join("mnt"), &args, &dir.path().join("fuse.log"));
    let path = "/data/k/stream.bin";
    let url = c.workers[0].url();
    let address = wait_until(&format!("worker 0 resolves {path}"), CAP, || http::node_of(&url, path).ok());
    let owner = c.workers.iter().position(|w| w.address() == address).expect("the owner is a worker");

    // Part of the file, then the owner dies (kill -9), then the rest on the same open file.
    let mut file = std::fs::File::open(f.path("data/k/stream.bin")).unwrap();
    let mut got = vec![0; 6 << 20];
    file.read_exact(&mut got).unwrap();
    c.kill_worker(owner);
    file.read_to_end(&mut got).unwrap();
    assert_eq!(got.len(), len);
    assert!(got == bytes, "the bytes read across the worker's death are the file's");
    // And a whole new stream with the owner gone.
    let out = dir.path().join("out");
    let file_arg = format!("if={}", f.path("data/k/stream.bin").display());
    run_ok("dd", &[&file_arg, &format!("of={}", out.display()), "bs=1M", "status=none"]);
    assert!(std::fs::read(&out).unwrap() == bytes, "dd after the owner died");

    // With every worker gone and no fallback, a read is EIO (logged), not a hang or wrong bytes.
    for i in (0..3).filter(|&i| i != owner) {
        c.kill_worker(i);
    }
    let err = std::fs::read(f.path("data/k/other.bin")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(5), "EIO, got {err}");
}
