//! `/api/v1/health` and `/api/v1/ready` (issue 15): both open without credentials; readiness follows the
//! cluster store, a real etcd stopped and started again under a running Coordinator, with no restart.

use loam_store::{EtcdOptions, EtcdStore};
use loam_testsupport::EtcdServer;
use loam_testsupport::auth::anonymous_client;
use loam_testsupport::coordinator::{start, start_with};
use serde_json::{Value, json};

async fn probe(base: &str, path: &str) -> (u16, String) {
    let r = anonymous_client().get(format!("{base}{path}")).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn both_probes_answer_200_without_credentials_on_a_working_store() {
    let c = start().await;
    assert_eq!(probe(&c.base, "/api/v1/health").await, (200, "OK".to_string()));
    let (status, body) = probe(&c.base, "/api/v1/ready").await;
    assert_eq!((status, serde_json::from_str::<Value>(&body).unwrap()), (200, json!({"ready": true})));
    let (status, _) = probe(&c.base, "/api/v1/nodes").await;
    assert_eq!(status, 401, "the rest of the API still needs credentials");
}

#[tokio::test]
async fn readiness_follows_etcd_while_liveness_stays_200() {
    let mut etcd = EtcdServer::start();
    let store = EtcdStore::connect(vec![etcd.endpoint()], EtcdOptions::default()).await.unwrap();
    let c = start_with(tempfile::tempdir().unwrap(), store, Default::default()).await;
    assert_eq!(probe(&c.base, "/api/v1/ready").await.0, 200);
    etcd.stop();
    let (status, body) = probe(&c.base, "/api/v1/ready").await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((status, &body["ready"]), (503, &json!(false)), "{body}");
    assert!(body["reason"].as_str().unwrap().starts_with("cluster store unreachable: "), "{body}");
    assert_eq!(probe(&c.base, "/api/v1/health").await.0, 200, "liveness does not ask etcd");
    etcd.start_again();
    // The etcd client reconnects by itself; a generous cap only keeps a broken build from hanging.
    tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while probe(&c.base, "/api/v1/ready").await.0 != 200 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("readiness is 200 again once etcd is back");
}
