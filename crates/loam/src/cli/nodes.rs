//! `loam nodes` (list the workers) and `loam nodes drain <id>`.

use super::http::Ctx;
use loam_core::cluster_ops_api::{DrainReport, DrainRequest};
use loam_core::coordinator_api::NodeList;

/// `loam nodes` sub-commands.
#[derive(clap::Subcommand, Debug)]
pub enum NodesCommand {
    /// Drain a worker: it leaves the ring and moves its cached files to their next owners, from itself
    /// (no UFS read). Waits until it ends; exit 0 when every file moved, 1 otherwise.
    Drain {
        /// The worker identity, `worker-<uuid>`.
        id: String,
    },
}

/// Lists the workers, or drains one.
pub async fn run(ctx: &Ctx, command: Option<NodesCommand>) -> anyhow::Result<()> {
    if let Some(NodesCommand::Drain { id }) = command {
        let report: DrainReport = ctx.send(reqwest::Method::POST, "nodes/drain", &DrainRequest { id }).await?;
        crate::worker_drain::print_report(&report, ctx.json)?;
        return crate::worker_drain::outcome(&report);
    }
    let r: NodeList = ctx.get("nodes", &[]).await?;
    ctx.print(&r, || {
        r.result
            .iter()
            .map(|n| format!("{:<48} {:<22} {}", n.identity, n.address, n.status))
            .collect::<Vec<_>>()
            .join("\n")
    })
}
