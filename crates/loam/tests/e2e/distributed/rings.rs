//! The two independent readings of the ring that the tests compare, both built from the same etcd:
//! the unmodified Python client (`alluxio==1.0.0`'s `ConsistentHashProvider`, run by
//! `tests/py/ring_compare.py` with the venv's python), and Loam's Rust client
//! (`loam_client::MembershipView::follow_store` on an `EtcdStore`). Each maps a key (a full UFS URI)
//! to its primary worker's `host:port`.

use crate::process::run_capped;
use loam_client::MembershipView;
use loam_core::hash_ring::DEFAULT_VIRTUAL_NODES;
use loam_core::membership::DEFAULT_CLUSTER_NAME;
use loam_store::{ClusterStore, EtcdOptions, EtcdStore};
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

/// The script the Python side runs.
/// The Python side of this test.
fn script() -> std::path::PathBuf {
    loam_testsupport::package_file("tests/py/ring_compare.py")
}
/// How long the Python client may take (its imports alone take a second or two on a loaded machine).
const PYTHON_CAP: Duration = Duration::from_secs(120);

/// The primary worker of each key by the unmodified Python client, reading etcd at `etcd_url`.
pub fn python(etcd_url: &str, keys: &[String]) -> BTreeMap<String, String> {
    let python = loam_testsupport::s3_server::venv_dir().join("bin/python");
    assert!(
        python.is_file(),
        "{} not found: run scripts/setup-test-deps.sh to install alluxio==1.0.0",
        python.display()
    );
    let (host, port) = host_port(etcd_url);
    let mut cmd = Command::new(&python);
    cmd.arg(script()).arg(host).arg(port.to_string());
    // etcd3 0.12's generated code predates protobuf 4, whose C++ runtime refuses it; the pure-Python
    // implementation reads it with any protobuf, so the test does not depend on what pip resolved
    // (3.20.3 here, which would work either way).
    cmd.env("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python");
    let input = serde_json::to_vec(keys).expect("keys as JSON");
    let out = run_capped(cmd, Some(input), PYTHON_CAP);
    assert!(out.status.success(), "ring_compare.py failed ({}):\n{}", out.status, out.stderr);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("ring_compare.py printed no JSON map ({e}): {}", String::from_utf8_lossy(&out.stdout))
    })
}

/// The primary worker of each key by Loam's Rust client, following etcd at `etcd_url` until its ring
/// holds `members` workers.
pub fn rust(etcd_url: &str, keys: &[String], members: usize) -> BTreeMap<String, String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    rt.block_on(async {
        let store: Arc<dyn ClusterStore> =
            EtcdStore::connect(vec![etcd_url.to_string()], EtcdOptions::default()).await.expect("connect to etcd");
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let (view, task) = MembershipView::follow_store(store, DEFAULT_CLUSTER_NAME, DEFAULT_VIRTUAL_NODES, stopped)
            .await
            .expect("follow the membership in etcd");
        let ring = tokio::time::timeout(crate::cluster::CAP, async {
            loop {
                let ring = view.ring();
                if ring.len() == members {
                    return ring;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("the Rust ring never held {members} workers"));
        let chosen = keys
            .iter()
            .map(|k| {
                let (_, w) = ring.primary(k).expect("a non-empty ring has a primary");
                (k.clone(), format!("{}:{}", w.host, w.http_port))
            })
            .collect();
        let _ = stop.send(true);
        task.await.expect("the membership follower stops cleanly");
        chosen
    })
}

/// `("127.0.0.1", 2379)` of `http://127.0.0.1:2379`.
fn host_port(url: &str) -> (String, u16) {
    let rest = url.strip_prefix("http://").unwrap_or(url).trim_end_matches('/');
    let (host, port) = rest.rsplit_once(':').unwrap_or_else(|| panic!("no port in the etcd URL {url}"));
    (host.to_string(), port.parse().unwrap_or_else(|e| panic!("bad port in the etcd URL {url}: {e}")))
}
