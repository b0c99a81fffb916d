//! `/api/v1/ttl` and `/api/v1/priority` against a running coordinator: every status code of the spec's
//! tables, normalised paths, most-specific listing order, persistence in the store, and the enable switch.
//! The rule behaviours run on the embedded store and on etcd (`on_both_stores!`).

use loam_coordinator::CoordinatorConfig;
use loam_testsupport::coordinator::{Backend, TestCoordinator, start_on, start_with, status_text};
use serde_json::json;

loam_testsupport::on_both_stores!(
    ttl_rules_are_set_listed_got_and_removed,
    bad_ttl_requests_are_400_and_change_nothing,
    priority_rules_parse_levels_in_any_case,
);

async fn mounted(backend: Backend) -> TestCoordinator {
    loam_ufs::install_process_defaults();
    let c = start_on(backend).await;
    let ufs = c.ufs_dir("ufs", true);
    let (status, body) = c.call("POST", "/api/v1/mount", Some(&json!({"path": "/data", "ufs": ufs}).to_string())).await;
    assert_eq!(status, 200, "{body}");
    c
}

async fn ttl_rules_are_set_listed_got_and_removed(backend: Backend) {
    let c = mounted(backend).await;
    assert_eq!(c.call("GET", "/api/v1/ttl", None).await, (200, json!({"results": []})));

    let ok = (200, json!({"status": "ok"}));
    assert_eq!(c.call("POST", "/api/v1/ttl", Some(r#"{"path": "/data/b/", "ttlSeconds": 60}"#)).await, ok);
    assert_eq!(c.call("POST", "/api/v1/ttl", Some(r#"{"path": "/data", "ttlSeconds": 600}"#)).await, ok);
    // Setting a rule again replaces it.
    assert_eq!(c.call("POST", "/api/v1/ttl", Some(r#"{"path": "//data/b", "ttlSeconds": 30}"#)).await, ok);

    let (status, body) = c.call("GET", "/api/v1/ttl", None).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"results": [{"path": "/data", "ttlSeconds": 600}, {"path": "/data/b", "ttlSeconds": 30}]}));
    assert_eq!(c.call("GET", "/api/v1/ttl?limit=1&offset=1", None).await.1["results"][0]["path"], "/data/b");
    assert_eq!(
        c.call("GET", "/api/v1/ttl?path=/data/b/", None).await,
        (200, json!({"path": "/data/b", "ttlSeconds": 30}))
    );

    let (status, body) = c.call("GET", "/api/v1/ttl?path=/data/c", None).await;
    assert_eq!((status, status_text(&body)), (404, "No TTL policy found for path: /data/c"));

    assert_eq!(c.call("DELETE", "/api/v1/ttl", Some(r#"{"path": "/data/b"}"#)).await, ok);
    let (status, body) = c.call("DELETE", "/api/v1/ttl", Some(r#"{"path": "/data/b"}"#)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(c.call("GET", "/api/v1/ttl", None).await.1, json!({"results": [{"path": "/data", "ttlSeconds": 600}]}));
}

async fn bad_ttl_requests_are_400_and_change_nothing(backend: Backend) {
    let c = mounted(backend).await;
    for body in [
        r#"{"path": "/data"}"#,
        r#"{"ttlSeconds": 5}"#,
        r#"{"path": "/data", "ttlSeconds": 0}"#,
        r#"{"path": "/data", "ttlSeconds": -5}"#,
        r#"{"path": "/data", "ttlSeconds": "5"}"#,
        r#"{"path": "data", "ttlSeconds": 5}"#,
        "",
    ] {
        let (status, resp) = c.call("POST", "/api/v1/ttl", Some(body)).await;
        assert_eq!(status, 400, "{body} -> {resp}");
    }
    let (status, body) = c.call("POST", "/api/v1/ttl", Some(r#"{"path": "/other/x", "ttlSeconds": 5}"#)).await;
    assert_eq!((status, status_text(&body)), (400, "No mounted UFS found"));
    let (status, _) = c.call("DELETE", "/api/v1/ttl", Some("{}")).await;
    assert_eq!(status, 400);
    assert_eq!(c.call("GET", "/api/v1/ttl", None).await, (200, json!({"results": []})));
}

async fn priority_rules_parse_levels_in_any_case(backend: Backend) {
    let c = mounted(backend).await;
    let ok = (200, json!({"status": "ok"}));
    assert_eq!(c.call("POST", "/api/v1/priority", Some(r#"{"path": "/data/hot", "priority": "HIGH"}"#)).await, ok);
    assert_eq!(c.call("POST", "/api/v1/priority", Some(r#"{"path": "/data", "priority": "Low"}"#)).await, ok);
    assert_eq!(
        c.call("GET", "/api/v1/priority", None).await,
        (200, json!({"results": [{"path": "/data", "priority": "low"}, {"path": "/data/hot", "priority": "high"}]}))
    );
    assert_eq!(
        c.call("GET", "/api/v1/priority?path=/data/hot", None).await,
        (200, json!({"path": "/data/hot", "priority": "high"}))
    );
    let (status, body) = c.call("GET", "/api/v1/priority?path=/data/cold", None).await;
    assert_eq!((status, status_text(&body)), (404, "No priority rule found for path: /data/cold"));

    for body in [r#"{"path": "/data", "priority": "urgent"}"#, r#"{"path": "/data"}"#, r#"{"priority": "low"}"#] {
        let (status, resp) = c.call("POST", "/api/v1/priority", Some(body)).await;
        assert_eq!(status, 400, "{body} -> {resp}");
    }
    let (status, body) = c.call("POST", "/api/v1/priority", Some(r#"{"path": "/x", "priority": "low"}"#)).await;
    assert_eq!((status, status_text(&body)), (400, "No mounted UFS found"));

    assert_eq!(c.call("DELETE", "/api/v1/priority", Some(r#"{"path": "/data/hot"}"#)).await, ok);
    // Idempotent (Decision): the spec lists no error for a path without a rule.
    assert_eq!(c.call("DELETE", "/api/v1/priority", Some(r#"{"path": "/data/hot"}"#)).await, ok);
    assert_eq!(c.call("DELETE", "/api/v1/priority", Some("{}")).await.0, 400);
    assert_eq!(
        c.call("GET", "/api/v1/priority", None).await.1,
        json!({"results": [{"path": "/data", "priority": "low"}]})
    );
}

#[tokio::test]
async fn rules_survive_a_coordinator_restart() {
    let c = mounted(Backend::Embedded).await;
    let (status, _) = c.call("POST", "/api/v1/ttl", Some(r#"{"path": "/data", "ttlSeconds": 9}"#)).await;
    assert_eq!(status, 200);
    let (store, dir) = c.shutdown().await;
    let c = start_with(dir, store, CoordinatorConfig::default()).await;
    assert_eq!(c.call("GET", "/api/v1/ttl?path=/data", None).await, (200, json!({"path": "/data", "ttlSeconds": 9})));
}

#[tokio::test]
async fn disabled_kinds_answer_501_on_every_method() {
    loam_ufs::install_process_defaults();
    let dir = tempfile::tempdir().unwrap();
    let store = loam_testsupport::coordinator::open_store(dir.path());
    let cfg = CoordinatorConfig { ttl_enabled: false, priority_enabled: false, ..CoordinatorConfig::default() };
    let c = start_with(dir, store, cfg).await;
    let cases = [
        ("/api/v1/ttl", "TTL not enabled", r#"{"path": "/data", "ttlSeconds": 5}"#),
        ("/api/v1/priority", "Priority eviction not enabled", r#"{"path": "/data", "priority": "low"}"#),
    ];
    for (route, message, body) in cases {
        for (method, path, body) in [
            ("GET", route.to_string(), None),
            ("GET", format!("{route}?path=/data"), None),
            ("POST", route.to_string(), Some(body)),
            ("DELETE", route.to_string(), Some(r#"{"path": "/data"}"#)),
        ] {
            let (status, resp) = c.call(method, &path, body).await;
            assert_eq!((status, status_text(&resp)), (501, message), "{method} {path}");
        }
    }
}
