//! Which UFSs a mount may name (issue 12): `file://` roots only under `--allow-local-ufs` directories,
//! compared canonicalized (a symlink out of an allowed directory is refused); S3 endpoints only from
//! `--allow-ufs-endpoint` patterns (a refused endpoint is never contacted); and an upstream's answer body
//! never reaches the client in the mount validation error.

use axum::http::StatusCode;
use loam_coordinator::CoordinatorConfig;
use loam_testsupport::S3TestServer;
use loam_testsupport::coordinator::{TestCoordinator, open_store, start, start_with, status_text};
use loam_ufs::UfsPolicy;
use loam_ufs::policy::{EndpointPattern, LocalRoots};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

async fn mount(c: &TestCoordinator, path: &str, ufs: &str, options: &BTreeMap<String, String>) -> (u16, Value) {
    c.call("POST", "/api/v1/mount", Some(&json!({"path": path, "ufs": ufs, "options": options}).to_string())).await
}

async fn mounted(c: &TestCoordinator) -> usize {
    let (_, v) = c.call("GET", "/api/v1/mount", None).await;
    v.as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn file_mounts_only_under_allowed_directories() {
    // The harness allows the coordinator's own temp dir; everything else is outside.
    let c = start().await;
    let none = BTreeMap::new();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), b"TOPSECRET").unwrap();
    let inside = c.mkdir("inside");
    std::os::unix::fs::symlink(outside.path(), inside.join("link-out")).unwrap();
    std::os::unix::fs::symlink("/etc", c.dir.path().join("etc-link")).unwrap();
    for (ufs, why) in [
        ("file:///etc".to_string(), "/etc"),
        (format!("file://{}", outside.path().display()), "another directory"),
        (format!("file://{}/link-out", inside.display()), "a symlink out of an allowed directory"),
        (format!("file://{}/etc-link", c.dir.path().display()), "a symlink to /etc"),
    ] {
        let (s, v) = mount(&c, "/stolen", &ufs, &none).await;
        assert_eq!(s, 400, "{why}: {v}");
        assert!(status_text(&v).contains("--allow-local-ufs"), "{why}: the message names the setting: {v}");
    }
    assert_eq!(mounted(&c).await, 0, "nothing mounted");
    let (s, v) = mount(&c, "/data", &format!("file://{}", inside.display()), &none).await;
    assert_eq!(s, 200, "{v}");

    // A Coordinator with the default policy refuses every file:// mount.
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let cfg = CoordinatorConfig { ufs_policy: UfsPolicy::default(), ..CoordinatorConfig::default() };
    let bare = start_with(dir, store, cfg).await;
    let (s, v) = mount(&bare, "/data", &format!("file://{}", outside.path().display()), &none).await;
    assert_eq!(s, 400, "{v}");
    assert!(status_text(&v).contains("--allow-local-ufs"), "{v}");
}

/// A plain HTTP server that answers every request with `status` and a secret-looking body, counting requests.
struct Hostile {
    endpoint: String,
    hits: Arc<AtomicUsize>,
}

async fn hostile(status: StatusCode, body: &'static str) -> Hostile {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = axum::Router::new().fallback(move || {
        let counted = counted.clone();
        async move {
            counted.fetch_add(1, Ordering::SeqCst);
            (status, [("content-type", "application/xml"), ("x-upstream-secret", "HEADERSECRET")], body)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Hostile { endpoint, hits }
}

fn s3_options(endpoint: &str) -> BTreeMap<String, String> {
    [("s3.endpoint", endpoint), ("s3.accessKeyId", "AKIDTEST"), ("s3.secretKey", "test-secret")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn an_upstream_answer_body_is_never_echoed() {
    let c = start().await;
    let plain = hostile(StatusCode::FORBIDDEN, "TOPSECRET-BODY the upstream's private answer").await;
    let xml = hostile(
        StatusCode::FORBIDDEN,
        "<Error><Code>AccessDenied</Code><Message>TOPSECRET-BODY</Message><RequestId>TOPSECRET-ID</RequestId></Error>",
    )
    .await;
    let failing = hostile(StatusCode::INTERNAL_SERVER_ERROR, "TOPSECRET-BODY stack trace").await;
    for (server, path) in [(&plain, "/plain"), (&xml, "/xml"), (&failing, "/failing")] {
        let (s, v) = mount(&c, path, "s3://bucket/prefix", &s3_options(&server.endpoint)).await;
        let text = status_text(&v);
        assert_eq!(s, 400, "{v}");
        assert!(server.hits.load(Ordering::SeqCst) > 0, "the server was asked");
        assert!(!text.contains("TOPSECRET") && !text.contains("HEADERSECRET"), "{path}: {text}");
        assert!(text.contains("HTTP 403") || text.contains("HTTP 500"), "{path}: the status is kept: {text}");
    }
    let (_, v) = mount(&c, "/xml", "s3://bucket/prefix", &s3_options(&xml.endpoint)).await;
    assert!(status_text(&v).contains("AccessDenied"), "an S3 error code is kept: {v}");
    assert_eq!(mounted(&c).await, 0);
}

#[tokio::test]
async fn s3_endpoints_only_from_allowed_patterns() {
    let s3 = tokio::task::spawn_blocking(|| {
        let s3 = S3TestServer::start();
        s3.create_bucket("loam-bucket");
        s3
    })
    .await
    .unwrap();
    let other = hostile(StatusCode::OK, "").await;
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let allowed = vec![EndpointPattern::parse(&format!("http://127.0.0.1:{}", s3.port())).unwrap()];
    let cfg = CoordinatorConfig {
        ufs_policy: UfsPolicy::new(LocalRoots::Under(Vec::new()), Some(allowed)),
        ..CoordinatorConfig::default()
    };
    let c = start_with(dir, store, cfg).await;
    for options in [s3_options(&other.endpoint), BTreeMap::new()] {
        let (s, v) = mount(&c, "/far", "s3://loam-bucket", &options).await;
        assert_eq!(s, 400, "{v}");
        assert!(status_text(&v).contains("--allow-ufs-endpoint"), "{v}");
    }
    assert_eq!(other.hits.load(Ordering::SeqCst), 0, "a refused endpoint is never contacted");
    let (s, v) = mount(&c, "/data", "s3://loam-bucket", &s3.mount_options()).await;
    assert_eq!(s, 200, "{v}");
}
