//! The worker's settings group: its flags and config-file keys, and their defaults (the one place they
//! live; see `loam_config`). `loam worker` and `loam local` both flatten it, so every worker setting is
//! a flag of both. [`WorkerConfig::from_settings`] checks the merged settings and turns them into the
//! configuration the worker runs with; its errors name the key and where its value came from.

use crate::config::{DEFAULT_LEASE_TTL, DEFAULT_MAX_AGE, DEFAULT_PAGE_SIZE, WorkerConfig};
use crate::s3_api::{DEFAULT_S3_PORT, S3Config, S3Credentials};
use loam_config::{ByteSize, ConfigError, Group, HumaneDuration, Layered, NodeSettings, values};
use std::path::PathBuf;
use std::time::Duration;

/// Default worker HTTP API port.
pub const DEFAULT_HTTP_PORT: u16 = 28080;
/// Default disk cache capacity, over all cache directories.
pub const DEFAULT_CACHE_SIZE: u64 = 10 << 30;
/// Default memory tier.
pub const DEFAULT_MEMORY_SIZE: u64 = 256 << 20;

/// Settings of a cache worker (besides [`NodeSettings`]).
#[derive(clap::Args, serde::Serialize, serde::Deserialize, Debug, Clone, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct WorkerSettings {
    /// The Coordinators' URLs, for load forwarding (`/v1/load`) and file index reports; reads never need
    /// them. One URL, or several of a highly available Coordinator: `"URL,URL"` or a TOML array, tried in
    /// order, sticking to the one that answered (`loam_client::coordinator`). The CLI's global
    /// `--coordinator` flag (`LOAM_COORDINATOR`, comma-separated) sets it.
    #[arg(skip)]
    #[serde(default, deserialize_with = "values::string_list_with_empties", skip_serializing_if = "Option::is_none")]
    pub coordinator: Option<Vec<String>>,
    /// Worker HTTP API port (0: a free one); in `loam local`, worker i serves on this + i.
    #[arg(long, visible_alias = "worker-http-port", value_name = "PORT")]
    pub http_port: Option<u16>,
    /// S3 API port (0: a free one), advertised in the membership record; in `loam local`, worker i serves on this + i.
    #[arg(long, visible_alias = "worker-s3-port", value_name = "PORT")]
    pub s3_port: Option<u16>,
    /// Access key id S3 requests must be signed with (with --s3-secret-key).
    #[arg(long, env = "LOAM_S3_ACCESS_KEY")]
    pub s3_access_key: Option<String>,
    /// Secret key of --s3-access-key.
    #[arg(long, env = "LOAM_S3_SECRET_KEY", hide_env_values = true)]
    pub s3_secret_key: Option<String>,
    /// Serve reads without credentials: the worker's read API (GETs, no token) and unsigned S3 reads
    /// (GET, HEAD, listings), as the unmodified `alluxio` and `alluxiofs` clients send them. Writes, page
    /// POSTs and internal calls are never anonymous.
    #[arg(long, visible_alias = "s3-anonymous-read", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    #[serde(alias = "s3-anonymous-read")]
    pub anonymous_read: Option<bool>,
    /// How long an S3 multipart upload may stay unfinished before its parts are removed (a completed
    /// upload's result, which answers a repeated Complete, is kept as long).
    #[arg(long, value_name = "DURATION")]
    pub s3_multipart_expiry: Option<HumaneDuration>,
    /// Store a PutObject sent with `Transfer-Encoding: chunked` and no Content-Length, as RGW and MinIO
    /// do (AWS answers 411 MissingContentLength). Its body is spooled to the data directory before the
    /// signature can be checked: anyone who knows the access key id (not the secret) can make the worker
    /// hold up to 4 x 5 GiB of temporary disk until the check refuses them.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub s3_unsized_puts: Option<bool>,
    /// Disk cache capacity over all cache directories, e.g. 100GiB.
    #[arg(long, value_name = "SIZE")]
    pub cache_size: Option<ByteSize>,
    /// Memory tier, e.g. 4GiB; 0 for none.
    #[arg(long, value_name = "SIZE")]
    pub memory_size: Option<ByteSize>,
    /// A cache directory (repeatable; in a file, a path or a list) [default: <data-dir>/cache].
    #[arg(long, value_name = "DIR")]
    #[serde(default, deserialize_with = "values::path_list", skip_serializing_if = "Option::is_none")]
    pub cache_dir: Option<Vec<PathBuf>>,
    /// Page size.
    #[arg(long, value_name = "SIZE")]
    pub page_size: Option<ByteSize>,
    /// How long a cached file is trusted before it is re-validated against the UFS; 0: every read.
    #[arg(long, value_name = "DURATION")]
    pub max_age: Option<HumaneDuration>,
    /// Time between scans that evict data past its TTL.
    #[arg(long, value_name = "DURATION")]
    pub ttl_scan_interval: Option<HumaneDuration>,
    /// The liveness lease in etcd; the worker turns OFFLINE this long after it dies.
    #[arg(long, value_name = "DURATION")]
    pub lease_ttl: Option<HumaneDuration>,
    /// Bytes read from the UFS in one request on a miss (a run of pages, cached together).
    #[arg(long, value_name = "SIZE")]
    pub ufs_read_size: Option<ByteSize>,
    /// Bytes that all responses together may read ahead of what they sent (a response always gets its next
    /// page), and read from the UFS at once for them; bounds the worker's memory beyond its memory tier.
    #[arg(long, value_name = "SIZE")]
    pub read_ahead_size: Option<ByteSize>,
    /// Serve a disk-tier hit that the memory tier does not take from a read-only mapping of its page file,
    /// its header and checksum checked on the mapping (one copy, page cache to socket); false: read it into
    /// a buffer first (a copy more).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub mapped_reads: Option<bool>,
    /// Answer an anonymous read (S3 GET/HEAD without a signature; a worker HTTP API data GET without a
    /// token that names `ufsFullPath`) of a file another worker owns with `307 Temporary Redirect` to that
    /// owner, instead of streaming it through this worker. Reads with credentials are never redirected
    /// (a signature covers the host; clients drop tokens on redirects): S3 proxies them.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub redirect_to_owner: Option<bool>,
}

