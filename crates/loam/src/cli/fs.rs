//! `loam fs ls|stat|cat|head|locate`: paths are cluster paths (`/data/x`) or UFS URIs; reads go straight to
//! the worker that owns the file on the ring (then its replicas, then the UFS itself), never through the
//! Coordinator. Where the mount table and the ring come from (the Coordinator, etcd, or a static worker
//! list, and while etcd is down the view kept from the last command: `fs/kept_view.rs`) is decided in
//! `fs/session.rs`.

mod kept_view;
mod session;

use super::http::Ctx;
use crate::cluster_store::ClusterFlags;
use clap::{Args, Subcommand};
use futures::StreamExt;
pub use session::{Session, Sources};
pub(crate) use session::{mounts_from_coordinator, mounts_from_store};
use std::path::PathBuf;
use tokio::io::AsyncWriteExt;

/// `loam fs` and its flags.
#[derive(Args, Debug)]
pub struct FsArgs {
    /// A static worker list (one host:port per line, `#` comments) instead of the Coordinator's nodes or etcd.
    #[arg(long, global = true, env = "LOAM_WORKERS_FILE", value_name = "FILE")]
    pub workers_file: Option<PathBuf>,
    /// Fail a read when its workers fail, instead of reading the UFS directly.
    #[arg(long, global = true)]
    pub no_ufs_fallback: bool,
    /// The file command.
    #[command(subcommand)]
    pub command: FsCommand,
}

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
    /// Print the workers that hold a file, from the Coordinator's global file index.
    Locate {
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

impl FsCommand {
    /// The cluster path or UFS URI the command is about.
    pub fn path(&self) -> &str {
        match self {
            FsCommand::Ls { path }
            | FsCommand::Stat { path }
            | FsCommand::Locate { path }
            | FsCommand::Cat { path }
            | FsCommand::Head { path, .. } => path,
        }
    }
}

/// Runs a file command.
pub async fn run(ctx: &Ctx, cluster: &ClusterFlags, args: FsArgs) -> anyhow::Result<()> {
    // Locating needs only the Coordinator's index, not the ring or the mount table.
    if let FsCommand::Locate { path } = &args.command {
        return super::index::locate(ctx, path).await;
    }
    let sources =
        Sources { cluster: cluster.clone(), workers_file: args.workers_file, ufs_fallback: !args.no_ufs_fallback };
    let session = Session::open(ctx, &sources, args.command.path()).await?;
    let result = command(ctx, &session, args.command).await;
    session.close().await;
    result
}

async fn command(ctx: &Ctx, s: &Session, c: FsCommand) -> anyhow::Result<()> {
    match c {
        FsCommand::Ls { .. } => {
            let entries = s.client.list(&s.uri).await?;
            ctx.print(&entries, || {
                entries
                    .iter()
                    .map(|e| {
                        let kind = if e.m_type == "directory" { 'd' } else { '-' };
                        format!(
                            "{kind} {:>10} {:>4}% {}",
                            e.m_human_readable_file_size, e.m_in_alluxio_percentage, e.m_path
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        FsCommand::Stat { .. } => {
            let i = s.client.info(&s.uri).await?;
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
        FsCommand::Locate { path } => super::index::locate(ctx, &path).await,
        FsCommand::Cat { .. } => copy_out(s, u64::MAX).await,
        FsCommand::Head { bytes, .. } => copy_out(s, bytes).await,
    }
}

async fn copy_out(s: &Session, len: u64) -> anyhow::Result<()> {
    let mut body = s.client.read(&s.uri, 0, len);
    let mut out = tokio::io::stdout();
    while let Some(chunk) = body.next().await {
        out.write_all(&chunk?).await?;
    }
    out.flush().await?;
    Ok(())
}
