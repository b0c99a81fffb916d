//! `loam index list|add|remove` over the Coordinator's global file index (`/api/v1/file_index`), and
//! `loam fs locate PATH`, which asks the same index which workers hold a file.

use super::http::Ctx;
use clap::Subcommand;
use loam_core::cluster_ops_api::{FileLocation, IndexEntries, IndexFiles};
use loam_core::coordinator_api::Results;
use reqwest::Method;

/// Global file index commands.
#[derive(Subcommand, Debug)]
pub enum IndexCommand {
    /// List the cached files (UFS URIs), in order.
    List {
        /// Only URIs starting with this prefix (a UFS URI prefix, or a cluster path).
        #[arg(long)]
        prefix: Option<String>,
        /// Entries to skip.
        #[arg(long)]
        offset: Option<usize>,
        /// Most entries to print.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Add entries.
    Add {
        /// UFS URIs or cluster paths.
        #[arg(required = true)]
        files: Vec<String>,
    },
    /// Remove entries.
    Remove {
        /// UFS URIs or cluster paths.
        #[arg(required = true)]
        files: Vec<String>,
    },
}

/// Runs an index command.
pub async fn run(ctx: &Ctx, c: IndexCommand) -> anyhow::Result<()> {
    match c {
        IndexCommand::List { prefix, offset, limit } => {
            let (offset, limit) = (offset.map(|n| n.to_string()), limit.map(|n| n.to_string()));
            let query: Vec<(&str, &str)> =
                [("prefix", prefix.as_deref()), ("offset", offset.as_deref()), ("limit", limit.as_deref())]
                    .into_iter()
                    .filter_map(|(k, v)| v.map(|v| (k, v)))
                    .collect();
            let r: Results<String> = ctx.get("file_index", &query).await?;
            ctx.print(&r, || r.results.join("\n"))
        }
        IndexCommand::Add { files } => {
            let r: IndexEntries = ctx.send(Method::POST, "file_index", &IndexFiles { files }).await?;
            ctx.print(&r, || format!("{} entries added", r.entries))
        }
        IndexCommand::Remove { files } => {
            let r: IndexEntries = ctx.send(Method::DELETE, "file_index", &IndexFiles { files }).await?;
            ctx.print(&r, || format!("{} entries removed", r.entries))
        }
    }
}

/// `loam fs locate PATH`: the workers holding `path`, one `identity address` line each.
pub async fn locate(ctx: &Ctx, path: &str) -> anyhow::Result<()> {
    let r: FileLocation = ctx.get("file_index", &[("file", path)]).await?;
    ctx.print(&r, || {
        if r.workers.is_empty() {
            return format!("{}: indexed, held by no known worker", r.file);
        }
        r.workers.iter().map(|w| format!("{:<48} {}", w.identity, w.address)).collect::<Vec<_>>().join("\n")
    })
}
