//! The soak's files and their versions: every byte of every version is derivable from (file, version), so
//! a reader checks a whole body without keeping copies, and a body that mixes two versions cannot pass.
//!
//! A version's body starts with its version number (8 bytes, little endian) and goes on with a keystream
//! of (file, version); its length depends on both, so a rewrite changes sizes too. A reader takes the
//! version from the first 8 bytes and compares the body's length and SHA-256 with that version's: a
//! body whose head names one version and whose tail is another's is wrong bytes. A version number that
//! was never written is wrong bytes as well.
//!
//! **Decision**: rewrites replace a file atomically (write a temporary file, then rename it over the old
//! one), as an S3 PUT does; a torn write in place would make the UFS itself hold bytes of no version, and a
//! reader could not tell Loam's fault from the writer's.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The directory under the mount that holds the soak's files.
pub const DIR: &str = "chaos";

/// Length of version `v` of file `f`: from 8 bytes to about 2.6 MiB, across page edges (1 MiB pages).
pub fn len(f: usize, v: u64) -> usize {
    const BASE: [usize; 12] =
        [8, 4097, 65_536, 100_000, 1 << 20, (1 << 20) + 1, 300_000, 1_500_000, 2_600_000, 12_345, 777_777, 2_097_152];
    let base = BASE[f % BASE.len()];
    if base <= 8 { 8 + (v as usize % 3) } else { base + (v as usize * 4099) % 70_001 }
}

/// The bytes of version `v` of file `f`.
pub fn body(f: usize, v: u64) -> Vec<u8> {
    let n = len(f, v);
    let mut out = Vec::with_capacity(n);
    out.extend_from_slice(&v.to_le_bytes());
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ ((f as u64) << 32) ^ v.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let take = (n - out.len()).min(8);
        out.extend_from_slice(&x.to_le_bytes()[..take]);
    }
    out
}

/// The file name of file `f` under [`DIR`].
pub fn name(f: usize) -> String {
    format!("f{f:02}")
}

/// The page size of the workers and of the alluxio client's page reads.
pub const PAGE: usize = 1 << 20;

/// What a reader got, as it reports it: the length, the SHA-256 and the first 8 bytes of the body.
#[derive(Clone, Copy)]
pub struct Seen<'a> {
    pub len: usize,
    pub sha256: &'a str,
    pub head: &'a [u8],
}

/// A check's verdict on a body.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Exactly one written version.
    Right,
    /// Not one version, but every page is that page of some written version: a client that reads a file
    /// with one request per page (the alluxio client) got pages of a file replaced between its requests.
    AcrossRequests(String),
    /// Bytes of no version: what is wrong with them.
    Wrong(String),
}

/// The files of one soak: their UFS directory, the newest version of each, and the digests of the
/// versions readers have named.
pub struct Files {
    dir: PathBuf,
    newest: Vec<AtomicU64>,
    digests: Mutex<HashMap<(usize, u64), String>>,
}

impl Files {
    /// Writes version 0 of `count` files under `<ufs>/chaos`.
    pub fn create(ufs: &Path, count: usize) -> std::io::Result<Self> {
        let dir = ufs.join(DIR);
        std::fs::create_dir_all(&dir)?;
        let files = Self { dir, newest: (0..count).map(|_| AtomicU64::new(0)).collect(), digests: Default::default() };
        for f in 0..count {
            files.write(f, 0)?;
        }
        Ok(files)
    }

    /// How many files.
    pub fn count(&self) -> usize {
        self.newest.len()
    }

    /// Replaces file `f` with its next version (atomically); the new version number.
    pub fn rewrite(&self, f: usize) -> std::io::Result<u64> {
        // Known before it is visible: a reader may see it the moment the rename lands.
        let v = self.newest[f].fetch_add(1, Ordering::SeqCst) + 1;
        self.write(f, v)?;
        Ok(v)
    }

    fn write(&self, f: usize, v: u64) -> std::io::Result<()> {
        let tmp = self.dir.join(format!(".{}.tmp", name(f)));
        std::fs::write(&tmp, body(f, v))?;
        std::fs::rename(&tmp, self.dir.join(name(f)))
    }

