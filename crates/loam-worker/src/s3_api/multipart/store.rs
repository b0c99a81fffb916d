//! The parts of multipart uploads on the worker's disk, until Complete streams them to the UFS.
//!
//! Layout, under `<data-dir>/s3-multipart`:
//!
//! ```text
//! <upload-id>/manifest.json   {"version": 1, "bucket": "data", "key": "a/b", "created_ms": …}
//! <upload-id>/<part>          the part's bytes (part = 1..=10000)
//! <upload-id>/<part>.json     {"version": 1, "etag": "<md5 hex>", "size": …, "modified_ms": …}
//! ```
//!
//! A part is written to a temporary file while its MD5 (its S3 ETag) is computed, then renamed into
//! place together with its record, under one lock, so a part uploaded twice at once ends as one of
//! the two, bytes and record alike. Upload ids are 32 lowercase hex digits (a UUID): anything else is
//! no upload, so a client cannot name a path outside the directory. Uploads are local to the worker
//! that created them: a client sends all requests of one upload to the same endpoint.

use crate::s3_api::verify::{Checked, ObjectChecksum};
use bytes::Bytes;
use futures::stream::{BoxStream, Stream, StreamExt, TryStreamExt};
use loam_core::ErrorKind;
use loam_core::time::now_millis;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// Version of `manifest.json` and of part records.
pub const UPLOAD_FORMAT_VERSION: u32 = 1;
/// Highest part number S3 allows.
pub const MAX_PART_NUMBER: i32 = 10_000;
/// Bytes read from a part file at a time when the parts are streamed on.
const READ_CHUNK: usize = 1 << 20;

/// Why a multipart store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// No such upload (never created, completed, aborted, or an id of the wrong form).
    #[error("The specified multipart upload does not exist: {0}")]
    NoSuchUpload(String),
    /// A request parameter is out of range.
    #[error("{0}")]
    InvalidInput(String),
    /// A file of the upload could not be read or written.
    #[error("multipart upload {upload}: {source}")]
    Io {
        /// The upload.
        upload: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The client's body failed while it was read.
    #[error("reading the part's body failed: {0}")]
    Body(std::io::Error),
    /// A record is unreadable or of an unknown version.
    #[error("multipart upload {0}: {1}")]
    Corrupt(String, String),
}

impl UploadError {
    /// The error's kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            UploadError::NoSuchUpload(_) => ErrorKind::NotFound,
            UploadError::InvalidInput(_) | UploadError::Body(_) => ErrorKind::InvalidInput,
            UploadError::Io { .. } => ErrorKind::Unavailable,
            UploadError::Corrupt(..) => ErrorKind::Corrupt,
        }
    }
}

/// Result of a store operation.
pub type UploadResult<T> = Result<T, UploadError>;

/// An upload's manifest: what the parts will become.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version.
    pub version: u32,
    /// Bucket of the object.
    pub bucket: String,
    /// Key of the object.
    pub key: String,
    /// When the upload was created.
    pub created_ms: i64,
    /// What CreateMultipartUpload asked to store with the object (applied at Complete).
    #[serde(default)]
    pub metadata: loam_ufs::ObjectMetadata,
}

/// A stored part.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRecord {
    /// Format version.
    pub version: u32,
    /// Part number (1..=10000).
    #[serde(default)]
    pub number: i32,
    /// MD5 of the bytes, lowercase hex: the part's ETag.
    pub etag: String,
    /// Length in bytes.
    pub size: u64,
    /// When it was stored.
    pub modified_ms: i64,
    /// Its checksum, when the request sent one or the upload asked for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<ObjectChecksum>,
}

/// The multipart uploads of one worker.
pub struct UploadStore {
    root: PathBuf,
    commit: tokio::sync::Mutex<()>,
}

