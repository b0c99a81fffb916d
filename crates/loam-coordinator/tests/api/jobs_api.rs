//! Status codes of `/api/v1/load` and `/api/v1/free`, free end to end, and the worker's `/v1/load`.

use crate::{PAGE, cluster, jobs};
use loam_testsupport::cluster::{Cluster, Options};
use loam_testsupport::data::pattern;

#[tokio::test]
async fn load_and_free_status_codes() {
    let c = cluster(1).await;
    c.write("a/f", &pattern(100, 1));
    for ep in ["load", "free"] {
        let url = format!("/api/v1/{ep}");
        for bad in
            ["", "{", r#"{}"#, r#"{"paths": ["/data/a"], "index": "/data/i"}"#, r#"{"paths": 5}"#, r#"{"paths": []}"#]
        {
            let (s, v) = c.call("POST", &url, Some(bad)).await;
            assert_eq!(s, 400, "{ep} {bad}: {v}");
            assert!(v["status"].as_str().unwrap().starts_with("Required parameters not provided"), "{v}");
        }
        let (s, _) = c.call("POST", &url, Some(r#"{"paths": ["/nowhere/x"]}"#)).await;
        assert_eq!(s, 400);
        let (s, v) = c.call("GET", &format!("{url}?id=nope"), None).await;
        assert_eq!(s, 404);
        assert!(v["status"].as_str().unwrap().starts_with("No job found"));
        let (s, v) = c.call("DELETE", &url, Some(r#"{"id": "nope"}"#)).await;
        assert_eq!((s, v["status"].as_str()), (410, Some("The job doesn't exist or has already finished")));
        let (s, _) = c.call("DELETE", &url, None).await;
        assert_eq!(s, 400);
        let (s, v) = c.call("POST", &url, Some(r#"{"paths": ["/data/a"], "options": {"sync": true}}"#)).await;
        assert_eq!((s, v["state"].as_str()), (200, Some("SUCCEEDED")), "{v}");
        let id = v["id"].as_str().unwrap();
        let (s, _) = c.call("DELETE", &url, Some(&format!(r#"{{"id": "{id}"}}"#))).await;
        assert_eq!(s, 410, "a finished job cannot be stopped");
        let (s, v) = c.call("GET", &url, None).await;
        assert_eq!(s, 200);
        assert_eq!(v["results"].as_array().unwrap().len(), 1);
    }
    let (s, v) =
        c.call("POST", "/api/v1/load", Some(r#"{"paths": ["/data"], "options": {"fileFilterRegex": "("}}"#)).await;
    assert_eq!(s, 400);
    assert_eq!(v["status"], r#"invalid fileFilterRegex "(": unclosed group"#, "one line naming the problem");
}

#[tokio::test]
async fn free_removes_every_copy() {
    let c = cluster(3).await;
    let uris: Vec<String> = (0..6).map(|i| c.write(&format!("t/{i}/f"), &pattern(3 * PAGE as usize, i))).collect();
    c.write("t/top", &pattern(10, 9));
    let (s, v) = c
        .call("POST", "/api/v1/load", Some(r#"{"paths": ["/data/t"], "options": {"sync": true, "replicas": 3}}"#))
        .await;
    assert_eq!((s, v["state"].as_str()), (200, Some("SUCCEEDED")), "{v}");
    assert_eq!(c.holders(&uris[0]).len(), 3);
    // Non-recursive: only the file directly in the directory.
    let (s, v) = c
        .call("POST", "/api/v1/free", Some(r#"{"paths": ["/data/t"], "options": {"sync": true, "recursive": false}}"#))
        .await;
    assert_eq!((s, v["totalFiles"].as_u64()), (200, Some(1)), "{v}");
    assert_eq!(c.holders(&uris[0]).len(), 3);
    let (s, v) = c.call("POST", "/api/v1/free", Some(r#"{"paths": ["/data/t"], "options": {"sync": true}}"#)).await;
    assert_eq!(s, 200);
    assert_eq!(v["state"], "SUCCEEDED", "{v}");
    assert_eq!(v["totalFiles"], 7);
    assert_eq!(v["freedFiles"], 7);
    assert_eq!(v["failedFiles"], 0);
    assert_eq!(v["freedBytes"], v["totalBytes"]);
    for u in &uris {
        assert!(c.holders(u).is_empty(), "{u}");
        for w in c.live() {
            assert!(w.state.rt.pages().file(&loam_core::file_id(u)).is_none());
        }
    }
}

#[tokio::test]
async fn an_index_file_lists_the_paths() {
    let c = cluster(2).await;
    let a = c.write("x/a", &pattern(500, 1));
    let b = c.write("x/b", &pattern(500, 2));
    c.write("x/c", &pattern(500, 3));
    c.write("index.txt", format!("# files\n{a}\n\n/data/x/b\n").as_bytes());
    let (s, v) =
        c.call("POST", "/api/v1/load", Some(r#"{"index": "/data/index.txt", "options": {"sync": true}}"#)).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("SUCCEEDED")), "{v}");
    assert_eq!(v["scannedFiles"], 2);
    assert_eq!(v["index"], "/data/index.txt");
    assert_eq!(c.holders(&a).len() + c.holders(&b).len(), 2);
}

/// An index file whose line never ends (no newline in 64 KiB): the listing stops at the line cap with a
/// message naming the line, instead of holding the whole file.
#[tokio::test]
async fn an_index_line_over_the_cap_fails_the_listing_with_a_clear_message() {
    let c = cluster(1).await;
    let a = c.write("x/a", &pattern(500, 1));
    let long = "x".repeat(64 << 10);
    c.write("index.txt", format!("{a}\n{long}\n/data/x/a\n").as_bytes());
    let (s, v) =
        c.call("POST", "/api/v1/load", Some(r#"{"index": "/data/index.txt", "options": {"sync": true}}"#)).await;
    assert_eq!(s, 200, "{v}");
    assert_ne!(v["state"], "SUCCEEDED", "{v}");
    assert_eq!(v["scannedFiles"], 1, "the line before is loaded, nothing after the long one: {v}");
    let text = v.to_string();
    assert!(text.contains("line 2 is longer than 16384 bytes"), "{v}");
}

#[tokio::test]
async fn the_worker_load_endpoint_forwards_to_the_coordinator() {
    let c = cluster(1).await;
    c.write("w/f", &pattern(100, 1));
    let w = c.live()[0].http_base();
    let get = |q: String| {
        let (http, w) = (c.http.clone(), w.clone());
        async move {
            let r = http.get(format!("{w}/v1/load?{q}")).send().await.unwrap();
            let s = r.status().as_u16();
            (s, r.json::<serde_json::Value>().await.unwrap_or_default())
        }
    };
    // This harness's workers have no coordinator URL.
    let (s, v) = get("path=/data/w&opType=submit".into()).await;
    assert_eq!(s, 503, "{v}");
    assert!(v["status"].as_str().unwrap().contains("coordinator"));
    let (s, _) = get("opType=submit".into()).await;
    assert_eq!(s, 400);
    let (s, _) = get("path=/data/w&opType=nope".into()).await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn the_worker_load_endpoint_drives_a_real_coordinator() {
    let c = Cluster::start(Options { forward_loads: true, ..jobs(2) }).await;
    for i in 0..40 {
        c.write(&format!("w/f{i:02}"), &pattern(PAGE as usize + i, i as u8));
    }
    let w = c.live()[1].http_base();
    let call = |q: &str| {
        let (http, url) = (c.http.clone(), format!("{w}/v1/load?{q}"));
        async move {
            let r = http.get(url).send().await.unwrap();
            let s = r.status().as_u16();
            (s, r.json::<serde_json::Value>().await.unwrap_or_default())
        }
    };
    let (s, v) = call("path=/data/w&opType=progress").await;
    assert_eq!(s, 404, "no job yet: {v}");
    let (s, v) = call("path=/data/w&opType=stop").await;
    assert_eq!((s, v["success"].as_bool()), (200, Some(false)), "nothing to stop: {v}");

    // Slow reads keep the job running (no file can finish before a second) while it is looked at.
    c.faulty().set_read_delay(Some(std::time::Duration::from_secs(1)));
    let (s, v) = call("path=/data/w&opType=submit").await;
    assert_eq!((s, v["success"].as_bool()), (200, Some(true)), "{v}");
    let id = v["jobId"].as_str().unwrap().to_string();
    let (s, job) = c.call("GET", &format!("/api/v1/load?id={id}"), None).await;
    assert_eq!((s, job["paths"][0].as_str()), (200, Some("/data/w")), "the coordinator has the job: {job}");
    let (s, v) = call("path=/data/w&opType=submit").await;
    assert_eq!((s, v["success"].as_bool(), v["jobId"].as_str()), (200, Some(false), Some(id.as_str())), "twin: {v}");
    let (s, v) = call("path=/data/w&opType=progress").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["jobState"], "RUNNING", "{v}");
    assert_eq!(v["path"], "/data/w");
    let (s, v) = call("path=/data/w&opType=stop").await;
    assert_eq!((s, v["success"].as_bool(), v["jobId"].as_str()), (200, Some(true), Some(id.as_str())), "{v}");
    let v = c.wait_end("load", &id).await;
    assert_eq!(v["state"], "STOPPED", "{v}");
    let (_, v) = call("path=/data/w&opType=progress").await;
    assert_eq!(v["jobState"], "STOPPED", "{v}");

    // Submitting again resumes the stopped job, which then finishes.
    c.faulty().set_read_delay(None);
    let (s, v) = call("path=/data/w&opType=submit").await;
    assert_eq!((s, v["jobId"].as_str()), (200, Some(id.as_str())), "{v}");
    let v = c.wait_end("load", &id).await;
    assert_eq!(v["state"], "SUCCEEDED", "{v}");
    let (_, v) = call("path=/data/w&opType=progress").await;
    assert_eq!(v["jobState"], "SUCCEEDED", "{v}");
    assert!(v["message"].as_str().unwrap().contains("40 files scanned"), "{v}");
    // A bad path is the coordinator's 400, passed on.
    let (s, _) = call("path=/nowhere&opType=submit").await;
    assert_eq!(s, 400);
}
