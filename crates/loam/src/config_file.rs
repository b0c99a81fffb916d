//! Config files of `loam coordinator` and `loam worker`: TOML, one file per process, whose keys are the
//! long flags' names (`data-dir`, `cache-size`, …). A flag given on the command line (or through its
//! environment variable) overrides the file; a key absent from both takes the default listed below.
//! A key the process does not know is an error naming it, so a typo is never silently ignored.
//!
//! Keys of both files:
//!
//! | key | type | default | meaning |
//! | --- | --- | --- | --- |
//! | `version` | integer | 1 | format of this file; only 1 exists |
//! | `etcd` | string `"URL,URL"` or list of strings | none | etcd endpoints (coordinator: none = embedded store) |
//! | `cluster-name` | string | `DefaultAlluxioCluster` | cluster name in the membership keys |
//! | `host` | string | `127.0.0.1` | address to bind and advertise |
//! | `data-dir` | path | coordinator `./loam-data`; worker required | where the process keeps its state |
//!
//! Coordinator only: `port` (integer, 19999), the REST API port; `job-retention` (integer seconds or a
//! duration string like `"7d"`, `"12h"`, `"1h30m"`; default 7 days), how long finished load and free jobs
//! are kept. The coordinator writes its own files (failed-file lists of jobs) under `<data-dir>/coordinator`.
//!
//! Worker only:
//!
//! | key | type | default | meaning |
//! | --- | --- | --- | --- |
//! | `coordinator` | string | none | the Coordinator's URL, kept for load forwarding (not used on the data path) |
//! | `http-port` | integer | 28080 | worker HTTP API port |
//! | `s3-port` | integer | 29998 | S3 API port (0: a free one); the membership record advertises it |
//! | `s3-access-key` | string | none | access key id S3 requests must be signed with (with `s3-secret-key`) |
//! | `s3-secret-key` | string | none | its secret key |
//! | `s3-anonymous-read` | boolean | false | serve unsigned S3 reads (GET, HEAD, listings) |
//! | `cache-size` | size | `10GiB` | disk cache capacity, over all cache directories |
//! | `memory-size` | size | `256MiB` | memory tier (0: none) |
//! | `cache-dir` | path or list of paths | `<data-dir>/cache` | cache directories |
//! | `page-size` | size | `1MiB` | page size |
//! | `max-age` | integer (seconds) | 60 | how long a cached file is trusted before re-validation (0: every read) |
//! | `ttl-scan-interval` | integer (seconds) | 60 | time between scans that evict data past its TTL |
//! | `quota-check-interval` | integer seconds or duration string | `"2s"` | time between quota passes (usage reports, admission) |
//! | `lease-ttl` | integer (seconds) | 15 | TTL of the liveness lease in etcd |
//!
//! A size is a number of bytes (`1048576`) or a string with a unit (`"512KiB"`, `"10GiB"`). Relative paths
//! are taken from the working directory, as on the command line. A worker's file:
//!
//! ```toml
//! version = 1
//! etcd = ["http://10.0.0.2:2379", "http://10.0.0.3:2379"]
//! coordinator = "http://10.0.0.2:19999"
//! host = "10.0.0.5"
//! http-port = 28080
//! data-dir = "/var/lib/loam/worker"
//! cache-dir = ["/mnt/nvme0/loam", "/mnt/nvme1/loam"]
//! cache-size = "1TiB"
//! memory-size = "8GiB"
//! ```

use loam_core::ErrorKind;
use loam_core::size::parse_size;
use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, SeqAccess, Visitor};
use std::fmt;
use std::path::{Path, PathBuf};

/// The only version of the config file format.
pub const CONFIG_VERSION: u32 = 1;

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the config file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML, has an unknown key, or a value of the wrong type.
    #[error("config file {path}{line}: {message}", line = line.map(|l| format!(", line {l}")).unwrap_or_default())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the problem, when known.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// The file declares a format version this build does not read.
    #[error("config file {path}: version {version} is not supported (this build reads version {CONFIG_VERSION})")]
    Version {
        /// The file.
        path: PathBuf,
        /// The version it declares.
        version: u32,
    },
    /// A setting is missing or out of range after merging flags and file.
    #[error("{0}")]
    Invalid(String),
}

impl ConfigError {
    /// The error's kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ConfigError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            ConfigError::Io { .. } => ErrorKind::Unavailable,
            ConfigError::Parse { .. } | ConfigError::Version { .. } | ConfigError::Invalid(_) => {
                ErrorKind::InvalidInput
            }
        }
    }
}

/// The config file of `loam coordinator`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CoordinatorFile {
    /// Format version.
    pub version: Option<u32>,
    /// etcd endpoints.
    pub etcd: Option<Endpoints>,
    /// Cluster name.
    pub cluster_name: Option<String>,
    /// Address to bind and advertise.
    pub host: Option<String>,
    /// REST API port.
    pub port: Option<u16>,
    /// Data directory.
    pub data_dir: Option<PathBuf>,
    /// How long finished jobs are kept.
    pub job_retention: Option<HumaneDuration>,
    /// Turns the global file index off (`disable-file-index = true`).
    pub disable_file_index: Option<bool>,
    /// Turns the TTL API off (`disable-ttl = true`).
    pub disable_ttl: Option<bool>,
    /// Turns the priority eviction API off (`disable-priority = true`).
    pub disable_priority: Option<bool>,
    /// Turns the quota API off (`disable-quota = true`).
    pub disable_quota: Option<bool>,
}