fn is_upload_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl UploadStore {
    /// The uploads under `root` (created on first use).
    pub fn new(root: PathBuf) -> Self {
        Self { root, commit: tokio::sync::Mutex::new(()) }
    }

    fn dir(&self, id: &str) -> UploadResult<PathBuf> {
        if !is_upload_id(id) {
            return Err(UploadError::NoSuchUpload(id.to_string()));
        }
        Ok(self.root.join(id))
    }

    fn io(id: &str) -> impl FnOnce(std::io::Error) -> UploadError + '_ {
        move |source| UploadError::Io { upload: id.to_string(), source }
    }

    /// The bytes of part `n` of upload `id`.
    pub fn part_path(&self, id: &str, n: i32) -> UploadResult<PathBuf> {
        Ok(self.dir(id)?.join(n.to_string()))
    }

    /// Starts an upload of `bucket`/`key`; returns its id.
    pub async fn create(&self, bucket: &str, key: &str, metadata: loam_ufs::ObjectMetadata) -> UploadResult<String> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = self.dir(&id)?;
        let private = dir.clone();
        tokio::task::spawn_blocking(move || loam_core::private_fs::create_dir_all(&private))
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r)
            .map_err(Self::io(&id))?;
        let m = Manifest {
            version: UPLOAD_FORMAT_VERSION,
            bucket: bucket.to_string(),
            key: key.to_string(),
            created_ms: now_millis(),
            metadata,
        };
        write_json(&dir.join("manifest.json"), &m).await.map_err(Self::io(&id))?;
        Ok(id)
    }

    /// The manifest of upload `id`.
    pub async fn manifest(&self, id: &str) -> UploadResult<Manifest> {
        let path = self.dir(id)?.join("manifest.json");
        let m: Manifest = match read_json(&path).await {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(UploadError::NoSuchUpload(id.into())),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                return Err(UploadError::Corrupt(id.into(), e.to_string()));
            }
            Err(e) => return Err(Self::io(id)(e)),
        };
        if m.version != UPLOAD_FORMAT_VERSION {
            return Err(UploadError::Corrupt(id.into(), format!("manifest version {} is not supported", m.version)));
        }
        Ok(m)
    }

    /// Stores part `n` of upload `id` from `body` (checked by `verify`, which computes its MD5 and
    /// checksum in the same pass); returns its record.
    pub async fn put_part(&self, id: &str, n: i32, body: Checked) -> UploadResult<PartRecord> {
        if !(1..=MAX_PART_NUMBER).contains(&n) {
            return Err(UploadError::InvalidInput(format!("part number {n} is not in 1..={MAX_PART_NUMBER}")));
        }
        self.manifest(id).await?;
        let dir = self.dir(id)?;
        let tmp = dir.join(format!(".{n}.{}.tmp", uuid::Uuid::new_v4().simple()));
        let written = write_part(&tmp, body.body).await;
        let digests = match written.and_then(|()| body.outcome.digests().ok_or(PartWriteError::Unchecked)) {
            Ok(d) => d,
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(match e {
                    PartWriteError::Body(e) => UploadError::Body(e),
                    PartWriteError::Disk(e) => Self::io(id)(e),
                    PartWriteError::Unchecked => UploadError::Body(std::io::Error::other("the body ended unchecked")),
                });
            }
        };
        let rec = PartRecord {
            version: UPLOAD_FORMAT_VERSION,
            number: n,
            etag: digests.md5_hex(),
            size: digests.size,
            modified_ms: now_millis(),
            checksum: digests.checksum,
        };
        let _commit = self.commit.lock().await;
        // An abort may have removed the upload meanwhile: then this part has nowhere to go.
        if let Err(e) = self.manifest(id).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
        tokio::fs::rename(&tmp, dir.join(n.to_string())).await.map_err(Self::io(id))?;
        write_json(&dir.join(format!("{n}.json")), &rec).await.map_err(Self::io(id))?;
        Ok(rec)
    }

    /// The stored parts of upload `id`, by part number.
    pub async fn parts(&self, id: &str) -> UploadResult<Vec<PartRecord>> {
        self.manifest(id).await?;
        let dir = self.dir(id)?;
        let mut entries = tokio::fs::read_dir(&dir).await.map_err(Self::io(id))?;
        let mut out = Vec::new();
        while let Some(e) = entries.next_entry().await.map_err(Self::io(id))? {
            let name = e.file_name();
            let Some(n) = name.to_str().and_then(|s| s.strip_suffix(".json")).and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            let mut rec: PartRecord =
                read_json(&e.path()).await.map_err(|e| UploadError::Corrupt(id.into(), e.to_string()))?;
            if rec.version != UPLOAD_FORMAT_VERSION {
                return Err(UploadError::Corrupt(
                    id.into(),
                    format!("part {n}: version {} is not supported", rec.version),
                ));
            }
            rec.number = n;
            out.push(rec);
        }
        out.sort_by_key(|r| r.number);
        Ok(out)
    }

    /// The bytes of `parts` of upload `id`, one after the other, read a chunk at a time.
    pub fn concat(&self, id: &str, parts: &[i32]) -> UploadResult<BoxStream<'static, std::io::Result<Bytes>>> {
        let paths = parts.iter().map(|n| self.part_path(id, *n)).collect::<UploadResult<Vec<_>>>()?;
        Ok(futures::stream::iter(paths)
            .then(|p| async move {
                let f = tokio::fs::File::open(p).await?;
                Ok::<_, std::io::Error>(tokio_util::io::ReaderStream::with_capacity(f, READ_CHUNK))
            })
            .try_flatten()
            .boxed())
    }

    /// Removes upload `id` and its parts.
    pub async fn remove(&self, id: &str) -> UploadResult<()> {
        self.manifest(id).await?;
        let _commit = self.commit.lock().await;
        tokio::fs::remove_dir_all(self.dir(id)?).await.map_err(Self::io(id))
    }
}

