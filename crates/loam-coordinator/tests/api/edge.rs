//! What every endpoint shares: unknown endpoints, wrong methods, error body shape, graceful shutdown.

use loam_testsupport::coordinator::{client, start, status_text};
use serde_json::json;

#[tokio::test]
async fn unknown_endpoints_are_404_with_a_status_body() {
    let c = start().await;
    for (method, path) in [
        ("GET", "/api/v1/nope"),
        ("POST", "/api/v1/mount/extra"),
        ("GET", "/console/nope.js"),
        ("DELETE", "/api/v2/mount"),
    ] {
        let (status, body) = c.call(method, path, None).await;
        assert_eq!((status, body), (404, json!({"status": format!("unknown endpoint: {method} {path}")})));
    }
}

#[tokio::test]
async fn wrong_methods_are_405_with_a_status_body() {
    let c = start().await;
    for (method, path) in [("PUT", "/api/v1/mount"), ("PATCH", "/api/v1/mount"), ("POST", "/api/v1/nodes")] {
        let (status, body) = c.call(method, path, Some("{}")).await;
        assert_eq!(status, 405, "{method} {path}: {body}");
        assert_eq!(status_text(&body), format!("method {method} is not allowed for {path}"));
    }
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let c = start().await;
    let url = c.url("/api/v1/mount");
    assert_eq!(c.call("GET", "/api/v1/mount", None).await.0, 200);
    let _ = c.shutdown().await;
    // The listener is closed: a fresh connection is refused.
    let err = client().get(&url).send().await.expect_err("server still answers after shutdown");
    assert!(err.is_connect(), "{err}");
}
