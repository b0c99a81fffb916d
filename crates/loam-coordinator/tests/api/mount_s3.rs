//! `POST /api/v1/mount` of `s3://` UFSs against a real S3 test server (moto): the UFS check finds a
//! missing bucket and an unreachable endpoint, and neither is a 500.

use loam_testsupport::coordinator::{start, status_text};
use loam_testsupport::{S3TestServer, free_port};
use serde_json::json;
use std::collections::BTreeMap;

async fn s3_server() -> S3TestServer {
    tokio::task::spawn_blocking(|| {
        let s3 = S3TestServer::start();
        s3.create_bucket("loam-bucket");
        s3
    })
    .await
    .expect("start the S3 test server")
}

#[tokio::test]
async fn s3_mounts_are_checked_against_the_bucket() {
    let s3 = s3_server().await;
    let c = start().await;
    let post = |path: &str, ufs: &str, options: &BTreeMap<String, String>| {
        json!({"path": path, "ufs": ufs, "options": options}).to_string()
    };

    let (status, body) =
        c.call("POST", "/api/v1/mount", Some(&post("/gone", "s3://loam-missing", &s3.mount_options()))).await;
    assert_eq!((status, body), (400, json!({"status": "UFS path does not exist: s3://loam-missing/"})));

    let mut unreachable = s3.mount_options();
    unreachable.insert("alluxio.underfs.s3.endpoint".into(), format!("http://127.0.0.1:{}", free_port()));
    let (status, body) = c.call("POST", "/api/v1/mount", Some(&post("/far", "s3://loam-bucket", &unreachable))).await;
    assert_eq!(status, 400, "{body}");
    assert!(status_text(&body).contains("UFS s3://loam-bucket/ is unreachable"), "{body}");
    assert_eq!(c.ufs.built_count(), 0, "clients built for refused mounts are dropped");

    let (status, body) =
        c.call("POST", "/api/v1/mount", Some(&post("/data", "s3a://loam-bucket/", &s3.mount_options()))).await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));
    let (status, body) = c.call("GET", "/api/v1/mount?path=/data/", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ufs"], "s3://loam-bucket/");
    assert_eq!(body["options"]["s3a.secretKey"], "******");
    assert_eq!(body["options"]["s3a.accessKeyId"], "******", "a key id is masked too (one rule for secrets)");
}
