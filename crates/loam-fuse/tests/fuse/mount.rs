//! The mount against real in-process workers (embedded store, `file://` UFS in a temp dir): the kernel
//! reads through FUSE from test threads while the mount answers on this test's runtime. Every read is
//! compared with the UFS bytes. The `loam fuse` binary is tested end to end in `crates/loam/tests/e2e/fuse.rs`.

use loam_client::{Client, MembershipView};
use loam_core::membership::DEFAULT_CLUSTER_NAME;
use loam_fuse::{FuseConfig, MountedFs, is_mounted, mount};
use loam_testsupport::cluster::{Cluster, Options};
use loam_testsupport::data::content;
use loam_ufs::{Mount, MountTable};
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::watch;

/// Workers with a worker's default pages (16 MiB of memory, 256 MiB of disk), a client of their ring and
/// the mount table the FUSE mount shows.
pub(crate) struct Fuse {
    pub(crate) cluster: Cluster,
    client: Client,
    table: MountTable,
    _stop: watch::Sender<bool>,
}

pub(crate) fn require_fuse() {
    assert!(
        Path::new(loam_fuse::mount::FUSE_DEVICE).exists(),
        "/dev/fuse is missing: these tests need the FUSE device (modprobe fuse, or run the container with \
         --device /dev/fuse --cap-add SYS_ADMIN)"
    );
}

pub(crate) async fn cluster(workers: usize) -> Fuse {
    cluster_with(Options { workers, ..Options::worker_defaults(16 << 20, 256 << 20) }).await
}

pub(crate) async fn cluster_with(opts: Options) -> Fuse {
    let workers = opts.workers;
    let c = Cluster::start(opts).await;
    std::fs::create_dir_all(c.ufs_root().join("sub")).unwrap();
    let (stop, stopped) = watch::channel(false);
    let store = c.store.clone();
    let (view, _task) = MembershipView::follow_store(store, DEFAULT_CLUSTER_NAME, 5, stopped).await.unwrap();
    assert_eq!(view.ring().lookup("x", workers).len(), workers, "every worker is on the ring");
    // No UFS fallback: whatever the mount reads, a worker served.
    let client = Client::new(loam_testsupport::auth::peer_client(), view, None);
    let mount = Mount::new("/data", &c.root, Default::default()).unwrap();
    Fuse { cluster: c, client, table: MountTable::from_mounts([mount]), _stop: stop }
}

impl Fuse {
    pub(crate) fn write(&self, rel: &str, len: usize, seed: u32) -> Vec<u8> {
        let bytes = content(len, seed);
        std::fs::write(self.cluster.ufs_root().join(rel), &bytes).unwrap();
        bytes
    }

    pub(crate) fn mount(&self) -> MountedFs {
        self.mount_with(|_| {})
    }

    /// A mount with the defaults as `tune` changes them.
    pub(crate) fn mount_with(&self, tune: impl FnOnce(&mut FuseConfig)) -> MountedFs {
        let mp = self.cluster.dir.join("mnt");
        std::fs::create_dir_all(&mp).unwrap();
        let mut cfg = FuseConfig::new(&mp);
        tune(&mut cfg);
        mount(self.client.clone(), Arc::new(self.table.clone()), &cfg, tokio::runtime::Handle::current())
            .unwrap_or_else(|e| panic!("mount: {e}"))
    }

    /// Index of the worker that owns `rel` on the ring.
    fn owner(&self, rel: &str) -> usize {
        let id = self.client.candidates(&self.cluster.uri(rel))[0].id;
        self.cluster.workers.iter().position(|w| w.as_ref().is_some_and(|w| w.id == id)).unwrap()
    }
}

