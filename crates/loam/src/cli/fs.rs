//! `loam fs ls|stat|cat|head`: paths are cluster paths (`/data/x`) or UFS URIs; reads go straight to
//! the worker that owns the file on the ring (then its replicas), never through the Coordinator.

use super::http::Ctx;
use anyhow::Context;
use clap::Subcommand;
use futures::StreamExt;
use loam_client::{Client, MembershipView, membership::fetch_nodes};
use loam_core::coordinator_api::{MountPoint, Results};
use loam_core::hash_ring::DEFAULT_VIRTUAL_NODES;
use loam_ufs::{Mount, MountTable};
use tokio::io::AsyncWriteExt;

/// File commands.
#[derive(Subcommand, Debug)]
pub enum FsCommand {
    /// List a directory.
    Ls {
        /// Cluster path or UFS URI.
        path: String,
    },
    /// Show a file's metadata and how much of it is cached.
    Stat {
        /// Cluster path or UFS URI.
        path: String,
    },
    /// Write a file to stdout.
    Cat {
        /// Cluster path or UFS URI.
        path: String,
    },
    /// Write the first bytes of a file to stdout.
    Head {
        /// Cluster path or UFS URI.
        path: String,
        /// Number of bytes.
        #[arg(short = 'c', long, default_value_t = 1024)]
        bytes: u64,
    },
}

/// Resolves `path` through the Coordinator's mount table and builds a client over the live workers.
async fn open(ctx: &Ctx, path: &str) -> anyhow::Result<(Client, String)> {
    let mounts: Results<MountPoint> = ctx.get("mount", &[]).await?;
    let table = MountTable::from_mounts(
        mounts.results.into_iter().filter_map(|m| Mount::new(&m.path, &m.ufs, m.options).ok()),
    );
    let uri = table.resolve(path)?.ufs_uri;
    let workers = fetch_nodes(&ctx.http, &ctx.coordinator).await.context("listing the workers")?;
    anyhow::ensure!(!workers.is_empty(), "no worker is online");
    Ok((Client::new(ctx.http.clone(), MembershipView::fixed(workers, DEFAULT_VIRTUAL_NODES), None), uri))
}

/// Runs a file command.
pub async fn run(ctx: &Ctx, c: FsCommand) -> anyhow::Result<()> {
    match c {
        FsCommand::Ls { path } => {
            let (client, uri) = open(ctx, &path).await?;
            let entries = client.list(&uri).await?;
            ctx.print(&entries, || {
                entries
                    .iter()
                    .map(|e| {
                        let kind = if e.m_type == "directory" { 'd' } else { '-' };
                        format!("{kind} {:>10} {:>4}% {}", e.m_human_readable_file_size, e.m_in_alluxio_percentage, e.m_path)
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        FsCommand::Stat { path } => {
            let (client, uri) = open(ctx, &path).await?;
            let i = client.info(&uri).await?;
            ctx.print(&i, || {
                format!(
                    "path:     {}\nufs:      {}\ntype:     {}\nlength:   {} ({})\ncached:   {}%\netag:     {}\nmodified: {}",
                    i.m_path,
                    i.m_ufs_path,
                    i.m_type,
                    i.m_length,
                    i.m_human_readable_file_size,
                    i.m_in_alluxio_percentage,
                    i.m_content_hash,
                    loam_core::time::rfc3339_millis(
                        std::time::UNIX_EPOCH + std::time::Duration::from_millis(i.m_last_modification_time_ms.max(0) as u64)
                    ),
                )
            })
        }
        FsCommand::Cat { path } => copy_out(ctx, &path, u64::MAX).await,
        FsCommand::Head { path, bytes } => copy_out(ctx, &path, bytes).await,
    }
}

async fn copy_out(ctx: &Ctx, path: &str, len: u64) -> anyhow::Result<()> {
    let (client, uri) = open(ctx, path).await?;
    let mut body = client.read(&uri, 0, len);
    let mut out = tokio::io::stdout();
    while let Some(chunk) = body.next().await {
        out.write_all(&chunk?).await?;
    }
    out.flush().await?;
    Ok(())
}
