//! Who may call the REST API (issue 12): every endpoint refuses a request without credentials (`401`
//! with `WWW-Authenticate: Bearer` and a status body), a token without the role it needs (`403`), and in
//! both cases changes nothing. Reads need `read`, writes `admin`, `/api/v1/internal/*` `cluster`.

use loam_testsupport::auth::{ADMIN, ALL_ROLES, CLUSTER, READ, WRITE, anonymous_client, client_with};
use loam_testsupport::coordinator::start;
use serde_json::{Value, json};

/// One request of every endpoint and method: `(method, path, body)`.
fn requests(ufs: &str) -> Vec<(&'static str, &'static str, Value)> {
    let mount = json!({"path": "/etc", "ufs": ufs});
    vec![
        ("GET", "/api/v1/mount", Value::Null),
        ("POST", "/api/v1/mount", mount),
        ("DELETE", "/api/v1/mount", json!({"path": "/etc"})),
        ("GET", "/api/v1/nodes", Value::Null),
        ("DELETE", "/api/v1/nodes", json!({"workerId": "worker-x"})),
        ("POST", "/api/v1/nodes/drain", json!({"id": "worker-x"})),
        ("GET", "/api/v1/nodes/stats", Value::Null),
        ("GET", "/api/v1/coordinators", Value::Null),
        ("GET", "/api/v1/load", Value::Null),
        ("POST", "/api/v1/load", json!({"paths": ["/etc"]})),
        ("DELETE", "/api/v1/load", json!({"id": "x"})),
        ("GET", "/api/v1/free", Value::Null),
        ("POST", "/api/v1/free", json!({"paths": ["/etc"]})),
        ("DELETE", "/api/v1/free", json!({"id": "x"})),
        ("GET", "/api/v1/rebalance", Value::Null),
        ("POST", "/api/v1/rebalance", json!({"target": "ALL"})),
        ("DELETE", "/api/v1/rebalance", json!({"id": "x"})),
        ("GET", "/api/v1/file_index?path=/etc", Value::Null),
        ("POST", "/api/v1/file_index", json!({"path": "/etc"})),
        ("DELETE", "/api/v1/file_index", json!({"path": "/etc"})),
        ("POST", "/api/v1/cache", json!({"op": "clear_stale"})),
        ("DELETE", "/api/v1/cache", Value::Null),
        ("GET", "/api/v1/ttl", Value::Null),
        ("POST", "/api/v1/ttl", json!({"path": "/etc", "ttl": "1h"})),
        ("DELETE", "/api/v1/ttl", json!({"path": "/etc"})),
        ("GET", "/api/v1/priority", Value::Null),
        ("POST", "/api/v1/priority", json!({"path": "/etc", "priority": "HIGH"})),
        ("DELETE", "/api/v1/priority", json!({"path": "/etc"})),
        ("GET", "/api/v1/quota", Value::Null),
        ("POST", "/api/v1/quota", json!({"path": "/etc", "quota": "1GiB"})),
        ("DELETE", "/api/v1/quota", json!({"path": "/etc"})),
        (
            "POST",
            "/api/v1/internal/file_index",
            json!({"version": 1, "worker": "worker-x", "added": ["file:///etc/x"]}),
        ),
        ("GET", "/metrics", Value::Null),
        ("GET", "/api/v1/no-such-endpoint", Value::Null),
    ]
}

/// What `method path` needs.
fn needs(method: &str, path: &str) -> &'static str {
    if path.starts_with("/api/v1/internal/") {
        "cluster"
    } else if method == "GET" {
        "read"
    } else {
        "admin"
    }
}