impl Group for WorkerSettings {
    const TITLE: &'static str = "Workers";

    fn defaults() -> Self {
        Self {
            coordinator: None,
            http_port: Some(DEFAULT_HTTP_PORT),
            s3_port: Some(DEFAULT_S3_PORT),
            s3_access_key: None,
            s3_secret_key: None,
            anonymous_read: Some(false),
            s3_multipart_expiry: Some(crate::s3_api::multipart::DEFAULT_MULTIPART_EXPIRY.into()),
            s3_unsized_puts: Some(false),
            cache_size: Some(ByteSize(DEFAULT_CACHE_SIZE)),
            memory_size: Some(ByteSize(DEFAULT_MEMORY_SIZE)),
            cache_dir: None,
            page_size: Some(ByteSize(DEFAULT_PAGE_SIZE)),
            max_age: Some(DEFAULT_MAX_AGE.into()),
            ttl_scan_interval: Some(crate::rules::ttl::DEFAULT_TTL_CHECK_INTERVAL.into()),
            lease_ttl: Some(DEFAULT_LEASE_TTL.into()),
            ufs_read_size: Some(ByteSize(crate::config::DEFAULT_UFS_READ_SIZE)),
            read_ahead_size: Some(ByteSize(crate::config::DEFAULT_READ_AHEAD_SIZE)),
            mapped_reads: Some(crate::config::DEFAULT_MAPPED_READS),
            redirect_to_owner: Some(false),
        }
    }

    fn other_keys() -> Vec<(&'static str, &'static str, &'static str)> {
        vec![(
            "coordinator",
            "`--coordinator URL[,URL...]`, `LOAM_COORDINATOR`",
            "the Coordinators' URLs, for load forwarding and file index reports: a string `\"URL,URL\"` or a \
             list, tried in order (a highly available Coordinator)",
        )]
    }
}

