//! `/api/v1/nodes` against a running coordinator, with workers registered through the real membership
//! code: ONLINE while registered, OFFLINE once the keepalive stops, gone after DELETE.

use loam_core::WorkerId;
use loam_core::membership::WorkerRecord;
use loam_store::membership::{self, MembershipHandle};
use loam_testsupport::coordinator::{TestCoordinator, start, status_text};
use serde_json::{Value, json};
use std::time::Duration;

async fn register(c: &TestCoordinator, host: &str, port: u16) -> MembershipHandle {
    let record = WorkerRecord::new(WorkerId::random(), host, port, 0);
    membership::register(c.store.clone(), &c.cluster, record, Duration::from_secs(30)).await.expect("register")
}

async fn nodes(c: &TestCoordinator, query: &str) -> (u16, Value) {
    c.call("GET", &format!("/api/v1/nodes{query}"), None).await
}

#[tokio::test]
async fn lists_workers_online_then_offline_then_removed() {
    let c = start().await;
    assert_eq!(nodes(&c, "").await, (200, json!({"result": []})));

    let w1 = register(&c, "127.0.0.1", 28080).await;
    let w2 = register(&c, "10.0.0.7", 28081).await;
    let (id1, id2) = (w1.worker_id().to_string(), w2.worker_id().to_string());
    let node1 = json!({"identity": id1, "address": "127.0.0.1:28080", "status": "ONLINE"});
    let node2 = json!({"identity": id2, "address": "10.0.0.7:28081", "status": "ONLINE"});
    let mut both = vec![node1.clone(), node2.clone()];
    both.sort_by_key(|n| n["identity"].as_str().unwrap_or_default().to_string());
    assert_eq!(nodes(&c, "").await, (200, json!({"result": both})));
    assert_eq!(nodes(&c, &format!("?id={id1}")).await, (200, node1.clone()));

    // Its keepalive stops and its lease is revoked: still registered, no longer live.
    w1.shutdown().await.expect("shutdown keepalive");
    let offline = json!({"identity": id1, "address": "127.0.0.1:28080", "status": "OFFLINE"});
    assert_eq!(nodes(&c, &format!("?id={id1}")).await, (200, offline));

    let (status, body) = c.call("DELETE", &format!("/api/v1/nodes?id={id1}"), None).await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));
    let (status, body) = nodes(&c, &format!("?id={id1}")).await;
    assert_eq!((status, body), (404, json!({"status": format!("worker not found: {id1}")})));
    assert_eq!(nodes(&c, "").await, (200, json!({"result": [node2]})));
    let (status, body) = c.call("DELETE", &format!("/api/v1/nodes?id={id1}"), None).await;
    assert_eq!((status, body), (404, json!({"status": format!("worker not found: {id1}")})));

    // Deleting a running worker removes it too (it stops announcing itself at its next keepalive).
    let (status, _) = c.call("DELETE", &format!("/api/v1/nodes?id={id2}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(nodes(&c, "").await, (200, json!({"result": []})));
    w2.shutdown().await.expect("shutdown keepalive");
}

#[tokio::test]
async fn list_is_paged() {
    let c = start().await;
    let mut handles = Vec::new();
    for port in [1, 2, 3] {
        handles.push(register(&c, "127.0.0.1", port).await);
    }
    let mut ids: Vec<String> = handles.iter().map(|h| h.worker_id().to_string()).collect();
    ids.sort();
    let (status, body) = nodes(&c, "?offset=1&limit=1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"].as_array().map(Vec::len), Some(1));
    assert_eq!(body["result"][0]["identity"], ids[1]);
    for h in handles {
        h.shutdown().await.expect("shutdown keepalive");
    }
}

#[tokio::test]
async fn bad_ids_are_400_and_unknown_ids_404() {
    let c = start().await;
    let unknown = WorkerId::random().to_string();
    assert_eq!(nodes(&c, &format!("?id={unknown}")).await.0, 404);
    assert_eq!(c.call("DELETE", &format!("/api/v1/nodes?id={unknown}"), None).await.0, 404);

    for (method, query, expected) in [
        ("GET", "?id=", "query parameter `id` is empty"),
        ("GET", "?id=worker-nope", "invalid worker id \"worker-nope\": expected worker-<uuid>"),
        ("GET", "?limit=x", "`limit` must be a non-negative integer"),
        ("DELETE", "", "Required parameters not provided: missing query parameter `id`"),
        ("DELETE", "?id=", "query parameter `id` is empty"),
        ("DELETE", "?id=42", "invalid worker id \"42\""),
    ] {
        let (status, body) = c.call(method, &format!("/api/v1/nodes{query}"), None).await;
        assert_eq!(status, 400, "{method} {query}: {body}");
        assert!(status_text(&body).contains(expected), "{method} {query}: {body}");
    }
}
