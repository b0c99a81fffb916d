//! The behaviour cases, each a generic async fn over one backend's [`Env`].

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt, future::join_all, stream};
use loam_ufs::{ListOptions, Ufs, UfsError, UfsStatus};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// One backend under test.
pub struct Env {
    /// The UFS, rooted at `root`.
    pub ufs: Arc<dyn Ufs>,
    /// The root URI, without trailing slash.
    pub root: String,
    /// Whether the backend reports ETags (S3 yes, fs no).
    pub has_etag: bool,
    /// URIs outside the root (other scheme, authority or prefix): every operation must refuse them.
    pub outside: Vec<String>,
}

impl Env {
    fn uri(&self, rel: &str) -> String {
        format!("{}/{rel}", self.root)
    }

    async fn put(&self, rel: &str, data: Bytes) {
        self.ufs.write(&self.uri(rel), data).await.unwrap_or_else(|e| panic!("write {rel}: {e}"));
    }

    async fn put_many(&self, rels: Vec<String>) {
        stream::iter(rels)
            .for_each_concurrent(16, |rel| async move { self.put(&rel, Bytes::from(rel.clone())).await })
            .await;
    }

    async fn list(&self, rel: &str, recursive: bool, page_size: usize) -> Vec<UfsStatus> {
        let opts = ListOptions { recursive, page_size: Some(page_size) };
        self.ufs.list(&self.uri(rel), opts).try_collect().await.unwrap_or_else(|e| panic!("list {rel}: {e}"))
    }
}

/// Deterministic test bytes.
fn data(n: usize) -> Bytes {
    (0..n).map(|i| (i % 251) as u8).collect::<Vec<_>>().into()
}

fn is_not_found<T: std::fmt::Debug>(r: Result<T, UfsError>) -> bool {
    matches!(r, Err(UfsError::NotFound(_)))
}

/// 2020-01-01: any real modification time is later.
fn recent(t: Option<SystemTime>) -> bool {
    t.is_some_and(|t| t > SystemTime::UNIX_EPOCH + Duration::from_secs(1_577_836_800))
}

pub async fn stat_file(env: Env) {
    env.put("dir/f.bin", data(1000)).await;
    let s = env.ufs.stat(&env.uri("dir/f.bin")).await.unwrap();
    assert_eq!(s.uri, env.uri("dir/f.bin"));
    assert!(!s.is_dir);
    assert_eq!(s.length, 1000);
    assert!(recent(s.modified), "{:?}", s.modified);
    assert_eq!(s.etag.is_some(), env.has_etag, "{:?}", s.etag);
    if let Some(etag) = &s.etag {
        assert!(!etag.contains('"'), "quotes stripped: {etag}");
        env.put("dir/f.bin", data(999)).await;
        let s2 = env.ufs.stat(&env.uri("dir/f.bin")).await.unwrap();
        assert_ne!(s2.etag.as_ref(), Some(etag), "new content, new ETag");
        assert_eq!(s2.length, 999);
    }
}

pub async fn stat_dir(env: Env) {
    env.put("d/sub/f", data(3)).await;
    env.ufs.create_dir(&env.uri("marker")).await.unwrap();
    for (rel, uri) in
        [("d", env.uri("d")), ("d", env.uri("d/")), ("d/sub", env.uri("d/sub")), ("marker", env.uri("marker"))]
    {
        let s = env.ufs.stat(&uri).await.unwrap_or_else(|e| panic!("stat {uri}: {e}"));
        assert!(s.is_dir, "{uri}");
        assert_eq!(s.length, 0);
        assert_eq!(s.uri, env.uri(rel), "no trailing slash");
    }
    let root = env.ufs.stat(&env.root).await.unwrap();
    assert!(root.is_dir);
    assert_eq!(root.uri, env.root);
}

pub async fn stat_missing(env: Env) {
    env.put("d/f", data(3)).await;
    for rel in ["nope", "d/nope", "d/f/deeper", "nope/"] {
        let r = env.ufs.stat(&env.uri(rel)).await;
        assert!(is_not_found(r.clone()), "{rel}: {r:?}");
        assert_eq!(r.unwrap_err().kind(), loam_core::ErrorKind::NotFound);
    }
}

