//! What is stored with an object besides its bytes ([`ObjectMetadata`]), and how a write is asked to store
//! it ([`WriteOptions`]).
//!
//! Where each UFS keeps it:
//! - **S3**: in the object's own metadata. Content-Type, Cache-Control, Content-Disposition and
//!   Content-Encoding are S3's headers (OpenDAL's write options, returned by its stat); user metadata is
//!   `x-amz-meta-*`. What OpenDAL cannot carry natively (Expires, Content-Language, user values that are
//!   not printable ASCII) goes in one reserved user-metadata key, [`RESERVED_KEY`], a versioned record
//!   ([`Reserved`]) that is filtered out of what clients see. Everything is sent when the upload starts,
//!   so what is only known once the body has ended (the MD5 `etag`, a trailer's checksum) is not stored
//!   there: the backing object's own ETag stands in. A checksum known before the body (sent as a header,
//!   or a multipart upload's, composite or combined from the parts' CRCs) is kept in the record, and so
//!   are a multipart object's part sizes and part checksums where they fit S3's 2 KB of user metadata
//!   (about 70 parts with CRC32 parts' checksums); what does not fit is left out, parts first.
//! - **file://**: an extended attribute on the file, [`XATTR_NAME`], holding a versioned record
//!   ([`FileRecord`]) that names the version tag (`loam_core::version`) of the bytes it describes. It is set
//!   on the hidden sibling before the atomic rename (`streamed_write`), so bytes and metadata appear
//!   together; a file rewritten outside Loam has another tag, and its stale record is ignored.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The user-metadata key (after `x-amz-meta-`) that Loam reserves on S3 UFSes; client keys starting
/// with it are refused.
pub const RESERVED_KEY: &str = "loam-meta";
/// The extended attribute of a `file://` object's metadata record.
pub const XATTR_NAME: &str = "user.loam.meta";
/// Version of [`FileRecord`] and [`Reserved`].
pub const RECORD_VERSION: u32 = 1;

/// An object's metadata: the headers S3 stores with it, its user metadata, and what the S3 API derives
/// from its bytes. `None`/empty fields are absent (the S3 API answers its defaults).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ObjectMetadata {
    /// `Content-Type`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// `Cache-Control`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
    /// `Expires`, as an HTTP date.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// `Content-Disposition`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_disposition: Option<String>,
    /// `Content-Encoding`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    /// `Content-Language`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_language: Option<String>,
    /// `x-amz-meta-*`: lower-case keys without the prefix, values as the client meant them (decoded).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub user: BTreeMap<String, String>,
    /// The S3 ETag of the bytes (no quotes): the MD5 hex of a single PUT, `<md5-of-md5s>-<n>` of a
    /// multipart object. Only kept where it can be stored after the body (`file://`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// A checksum of the bytes the client sent (`x-amz-checksum-*`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<Checksum>,
    /// Part sizes of a multipart object (for `partNumber` and `PartsCount`); empty otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<u64>,
    /// The checksum of each part of a multipart object (base64, of `checksum`'s algorithm), where the
    /// upload computed them (for `partNumber` reads and GetObjectAttributes); empty otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub part_checksums: Vec<String>,
}

/// A checksum as S3 reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checksum {
    /// `CRC32`, `CRC32C`, `CRC64NVME`, `SHA1` or `SHA256`.
    pub algorithm: String,
    /// The value, base64.
    pub value: String,
    /// Of the whole object, or of its parts' checksums.
    pub kind: ChecksumType,
}

/// `x-amz-checksum-type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChecksumType {
    /// `FULL_OBJECT`.
    FullObject,
    /// `COMPOSITE`.
    Composite,
}

impl ObjectMetadata {
    /// Whether a client asked for anything to be stored (headers or user metadata); what the S3 API
    /// derives itself (`etag`, `checksum`, `parts`, `part_checksums`) does not count.
    pub fn has_client_fields(&self) -> bool {
        self.content_type.is_some()
            || self.cache_control.is_some()
            || self.expires.is_some()
            || self.content_disposition.is_some()
            || self.content_encoding.is_some()
            || self.content_language.is_some()
            || !self.user.is_empty()
    }

    /// Whether nothing at all is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The first user-metadata key that collides with [`RESERVED_KEY`], if any.
    pub fn reserved_key(&self) -> Option<&str> {
        self.user.keys().map(String::as_str).find(|k| k.to_ascii_lowercase().starts_with(RESERVED_KEY))
    }
}

/// The `file://` record in [`XATTR_NAME`]: the metadata of the version `tag` of the file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// [`RECORD_VERSION`].
    pub v: u32,
    /// The version tag of the bytes it describes.
    pub tag: String,
    /// The metadata.
    pub meta: ObjectMetadata,
}