/// The config file of `loam worker`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WorkerFile {
    /// Format version.
    pub version: Option<u32>,
    /// etcd endpoints.
    pub etcd: Option<Endpoints>,
    /// Cluster name.
    pub cluster_name: Option<String>,
    /// The Coordinator's URL.
    pub coordinator: Option<String>,
    /// Address to bind and advertise.
    pub host: Option<String>,
    /// HTTP API port.
    pub http_port: Option<u16>,
    /// S3 API port.
    pub s3_port: Option<u16>,
    /// S3 access key id.
    pub s3_access_key: Option<String>,
    /// S3 secret key.
    pub s3_secret_key: Option<String>,
    /// Whether unsigned S3 reads are served.
    pub s3_anonymous_read: Option<bool>,
    /// Data directory.
    pub data_dir: Option<PathBuf>,
    /// Disk cache capacity.
    pub cache_size: Option<ByteSize>,
    /// Memory tier capacity.
    pub memory_size: Option<ByteSize>,
    /// Cache directories.
    pub cache_dir: Option<PathList>,
    /// Page size.
    pub page_size: Option<ByteSize>,
    /// Re-validation age in seconds.
    pub max_age: Option<u64>,
    /// Seconds between TTL scans.
    pub ttl_scan_interval: Option<u64>,
    /// Time between quota passes.
    pub quota_check_interval: Option<HumaneDuration>,
    /// Liveness lease TTL in seconds.
    pub lease_ttl: Option<u64>,
}

/// A file with a format version.
pub trait Versioned {
    /// The version the file declares, if any.
    fn version(&self) -> Option<u32>;
}

impl Versioned for CoordinatorFile {
    fn version(&self) -> Option<u32> {
        self.version
    }
}

impl Versioned for WorkerFile {
    fn version(&self) -> Option<u32> {
        self.version
    }
}

/// Reads and checks the config file at `path`.
pub fn load<T: DeserializeOwned + Versioned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io { path: path.to_path_buf(), source })?;
    parse(&text, path)
}

/// Parses config `text`; `path` names the file in errors.
pub fn parse<T: DeserializeOwned + Versioned>(text: &str, path: &Path) -> Result<T, ConfigError> {
    let file: T = toml::from_str(text).map_err(|e| parse_error(text, path, &e))?;
    match file.version() {
        None | Some(CONFIG_VERSION) => Ok(file),
        Some(version) => Err(ConfigError::Version { path: path.to_path_buf(), version }),
    }
}

/// One line: the file, the line of the problem, and the message, naming the key when the message does not.
fn parse_error(text: &str, path: &Path, e: &toml::de::Error) -> ConfigError {
    let mut message = e.message().trim().to_string();
    let line = e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
    if let Some(n) = line {
        let key = text.lines().nth(n - 1).and_then(|l| l.split_once('=')).map(|(k, _)| k.trim());
        if let Some(key) = key.filter(|k| !k.is_empty() && !message.contains(k)) {
            message = format!("{key}: {message}");
        }
    }
    ConfigError::Parse { path: path.to_path_buf(), line, message: message.replace('\n', " ") }
}

/// A byte size: an integer, or a string with a unit (`"10GiB"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size: a number of bytes or a string like \"10GiB\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v).map(ByteSize).map_err(|_| E::custom(format!("invalid size {v}: negative")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                parse_size(v).map(ByteSize).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A duration: integer seconds, or a string like `"7d"` or `"1h30m"` (`crate::duration`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumaneDuration(pub std::time::Duration);

