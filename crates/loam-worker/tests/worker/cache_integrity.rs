//! The cache holds only what the UFS holds (issue 12), tried as an attacker would: a page POST of bytes the
//! UFS does not have, an internal load that names any HTTP server as its `source`, and loads with forged
//! lengths. Each is refused (or fails) and leaves nothing cached; reads then serve the UFS's bytes.

use crate::{PAGE, one_worker};
use axum::routing::get;
use loam_testsupport::data::pattern;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn a_page_post_of_bytes_the_ufs_does_not_hold_caches_nothing() {
    let t = one_worker(HOUR).await;
    let data = pattern(PAGE as usize + 10, 3);
    let uri = t.write("poison.bin", &data);
    let id = loam_core::file_id(&uri);
    let url = format!("{}/v1/file/{id}/page/0?ufsFullPath={uri}", t.worker(0).http_base());
    let poison = vec![b'X'; PAGE as usize];
    let r = t.http.post(&url).body(poison).send().await.unwrap();
    assert_eq!(r.status(), 409);
    let v: Value = r.json().await.unwrap();
    assert!(v["status"].as_str().unwrap().contains("not what the UFS holds"), "{v}");
    assert!(!t.worker(0).state.rt.pages().has_page(&id, 0), "nothing cached");
    assert_eq!(t.range(0, &uri, 0, PAGE + 10).await, data, "reads serve the UFS's bytes");
    // The true bytes are taken.
    let _ = t.worker(0).state.rt.pages().remove_file(&id).await;
    let r = t.http.post(&url).body(data[..PAGE as usize].to_vec()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(t.worker(0).state.rt.pages().has_page(&id, 0));
}

/// An HTTP server that plays a peer: it answers a file record for anything and pages of `X`s.
async fn fake_peer(length: u64) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let (h1, h2) = (hits.clone(), hits.clone());
    let app = axum::Router::new()
        .route(
            "/v1/internal/file/{id}",
            get(move |axum::extract::Path(_id): axum::extract::Path<String>| {
                let h = h1.clone();
                async move {
                    h.fetch_add(1, Ordering::SeqCst);
                    axum::Json(json!({"version": 1, "uri": "", "length": length, "etag": null,
                        "modifiedMs": null, "validatedMs": 0, "pageSize": PAGE}))
                }
            }),
        )
        .fallback(move || {
            let h = h2.clone();
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                vec![b'X'; PAGE as usize]
            }
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, hits)
}

