//! Quotas in load jobs, on real workers over real HTTP: the bytes a running load reserves show in
//! `reservedBytes` (once per replica) and in the job's `quota` progress, and are released when the run
//! ends; reservations refuse new loads but never stop a running one; a load whose quota fills up is
//! stopped `FAILED` with `quotaCheckError`; a load under no quota shows `{0, 0}` and is unaffected; an
//! index-file load is checked as its listing reads the paths.
//!
//! UFS reads are held up (a read delay far longer than any test) where a load must stay running, so the
//! only way such a load ends is the one under test.

use crate::{PAGE, cluster};
use loam_testsupport::cluster::Cluster;
use loam_testsupport::data::pattern;
use serde_json::{Value, json};
use std::time::Duration;

/// Longer than any test runs: a load whose reads wait this long stays RUNNING until it is stopped.
const STUCK: Duration = Duration::from_secs(600);

async fn set_quota(c: &Cluster, path: &str, bytes: u64) {
    let body = json!({"path": path, "quotaBytes": bytes}).to_string();
    let (s, v) = c.call("POST", "/api/v1/quota", Some(&body)).await;
    assert_eq!(s, 200, "{v}");
}

/// Polls `GET /api/v1/quota?path=` until `done(status)`.
async fn quota_until(c: &Cluster, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    loop {
        let (s, v) = c.call("GET", &format!("/api/v1/quota?path={path}"), None).await;
        assert_eq!(s, 200, "{v}");
        if done(&v) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Submits a load; answers its id.
async fn submit(c: &Cluster, body: Value) -> String {
    let (s, v) = c.call("POST", "/api/v1/load", Some(&body.to_string())).await;
    assert_eq!(s, 200, "{body}: {v}");
    v["id"].as_str().unwrap().to_string()
}

/// Loads `path` synchronously and expects it to succeed.
async fn load_now(c: &Cluster, path: &str) -> Value {
    let body = json!({"paths": [path], "options": {"sync": true}}).to_string();
    let (s, v) = c.call("POST", "/api/v1/load", Some(&body)).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("SUCCEEDED")), "{v}");
    v
}

/// Writes `n` files of `len` bytes under `dir`.
fn files(c: &Cluster, dir: &str, n: usize, len: usize) {
    for i in 0..n {
        c.write(&format!("{dir}/f{i}"), &pattern(len, i as u8));
    }
}

