//! Which cluster store a process uses. etcd when endpoints are given (a distributed cluster: every
//! process, and the CLI, talks to the same etcd); otherwise the embedded store, a redb file under the
//! data directory, which only one process can open (`loam local`, a single-node `loam coordinator`).
//! The global `--etcd` and `--cluster-name` flags live here since every command that touches the store
//! reads them.

use anyhow::Context;
use clap::Args;
use loam_core::membership::DEFAULT_CLUSTER_NAME;
use loam_store::{ClusterStore, EmbeddedStore, EtcdOptions, EtcdStore};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The file name of the embedded store inside a data directory.
pub const EMBEDDED_STORE_FILE: &str = "cluster.redb";

/// The cluster flags every command shares.
#[derive(Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterFlags {
    /// etcd endpoints (comma-separated) of a distributed cluster, for `loam coordinator`, `loam worker`
    /// and `loam fs` (`loam local` always uses its embedded store).
    #[arg(long, global = true, env = "LOAM_ETCD", value_delimiter = ',', value_name = "URL[,URL...]")]
    pub etcd: Vec<String>,
    /// Cluster name in the membership keys [default: DefaultAlluxioCluster].
    #[arg(long, global = true, env = "LOAM_CLUSTER_NAME")]
    pub cluster_name: Option<String>,
}

impl ClusterFlags {
    /// The etcd endpoints given, trimmed, without empty entries.
    pub fn endpoints(&self) -> Vec<String> {
        loam_config::values::split_list(&self.etcd)
    }

    /// The cluster name, or the default.
    pub fn cluster_name(&self) -> &str {
        self.cluster_name.as_deref().unwrap_or(DEFAULT_CLUSTER_NAME)
    }
}

/// Where the cluster state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreBackend {
    /// A distributed cluster's etcd.
    Etcd(Vec<String>),
    /// The embedded store in this file.
    Embedded(PathBuf),
}

impl StoreBackend {
    /// etcd when `endpoints` is not empty, else the embedded store under `data_dir`.
    pub fn choose(endpoints: Vec<String>, data_dir: &Path) -> Self {
        if endpoints.is_empty() { Self::Embedded(data_dir.join(EMBEDDED_STORE_FILE)) } else { Self::Etcd(endpoints) }
    }

    /// Opens (embedded) or connects to (etcd) the store.
    pub async fn open(&self) -> anyhow::Result<Arc<dyn ClusterStore>> {
        match self {
            Self::Etcd(endpoints) => connect_etcd(endpoints).await,
            Self::Embedded(path) => open_embedded(path),
        }
    }
}

impl fmt::Display for StoreBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Etcd(e) => write!(f, "etcd {}", e.join(",")),
            Self::Embedded(p) => write!(f, "embedded {}", p.display()),
        }
    }
}

/// Connects to etcd at `endpoints`.
pub async fn connect_etcd(endpoints: &[String]) -> anyhow::Result<Arc<dyn ClusterStore>> {
    let store = EtcdStore::connect(endpoints.to_vec(), EtcdOptions::default())
        .await
        .with_context(|| format!("connecting to etcd at {}", endpoints.join(",")))?;
    Ok(store)
}

/// Opens the embedded store at `path`, creating its directory.
pub fn open_embedded(path: &Path) -> anyhow::Result<Arc<dyn ClusterStore>> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating the data directory {}", dir.display()))?;
    }
    let store = EmbeddedStore::open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_when_endpoints_are_given() {
        let d = Path::new("/data");
        assert_eq!(StoreBackend::choose(vec![], d), StoreBackend::Embedded("/data/cluster.redb".into()));
        let e = StoreBackend::choose(vec!["http://a:2379".into()], d);
        assert_eq!(e, StoreBackend::Etcd(vec!["http://a:2379".into()]));
        assert_eq!(e.to_string(), "etcd http://a:2379");
    }

    #[test]
    fn flags_split_and_default() {
        let f = ClusterFlags { etcd: vec!["http://a:1, ".into(), "http://b:1".into()], cluster_name: None };
        assert_eq!(f.endpoints(), ["http://a:1", "http://b:1"]);
        assert_eq!(f.cluster_name(), DEFAULT_CLUSTER_NAME);
    }

    #[tokio::test]
    async fn the_embedded_store_is_created_under_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let b = StoreBackend::choose(vec![], &dir.path().join("nested"));
        let store = b.open().await.unwrap();
        store.put("/k", bytes::Bytes::from_static(b"v"), None).await.unwrap();
        assert!(dir.path().join("nested/cluster.redb").exists());
    }
}
