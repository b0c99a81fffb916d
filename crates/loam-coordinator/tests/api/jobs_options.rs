//! Load options end to end through the coordinator: `bandwidth` slows the UFS reads down, and
//! `loadMetadataOnly` caches file records without pages; and retention drops finished jobs.

use crate::{PAGE, cluster, jobs};
use loam_testsupport::cluster::{Cluster, Options};
use loam_testsupport::data::pattern;
use std::time::{Duration, Instant};

#[tokio::test]
async fn bandwidth_bounds_the_load_rate_from_below() {
    let c = cluster(1).await;
    let bandwidth = 2 * PAGE;
    let files: Vec<(String, usize)> =
        (0..6).map(|i| (c.write(&format!("bw/f{i}"), &pattern(PAGE as usize, i)), PAGE as usize)).collect();
    let total: u64 = files.iter().map(|(_, n)| *n as u64).sum();
    let body = format!(r#"{{"paths": ["/data/bw"], "options": {{"sync": true, "bandwidth": {bandwidth}}}}}"#);
    let t0 = Instant::now();
    let (s, v) = c.call("POST", "/api/v1/load", Some(&body)).await;
    let took = t0.elapsed();
    assert_eq!((s, v["state"].as_str()), (200, Some("SUCCEEDED")), "{v}");
    assert_eq!(v["bandwidth"], bandwidth, "{v}");
    assert_eq!(v["loadedBytes"], total);
    // The worker's bucket starts with one second's worth of bytes; the rest has to wait for the rate.
    let floor = Duration::from_secs_f64((total - bandwidth) as f64 / bandwidth as f64);
    assert!(took >= floor, "{total} bytes at {bandwidth} B/s took only {took:?} (at least {floor:?})");
}

#[tokio::test]
async fn metadata_only_caches_the_record_but_no_page() {
    let c = cluster(2).await;
    let len = 3 * PAGE as usize + 5;
    let uri = c.write("meta/f", &pattern(len, 7));
    let body = r#"{"paths": ["/data/meta"], "options": {"sync": true, "loadMetadataOnly": true, "verify": true}}"#;
    let (s, v) = c.call("POST", "/api/v1/load", Some(body)).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("SUCCEEDED")), "{v}");
    assert_eq!(v["loadMetadataOnly"], true, "{v}");
    assert_eq!(c.faulty().reads_of(&uri).bytes, 0, "no data was read from the UFS");
    let id = loam_core::file_id(&uri);
    let holders: Vec<usize> = c
        .workers
        .iter()
        .enumerate()
        .filter(|(_, w)| w.as_ref().is_some_and(|w| w.state.rt.pages().file(&id).is_some()))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(holders.len(), 1, "one worker holds the file's record: {holders:?}");
    let w = c.workers[holders[0]].as_ref().unwrap();
    let pages = w.state.rt.pages();
    assert_eq!(pages.file(&id).unwrap().length, len as u64);
    assert!((0..4).all(|p| !pages.has_page(&id, p)), "no page is cached");
    let info: serde_json::Value =
        c.http.get(format!("{}/v1/info?path=/data/meta/f", w.http_base())).send().await.unwrap().json().await.unwrap();
    assert_eq!(info[0]["mLength"], len as u64, "{info}");
    assert_eq!(info[0]["mInAlluxioPercentage"], 0, "{info}");
}

#[tokio::test]
async fn finished_jobs_older_than_the_retention_disappear() {
    let retention = Duration::from_secs(2);
    let c = Cluster::start(Options { job_retention: retention, ..jobs(1) }).await;
    c.write("r/f", &pattern(100, 1));
    let (s, v) = c.call("POST", "/api/v1/load", Some(r#"{"paths": ["/data/r"], "options": {"sync": true}}"#)).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("SUCCEEDED")), "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let ended = Instant::now();
    let listed = |v: &serde_json::Value| v["results"].as_array().unwrap().iter().any(|j| j["id"] == id.as_str());
    let (_, list) = c.call("GET", "/api/v1/load", None).await;
    if ended.elapsed() < retention {
        assert!(listed(&list), "a fresh job is listed: {list}");
    }
    loop {
        let (s, list) = c.call("GET", "/api/v1/load", None).await;
        assert_eq!(s, 200);
        if !listed(&list) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ended.elapsed() >= retention, "the job went before its retention ran out");
    let (s, _) = c.call("GET", &format!("/api/v1/load?id={id}"), None).await;
    assert_eq!(s, 404);
    let prefix = loam_core::store_keys::jobs_prefix(loam_core::membership::DEFAULT_CLUSTER_NAME, "load");
    assert!(c.store.get(&format!("{prefix}{id}")).await.unwrap().is_none(), "the store record is deleted too");
}