pub async fn ranged_reads(env: Env) {
    let d = data(10_000);
    env.put("r.bin", d.clone()).await;
    env.put("empty", Bytes::new()).await;
    let u = env.uri("r.bin");
    let read = |off, len| {
        let (ufs, u) = (env.ufs.clone(), u.clone());
        async move { ufs.read_range(&u, off, len).await.unwrap_or_else(|e| panic!("read {off}+{len}: {e}")) }
    };
    assert_eq!(read(100, 500).await, d.slice(100..600), "middle");
    assert_eq!(read(0, 10_000).await, d, "whole");
    assert_eq!(read(9_900, 500).await, d.slice(9_900..), "tail is short");
    assert!(read(10_000, 10).await.is_empty(), "at EOF");
    assert!(read(20_000, 10).await.is_empty(), "past EOF");
    assert!(read(0, 0).await.is_empty(), "len 0");
    assert!(read(5, 0).await.is_empty(), "len 0 inside");
    assert!(read(u64::MAX - 1, 10).await.is_empty(), "offset near u64::MAX");
    assert!(env.ufs.read_range(&env.uri("empty"), 0, 10).await.unwrap().is_empty(), "empty file");
    assert!(is_not_found(env.ufs.read_range(&env.uri("missing"), 0, 10).await));
}

pub async fn concurrent_reads(env: Env) {
    let d = data(1 << 20);
    env.put("big", d.clone()).await;
    let u = env.uri("big");
    let chunk = 64 << 10;
    let reads = (0..32u64).map(|i| {
        let (ufs, u) = (env.ufs.clone(), u.clone());
        // Overlapping ranges, spread over the file and past its end.
        tokio::spawn(async move { (i, ufs.read_range(&u, i * 40_000, chunk).await) })
    });
    for r in join_all(reads).await {
        let (i, got) = r.unwrap();
        let start = ((i * 40_000) as usize).min(d.len());
        let end = (start + chunk as usize).min(d.len());
        assert_eq!(got.unwrap(), d.slice(start..end), "read {i}");
    }
}

pub async fn write_then_read(env: Env) {
    let u = env.uri("w/new/file");
    env.ufs.write(&u, data(5000)).await.unwrap();
    assert_eq!(env.ufs.read_range(&u, 0, 1 << 20).await.unwrap(), data(5000));
    env.ufs.write(&u, Bytes::from_static(b"short")).await.unwrap();
    assert_eq!(env.ufs.read_range(&u, 0, 1 << 20).await.unwrap(), Bytes::from_static(b"short"));
    assert_eq!(env.ufs.stat(&u).await.unwrap().length, 5);
    assert!(matches!(env.ufs.write(&env.root, data(1)).await, Err(UfsError::InvalidInput(_))), "root is no file");
}

/// `data` cut into chunks of uneven sizes (a chunked HTTP body arrives so), as a write body.
fn chunked(d: Bytes, sizes: &[usize]) -> BoxStream<'static, Result<Bytes, std::io::Error>> {
    let mut parts = Vec::new();
    let mut at = 0;
    for size in sizes.iter().cycle() {
        if at >= d.len() {
            break;
        }
        let end = (at + size).min(d.len());
        parts.push(Ok(d.slice(at..end)));
        at = end;
    }
    stream::iter(parts).boxed()
}

/// Several multipart parts' worth (17 MiB and 3 bytes) streamed in odd chunks reads back byte-exact.
pub async fn write_stream_large(env: Env) {
    let u = env.uri("ws/big.bin");
    let d = data(17 * 1024 * 1024 + 3);
    let n = env
        .ufs
        .write_stream(&u, chunked(d.clone(), &[100_003, 1, 2_000_000, 65_536]), Default::default())
        .await
        .unwrap();
    assert_eq!(n, d.len() as u64);
    assert_eq!(env.ufs.stat(&u).await.unwrap().length, d.len() as u64);
    let back = env.ufs.read_range(&u, 0, d.len() as u64 + 10).await.unwrap();
    assert!(back == d, "read back {} bytes, differing", back.len());
    // A replacement, shorter, wins whole.
    let small = data(10);
    env.ufs.write_stream(&u, chunked(small.clone(), &[3]), Default::default()).await.unwrap();
    assert_eq!(env.ufs.read_range(&u, 0, 1 << 20).await.unwrap(), small);
    let listed: Vec<_> = env.list("ws", false, PAGE).await.into_iter().map(|s| s.uri).collect();
    assert_eq!(listed, vec![u.clone()], "no leftover of the writes");
}