enum PartWriteError {
    Body(std::io::Error),
    Disk(std::io::Error),
    /// The body ended without its outcome (cannot happen with `verify::check`'s stream).
    Unchecked,
}

/// Writes `body` to `path`.
async fn write_part(
    path: &Path,
    body: impl Stream<Item = std::io::Result<Bytes>> + Send,
) -> Result<(), PartWriteError> {
    let mut file = private_create(path).await.map_err(PartWriteError::Disk)?;
    let mut body = std::pin::pin!(body);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(PartWriteError::Body)?;
        file.write_all(&chunk).await.map_err(PartWriteError::Disk)?;
    }
    file.flush().await.map_err(PartWriteError::Disk)
}

/// Writes `value` as JSON to `path` through a temporary file and a rename, so a reader never sees half.
async fn write_json<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let text = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    let tmp = path.with_extension(format!("{}.tmp", uuid::Uuid::new_v4().simple()));
    private_create(&tmp).await?.write_all(&text).await?;
    tokio::fs::rename(&tmp, path).await
}

/// A new file (truncated if it exists), readable by this user only (`loam_core::private_fs`).
async fn private_create(path: &Path) -> std::io::Result<tokio::fs::File> {
    tokio::fs::OpenOptions::from(loam_core::private_fs::open_options())
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .await
}

async fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> std::io::Result<T> {
    let text = tokio::fs::read(path).await?;
    serde_json::from_slice(&text).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::s3_api::verify::{Expected, check};
    use md5::{Digest, Md5};

    fn body(parts: &[&'static [u8]]) -> Checked {
        let s = futures::stream::iter(
            parts.iter().map(|p| Ok::<_, std::io::Error>(Bytes::from_static(p))).collect::<Vec<_>>(),
        );
        check(s, Expected::default())
    }

    #[tokio::test]
    async fn parts_are_stored_listed_concatenated_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = UploadStore::new(dir.path().join("s3-multipart"));
        let id = store.create("data", "a/b", Default::default()).await.unwrap();
        assert!(is_upload_id(&id));
        let m = store.manifest(&id).await.unwrap();
        assert_eq!((m.version, m.bucket.as_str(), m.key.as_str()), (1, "data", "a/b"));
        let p2 = store.put_part(&id, 2, body(&[b"wor", b"ld"])).await.unwrap();
        let p1 = store.put_part(&id, 1, body(&[b"hello "])).await.unwrap();
        assert_eq!(p1.etag, hex::encode(Md5::digest(b"hello ")));
        assert_eq!((p2.size, p2.number), (5, 2));
        // A part uploaded again replaces the first one.
        let p2 = store.put_part(&id, 2, body(&[b"world!"])).await.unwrap();
        let parts = store.parts(&id).await.unwrap();
        assert_eq!(parts, vec![p1, p2]);
        let all: Vec<Bytes> = store.concat(&id, &[1, 2]).unwrap().try_collect().await.unwrap();
        assert_eq!(all.concat(), b"hello world!");
        store.remove(&id).await.unwrap();
        assert!(matches!(store.manifest(&id).await, Err(UploadError::NoSuchUpload(_))));
        assert!(!dir.path().join("s3-multipart").join(&id).exists());
    }

    #[tokio::test]
    async fn bad_ids_numbers_and_versions_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = UploadStore::new(dir.path().to_path_buf());
        for id in ["../x", "", "ABCDEF0123456789ABCDEF0123456789", "0123"] {
            assert!(matches!(store.manifest(id).await, Err(UploadError::NoSuchUpload(_))), "{id}");
        }
        let id = store.create("b", "k", Default::default()).await.unwrap();
        for n in [0, MAX_PART_NUMBER + 1] {
            assert_eq!(store.put_part(&id, n, body(&[b"x"])).await.unwrap_err().kind(), ErrorKind::InvalidInput);
        }
        let failing = futures::stream::iter(vec![Ok(Bytes::from_static(b"x")), Err(std::io::Error::other("cut"))]);
        assert!(matches!(store.put_part(&id, 1, check(failing, Expected::default())).await, Err(UploadError::Body(_))));
        assert!(store.parts(&id).await.unwrap().is_empty(), "a failed body stores nothing");
        let manifest = dir.path().join(&id).join("manifest.json");
        std::fs::write(&manifest, br#"{"version": 2, "bucket": "b", "key": "k", "created_ms": 0}"#).unwrap();
        assert_eq!(store.manifest(&id).await.unwrap_err().kind(), ErrorKind::Corrupt);
    }
}
