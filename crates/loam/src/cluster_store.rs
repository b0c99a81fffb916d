//! Which cluster store a process uses. etcd when endpoints are given (a distributed cluster: every
//! process, and the CLI, talks to the same etcd); otherwise the embedded store, a redb file under the
//! data directory, which only one process can open (`loam local`, a single-node `loam coordinator`).
//! The global `--etcd` and `--cluster-name` flags, and those of etcd's TLS and user (`--etcd-ca-cert`,
//! `--etcd-cert`, `--etcd-key`, `--etcd-user`, `--etcd-password-file`), live here since every command
//! that touches the store reads them; [`connect_etcd`] is the one place a process connects to etcd.

use anyhow::Context;
use clap::Args;
use loam_config::{ConfigError, NodeSettings};
use loam_core::membership::DEFAULT_CLUSTER_NAME;
use loam_store::{ClusterStore, Election, EmbeddedStore, EtcdOptions, EtcdSecurity, EtcdStore, StoreError};
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
    /// etcd's TLS and user.
    #[command(flatten)]
    pub etcd_security: EtcdSecurityFlags,
}

/// How a process proves itself to etcd and checks it: TLS files and an etcd user (global flags).
#[derive(Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct EtcdSecurityFlags {
    /// CA certificate (PEM) that etcd's server certificate must chain to; given, or an https:// endpoint,
    /// turns TLS on (without it: the system roots).
    #[arg(long, global = true, env = "LOAM_ETCD_CA_CERT", value_name = "FILE")]
    pub etcd_ca_cert: Option<PathBuf>,
    /// Client certificate (PEM) presented to etcd.
    #[arg(long, global = true, env = "LOAM_ETCD_CERT", value_name = "FILE")]
    pub etcd_cert: Option<PathBuf>,
    /// Private key (PEM) of --etcd-cert.
    #[arg(long, global = true, env = "LOAM_ETCD_KEY", value_name = "FILE")]
    pub etcd_key: Option<PathBuf>,
    /// etcd user to authenticate as (its password from --etcd-password-file).
    #[arg(long, global = true, env = "LOAM_ETCD_USER", value_name = "NAME")]
    pub etcd_user: Option<String>,
    /// File holding the etcd user's password (a password is never a flag value).
    #[arg(long, global = true, env = "LOAM_ETCD_PASSWORD_FILE", value_name = "FILE")]
    pub etcd_password_file: Option<PathBuf>,
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

    /// etcd's TLS and user from the flags alone (`loam fuse`, `loam fs`: no config file).
    pub fn security(&self) -> EtcdSecurity {
        let f = &self.etcd_security;
        EtcdSecurity {
            ca_cert: f.etcd_ca_cert.clone(),
            cert: f.etcd_cert.clone(),
            key: f.etcd_key.clone(),
            user: f.etcd_user.clone(),
            password_file: f.etcd_password_file.clone(),
        }
    }

    /// The flags' etcd TLS and user as node settings, to layer over a config file's keys.
    pub fn security_settings(&self) -> NodeSettings {
        let f = self.etcd_security.clone();
        NodeSettings {
            etcd_ca_cert: f.etcd_ca_cert,
            etcd_cert: f.etcd_cert,
            etcd_key: f.etcd_key,
            etcd_user: f.etcd_user,
            etcd_password_file: f.etcd_password_file,
            ..NodeSettings::default()
        }
    }
}

/// etcd's TLS and user from merged node settings.
pub fn node_security(node: &NodeSettings) -> EtcdSecurity {
    EtcdSecurity {
        ca_cert: node.etcd_ca_cert.clone(),
        cert: node.etcd_cert.clone(),
        key: node.etcd_key.clone(),
        user: node.etcd_user.clone(),
        password_file: node.etcd_password_file.clone(),
    }
}

/// Where the cluster state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreBackend {
    /// A distributed cluster's etcd: its endpoints, TLS and user.
    Etcd(Vec<String>, EtcdSecurity),
    /// The embedded store in this file.
    Embedded(PathBuf),
}

