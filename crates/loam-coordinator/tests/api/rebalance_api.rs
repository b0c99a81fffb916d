//! `/api/v1/rebalance`: every status code of every method, the error bodies, and the progress object of a
//! finished job (exactly the spec's fields).

use crate::{PAGE, cluster};
use loam_core::WorkerId;
use loam_testsupport::cluster::Cluster;
use loam_testsupport::coordinator::status_text;
use loam_testsupport::data::pattern;
use serde_json::Value;
use std::collections::HashMap;

/// Ids of the live workers, in order.
fn ids(c: &Cluster) -> Vec<String> {
    c.live().iter().map(|w| w.id.to_string()).collect()
}

/// Writes one-page files, caching every one on worker `on`, until each live worker owns at least `n` of
/// them under the current ring; their URIs.
async fn cached_on(c: &Cluster, on: usize, n: usize) -> Vec<String> {
    let endpoints = c.worker_endpoints();
    let ring = loam_coordinator::jobs::workers::ring(&endpoints);
    let mut owned: HashMap<WorkerId, usize> = HashMap::new();
    let mut uris = Vec::new();
    while endpoints.iter().any(|w| owned.get(&w.id).copied().unwrap_or(0) < n) {
        let i = uris.len();
        let uri = c.write(&format!("f{i}"), &pattern(PAGE as usize, i as u8));
        c.range(on, &uri, 0, PAGE).await;
        *owned.entry(ring.primary(&uri).unwrap().1.id).or_default() += 1;
        uris.push(uri);
    }
    uris
}