/// What an S3 UFS keeps in [`RESERVED_KEY`] (base64 of this JSON): the fields OpenDAL cannot carry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Reserved {
    /// [`RECORD_VERSION`].
    pub v: u32,
    /// `Expires`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// `Content-Language`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_language: Option<String>,
    /// User metadata whose value is not printable ASCII (a header cannot carry it as is).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub user: BTreeMap<String, String>,
    /// The checksum, where it was known before the body (a header's, a multipart upload's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<Checksum>,
    /// Part sizes of a multipart object, where they fit S3's 2 KB with the rest.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<u64>,
    /// The parts' checksums, with `parts`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub part_checksums: Vec<String>,
}

/// A condition on the object a write replaces (RFC 9110 `If-None-Match: *`, `If-Match`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteCondition {
    /// Only if there is no object yet (`If-None-Match: *`).
    NotExists,
    /// Only if the object's ETag (as the S3 API answers it, no quotes) is this one (`If-Match`).
    Matches(String),
    /// Only if there is an object (`If-Match: *`); `NotFound` when there is none.
    Exists,
    /// Unless the object's ETag is this one (`If-None-Match: <etag>`); a missing object is written.
    NoneMatch(String),
}

impl WriteCondition {
    /// Whether the condition holds for an object whose ETag (as answered, no quotes) is `etag`, or for no
    /// object (`None`); `Err(NotFound)` is the caller's to raise where the condition needs an object.
    pub fn holds(&self, etag: Option<&str>) -> Result<bool, crate::UfsError> {
        let unquote = loam_core::version::unquote;
        match (self, etag) {
            (WriteCondition::NotExists, found) => Ok(found.is_none()),
            (WriteCondition::Matches(_) | WriteCondition::Exists, None) => {
                Err(crate::UfsError::NotFound("the object the condition names".into()))
            }
            (WriteCondition::Matches(want), Some(e)) => Ok(unquote(want) == e),
            (WriteCondition::Exists, Some(_)) => Ok(true),
            (WriteCondition::NoneMatch(_), None) => Ok(true),
            (WriteCondition::NoneMatch(not), Some(e)) => Ok(unquote(not) != e),
        }
    }
}

/// Called once the body has ended, before the object becomes visible, to amend the metadata with what
/// only the whole body tells (its MD5, a trailer's checksum).
pub type Amend = Arc<dyn Fn(&mut ObjectMetadata) + Send + Sync>;

/// How [`Ufs::write_stream`](crate::Ufs::write_stream) writes: what it stores with the bytes, and when.
#[derive(Clone, Default)]
pub struct WriteOptions {
    /// The metadata to store (empty: none; a file written without it has none afterwards).
    pub metadata: ObjectMetadata,
    /// Completes `metadata` after the body (see [`Amend`]); `file://` stores what it adds, S3 cannot.
    pub amend: Option<Amend>,
    /// A condition on the object replaced; when it does not hold, nothing is written
    /// ([`UfsError::ConditionFailed`](crate::UfsError::ConditionFailed)).
    pub condition: Option<WriteCondition>,
}

impl std::fmt::Debug for WriteOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteOptions")
            .field("metadata", &self.metadata)
            .field("amend", &self.amend.is_some())
            .field("condition", &self.condition)
            .finish()
    }
}

impl WriteOptions {
    /// Options that store `metadata`.
    pub fn with_metadata(metadata: ObjectMetadata) -> Self {
        Self { metadata, ..Default::default() }
    }

    /// The metadata with the amendment applied (what is stored once the body has ended).
    pub fn finished_metadata(&self) -> ObjectMetadata {
        let mut meta = self.metadata.clone();
        if let Some(amend) = &self.amend {
            amend(&mut meta);
        }
        meta
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_skip_what_is_unset() {
        let mut meta = ObjectMetadata { content_type: Some("text/plain".into()), ..Default::default() };
        meta.user.insert("k".into(), "vé".into());
        let rec = FileRecord { v: RECORD_VERSION, tag: "3-1".into(), meta };
        let json = serde_json::to_string(&rec).unwrap();
        assert!(!json.contains("cache_control"), "{json}");
        assert_eq!(serde_json::from_str::<FileRecord>(&json).unwrap(), rec);
        assert!(rec.meta.has_client_fields());
        let derived = ObjectMetadata { etag: Some("abc".into()), ..Default::default() };
        assert!(!derived.has_client_fields() && !derived.is_empty());
    }

    #[test]
    fn reserved_keys_are_found_in_any_case() {
        let mut meta = ObjectMetadata::default();
        meta.user.insert("plain".into(), "x".into());
        assert_eq!(meta.reserved_key(), None);
        meta.user.insert("Loam-Meta-x".into(), "x".into());
        assert_eq!(meta.reserved_key(), Some("Loam-Meta-x"));
    }
}