pub async fn write_stream_empty(env: Env) {
    let u = env.uri("ws/empty");
    assert_eq!(env.ufs.write_stream(&u, stream::empty().boxed(), Default::default()).await.unwrap(), 0);
    let s = env.ufs.stat(&u).await.unwrap();
    assert!(!s.is_dir);
    assert_eq!(s.length, 0);
    let root = env.ufs.write_stream(&env.root, stream::empty().boxed(), Default::default()).await;
    assert!(matches!(root, Err(UfsError::InvalidInput(_))), "root is no file: {root:?}");
}

/// A body that fails half-way leaves the old file, whole, and nothing else behind.
pub async fn write_stream_failing_body_keeps_the_old_file(env: Env) {
    let u = env.uri("wf/f");
    env.put("wf/f", data(1234)).await;
    let body = stream::iter(vec![
        Ok(Bytes::from(vec![7u8; 9 * 1024 * 1024])),
        Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "client went away")),
    ])
    .boxed();
    match env.ufs.write_stream(&u, body, Default::default()).await {
        Err(UfsError::InvalidInput(m)) => assert!(m.contains("client went away"), "{m}"),
        other => panic!("expected InvalidInput, got {other:?}"),
    }
    assert_eq!(env.ufs.read_range(&u, 0, 1 << 20).await.unwrap(), data(1234));
    let listed: Vec<_> = env.list("wf", false, PAGE).await.into_iter().map(|s| s.uri).collect();
    assert_eq!(listed, vec![u.clone()], "no partial file left");
    let fresh = env.uri("wf/never");
    let body = stream::iter(vec![Err(std::io::Error::other("at once"))]).boxed();
    assert!(env.ufs.write_stream(&fresh, body, Default::default()).await.is_err());
    assert!(is_not_found(env.ufs.stat(&fresh).await), "a failed new file does not appear");
}

const MANY: usize = 250;
const PAGE: usize = 100;

async fn make_many(env: &Env) {
    let mut rels: Vec<String> = (0..MANY).map(|i| format!("many/f{i:03}")).collect();
    rels.push("many/sub1/x".into());
    rels.push("many/sub2/deeper/y".into());
    rels.push("many-sibling/z".into()); // shares the prefix "many" but is not under "many/"
    env.put_many(rels).await;
}

/// Listing with a page size below the entry count proves that pagination continues.
pub async fn list_non_recursive_paginated(env: Env) {
    make_many(&env).await;
    let entries = env.list("many", false, PAGE).await;
    let by_uri: BTreeMap<_, _> = entries.iter().map(|s| (s.uri.clone(), s.clone())).collect();
    assert_eq!(by_uri.len(), entries.len(), "no duplicates");
    assert_eq!(entries.len(), MANY + 2, "250 files and 2 dirs");
    for i in 0..MANY {
        let rel = format!("many/f{i:03}");
        let s = by_uri.get(&env.uri(&rel)).unwrap_or_else(|| panic!("{rel} listed"));
        assert!(!s.is_dir);
        assert_eq!(s.length, rel.len() as u64, "length from the listing");
        assert!(recent(s.modified), "modified from the listing");
        assert_eq!(s.etag.is_some(), env.has_etag);
    }
    for sub in ["many/sub1", "many/sub2"] {
        assert!(by_uri.get(&env.uri(sub)).is_some_and(|s| s.is_dir), "{sub} listed as a dir");
    }
    let slash = env.list("many/", false, PAGE).await;
    assert_eq!(slash.len(), entries.len(), "a trailing slash lists the same");
}

pub async fn list_recursive_paginated(env: Env) {
    make_many(&env).await;
    let entries = env.list("many", true, PAGE).await;
    let uris: Vec<_> = entries.iter().map(|s| s.uri.clone()).collect();
    assert!(entries.iter().all(|s| !s.is_dir), "files only");
    assert_eq!(entries.len(), MANY + 2, "{uris:?}");
    assert!(uris.contains(&env.uri("many/sub2/deeper/y")));
    assert!(!uris.iter().any(|u| u.contains("many-sibling")), "siblings sharing the prefix stay out");
    assert!(uris.iter().all(|u| !u.ends_with('/')));
}

/// A missing directory (or a file) lists as empty on both backends.
pub async fn list_missing_is_empty(env: Env) {
    env.put("file", data(3)).await;
    assert!(env.list("no/such/dir", false, PAGE).await.is_empty());
    assert!(env.list("no/such/dir", true, PAGE).await.is_empty());
    assert!(env.list("file", false, PAGE).await.is_empty());
}