async fn send(http: &reqwest::Client, base: &str, method: &str, path: &str, body: &Value) -> reqwest::Response {
    let mut req = http.request(method.parse().unwrap(), format!("{base}{path}"));
    if !body.is_null() {
        req = req.json(body);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn every_endpoint_refuses_missing_and_bad_credentials_and_the_wrong_role() {
    let c = start().await;
    let etc = format!("file://{}", c.mkdir("etc").display());
    let tokens = [("admin", ADMIN), ("read", READ), ("write", WRITE), ("cluster", CLUSTER)];
    let bad = [anonymous_client(), client_with("not-a-known-token-0123"), client_with(&ADMIN[..ADMIN.len() - 1])];
    for (method, path, body) in requests(&etc) {
        let need = needs(method, path);
        for (i, http) in bad.iter().enumerate() {
            let r = send(http, &c.base, method, path, &body).await;
            assert_eq!(r.status(), 401, "{method} {path} with bad credentials #{i}");
            let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_string();
            assert!(challenge.starts_with("Bearer realm=\"loam\""), "{challenge}");
            let status = r.json::<Value>().await.unwrap()["status"].as_str().unwrap().to_string();
            assert!(!status.contains(ADMIN) && !status.contains("not-a-known"), "the token is never echoed: {status}");
            assert!(!status.contains(&c.dir.path().display().to_string()), "no server path: {status}");
        }
        for (role, token) in tokens {
            let grants = role == need || (role == "admin" && need == "read") || (role == "cluster" && need == "read");
            let r = send(&client_with(token), &c.base, method, path, &body).await;
            if grants {
                assert!(![401, 403].contains(&r.status().as_u16()), "{method} {path} as {role}: {}", r.status());
            } else {
                assert_eq!(r.status(), 403, "{method} {path} as {role}");
                let status = r.json::<Value>().await.unwrap()["status"].as_str().unwrap().to_string();
                assert!(status.contains(&format!("lacks the {need} role")), "{status}");
            }
        }
    }
}

/// The attack of the issue: anyone who could reach the port mounted `file:///etc` (and read it over S3).
#[tokio::test]
async fn an_anonymous_or_read_only_caller_cannot_mount_and_nothing_changes() {
    let c = start().await;
    let etc = format!("file://{}", c.mkdir("etc").display());
    let mount = json!({"path": "/etc", "ufs": etc});
    for http in [anonymous_client(), client_with(READ), client_with(WRITE), client_with(CLUSTER)] {
        let r = send(&http, &c.base, "POST", "/api/v1/mount", &mount).await;
        assert!([401, 403].contains(&r.status().as_u16()), "{}", r.status());
    }
    let (_, listed) = c.call("GET", "/api/v1/mount", None).await;
    assert_eq!(listed, json!({"results": []}), "no mount was added");
    let r = send(&client_with(ALL_ROLES), &c.base, "POST", "/api/v1/mount", &mount).await;
    assert_eq!(r.status(), 200, "the admin may");
}

/// The attack of the issue: fake workers' reports filled the file index. Only the `cluster` role reports.
#[tokio::test]
async fn file_index_reports_need_the_cluster_role() {
    let c = start().await;
    let report = json!({"version": 1, "worker": "worker-fake", "reset": true, "added": ["file:///x"], "removed": []});
    for http in [anonymous_client(), client_with(ADMIN), client_with(READ), client_with(WRITE)] {
        let r = send(&http, &c.base, "POST", "/api/v1/internal/file_index", &report).await;
        assert!([401, 403].contains(&r.status().as_u16()), "{}", r.status());
    }
    let (status, body) = c.call("GET", "/api/v1/file_index?path=file:///x", None).await;
    assert!(status == 404 || body.to_string().find("worker-fake").is_none(), "{status} {body}");
}

/// The web console's files are open (they hold no data); only its exact files are, not a prefix: the
/// API beside them still wants credentials.
#[tokio::test]
async fn the_console_files_are_open_and_nothing_else_is() {
    let c = start().await;
    let anonymous = anonymous_client();
    let r = send(&anonymous, &c.base, "GET", "/", &Value::Null).await;
    assert_eq!((r.status().as_u16(), r.url().path()), (200, "/console"), "/ redirects to the console");
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(r.headers()["content-security-policy"].to_str().unwrap().starts_with("default-src 'self'"));
    let r = send(&anonymous, &c.base, "GET", "/console/app.js", &Value::Null).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/javascript; charset=utf-8");
    assert_eq!(send(&anonymous, &c.base, "POST", "/console", &json!({})).await.status(), 405);
    for path in ["/console/nope.js", "/consoles", "/api/v1/mount"] {
        assert_eq!(send(&anonymous, &c.base, "GET", path, &Value::Null).await.status(), 401, "{path}");
    }
}
