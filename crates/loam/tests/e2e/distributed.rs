//! End to end, the distributed deployment with real components only: a real etcd (Debian's, through
//! `loam_testsupport::EtcdServer`), real `loam coordinator` and `loam worker` processes, the real CLI,
//! and the unmodified Python client `alluxio==1.0.0`. Data lives in a `file://` UFS in a temp dir and
//! every read is compared with the original bytes.
//!
//! During the etcd outage the reads here are HTTP range reads against the workers, which hold the mount
//! table they watch; `loam fs` reading through the cluster view it kept is tested in
//! `distributed/faults.rs`.
//!
//! Each test starts its own etcd and processes on free ports and kills them all on drop
//! (`distributed/cluster.rs`). Waits are on conditions with generous caps; the only elapsed-time
//! assertion is the one the issue demands: a killed worker turns OFFLINE within its lease TTL (3 s
//! here), checked against TTL + 5 s of grace for the poll itself on a loaded machine.

mod empty_membership;
mod faults;
mod rings;
mod secure_etcd;

use crate::cluster::{CAP, Cluster, LEASE_TTL_SECS, wait_until};
use crate::http;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// How long etcd is down in the outage test (the number).
const OUTAGE: Duration = Duration::from_secs(30);
/// How long membership may take to recover after etcd is back: leases may have to be re-granted.
const RECOVERY_CAP: Duration = Duration::from_secs(60);

/// Index of the worker at `address` (`host:port`).
fn worker_at(c: &Cluster, address: &str) -> usize {
    c.workers.iter().position(|w| w.address() == address).unwrap_or_else(|| panic!("no worker at {address}"))
}

/// The primary worker of `path` as worker `asked` names it, once that worker knows the path's mount.
fn owner(c: &Cluster, asked: usize, path: &str) -> usize {
    let url = c.workers[asked].url();
    let address = wait_until(&format!("worker {asked} resolves {path}"), CAP, || http::node_of(&url, path).ok());
    worker_at(c, &address)
}

/// `loam fs cat path` (through etcd), which must succeed; the bytes.
fn cat(c: &Cluster, path: &str, extra: &[&str]) -> Vec<u8> {
    let mut args = vec!["fs", "cat", path];
    args.extend_from_slice(extra);
    let o = c.cli(&args);
    assert!(o.status.success(), "loam fs cat {path} {extra:?} failed: {}", o.stderr);
    o.stdout
}

/// A sample of a worker's metrics.
fn sample(c: &Cluster, i: usize) -> (f64, f64) {
    let text = c.workers[i].metrics();
    (http::metric(&text, "loam_worker_ufs_reads_total"), http::metric(&text, "loam_worker_served_bytes_total"))
}

#[test]
fn three_workers_register_online_and_both_clients_build_the_same_ring() {
    let c = Cluster::start(3);

    // `loam nodes`: one line per worker, with its id, its address and ONLINE.
    let text = c.ok(&["nodes"]);
    assert_eq!(text.matches("ONLINE").count(), 3, "{text}");
    for w in &c.workers {
        assert!(
            text.lines().any(|l| l.contains(&w.id) && l.contains(&w.address()) && l.contains("ONLINE")),
            "{} at {} is listed ONLINE:\n{text}",
            w.id,
            w.address()
        );
    }
    let ids: BTreeSet<&str> = c.workers.iter().map(|w| w.id.as_str()).collect();
    assert_eq!(ids.len(), 3, "three distinct identities");

    // A few hundred keys of the shapes clients hash: file and S3 URIs, nested, with spaces and non-ASCII.
    let keys: Vec<String> = (0..300)
        .map(|i| match i % 4 {
            0 => c.ufs_uri(&format!("dir{}/file-{i}.bin", i % 7)),
            1 => format!("s3://bucket-{}/path/to/object-{i}.parquet", i % 3),
            2 => format!("s3://ml-data/train/shard {i:05}.tfrecord"),
            _ => format!("s3://données/été/{i}/é.csv"),
        })
        .collect();
    let python = rings::python(&c.etcd_url(), &keys);
    let rust = rings::rust(&c.etcd_url(), &keys, 3);
    assert_eq!(python.len(), keys.len(), "the Python client chose a worker for every key");
    let addresses: BTreeSet<String> = c.workers.iter().map(|w| w.address()).collect();
    for (k, w) in &python {
        assert!(addresses.contains(w), "the Python client chose {w} for {k}, not one of {addresses:?}");
    }
    let chosen: BTreeSet<&String> = python.values().collect();
    assert!(chosen.len() > 1, "300 keys spread over more than one worker: {chosen:?}");
    let differ: Vec<_> = keys.iter().filter(|k| python[*k] != rust[*k]).take(5).collect();
    assert!(differ.is_empty(), "the Rust and Python rings differ, e.g. for {differ:?}");

    // Every worker answers `/v1/node` from the same ring.
    for (n, k) in keys.iter().enumerate() {
        let w = &c.workers[n % 3];
        let named = http::node_of(&w.url(), k).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(named, python[k], "worker {} names the primary of {k}", w.id);
    }
}