impl StoreBackend {
    /// etcd when `node` names endpoints, else the embedded store under `data_dir`.
    pub fn choose(node: &NodeSettings, data_dir: &Path) -> Self {
        match node.etcd.clone().unwrap_or_default() {
            e if e.is_empty() => Self::Embedded(data_dir.join(EMBEDDED_STORE_FILE)),
            e => Self::Etcd(e, node_security(node)),
        }
    }

    /// Opens (embedded) or connects to (etcd) the store.
    pub async fn open(&self) -> anyhow::Result<Arc<dyn ClusterStore>> {
        Ok(self.open_with_election().await?.0)
    }

    /// The store and, on etcd, its leader election (`None`: the embedded store's single process leads).
    pub async fn open_with_election(&self) -> anyhow::Result<(Arc<dyn ClusterStore>, Option<Arc<dyn Election>>)> {
        match self {
            Self::Etcd(endpoints, security) => {
                let store = connect_etcd_store(endpoints, security).await?;
                Ok((store.clone(), Some(store)))
            }
            Self::Embedded(path) => Ok((open_embedded(path)?, None)),
        }
    }
}

impl fmt::Display for StoreBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Etcd(e, _) => write!(f, "etcd {}", e.join(",")),
            Self::Embedded(p) => write!(f, "embedded {}", p.display()),
        }
    }
}

/// Connects to etcd at `endpoints` with its TLS and user; a TLS or authentication failure is an error here.
pub async fn connect_etcd(endpoints: &[String], security: &EtcdSecurity) -> anyhow::Result<Arc<dyn ClusterStore>> {
    Ok(connect_etcd_store(endpoints, security).await?)
}

pub(crate) async fn connect_etcd_store(
    endpoints: &[String],
    security: &EtcdSecurity,
) -> anyhow::Result<Arc<EtcdStore>> {
    let options = EtcdOptions { security: security.clone(), ..EtcdOptions::default() };
    match EtcdStore::connect(endpoints.to_vec(), options).await {
        Ok(store) => Ok(store),
        // etcd answered and refused (a wrong password, an untrusted server, a refused client certificate),
        // or the endpoints are unusable: settings that cannot be used, exit 2 as a bad command line does.
        Err(StoreError::Other(e)) => Err(ConfigError::Invalid(format!("etcd: {e}")).into()),
        Err(e) => Err(anyhow::Error::new(e).context(format!("connecting to etcd at {}", endpoints.join(",")))),
    }
}

/// Opens the embedded store at `path`, creating its directory.
pub fn open_embedded(path: &Path) -> anyhow::Result<Arc<dyn ClusterStore>> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        loam_core::private_fs::create_dir_all(dir)
            .with_context(|| format!("creating the data directory {}", dir.display()))?;
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
        let node = |etcd: Option<Vec<String>>| NodeSettings { etcd, ..NodeSettings::default() };
        assert_eq!(StoreBackend::choose(&node(None), d), StoreBackend::Embedded("/data/cluster.redb".into()));
        let e = StoreBackend::choose(&node(Some(vec!["http://a:2379".into()])), d);
        assert_eq!(e, StoreBackend::Etcd(vec!["http://a:2379".into()], EtcdSecurity::default()));
        assert_eq!(e.to_string(), "etcd http://a:2379");
    }

    #[test]
    fn flags_split_and_default() {
        let f = ClusterFlags { etcd: vec!["http://a:1, ".into(), "http://b:1".into()], ..Default::default() };
        assert_eq!(f.endpoints(), ["http://a:1", "http://b:1"]);
        assert_eq!(f.cluster_name(), DEFAULT_CLUSTER_NAME);
    }

    #[tokio::test]
    async fn the_embedded_store_is_created_under_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let b = StoreBackend::choose(&NodeSettings::default(), &dir.path().join("nested"));
        let store = b.open().await.unwrap();
        store.put("/k", bytes::Bytes::from_static(b"v"), None).await.unwrap();
        assert!(dir.path().join("nested/cluster.redb").exists());
    }
}
