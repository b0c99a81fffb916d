//! Packet loss on the link between every worker and etcd (and only there: the client, the Coordinator
//! and the workers among themselves talk over clean links) while a load runs and readers read.
//!
//! Keepalives and watches are TCP (gRPC): lost segments are retransmitted, so a keepalive arrives late
//! rather than not at all, and a lease lapses only when its renewals are late by a whole TTL. The test
//! asserts what docs/SEMANTICS.md ("Partitions") promises either way: no wrong byte, the load ends
//! `SUCCEEDED` with every file cached (a worker whose lease lapsed has its files re-planned onto the live
//! owners), membership right again within the lease TTL plus 5 s once the loss is removed, and no worker
//! left `OFFLINE`. It prints how often the Coordinator saw a worker `OFFLINE` during the loss.

use super::jobs::Expect;
use super::sim::{ETCD, LEASE_TTL, Sim, WORKERS, start};
use super::{files, refs};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The share of packets lost each way on every worker's link to etcd, in percent.
const LOSS: u32 = 25;
/// How long the loss lasts at least: a few lease renewals (every TTL / 3) per worker.
const LOSSY_FOR: Duration = Duration::from_secs(3 * LEASE_TTL);

/// What the readers saw: reads right, reads that failed (status), bytes wrong.
#[derive(Default, Debug)]
struct Reads {
    right: usize,
    failed: BTreeMap<u16, usize>,
    wrong: Vec<String>,
}

/// Reads every file through every worker in turn until `stop`, comparing each byte.
fn read_until(sim: &Sim, files: &[(String, Vec<u8>)], stop: &AtomicBool) -> Reads {
    let mut out = Reads::default();
    for round in 0.. {
        for (i, (name, data)) in files.iter().enumerate() {
            if stop.load(Ordering::SeqCst) {
                return out;
            }
            let w = WORKERS[(round + i) % WORKERS.len()];
            match sim.read(w, name) {
                (200, body) if body == *data => out.right += 1,
                (200, body) => out.wrong.push(format!("{name} from host {w}: {} bytes", body.len())),
                (status, _) => *out.failed.entry(status).or_default() += 1,
            }
        }
    }
    out
}

#[test]
fn loss_between_the_workers_and_etcd_fails_no_file_and_membership_settles() {
    let files = files("l", 24, 150_000, 300);
    let sim = start(&refs(&files));
    for w in WORKERS {
        sim.net.loss_between(w, ETCD, LOSS);
    }
    let lossy = Instant::now();
    // Slowed down (512 KiB/s per worker) so that the load runs through several lease renewals.
    let id = sim.submit_load(r#"{"paths": ["/data"], "options": {"bandwidth": 524288}}"#, Expect::Succeeded);
    let stop = AtomicBool::new(false);
    let (reads, offline) = std::thread::scope(|s| {
        let readers = [s.spawn(|| read_until(&sim, &files, &stop)), s.spawn(|| read_until(&sim, &files, &stop))];
        // The Coordinator's link to etcd is clean: its view is etcd's.
        let mut offline: BTreeMap<String, usize> = BTreeMap::new();
        let mut ended = false;
        while !ended || lossy.elapsed() < LOSSY_FOR {
            for (addr, status) in sim.nodes().unwrap_or_default() {
                if status != "ONLINE" {
                    *offline.entry(addr).or_default() += 1;
                }
            }
            ended = ended || sim.job(&id).is_some_and(|j| j["state"] != "RUNNING" && j["state"] != "VERIFYING");
            std::thread::sleep(Duration::from_millis(100));
        }
        stop.store(true, Ordering::SeqCst);
        let reads: Vec<Reads> = readers.into_iter().map(|r| r.join().expect("a reader")).collect();
        (reads, offline)
    });
    let lasted = lossy.elapsed();
    for w in WORKERS {
        sim.net.heal(w, ETCD);
    }
    let healed = Instant::now();
    sim.wait_all_online("every worker ONLINE once the loss is removed");
    eprintln!(
        "{LOSS} % loss each way for {lasted:?}: OFFLINE sightings (100 ms polls) {offline:?}; \
         every worker ONLINE {:?} after the heal; reads {reads:?}",
        healed.elapsed()
    );
    for r in &reads {
        assert!(r.wrong.is_empty(), "wrong bytes: {:?}\n{}", r.wrong, sim.logs());
        assert!(r.failed.is_empty(), "reads failed (status: count) {:?}\n{}", r.failed, sim.logs());
        assert!(r.right > 0, "the readers read");
    }
    sim.assert_no_lost_job();
    // Every file reads right through every worker once the loss is gone.
    for (name, data) in &files {
        for w in WORKERS {
            assert_eq!(sim.read(w, name), (200, data.clone()), "{name} from host {w}");
        }
    }
}
