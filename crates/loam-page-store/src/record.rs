//! The per-file record: which UFS object version (length, ETag, modification time) a cached file's pages
//! came from, and when the worker last checked it.
//!
//! On disk it is a line of the cache directory's record log (`record_log.rs`): the record's own fields
//! (with their `version`) plus the *generation* the file's pages were written under. A generation is assigned each time a file
//! is cached anew (first time, or after its UFS object changed) and is stamped into every page header, so a
//! page left over from an older version can never pass for the current one, during a race or after a
//! restart.

use serde::{Deserialize, Serialize};

/// Format version of [`FileRecord`] as stored.
pub const FILE_RECORD_VERSION: u32 = 1;

/// Per-file record, persisted (serde JSON with a `version` field).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// Format version, [`FILE_RECORD_VERSION`].
    pub version: u32,
    /// `loam_core::file_id(ufs_uri)`.
    pub file_id: String,
    /// The file's full UFS URI.
    pub ufs_uri: String,
    /// Length in bytes of the UFS object the pages came from.
    pub length: u64,
    /// ETag of that object, if the UFS has them.
    pub etag: Option<String>,
    /// Modification time of that object (ms since the epoch), if known.
    pub modified_ms: Option<i64>,
    /// When the worker last checked it against the UFS (ms since the epoch).
    pub validated_ms: i64,
    /// When the record was first cached (ms since the epoch).
    pub cached_ms: i64,
}

impl FileRecord {
    /// A record for `ufs_uri` in the current format, checked and cached at `now_ms`.
    pub fn new(ufs_uri: &str, length: u64, etag: Option<String>, modified_ms: Option<i64>, now_ms: i64) -> Self {
        Self {
            version: FILE_RECORD_VERSION,
            file_id: loam_core::file_id(ufs_uri),
            ufs_uri: ufs_uri.to_owned(),
            length,
            etag,
            modified_ms,
            validated_ms: now_ms,
            cached_ms: now_ms,
        }
    }

    /// Whether `other` describes the same UFS object version (same length, ETag and modification time).
    pub fn same_version(&self, other: &FileRecord) -> bool {
        (self.length, &self.etag, self.modified_ms) == (other.length, &other.etag, other.modified_ms)
    }

    /// How many pages of `page_size` bytes the file has.
    pub fn page_count(&self, page_size: u64) -> u64 {
        self.length.div_ceil(page_size)
    }

    /// The length of page `index` (the last page is shorter), or `None` past the end of the file.
    pub fn page_len(&self, page_size: u64, index: u64) -> Option<u64> {
        let start = index.checked_mul(page_size)?;
        (start < self.length).then(|| (self.length - start).min(page_size))
    }
}

/// A record as stored, with its generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct StoredRecord {
    #[serde(flatten)]
    pub(super) record: FileRecord,
    /// The generation stamped into the headers of this version's pages.
    pub(super) generation: u64,
}

/// Decodes a stored record, checking the format version before the fields so that a record written by a
/// newer format is recognised as such rather than misread.
pub(super) fn decode_value(value: serde_json::Value) -> Result<StoredRecord, String> {
    match value.get("version").and_then(serde_json::Value::as_u64) {
        Some(v) if v == u64::from(FILE_RECORD_VERSION) => {}
        Some(v) => return Err(format!("unknown record version {v}")),
        None => return Err("no record version".into()),
    }
    serde_json::from_value(value).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored() -> StoredRecord {
        let record = FileRecord::new("s3://b/k", 10, Some("e1".into()), Some(5), 100);
        StoredRecord { record, generation: 7 }
    }

    #[test]
    fn round_trips_through_json_with_version_and_generation() {
        let s = stored();
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains("\"version\":1") && json.contains("\"generation\":7"), "{json}");
        assert_eq!(decode_value(serde_json::from_str(&json).unwrap()).unwrap(), s);
    }

    #[test]
    fn rejects_unknown_versions_and_garbage() {
        let mut value = serde_json::to_value(stored()).unwrap();
        value["version"] = 2.into();
        let err = decode_value(value).unwrap_err();
        assert!(err.contains("unknown record version 2"), "{err}");
        assert!(decode_value(serde_json::json!({"version": 1})).is_err());
        assert!(decode_value(serde_json::json!("not a record")).is_err());
    }

    #[test]
    fn page_lengths_follow_the_file_length() {
        let r = FileRecord::new("s3://b/k", 150, None, None, 0);
        assert_eq!(r.page_count(64), 3);
        assert_eq!(r.page_len(64, 0), Some(64));
        assert_eq!(r.page_len(64, 2), Some(22));
        assert_eq!(r.page_len(64, 3), None);
        assert_eq!(r.page_len(64, u64::MAX), None);
        assert_eq!(FileRecord::new("s3://b/e", 0, None, None, 0).page_len(64, 0), None);
    }

    #[test]
    fn same_version_ignores_check_times() {
        let a = FileRecord::new("s3://b/k", 10, Some("e".into()), Some(1), 100);
        let mut b = a.clone();
        b.validated_ms = 999;
        b.cached_ms = 999;
        assert!(a.same_version(&b));
        b.etag = Some("f".into());
        assert!(!a.same_version(&b));
    }
}
