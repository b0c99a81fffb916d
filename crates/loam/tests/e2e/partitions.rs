//! Partitions between real processes on separate "machines" (issue 13): etcd, a Coordinator and three
//! workers, each in a network namespace of its own with its own address (`loam_testsupport::netns`), every
//! worker on the default ports (28080, 29998), and a client host that talks to them with `curl` and
//! `alluxiofs`. Faults are nftables rules inside the namespaces. What each side does is written in
//! docs/SEMANTICS.md ("Partitions"); these tests assert it: no wrong byte on the data path, no lost job
//! (`jobs.rs`, checked by every test once its faults are healed), and the Coordinator's view right while
//! cut off and again within the lease TTL plus 5 s after the partition heals.
//!
//! - `sim.rs`: the cluster on its hosts; `jobs.rs`: the jobs a test submits and the "no lost job" check;
//! - here: cuts between a worker, etcd, the Coordinator and the client, and loss on the client's link;
//! - `alluxiofs.rs`: the `alluxiofs` client on the client host against the three workers, through a
//!   worker cut from etcd and one cut from the client;
//! - `etcd_loss.rs`: packet loss on every worker's link to etcd while a load runs and readers read.

mod alluxiofs;
mod etcd_loss;
mod jobs;
mod sim;

use self::jobs::Expect;
use self::sim::{CLIENT, COORDINATOR, ETCD, SETTLE, WORKERS, start, start_with};
use crate::cluster::wait_until;
use loam_testsupport::data::content;
use std::time::{Duration, Instant};

/// `count` files `<prefix><i>.bin` of about `size` bytes (each a little different).
fn files(prefix: &str, count: usize, size: usize, seed: u32) -> Vec<(String, Vec<u8>)> {
    (0..count).map(|i| (format!("{prefix}{i}.bin"), content(size + i, seed + i as u32))).collect()
}

fn refs(files: &[(String, Vec<u8>)]) -> Vec<(&str, &[u8])> {
    files.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect()
}

