//! Wire types of the worker HTTP API (port 28080), with the field names Alluxio's clients read.

use serde::{Deserialize, Serialize};

/// The file-info object of `/v1/info` and `/v1/files` (Alluxio's `mXxx` fields, all emitted).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileInfo {
    /// `"file"` or `"directory"`.
    pub m_type: String,
    /// The last path component.
    pub m_name: String,
    /// The path in the cluster namespace, `/<mount>/<key>` (also the S3 path `/<bucket>/<key>`).
    pub m_path: String,
    /// The full UFS URI.
    pub m_ufs_path: String,
    /// Length in bytes (0 for directories).
    pub m_length: u64,
    /// The length for humans (`1.50MB`).
    pub m_human_readable_file_size: String,
    /// Always true: the UFS holds complete files.
    pub m_completed: bool,
    /// Owner (empty when the UFS has none).
    pub m_owner: String,
    /// Group (empty when the UFS has none).
    pub m_group: String,
    /// POSIX mode bits.
    pub m_mode: u32,
    /// Creation time in ms since the epoch (the UFS modification time when it has no creation time).
    pub m_creation_time_ms: i64,
    /// Last modification time in ms since the epoch.
    pub m_last_modification_time_ms: i64,
    /// Last access through this worker, in ms since the epoch (modification time if never read).
    pub m_last_access_time_ms: i64,
    /// Always true: data lives in the UFS.
    pub m_persisted: bool,
    /// Percentage of the file's pages cached on the answering worker.
    pub m_in_alluxio_percentage: u32,
    /// The UFS content hash (ETag), empty when unknown.
    pub m_content_hash: String,
}

/// `GET /v1/node`: the primary worker of a path.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NodeAddress {
    /// Host the worker serves on.
    #[serde(rename = "Host")]
    pub host: String,
    /// The worker's HTTP port.
    #[serde(rename = "HttpServerPort")]
    pub http_server_port: u16,
}

/// The worker endpoint a FUSE mount on the worker's host asks before it reads the worker's page files
/// itself (short-circuit reads, `loam-fuse/src/short_circuit.rs`).
pub const SHORT_CIRCUIT_PATH: &str = "/v1/short-circuit";
/// Version of [`ShortCircuitInfo`]: a reader refuses an answer of another.
pub const SHORT_CIRCUIT_API_VERSION: u32 = 1;

/// `GET /v1/short-circuit?path=`: where this worker keeps its page files, and the cached version of one
/// file, if it holds one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShortCircuitInfo {
    /// [`SHORT_CIRCUIT_API_VERSION`].
    pub version: u32,
    /// The page store's directory layout version (`v3`: `<dir>/loam-pages/v3/<id[0..2]>/<id>.<generation>.<index>.page`).
    pub layout: String,
    /// The cache directories, in configuration order (empty without a disk tier).
    pub dirs: Vec<String>,
    /// This opening of the page store, as each directory's lock file names it.
    pub instance: String,
    /// The file's cached version, when this worker holds one.
    pub file: Option<ShortCircuitFile>,
}

/// A cached version of a file, as its page files name it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShortCircuitFile {
    /// The file id (`loam_core::file_id` of its UFS URI).
    pub file_id: String,
    /// The generation its pages are stored under.
    pub generation: u64,
    /// Bytes per page.
    pub page_size: u64,
    /// The version's length in bytes.
    pub length: u64,
    /// The version's tag (`loam_core::version`), as the worker's `ETag` names it.
    pub version_tag: String,
}

/// `{"success": true}` of write endpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Success {
    /// Whether the operation succeeded.
    pub success: bool,
}

/// Sizes for humans, as Alluxio prints them (`0B`, `1023B`, `1.00KB`, `1.50MB`).
pub fn human_readable_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KB", "MB", "GB", "TB", "PB"];
    if bytes < 1024 {
        return format!("{bytes}B");
    }
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.2}{}", UNITS[u])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_readable_size(0), "0B");
        assert_eq!(human_readable_size(1023), "1023B");
        assert_eq!(human_readable_size(1536 * 1024), "1.50MB");
    }

    #[test]
    fn field_names() {
        let v = serde_json::to_value(NodeAddress { host: "h".into(), http_server_port: 1 }).unwrap();
        assert_eq!(v, serde_json::json!({"Host": "h", "HttpServerPort": 1}));
    }
}
