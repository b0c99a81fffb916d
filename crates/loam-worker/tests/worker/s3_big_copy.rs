//! The AWS CLI moving a multi-GiB object between two buckets (two `file://` mounts): `aws s3 cp` of a
//! 2 GiB file into bucket `data`, `aws s3 cp s3://data/… s3://copy/…` (a multipart copy: UploadPartCopy
//! in ranges, since the object is over the CLI's 8 MiB threshold), and `aws s3 sync s3://data s3://copy`
//! for the rest of the bucket (a 20 MiB object, copied in parts too, and small ones). Every copy is
//! compared by SHA-256: streamed through a GET of another worker than the writer, and on the UFS.
//!
//! **Decision**: one multi-GiB test in the suite (2 cores): the data is generated from a seeded stream
//! and hashed as it is written, never held in memory, and lives in temp directories removed on drop.

use crate::s3_api::options;
use crate::s3_clients::keys;
use crate::s3_clients::tools::{assert_same_files, ok, run, write_tree};
use futures::StreamExt;
use loam_testsupport::cluster::{Cluster, put_mount};
use loam_testsupport::data::pattern;
use loam_ufs::{Mount, MountOptions};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

/// Over 2 GiB and no whole number of the CLI's 8 MiB parts.
const SIZE: u64 = (2 << 30) + 12_345;
/// How much the generator and the hashes handle at a time.
const CHUNK: usize = 8 << 20;

/// Writes `size` bytes of a xorshift stream seeded with `seed` to `path`; answers their SHA-256.
fn write_seeded(path: &Path, size: u64, seed: u64) -> Vec<u8> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let (mut x, mut left, mut hash) = (seed | 1, size, Sha256::new());
    let mut buf = vec![0u8; CHUNK];
    while left > 0 {
        for word in buf.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            word.copy_from_slice(&x.to_le_bytes());
        }
        let n = left.min(CHUNK as u64) as usize;
        hash.update(&buf[..n]);
        f.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
    f.flush().unwrap();
    hash.finalize().to_vec()
}

/// The SHA-256 of a local file (off the runtime).
async fn sha256_file(path: &Path) -> Vec<u8> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let (mut f, mut hash, mut buf) = (std::fs::File::open(&path).unwrap(), Sha256::new(), vec![0u8; CHUNK]);
        loop {
            match f.read(&mut buf).unwrap() {
                0 => return hash.finalize().to_vec(),
                n => hash.update(&buf[..n]),
            }
        }
    })
    .await
    .unwrap()
}

/// The length and SHA-256 of what a GET of `url` streams (unsigned: the workers allow anonymous reads).
async fn sha256_get(url: &str) -> (u64, Vec<u8>) {
    let resp = reqwest::get(url).await.unwrap();
    assert_eq!(resp.status(), 200, "GET {url}");
    let (mut body, mut hash, mut len) = (resp.bytes_stream(), Sha256::new(), 0u64);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.unwrap_or_else(|e| panic!("GET {url} broke off after {len} bytes: {e}"));
        len += chunk.len() as u64;
        hash.update(&chunk);
    }
    (len, hash.finalize().to_vec())
}

/// Runs `aws --endpoint-url <endpoint> <args>` with the test keys, path-style, and no retries.
async fn aws(home: &Path, endpoint: &str, args: &[&str]) -> String {
    let config = home.join("aws-config");
    std::fs::write(&config, "[default]\nretry_mode = standard\nmax_attempts = 1\ns3 =\n    addressing_style = path\n")
        .unwrap();
    let (access_key, secret_key) = keys();
    let env: Vec<(String, String)> = [
        ("AWS_ACCESS_KEY_ID", access_key.as_str()),
        ("AWS_SECRET_ACCESS_KEY", &secret_key),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_CONFIG_FILE", config.to_str().unwrap()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let mut all = vec!["--endpoint-url", endpoint];
    all.extend_from_slice(args);
    if matches!(args, ["s3", "cp" | "sync", ..]) {
        all.push("--only-show-errors"); // no progress lines
    }
    let out = run(&crate::s3_api::venv_bin("aws"), &all, home, &env).await;
    ok(&format!("aws {}", args.join(" ")), &out)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_aws_cli_copies_and_syncs_a_2_gib_object_between_two_buckets() {
    let c = Cluster::start(options(2, 1 << 20)).await;
    let eps = c.endpoints();
    let copy_root = c.dir.join("copy");
    std::fs::create_dir_all(&copy_root).unwrap();
    let mount = Mount::new("/copy", &format!("file://{}", copy_root.display()), MountOptions::new()).unwrap();
    put_mount(&c.store, &mount).await;
    for ep in &eps {
        let url = format!("{ep}/copy");
        tokio::time::timeout(Duration::from_secs(30), async {
            while reqwest::Client::new().head(&url).send().await.map_or(true, |r| r.status() != 200) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("bucket copy never appeared at {ep}"));
    }

    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let big = h.join("big.bin");
    let big2 = big.clone();
    let want = tokio::task::spawn_blocking(move || write_seeded(&big2, SIZE, 14)).await.unwrap();
    let small = h.join("small");
    write_tree(&small, &[("parts.bin", pattern(20 << 20, 8)), ("a b/c+d%.txt", b"small".to_vec()), ("empty", vec![])]);

    aws(h, &eps[0], &["s3", "cp", big.to_str().unwrap(), "s3://data/big/x.bin"]).await;
    aws(h, &eps[0], &["s3", "cp", "--recursive", small.to_str().unwrap(), "s3://data/small/"]).await;
    assert_eq!(sha256_file(&c.ufs_root().join("big/x.bin")).await, want, "the upload on the UFS");
    assert_eq!(sha256_get(&format!("{}/data/big/x.bin", eps[1])).await, (SIZE, want.clone()), "GET of the upload");

    aws(h, &eps[1], &["s3", "cp", "s3://data/big/x.bin", "s3://copy/big/x.bin"]).await;
    assert_eq!(sha256_file(&copy_root.join("big/x.bin")).await, want, "the copy on the UFS");
    assert_eq!(sha256_get(&format!("{}/copy/big/x.bin", eps[0])).await, (SIZE, want.clone()), "GET of the copy");

    aws(h, &eps[0], &["s3", "sync", "s3://data", "s3://copy"]).await;
    assert_same_files(&small, &copy_root.join("small")).await;
    let listing = aws(h, &eps[1], &["s3", "ls", "--recursive", "s3://copy"]).await;
    assert_eq!(listing.lines().count(), 4, "big/x.bin and the three synced: {listing}");
    assert_eq!(sha256_file(&copy_root.join("big/x.bin")).await, want, "the sync left the copy as it was");
}
