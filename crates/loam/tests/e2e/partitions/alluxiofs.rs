//! The unmodified `alluxiofs==1.1.17` client on the client host, against the three workers on hosts of
//! their own (every one on the default ports, as the client needs: it always reads port 29998 of the
//! owner `/v1/node` names). `tests/py/alluxiofs_partitions.py` writes a file for each (owner, entry
//! worker) pair and reads them in phases that this test drives between faults (its docstring says what
//! each phase checks):
//!
//! 1. healthy: every file served by the workers (files owned by each of the three), right bytes;
//! 2. a worker cut from etcd: `OFFLINE` on the others' rings but reachable by the client: every file still
//!    served by the workers, no fallback, right bytes; healed, `ONLINE` within the lease TTL plus 5 s;
//! 3. the same worker cut from the client (still `ONLINE`): reads of files whose entry or owner is the cut
//!    worker fall back to the client's `file` target with the right bytes, every other file is served by
//!    the workers; healed, every file is served again.
//!
//! The client host gives up a TCP connect after one SYN retry (`net.ipv4.tcp_syn_retries=1`, its own
//! setting): alluxiofs's `requests` calls have no timeout, so with the default (6) each call to the cut
//! worker would wait about two minutes before failing.

use super::sim::{CLIENT, ETCD, HTTP_PORT, SETTLE, WORKERS, start};
use crate::alluxiofs::python::Script;
use crate::cluster::wait_until;
use serde_json::json;
use std::time::{Duration, Instant};

/// How long one phase may take (imports, writes, reads through fallbacks) on a loaded machine.
const PHASE_CAP: Duration = Duration::from_secs(180);

/// Runs `phase` in the script; what it printed about it.
fn phase(script: &mut Script, phase: &str) -> serde_json::Value {
    script.send(phase);
    let line = script.line_starting("OK ", PHASE_CAP);
    let rest = line.strip_prefix(&format!("OK {phase} ")).unwrap_or_else(|| panic!("{phase}: {line}"));
    serde_json::from_str(rest).unwrap_or_else(|e| panic!("{phase}: {e}: {rest}"))
}

#[test]
fn alluxiofs_reads_from_three_hosts_through_an_etcd_cut_and_falls_back_around_a_client_cut() {
    let sim = start(&[]);
    sim.net.sysctl(CLIENT, "net.ipv4.tcp_syn_retries", "1");
    let victim = WORKERS[1];
    let hosts: Vec<String> = WORKERS.iter().map(|w| sim.net.host(*w).addr.to_string()).collect();
    let plan = json!({
        "workers": hosts,
        "http_port": HTTP_PORT,
        "victim": sim.net.host(victim).addr.to_string(),
        "ufs_dir": sim.ufs.display().to_string(),
        "ufs_uri": sim.uri("").trim_end_matches('/'),
    });
    let ns = sim.net.host(CLIENT).ns.clone();
    let launcher = ["/usr/sbin/ip", "netns", "exec", ns.as_str()];
    let mut script = Script::start_as(&launcher, "alluxiofs_partitions.py", "run", &plan, sim.dir.path());

    let healthy = phase(&mut script, "healthy");
    assert_eq!(healthy["owners"], json!(hosts), "files owned by each of the three workers were read: {healthy}");

    sim.net.cut(victim, ETCD);
    wait_until("the victim OFFLINE", SETTLE, || sim.status_of(victim).filter(|s| s == "OFFLINE"));
    let cut = phase(&mut script, "etcd_cut");
    eprintln!("alluxiofs with a worker cut from etcd: {cut}");
    sim.net.heal(victim, ETCD);
    let healed = Instant::now();
    sim.wait_all_online("the victim ONLINE again");
    eprintln!("ONLINE again {:?} after the heal", healed.elapsed());
    phase(&mut script, "healthy");

    sim.net.cut(victim, CLIENT);
    let cut = phase(&mut script, "client_cut");
    eprintln!("alluxiofs with a worker cut from the client: {cut}");
    assert_eq!(cut["served"], 4, "the files neither entered nor owned by the cut worker: {cut}");
    assert_eq!(sim.status_of(victim).as_deref(), Some("ONLINE"), "the cut worker still reaches etcd");
    sim.net.heal(victim, CLIENT);
    phase(&mut script, "healthy");

    script.send("done");
    let out = script.finish(PHASE_CAP);
    assert_eq!(out["phases"], json!(["healthy", "etcd_cut", "healthy", "client_cut", "healthy"]), "{out}");
    sim.assert_no_lost_job();
}
