//! The worker's configuration, with the defaults a newcomer gets.

use crate::s3_api::S3Config;
use loam_page_store::PageStoreConfig;
use std::path::PathBuf;
use std::time::Duration;

/// Default page size: 1 MiB (the Python page client assumes it).
pub const DEFAULT_PAGE_SIZE: u64 = 1 << 20;
/// Default bytes read from the UFS in one request on a miss (a run of pages, split into pages).
pub const DEFAULT_UFS_READ_SIZE: u64 = 4 << 20;
/// Default bytes that all range streams of a worker together may read ahead of what they sent
/// (`read_through::read_ahead`): 64 pages of the default size.
pub const DEFAULT_READ_AHEAD_SIZE: u64 = 64 << 20;
/// Whether disk hits are served from a mapping of their page file by default (`loam_page_store`'s
/// `mapped.rs`).
pub const DEFAULT_MAPPED_READS: bool = true;
/// Default time after which a cached file is re-validated against the UFS.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(60);
pub use loam_core::membership::DEFAULT_LEASE_TTL;

/// Everything a worker needs to start.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Host name or IP the worker binds its listeners on (and advertises, without `advertise_host`).
    pub host: String,
    /// Host name or IP written to its membership record, when not `host` (`0.0.0.0` binds every interface).
    pub advertise_host: Option<String>,
    /// HTTP API port (0 = pick a free one).
    pub http_port: u16,
    /// S3 API port advertised in the membership record (0 = the port the S3 API bound, `s3.port`).
    pub s3_port: u16,
    /// The S3 API: port to bind, access key, anonymous read.
    pub s3: S3Config,
    /// The worker's data directory: its identity file and, by default, its cache.
    pub data_dir: PathBuf,
    /// Cluster name in the membership keys.
    pub cluster_name: String,
    /// Lease TTL of the liveness record.
    pub lease_ttl: Duration,
    /// Page store sizes and directories.
    pub page_store: PageStoreConfig,
    /// How long a cached file is trusted before it is re-validated against the UFS (0 = every read).
    pub max_age: Duration,
    /// Bytes per UFS read on a miss; pages of the run are cached together.
    pub ufs_read_size: u64,
    /// Bytes that all range streams together may read ahead of what they sent.
    pub read_ahead_size: u64,
    /// Serve disk hits the memory tier does not take from a read-only mapping of the page file (checked
    /// on the mapping) instead of a buffer they are read into.
    pub mapped_reads: bool,
    /// Virtual nodes per worker on the hash ring.
    pub virtual_nodes: u32,
    /// The Coordinators' URLs (checked, in order; none: no Coordinator to tell), for forwarding load
    /// requests (`/v1/load`) and file index reports; never needed on the data path.
    pub coordinators: Vec<String>,
    /// Interval between TTL scans (`crate::rules::ttl`).
    pub ttl_check_interval: Duration,
    /// Interval between quota passes (`crate::rules::quota`).
    pub quota_check_interval: Duration,
    /// Who may call the HTTP API (anonymous reads: `s3.anonymous_read`), and the token sent to the others.
    pub auth: loam_auth::NodeAuth,
    /// TLS and limits of the HTTP and S3 listeners.
    pub listener: loam_listener::ListenerConfig,
    /// Answer anonymous reads of files another worker owns with `307` to that owner
    /// (`crate::non_owner::redirect`) rather than proxying (S3) or serving them here (HTTP API).
    pub redirect_to_owner: bool,
}

impl WorkerConfig {
    /// A configuration with defaults, caching under `<data_dir>/cache` with the given capacities.
    pub fn new(data_dir: PathBuf, memory_capacity: u64, disk_capacity: u64) -> Self {
        let cache_dir = data_dir.join("cache");
        Self {
            host: "127.0.0.1".into(),
            advertise_host: None,
            http_port: 0,
            s3_port: 0,
            s3: S3Config::default(),
            data_dir,
            cluster_name: loam_core::membership::DEFAULT_CLUSTER_NAME.into(),
            lease_ttl: DEFAULT_LEASE_TTL,
            page_store: PageStoreConfig {
                page_size: DEFAULT_PAGE_SIZE,
                memory_capacity,
                disk_dirs: vec![cache_dir],
                disk_capacity,
            },
            max_age: DEFAULT_MAX_AGE,
            ufs_read_size: DEFAULT_UFS_READ_SIZE,
            read_ahead_size: DEFAULT_READ_AHEAD_SIZE,
            mapped_reads: DEFAULT_MAPPED_READS,
            virtual_nodes: loam_core::hash_ring::DEFAULT_VIRTUAL_NODES,
            coordinators: Vec::new(),
            ttl_check_interval: crate::rules::ttl::DEFAULT_TTL_CHECK_INTERVAL,
            quota_check_interval: crate::rules::quota::DEFAULT_QUOTA_CHECK_INTERVAL,
            auth: loam_auth::NodeAuth::default(),
            listener: loam_listener::ListenerConfig::default(),
            redirect_to_owner: false,
        }
    }
}
