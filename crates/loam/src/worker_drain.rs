//! `loam worker drain --config FILE`: the worker's Kubernetes `preStop` hook. It reads the worker's own
//! settings (the same flags, environment and file as `loam worker`: its HTTP port, TLS, cluster token),
//! asks the worker on this machine to drain (`POST /v1/drain` with the cluster token) and waits until the
//! drain ends. It prints the counts; the exit code is 0 when every cached file reached its next owner, 1
//! otherwise (and 2 for settings that cannot be used).
//!
//! The worker is reached at its bind address, or 127.0.0.1 when it binds every address (`0.0.0.0`, `::`).
//! A worker serving TLS must then present a certificate valid for that address.

use crate::assembly;
use crate::cluster_store::ClusterFlags;
use crate::worker_cmd::{Resolved, WorkerArgs};
use anyhow::Context;
use clap::ArgMatches;
use loam_core::cluster_ops_api::{DRAIN_PATH, DRAIN_TIMEOUT, DrainReport};
use std::net::IpAddr;

/// Drains the worker these settings describe; `Err` when some file did not move.
pub async fn run(
    args: WorkerArgs,
    cluster: ClusterFlags,
    coordinator: Option<String>,
    matches: Option<&ArgMatches>,
) -> anyhow::Result<()> {
    let resolved = Resolved::new(&args, &cluster, coordinator.as_deref(), matches)?;
    let mut plan = resolved.plan()?;
    plan.worker.auth = plan.worker.auth.require(&resolved.node, "loam worker drain")?;
    let w = &plan.worker;
    assembly::install_client_tls(&w.listener)?;
    let host = match w.host.parse::<IpAddr>() {
        Ok(ip) if ip.is_unspecified() => "127.0.0.1".to_string(),
        Ok(IpAddr::V6(ip)) => format!("[{ip}]"),
        _ if w.host.is_empty() => "127.0.0.1".to_string(),
        _ => w.host.clone(),
    };
    let base = format!("{}://{host}:{}", w.listener.scheme(), w.http_port);
    let peers = loam_client::PeerClient::build(w.auth.cluster_token.clone())?;
    eprintln!("draining the worker at {base}…");
    let url = format!("{base}{DRAIN_PATH}");
    let report: DrainReport =
        peers.post(&base, &url, &(), DRAIN_TIMEOUT).await.with_context(|| format!("draining the worker at {base}"))?;
    print_report(&report, false)?;
    outcome(&report)
}

/// Prints a drain's counts (JSON with `json`) and its failed files.
pub fn print_report(r: &DrainReport, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(r)?);
        return Ok(());
    }
    println!(
        "{}: {} files: {} moved ({} bytes), {} already on their next owner, {} failed",
        r.worker, r.files, r.moved_files, r.moved_bytes, r.present_files, r.failed_files
    );
    for f in &r.failures {
        println!("  failed {} (next owner {}): {}", f.uri, if f.owner.is_empty() { "none" } else { &f.owner }, f.error);
    }
    Ok(())
}

/// `Ok` when every file moved.
pub fn outcome(r: &DrainReport) -> anyhow::Result<()> {
    match r.failed_files {
        0 => Ok(()),
        n => anyhow::bail!("{n} of {} cached files did not reach their next owner", r.files),
    }
}
