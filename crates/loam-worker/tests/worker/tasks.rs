//! The internal task API the Coordinator drives: load (once from the UFS, skip when cached, metadata
//! only, per-file failures), free and verify, and refusal of another task version.

use crate::{PAGE, one_worker};
use loam_testsupport::cluster::Cluster;
use loam_testsupport::data::pattern;
use loam_ufs::UfsError;
use serde_json::{Value, json};
use std::time::Duration;

async fn task(t: &Cluster, op: &str, body: Value) -> (u16, Value) {
    let r = t.http.post(format!("{}/v1/internal/{op}", t.worker(0).http_base())).json(&body).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or_default())
}

#[tokio::test]
async fn load_free_and_verify() {
    let t = one_worker(Duration::from_secs(3600)).await;
    let a = t.write("a", &pattern(5 * PAGE as usize + 7, 1));
    let b = t.write("b", &pattern(100, 2));
    let missing = format!("{}/nope", a.rsplit_once('/').unwrap().0);
    t.faulty().fail_matching("/b", UfsError::Unavailable("injected".into()));
    let files = json!([{"ufsUri": a}, {"ufsUri": b}, {"ufsUri": missing}]);
    let (s, v) = task(&t, "load", json!({"version": 1, "files": files, "bandwidth": 0})).await;
    assert_eq!(s, 200, "{v}");
    let r = v["results"].as_array().unwrap();
    assert_eq!((r[0]["ok"].as_bool(), r[0]["bytes"].as_u64()), (Some(true), Some(5 * PAGE + 7)));
    assert!(r[1]["error"].as_str().unwrap().contains("injected"));
    assert_eq!(r[2]["ok"], false);
    let reads = t.faulty().read_calls();
    let (_, v) = task(&t, "load", json!({"version": 1, "files": [{"ufsUri": a, "skipIfExists": true}]})).await;
    assert_eq!(v["results"][0]["skipped"], true);
    let (_, v) = task(&t, "load", json!({"version": 1, "files": [{"ufsUri": a}]})).await;
    assert_eq!(v["results"][0]["skipped"], false);
    assert_eq!(t.faulty().read_calls(), reads, "cached pages are not read again");
    let (_, v) = task(&t, "verify", json!({"version": 1, "uris": [a, b]})).await;
    assert_eq!((v["results"][0]["ok"].as_bool(), v["results"][1]["ok"].as_bool()), (Some(true), Some(false)));
    let (_, v) = task(&t, "free", json!({"version": 1, "uris": [a, b]})).await;
    assert_eq!(v["results"][0]["bytes"], 5 * PAGE + 7);
    assert_eq!(v["results"][1]["skipped"], true);
    let (_, v) = task(&t, "verify", json!({"version": 1, "uris": [a]})).await;
    assert_eq!(v["results"][0]["ok"], false);
    t.faulty().clear_faults();
    let (_, v) = task(&t, "load", json!({"version": 1, "files": [{"ufsUri": b, "metadataOnly": true}]})).await;
    assert_eq!(v["results"][0]["ok"], true);
    assert_eq!(t.faulty().reads_of(&b).calls, 0, "metadata only reads no data");
    let (s, _) = task(&t, "load", json!({"version": 2, "files": []})).await;
    assert_eq!(s, 400);
    let (s, _) = task(&t, "free", json!({"uris": []})).await;
    assert_eq!(s, 400);
}