impl<'de> Deserialize<'de> for HumaneDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = HumaneDuration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration: a number of seconds or a string like \"7d\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<HumaneDuration, E> {
                Ok(HumaneDuration(std::time::Duration::from_secs(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<HumaneDuration, E> {
                u64::try_from(v)
                    .map(|s| HumaneDuration(std::time::Duration::from_secs(s)))
                    .map_err(|_| E::custom(format!("invalid duration {v}: negative")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<HumaneDuration, E> {
                crate::duration::parse_duration(v).map(HumaneDuration).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// etcd endpoints: one string (`"URL,URL"`) or a list of strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints(pub Vec<String>);

impl<'de> Deserialize<'de> for Endpoints {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let items = d.deserialize_any(OneOrMany("an endpoint URL, a comma-separated list, or a list of URLs"))?;
        Ok(Endpoints(split_endpoints(&items)))
    }
}

/// Splits comma-separated endpoint lists and drops empty entries (as `--etcd a,b` does).
pub fn split_endpoints(items: &[String]) -> Vec<String> {
    items.iter().flat_map(|s| s.split(',')).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// Paths: one string or a list of strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathList(pub Vec<PathBuf>);

impl<'de> Deserialize<'de> for PathList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let items = d.deserialize_any(OneOrMany("a path or a list of paths"))?;
        Ok(PathList(items.into_iter().map(PathBuf::from).collect()))
    }
}

/// Accepts a string or a list of strings.
struct OneOrMany(&'static str);

impl<'de> Visitor<'de> for OneOrMany {
    type Value = Vec<String>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.0)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<String>, E> {
        Ok(vec![v.to_string()])
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
        let mut out = Vec::new();
        while let Some(s) = seq.next_element::<String>()? {
            out.push(s);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(text: &str) -> Result<WorkerFile, ConfigError> {
        parse(text, Path::new("w.toml"))
    }

    #[test]
    fn reads_every_worker_key() {
        let f = worker(
            r#"
            version = 1
            etcd = "http://a:2379, http://b:2379"
            cluster-name = "c1"
            coordinator = "http://a:19999"
            host = "10.0.0.5"
            http-port = 28081
            s3-port = 29998
            s3-access-key = "AK"
            s3-secret-key = "SK"
            s3-anonymous-read = true
            data-dir = "/var/lib/loam"
            cache-size = "2GiB"
            memory-size = 1048576
            cache-dir = ["/d1", "/d2"]
            page-size = "64KiB"
            max-age = 0
            lease-ttl = 30
            "#,
        )
        .unwrap();
        assert_eq!(f.etcd, Some(Endpoints(vec!["http://a:2379".into(), "http://b:2379".into()])));
        assert_eq!(f.cluster_name.as_deref(), Some("c1"));
        assert_eq!(f.coordinator.as_deref(), Some("http://a:19999"));
        assert_eq!((f.http_port, f.s3_port), (Some(28081), Some(29998)));
        assert_eq!((f.s3_access_key.as_deref(), f.s3_secret_key.as_deref()), (Some("AK"), Some("SK")));
        assert_eq!(f.s3_anonymous_read, Some(true));
        assert_eq!(f.cache_size, Some(ByteSize(2 << 30)));
        assert_eq!(f.memory_size, Some(ByteSize(1 << 20)));
        assert_eq!(f.cache_dir, Some(PathList(vec!["/d1".into(), "/d2".into()])));
        assert_eq!(f.page_size, Some(ByteSize(64 << 10)));
        assert_eq!((f.max_age, f.lease_ttl), (Some(0), Some(30)));
    }

    #[test]
    fn one_string_or_a_list() {
        let f = worker("etcd = [\"http://a:1\", \"http://b:1,http://c:1\"]\ncache-dir = \"/only\"\n").unwrap();
        assert_eq!(f.etcd.unwrap().0, ["http://a:1", "http://b:1", "http://c:1"]);
        assert_eq!(f.cache_dir.unwrap().0, [PathBuf::from("/only")]);
    }

    #[test]
    fn an_empty_file_is_all_defaults() {
        assert_eq!(worker("").unwrap(), WorkerFile::default());
        assert_eq!(parse::<CoordinatorFile>("# nothing\n", Path::new("c.toml")).unwrap(), CoordinatorFile::default());
    }

    #[test]
    fn unknown_keys_are_named_with_their_line() {
        let e = worker("host = \"h\"\ncache-szie = \"1GiB\"\n").unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("config file w.toml, line 2: "), "{msg}");
        assert!(msg.contains("unknown field `cache-szie`"), "{msg}");
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        // A coordinator key is unknown to the worker, and the other way round.
        assert!(worker("port = 1\n").unwrap_err().to_string().contains("`port`"));
        let e = parse::<CoordinatorFile>("http-port = 1\n", Path::new("c.toml")).unwrap_err();
        assert!(e.to_string().contains("`http-port`"), "{e}");
    }

    #[test]
    fn bad_values_name_their_key() {
        let msg = worker("\nhttp-port = \"x\"\n").unwrap_err().to_string();
        assert!(msg.contains("line 2") && msg.contains("http-port"), "{msg}");
        let msg = worker("cache-size = \"ten\"\n").unwrap_err().to_string();
        assert!(msg.contains("cache-size") && msg.contains("invalid size"), "{msg}");
        let msg = worker("memory-size = -1\n").unwrap_err().to_string();
        assert!(msg.contains("negative"), "{msg}");
        let msg = worker("http-port = 70000\n").unwrap_err().to_string();
        assert!(msg.contains("http-port"), "{msg}");
        let msg = worker("host = \n").unwrap_err().to_string();
        assert!(msg.starts_with("config file w.toml, line 1"), "{msg}");
        assert_eq!(msg.lines().count(), 1, "{msg}");
    }

    #[test]
    fn other_versions_are_refused() {
        let e = worker("version = 2\n").unwrap_err();
        assert!(matches!(e, ConfigError::Version { version: 2, .. }), "{e}");
    }

    #[test]
    fn a_missing_file_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let e = load::<WorkerFile>(&dir.path().join("nope.toml")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(e.to_string().contains("nope.toml"), "{e}");
    }
}
