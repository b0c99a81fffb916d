//! One version per read through the mount while the UFS file is replaced in place (write + rename, as an
//! S3 PUT replaces an object) between versions of different lengths: every read returns exactly one
//! whole version, its length included, or fails with `ESTALE`; never one version's bytes cut to
//! another's length (docs/RELIABILITY.md, finding 4).

use crate::mount::{blocking, cluster_with, libc_estale, require_fuse};
use loam_testsupport::cluster::Options;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Version `n` of the file: `v` and `n` in 7 digits, then bytes derived from `n`, of a length that changes
/// from one version to the next (8 and 10 bytes as in the soak, and sizes across a kernel page).
fn version(n: u32) -> Vec<u8> {
    let len = [8, 10, 4100, 13, 8192 + 7][n as usize % 5];
    let mut v = format!("v{:07}", n % 10_000_000).into_bytes();
    v.extend((v.len()..len).map(|i| (i as u32).wrapping_mul(31).wrapping_add(n) as u8));
    v
}

/// The version a read's bytes name in their header.
fn named(bytes: &[u8]) -> Option<u32> {
    std::str::from_utf8(bytes.get(1..8)?).ok()?.parse().ok()
}

fn replace(ufs: &Path, n: u32) -> std::io::Result<()> {
    let tmp = ufs.join(".f.tmp");
    std::fs::write(&tmp, version(n))?;
    std::fs::rename(&tmp, ufs.join("f"))
}

/// What the reads returned.
#[derive(Default)]
struct Tally {
    whole: usize,
    stale: usize,
    /// Reads that were not one whole version, described.
    mixed: Vec<String>,
}

impl Tally {
    /// Counts one read: a whole version, `ESTALE`, or a mix (any other error fails the test).
    fn count(&mut self, read: std::io::Result<Vec<u8>>, what: &str) {
        match read {
            Ok(bytes) => match named(&bytes) {
                Some(n) if bytes == version(n) => self.whole += 1,
                Some(n) => self.mixed.push(format!(
                    "{what}: {} bytes naming version {n}, whose length is {}",
                    bytes.len(),
                    version(n).len()
                )),
                None => self.mixed.push(format!("{what}: no version header in {bytes:?}")),
            },
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc_estale()), "{what}: only ESTALE may fail a read: {e}");
                self.stale += 1;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_under_in_place_rewrites_of_other_lengths_return_one_whole_version() {
    require_fuse();
    // As in the soak: workers that check the UFS on every read, and a mount whose kernel keeps no
    // attributes (`--attr-timeout 0`), so every open looks the file up again.
    let opts = Options { workers: 2, max_age: Duration::ZERO, ..Options::worker_defaults(16 << 20, 256 << 20) };
    let c = cluster_with(opts).await;
    let ufs = c.cluster.ufs_root();
    replace(&ufs, 0).unwrap();
    let m = c.mount_with(|cfg| cfg.attr_ttl = Duration::ZERO);
    let path = m.mount_point().join("data/f");
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                if replace(&ufs, n).is_err() {
                    break;
                }
                // Versions of one length stay apart in their version tag (length and mtime in ms).
                std::thread::sleep(Duration::from_millis(2));
            }
            n
        })
    };
    let tally = blocking(move || {
        let mut tally = Tally::default();
        for i in 0..1500 {
            // A whole file per open, and a handle read in two parts.
            tally.count(std::fs::read(&path), &format!("read {i}"));
            let mut f = match std::fs::File::open(&path) {
                Ok(f) => f,
                Err(e) => panic!("open {i}: {e}"),
            };
            let mut head = vec![0; 8];
            let mut rest = Vec::new();
            let read = f.read_exact(&mut head).and_then(|()| f.read_to_end(&mut rest)).map(|_| {
                head.extend(rest);
                head
            });
            tally.count(read, &format!("handle {i}"));
        }
        tally
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let versions = writer.join().unwrap();
    let Tally { whole, stale, mixed } = &tally;
    eprintln!("3000 reads across {versions} versions: {whole} whole, {stale} ESTALE, {} mixed", mixed.len());
    assert!(mixed.is_empty(), "{} reads mixed two versions, e.g. {:?}", mixed.len(), &mixed[..mixed.len().min(5)]);
    assert!(*whole > 0, "some reads returned a version");
    blocking(move || m.unmount().unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_file_opened_again_after_a_rewrite_reads_the_new_version_whole_within_the_ttl() {
    require_fuse();
    let opts = Options { workers: 1, max_age: Duration::ZERO, ..Options::worker_defaults(16 << 20, 256 << 20) };
    let c = cluster_with(opts).await;
    let ufs = c.cluster.ufs_root();
    replace(&ufs, 2).unwrap();
    // The default TTL: the kernel keeps the entry and its attributes for a second.
    let m = c.mount();
    let path = m.mount_point().join("data/f");
    blocking(move || {
        for n in 3..40 {
            // Read and closed, so the kernel holds the inode of version n - 1 with its size...
            assert!(std::fs::read(&path).unwrap() == version(n - 1), "version {}", n - 1);
            // ...then replaced by one of another length: the next open checks the version (close to open)
            // and lands on the new one, whole, however fresh the kernel's entry still is.
            replace(&ufs, n).unwrap();
            let got = std::fs::read(&path).unwrap();
            assert!(got == version(n), "version {n}: got {} bytes naming {:?}", got.len(), named(&got));
            assert_eq!(std::fs::metadata(&path).unwrap().len(), version(n).len() as u64, "stat shows version {n}");
        }
    })
    .await;
    blocking(move || m.unmount().unwrap()).await;
}