pub async fn delete_file(env: Env) {
    let u = env.uri("del/f");
    env.ufs.write(&u, data(10)).await.unwrap();
    env.ufs.delete(&u, false).await.unwrap();
    assert!(is_not_found(env.ufs.stat(&u).await));
    env.ufs.delete(&u, false).await.expect("deleting a missing file is fine");
    env.ufs.delete(&env.uri("never/was"), true).await.expect("recursive delete of nothing is fine");
}

pub async fn delete_recursive(env: Env) {
    env.put_many(["t/a", "t/b/c", "t/b/d", "tx/keep", "t.keep"].map(String::from).to_vec()).await;
    env.ufs.delete(&env.uri("t"), true).await.unwrap();
    assert!(is_not_found(env.ufs.stat(&env.uri("t")).await));
    assert!(is_not_found(env.ufs.stat(&env.uri("t/b/c")).await));
    assert!(env.list("t", true, PAGE).await.is_empty());
    for keep in ["tx/keep", "t.keep"] {
        let kept = env.ufs.stat(&env.uri(keep)).await;
        assert!(kept.is_ok(), "{keep} shares the prefix and survives: {kept:?}");
    }
    env.put("single", data(4)).await;
    env.ufs.delete(&env.uri("single"), true).await.unwrap();
    assert!(is_not_found(env.ufs.stat(&env.uri("single")).await), "recursive delete of a file");
    assert!(matches!(env.ufs.delete(&env.root, true).await, Err(UfsError::InvalidInput(_))));
}

pub async fn copy(env: Env) {
    env.put("src", data(777)).await;
    env.ufs.copy(&env.uri("src"), &env.uri("c/dst")).await.unwrap();
    assert_eq!(env.ufs.read_range(&env.uri("c/dst"), 0, 1000).await.unwrap(), data(777));
    assert!(env.ufs.stat(&env.uri("src")).await.is_ok(), "the source stays");
    assert!(is_not_found(env.ufs.copy(&env.uri("missing"), &env.uri("c/x")).await));
}

pub async fn rename(env: Env) {
    env.put("src", data(321)).await;
    env.ufs.rename(&env.uri("src"), &env.uri("r/dst")).await.unwrap();
    assert_eq!(env.ufs.read_range(&env.uri("r/dst"), 0, 1000).await.unwrap(), data(321));
    assert!(is_not_found(env.ufs.stat(&env.uri("src")).await), "the source is gone");
    assert!(is_not_found(env.ufs.rename(&env.uri("missing"), &env.uri("r/x")).await));
}

pub async fn create_dir(env: Env) {
    let u = env.uri("newdir/inner");
    env.ufs.create_dir(&u).await.unwrap();
    env.ufs.create_dir(&u).await.expect("create_dir is idempotent");
    assert!(env.ufs.stat(&u).await.unwrap().is_dir);
    assert!(env.ufs.stat(&env.uri("newdir")).await.unwrap().is_dir, "parents exist");
    let listed = env.list("newdir", false, PAGE).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(listed[0].is_dir && listed[0].uri == u);
    assert!(env.list("newdir", true, PAGE).await.is_empty(), "no files under it");
    let root: Vec<_> = env.list("", false, PAGE).await.into_iter().map(|s| s.uri).collect();
    assert!(root.contains(&env.uri("newdir")), "listing the root: {root:?}");
    env.ufs.create_dir(&env.root).await.expect("the root exists");
}

pub async fn outside_root_is_invalid(env: Env) {
    let mut uris = env.outside.clone();
    uris.push("not a uri".to_string());
    uris.push("gopher://x/y".to_string());
    let inside = env.uri("in");
    env.put("in", data(1)).await;
    for u in &uris {
        let invalid = |r: Result<(), UfsError>| matches!(r, Err(UfsError::InvalidInput(_)));
        assert!(invalid(env.ufs.stat(u).await.map(|_| ())), "stat {u}");
        assert!(invalid(env.ufs.read_range(u, 0, 1).await.map(|_| ())), "read {u}");
        assert!(invalid(env.ufs.write(u, data(1)).await), "write {u}");
        let streamed = env.ufs.write_stream(u, stream::iter(vec![Ok(data(1))]).boxed(), Default::default()).await;
        assert!(invalid(streamed.map(|_| ())), "write_stream {u}");
        assert!(invalid(env.ufs.delete(u, true).await), "delete {u}");
        assert!(invalid(env.ufs.create_dir(u).await), "create_dir {u}");
        assert!(invalid(env.ufs.copy(&inside, u).await), "copy to {u}");
        assert!(invalid(env.ufs.rename(u, &inside).await), "rename from {u}");
        let first = env.ufs.list(u, ListOptions::default()).next().await;
        assert!(matches!(first, Some(Err(UfsError::InvalidInput(_)))), "list {u}: {first:?}");
    }
    assert!(env.ufs.stat(&inside).await.is_ok(), "nothing was renamed or deleted");
}

