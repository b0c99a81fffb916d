//! Who may call the worker HTTP API (issue 12): `/v1/health` is open; reads need `read` (open without
//! credentials only under `--anonymous-read`); the write API and page POSTs need `write`; `/v1/internal/*`
//! needs `cluster`. A refused request changes nothing: the attacks of the issue (deleting a UFS file
//! through the write API, poisoning a page, dropping the cache through the internal endpoints) fail.

use crate::PAGE;
use loam_testsupport::auth::{ADMIN, CLUSTER, READ, WRITE, anonymous_client, client_with};
use loam_testsupport::cluster::{Cluster, Options};
use loam_testsupport::data::pattern;
use loam_worker::s3_api::S3Config;
use serde_json::json;

async fn worker(anonymous_read: bool) -> Cluster {
    let s3 = S3Config { anonymous_read, ..S3Config::default() };
    Cluster::start(Options { s3, ..Options::default() }).await
}

async fn send(http: &reqwest::Client, c: &Cluster, method: &str, path: &str, body: Vec<u8>) -> u16 {
    let url = format!("{}{path}", c.worker(0).http_base());
    let r = http.request(method.parse().unwrap(), url).body(body).send().await.unwrap();
    let status = r.status().as_u16();
    if status == 401 {
        assert!(r.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"), "{path}");
    }
    status
}

#[tokio::test]
async fn reads_need_the_read_role_unless_anonymous_reads_are_on() {
    for anonymous_read in [false, true] {
        let c = worker(anonymous_read).await;
        let uri = c.write("f.bin", &pattern(PAGE as usize + 10, 1));
        let id = loam_core::file_id(&uri);
        let reads = [
            format!("/v1/info?path={uri}"),
            format!("/v1/range/{id}?ufsFullPath={uri}&offset=0&length=10"),
            format!("/v1/file/{id}/page/0?ufsFullPath={uri}"),
            format!("/v1/node?path={uri}"),
            format!("/v1/short-circuit?path={uri}"),
            "/metrics".to_string(),
            "/v1/stats".to_string(),
        ];
        assert_eq!(send(&anonymous_client(), &c, "GET", "/v1/health", Vec::new()).await, 200, "health is open");
        for path in &reads {
            let anonymous = send(&anonymous_client(), &c, "GET", path, Vec::new()).await;
            assert_eq!(anonymous, if anonymous_read { 200 } else { 401 }, "anonymous GET {path}");
            assert_eq!(send(&client_with("bogus-token-0123456789"), &c, "GET", path, Vec::new()).await, 401, "{path}");
            for token in [READ, ADMIN, CLUSTER] {
                assert_eq!(send(&client_with(token), &c, "GET", path, Vec::new()).await, 200, "{token} GET {path}");
            }
            assert_eq!(send(&client_with(WRITE), &c, "GET", path, Vec::new()).await, 403, "write only: {path}");
        }
    }
}

#[tokio::test]
async fn writes_and_page_posts_need_the_write_role_and_refused_ones_change_nothing() {
    let c = worker(true).await;
    let original = pattern(PAGE as usize + 10, 2);
    let uri = c.write("victim.bin", &original);
    let id = loam_core::file_id(&uri);
    let dir = c.uri("newdir");
    let writes = [
        (format!("/v1/rm/{id}?ufsFullPath={uri}"), Vec::new()),
        (format!("/v1/chunk/{id}?ufsFullPath={uri}"), b"evil".to_vec()),
        (format!("/v1/mkdir/{}?ufsFullPath={dir}", loam_core::file_id(&dir)), Vec::new()),
        (format!("/v1/mv/{id}?srcPath={uri}&dstPath={}", c.uri("moved.bin")), Vec::new()),
        (format!("/v1/copy/{id}?srcPath={uri}&dstPath={}", c.uri("copied.bin")), Vec::new()),
        (format!("/v1/file/{id}/page/0?ufsFullPath={uri}"), vec![0xEE; PAGE as usize]),
    ];
    for (path, body) in &writes {
        for (http, want) in [(anonymous_client(), 401), (client_with(READ), 403), (client_with(CLUSTER), 403)] {
            assert_eq!(send(&http, &c, "POST", path, body.clone()).await, want, "POST {path}");
        }
    }
    assert_eq!(std::fs::read(c.ufs_root().join("victim.bin")).unwrap(), original, "the UFS file is untouched");
    for gone in ["newdir", "moved.bin", "copied.bin"] {
        assert!(!c.ufs_root().join(gone).exists(), "{gone} was not created");
    }
    let r =
        client_with(READ).get(format!("{}/v1/range/{id}?ufsFullPath={uri}&offset=0&length=4", c.worker(0).http_base()));
    assert_eq!(r.send().await.unwrap().bytes().await.unwrap(), original[..4], "no poisoned page is served");
    let (path, body) = &writes[1];
    assert_eq!(send(&client_with(WRITE), &c, "POST", path, body.clone()).await, 200, "the write role may");
    assert_eq!(std::fs::read(c.ufs_root().join("victim.bin")).unwrap(), b"evil");
}

#[tokio::test]
async fn internal_endpoints_need_the_cluster_role_and_the_cache_survives_refused_drops() {
    let c = worker(true).await;
    let uri = c.write("cached.bin", &pattern(PAGE as usize, 3));
    let id = loam_core::file_id(&uri);
    c.range(0, &uri, 0, PAGE).await;
    let cached = || c.worker(0).state.pages.usage().files;
    assert_eq!(cached(), 1);
    let free = json!({"version": 1, "files": [{"uri": uri}]}).to_string().into_bytes();
    let internal = [
        ("POST", "/v1/internal/free".to_string(), free.clone()),
        ("POST", "/v1/internal/verify".to_string(), free),
        ("POST", "/v1/internal/load".to_string(), json!({"version": 1, "files": []}).to_string().into_bytes()),
        ("GET", format!("/v1/internal/file/{id}"), Vec::new()),
        ("GET", "/v1/internal/cached_files".to_string(), Vec::new()),
        ("POST", "/v1/internal/clear_stale".to_string(), json!({"version": 1, "replicas": 1}).to_string().into_bytes()),
        ("POST", "/v1/internal/invalidate".to_string(), json!({"uri": uri}).to_string().into_bytes()),
    ];
    for (method, path, body) in &internal {
        for (http, want) in
            [(anonymous_client(), 401), (client_with(READ), 403), (client_with(WRITE), 403), (client_with(ADMIN), 403)]
        {
            assert_eq!(send(&http, &c, method, path, body.clone()).await, want, "{method} {path}");
        }
    }
    assert_eq!(cached(), 1, "the cache survived every refused call");
    let r = send(&client_with(CLUSTER), &c, "GET", "/v1/internal/cached_files", Vec::new()).await;
    assert_eq!(r, 200, "a cluster member may");
}
