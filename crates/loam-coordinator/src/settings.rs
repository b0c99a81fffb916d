//! The Coordinator's settings group: its flags and config-file keys, and their defaults (the one place
//! they live; see `loam_config`). `loam coordinator` and `loam local` both flatten it.
//!
//! **Static mount table.** `[[mount]]` entries in the config file (`path`, `ufs`, `options`) fix the
//! mount table, as Alluxio's static mount table does: the Coordinator publishes them to the cluster
//! store at start (so workers, which follow the table there, see exactly them) and answers `POST` and
//! `DELETE /api/v1/mount` with `501`. Without entries the table is managed through the API.
//!
//! **Which UFSs may be mounted** (`loam_ufs::policy`): `file://` roots only under `--allow-local-ufs`
//! directories (none by default: every `file://` mount is refused), S3 endpoints only matching
//! `--allow-ufs-endpoint` patterns when any are given. Static mounts are checked at start-up, so a bad
//! entry is a configuration error.

use crate::coordinator::CoordinatorConfig;
use crate::jobs::{DEFAULT_JOB_RETENTION, DEFAULT_JOB_RETRY_WINDOW};
use loam_config::{ConfigError, Group, HumaneDuration, Layered, NodeSettings, values};
use loam_ufs::policy::{EndpointPattern, LocalRoots};
use loam_ufs::{Mount, MountOptions, UfsPolicy};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default Coordinator REST API port.
pub const DEFAULT_PORT: u16 = 19999;

/// Settings of a Coordinator (besides [`NodeSettings`]).
#[derive(clap::Args, serde::Serialize, serde::Deserialize, Debug, Clone, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct CoordinatorSettings {
    /// REST API port.
    #[arg(long, visible_alias = "coordinator-port", value_name = "PORT")]
    pub port: Option<u16>,
    /// How long finished load, free and rebalance jobs are kept, e.g. 7d, 12h.
    #[arg(long, value_name = "DURATION")]
    pub job_retention: Option<HumaneDuration>,
    /// How long a job keeps retrying the files of a worker it cannot reach (re-planning them onto their
    /// owners when the ring changes) before they fail; keep it above the workers' --lease-ttl.
    #[arg(long, value_name = "DURATION")]
    pub job_retry_window: Option<HumaneDuration>,
    /// Do not keep the global file index (`/api/v1/file_index` then answers 404).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub disable_file_index: Option<bool>,
    /// Turn the TTL API off (`/api/v1/ttl` then answers 501).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub disable_ttl: Option<bool>,
    /// Turn the priority eviction API off (`/api/v1/priority` then answers 501).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub disable_priority: Option<bool>,
    /// Turn the quota API off (`/api/v1/quota` then answers 501).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub disable_quota: Option<bool>,
    /// A directory under which `file://` mounts are allowed (repeatable; in a file, a path or a list)
    /// [default: none, every file:// mount is refused; `loam local` on loopback: any path].
    #[arg(long, value_name = "DIR")]
    #[serde(default, deserialize_with = "values::path_list", skip_serializing_if = "Option::is_none")]
    pub allow_local_ufs: Option<Vec<PathBuf>>,
    /// An allowed S3 endpoint pattern, `scheme://host[:port]` with `*` or `*.suffix` hosts and `*` ports, e.g.
    /// https://*.amazonaws.com (repeatable) [default: none given, any endpoint].
    #[arg(long, value_name = "PATTERN")]
    #[serde(default, deserialize_with = "values::string_list", skip_serializing_if = "Option::is_none")]
    pub allow_ufs_endpoint: Option<Vec<String>>,
    /// Most entries the global file index holds; reports and adds past it answer 507.
    #[arg(long, value_name = "N")]
    pub file_index_max_entries: Option<u64>,
    /// Start a rebalance of ALL when the set of online workers changed and then stayed the same for
    /// --auto-rebalance-delay (runs where jobs run).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub auto_rebalance: Option<bool>,
    /// How long the online workers must stay the same after a change before --auto-rebalance starts a
    /// rebalance; a change meanwhile starts the wait again.
    #[arg(long, value_name = "DURATION")]
    pub auto_rebalance_delay: Option<HumaneDuration>,
    /// TTL of the leader's etcd lease when several Coordinators share one etcd: a leader that dies is
    /// replaced within it (the leader renews it every third of it).
    #[arg(long, value_name = "DURATION")]
    pub leader_lease_ttl: Option<HumaneDuration>,
    /// How long `GET /api/v1/nodes/stats` (the console, `loam status`) waits for each worker's stats; a
    /// worker slower than this is listed with an error.
    #[arg(long, value_name = "DURATION")]
    pub worker_stats_timeout: Option<HumaneDuration>,
    /// A static mount table (file only: `[[mount]]` entries).
    #[arg(skip)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mount: Option<Vec<StaticMount>>,
}

