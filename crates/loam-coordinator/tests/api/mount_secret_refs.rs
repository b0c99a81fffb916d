//! An S3 mount whose secret key is a `file:` reference (`loam_ufs::secret_refs`), through the real
//! Coordinator API, against an S3 server that checks SigV4 signatures (`S3TestServer::start_signed`):
//! the file's content signs the requests of the mount check, a load job and a worker's read; the store
//! and the API hold only the reference; a wrong secret is a clear `400` that names neither secret, and
//! a reference that cannot be resolved is a `400` at mount time naming the option and the reference.

use crate::jobs;
use bytes::Bytes;
use loam_testsupport::S3TestServer;
use loam_testsupport::cluster::Cluster;
use loam_testsupport::coordinator::status_text;
use loam_testsupport::data::pattern;
use loam_ufs::{Mount, OpendalUfs, Ufs};
use serde_json::json;
use std::collections::BTreeMap;

const BUCKET: &str = "loam-refs";

/// The signed server's mount options with the secret key replaced by `secret_key`.
fn options_with(s3: &S3TestServer, secret_key: &str) -> BTreeMap<String, String> {
    let mut options = s3.mount_options();
    options.insert("s3a.secretKey".into(), secret_key.into());
    options
}

fn mount_body(path: &str, options: &BTreeMap<String, String>) -> String {
    json!({"path": path, "ufs": format!("s3://{BUCKET}/"), "options": options}).to_string()
}

#[tokio::test]
async fn a_file_reference_signs_mount_checks_loads_and_reads_and_only_the_reference_is_kept() {
    let s3 = tokio::task::spawn_blocking(|| S3TestServer::start_signed(&[BUCKET])).await.unwrap();
    let secret = s3.secret_key().to_string();
    // The object goes in with the literal credentials, through a client of its own.
    let data = pattern(70_000, 7);
    let uri = format!("s3://{BUCKET}/obj.bin");
    let writer = Mount::new("/w", &format!("s3://{BUCKET}/"), s3.mount_options()).unwrap();
    let writer = OpendalUfs::new(&writer.ufs_uri(), &writer.options).unwrap();
    writer.write(&uri, Bytes::from(data.clone())).await.unwrap();

    let c = Cluster::start(jobs(2)).await;
    let dir = tempfile::tempdir().unwrap();
    let (good, wrong) = (dir.path().join("sk"), dir.path().join("wrong-sk"));
    std::fs::write(&good, format!("{secret}\n")).unwrap();
    let wrong_secret = "wrong-secret-8d1f0c5a";
    std::fs::write(&wrong, wrong_secret).unwrap();
    let reference = format!("file:{}", good.display());

    // A wrong secret: the server refuses the signature, the mount is a 400 that says so and names no secret.
    let (status, body) = c
        .call(
            "POST",
            "/api/v1/mount",
            Some(&mount_body("/wrong", &options_with(&s3, &format!("file:{}", wrong.display())))),
        )
        .await;
    let text = status_text(&body);
    assert_eq!(status, 400, "{body}");
    assert!(text.contains(&format!("s3://{BUCKET}/")) && text.contains("SignatureDoesNotMatch"), "{text}");
    assert!(!text.contains(wrong_secret) && !text.contains(&secret), "{text}");
    // A reference that cannot be resolved: a 400 naming the option and the reference, nothing mounted.
    let missing = format!("file:{}", dir.path().join("no-such-file").display());
    let (status, body) =
        c.call("POST", "/api/v1/mount", Some(&mount_body("/missing", &options_with(&s3, &missing)))).await;
    let text = status_text(&body);
    assert_eq!(status, 400, "{body}");
    assert!(text.contains("s3a.secretKey") && text.contains(&missing) && text.contains("cannot read"), "{text}");
    let (_, listed) = c.call("GET", "/api/v1/mount", None).await;
    assert_eq!(listed["results"].as_array().map(Vec::len), Some(1), "only the cluster's own mount: {listed}");

    // The right secret, by reference: mounted (the check's signed requests passed), shown masked.
    let (status, body) =
        c.call("POST", "/api/v1/mount", Some(&mount_body("/s3", &options_with(&s3, &reference)))).await;
    assert_eq!((status, &body), (200, &json!({"status": "ok"})), "{}", s3.log_text());
    let (status, shown) = c.call("GET", "/api/v1/mount?path=/s3", None).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["options"]["s3a.secretKey"], "******", "{shown}");
    // The store holds the reference, never the secret it names.
    let stored = loam_store::list_all(c.store.as_ref(), "/loam/").await.unwrap();
    let record = stored.iter().find(|kv| kv.key.ends_with("/mounts/s3")).expect("the mount's record");
    let record = String::from_utf8_lossy(&record.value);
    assert!(record.contains(&reference) && !record.contains(&secret), "{record}");

    // A load job: every worker resolves the reference itself and signs its reads with the file's secret.
    let (s, v) = c.call("POST", "/api/v1/load", Some(r#"{"paths": ["/s3"], "options": {"sync": true}}"#)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!((v["state"].as_str(), v["loadedBytes"].as_u64()), (Some("SUCCEEDED"), Some(data.len() as u64)), "{v}");
    // A read through each worker returns the object's bytes (from its cache or, on the other, the S3 server).
    for i in 0..2 {
        assert_eq!(c.range(i, &uri, 0, data.len() as u64).await, data, "worker {i}");
    }
}