#[test]
fn a_killed_worker_turns_offline_its_files_stay_readable_and_it_returns_with_its_cache() {
    let mut c = Cluster::start(3);
    c.mount_data();
    let content = c.write_file("k/victim.bin", 2_500_000, 1);
    let path = "/data/k/victim.bin";
    let uri = c.ufs_uri("k/victim.bin");
    let v = owner(&c, 0, path);
    let id = c.workers[v].id.clone();

    // Cold read through the CLI: the primary reads the UFS and caches the file.
    assert_eq!(cat(&c, path, &[]), content, "cold read");
    let (ufs_reads, _) = sample(&c, v);
    assert!(ufs_reads > 0.0, "the CLI read from the primary, which read the UFS");

    let killed = Instant::now();
    c.kill_worker(v);
    let took = std::thread::scope(|s| {
        // Right away (typically while the ring still names the dead worker) a replica serves the read; the UFS
        // fallback is off here, so a worker did. On a thread, so the OFFLINE clock below is not delayed.
        let read = s.spawn(|| cat(&c, path, &["--no-ufs-fallback"]));
        // OFFLINE within the lease TTL (+5 s grace for polling the coordinator on a loaded machine).
        wait_until("the killed worker is OFFLINE", CAP, || {
            (c.status_of(v).ok()?.as_deref() == Some("OFFLINE")).then_some(())
        });
        let took = killed.elapsed();
        assert_eq!(read.join().expect("the read thread"), content, "read while the primary is dead");
        took
    });
    let bound = Duration::from_secs(LEASE_TTL_SECS + 5);
    assert!(took <= bound, "OFFLINE after {took:?}, beyond the lease TTL of {LEASE_TTL_SECS} s + 5 s grace");
    for i in (0..3).filter(|&i| i != v) {
        assert_eq!(c.status_of(i).expect("nodes").as_deref(), Some("ONLINE"), "worker {i} stays ONLINE");
    }
    // Off the ring now: reads go on, with the default UFS fallback and with workers only.
    assert_eq!(cat(&c, path, &[]), content, "read after the worker went OFFLINE");
    assert_eq!(cat(&c, path, &["--no-ufs-fallback"]), content, "read from the remaining workers");

    // Restarted on the same data dir: ONLINE again, with the same id.
    assert_eq!(c.start_worker(v), id, "the restarted worker keeps its id");
    c.wait_all_online();

    // Its cache is warm: reading the file from it again does not touch the UFS.
    let (reads_before, served_before) = sample(&c, v);
    let got = http::range_read(&c.workers[v].url(), &uri, content.len()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got, content, "read from the restarted worker");
    let (reads_after, served_after) = sample(&c, v);
    assert!(served_after >= served_before + content.len() as f64, "the restarted worker served the read");
    assert_eq!(reads_after, reads_before, "the restarted worker served the file from its cache");

    // Back on the ring as the primary, so the CLI reads from it, still without the UFS.
    assert_eq!(owner(&c, (v + 1) % 3, path), v, "the restarted worker is the primary again");
    assert_eq!(cat(&c, path, &[]), content, "read through the CLI after the restart");
    let (reads_cli, served_cli) = sample(&c, v);
    assert!(served_cli >= served_after + content.len() as f64, "the CLI read from the restarted primary");
    assert_eq!(reads_cli, reads_before, "still from its cache");
}