/// One `[[mount]]` entry of a static mount table.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StaticMount {
    /// The cluster path (`/data`).
    pub path: String,
    /// The UFS root (`s3://bucket/prefix`, `file:///srv/data`).
    pub ufs: String,
    /// Options handed to the UFS, as in `POST /api/v1/mount`.
    #[serde(default)]
    pub options: MountOptions,
}

impl Group for CoordinatorSettings {
    const TITLE: &'static str = "Coordinator";

    fn defaults() -> Self {
        Self {
            port: Some(DEFAULT_PORT),
            job_retention: Some(DEFAULT_JOB_RETENTION.into()),
            job_retry_window: Some(DEFAULT_JOB_RETRY_WINDOW.into()),
            disable_file_index: Some(false),
            disable_ttl: Some(false),
            disable_priority: Some(false),
            disable_quota: Some(false),
            allow_local_ufs: None,
            allow_ufs_endpoint: None,
            file_index_max_entries: Some(crate::file_index::DEFAULT_MAX_ENTRIES),
            auto_rebalance: Some(false),
            auto_rebalance_delay: Some(crate::auto_rebalance::DEFAULT_AUTO_REBALANCE_DELAY.into()),
            leader_lease_ttl: Some(crate::leader::DEFAULT_LEADER_LEASE_TTL.into()),
            worker_stats_timeout: Some(crate::api::node_stats::DEFAULT_WORKER_STATS_TIMEOUT.into()),
            mount: None,
        }
    }

    fn other_keys() -> Vec<(&'static str, &'static str, &'static str)> {
        vec![(
            "mount",
            "file only: `[[mount]]` tables with `path`, `ufs`, `options`",
            "a static mount table: published to the cluster store at start; `POST`/`DELETE /api/v1/mount` answer 501",
        )]
    }
}

/// Where a coordinator keeps its own files under a data directory: `<data_dir>/coordinator`.
pub fn coordinator_files(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("coordinator")
}

impl CoordinatorConfig {
    /// The configuration of a coordinator with these merged settings (`loam coordinator`: without
    /// `--allow-local-ufs`, no `file://` mount is allowed).
    pub fn from_settings(node: &Layered<NodeSettings>, s: &Layered<CoordinatorSettings>) -> Result<Self, ConfigError> {
        Self::from_settings_with(node, s, LocalRoots::Under(Vec::new()))
    }

