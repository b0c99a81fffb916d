//! `loam mount add|list|remove`.

use super::http::Ctx;
use anyhow::anyhow;
use clap::Subcommand;
use loam_core::coordinator_api::{MountPoint, Results, StatusBody};
use reqwest::Method;
use std::collections::BTreeMap;

/// Mount table commands.
#[derive(Subcommand, Debug)]
pub enum MountCommand {
    /// Mount a UFS at a cluster path: `loam mount add /data s3://bucket/prefix --option s3.endpoint=…`.
    Add {
        /// Cluster path (a direct child of `/`).
        path: String,
        /// UFS URI (`s3://bucket/prefix`, `file:///srv/data`).
        ufs: String,
        /// Mount option `key=value` (repeatable), e.g. `s3a.accessKeyId=…`.
        #[arg(long = "option", short = 'o')]
        options: Vec<String>,
    },
    /// List mounts.
    List,
    /// Remove a mount.
    Remove {
        /// Cluster path.
        path: String,
    },
}

/// Runs a mount command.
pub async fn run(ctx: &Ctx, c: MountCommand) -> anyhow::Result<()> {
    match c {
        MountCommand::Add { path, ufs, options } => {
            let mut opts = BTreeMap::new();
            for o in options {
                let (k, v) = o.split_once('=').ok_or_else(|| anyhow!("mount option {o:?} is not key=value"))?;
                opts.insert(k.to_string(), v.to_string());
            }
            let body = MountPoint { path: path.clone(), ufs: ufs.clone(), options: opts };
            let r: StatusBody = ctx.send(Method::POST, "mount", &body).await?;
            ctx.print(&r, || format!("mounted {ufs} at {path}"))
        }
        MountCommand::List => {
            let r: Results<MountPoint> = ctx.get("mount", &[]).await?;
            ctx.print(&r, || {
                r.results
                    .iter()
                    .map(|m| {
                        let opts: Vec<String> = m.options.iter().map(|(k, v)| format!("{k}={v}")).collect();
                        format!("{:<20} {:<40} {}", m.path, m.ufs, opts.join(","))
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        MountCommand::Remove { path } => {
            let r: StatusBody = ctx.send(Method::DELETE, "mount", &serde_json::json!({ "path": path })).await?;
            ctx.print(&r, || format!("unmounted {path}"))
        }
    }
}
