//! `loam cache clear-stale [--stop]`: `/api/v1/cache`. Starts (or stops) clear-stale on every worker and
//! prints the workers that did not accept; exits non-zero when one did not.

use super::http::Ctx;
use anyhow::bail;
use clap::Subcommand;
use loam_core::cluster_ops_api::{CacheOp, CacheOpErrors};
use reqwest::Method;

/// Cache commands.
#[derive(Subcommand, Debug)]
pub enum CacheCommand {
    /// Drop, on every worker, the cached files it no longer owns under the current ring.
    ClearStale {
        /// Stop a running clear-stale instead.
        #[arg(long)]
        stop: bool,
        /// Owners kept per file (the first N workers of the ring).
        #[arg(long)]
        replicas: Option<u32>,
    },
}

/// Runs a cache command.
pub async fn run(ctx: &Ctx, c: CacheCommand) -> anyhow::Result<()> {
    let CacheCommand::ClearStale { stop, replicas } = c;
    let method = if stop { Method::DELETE } else { Method::POST };
    let r: CacheOpErrors =
        ctx.send(method, "cache", &CacheOp { op: "clear-stale".into(), replicas: replicas.filter(|_| !stop) }).await?;
    let what = if stop { "stop clear-stale" } else { "clear-stale" };
    ctx.print(&r, || {
        if r.errors.is_empty() {
            format!("{what}: every worker accepted")
        } else {
            r.errors.iter().map(|(host, e)| format!("{host}: {e}")).collect::<Vec<_>>().join("\n")
        }
    })?;
    if !r.errors.is_empty() {
        bail!("{what}: {} worker(s) did not accept", r.errors.len());
    }
    Ok(())
}