    /// Like [`from_settings`](Self::from_settings), with `unset` the local roots without `--allow-local-ufs`
    /// (`loam local` on loopback: any).
    pub fn from_settings_with(
        node: &Layered<NodeSettings>,
        s: &Layered<CoordinatorSettings>,
        unset: LocalRoots,
    ) -> Result<Self, ConfigError> {
        let (n, c) = (&node.value, &s.value);
        let d = CoordinatorConfig::default();
        let ufs_policy = ufs_policy(s, unset)?;
        let static_mounts = match &c.mount {
            None => None,
            Some(entries) => Some(
                static_mounts(entries, &ufs_policy)
                    .map_err(|why| ConfigError::Invalid(format!("{}: {why}", s.named("mount"))))?,
            ),
        };
        let quota_check_interval = n.quota_check_interval.map_or(d.quota_check_interval, |q| q.0);
        Ok(Self {
            cluster_name: n.cluster_name.clone().unwrap_or(d.cluster_name),
            static_mounts,
            data_dir: coordinator_files(n.data_dir.as_deref().unwrap_or(Path::new(loam_config::DEFAULT_DATA_DIR))),
            job_retention: c.job_retention.map_or(d.job_retention, |r| r.0),
            job_retry_window: c.job_retry_window.map_or(d.job_retry_window, |r| r.0),
            ttl_enabled: !c.disable_ttl.unwrap_or(false),
            priority_enabled: !c.disable_priority.unwrap_or(false),
            quota_enabled: !c.disable_quota.unwrap_or(false),
            // A zero period would make the quota loop spin (and tokio's interval refuses it).
            quota_check_interval: quota_check_interval.max(std::time::Duration::from_millis(1)),
            file_index: !c.disable_file_index.unwrap_or(false),
            auth: loam_auth::NodeAuth::from_settings(node)?,
            file_index_max_entries: c.file_index_max_entries.map_or(d.file_index_max_entries, |m| m as usize),
            ufs_policy,
            auto_rebalance: auto_rebalance(s)?,
            election: None,
            // etcd counts leases in whole seconds: less than one would be rounded up anyway.
            leader_lease_ttl: c.leader_lease_ttl.map_or(d.leader_lease_ttl, |t| t.0).max(Duration::from_secs(1)),
            advertise_url: None,
            worker_stats_timeout: worker_stats_timeout(s)?,
        })
    }
}

/// The per-worker wait of `GET /api/v1/nodes/stats`; zero is refused (every worker would time out).
fn worker_stats_timeout(s: &Layered<CoordinatorSettings>) -> Result<Duration, ConfigError> {
    match s.value.worker_stats_timeout.map(|d| d.0) {
        None => Ok(CoordinatorConfig::default().worker_stats_timeout),
        Some(d) if !d.is_zero() => Ok(d),
        Some(_) => Err(ConfigError::Invalid(format!("{}: must be more than 0", s.named("worker-stats-timeout")))),
    }
}

/// `Some(delay)` when `auto-rebalance` is on; a zero delay is refused (it would rebalance on every blip).
fn auto_rebalance(s: &Layered<CoordinatorSettings>) -> Result<Option<std::time::Duration>, ConfigError> {
    let c = &s.value;
    if !c.auto_rebalance.unwrap_or(false) {
        return Ok(None);
    }
    match c.auto_rebalance_delay.map(|d| d.0) {
        Some(d) if !d.is_zero() => Ok(Some(d)),
        _ => Err(ConfigError::Invalid(format!("{}: must be more than 0", s.named("auto-rebalance-delay")))),
    }
}

/// The mount policy of these settings; `unset` is what `file://` roots are without `--allow-local-ufs`.
pub fn ufs_policy(s: &Layered<CoordinatorSettings>, unset: LocalRoots) -> Result<UfsPolicy, ConfigError> {
    let c = &s.value;
    let local = match c.allow_local_ufs.as_deref() {
        None | Some([]) => unset,
        Some(dirs) => {
            LocalRoots::under(dirs).map_err(|e| ConfigError::Invalid(format!("{}: {e}", s.named("allow-local-ufs"))))?
        }
    };
    let endpoints = match c.allow_ufs_endpoint.as_deref() {
        None | Some([]) => None,
        Some(patterns) => Some(
            patterns
                .iter()
                .map(|p| EndpointPattern::parse(p))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ConfigError::Invalid(format!("{}: {e}", s.named("allow-ufs-endpoint"))))?,
        ),
    };
    Ok(UfsPolicy::new(local, endpoints))
}