#[test]
fn a_worker_cut_from_etcd_serves_its_clients_goes_offline_and_comes_back_when_healed() {
    let data = content(3 << 20, 7);
    let small = files("s", 6, 50_000, 70);
    let mut all = refs(&small);
    all.push(("f.bin", &data));
    let sim = start(&all);
    let worker = WORKERS[0];
    assert_eq!(sim.read(worker, "f.bin"), (200, data.clone()), "{}", sim.logs());
    sim.net.cut(worker, ETCD);
    // Its lease cannot be renewed: the Coordinator (which still reaches etcd) sees it OFFLINE.
    wait_until("the cut worker OFFLINE", SETTLE, || sim.status_of(worker).filter(|s| s == "OFFLINE"));
    // A load now is planned on the two workers the ring still has, and ends there.
    let id = sim.submit_load(r#"{"paths": ["/data"]}"#, Expect::Succeeded);
    // Its clients still reach it, and it serves the right bytes: the data path never waits on etcd.
    for _ in 0..3 {
        assert_eq!(sim.read(worker, "f.bin"), (200, data.clone()), "served while cut from etcd");
    }
    assert_eq!(sim.read(WORKERS[1], "f.bin"), (200, data.clone()), "the others serve too");
    sim.job_end(&id);
    sim.net.heal(worker, ETCD);
    let healed = Instant::now();
    wait_until("the worker ONLINE again", SETTLE, || sim.status_of(worker).filter(|s| s == "ONLINE"));
    eprintln!("ONLINE again {:?} after the heal", healed.elapsed());
    assert_eq!(sim.read(worker, "f.bin"), (200, data), "{}", sim.logs());
    sim.assert_no_lost_job();
}

#[test]
fn a_coordinator_cut_from_etcd_answers_errors_while_workers_serve_and_recovers_when_healed() {
    let data = content(1 << 20, 8);
    let more = files("g", 6, 200_000, 80);
    let mut all = refs(&more);
    all.push(("g.bin", &data));
    let sim = start(&all);
    // A load slowed down (256 KiB/s per worker) so that it runs while the Coordinator is cut off: it
    // reaches the workers over HTTP, and its end is stored once the link heals.
    let id = sim.submit_load(r#"{"paths": ["/data"], "options": {"bandwidth": 262144}}"#, Expect::Succeeded);
    sim.net.cut(COORDINATOR, ETCD);
    // Its API cannot read the store: an error status (never a made-up answer); the data path is untouched.
    wait_until("the Coordinator's API fails", SETTLE, || sim.nodes().is_none().then_some(()));
    eprintln!("the job while the Coordinator is cut off: {:?}", sim.job(&id).map(|j| j["state"].clone()));
    // A submission it cannot store is refused, and leaves no job behind (checked by `assert_no_lost_job`).
    let url = format!("{}/api/v1/load", sim.coordinator());
    let body = r#"{"paths": ["/data/g.bin"]}"#;
    let (status, answer) = sim.curl(&["-X", "POST", "-H", "Content-Type: application/json", "-d", body, &url]);
    assert_ne!(status, 200, "a load submitted while the store is out of reach: {}", String::from_utf8_lossy(&answer));
    eprintln!("a load submitted while cut off: {status} {}", String::from_utf8_lossy(&answer));
    for w in WORKERS {
        assert_eq!(sim.read(w, "g.bin"), (200, data.clone()), "worker on host {w} while the Coordinator is cut off");
    }
    sim.net.heal(COORDINATOR, ETCD);
    sim.wait_all_online("the Coordinator sees three workers ONLINE again");
    sim.assert_no_lost_job();
}

#[test]
fn reads_through_a_lossy_link_are_slow_but_right() {
    let data = content(2 << 20, 9);
    let small = files("h", 4, 100_000, 90);
    let mut all = refs(&small);
    all.push(("h.bin", &data));
    let sim = start(&all);
    sim.net.loss(WORKERS[1], 20);
    // Everything the worker receives is lossy, the Coordinator's batches too: the load still ends.
    sim.submit_load(r#"{"paths": ["/data"]}"#, Expect::Succeeded);
    for _ in 0..3 {
        assert_eq!(sim.read(WORKERS[1], "h.bin"), (200, data.clone()), "20 % of the packets lost, no byte wrong");
    }
    sim.net.heal(WORKERS[1], CLIENT);
    sim.assert_no_lost_job();
}

#[test]
fn a_worker_cut_from_the_coordinator_stays_online_and_gets_its_files_once_healed() {
    let files = files("f", 12, 40_000, 0);
    // Long enough a window that the job still retries the cut worker when the link heals.
    let sim = start_with(&refs(&files), &["--job-retry-window", "60s"]);
    let worker = sim.a_worker_owning_some(&files);
    sim.net.cut(worker, COORDINATOR);
    let id = sim.submit_load(r#"{"paths": ["/data"]}"#, Expect::Succeeded);
    // The other workers' files load; the cut worker's batches hang or fail as unreachable, and the job keeps
    // them (retried for its window) instead of failing them.
    let j = wait_until("the other workers' files loaded", SETTLE, || {
        sim.job(&id).filter(|j| j["loadedNonEmptyFiles"].as_u64() >= Some(1))
    });
    assert_eq!((j["state"].as_str(), j["failedFiles"].as_u64()), (Some("RUNNING"), Some(0)), "{j}");
    // Give the cut worker's batches time to fail (or hang) while cut; none of its files may be loaded yet.
    std::thread::sleep(Duration::from_secs(2));
    let j = sim.job(&id).unwrap();
    assert_eq!(j["state"], "RUNNING", "the job waits for the cut worker: {j}");
    assert!(j["loadedNonEmptyFiles"].as_u64() < Some(files.len() as u64), "the cut worker's files wait: {j}");
    // The worker still renews its lease with etcd: the cluster sees it ONLINE, and it owns its files still.
    assert_eq!(sim.status_of(worker).as_deref(), Some("ONLINE"), "{}", sim.logs());
    sim.net.heal(worker, COORDINATOR);
    sim.assert_no_lost_job();
    // Every file reads back right through the cut worker.
    for (name, data) in &files {
        assert_eq!(sim.read(worker, name), (200, data.clone()), "{name}");
    }
}

#[test]
fn a_cut_that_outlasts_the_retry_window_fails_only_the_cut_workers_files() {
    let files = files("f", 12, 30_000, 50);
    let sim = start_with(&refs(&files), &["--job-retry-window", "3s"]);
    let worker = sim.a_worker_owning_some(&files);
    sim.net.cut(worker, COORDINATOR);
    let id = sim.submit_load(r#"{"paths": ["/data"]}"#, Expect::FailedOn(worker));
    // The job ends while the cut lasts, with the cut worker's files failed and every other file loaded.
    let done = sim.job_end(&id);
    assert_eq!(done["state"], "FAILED", "{done}");
    sim.net.heal(worker, COORDINATOR);
    sim.assert_no_lost_job();
}