#[test]
fn reads_go_on_through_an_etcd_outage_and_membership_recovers() {
    let mut c = Cluster::start(3);
    c.mount_data();
    // Half the files are cached before the outage, half are read for the first time during it (the
    // workers read through to the UFS with the mount table they hold).
    let files: Vec<(String, Vec<u8>)> = (0..6)
        .map(|i| {
            let rel = format!("outage/f{i}.bin");
            let bytes = c.write_file(&rel, 300_000 + i * 1000, i as u32);
            (rel, bytes)
        })
        .collect();
    let owners: Vec<usize> = files.iter().map(|(rel, _)| owner(&c, 0, &format!("/data/{rel}"))).collect();
    for (rel, bytes) in files.iter().step_by(2) {
        assert_eq!(&cat(&c, &format!("/data/{rel}"), &[]), bytes, "warm-up read of {rel}");
    }
    for i in 1..3 {
        owner(&c, i, "/data/outage/f0.bin"); // every worker holds the mount before etcd goes away
    }

    c.etcd.stop();
    let start = Instant::now();
    let mut reads = 0;
    while start.elapsed() < OUTAGE {
        // Each file from its owner, and from another worker, which reads it through as any worker does.
        let (rel, bytes) = &files[reads % files.len()];
        let uri = c.ufs_uri(rel);
        for w in [owners[reads % files.len()], (owners[reads % files.len()] + 1 + reads % 2) % 3] {
            let got = http::range_read(&c.workers[w].url(), &uri, bytes.len()).unwrap_or_else(|e| {
                panic!("read {reads} of {rel} from worker {w}, {:?} into the outage: {e}", start.elapsed())
            });
            assert!(&got == bytes, "read {reads} of {rel} from worker {w} returned other bytes");
        }
        reads += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(reads >= files.len(), "every file was read during the outage ({reads} rounds)");
    c.etcd.start_again();

    // Nothing was restarted: the same processes are ONLINE again once etcd is back.
    c.wait_all_online_within(RECOVERY_CAP);
    assert!(c.workers_running(), "no worker process exited");
    for (rel, bytes) in &files {
        assert_eq!(&cat(&c, &format!("/data/{rel}"), &[]), bytes, "read of {rel} after the outage");
    }

    // The membership is followed again, not just readable: a worker that leaves now drops off the
    // coordinator's list and off the other workers' rings.
    let gone = owners[0];
    let path = format!("/data/{}", files[0].0);
    c.stop_worker(gone, "-INT");
    wait_until("the stopped worker is OFFLINE after the outage", CAP, || {
        (c.status_of(gone).ok()?.as_deref() == Some("OFFLINE")).then_some(())
    });
    let asked = (gone + 1) % 3;
    wait_until("another worker's ring drops the stopped worker", CAP, || {
        let named = http::node_of(&c.workers[asked].url(), &path).ok()?;
        (named != c.workers[gone].address()).then_some(())
    });
}

#[test]
fn a_coordinator_restart_loses_no_mount() {
    let mut c = Cluster::start(2);
    c.mount_data();
    let content = c.write_file("m/a.txt", 10_000, 7);

    for signal in ["-INT", "-9"] {
        c.stop_coordinator(signal);
        c.start_coordinator();
        let v: serde_json::Value =
            serde_json::from_str(&c.ok(&["--json", "mount", "list"])).expect("JSON from mount list");
        let mounts: Vec<(String, String)> = v["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|m| {
                let path = m["path"].as_str().unwrap_or_default().trim_end_matches('/').to_string();
                (path, m["ufs"].as_str().unwrap_or_default().trim_end_matches('/').to_string())
            })
            .collect();
        assert_eq!(mounts, [("/data".to_string(), c.ufs_uri(""))], "after a restart on {signal}: {v}");
        assert!(c.ok(&["mount", "list"]).contains("/data"), "the text listing too");
        c.wait_all_online();
    }

    // The workers still resolve the mount, and read through it.
    for (i, w) in c.workers.iter().enumerate() {
        let info = http::get_ok(&format!("{}/v1/info?path=/data/m/a.txt", w.url())).unwrap_or_else(|e| panic!("{e}"));
        let info: serde_json::Value = serde_json::from_slice(&info).expect("JSON file-info");
        assert_eq!(info[0]["mLength"], 10_000, "worker {i}: {info}");
        assert_eq!(info[0]["mUfsPath"].as_str(), Some(c.ufs_uri("m/a.txt").as_str()), "worker {i}: {info}");
    }
    assert_eq!(cat(&c, "/data/m/a.txt", &[]), content);

    // The restarted coordinator writes to the same etcd: a new mount reaches the workers.
    let more = tempfile::tempdir().expect("a second UFS");
    std::fs::write(more.path().join("b.txt"), b"more bytes").expect("write a UFS file");
    c.ok(&["mount", "add", "/more", &format!("file://{}", more.path().display())]);
    owner(&c, 1, "/more/b.txt");
    assert_eq!(cat(&c, "/more/b.txt", &[]), b"more bytes");
}