/// Checks the entries as `POST /api/v1/mount` would (paths, nesting, overlapping UFSs, the mount policy),
/// without the UFS.
fn static_mounts(entries: &[StaticMount], policy: &UfsPolicy) -> Result<Vec<Mount>, String> {
    let mut table = loam_ufs::MountTable::new();
    for (i, e) in entries.iter().enumerate() {
        let named = |err: String| format!("entry {} ({}): {err}", i + 1, e.path);
        let mount = Mount::new(&e.path, &e.ufs, e.options.clone()).map_err(|e| named(e.to_string()))?;
        policy.check(&mount).map_err(named)?;
        table.add(mount).map_err(|e| named(e.to_string()))?;
    }
    Ok(table.iter().cloned().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use loam_config::{Resolver, Source};
    use std::path::PathBuf;
    use std::time::Duration;

    #[test]
    fn the_coordinator_keeps_its_files_under_the_data_dir() {
        let flag = |k: &str| Source::Flag(format!("--{k}"));
        let node = NodeSettings { cluster_name: Some("c1".into()), data_dir: Some("/d".into()), ..Default::default() };
        let node = Resolver::<NodeSettings>::new().layer(&node, flag).resolve().unwrap();
        let c = CoordinatorSettings { job_retention: Some(HumaneDuration::secs(5)), ..Default::default() };
        let c = Resolver::<CoordinatorSettings>::new().layer(&c, flag).resolve().unwrap();
        let cfg = CoordinatorConfig::from_settings(&node, &c).unwrap();
        assert_eq!(cfg.data_dir, PathBuf::from("/d/coordinator"));
        assert_eq!((cfg.cluster_name.as_str(), cfg.job_retention), ("c1", Duration::from_secs(5)));
        assert!(cfg.static_mounts.is_none());
    }

    #[test]
    fn no_file_mount_without_allow_local_ufs_and_static_mounts_are_checked() {
        let flag = |k: &str| Source::Flag(format!("--{k}"));
        let node = Resolver::<NodeSettings>::new().resolve().unwrap();
        let resolve =
            |c: CoordinatorSettings| Resolver::<CoordinatorSettings>::new().layer(&c, flag).resolve().unwrap();
        let file = |ufs: &str| StaticMount { path: "/data".into(), ufs: ufs.into(), options: MountOptions::new() };
        let c = resolve(CoordinatorSettings::default());
        let cfg = CoordinatorConfig::from_settings(&node, &c).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let m = Mount::new("/data", &format!("file://{}", tmp.path().display()), MountOptions::new()).unwrap();
        assert!(cfg.ufs_policy.check(&m).unwrap_err().contains("--allow-local-ufs"), "none by default");
        let c = resolve(CoordinatorSettings { mount: Some(vec![file("file:///etc")]), ..Default::default() });
        let e = CoordinatorConfig::from_settings(&node, &c).unwrap_err().to_string();
        assert!(e.contains("--allow-local-ufs") && e.contains("entry 1"), "{e}");
        let ok = CoordinatorConfig::from_settings_with(&node, &c, LocalRoots::Any).unwrap();
        assert_eq!(ok.static_mounts.unwrap().len(), 1, "loam local on loopback takes any path");
        let c = resolve(CoordinatorSettings {
            allow_local_ufs: Some(vec![tmp.path().to_path_buf()]),
            mount: Some(vec![file(&format!("file://{}", tmp.path().display()))]),
            ..Default::default()
        });
        assert!(CoordinatorConfig::from_settings(&node, &c).is_ok());
        let c = resolve(CoordinatorSettings { allow_ufs_endpoint: Some(vec!["ftp://x".into()]), ..Default::default() });
        let e = CoordinatorConfig::from_settings(&node, &c).unwrap_err().to_string();
        assert!(e.contains("--allow-ufs-endpoint"), "{e}");
    }

    #[test]
    fn the_worker_stats_timeout_defaults_to_2s_is_taken_and_zero_is_refused() {
        let flag = |k: &str| Source::Flag(format!("--{k}"));
        let node = Resolver::<NodeSettings>::new().resolve().unwrap();
        let timeout = |t: Option<HumaneDuration>| {
            let c = CoordinatorSettings { worker_stats_timeout: t, ..Default::default() };
            let c = Resolver::<CoordinatorSettings>::new().layer(&c, flag).resolve().unwrap();
            CoordinatorConfig::from_settings(&node, &c).map(|cfg| cfg.worker_stats_timeout)
        };
        assert_eq!(timeout(None).unwrap(), Duration::from_secs(2));
        assert_eq!(timeout(Some(HumaneDuration::secs(5))).unwrap(), Duration::from_secs(5));
        let e = timeout(Some(HumaneDuration::secs(0))).unwrap_err().to_string();
        assert!(e.contains("--worker-stats-timeout") && e.contains("more than 0"), "{e}");
    }
}
