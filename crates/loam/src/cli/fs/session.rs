//! What a file command reads through: the mount table, the ring of workers, and the UFS fallback.
//!
//! Sources, by what the command line gives:
//!
//! | | mount table | ring | UFS fallback |
//! | --- | --- | --- | --- |
//! | `--etcd` | etcd, real options | followed from etcd's liveness records | every mount |
//! | neither | the Coordinator's mount API (secret options masked) | the Coordinator's nodes API | `file://` mounts only |
//!
//! `--workers-file` replaces the ring's source in either case. Without etcd the fallback is limited to
//! `file://` mounts because the Coordinator masks credentials, and an S3 read with masked keys would
//! fail with a misleading authorization error; local files need no credentials.
//!
//! With `--etcd`, what was read (mount points without options, the live workers) is kept on the user's
//! disk (`kept_view`); while etcd cannot be reached the command reads through that kept view instead,
//! with a warning that it may be stale (and the fallback limited to `file://` mounts, as without etcd).
//! A view with no worker is never kept: when etcd answers but lists no live worker (every lease expired
//! at once, the workers re-registering), the command reads through the kept view's workers, held in
//! the followed ring until etcd lists a worker again, and the kept view stays as it was.

use super::super::http::Ctx;
use super::kept_view;
use crate::cluster_store::{self, ClusterFlags};
use anyhow::{Context, bail};
use loam_client::membership::fetch_nodes;
use loam_client::reader::UfsFallback;
use loam_client::{Client, MembershipView, static_members};
use loam_core::ErrorKind;
use loam_core::coordinator_api::{MountPoint, Results};
use loam_core::hash_ring::DEFAULT_VIRTUAL_NODES;
use loam_core::store_keys::mounts_prefix;
use loam_store::{ClusterStore, StoreError, list_all};
use loam_ufs::mount_table::MOUNT_RECORD_VERSION;
use loam_ufs::{Mount, MountTable, UfsRegistry};
use std::path::PathBuf;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How file commands find workers and whether they may read the UFS themselves.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// etcd endpoints and cluster name.
    pub cluster: ClusterFlags,
    /// A static worker list replacing the ring's source.
    pub workers_file: Option<PathBuf>,
    /// Whether a read whose workers all fail may go to the UFS.
    pub ufs_fallback: bool,
}

/// A client for one command, with the UFS URI the command's path resolved to.
pub struct Session {
    /// The client.
    pub client: Client,
    /// The path's full UFS URI.
    pub uri: String,
    follower: Option<(watch::Sender<bool>, JoinHandle<()>)>,
}

impl Session {
    /// Resolves `path` and builds the client.
    pub async fn open(ctx: &Ctx, sources: &Sources, path: &str) -> anyhow::Result<Self> {
        let View { table, members, follower, real_options } = View::open(ctx, sources).await?;
        let resolved = table.resolve(path)?;
        let members = match &sources.workers_file {
            Some(file) => static_members::view(file, DEFAULT_VIRTUAL_NODES)?,
            None => members,
        };
        let real_options = real_options || resolved.mount.ufs_uri().scheme == "file";
        let fallback =
            (sources.ufs_fallback && real_options).then(|| UfsFallback { mounts: table, registry: UfsRegistry::new() });
        // With the fallback on, reads still work with no worker at all; without it, say so up front.
        let unservable = members.ring().is_empty() && fallback.is_none();
        let session =
            Self { client: Client::new(ctx.http.clone(), members, fallback), uri: resolved.ufs_uri, follower };
        if unservable {
            session.close().await;
            bail!("no worker is online");
        }
        Ok(session)
    }

    /// Stops following the membership.
    pub async fn close(self) {
        if let Some((stop, task)) = self.follower {
            let _ = stop.send(true);
            let _ = task.await;
        }
    }
}

/// The mount table and the ring a command reads through, and where they came from.
struct View {
    table: MountTable,
    members: MembershipView,
    follower: Option<(watch::Sender<bool>, JoinHandle<()>)>,
    /// Whether the mount options are the real ones (from etcd), so the UFS fallback can use any mount.
    real_options: bool,
}

