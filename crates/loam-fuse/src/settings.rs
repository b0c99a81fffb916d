//! `loam fuse`'s settings group: its flags and config-file keys, with the defaults of `config` and
//! `readahead` (see `loam_config`). [`FuseConfig::from_settings`] turns the merged settings into a mount's
//! configuration; the client-side keys (`workers-file`, `no-ufs-fallback`, `log-file`) and the metrics
//! listener's (`metrics-port`, `metrics-host`) are read by the command itself.

use crate::config::{
    DEFAULT_ATTR_TTL, DEFAULT_KERNEL_READAHEAD, DEFAULT_MAX_BACKGROUND, DEFAULT_SHORT_CIRCUIT, DEFAULT_THREADS,
    FuseConfig,
};
use crate::readahead::{DEFAULT_WINDOW, DEFAULT_WINDOWS, ReadAheadConfig};
use loam_config::{ByteSize, ConfigError, Group, HumaneDuration, Layered};
use std::path::PathBuf;

/// Settings of a FUSE mount.
#[derive(clap::Args, serde::Serialize, serde::Deserialize, Debug, Clone, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct FuseSettings {
    /// Where the cluster namespace appears (an existing directory).
    #[arg(long, value_name = "DIR", required_unless_present = "config")]
    pub mount_point: Option<PathBuf>,
    /// How long entries, attributes and directory listings are cached (e.g. 1s, 500ms, 0).
    #[arg(long, value_name = "DURATION")]
    pub attr_timeout: Option<HumaneDuration>,
    /// Client read-ahead window for sequential reads (0 turns client read-ahead off).
    #[arg(long, value_name = "SIZE")]
    pub readahead: Option<ByteSize>,
    /// Read-ahead windows kept in flight per open file.
    #[arg(long, value_name = "N")]
    pub readahead_windows: Option<usize>,
    /// The kernel's read-ahead for the mount (raised through sysfs; needs root).
    #[arg(long, value_name = "SIZE")]
    pub kernel_readahead: Option<ByteSize>,
    /// Threads reading requests from the kernel.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Requests the kernel may have in flight in the background (read-ahead, asynchronous direct reads):
    /// the mount's queue depth over all files.
    #[arg(long, value_name = "N")]
    pub max_background: Option<u16>,
    /// Let users other than the one mounting use the mount.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub allow_other: Option<bool>,
    /// Read the page files of a worker on this host directly (checked as the worker checks them) instead
    /// of over HTTP, when it holds the file and this process may read its cache directories.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub short_circuit: Option<bool>,
    /// A static worker list (one host:port per line) instead of the Coordinator's nodes or etcd.
    #[arg(long, env = "LOAM_WORKERS_FILE", value_name = "FILE")]
    pub workers_file: Option<PathBuf>,
    /// Fail a read when its workers fail, instead of reading the UFS directly.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub no_ufs_fallback: Option<bool>,
    /// Where the background process logs (appended); without it a background mount logs nothing.
    #[arg(long, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
    /// Serve the mount's metrics (`GET /metrics`, unauthenticated) on this port [default: off].
    #[arg(long, value_name = "PORT")]
    pub metrics_port: Option<u16>,
    /// The address the metrics listener binds (loopback by default: it has no authentication).
    #[arg(long, value_name = "HOST")]
    pub metrics_host: Option<String>,
}

/// Where the metrics listener binds unless told: loopback, since it answers anyone who can connect.
pub const DEFAULT_METRICS_HOST: &str = "127.0.0.1";

impl Group for FuseSettings {
    const TITLE: &'static str = "FUSE mount";

    fn defaults() -> Self {
        Self {
            mount_point: None,
            attr_timeout: Some(DEFAULT_ATTR_TTL.into()),
            readahead: Some(ByteSize(DEFAULT_WINDOW)),
            readahead_windows: Some(DEFAULT_WINDOWS),
            kernel_readahead: Some(ByteSize(u64::from(DEFAULT_KERNEL_READAHEAD))),
            threads: Some(DEFAULT_THREADS),
            max_background: Some(DEFAULT_MAX_BACKGROUND),
            allow_other: Some(false),
            short_circuit: Some(DEFAULT_SHORT_CIRCUIT),
            workers_file: None,
            no_ufs_fallback: Some(false),
            log_file: None,
            metrics_port: None,
            metrics_host: Some(DEFAULT_METRICS_HOST.into()),
        }
    }
}

impl FuseConfig {
    /// A mount's configuration from these merged settings; the mount point is required.
    pub fn from_settings(s: &Layered<FuseSettings>) -> Result<Self, ConfigError> {
        let f = &s.value;
        let Some(mount_point) = f.mount_point.clone() else {
            return Err(ConfigError::Invalid(
                "loam fuse needs --mount-point (or `mount-point` in the config file)".into(),
            ));
        };
        let mut cfg = FuseConfig::new(mount_point);
        cfg.attr_ttl = f.attr_timeout.map_or(cfg.attr_ttl, |d| d.0);
        let window = f.readahead.map_or(DEFAULT_WINDOW, |w| w.0);
        let windows = if window == 0 { 0 } else { f.readahead_windows.unwrap_or(DEFAULT_WINDOWS) };
        cfg.readahead = ReadAheadConfig { window, windows, ..Default::default() };
        cfg.kernel_readahead =
            f.kernel_readahead.map_or(cfg.kernel_readahead, |k| u32::try_from(k.0).unwrap_or(u32::MAX));
        cfg.threads = f.threads.unwrap_or(cfg.threads);
        if cfg.threads == 0 {
            return Err(ConfigError::Invalid(format!("{} must be at least 1", s.named("threads"))));
        }
        cfg.max_background = f.max_background.unwrap_or(cfg.max_background);
        if cfg.max_background == 0 {
            return Err(ConfigError::Invalid(format!("{} must be at least 1", s.named("max-background"))));
        }
        cfg.allow_other = f.allow_other.unwrap_or(false);
        cfg.short_circuit = f.short_circuit.unwrap_or(DEFAULT_SHORT_CIRCUIT);
        Ok(cfg)
    }
}