impl WorkerConfig {
    /// The configuration of a worker with these merged settings, keeping its state in `data_dir`.
    pub fn from_settings(
        node: &Layered<NodeSettings>,
        s: &Layered<WorkerSettings>,
        data_dir: PathBuf,
    ) -> Result<Self, ConfigError> {
        let (n, w) = (&node.value, &s.value);
        let invalid = |why: String| Err(ConfigError::Invalid(why));
        let page_size = w.page_size.unwrap_or(ByteSize(DEFAULT_PAGE_SIZE)).0;
        if page_size == 0 {
            return invalid(format!("{} must be at least 1 byte", s.named("page-size")));
        }
        let lease_ttl = w.lease_ttl.map_or(DEFAULT_LEASE_TTL, |d| d.0);
        if lease_ttl < Duration::from_secs(1) {
            return invalid(format!("{} must be at least 1 second", s.named("lease-ttl")));
        }
        let quota_check_interval =
            n.quota_check_interval.map_or(crate::rules::quota::DEFAULT_QUOTA_CHECK_INTERVAL, |d| d.0);
        if quota_check_interval.is_zero() {
            return invalid(format!("{} must be longer than 0", node.named("quota-check-interval")));
        }
        let s3_multipart_expiry =
            w.s3_multipart_expiry.map_or(crate::s3_api::multipart::DEFAULT_MULTIPART_EXPIRY, |d| d.0);
        if s3_multipart_expiry.is_zero() {
            return invalid(format!("{} must be longer than 0", s.named("s3-multipart-expiry")));
        }
        let credentials = match (&w.s3_access_key, &w.s3_secret_key) {
            (None, None) => None,
            (Some(a), Some(k)) if !a.is_empty() && !k.is_empty() => {
                Some(S3Credentials { access_key: a.clone(), secret_key: k.clone() })
            }
            _ => {
                return invalid(format!(
                    "{} and {} go together: give both (not empty) or neither",
                    s.named("s3-access-key"),
                    s.named("s3-secret-key")
                ));
            }
        };
        let mut cfg = Self::new(
            data_dir,
            w.memory_size.map_or(DEFAULT_MEMORY_SIZE, |m| m.0),
            w.cache_size.map_or(DEFAULT_CACHE_SIZE, |c| c.0),
        );
        if let Some(dirs) = w.cache_dir.clone().filter(|dirs| !dirs.is_empty()) {
            cfg.page_store.disk_dirs = dirs;
        }
        cfg.host = n.host.clone().unwrap_or(cfg.host);
        cfg.advertise_host = n.advertise_host.clone();
        cfg.http_port = w.http_port.unwrap_or(DEFAULT_HTTP_PORT);
        cfg.s3 = S3Config {
            port: w.s3_port.unwrap_or(DEFAULT_S3_PORT),
            credentials,
            anonymous_read: w.anonymous_read.unwrap_or(false),
            multipart_expiry: Some(s3_multipart_expiry),
            unsized_puts: w.s3_unsized_puts.unwrap_or(false),
        };
        cfg.cluster_name = n.cluster_name.clone().unwrap_or(cfg.cluster_name);
        cfg.auth = loam_auth::NodeAuth::from_settings(node)?;
        cfg.lease_ttl = lease_ttl;
        cfg.page_store.page_size = page_size;
        cfg.max_age = w.max_age.map_or(cfg.max_age, |d| d.0);
        // A zero period would make the loops spin (and tokio's interval refuses it).
        cfg.ttl_check_interval =
            w.ttl_scan_interval.map_or(cfg.ttl_check_interval, |d| d.0).max(Duration::from_secs(1));
        cfg.quota_check_interval = quota_check_interval.max(Duration::from_millis(1));
        cfg.coordinators = match &w.coordinator {
            Some(list) => loam_client::coordinator::parse_list(list)
                .map_err(|e| ConfigError::Invalid(format!("{}: {e}", s.named("coordinator"))))?,
            None => Vec::new(),
        };
        cfg.ufs_read_size = w.ufs_read_size.map_or(cfg.ufs_read_size, |r| r.0);
        cfg.read_ahead_size = w.read_ahead_size.map_or(cfg.read_ahead_size, |r| r.0);
        cfg.mapped_reads = w.mapped_reads.unwrap_or(cfg.mapped_reads);
        cfg.redirect_to_owner = w.redirect_to_owner.unwrap_or(cfg.redirect_to_owner);
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loam_config::{Resolver, Source};

    fn resolve(node: NodeSettings, worker: WorkerSettings) -> Result<WorkerConfig, ConfigError> {
        let flag = |k: &str| Source::Flag(format!("--{k}"));
        let node = Resolver::<NodeSettings>::new().layer(&node, flag).resolve()?;
        let worker = Resolver::<WorkerSettings>::new().layer(&worker, flag).resolve()?;
        WorkerConfig::from_settings(&node, &worker, "/w".into())
    }

    #[test]
    fn the_settings_reach_the_worker_config() {
        let node = NodeSettings {
            host: Some("10.0.0.5".into()),
            quota_check_interval: Some(HumaneDuration(Duration::from_millis(300))),
            ..Default::default()
        };
        let worker = WorkerSettings {
            http_port: Some(1234),
            cache_size: Some(ByteSize(5)),
            memory_size: Some(ByteSize(7)),
            page_size: Some(ByteSize(4096)),
            max_age: Some(HumaneDuration::secs(9)),
            ttl_scan_interval: Some(HumaneDuration::secs(3)),
            ufs_read_size: Some(ByteSize(8 << 20)),
            mapped_reads: Some(false),
            redirect_to_owner: Some(true),
            ..Default::default()
        };
        let cfg = resolve(node, worker).unwrap();
        assert!(!cfg.mapped_reads);
        assert!(cfg.redirect_to_owner);
        assert_eq!((cfg.host.as_str(), cfg.http_port), ("10.0.0.5", 1234));
        assert_eq!((cfg.page_store.disk_capacity, cfg.page_store.memory_capacity), (5, 7));
        assert_eq!(cfg.page_store.page_size, 4096);
        assert_eq!(cfg.ttl_check_interval, Duration::from_secs(3));
        assert_eq!(cfg.quota_check_interval, Duration::from_millis(300));
        assert_eq!(cfg.page_store.disk_dirs, [PathBuf::from("/w/cache")]);
        assert_eq!(cfg.max_age, Duration::from_secs(9));
        assert_eq!(cfg.ufs_read_size, 8 << 20);
    }

    #[test]
    fn s3_keys_come_in_pairs() {
        let keys = |a: Option<&str>, s: Option<&str>| {
            let w = WorkerSettings {
                s3_access_key: a.map(Into::into),
                s3_secret_key: s.map(Into::into),
                ..Default::default()
            };
            resolve(NodeSettings::default(), w).map(|c| c.s3.credentials)
        };
        assert_eq!(keys(None, None).unwrap(), None);
        let pair = keys(Some("a"), Some("s")).unwrap().unwrap();
        assert_eq!((pair.access_key.as_str(), pair.secret_key.as_str()), ("a", "s"));
        assert!(keys(Some("a"), None).is_err());
        assert!(keys(None, Some("s")).is_err());
        assert!(keys(Some(""), Some("s")).is_err());
    }

    #[test]
    fn the_defaults_are_the_library_defaults() {
        let cfg = resolve(NodeSettings::default(), WorkerSettings::default()).unwrap();
        let lib = WorkerConfig::new("/w".into(), DEFAULT_MEMORY_SIZE, DEFAULT_CACHE_SIZE);
        assert_eq!(
            (cfg.max_age, cfg.lease_ttl, cfg.page_store.page_size),
            (lib.max_age, lib.lease_ttl, lib.page_store.page_size)
        );
        assert_eq!(
            (cfg.ttl_check_interval, cfg.quota_check_interval),
            (lib.ttl_check_interval, lib.quota_check_interval)
        );
        assert_eq!((cfg.host, cfg.cluster_name), (lib.host, lib.cluster_name));
        assert_eq!(cfg.redirect_to_owner, lib.redirect_to_owner);
    }
}
