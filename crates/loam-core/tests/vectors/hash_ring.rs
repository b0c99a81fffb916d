//! The ring reproduces every vector of Alluxio's reference test suite (`hash-ring/` beside this file,
//! Alluxio's own test vectors).

use loam_core::hash_ring::{DEFAULT_VIRTUAL_NODES, HashRing};
use loam_core::id::{WorkerId, WorkerIdentity};
use std::collections::{BTreeMap, BTreeSet};

/// The vectors are compiled in (`include_str!`), not read at run time from a path fixed at build time: the
/// target directory is shared between checkouts at different paths, and cargo does not rebuild a test only
/// because its checkout moved.
fn load<T: serde::de::DeserializeOwned>(name: &str) -> T {
    let text = match name {
        "workerHostnames.json" => include_str!("hash-ring/workerHostnames.json"),
        "workerList.json" => include_str!("hash-ring/workerList.json"),
        "activeNodesMap.json" => include_str!("hash-ring/activeNodesMap.json"),
        "fileUrlWorkers.json" => include_str!("hash-ring/fileUrlWorkers.json"),
        other => panic!("no vector file {other}"),
    };
    serde_json::from_str(text).unwrap()
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