impl View {
    /// From etcd (keeping what it read, `kept_view`) or, while etcd cannot be reached, from the view
    /// kept last time; from the Coordinator without etcd.
    async fn open(ctx: &Ctx, sources: &Sources) -> anyhow::Result<Self> {
        let endpoints = sources.cluster.endpoints();
        let cluster = sources.cluster.cluster_name();
        if endpoints.is_empty() {
            let table = mounts_from_coordinator(ctx).await?;
            let members = match &sources.workers_file {
                Some(_) => MembershipView::fixed(Vec::new(), DEFAULT_VIRTUAL_NODES),
                None => {
                    let workers = fetch_nodes(&ctx.coordinators).await.context("listing the workers")?;
                    MembershipView::fixed(workers, DEFAULT_VIRTUAL_NODES)
                }
            };
            return Ok(Self { table, members, follower: None, real_options: false });
        }
        match Self::from_etcd(sources, &endpoints, cluster).await {
            Ok(view) if sources.workers_file.is_some() => Ok(view),
            Ok(view) => {
                let ring = view.members.ring();
                let dir = kept_view::dir();
                if !ring.is_empty() {
                    let kept =
                        kept_view::KeptView::new(cluster, &endpoints, &view.table, ring.members().map(|(_, w)| w));
                    if let Some(dir) = dir
                        && let Err(e) = kept_view::save_in(&dir, &kept)
                    {
                        tracing::debug!("cannot keep the cluster view in {}: {e}", dir.display());
                    }
                } else if let Some((kept, file)) = dir.and_then(|d| kept_view::load_in(&d, cluster, &endpoints))
                    && !kept.workers.is_empty()
                {
                    // etcd lists no worker: their leases may be renewing (etcd paused past the TTL revokes
                    // them all at once). The kept workers are the best knowledge there is, held as the
                    // membership follower holds its own (`loam_client::membership`); the kept view stays.
                    eprintln!(
                        "warning: etcd lists no live worker; reading through the {} workers kept at {} (read {}), \
                         which may be stale",
                        kept.workers.len(),
                        file.display(),
                        kept.saved_at()
                    );
                    view.members.hold_last_known(kept.workers());
                }
                Ok(view)
            }
            Err(e) if etcd_unreachable(&e) => {
                let kept = kept_view::dir().and_then(|d| kept_view::load_in(&d, cluster, &endpoints));
                let Some((kept, file)) = kept else {
                    return Err(e.context("etcd is unreachable and no cluster view was kept from an earlier command"));
                };
                eprintln!(
                    "warning: etcd is unreachable ({e:#}); using the cluster view kept at {} ({} workers, read {}), \
                     which may be stale",
                    file.display(),
                    kept.workers.len(),
                    kept.saved_at()
                );
                let members = MembershipView::fixed(kept.workers(), DEFAULT_VIRTUAL_NODES);
                Ok(Self { table: kept.table(), members, follower: None, real_options: false })
            }
            Err(e) => Err(e),
        }
    }

    async fn from_etcd(sources: &Sources, endpoints: &[String], cluster: &str) -> anyhow::Result<Self> {
        let store = cluster_store::connect_etcd(endpoints, &sources.cluster.security()).await?;
        let table = mounts_from_store(store.as_ref(), cluster).await?;
        if sources.workers_file.is_some() {
            let members = MembershipView::fixed(Vec::new(), DEFAULT_VIRTUAL_NODES);
            return Ok(Self { table, members, follower: None, real_options: true });
        }
        let (stop, stopped) = watch::channel(false);
        let (members, task) = MembershipView::follow_store(store, cluster, DEFAULT_VIRTUAL_NODES, stopped)
            .await
            .context("reading the workers from etcd")?;
        Ok(Self { table, members, follower: Some((stop, task)), real_options: true })
    }
}

/// Whether `e` says etcd could not be reached (not that it refused us: that is a settings error).
fn etcd_unreachable(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<StoreError>().is_some_and(|s| s.kind() == ErrorKind::Unavailable))
}

/// The mount table as etcd holds it, with the real options (credentials included).
pub(crate) async fn mounts_from_store(store: &dyn ClusterStore, cluster: &str) -> anyhow::Result<MountTable> {
    let kvs = list_all(store, &mounts_prefix(cluster)).await.context("reading the mount table from etcd")?;
    let mounts = kvs.iter().filter_map(|kv| match serde_json::from_slice::<Mount>(&kv.value) {
        Ok(m) if m.version == MOUNT_RECORD_VERSION => Some(m),
        Ok(m) => {
            tracing::warn!(key = %kv.key, "ignoring a mount record of unknown version {}", m.version);
            None
        }
        Err(e) => {
            tracing::warn!(key = %kv.key, "ignoring an undecodable mount record: {e}");
            None
        }
    });
    Ok(MountTable::from_mounts(mounts))
}

/// The mount table the Coordinator lists (secret options masked).
pub(crate) async fn mounts_from_coordinator(ctx: &Ctx) -> anyhow::Result<MountTable> {
    let mounts: Results<MountPoint> = ctx.get("mount", &[]).await?;
    Ok(MountTable::from_mounts(mounts.results.into_iter().filter_map(|m| Mount::new(&m.path, &m.ufs, m.options).ok())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::sync::Arc;

    #[tokio::test]
    async fn mounts_from_the_store_keep_their_options_and_skip_bad_records() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ClusterStore> = cluster_store::open_embedded(&dir.path().join("c.redb")).unwrap();
        let opts = [("s3a.secretKey".to_string(), "real-secret".to_string())].into_iter().collect();
        let m = Mount::new("/s3", "s3://bucket/p", opts).unwrap();
        let key = loam_core::store_keys::mount_key("c", "s3");
        store.put(&key, serde_json::to_vec(&m).unwrap().into(), None).await.unwrap();
        let mut future = Mount::new("/f", "file:///tmp", Default::default()).unwrap();
        future.version = MOUNT_RECORD_VERSION + 1;
        store.put("/loam/c/mounts/f", serde_json::to_vec(&future).unwrap().into(), None).await.unwrap();
        store.put("/loam/c/mounts/junk", Bytes::from_static(b"{"), None).await.unwrap();
        let table = mounts_from_store(store.as_ref(), "c").await.unwrap();
        assert_eq!(table.len(), 1);
        let r = table.resolve("/s3/x/y").unwrap();
        assert_eq!(r.ufs_uri, "s3://bucket/p/x/y");
        assert_eq!(r.mount.options.get("s3a.secretKey").map(String::as_str), Some("real-secret"));
        assert!(mounts_from_store(store.as_ref(), "other").await.unwrap().is_empty());
    }
}
