//! One version per response (issue 13), under stress: a file is replaced in the UFS over and over (`file://`:
//! a new file renamed over the old one, as an S3 PUT replaces an object; S3: PUTs to a moto server), in
//! turn with the same length and with other lengths, while readers stream it slowly through every read
//! path of three workers: `/v1/range`, `/v1/chunk`, the page API, S3 GetObject through each worker (owner
//! or not) and `loam_client::Client`. Workers re-validate on every open (`max-age 0`) or every second.
//!
//! Every version's bytes say which version they are (each 16-byte block holds the version number and the
//! block's index), so a body that joins two versions is caught wherever the seam is. Each answer must be
//! one whole version, and the version its `ETag` names. An answer may fail instead (`412`, `503`, a body
//! cut off): that is allowed; mixing is not.

use futures::StreamExt;
use loam_client::{Client, MembershipView, VersionPin};
use loam_core::path::UfsUri;
use loam_testsupport::cluster::{Cluster, MOTO_BUCKET, Options};
use loam_ufs::{OpendalUfs, Ufs};
use loam_worker::s3_api::S3Config;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const PAGE: u64 = 64 << 10;
/// Bytes per block: the version number and the block index, both `u64` little-endian.
const BLOCK: usize = 16;
/// How long the readers and the writer run.
const RUN: Duration = Duration::from_secs(4);

/// The length of version `n`: two versions of one length, then one of another (of a partial last page).
fn length_of(n: u64) -> usize {
    match n % 3 {
        0 | 1 => 20 * PAGE as usize,
        _ => 17 * PAGE as usize + 5 * BLOCK,
    }
}

/// The bytes of version `n`.
fn version_bytes(n: u64) -> Vec<u8> {
    let blocks = length_of(n) / BLOCK;
    let mut out = Vec::with_capacity(blocks * BLOCK);
    for b in 0..blocks as u64 {
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&b.to_le_bytes());
    }
    out
}

/// The one version `body` (read from byte `offset`, a multiple of [`BLOCK`]) is of, or what is wrong.
fn version_of(body: &[u8], offset: u64) -> Result<u64, String> {
    let first = offset / BLOCK as u64;
    let mut version = None;
    for (k, block) in body.chunks(BLOCK).enumerate() {
        let n = u64::from_le_bytes(block[..8.min(block.len())].try_into().unwrap_or([0xff; 8]));
        let index = block.get(8..16).map(|b| u64::from_le_bytes(b.try_into().unwrap()));
        if index.is_some_and(|i| i != first + k as u64) {
            return Err(format!("block {} holds index {index:?}", first + k as u64));
        }
        match version {
            None => version = Some(n),
            Some(v) if v != n => {
                return Err(format!("versions {v} and {n} mixed at byte {}", offset as usize + k * BLOCK));
            }
            _ => {}
        }
    }
    version.ok_or_else(|| "an empty body".into())
}

/// Where the file lives and how the writer replaces it.
enum Backing {
    Fs(std::path::PathBuf),
    S3(Arc<OpendalUfs>),
}

/// What the readers saw.
#[derive(Default)]
struct Seen {
    /// Answers read whole, by path.
    ok: BTreeMap<&'static str, u64>,
    /// Answers that failed (allowed), by path.
    failed: BTreeMap<&'static str, u64>,
    /// (version tag named by the answer, version its bytes are of).
    named: Vec<(String, u64)>,
    /// Answers that joined versions or had wrong bytes: must stay empty.
    wrong: Vec<String>,
}

impl Seen {
    fn record(&mut self, path: &'static str, tag: Option<String>, body: Result<(u64, Vec<u8>), String>, whole: bool) {
        let (offset, body) = match body {
            Ok(b) => b,
            Err(_) => {
                *self.failed.entry(path).or_default() += 1;
                return;
            }
        };
        match version_of(&body, offset) {
            Ok(n) if whole && body.len() != length_of(n) => {
                self.wrong.push(format!("{path}: {} bytes of version {n}, which has {}", body.len(), length_of(n)))
            }
            Ok(n) => {
                *self.ok.entry(path).or_default() += 1;
                match tag {
                    Some(t) => self.named.push((loam_core::version::unquote(&t).to_string(), n)),
                    None => self.wrong.push(format!("{path}: an answer without an ETag")),
                }
            }
            Err(e) => self.wrong.push(format!("{path}: {e}")),
        }
    }
}

