//! `/api/v1/mount` against a running coordinator: every status code of the spec's table, the listing
//! format, secret masking, persistence, races, and that refused requests change nothing.

use loam_coordinator::CoordinatorConfig;
use loam_testsupport::coordinator::{TestCoordinator, call, open_store, start, start_with, status_text};
use loam_ufs::Mount;
use serde_json::{Value, json};

async fn mount(c: &TestCoordinator, path: &str, ufs: &str) -> (u16, Value) {
    c.call("POST", "/api/v1/mount", Some(&json!({"path": path, "ufs": ufs}).to_string())).await
}

async fn list(c: &TestCoordinator) -> Value {
    let (status, body) = c.call("GET", "/api/v1/mount", None).await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn add_get_list_remove() {
    let c = start().await;
    let ufs = c.ufs_dir("ufs", true);

    assert_eq!(list(&c).await, json!({"results": []}));
    let (status, body) = mount(&c, "/data", &ufs).await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));
    assert_eq!(c.ufs.built_count(), 1, "the UFS check builds the mount's client");

    let expected = json!({"path": "/data/", "ufs": format!("{ufs}/")}); // empty options are omitted (skip-if-empty rule)
    assert_eq!(list(&c).await, json!({"results": [expected.clone()]}));
    for spelling in ["/data", "/data/", "//data"] {
        let (status, body) = c.call("GET", &format!("/api/v1/mount?path={spelling}"), None).await;
        assert_eq!((status, body), (200, expected.clone()), "{spelling}");
    }

    let (status, body) = c.call("DELETE", "/api/v1/mount", Some(r#"{"path": "/data/"}"#)).await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));
    assert_eq!(list(&c).await, json!({"results": []}));
    assert_eq!(c.ufs.built_count(), 0, "unmounting drops the client");

    let (status, body) = c.call("GET", "/api/v1/mount?path=/data", None).await;
    assert_eq!((status, body), (404, json!({"status": "No mount point found for path: /data/"})));
    let (status, body) = c.call("DELETE", "/api/v1/mount", Some(r#"{"path": "/data"}"#)).await;
    assert_eq!((status, body), (410, json!({"status": "No mount point found for path: /data/"})));
}

#[tokio::test]
async fn secrets_are_masked_when_listed() {
    let c = start().await;
    let ufs = c.ufs_dir("ufs", true);
    let body = json!({"path": "/data", "ufs": ufs, "options": {
        "s3a.accessKeyId": "AKID", "s3a.secretKey": "SECRET", "db.password": "PW", "s3.sessionToken": "TOK"}});
    let (status, resp) = c.call("POST", "/api/v1/mount", Some(&body.to_string())).await;
    assert_eq!(status, 200, "{resp}");

    let masked = json!({"s3a.accessKeyId": "******", "s3a.secretKey": "******", "db.password": "******",
        "s3.sessionToken": "******"});
    assert_eq!(list(&c).await["results"][0]["options"], masked);
    let (_, one) = c.call("GET", "/api/v1/mount?path=/data", None).await;
    assert_eq!(one["options"], masked);
    // The store keeps the real values: the workers need them.
    let stored = c.store.get(&loam_core::store_keys::mount_key(&c.cluster, "data")).await.unwrap().unwrap();
    let m: Mount = serde_json::from_slice(&stored.value).unwrap();
    assert_eq!(m.options["s3a.secretKey"], "SECRET");
    assert_eq!(m.version, loam_ufs::mount_table::MOUNT_RECORD_VERSION);
}

#[tokio::test]
async fn conflicts_are_409_and_change_nothing() {
    let c = start().await;
    let ufs = c.ufs_dir("ufs/a", true);
    c.mkdir("ufs/a/inner");
    let other = c.ufs_dir("other", true);
    assert_eq!(mount(&c, "/data", &ufs).await.0, 200);
    let before = list(&c).await;

    // The same path again, even with another UFS and spelling.
    let (status, body) = mount(&c, "/data/", &other).await;
    assert_eq!(status, 409, "{body}");
    assert!(status_text(&body).contains("/data is already mounted"), "{body}");
    // A UFS inside the mounted one, and one around it.
    for (path, ufs) in [("/inner", format!("{ufs}/inner")), ("/outer", c.ufs_dir("ufs", false))] {
        let (status, body) = mount(&c, path, &ufs).await;
        assert_eq!(status, 409, "{path}: {body}");
        assert!(status_text(&body).contains("overlaps"), "{body}");
    }
    assert_eq!(list(&c).await, before);
}

#[tokio::test]
async fn bad_requests_are_400_with_a_precise_message_and_change_nothing() {
    let c = start().await;
    let ufs = c.ufs_dir("ufs", true);
    std::fs::write(c.dir.path().join("a-file"), b"x").unwrap();
    let missing = c.ufs_dir("missing", false);
    let file = c.ufs_dir("a-file", false);
    let post = |path: &str, ufs: &str| json!({"path": path, "ufs": ufs}).to_string();

    let cases: Vec<(&str, String, String)> = vec![
        ("no body", String::new(), "Required parameters not provided: empty request body".into()),
        (
            "malformed",
            r#"{"path": "/data", "ufs": }"#.into(),
            "malformed JSON: expected value at line 1 column 26".into(),
        ),
        ("trailing comma", "{\"path\": \"/d\", \"ufs\": \"file:///\",}".into(), "at line 1 column 34".into()),
        (
            "missing path",
            json!({"ufs": ufs}).to_string(),
            "Required parameters not provided: missing field `path`".into(),
        ),
        (
            "missing ufs",
            json!({"path": "/data"}).to_string(),
            "Required parameters not provided: missing field `ufs`".into(),
        ),
        ("wrong type", json!({"path": 7, "ufs": ufs}).to_string(), "expected a string for `path`".into()),
        (
            "option type",
            json!({"path": "/d", "ufs": ufs, "options": {"k": true}}).to_string(),
            "for `options.k`".into(),
        ),
        ("not an object", "[1]".into(), "the request body must be a JSON object".into()),
        ("dot-dot", post("/a/../data", &ufs), "'..' component".into()),
        ("ufs dot-dot", post("/data", &format!("{ufs}/../ufs")), "'..' component".into()),
        ("NUL", post("/da\u{0}ta", &ufs), "NUL".into()),
        ("relative", post("data", &ufs), "not absolute".into()),
        ("root", post("/", &ufs), "'/' cannot be mounted".into()),
        ("nested", post("/a/b", &ufs), "must be a direct child of '/'".into()),
        ("missing UFS dir", post("/data", &missing), format!("UFS path does not exist: {missing}/")),
        ("UFS is a file", post("/data", &file), "not a directory".into()),
        ("scheme", post("/data", "gopher://host/x"), "unsupported UFS scheme \"gopher\"".into()),
        ("not a URI", post("/data", "/tmp/x"), "is not a UFS URI".into()),
    ];
    for (what, body, expected) in cases {
        let (status, resp) = c.call("POST", "/api/v1/mount", Some(&body)).await;
        assert_eq!(status, 400, "{what}: {resp}");
        assert!(status_text(&resp).contains(&expected), "{what}: {resp} lacks {expected:?}");
    }

    for (what, body, expected) in [
        ("no body", "", "empty request body"),
        ("missing path", "{}", "missing field `path`"),
        ("root", r#"{"path": "/"}"#, "'/' cannot be mounted"),
        ("nested", r#"{"path": "/a/b"}"#, "direct child"),
        ("dot-dot", r#"{"path": "/.."}"#, "'..' component"),
    ] {
        let (status, resp) = c.call("DELETE", "/api/v1/mount", Some(body)).await;
        assert_eq!(status, 400, "DELETE {what}: {resp}");
        assert!(status_text(&resp).contains(expected), "DELETE {what}: {resp}");
    }

    for (query, expected) in [
        ("?path=", "query parameter `path` is empty"),
        ("?path=/a/../b", "'..' component"),
        ("?path=data", "not absolute"),
        ("?limit=ten", "`limit` must be a non-negative integer"),
        ("?offset=-1", "`offset` must be a non-negative integer"),
    ] {
        let (status, resp) = c.call("GET", &format!("/api/v1/mount{query}"), None).await;
        assert_eq!(status, 400, "GET {query}: {resp}");
        assert!(status_text(&resp).contains(expected), "GET {query}: {resp}");
    }

    assert_eq!(list(&c).await, json!({"results": []}));
    assert!(!std::path::Path::new(&missing["file://".len()..]).exists(), "the UFS check created the directory");
}

#[tokio::test]
async fn a_body_not_declared_json_is_415_and_changes_nothing() {
    let c = start().await;
    let ufs = c.ufs_dir("ufs", true);
    let body = json!({"path": "/a", "ufs": ufs, "unknown": {"ignored": true}}).to_string();
    // The types a cross-origin page may send without a preflight, and none at all.
    for ct in [None, Some("text/plain"), Some("application/x-www-form-urlencoded"), Some("multipart/form-data")] {
        let (status, resp) = call("POST", &c.url("/api/v1/mount"), Some(&body), ct).await;
        assert_eq!(status, 415, "{ct:?}: {resp}");
        assert!(status_text(&resp).contains("Content-Type: application/json"), "{resp}");
    }
    assert_eq!(list(&c).await, json!({"results": []}), "nothing was mounted");
    let (status, resp) =
        call("POST", &c.url("/api/v1/mount"), Some(&body), Some("application/json; charset=utf-8")).await;
    assert_eq!((status, resp), (200, json!({"status": "ok"})));
    let (status, _) = call("DELETE", &c.url("/api/v1/mount"), Some(r#"{"path":"/a"}"#), Some("text/plain")).await;
    assert_eq!(status, 415);
    assert_eq!(list(&c).await["results"].as_array().unwrap().len(), 1, "still mounted");
}

#[tokio::test]
async fn list_is_ordered_and_paged() {
    let c = start().await;
    for name in ["c", "a", "b"] {
        let ufs = c.ufs_dir(name, true);
        assert_eq!(mount(&c, &format!("/{name}"), &ufs).await.0, 200);
    }
    let paths = |v: &Value| v["results"].as_array().unwrap().iter().map(|m| m["path"].clone()).collect::<Vec<_>>();
    assert_eq!(paths(&list(&c).await), vec![json!("/a/"), json!("/b/"), json!("/c/")]);
    let (_, page) = c.call("GET", "/api/v1/mount?offset=1&limit=1", None).await;
    assert_eq!(paths(&page), vec![json!("/b/")]);
    let (_, page) = c.call("GET", "/api/v1/mount?offset=5", None).await;
    assert_eq!(page, json!({"results": []}));
}

#[tokio::test]
async fn racing_adds_have_one_winner() {
    let c = start().await;
    let ufs = c.ufs_dir("ufs/a", true);
    c.mkdir("ufs/a/b");
    let same_path = [mount(&c, "/data", &ufs), mount(&c, "/data", &ufs)];
    let statuses: Vec<u16> = futures::future::join_all(same_path).await.into_iter().map(|(s, _)| s).collect();
    assert_eq!(sorted(statuses), vec![200, 409]);

    // Different paths whose UFSs overlap: the mutex keeps the overlap check and the write together.
    let parent = c.ufs_dir("p", true);
    c.mkdir("p/child");
    let child = format!("{parent}/child");
    let overlapping = [mount(&c, "/x", &parent), mount(&c, "/y", &child)];
    let statuses: Vec<u16> = futures::future::join_all(overlapping).await.into_iter().map(|(s, _)| s).collect();
    assert_eq!(sorted(statuses), vec![200, 409]);
    assert_eq!(list(&c).await["results"].as_array().unwrap().len(), 2);
}

fn sorted(mut v: Vec<u16>) -> Vec<u16> {
    v.sort_unstable();
    v
}

#[tokio::test]
async fn mounts_persist_across_coordinators() {
    let c = start().await;
    let ufs = c.ufs_dir("ufs", true);
    assert_eq!(mount(&c, "/data", &ufs).await.0, 200);
    let before = list(&c).await;
    let (store, dir) = c.shutdown().await;
    drop(store);

    let store = open_store(dir.path());
    let c2 = start_with(dir, store, CoordinatorConfig::default()).await;
    assert_eq!(list(&c2).await, before);
    let (status, _) = mount(&c2, "/data", &ufs).await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn a_static_table_is_listed_and_refuses_changes_with_501() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let mounts = vec![
        Mount::new("/data", "s3://bucket/prefix", [("s3a.secretKey".to_string(), "SK".to_string())].into()).unwrap(),
    ];
    let cfg = CoordinatorConfig { static_mounts: Some(mounts), ..CoordinatorConfig::default() };
    let c = start_with(dir, store, cfg).await;
    let ufs = c.ufs_dir("ufs", true);

    let expected = json!({"path": "/data/", "ufs": "s3://bucket/prefix/", "options": {"s3a.secretKey": "******"}});
    assert_eq!(list(&c).await, json!({"results": [expected.clone()]}));
    assert_eq!(c.call("GET", "/api/v1/mount?path=/data", None).await, (200, expected));

    let (status, body) = mount(&c, "/other", &ufs).await;
    assert_eq!(status, 501, "{body}");
    assert!(status_text(&body).contains("static"), "{body}");
    let (status, body) = c.call("DELETE", "/api/v1/mount", Some(r#"{"path": "/data"}"#)).await;
    assert_eq!(status, 501, "{body}");
    assert_eq!(list(&c).await["results"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_corrupt_record_is_a_500_naming_it_and_can_be_unmounted() {
    let c = start().await;
    let key = loam_core::store_keys::mount_key(&c.cluster, "bad");
    c.store.put(&key, bytes::Bytes::from_static(b"{not json"), None).await.unwrap();

    let (status, body) = c.call("GET", "/api/v1/mount", None).await;
    assert_eq!(status, 500, "{body}");
    assert!(status_text(&body).contains(&format!("mount record {key} is unreadable")), "{body}");
    let (status, body) = c.call("DELETE", "/api/v1/mount", Some(r#"{"path": "/bad"}"#)).await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));
    assert_eq!(list(&c).await, json!({"results": []}));
}