/// The version tag the worker keeps for what `stat` says.
fn tag(s: &UfsStatus) -> String {
    loam_core::version::version_tag(s.length, s.etag.as_deref(), s.modified.map(loam_core::time::epoch_millis))
}

pub async fn pinned_reads(env: Env) {
    let u = env.uri("p.bin");
    env.put("p.bin", data(4000)).await;
    let v1 = tag(&env.ufs.stat(&u).await.unwrap());
    assert_eq!(env.ufs.read_range_of(&u, 10, 100, &v1).await.unwrap(), data(4000).slice(10..110));
    // Rewritten with the same length: only the time (fs) or the ETag (S3) tells the versions apart.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let v2_data: Bytes = data(4000).iter().map(|b| b ^ 0xff).collect::<Vec<_>>().into();
    env.put("p.bin", v2_data.clone()).await;
    let v2 = tag(&env.ufs.stat(&u).await.unwrap());
    assert_ne!(v1, v2, "a rewrite makes a new version");
    let old = env.ufs.read_range_of(&u, 10, 100, &v1).await;
    assert!(matches!(old, Err(UfsError::Changed(_))), "a read pinned to the old version: {old:?}");
    assert_eq!(old.unwrap_err().kind(), loam_core::ErrorKind::Changed);
    assert_eq!(env.ufs.read_range_of(&u, 10, 100, &v2).await.unwrap(), v2_data.slice(10..110));
    assert!(matches!(env.ufs.read_range_of(&u, 0, 10, "nope").await, Err(UfsError::Changed(_))));
    assert!(is_not_found(env.ufs.read_range_of(&env.uri("missing"), 0, 10, &v2).await));
}

/// `read_pieces_of`: the bytes of one version in pieces of the size asked (the last one shorter; past the
/// end nothing), each in a buffer of its own, so a cached page keeps only itself alive.
pub async fn pieced_reads(env: Env) {
    let u = env.uri("pieces.bin");
    env.put("pieces.bin", data(10_000)).await;
    let v1 = tag(&env.ufs.stat(&u).await.unwrap());
    let pieces = env.ufs.read_pieces_of(&u, 100, 5000, &v1, 1024).await.unwrap();
    let lens: Vec<usize> = pieces.iter().map(Bytes::len).collect();
    assert_eq!(lens, [1024, 1024, 1024, 1024, 904]);
    assert_eq!(pieces.concat(), data(10_000).slice(100..5100));
    for pair in pieces.windows(2) {
        let end_of_first = pair[0].as_ptr().wrapping_add(pair[0].len());
        assert_ne!(end_of_first, pair[1].as_ptr(), "pieces must not be slices of one buffer");
    }
    // Shorter at the end of the file, nothing past it.
    let tail = env.ufs.read_pieces_of(&u, 9000, 4096, &v1, 1024).await.unwrap();
    assert_eq!(tail.iter().map(Bytes::len).collect::<Vec<_>>(), [1000]);
    assert!(env.ufs.read_pieces_of(&u, 10_000, 10, &v1, 1024).await.unwrap().is_empty());
    assert!(matches!(env.ufs.read_pieces_of(&u, 0, 10, "nope", 4).await, Err(UfsError::Changed(_))));
}