/// Runs blocking file system calls off the runtime that answers the mount.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_namespace_lists_stats_and_reads_like_the_ufs_and_refuses_writes() {
    require_fuse();
    let c = cluster(2).await;
    let files = [("empty", 0), ("one", 1), ("mib", 1 << 20), ("mib1", (1 << 20) + 1), ("sub/big", 9 << 20)];
    let expected: Vec<(String, Vec<u8>)> =
        files.iter().enumerate().map(|(i, (rel, len))| (rel.to_string(), c.write(rel, *len, i as u32))).collect();
    let m = c.mount();
    let root = m.mount_point().to_path_buf();
    blocking(move || {
        let names = |p: &Path| {
            let mut v: Vec<String> =
                std::fs::read_dir(p).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
            v.sort();
            v
        };
        assert_eq!(names(&root), ["data"]);
        assert_eq!(names(&root.join("data")), ["empty", "mib", "mib1", "one", "sub"]);
        assert!(std::fs::metadata(root.join("data/sub")).unwrap().is_dir());
        for (rel, bytes) in &expected {
            let p = root.join("data").join(rel);
            let md = std::fs::metadata(&p).unwrap();
            assert_eq!(md.len(), bytes.len() as u64, "size of {rel}");
            assert!(md.permissions().readonly(), "{rel} shows no write bits");
            assert!(std::fs::read(&p).unwrap() == *bytes, "bytes of {rel}");
        }
        // Reads at odd offsets, crossing the 1 MiB page boundary.
        let big = &expected[4].1;
        let mut f = std::fs::File::open(root.join("data/sub/big")).unwrap();
        for (off, len) in [(1_048_570u64, 20usize), (4097, 3), (9 * (1 << 20) - 5, 100)] {
            f.seek(SeekFrom::Start(off)).unwrap();
            let mut buf = vec![0; len];
            let n = f.read(&mut buf).unwrap();
            let want = &big[off as usize..(off as usize + len).min(big.len())];
            assert_eq!(&buf[..n], want, "read at {off}");
        }
        let err = std::fs::metadata(root.join("data/nope")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert_eq!(std::fs::metadata(root.join("nomount")).unwrap_err().kind(), ErrorKind::NotFound);
        let err = std::fs::File::create(root.join("data/new")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(30), "EROFS: {err}");
        let err = std::fs::OpenOptions::new().write(true).open(root.join("data/one")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(30), "EROFS: {err}");
        assert_eq!(std::fs::create_dir(root.join("data/d")).unwrap_err().raw_os_error(), Some(30));
    })
    .await;
    // A file that appears in the UFS shows up once the TTL has passed.
    let late = c.write("late", 10, 99);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let p = m.mount_point().join("data/late");
    assert_eq!(blocking(move || std::fs::read(p).unwrap()).await, late);
    blocking(move || m.unmount().unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_survives_its_worker_shutting_down_mid_read() {
    require_fuse();
    let mut c = cluster(3).await;
    let len = 40 << 20;
    let bytes = c.write("stream", len, 7);
    let owner = c.owner("stream");
    let m = c.mount();
    let p = m.mount_point().join("data/stream");
    let (to_test, mut at_half) = tokio::sync::mpsc::channel(1);
    let (resume, resumed) = std::sync::mpsc::channel::<()>();
    let reader = tokio::task::spawn_blocking(move || {
        let mut f = std::fs::File::open(p).unwrap();
        let mut got = vec![0; 4 << 20];
        f.read_exact(&mut got).unwrap();
        to_test.blocking_send(()).unwrap();
        resumed.recv().unwrap();
        f.read_to_end(&mut got).unwrap();
        got
    });
    at_half.recv().await.unwrap();
    // The owner leaves mid-stream: the rest comes from the replicas (the UFS fallback is off).
    c.cluster.kill_worker(owner).await;
    resume.send(()).unwrap();
    let got = reader.await.unwrap();
    assert_eq!(got.len(), bytes.len());
    assert!(got == bytes, "the bytes read across the shutdown are the file's");
    blocking(move || m.unmount().unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dropping_the_handle_unmounts_and_an_outside_unmount_ends_the_session() {
    require_fuse();
    let c = cluster(1).await;
    c.write("one", 1, 1);
    let m = c.mount();
    let mp = m.mount_point().to_path_buf();
    assert!(is_mounted(&mp));
    // Dropped with a file open: the unmount is lazy and still detaches the mount.
    let p = mp.join("data/one");
    let open = blocking(move || std::fs::File::open(p).unwrap()).await;
    blocking(move || drop(m)).await;
    assert!(!is_mounted(&mp), "dropping the handle unmounted it");
    drop(open);

    let m = c.mount();
    assert!(is_mounted(&mp) && !m.is_ended());
    let out = std::process::Command::new("umount").arg(&mp).output().unwrap();
    assert!(out.status.success(), "umount: {}", String::from_utf8_lossy(&out.stderr));
    m.ended().await;
    assert!(m.is_ended());
    blocking(move || m.unmount().unwrap()).await;
    assert!(!is_mounted(&mp));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_handle_reads_the_version_it_opened_or_fails_and_a_new_open_reads_the_new_one() {
    require_fuse();
    // Workers that check the UFS on every open: nothing keeps the old version alive but the handle's pin.
    let opts =
        Options { workers: 2, max_age: std::time::Duration::ZERO, ..Options::worker_defaults(16 << 20, 256 << 20) };
    let c = cluster_with(opts).await;
    const LEN: usize = 24 << 20;
    let v1 = c.write("v", LEN, 1);
    let m = c.mount();
    let (path, ufs) = (m.mount_point().join("data/v"), c.cluster.ufs_root());
    // Of another length: the kernel's size for the file must follow the version read.
    let v2 = content(LEN - 12345, 2);
    let v2_ = v2.clone();
    blocking(move || {
        let mut h = std::fs::File::open(&path).unwrap();
        let mut head = vec![0; 1 << 20];
        h.read_exact(&mut head).unwrap();
        assert!(head == v1[..1 << 20], "the first MiB of version 1");
        // Replaced as an S3 PUT replaces an object: a new file renamed over the old one.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(ufs.join(".v.tmp"), &v2_).unwrap();
        std::fs::rename(ufs.join(".v.tmp"), ufs.join("v")).unwrap();
        let mut rest = Vec::new();
        match h.read_to_end(&mut rest) {
            // Whatever the handle still reads is version 1 (read ahead, or pinned at the worker)...
            Ok(_) => {
                eprintln!("the old handle read on: version 1 from its pin");
                assert!(rest == v1[1 << 20..], "the rest through the old handle is version 1")
            }
            // ...or it fails as a stale handle; never version 2's bytes.
            Err(e) => {
                eprintln!("the old handle failed: {e}");
                assert_eq!(e.raw_os_error(), Some(libc_estale()), "{e}");
                assert!(v1[1 << 20..].starts_with(&rest), "what came before the error is version 1");
            }
        }
        drop(h);
        assert!(std::fs::read(&path).unwrap() == v2_, "a new open reads version 2, whole");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), v2_.len() as u64, "and stat shows it");
    })
    .await;
    drop(v2);
}

/// `ESTALE` on Linux.
pub(crate) fn libc_estale() -> i32 {
    116
}
