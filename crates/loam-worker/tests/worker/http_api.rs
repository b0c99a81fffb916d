//! The worker HTTP API over real HTTP: every endpoint's answer, field names, and every kind of bad input.

use crate::{PAGE, one_worker};
use loam_testsupport::data::pattern;
use serde_json::Value;
use std::time::Duration;

const HOUR: Duration = Duration::from_secs(3600);

async fn json(r: reqwest::Response) -> Value {
    r.json().await.unwrap()
}

#[tokio::test]
async fn health_node_and_metrics() {
    let t = one_worker(HOUR).await;
    assert_eq!(t.get(0, "/v1/health").await.status(), 200);
    // The worker registered itself: the ring has it, so it is the primary of everything.
    let mut v = Value::Null;
    for _ in 0..50 {
        let r = t.get(0, "/v1/node?path=s3://bucket/some/file+with+plus").await;
        if r.status() == 200 {
            v = json(r).await;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(v["Host"], "127.0.0.1");
    assert_eq!(v["HttpServerPort"], t.worker(0).http_addr.port());
    let m = t.get(0, "/metrics").await;
    assert_eq!(m.status(), 200);
    let text = m.text().await.unwrap();
    for name in ["loam_worker_page_hits", "loam_worker_ufs_reads_total", "loam_worker_cached_bytes"] {
        assert!(text.contains(name), "{name} in {text}");
    }
}

#[tokio::test]
async fn info_and_files() {
    let t = one_worker(HOUR).await;
    let data = pattern(3 * PAGE as usize, 5);
    let uri = t.write("dir/sub/x.bin", &data);
    t.write("dir/y.txt", b"y");
    let r = t.get(0, &format!("/v1/info?path={}", uri.replace(' ', "+"))).await;
    assert_eq!(r.status(), 200);
    let v = json(r).await;
    let i = &v[0];
    for f in [
        "mType",
        "mName",
        "mPath",
        "mUfsPath",
        "mLength",
        "mHumanReadableFileSize",
        "mCompleted",
        "mOwner",
        "mGroup",
        "mMode",
        "mCreationTimeMs",
        "mLastModificationTimeMs",
        "mLastAccessTimeMs",
        "mPersisted",
        "mInAlluxioPercentage",
        "mContentHash",
    ] {
        assert!(i.get(f).is_some(), "field {f} in {i}");
    }
    assert_eq!(i["mType"], "file");
    assert_eq!(i["mName"], "x.bin");
    assert_eq!(i["mPath"], "/data/dir/sub/x.bin");
    assert_eq!(i["mUfsPath"], uri);
    assert_eq!(i["mLength"], 3 * PAGE);
    assert_eq!(i["mInAlluxioPercentage"], 0);
    // Cache one page of three: 33%.
    let id = loam_core::file_id(&uri);
    assert_eq!(t.get(0, &format!("/v1/file/{id}/page/0?ufsFullPath={uri}")).await.status(), 200);
    // The run read caches up to 4 pages at once (on the side: waited for), so all three are in now.
    t.settled(0).await;
    let v = json(t.get(0, "/v1/info?path=/data/dir/sub/x.bin").await).await;
    assert_eq!(v[0]["mInAlluxioPercentage"], 100);

    let dir = uri.rsplit_once("/sub/").unwrap().0.to_string();
    let v = json(t.get(0, &format!("/v1/files?path={dir}")).await).await;
    let mut names: Vec<(String, String)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["mName"].as_str().unwrap().into(), e["mType"].as_str().unwrap().into()))
        .collect();
    names.sort();
    assert_eq!(names, vec![("sub".into(), "directory".into()), ("y.txt".into(), "file".into())]);
    // Cluster paths work too.
    let v = json(t.get(0, "/v1/files?path=/data/dir").await).await;
    assert_eq!(v.as_array().unwrap().len(), 2);

    // Does not exist: 500 (Alluxio clients read it as not-found).
    let r = t.get(0, "/v1/info?path=/data/nope").await;
    assert_eq!(r.status(), 500);
    assert!(json(r).await["status"].as_str().unwrap().contains("does not exist"));
}

#[tokio::test]
async fn pages_range_chunk_head_tail() {
    let t = one_worker(HOUR).await;
    let data = pattern((2 * PAGE + 10) as usize, 6);
    let uri = t.write("p.bin", &data);
    let id = loam_core::file_id(&uri);
    let body = |r: reqwest::Response| async move {
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap().to_vec()
    };
    let p = PAGE as usize;
    assert_eq!(body(t.get(0, &format!("/v1/file/{id}/page/1?ufsFullPath={uri}")).await).await, &data[p..2 * p]);
    assert_eq!(body(t.get(0, &format!("/v1/file/{id}/page/2?ufsFullPath={uri}")).await).await, &data[2 * p..]);
    assert_eq!(
        body(t.get(0, &format!("/v1/file/{id}/page/1?ufsFullPath={uri}&offset=5&length=7")).await).await,
        &data[p + 5..p + 12]
    );
    // Past EOF: 200 with an empty or short body.
    assert!(body(t.get(0, &format!("/v1/file/{id}/page/9?ufsFullPath={uri}")).await).await.is_empty());
    assert_eq!(
        body(t.get(0, &format!("/v1/file/{id}/page/2?ufsFullPath={uri}&offset=5&length=100")).await).await,
        &data[2 * p + 5..]
    );
    assert_eq!(
        body(t.get(0, &format!("/v1/range/{id}?ufsFullPath={uri}&offset={}&length=20", p - 10)).await).await,
        &data[p - 10..p + 10]
    );
    assert!(
        body(t.get(0, &format!("/v1/range/{id}?ufsFullPath={uri}&offset=999999999&length=5")).await).await.is_empty()
    );
    let r = t.get(0, &format!("/v1/chunk/{id}?ufsFullPath={uri}&chunkSize=4096")).await;
    assert!(r.headers().get("content-length").is_none(), "chunked transfer");
    assert_eq!(body(r).await, data);
    assert_eq!(body(t.get(0, &format!("/v1/head/{id}?ufsFullPath={uri}&numOfBytes=10")).await).await, &data[..10]);
    assert_eq!(
        body(t.get(0, &format!("/v1/tail/{id}?ufsFullPath={uri}&numOfBytes=10")).await).await,
        &data[data.len() - 10..]
    );
    assert_eq!(body(t.get(0, &format!("/v1/tail/{id}?ufsFullPath={uri}&numOfBytes=999999999")).await).await, data);
}