    /// `None` when `seen` is exactly some written version of file `f`; else what is wrong with it.
    pub fn check(&self, f: usize, seen: Seen<'_>) -> Option<String> {
        let Some(head) = seen.head.get(..8) else {
            return Some(format!("{} bytes, shorter than any version", seen.len));
        };
        let v = u64::from_le_bytes(head.try_into().expect("8 bytes"));
        let newest = self.newest[f].load(Ordering::SeqCst);
        if v > newest {
            return Some(format!("names version {v}, but the newest written is {newest}"));
        }
        if seen.len != len(f, v) {
            return Some(format!("{} bytes under version {v}'s head, which has {}", seen.len, len(f, v)));
        }
        let want = self.digest(f, v);
        (want != seen.sha256).then(|| format!("version {v}'s head, but not its bytes (sha256 {})", seen.sha256))
    }

    /// [`Files::check`] of a whole body.
    pub fn check_body(&self, f: usize, body: &[u8]) -> Option<String> {
        let sha = hex::encode(Sha256::digest(body));
        self.check(f, Seen { len: body.len(), sha256: &sha, head: &body[..body.len().min(8)] })
    }

    /// The verdict on a body read page by page: [`Files::check`], and when that fails, whether each page
    /// (`pages`, the SHA-256 of each [`PAGE`] of the body) is the same page of some written version.
    pub fn check_pages(&self, f: usize, seen: Seen<'_>, pages: &[String]) -> Verdict {
        let Some(wrong) = self.check(f, seen) else { return Verdict::Right };
        let newest = self.newest[f].load(Ordering::SeqCst);
        let len = seen.len;
        let page_ok = |p: usize, sha: &String| {
            let (start, end) = (p * PAGE, ((p + 1) * PAGE).min(len));
            (0..=newest).any(|v| {
                let b = body(f, v);
                b.len() >= end && hex::encode(Sha256::digest(&b[start..end])) == *sha
            })
        };
        if pages.len() == len.div_ceil(PAGE) && pages.iter().enumerate().all(|(p, sha)| page_ok(p, sha)) {
            Verdict::AcrossRequests(format!("{wrong}; each page is that page of a written version"))
        } else {
            Verdict::Wrong(wrong)
        }
    }

    fn digest(&self, f: usize, v: u64) -> String {
        if let Some(d) = self.digests.lock().expect("digests").get(&(f, v)) {
            return d.clone();
        }
        let d = hex::encode(Sha256::digest(body(f, v)));
        self.digests.lock().expect("digests").insert((f, v), d.clone());
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_of_one_version_passes_and_a_mixed_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::create(dir.path(), 12).unwrap();
        let old = body(8, 0);
        assert_eq!(files.check_body(8, &old), None);
        assert!(files.check_body(8, &body(8, 1)).unwrap().contains("newest written is 0"));
        files.rewrite(8).unwrap();
        let new = body(8, 1);
        assert_eq!(std::fs::read(dir.path().join("chaos/f08")).unwrap(), new);
        assert_eq!(files.check_body(8, &new), None);
        assert_eq!(files.check_body(8, &old), None, "an older version is still a version");
        // The old version's first page and the new version's rest: the head names 0, the bytes are not 0's.
        let mut mixed = old[..1 << 20].to_vec();
        mixed.extend_from_slice(&new[1 << 20..]);
        assert!(files.check_body(8, &mixed).is_some());
        let mut flipped = new.clone();
        flipped[5000] ^= 1;
        assert!(files.check_body(8, &flipped).unwrap().contains("not its bytes"));
        assert!(files.check_body(0, &[1, 2]).unwrap().contains("shorter"));
        let pages = |b: &[u8]| b.chunks(PAGE).map(|c| hex::encode(Sha256::digest(c))).collect::<Vec<_>>();
        let seen = |b: &[u8]| (b.len(), hex::encode(Sha256::digest(b)));
        let (n, sha) = seen(&mixed);
        let verdict = files.check_pages(8, Seen { len: n, sha256: &sha, head: &mixed[..8] }, &pages(&mixed));
        assert!(matches!(verdict, Verdict::AcrossRequests(_)), "{verdict:?}");
        let (n, sha) = seen(&flipped);
        let verdict = files.check_pages(8, Seen { len: n, sha256: &sha, head: &flipped[..8] }, &pages(&flipped));
        assert!(matches!(verdict, Verdict::Wrong(_)), "{verdict:?}");
    }

    #[test]
    fn versions_differ_in_bytes_and_mostly_in_length() {
        assert_ne!(body(3, 0), body(3, 1));
        assert_ne!(body(3, 0), body(4, 0)[..len(3, 0)].to_vec());
        assert_ne!(len(7, 0), len(7, 1));
        assert!((0..12).all(|f| len(f, 5) >= 8));
    }
}
