//! The behaviour cases against a real S3 server (moto, one per test), rooted at a key prefix of a bucket.

use super::cases::Env;
use loam_core::path::UfsUri;
use loam_testsupport::S3TestServer;
use loam_ufs::{MountOptions, OpendalUfs, Ufs, UfsError};
use std::sync::Arc;

const BUCKET: &str = "loam-behaviour";

/// A fresh server with one bucket; the UFS is rooted at `s3://loam-behaviour/root`.
fn setup() -> (Env, S3TestServer) {
    let server = S3TestServer::start();
    server.create_bucket(BUCKET);
    let root = format!("s3://{BUCKET}/root");
    let ufs = OpendalUfs::new(&UfsUri::parse(&root).unwrap(), &server.mount_options()).expect("s3 ufs");
    let outside = vec![
        format!("s3://{BUCKET}/rootx/f"),
        format!("s3://{BUCKET}/f"),
        "s3://other-bucket/root/f".to_string(),
        "file:///root/f".to_string(),
    ];
    (Env { ufs: Arc::new(ufs), root, has_etag: true, outside }, server)
}

crate::behaviour_tests!(setup;
    stat_file, stat_dir, stat_missing, ranged_reads, pinned_reads, pieced_reads, streamed_reads,
    concurrent_reads, write_then_read,
    list_non_recursive_paginated, list_recursive_paginated, list_missing_is_empty,
    delete_file, delete_recursive, copy, rename, create_dir, outside_root_is_invalid,
    write_stream_large, write_stream_empty, write_stream_failing_body_keeps_the_old_file, exact_paths,
    metadata_round_trip, conditional_writes,
);

#[test]
fn bad_mount_options_are_invalid_input() {
    let root = UfsUri::parse("s3://bucket/p").unwrap();
    let cases: &[&[(&str, &str)]] = &[
        &[("s3.pathStyle", "maybe")],
        &[("s3.endpoint", "ftp://127.0.0.1:1")],
        &[("s3a.accessKeyId", "only-the-access-key")],
        &[("s3.accessKeyId", "a"), ("aws.accessKeyId", "b"), ("s3.secretKey", "s")],
    ];
    for kv in cases {
        let opts: MountOptions = kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        match OpendalUfs::new(&root, &opts) {
            Err(UfsError::InvalidInput(m)) => assert!(m.contains(kv[0].0) || m.contains(kv[kv.len() - 1].0), "{m}"),
            other => panic!("{kv:?}: expected InvalidInput, got {other:?}"),
        }
    }
}

/// Every alias spelling reaches the server (the testsupport options use the `alluxio.underfs.*` names).
#[tokio::test]
async fn option_aliases_reach_the_server() {
    let server = S3TestServer::start();
    server.create_bucket(BUCKET);
    let root = UfsUri::parse(&format!("s3a://{BUCKET}/")).unwrap();
    let spellings = [
        [
            ("s3.accessKeyId", "k"),
            ("s3.secretKey", "s"),
            ("s3.endpoint", ""),
            ("s3.region", "us-east-1"),
            ("s3.pathStyle", "true"),
        ],
        [
            ("aws.accessKeyId", "k"),
            ("aws.secretKey", "s"),
            ("s3a.endpoint", ""),
            ("s3a.region", "us-east-1"),
            ("s3a.path.style.access", "true"),
        ],
    ];
    for (i, spelling) in spellings.iter().enumerate() {
        let opts: MountOptions = spelling
            .iter()
            .map(|(k, v)| (k.to_string(), if v.is_empty() { server.endpoint() } else { v.to_string() }))
            .collect();
        let ufs = OpendalUfs::new(&root, &opts).unwrap();
        let uri = format!("s3://{BUCKET}/alias-{i}");
        ufs.write(&uri, bytes::Bytes::from_static(b"hi")).await.unwrap();
        assert_eq!(ufs.stat(&uri).await.unwrap().length, 2);
    }
}

/// A bucket that does not exist is a configuration error, not a missing file.
#[tokio::test]
async fn missing_bucket_is_invalid_input() {
    let server = S3TestServer::start();
    let root = UfsUri::parse("s3://no-such-bucket/").unwrap();
    let ufs = OpendalUfs::new(&root, &server.mount_options()).unwrap();
    let r = ufs.read_range("s3://no-such-bucket/k", 0, 10).await;
    assert!(matches!(r, Err(UfsError::InvalidInput(_))), "{r:?}");
}

/// A server that is gone is `Unavailable` (retryable), after the retry layer's attempts.
#[tokio::test]
async fn stopped_server_is_unavailable() {
    let server = S3TestServer::start();
    let opts = server.mount_options();
    drop(server);
    let ufs = OpendalUfs::new(&UfsUri::parse("s3://bucket/").unwrap(), &opts).unwrap();
    let r = ufs.stat("s3://bucket/k").await;
    assert!(matches!(&r, Err(e @ UfsError::Unavailable(_)) if e.is_retryable()), "{r:?}");
}