/// `stream_pieces_of`: the pieces `read_pieces_of` gives, each handed on as it fills; a rewrite while the
/// stream runs yields no byte of the new version (the rest is the old one's, or the stream ends with
/// `Changed`).
pub async fn streamed_reads(env: Env) {
    let u = env.uri("streamed.bin");
    env.put("streamed.bin", data(10_000)).await;
    let v1 = tag(&env.ufs.stat(&u).await.unwrap());
    let pieces: Vec<Bytes> = env.ufs.stream_pieces_of(&u, 100, 5000, &v1, 1024).try_collect().await.unwrap();
    assert_eq!(pieces.iter().map(Bytes::len).collect::<Vec<_>>(), [1024, 1024, 1024, 1024, 904]);
    assert_eq!(pieces.concat(), data(10_000).slice(100..5100));
    for pair in pieces.windows(2) {
        let end_of_first = pair[0].as_ptr().wrapping_add(pair[0].len());
        assert_ne!(end_of_first, pair[1].as_ptr(), "pieces must not be slices of one buffer");
    }
    let tail: Vec<Bytes> = env.ufs.stream_pieces_of(&u, 9000, 4096, &v1, 1024).try_collect().await.unwrap();
    assert_eq!(tail.iter().map(Bytes::len).collect::<Vec<_>>(), [1000]);
    assert!(env.ufs.stream_pieces_of(&u, 10_000, 10, &v1, 1024).next().await.is_none());
    let stale = env.ufs.stream_pieces_of(&u, 0, 10, "nope", 4).next().await;
    assert!(matches!(stale, Some(Err(UfsError::Changed(_)))), "{stale:?}");
    // Rewritten after the first piece.
    let mut s = env.ufs.stream_pieces_of(&u, 0, 10_000, &v1, 1000);
    let mut got = s.next().await.unwrap().unwrap().to_vec();
    tokio::time::sleep(Duration::from_millis(20)).await;
    env.put("streamed.bin", data(10_000).iter().map(|b| b ^ 0xff).collect::<Vec<_>>().into()).await;
    let mut ended = None;
    while let Some(p) = s.next().await {
        match p {
            Ok(p) => got.extend_from_slice(&p),
            Err(e) => ended = Some(e),
        }
    }
    assert_eq!(&got[..], &data(10_000)[..got.len()], "only bytes of the version the read was pinned to");
    match ended {
        None => assert_eq!(got.len(), 10_000, "whole when not cut"),
        Some(e) => assert!(matches!(e, UfsError::Changed(_)), "{e:?}"),
    }
}

/// Paths are used exactly as given: names that differ only in leading or trailing whitespace are
/// different files for every operation (OpenDAL's `Operator` trims them; see `exact_paths`), and `%`,
/// `+` and unicode names round-trip.
pub async fn exact_paths(env: Env) {
    let names = ["x/report", "x/report ", "x/ report", "x/ report\t", "x/100% a+b ü.bin"];
    for (i, rel) in names.iter().enumerate() {
        env.put(rel, data(10 + i)).await;
    }
    for (i, rel) in names.iter().enumerate() {
        let st = env.ufs.stat(&env.uri(rel)).await.unwrap_or_else(|e| panic!("stat {rel:?}: {e}"));
        assert_eq!((st.uri.as_str(), st.length), (env.uri(rel).as_str(), 10 + i as u64), "{rel:?}");
        assert_eq!(env.ufs.read_range(&env.uri(rel), 0, 100).await.unwrap(), data(10 + i), "{rel:?}");
    }
    let mut listed: Vec<String> = env.list("x", false, 2).await.into_iter().map(|s| s.uri).collect();
    listed.sort();
    let mut expected: Vec<String> = names.iter().map(|n| env.uri(n)).collect();
    expected.sort();
    assert_eq!(listed, expected);
    // Streamed writes, copies, renames and deletes keep the exact name too.
    let body = stream::iter(vec![Ok(Bytes::from_static(b"streamed"))]).boxed();
    env.ufs.write_stream(&env.uri("x/report "), body, Default::default()).await.unwrap();
    env.ufs.copy(&env.uri("x/report "), &env.uri("x/copy ")).await.unwrap();
    env.ufs.rename(&env.uri("x/copy "), &env.uri("x/ moved")).await.unwrap();
    env.ufs.delete(&env.uri("x/ report"), false).await.unwrap();
    assert_eq!(env.ufs.read_range(&env.uri("x/report "), 0, 100).await.unwrap(), Bytes::from_static(b"streamed"));
    assert_eq!(env.ufs.read_range(&env.uri("x/ moved"), 0, 100).await.unwrap(), Bytes::from_static(b"streamed"));
    assert_eq!(env.ufs.read_range(&env.uri("x/report"), 0, 100).await.unwrap(), data(10), "untouched");
    assert_eq!(env.ufs.read_range(&env.uri("x/ report\t"), 0, 100).await.unwrap(), data(13), "untouched");
    assert!(is_not_found(env.ufs.stat(&env.uri("x/ report")).await));
    assert!(is_not_found(env.ufs.stat(&env.uri("x/copy ")).await));
    // Directories with whitespace names, and a recursive delete of one.
    env.ufs.create_dir(&env.uri("d ")).await.unwrap();
    env.put("d /f ", data(3)).await;
    env.put("d/f", data(4)).await;
    assert!(env.ufs.stat(&env.uri("d ")).await.unwrap().is_dir);
    env.ufs.delete(&env.uri("d "), true).await.unwrap();
    assert!(is_not_found(env.ufs.stat(&env.uri("d /f ")).await));
    assert_eq!(env.ufs.read_range(&env.uri("d/f"), 0, 100).await.unwrap(), data(4), "the other directory stays");
}