/// Reads a response's body slowly (so that rewrites land while it streams); `Err` when it fails or is cut off.
async fn slow_body(r: reqwest::Response) -> Result<Vec<u8>, String> {
    if r.status() != 200 {
        return Err(format!("HTTP {}", r.status()));
    }
    let expected = r.content_length();
    let mut body = Vec::new();
    let mut stream = r.bytes_stream();
    while let Some(chunk) = stream.next().await {
        body.extend_from_slice(&chunk.map_err(|e| e.to_string())?);
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    match expected {
        Some(n) if n != body.len() as u64 => Err(format!("{} of {n} bytes", body.len())),
        _ => Ok(body),
    }
}

fn etag(r: &reqwest::Response) -> Option<String> {
    r.headers().get(reqwest::header::ETAG).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// `memory_pages` 0: no memory tier, so every warm page is a disk hit served from a mapping of its page
/// file (`loam_page_store`'s `mapped.rs`), and the version check is the one on the mapped header.
async fn stress(max_age: Duration, s3: bool, memory_pages: u64) {
    let opts = Options {
        workers: 3,
        max_age,
        memory_size: memory_pages * PAGE,
        cache_size: 256 * PAGE,
        faulty: false,
        moto: s3,
        s3: S3Config { port: 0, credentials: None, anonymous_read: true, multipart_expiry: None, unsized_puts: false },
        ..Options::default()
    };
    let c = Cluster::start(opts).await;
    let (uri, bucket, key, backing) = if s3 {
        let m = c.moto.as_ref().unwrap();
        let root = UfsUri::parse(&format!("s3://{MOTO_BUCKET}/")).unwrap();
        let ufs = Arc::new(OpendalUfs::new(&root, &m.mount_options()).unwrap());
        (format!("s3://{MOTO_BUCKET}/v/file.bin"), "s3data", "v/file.bin", Backing::S3(ufs))
    } else {
        (c.uri("v/file.bin"), "data", "v/file.bin", Backing::Fs(c.ufs_root()))
    };
    let tags: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    // Version 0 is in place before any reader starts.
    let write = |n: u64| {
        let (backing, uri, tags) = (&backing, uri.clone(), tags.clone());
        async move {
            let data = version_bytes(n);
            let tag = match backing {
                Backing::Fs(root) => {
                    let (tmp, path) = (root.join(format!("v/.tmp-{n}")), root.join("v/file.bin"));
                    std::fs::create_dir_all(root.join("v")).unwrap();
                    std::fs::write(&tmp, &data).unwrap();
                    std::fs::rename(&tmp, &path).unwrap();
                    let meta = std::fs::metadata(&path).unwrap();
                    let modified = meta.modified().ok().map(loam_core::time::epoch_millis);
                    loam_core::version::version_tag(meta.len(), None, modified)
                }
                Backing::S3(ufs) => {
                    ufs.write(&uri, data.into()).await.unwrap();
                    let st = ufs.stat(&uri).await.unwrap();
                    loam_core::version::version_tag(st.length, st.etag.as_deref(), None)
                }
            };
            tags.lock().insert(tag, n);
        }
    };
    write(0).await;

    let id = loam_core::file_id(&uri);
    let http = loam_testsupport::auth::client_with(loam_testsupport::auth::ALL_ROLES);
    let bases: Vec<String> = (0..3).map(|i| c.worker(i).http_base()).collect();
    let s3_bases: Vec<String> = c.endpoints();
    let client =
        Client::new(loam_testsupport::auth::peer_client(), MembershipView::fixed(c.worker_endpoints(), 5), None);
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for r in 0..10usize {
        let (http, bases, s3_bases, client, seen, stop) =
            (http.clone(), bases.clone(), s3_bases.clone(), client.clone(), seen.clone(), stop.clone());
        let (uri, id) = (uri.clone(), id.clone());
        readers.push(tokio::spawn(async move {
            let mut i = r;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let w = i % 3;
                let q = format!("ufsFullPath={uri}");
                match r % 5 {
                    0 => {
                        let url = format!("{}/v1/range/{id}?{q}&offset=0&length={}", bases[w], 1 << 30);
                        let (tag, body) = match http.get(&url).send().await {
                            Ok(resp) => (etag(&resp), slow_body(resp).await.map(|b| (0, b))),
                            Err(e) => (None, Err(e.to_string())),
                        };
                        seen.lock().record("/v1/range", tag, body, true);
                    }
                    1 => {
                        let url = format!("{}/v1/chunk/{id}?{q}", bases[w]);
                        let (tag, body) = match http.get(&url).send().await {
                            Ok(resp) => (etag(&resp), slow_body(resp).await.map(|b| (0, b))),
                            Err(e) => (None, Err(e.to_string())),
                        };
                        seen.lock().record("/v1/chunk", tag, body, true);
                    }
                    2 => {
                        let page = (i as u64 * 7) % 17;
                        let url = format!("{}/v1/file/{id}/page/{page}?{q}", bases[w]);
                        let (tag, body) = match http.get(&url).send().await {
                            Ok(resp) => (etag(&resp), slow_body(resp).await.map(|b| (page * PAGE, b))),
                            Err(e) => (None, Err(e.to_string())),
                        };
                        seen.lock().record("page", tag, body, false);
                    }
                    3 => {
                        let url = format!("{}/{bucket}/{key}", s3_bases[w]);
                        let (tag, body) = match reqwest::get(&url).await {
                            Ok(resp) => (etag(&resp), slow_body(resp).await.map(|b| (0, b))),
                            Err(e) => (None, Err(e.to_string())),
                        };
                        seen.lock().record("S3 GetObject", tag, body, true);
                    }
                    _ => {
                        let pin = VersionPin::default();
                        let mut stream = client.read_pinned(&uri, 0, 1 << 30, pin.clone());
                        let mut body = Vec::new();
                        let mut failed = None;
                        while let Some(chunk) = stream.next().await {
                            match chunk {
                                Ok(b) => body.extend_from_slice(&b),
                                Err(e) => {
                                    failed = Some(e.to_string());
                                    break;
                                }
                            }
                            tokio::time::sleep(Duration::from_millis(3)).await;
                        }
                        let body = match failed {
                            Some(e) => Err(e),
                            None => Ok((0, body)),
                        };
                        seen.lock().record("loam-client", pin.get(), body, true);
                    }
                }
            }
        }));
    }
    // Rewrites while the readers read: every 150 ms, for RUN.
    let started = Instant::now();
    let mut n = 0;
    while started.elapsed() < RUN {
        tokio::time::sleep(Duration::from_millis(150)).await;
        n += 1;
        write(n).await;
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.await.unwrap();
    }

    let seen = seen.lock();
    let tags = tags.lock();
    assert!(seen.wrong.is_empty(), "answers with wrong bytes:\n{}", seen.wrong.join("\n"));
    for (tag, n) in &seen.named {
        assert_eq!(tags.get(tag), Some(n), "an answer of version {n} was named {tag:?} (versions: {tags:?})");
    }
    for path in ["/v1/range", "/v1/chunk", "page", "S3 GetObject", "loam-client"] {
        assert!(seen.ok.get(path).copied().unwrap_or(0) >= 2, "{path} was read whole too rarely: {:?}", seen.ok);
    }
    let versions_read: std::collections::BTreeSet<u64> = seen.named.iter().map(|(_, n)| *n).collect();
    assert!(versions_read.len() >= 3, "the readers saw the file change: {versions_read:?} of {n} versions");
    eprintln!("{n} versions; whole answers {:?}; failed (allowed) {:?}", seen.ok, seen.failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_answer_is_one_version_of_a_file_rewritten_under_it_max_age_0() {
    stress(Duration::ZERO, false, 8).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_answer_is_one_version_of_a_file_rewritten_under_it_served_from_mapped_pages() {
    stress(Duration::from_secs(1), false, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_answer_is_one_version_of_a_file_rewritten_under_it_max_age_1s() {
    stress(Duration::from_secs(1), false, 8).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_answer_is_one_version_of_an_s3_object_rewritten_under_it_max_age_0() {
    stress(Duration::ZERO, true, 8).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_answer_is_one_version_of_an_s3_object_rewritten_under_it_max_age_1s() {
    stress(Duration::from_secs(1), true, 8).await;
}