#[tokio::test]
async fn post_page_stores_it() {
    let t = one_worker(HOUR).await;
    let data = pattern((PAGE + 10) as usize, 7);
    let uri = t.write("post.bin", &data);
    let id = loam_core::file_id(&uri);
    let url = format!("{}/v1/file/{id}/page/1?ufsFullPath={uri}", t.worker(0).http_base());
    let r = t.http.post(&url).body(data[PAGE as usize..].to_vec()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(json(r).await, serde_json::json!({"success": true}));
    let calls = t.faulty().read_calls();
    assert_eq!(t.range(0, &uri, PAGE, 10).await, &data[PAGE as usize..]);
    assert_eq!(t.faulty().read_calls(), calls, "the posted page is served without a UFS read");
    // (Bytes the UFS does not hold: see `cache_integrity`.)
    // Wrong length: 400, nothing stored.
    let r = t.http.post(url.replace("/page/1", "/page/0")).body(vec![1u8; 3]).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(json(r).await["status"].as_str().unwrap().contains("must be"));
}

#[tokio::test]
async fn bad_input_is_a_clear_4xx() {
    let t = one_worker(HOUR).await;
    let uri = t.write("b.bin", b"bytes");
    let id = loam_core::file_id(&uri);
    let other = loam_core::file_id("file:///elsewhere");
    let cases: Vec<(String, u16, &str)> = vec![
        (format!("/v1/file/nothex/page/0?ufsFullPath={uri}"), 400, "not a file id"),
        (format!("/v1/file/{id}/page/x?ufsFullPath={uri}"), 400, "page index"),
        (format!("/v1/file/{id}/page/-1?ufsFullPath={uri}"), 400, "page index"),
        (format!("/v1/file/{other}/page/0?ufsFullPath={uri}"), 400, "SHA-256"),
        (format!("/v1/file/{other}/page/0"), 404, "unknown file id"),
        (format!("/v1/range/{id}?ufsFullPath={uri}&offset=abc"), 400, "offset"),
        (format!("/v1/range/{id}?ufsFullPath={uri}&length=-5"), 400, "length"),
        (format!("/v1/head/{id}?ufsFullPath={uri}"), 400, "numOfBytes"),
        (format!("/v1/chunk/{id}?ufsFullPath={uri}&chunkSize=0"), 400, "chunkSize"),
        ("/v1/info".to_string(), 400, "path"),
        ("/v1/files?path=".to_string(), 400, "path"),
        ("/v1/node".to_string(), 400, "path"),
        ("/v1/info?path=/data/../etc/passwd".to_string(), 400, ".."),
        ("/v1/info?path=/data/a%00b".to_string(), 400, "NUL"),
        ("/v1/info?path=relative/path".to_string(), 400, "UFS URI"),
        ("/v1/info?path=/unmounted/x".to_string(), 404, "No mount point"),
        ("/v1/info?path=gopher://x/y".to_string(), 400, "scheme"),
        (
            format!("/v1/range/{}?ufsFullPath=file:///etc/passwd", loam_core::file_id("file:///etc/passwd")),
            404,
            "No mount point",
        ),
        ("/v1/nope".to_string(), 404, "unknown endpoint"),
    ];
    for (path, status, needle) in cases {
        let r = t.get(0, &path).await;
        assert_eq!(r.status().as_u16(), status, "{path}");
        let msg = json(r).await["status"].as_str().unwrap_or_default().to_string();
        assert!(msg.contains(needle), "{path}: {msg:?} should mention {needle:?}");
    }
    // A directory is not readable as a file.
    let dir_uri = uri.rsplit_once('/').unwrap().0.to_string();
    let r = t.get(0, &format!("/v1/range/{}?ufsFullPath={dir_uri}", loam_core::file_id(&dir_uri))).await;
    assert_eq!(r.status(), 400);
    // Nothing was cached by any of it.
    assert_eq!(t.worker(0).state.rt.pages().usage().files, 0);
}

/// A path component longer than the file system allows is a 400 at once, not a 503 after retries.
#[tokio::test]
async fn a_name_over_the_limit_is_a_400() {
    let t = one_worker(HOUR).await;
    let uri = t.write("short.bin", b"x").replace("short.bin", &"n".repeat(300));
    let r = t.get(0, &format!("/v1/info?path={uri}")).await;
    assert_eq!(r.status(), 400, "{:?}", r.text().await);
    let r = t.get(0, &format!("/v1/range/x?ufsFullPath={uri}&offset=0&length=1")).await;
    assert_eq!(r.status(), 400);
}