/// Metadata written with the bytes comes back from a stat (not from a listing); an amendment made after
/// the body is stored where the UFS can (fs), not on S3 (sent with the upload); an overwrite without
/// metadata clears it.
pub async fn metadata_round_trip(env: Env) {
    use loam_ufs::{ObjectMetadata, WriteOptions};
    let u = env.uri("meta/obj");
    let mut meta = ObjectMetadata {
        content_type: Some("text/plain; charset=utf-8".into()),
        cache_control: Some("max-age=60".into()),
        expires: Some("Thu, 01 Jan 2037 00:00:00 GMT".into()),
        content_disposition: Some("attachment; filename=\"a b.txt\"".into()),
        content_encoding: Some("gzip".into()),
        content_language: Some("de-CH".into()),
        ..Default::default()
    };
    meta.user.insert("plain".into(), "v1".into());
    meta.user.insert("unicode".into(), "grüße ✓".into());
    let opts = WriteOptions {
        metadata: meta.clone(),
        amend: Some(Arc::new(|m: &mut ObjectMetadata| m.etag = Some("0123abcd".into()))),
        condition: None,
    };
    env.ufs.write_stream(&u, stream::iter(vec![Ok(data(5))]).boxed(), opts).await.unwrap();
    let got = env.ufs.stat(&u).await.unwrap().meta.expect("a stat reads the metadata");
    let expected_etag = if env.has_etag { None } else { Some("0123abcd".to_string()) };
    assert_eq!(got, ObjectMetadata { etag: expected_etag, ..meta }, "every field round-trips");
    let listed = env.list("meta", false, PAGE).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].meta, None, "a listing does not read metadata");
    env.ufs.write_stream(&u, stream::iter(vec![Ok(data(6))]).boxed(), Default::default()).await.unwrap();
    let got = env.ufs.stat(&u).await.unwrap().meta.unwrap();
    assert!(got.user.is_empty() && got.cache_control.is_none() && got.expires.is_none(), "cleared: {got:?}");
    assert!(got.etag.is_none() && got.content_language.is_none(), "cleared: {got:?}");
    assert_eq!(env.ufs.stat(&env.uri("meta")).await.unwrap().meta, None, "a directory has none");
}

/// The ETag the S3 API answers for a stat: the stored one, else the version tag.
fn answered_etag(st: &UfsStatus) -> String {
    let stored = st.meta.as_ref().and_then(|m| m.etag.clone());
    let modified = st.modified.map(loam_core::time::epoch_millis);
    stored.unwrap_or_else(|| loam_core::version::version_tag(st.length, st.etag.as_deref(), modified))
}

/// A streamed write of `body` with `condition`; the stored ETag (where the UFS keeps one) names the body.
async fn write_if(
    env: &Env,
    rel: &str,
    body: &'static str,
    condition: Option<loam_ufs::WriteCondition>,
) -> Result<u64, UfsError> {
    use loam_ufs::{ObjectMetadata, WriteOptions};
    let opts = WriteOptions {
        amend: Some(Arc::new(move |m: &mut ObjectMetadata| m.etag = Some(format!("etag-of-{body}")))),
        condition,
        ..Default::default()
    };
    env.ufs.write_stream(&env.uri(rel), stream::iter(vec![Ok(Bytes::from(body))]).boxed(), opts).await
}