async fn load(t: &loam_testsupport::cluster::Cluster, files: Value) -> (u16, Value) {
    let url = format!("{}/v1/internal/load", t.worker(0).http_base());
    let r = t.http.post(url).json(&json!({"version": 1, "files": files})).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn a_load_source_must_be_a_ring_member() {
    let t = one_worker(HOUR).await;
    let data = pattern(2 * PAGE as usize, 4);
    let uri = t.write("x.bin", &data);
    let (peer, hits) = fake_peer(data.len() as u64).await;
    let (s, v) = load(&t, json!([{"ufsUri": uri, "source": peer}])).await;
    assert_eq!(s, 400, "{v}");
    assert!(v["status"].as_str().unwrap().contains("not a current member"), "{v}");
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the server was never asked");
    assert!(t.worker(0).state.rt.pages().file(&loam_core::file_id(&uri)).is_none(), "nothing cached");
    // A batch with one bad source is refused whole.
    let other = t.write("y.bin", b"y");
    let (s, _) = load(&t, json!([{"ufsUri": other}, {"ufsUri": uri, "source": format!("{peer}/")}])).await;
    assert_eq!(s, 400);
    assert!(t.worker(0).state.rt.pages().file(&loam_core::file_id(&other)).is_none());
}

#[tokio::test]
async fn forged_lengths_cache_nothing_and_read_no_further_than_the_file() {
    let t = one_worker(HOUR).await;
    let data = pattern(PAGE as usize + 100, 6);
    let uri = t.write("f.bin", &data);
    let id = loam_core::file_id(&uri);
    let pages = t.worker(0).state.rt.pages().clone();
    // Longer than the cache takes at all: refused at once, no read.
    t.faulty().reset_counters();
    let modified_ms =
        loam_core::time::epoch_millis(std::fs::metadata(t.ufs_root().join("f.bin")).unwrap().modified().unwrap());
    let (s, v) = load(&t, json!([{"ufsUri": uri, "length": 1u64 << 50, "modifiedMs": modified_ms}])).await;
    assert_eq!(s, 200);
    assert_eq!(v["results"][0]["ok"], false, "{v}");
    assert!(v["results"][0]["error"].as_str().unwrap().contains("largest file"), "{v}");
    assert_eq!(t.faulty().read_calls(), 0);
    assert!(pages.file(&id).is_none());
    // Huge (4 TiB) but under the cap, with the file's real modification time: the pinned reads find another
    // version (or the real end); nothing stays cached, and the load stops at the first failing run instead
    // of asking for a million runs.
    let modified_ms =
        loam_core::time::epoch_millis(std::fs::metadata(t.ufs_root().join("f.bin")).unwrap().modified().unwrap());
    for forged in [4u64 << 40, data.len() as u64 + 1, data.len() as u64 - 1, 10] {
        t.faulty().reset_counters();
        let (s, v) = load(&t, json!([{"ufsUri": uri, "length": forged, "modifiedMs": modified_ms}])).await;
        assert_eq!(s, 200);
        assert_eq!(v["results"][0]["ok"], false, "length {forged}: {v}");
        assert!(pages.file(&id).is_none(), "length {forged}: nothing cached");
        assert!(!pages.has_page(&id, 0), "length {forged}");
        assert!(t.faulty().read_calls() < 20, "length {forged}: {} reads", t.faulty().read_calls());
    }
    assert_eq!(t.range(0, &uri, 0, data.len() as u64).await, data, "reads serve the real file");
    // The true length loads.
    let _ = pages.remove_file(&id).await;
    let (_, v) = load(&t, json!([{"ufsUri": uri, "length": data.len(), "modifiedMs": modified_ms}])).await;
    assert_eq!(v["results"][0]["ok"], true, "{v}");
    // A length with no validator (no ETag, no time) names no version: the UFS is asked, and its length kept.
    let _ = pages.remove_file(&id).await;
    let (_, v) = load(&t, json!([{"ufsUri": uri, "length": 10}])).await;
    assert_eq!(v["results"][0]["ok"], true, "{v}");
    assert_eq!(pages.file(&id).unwrap().length, data.len() as u64);
    // A metadata-only load stats the UFS: a forged length is not recorded.
    let other = t.write("g.bin", b"12345");
    let (_, v) = load(&t, json!([{"ufsUri": other, "length": 999, "metadataOnly": true}])).await;
    assert_eq!(v["results"][0]["ok"], true, "{v}");
    assert_eq!(pages.file(&loam_core::file_id(&other)).unwrap().length, 5);
}

/// Bad input: a second worker started on the cache directory of a live one fails to start, with one error
/// naming the directory; once the first is gone, it starts.
#[tokio::test]
async fn a_second_worker_on_a_live_workers_cache_directory_is_refused() {
    let mut t = one_worker(Duration::from_secs(3600)).await;
    let (cfg, dir) = (t.config(0), t.cache_dir(0));
    let err = loam_worker::start(cfg.clone(), t.store.clone(), t.registry.clone(), Default::default())
        .await
        .err()
        .expect("the directory is in use");
    let text = format!("{err:#}");
    assert!(text.contains("in use by another live worker") && text.contains(&dir.display().to_string()), "{text}");
    t.kill_worker(0).await;
    let second = loam_worker::start(cfg, t.store.clone(), t.registry.clone(), Default::default()).await.unwrap();
    second.shutdown().await;
}
