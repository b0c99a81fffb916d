//! The worker's data-path metrics as a scrape of `/metrics` shows them, after real reads through a real
//! worker: a miss then a memory hit over the HTTP API, an S3 GetObject, a disk hit after a restart, and
//! a UFS error (a file removed from the UFS). Exact values and labels: the mount label, the tier label,
//! histogram counts, and the Alluxio-named series.

use loam_testsupport::cluster::{Cluster, Options};
use loam_testsupport::data::pattern;
use loam_worker::s3_api::{S3Config, S3Credentials};

/// One page (the test workers' pages are 64 KiB): one UFS read, one page served per read.
const LEN: usize = 1000;

fn options() -> Options {
    let credentials = Some(S3Credentials { access_key: "metrics-key".into(), secret_key: "metrics-secret".into() });
    Options {
        s3: S3Config { port: 0, credentials, anonymous_read: true, multipart_expiry: None, unsized_puts: false },
        ..Options::default()
    }
}

async fn scrape(t: &Cluster) -> String {
    let r = t.get(0, "/metrics").await;
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

/// Asserts that `text` has the sample `line` (name, labels and value) exactly.
#[track_caller]
fn has(text: &str, line: &str) {
    assert!(text.lines().any(|l| l == line), "no sample `{line}` in:\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_show_in_the_data_path_metrics_by_mount_tier_route_and_operation() {
    let mut t = Cluster::start(options()).await;
    let data = pattern(LEN, 7);
    let uri = t.write("m/a.bin", &data);
    assert_eq!(t.range(0, &uri, 0, LEN as u64).await, data, "a miss, read through");
    assert_eq!(t.range(0, &uri, 0, LEN as u64).await, data, "a memory hit");
    let m = scrape(&t).await;
    has(&m, r#"loam_worker_mount_cache_misses_total{mount="/data"} 1"#);
    has(&m, r#"loam_worker_mount_cache_hits_total{mount="/data"} 1"#);
    has(&m, r#"loam_worker_mount_read_bytes_total{mount="/data",source="ufs"} 1000"#);
    has(&m, r#"loam_worker_mount_read_bytes_total{mount="/data",source="cache"} 1000"#);
    has(&m, r#"loam_worker_page_read_duration_seconds_count{tier="memory"} 1"#);
    has(&m, r#"loam_worker_page_read_duration_seconds_count{tier="ufs"} 1"#);
    has(&m, r#"loam_worker_ufs_operation_duration_seconds_count{op="stat",mount="/data"} 1"#);
    has(&m, r#"loam_worker_ufs_operation_duration_seconds_count{op="read",mount="/data"} 1"#);
    has(&m, r#"loam_worker_http_request_duration_seconds_count{method="GET",route="/v1/range/{id}",status="2xx"} 2"#);
    has(&m, "alluxio_cached_data_read_bytes_total 1000");
    has(&m, "alluxio_external_data_read_bytes_total 1000");
    has(&m, r#"alluxio_ufs_data_access_bytes_total{method="read"} 1000"#);
    has(&m, r#"alluxio_ufs_data_access_bytes_total{method="write"} 0"#);
    has(&m, r#"alluxio_data_access_bytes_count{method="read"} 2"#);
    has(&m, r#"alluxio_data_access_bytes_sum{method="read"} 2000.0"#);
    assert!(!m.contains("m/a.bin"), "no file path in any label:\n{m}");

    // S3 GetObject, unsigned (anonymous read): served from the cache.
    let url = format!("{}/data/m/a.bin", t.worker(0).s3_base());
    let resp = reqwest::get(&url).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.unwrap(), data);
    let resp = reqwest::get(format!("{}/data/m/none.bin", t.worker(0).s3_base())).await.unwrap();
    assert_eq!(resp.status(), 404);
    let m = scrape(&t).await;
    has(&m, r#"loam_worker_s3_request_duration_seconds_count{operation="GetObject",status="2xx"} 1"#);
    has(&m, r#"loam_worker_s3_request_duration_seconds_count{operation="GetObject",status="4xx"} 1"#);
    has(&m, r#"loam_worker_mount_cache_hits_total{mount="/data"} 2"#);
    has(&m, "alluxio_cached_data_read_bytes_total 2000");
    has(&m, r#"loam_worker_ufs_operation_errors_total{op="stat",mount="/data",kind="not_found"} 1"#);

    // A file removed from the UFS: its open fails on the UFS stat, counted by op, mount and kind.
    let gone = t.write("m/gone.bin", b"soon gone");
    std::fs::remove_file(t.ufs_root().join("m/gone.bin")).unwrap();
    let id = loam_core::file_id(&gone);
    let r = t.get(0, &format!("/v1/range/{id}?ufsFullPath={gone}&offset=0&length=9")).await;
    assert_eq!(r.status(), 404);
    let m = scrape(&t).await;
    has(&m, r#"loam_worker_ufs_operation_errors_total{op="stat",mount="/data",kind="not_found"} 2"#);
    has(&m, r#"loam_worker_http_request_duration_seconds_count{method="GET",route="/v1/range/{id}",status="4xx"} 1"#);
    has(&m, r#"loam_worker_http_request_duration_seconds_count{method="GET",route="/metrics",status="2xx"} 2"#);

    // Paths that match no route, and methods the API does not serve, stay bounded labels.
    let http = reqwest::Client::new();
    let base = t.worker(0).http_base();
    for path in ["/no/such/path/1", "/no/such/path/2"] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 404);
    }
    let odd = reqwest::Method::from_bytes(b"FROB").unwrap();
    let r = http.request(odd, format!("{base}/v1/health")).send().await.unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    let m = scrape(&t).await;
    has(&m, r#"loam_worker_http_request_duration_seconds_count{method="GET",route="unmatched",status="4xx"} 2"#);
    assert!(m.contains(r#"method="other""#), "{m}");
    assert!(!m.contains("FROB") && !m.contains("/no/such"), "{m}");

    // After a restart the memory tier is empty: the page comes from disk.
    t.restart_worker(0).await;
    assert_eq!(t.range(0, &uri, 0, LEN as u64).await, data, "a disk hit");
    let m = scrape(&t).await;
    has(&m, r#"loam_worker_page_read_duration_seconds_count{tier="disk"} 1"#);
    has(&m, r#"loam_worker_page_read_duration_seconds_count{tier="ufs"} 0"#);
    has(&m, r#"loam_worker_mount_cache_hits_total{mount="/data"} 1"#);
    has(&m, "alluxio_cached_data_read_bytes_total 1000");
    has(&m, "alluxio_external_data_read_bytes_total 0");
}

/// A UFS that stops answering: the stat of a due re-validation fails (the cached version is served and
/// counted as such), and a read of an uncached file fails; both are counted by op, mount and kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreachable_ufs_shows_as_errors_by_op_and_mount_and_as_served_without_revalidation() {
    let t = Cluster::start(Options { max_age: std::time::Duration::ZERO, ..options() }).await;
    let data = pattern(LEN, 3);
    let cached = t.write("u/cached.bin", &data);
    assert_eq!(t.range(0, &cached, 0, LEN as u64).await, data);
    let down = || loam_ufs::UfsError::Unavailable("the test cut the UFS".into());
    t.faulty().fail_matching("u/cached.bin", down());
    assert_eq!(t.range(0, &cached, 0, LEN as u64).await, data, "served from the cache, not re-validated");
    let cold = t.write("u/cold.bin", &data);
    t.faulty().fail_next_reads(1, down());
    let id = loam_core::file_id(&cold);
    let r = t.get(0, &format!("/v1/range/{id}?ufsFullPath={cold}&offset=0&length={LEN}")).await;
    assert!(!r.status().is_success(), "{}", r.status());
    drop(r.bytes().await);
    let m = scrape(&t).await;
    has(&m, "loam_worker_served_without_revalidation_total 1");
    has(&m, r#"loam_worker_ufs_operation_errors_total{op="stat",mount="/data",kind="unavailable"} 1"#);
    has(&m, r#"loam_worker_ufs_operation_errors_total{op="read",mount="/data",kind="unavailable"} 1"#);
    has(&m, r#"loam_worker_ufs_operation_duration_seconds_count{op="read",mount="/data"} 2"#);
}