/// Conditional writes and deletes (`If-None-Match: *`, `If-Match`): nothing changes when the condition
/// fails; of writers racing with one condition exactly one wins, and the object is its bytes.
pub async fn conditional_writes(env: Env) {
    use loam_ufs::WriteCondition::{Exists, Matches, NoneMatch, NotExists};
    let u = env.uri("cond/obj");
    let read = |u: String| {
        let ufs = env.ufs.clone();
        async move { ufs.read_range(&u, 0, 100).await.unwrap() }
    };
    write_if(&env, "cond/obj", "first", Some(NotExists)).await.expect("created where nothing was");
    let refused = write_if(&env, "cond/obj", "second", Some(NotExists)).await;
    assert!(matches!(refused, Err(UfsError::ConditionFailed(_))), "{refused:?}");
    assert_eq!(read(u.clone()).await, "first", "nothing written");
    let refused = write_if(&env, "cond/obj", "second", Some(Matches("not-the-etag".into()))).await;
    assert!(matches!(refused, Err(UfsError::ConditionFailed(_))), "{refused:?}");
    assert_eq!(read(u.clone()).await, "first", "nothing written");
    let missing = write_if(&env, "cond/none", "x", Some(Matches("any".into()))).await;
    assert!(
        matches!(missing, Err(UfsError::NotFound(_))),
        "If-Match of a missing object is NotFound, as S3 answers: {missing:?}"
    );
    assert!(is_not_found(env.ufs.stat(&env.uri("cond/none")).await));
    let etag = answered_etag(&env.ufs.stat(&u).await.unwrap());
    write_if(&env, "cond/obj", "third", Some(Matches(format!("\"{etag}\"")))).await.expect("the current ETag matches");
    assert_eq!(read(u.clone()).await, "third");
    // If-None-Match: <etag> and If-Match: *.
    let now = answered_etag(&env.ufs.stat(&u).await.unwrap());
    let refused = write_if(&env, "cond/obj", "fourth", Some(NoneMatch(now))).await;
    assert!(matches!(refused, Err(UfsError::ConditionFailed(_))), "the current ETag: {refused:?}");
    assert_eq!(read(u.clone()).await, "third", "nothing written");
    write_if(&env, "cond/obj", "fourth", Some(NoneMatch("other".into()))).await.expect("another ETag");
    assert_eq!(read(u.clone()).await, "fourth");
    write_if(&env, "cond/obj", "fifth", Some(Exists)).await.expect("there is an object");
    assert_eq!(read(u.clone()).await, "fifth");
    let missing = write_if(&env, "cond/none", "x", Some(Exists)).await;
    assert!(matches!(missing, Err(UfsError::NotFound(_))), "If-Match: * of a missing object: {missing:?}");
    assert!(is_not_found(env.ufs.stat(&env.uri("cond/none")).await));
    write_if(&env, "cond/new", "x", Some(NoneMatch("any".into()))).await.expect("no object: written");
    assert_eq!(read(env.uri("cond/new")).await, "x");
    // Deletes.
    let refused = env.ufs.delete_if_match(&u, &etag).await;
    assert!(matches!(refused, Err(UfsError::ConditionFailed(_))), "the old ETag: {refused:?}");
    assert_eq!(read(u.clone()).await, "fifth", "nothing deleted");
    assert!(is_not_found(env.ufs.delete_if_match(&env.uri("cond/none"), "x").await));
    let etag = answered_etag(&env.ufs.stat(&u).await.unwrap());
    env.ufs.delete_if_match(&u, &etag).await.expect("the current ETag matches");
    assert!(is_not_found(env.ufs.stat(&u).await));
    // Races: every round, writers with distinct bodies start together; exactly one wins.
    // The bodies of the second writers differ from the first ones': an unchanged body keeps its ETag.
    const BODIES: [&str; 6] = ["body-0", "body-1", "body-2", "body-3", "body-4", "body-5"];
    const NEXT: [&str; 6] = ["next-0", "next-1", "next-2", "next-3", "next-4", "next-5"];
    for round in 0..4 {
        let rel = format!("cond/race-{round}");
        let results = join_all(BODIES.iter().map(|&b| write_if(&env, &rel, b, Some(NotExists)))).await;
        let won = one_winner(&results, round, "NotExists");
        assert_eq!(read(env.uri(&rel)).await, BODIES[won]);
        let etag = answered_etag(&env.ufs.stat(&env.uri(&rel)).await.unwrap());
        let results = join_all(NEXT.iter().map(|&b| write_if(&env, &rel, b, Some(Matches(etag.clone()))))).await;
        let won = one_winner(&results, round, "Matches");
        assert_eq!(read(env.uri(&rel)).await, NEXT[won]);
    }
}

/// The index of the only `Ok`; every other result must be `ConditionFailed`.
fn one_winner(results: &[Result<u64, UfsError>], round: usize, what: &str) -> usize {
    let won: Vec<usize> = (0..results.len()).filter(|&i| results[i].is_ok()).collect();
    assert_eq!(won.len(), 1, "round {round}, {what}: {results:?}");
    for r in results.iter().filter(|r| r.is_err()) {
        assert!(matches!(r, Err(UfsError::ConditionFailed(_))), "round {round}, {what}: {r:?}");
    }
    won[0]
}
