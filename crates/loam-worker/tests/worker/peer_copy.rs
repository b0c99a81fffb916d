//! Loads with a `source` peer (what a rebalance sends): the pages come from the peer's page API, not the
//! UFS; the peer's file record (`/v1/internal/file/<id>`); and every case where the copy cannot be made —
//! a peer of another page size, a member that is down, a peer that does not hold the file — falls back to
//! the UFS and still caches the right bytes. (A `source` that is no member at all is refused: see
//! `cache_integrity`.) Also the prune bandwidth of a free batch.

use crate::{PAGE, one_worker};
use loam_testsupport::cluster::Cluster;
use loam_testsupport::data::pattern;
use loam_worker::WorkerHandle;
use serde_json::{Value, json};
use std::time::Duration;

/// A second worker on `t`'s store and UFS, configured as the first but with pages of `page_size` bytes.
async fn peer_of(t: &Cluster, page_size: u64) -> WorkerHandle {
    let mut cfg = t.config(1);
    cfg.page_store.page_size = page_size;
    t.start_worker(cfg).await
}

async fn load(t: &Cluster, on: &WorkerHandle, files: Value) -> Value {
    let url = format!("{}/v1/internal/load", on.http_base());
    let r = t.http.post(url).json(&json!({"version": 1, "files": files})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn range(t: &Cluster, on: &WorkerHandle, uri: &str, len: usize) -> Vec<u8> {
    let id = loam_core::file_id(uri);
    let url = format!("{}/v1/range/{id}?ufsFullPath={uri}&offset=0&length={len}", on.http_base());
    t.http.get(url).send().await.unwrap().bytes().await.unwrap().to_vec()
}

#[tokio::test]
async fn pages_are_copied_from_the_peer_without_reading_the_ufs() {
    let t = one_worker(Duration::from_secs(3600)).await;
    let data = pattern(3 * PAGE as usize + 123, 5);
    let x = t.write("x", &data);
    assert_eq!(t.range(0, &x, 0, data.len() as u64).await, data, "cached on the first worker");
    let id = loam_core::file_id(&x);
    let r = t.get(0, &format!("/v1/internal/file/{id}")).await;
    assert_eq!(r.status(), 200);
    let rec: Value = r.json().await.unwrap();
    assert_eq!((rec["uri"].as_str(), rec["length"].as_u64()), (Some(x.as_str()), Some(data.len() as u64)));
    assert_eq!(rec["pageSize"], PAGE);
    let r = t.get(0, &format!("/v1/internal/file/{}", loam_core::file_id("file:///nowhere"))).await;
    assert_eq!(r.status(), 404);

    let b = peer_of(&t, PAGE).await;
    t.faulty().reset_counters();
    let v = load(&t, &b, json!([{"ufsUri": x, "source": t.worker(0).http_base()}])).await;
    let r = &v["results"][0];
    assert_eq!(
        (r["ok"].as_bool(), r["skipped"].as_bool(), r["bytes"].as_u64()),
        (Some(true), Some(false), Some(data.len() as u64)),
        "{v}"
    );
    assert_eq!(t.faulty().read_calls(), 0, "copied, not read from the UFS");
    let metrics = t.http.get(format!("{}/metrics", b.http_base())).send().await.unwrap().text().await.unwrap();
    for sample in [
        "loam_worker_peer_fetched_pages_total 4".to_string(),
        format!("loam_worker_peer_fetched_bytes_total {}", data.len()),
    ] {
        assert!(metrics.lines().any(|l| l == sample), "no `{sample}` in:\n{metrics}");
    }
    assert!(!metrics.contains(r#"op="read""#), "no UFS read on the copier:\n{metrics}");
    assert_eq!(range(&t, &b, &x, data.len()).await, data);
    let copied = b.state.rt.pages().file(&id).unwrap();
    assert!(copied.validated_ms <= rec["validatedMs"].as_i64().unwrap(), "the copy is no fresher than its source");
    // Held completely: skipIfExists skips it, with or without a source.
    let v = load(&t, &b, json!([{"ufsUri": x, "source": t.worker(0).http_base(), "skipIfExists": true}])).await;
    assert_eq!(v["results"][0]["skipped"], true, "{v}");
    assert_eq!(t.faulty().read_calls(), 0);
    b.shutdown().await;
}

#[tokio::test]
async fn a_copy_that_cannot_be_made_reads_the_ufs_instead() {
    let t = one_worker(Duration::from_secs(3600)).await;
    let data = pattern(2 * PAGE as usize + 9, 7);
    let x = t.write("x", &data);
    t.range(0, &x, 0, data.len() as u64).await;
    let y = t.write("y", &pattern(1000, 8));
    // A member of the ring that is down: registered, nothing listening.
    let port = loam_testsupport::free_port();
    let record = loam_core::membership::WorkerRecord::new(loam_core::WorkerId::random(), "127.0.0.1", port, 0);
    let _lease = loam_store::membership::register(
        t.store.clone(),
        loam_core::membership::DEFAULT_CLUSTER_NAME,
        record,
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    let dead = format!("http://127.0.0.1:{port}");
    // Half the page size: the peer's page n is not this worker's page n.
    let small = peer_of(&t, PAGE / 2).await;
    while !small.state.members.ring().members().any(|(_, w)| w.http_base() == dead) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for (uri, source, len) in
        [(&x, t.worker(0).http_base(), data.len()), (&x, dead.clone(), data.len()), (&y, t.worker(0).http_base(), 1000)]
    {
        let _ = small.state.rt.pages().remove_file(&loam_core::file_id(uri)).await;
        t.faulty().reset_counters();
        let v = load(&t, &small, json!([{"ufsUri": uri, "source": source}])).await;
        assert_eq!(v["results"][0]["ok"], true, "{uri} from {source}: {v}");
        assert!(t.faulty().reads_of(uri).calls > 0, "{uri} from {source}: read from the UFS");
        let want = if *uri == x { data.clone() } else { pattern(1000, 8) };
        assert_eq!(range(&t, &small, uri, len).await, want, "{uri} from {source}");
    }
    small.shutdown().await;
}

#[tokio::test]
async fn a_free_batch_takes_a_bandwidth() {
    let t = one_worker(Duration::from_secs(3600)).await;
    let x = t.write("x", &pattern(PAGE as usize, 1));
    t.range(0, &x, 0, PAGE).await;
    let url = format!("{}/v1/internal/free", t.worker(0).http_base());
    let body = json!({"version": 1, "uris": [x], "bandwidth": 10 * PAGE});
    let v: Value = t.http.post(url).json(&body).send().await.unwrap().json().await.unwrap();
    assert_eq!((v["results"][0]["ok"].as_bool(), v["results"][0]["bytes"].as_u64()), (Some(true), Some(PAGE)), "{v}");
    assert!(t.worker(0).state.rt.pages().file(&loam_core::file_id(&x)).is_none());
}
