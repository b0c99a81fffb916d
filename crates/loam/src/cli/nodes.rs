//! `loam nodes`.

use super::http::Ctx;
use loam_core::coordinator_api::NodeList;

/// Lists the workers.
pub async fn run(ctx: &Ctx) -> anyhow::Result<()> {
    let r: NodeList = ctx.get("nodes", &[]).await?;
    ctx.print(&r, || {
        r.result
            .iter()
            .map(|n| format!("{:<48} {:<22} {}", n.identity, n.address, n.status))
            .collect::<Vec<_>>()
            .join("\n")
    })
}