#[tokio::test]
async fn running_loads_reserve_their_planned_bytes_until_the_run_ends() {
    let c = cluster(2).await;
    const QUOTA: u64 = 10 << 20;
    const LEN: u64 = 40_000;
    set_quota(&c, "/data/q", QUOTA).await;
    // A finished load reserves nothing: its bytes are used.
    files(&c, "q/fast", 1, LEN as usize);
    load_now(&c, "/data/q/fast").await;
    let q = quota_until(&c, "/data/q", |v| v["usedBytes"] == LEN).await;
    assert_eq!((q["reservedBytes"].as_u64(), q["state"].as_str()), (Some(0), Some("Available")), "{q}");

    c.faulty().set_read_delay(Some(STUCK));
    files(&c, "q/slow", 5, LEN as usize);
    let id = submit(&c, json!({"paths": ["/data/q/slow"], "options": {"replicas": 2}})).await;
    let planned = 5 * LEN * 2;
    let q = quota_until(&c, "/data/q", |v| v["reservedBytes"] == planned).await;
    assert_eq!((q["usedBytes"].as_u64(), q["state"].as_str()), (Some(LEN), Some("Available")), "{q}");
    let (_, list) = c.call("GET", "/api/v1/quota", None).await;
    assert_eq!(list["results"][0]["reservedBytes"], planned, "{list}");
    let remaining = QUOTA - LEN - planned;
    let v = c.wait_for("load", &id, |v| v["quota"]["remaining"] == remaining).await;
    assert_eq!((v["state"].as_str(), &v["quota"]["totalBytes"]), (Some("RUNNING"), &json!(QUOTA)), "{v}");

    // Reserved room counts for new submissions: with the limit at used + reserved, the quota is Exceeded
    // and a new load under it is refused...
    set_quota(&c, "/data/q", LEN + planned).await;
    let q = quota_until(&c, "/data/q", |v| v["quotaBytes"] == LEN + planned).await;
    assert_eq!(q["state"], "Exceeded", "{q}");
    files(&c, "q/other", 1, 10);
    let (s, v) = c.call("POST", "/api/v1/load", Some(r#"{"paths": ["/data/q/other"]}"#)).await;
    assert_eq!(s, 400, "{v}");
    let why = v["quotaCheckError"].as_str().unwrap_or_default();
    assert!(why.contains("/data/q") && why.contains(&format!("{planned} reserved")), "{v}");
    assert_eq!(v["status"], v["quotaCheckError"]);
    // ...but the running load is not stopped by reservations, its own included.
    c.wait_for("load", &id, |v| v["quota"]["remaining"] == 0).await;
    tokio::time::sleep(crate::POLICY_INTERVAL * 3).await;
    let (_, v) = c.call("GET", &format!("/api/v1/load?id={id}"), None).await;
    assert_eq!(v["state"], "RUNNING", "{v}");
    assert!(v.get("quotaCheckError").is_none(), "{v}");

    // Stopping the run releases its reservation.
    let (s, v) = c.call("DELETE", "/api/v1/load", Some(&json!({"id": id}).to_string())).await;
    assert_eq!(s, 200, "{v}");
    let (_, q) = c.call("GET", "/api/v1/quota?path=/data/q", None).await;
    assert_eq!((q["reservedBytes"].as_u64(), q["state"].as_str()), (Some(0), Some("Available")), "{q}");
}

#[tokio::test]
async fn a_load_whose_quota_fills_up_fails_with_quota_check_error() {
    let c = cluster(1).await;
    let used = 4 * PAGE;
    files(&c, "q/pre", 1, used as usize);
    load_now(&c, "/data/q/pre").await;
    c.faulty().set_read_delay(Some(STUCK));
    const LEN: u64 = 3 * PAGE;
    files(&c, "q/slow", 4, LEN as usize);
    let id = submit(&c, json!({"paths": ["/data/q/slow"]})).await;

    // A quota appears above the running load: its progress shows it, room left after usage and reservation.
    let quota = 1 << 20;
    set_quota(&c, "/data/q", quota).await;
    let v = c.wait_for("load", &id, |v| v["quota"]["remaining"] == quota - used - 4 * LEN).await;
    assert_eq!((v["state"].as_str(), &v["quota"]["totalBytes"]), (Some("RUNNING"), &json!(quota)), "{v}");

    // The cached bytes under it now exceed the limit: the load is stopped.
    set_quota(&c, "/data/q", used / 2).await;
    let v = c.wait_end("load", &id).await;
    assert_eq!(v["state"], "FAILED", "{v}");
    let why = v["quotaCheckError"].as_str().unwrap_or_default();
    assert!(why.contains("quota at /data/q") && why.contains(&used.to_string()), "{v}");
    assert_eq!(v["quota"], json!({"totalBytes": used / 2, "remaining": 0}), "{v}");
    assert_eq!((v["loadedBytes"].as_u64(), v["failedFiles"].as_u64()), (Some(0), Some(0)), "{v}");
    let (_, q) = c.call("GET", "/api/v1/quota?path=/data/q", None).await;
    assert_eq!((q["reservedBytes"].as_u64(), q["state"].as_str()), (Some(0), Some("Exceeded")), "{q}");
    // It is over: stopping it is 410, and submitting it again is refused, not resumed.
    let (s, _) = c.call("DELETE", "/api/v1/load", Some(&json!({"id": id}).to_string())).await;
    assert_eq!(s, 410);
    let (s, v) = c.call("POST", "/api/v1/load", Some(r#"{"paths": ["/data/q/slow"]}"#)).await;
    assert_eq!(s, 400, "{v}");
    assert!(v["quotaCheckError"].as_str().unwrap_or_default().contains("/data/q"), "{v}");
}

#[tokio::test]
async fn only_loads_under_a_full_quota_are_stopped_index_files_included() {
    let c = cluster(1).await;
    set_quota(&c, "/data/q", 1000).await;
    files(&c, "q/a", 1, 2 * PAGE as usize);
    load_now(&c, "/data/q/a").await;
    // (Admission may stop caching mid-file once the worker sees the quota full: any usage past 1000 will do.)
    quota_until(&c, "/data/q", |v| v["state"] == "Exceeded").await;

    // A load under no quota shows {0, 0} and runs as ever.
    files(&c, "free", 3, PAGE as usize);
    let v = load_now(&c, "/data/free").await;
    assert_eq!(
        (v["quota"].clone(), v["loadedBytes"].as_u64()),
        (json!({"totalBytes": 0, "remaining": 0}), Some(3 * PAGE))
    );
    assert!(v.get("quotaCheckError").is_none(), "{v}");
    // A metadata-only load caches no pages: the quota does not apply to it.
    let body = r#"{"paths": ["/data/q/a"], "options": {"loadMetadataOnly": true, "sync": true}}"#;
    let (s, v) = c.call("POST", "/api/v1/load", Some(body)).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("SUCCEEDED")), "{v}");

    // An index file's paths are checked as they are read: the job fails before loading anything.
    files(&c, "q/b", 2, PAGE as usize);
    let index = c.write("lists/index.txt", b"# under the full quota first\n/data/q/b\n/data/free\n");
    let id = submit(&c, json!({"index": index})).await;
    let v = c.wait_end("load", &id).await;
    assert_eq!(v["state"], "FAILED", "{v}");
    assert!(v["quotaCheckError"].as_str().unwrap_or_default().contains("quota at /data/q"), "{v}");
    assert_eq!((v["loadedBytes"].as_u64(), &v["quota"]), (Some(0), &json!({"totalBytes": 1000, "remaining": 0})));
    assert!(c.holders(&format!("{}/q/b/f0", c.root.trim_end_matches('/'))).is_empty());
}
