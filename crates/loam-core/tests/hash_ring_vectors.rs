//! The ring reproduces every vector of Alluxio's reference test suite (`tests/vectors/hash-ring`,
//! copied from `shared/vectors/hash-ring`).

use loam_core::hash_ring::{DEFAULT_VIRTUAL_NODES, HashRing};
use loam_core::id::{WorkerId, WorkerIdentity};
use std::collections::{BTreeMap, BTreeSet};

fn load<T: serde::de::DeserializeOwned>(name: &str) -> T {
    let path = format!("{}/tests/vectors/hash-ring/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn ring() -> HashRing<()> {
    let hosts: Vec<String> = load("workerHostnames.json");
    HashRing::new(hosts.iter().map(|h| (WorkerId::from_host_name(h).identity(), ())), DEFAULT_VIRTUAL_NODES)
}

#[test]
fn identities_from_host_names() {
    let hosts: Vec<String> = load("workerHostnames.json");
    let expected: BTreeSet<WorkerIdentity> = load::<Vec<WorkerIdentity>>("workerList.json").into_iter().collect();
    let got: BTreeSet<WorkerIdentity> = hosts.iter().map(|h| WorkerId::from_host_name(h).identity()).collect();
    assert_eq!(expected.len(), 50);
    assert_eq!(got, expected);
}

#[test]
fn all_ring_points() {
    let expected: BTreeMap<String, WorkerIdentity> = load("activeNodesMap.json");
    let expected: BTreeMap<i32, WorkerIdentity> = expected.into_iter().map(|(k, v)| (k.parse().unwrap(), v)).collect();
    let got: BTreeMap<i32, WorkerIdentity> = ring().points().map(|(p, i)| (p, i.clone())).collect();
    assert_eq!(expected.len(), 250);
    assert_eq!(got, expected);
}

#[test]
fn all_ordered_lookups() {
    let expected: BTreeMap<String, Vec<WorkerIdentity>> = load("fileUrlWorkers.json");
    assert_eq!(expected.len(), 21);
    let ring = ring();
    for (url, workers) in expected {
        let got: Vec<WorkerIdentity> = ring.lookup(&url, workers.len()).into_iter().map(|(i, _)| i.clone()).collect();
        assert_eq!(got, workers, "lookup of {url}");
    }
}