#[tokio::test]
async fn bad_submissions_are_400_with_a_precise_message() {
    let c = cluster(1).await;
    let unknown = WorkerId::random().to_string();
    for (body, why) in [
        ("", "empty request body"),
        ("{", "malformed JSON"),
        ("{}", "missing field `target`"),
        (r#"{"target": 5}"#, "for `target`"),
        (r#"{"target": ""}"#, "`target` is empty"),
        (r#"{"target": "nobody"}"#, "unknown worker id: nobody"),
        (&format!(r#"{{"target": "{unknown}"}}"#), "unknown worker id"),
        (r#"{"target": "ALL", "options": {"loadBandwidth": "fast"}}"#, "for `options.loadBandwidth`"),
    ] {
        let (s, v) = c.call("POST", "/api/v1/rebalance", Some(body)).await;
        assert_eq!(s, 400, "{body}: {v}");
        assert!(status_text(&v).contains(why), "{body}: {v}");
    }
    // The spec's own example body has a trailing comma: invalid JSON, and the message says where.
    let body = "{\"target\": \"ALL\",\n \"options\": {\"skipPrune\": true},\n}";
    let (s, v) = c.call("POST", "/api/v1/rebalance", Some(body)).await;
    assert_eq!(s, 400);
    assert!(status_text(&v).contains("trailing comma at line 3 column 1"), "{v}");
    let (_, list) = c.call("GET", "/api/v1/rebalance", None).await;
    assert_eq!(list, serde_json::json!({"results": []}), "nothing was created");
}

#[tokio::test]
async fn submit_look_up_conflict_stop_resume_and_gone() {
    let c = cluster(2).await;
    let w = ids(&c);
    // Everything is cached on worker 1, so worker 0 has files to copy; one byte per second keeps it busy.
    cached_on(&c, 1, 2).await;
    let slow = format!(r#"{{"target": "{}", "options": {{"loadBandwidth": 1, "loadBatchSize": 1}}}}"#, w[0]);
    let (s, v) = c.call("POST", "/api/v1/rebalance", Some(&slow)).await;
    assert_eq!(s, 200, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(v, serde_json::json!({ "id": id }));
    let (s, v) = c.call("POST", "/api/v1/rebalance", Some(&slow)).await;
    assert_eq!((s, v), (409, serde_json::json!({ "id": id })), "one unfinished rebalance per target");

    let (s, by_target) = c.call("GET", &format!("/api/v1/rebalance?target={}", w[0]), None).await;
    assert_eq!((s, by_target["id"].as_str()), (200, Some(id.as_str())), "{by_target}");
    let running = c.wait_for("rebalance", &id, |v| v["totalWorkers"] == 1).await;
    assert_eq!(running["state"], "RUNNING", "{running}");
    assert_eq!(running["runningWorkers"], 1, "{running}");

    let (s, v) = c.call("DELETE", "/api/v1/rebalance", Some(&format!(r#"{{"target": "{}"}}"#, w[0]))).await;
    assert_eq!((s, v), (200, serde_json::json!({"status": "ok"})));
    let v = c.wait_end("rebalance", &id).await;
    assert_eq!((v["state"].as_str(), v["runningWorkers"].as_u64()), (Some("STOPPED"), Some(0)), "{v}");
    // A stopped job is not running: stopping it again answers 410, as Alluxio does, by id and by target.
    let gone = serde_json::json!({"status": "The job doesn't exist or has already finished"});
    let (s, v) = c.call("DELETE", "/api/v1/rebalance", Some(&format!(r#"{{"id": "{id}"}}"#))).await;
    assert_eq!((s, v), (410, gone.clone()), "stopping a stopped job by id");
    let (s, v) = c.call("DELETE", "/api/v1/rebalance", Some(&format!(r#"{{"target": "{}"}}"#, w[0]))).await;
    assert_eq!((s, v), (410, gone), "stopping a stopped job by target");
    let (_, v) = c.call("GET", &format!("/api/v1/rebalance?id={id}"), None).await;
    assert_eq!(v["state"], "STOPPED", "the refused stops changed nothing: {v}");
    // A resubmission resumes the stopped job.
    let (s, v) = c.call("POST", "/api/v1/rebalance", Some(&slow)).await;
    assert_eq!((s, v["id"].as_str()), (409, Some(id.as_str())));
    let (_, v) = c.call("GET", &format!("/api/v1/rebalance?id={id}"), None).await;
    assert_eq!(v["state"], "RUNNING", "{v}");
    let (s, _) = c.call("DELETE", "/api/v1/rebalance", Some(&format!(r#"{{"id": "{id}"}}"#))).await;
    assert_eq!(s, 200);

    // Worker 1 holds everything and skips pruning: nothing to load, the job finishes at once.
    let quick = format!(r#"{{"target": "{}", "options": {{"skipPrune": true}}}}"#, w[1]);
    let (s, v) = c.call("POST", "/api/v1/rebalance", Some(&quick)).await;
    assert_eq!(s, 200);
    let done_id = v["id"].as_str().unwrap().to_string();
    let done = c.wait_end("rebalance", &done_id).await;
    assert_eq!(done["state"], "SUCCEEDED", "{done}");
    let mut keys: Vec<&str> = done.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut spec = vec![
        "id",
        "startTime",
        "state",
        "timeElapsedMilliseconds",
        "totalWorkers",
        "runningWorkers",
        "succeededWorkers",
        "failedWorkers",
        "filesLoaded",
        "bytesLoaded",
        "filesPreserved",
        "bytesPreserved",
        "filesPruned",
        "bytesPruned",
        "filesFailed",
    ];
    spec.sort_unstable();
    assert_eq!(keys, spec, "{done}");
    assert_eq!((done["totalWorkers"].as_u64(), done["succeededWorkers"].as_u64()), (Some(1), Some(1)));
    assert!(done["filesPreserved"].as_u64().unwrap() > 0 && done["filesPruned"] == 0, "{done}");
    assert_eq!(done["bytesPreserved"], done["filesPreserved"].as_u64().unwrap() * PAGE);
    for body in [format!(r#"{{"id": "{done_id}"}}"#), format!(r#"{{"target": "{}"}}"#, w[1])] {
        let (s, v) = c.call("DELETE", "/api/v1/rebalance", Some(&body)).await;
        assert_eq!((s, status_text(&v)), (410, "The job doesn't exist or has already finished"), "{body}");
    }
    let (s, v) = c.call("POST", "/api/v1/rebalance", Some(&quick)).await;
    assert_eq!(s, 200, "a finished twin does not conflict");
    assert_ne!(v["id"].as_str(), Some(done_id.as_str()));

    // Lists are newest first; GET ?target= answers the newest of that target.
    let (s, list) = c.call("GET", "/api/v1/rebalance", None).await;
    assert_eq!(s, 200);
    let listed: Vec<&str> = list["results"].as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap()).collect();
    assert_eq!(listed.len(), 3, "{list}");
    assert_eq!(listed[0], v["id"].as_str().unwrap());
    let (_, newest) = c.call("GET", &format!("/api/v1/rebalance?target={}", w[1]), None).await;
    assert_eq!(newest["id"], v["id"]);
    let (_, page) = c.call("GET", "/api/v1/rebalance?offset=1&limit=1", None).await;
    assert_eq!(page["results"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn lookups_and_stops_refuse_what_they_cannot_do() {
    let c = cluster(1).await;
    let w = ids(&c);
    let cases: [(&str, &str, Option<&str>, u16, &str); 10] = [
        ("GET", "/api/v1/rebalance?id=nope", None, 404, "No job found"),
        ("GET", "/api/v1/rebalance?target=ALL", None, 404, "No job found"),
        ("GET", "/api/v1/rebalance?id=a&target=ALL", None, 400, "at most one"),
        ("GET", "/api/v1/rebalance?id=", None, 400, "is empty"),
        ("DELETE", "/api/v1/rebalance", Some(r#"{"id": "nope"}"#), 410, "already finished"),
        ("DELETE", "/api/v1/rebalance", Some(r#"{"target": "ALL"}"#), 410, "already finished"),
        ("DELETE", "/api/v1/rebalance", Some(r#"{"id": "a", "target": "ALL"}"#), 400, "not both"),
        ("DELETE", "/api/v1/rebalance", Some("{}"), 400, "Required parameters not provided"),
        ("DELETE", "/api/v1/rebalance", Some(""), 400, "Required parameters not provided"),
        ("PUT", "/api/v1/rebalance", Some("{}"), 405, "not allowed"),
    ];
    for (m, path, body, status, why) in cases {
        let (s, v) = c.call(m, path, body).await;
        assert_eq!(s, status, "{m} {path} {body:?}: {v}");
        assert!(status_text(&v).contains(why), "{m} {path} {body:?}: {v}");
    }
    // A target of `all` is ALL; a job without work ends at once and shows its one worker.
    let (s, v) = c.call("POST", "/api/v1/rebalance", Some(r#"{"target": "all"}"#)).await;
    assert_eq!(s, 200);
    let done = c.wait_end("rebalance", v["id"].as_str().unwrap()).await;
    assert_eq!(done["state"], "SUCCEEDED", "{done}");
    assert_eq!((done["totalWorkers"].as_u64(), done["succeededWorkers"].as_u64()), (Some(1), Some(1)));
    let (s, v): (u16, Value) = c.call("GET", "/api/v1/rebalance?target=ALL", None).await;
    assert_eq!((s, &v["id"]), (200, &done["id"]));
    let (s, _) = c.call("GET", &format!("/api/v1/rebalance?target={}", w[0]), None).await;
    assert_eq!(s, 404, "no job for that worker itself");
}
