//! The parts of multipart uploads on the worker's disk, until Complete streams them to the UFS.
//!
//! Layout, under `<data-dir>/s3-multipart`:
//!
//! ```text
//! <upload-id>/manifest.json   {"version": 1, "bucket": "data", "key": "a/b", "created_ms": …}
//! <upload-id>/<part>          the part's bytes (part = 1..=10000)
//! <upload-id>/<part>.json     {"version": 1, "etag": "<md5 hex>", "size": …, "modified_ms": …, "checksum": …}
//! <upload-id>/completed.json  after Complete: the part list it was given and its result
//! ```
//!
//! A part is written to a temporary file while its MD5 (its S3 ETag) and checksum are computed
//! (`verify`), then renamed into place together with its record under the upload's lock, so a part
//! uploaded twice at once ends as one of the two, bytes and record alike. Complete holds the same lock
//! while it writes the object, so parts cannot change under it, a second Complete waits for the first
//! and an Abort cannot remove the parts midway. A completed upload keeps its manifest and
//! `completed.json` (its parts are deleted) until it expires: a repeated Complete with the same part
//! list answers the same result, anything else sees no upload. Upload ids are 32 lowercase hex digits (a UUID): anything else is
//! no upload, so a client cannot name a path outside the directory. Uploads are local to the worker
//! that created them: a client sends all requests of one upload to the same endpoint.

use crate::s3_api::multipart::MAX_PART_SIZE;
use crate::s3_api::verify::{Algorithm, Checked, Kind, ObjectChecksum};
use bytes::Bytes;
use futures::stream::{BoxStream, Stream, StreamExt, TryStreamExt};
use loam_core::ErrorKind;
use loam_core::time::now_millis;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::sync::OwnedMutexGuard;

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
    /// The part is larger than S3 allows.
    #[error("Your proposed upload exceeds the maximum allowed size: a part holds at most {0} bytes")]
    TooLarge(u64),
    /// A record is unreadable or of an unknown version.
    #[error("multipart upload {0}: {1}")]
    Corrupt(String, String),
}

impl UploadError {
    /// The error's kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            UploadError::NoSuchUpload(_) => ErrorKind::NotFound,
            UploadError::InvalidInput(_) | UploadError::Body(_) | UploadError::TooLarge(_) => ErrorKind::InvalidInput,
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
    /// The checksum algorithm every part carries (CreateMultipartUpload's `ChecksumAlgorithm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<Algorithm>,
    /// Whether the object's checksum is composite or full-object (`ChecksumType`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_type: Option<Kind>,
}

/// What a completed upload made: the object's record, to be stored with it (and answered again to a
/// repeated Complete).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletedObject {
    /// S3's ETag of a multipart object: hex MD5 of the parts' MD5s, `-<number of parts>`.
    pub etag: String,
    /// The ETag the answer carried (the UFS's, which HEAD shows until objects carry their own).
    pub answered_etag: String,
    /// Length of the object.
    pub size: u64,
    /// The sizes of its parts, in order (GetObject `partNumber`, `PartsCount`).
    pub part_sizes: Vec<u64>,
    /// Its checksum, when the upload asked for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<ObjectChecksum>,
}

/// A completed upload's record: the part list Complete was given and what it made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Completion {
    /// Format version.
    pub version: u32,
    /// `(part number, ETag)` as Complete listed them.
    pub parts: Vec<(i32, String)>,
    /// The result.
    pub object: CompletedObject,
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
    locks: parking_lot::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// The lock of one upload (see the module header), held by whoever changes it.
pub struct UploadLock(#[allow(dead_code)] OwnedMutexGuard<()>);

fn is_upload_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl UploadStore {
    /// The uploads under `root` (created on first use).
    pub fn new(root: PathBuf) -> Self {
        Self { root, locks: parking_lot::Mutex::new(HashMap::new()) }
    }

    /// The directory that holds the uploads.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn lock_of(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks.lock().entry(id.to_string()).or_default().clone()
    }

    /// Takes the lock of upload `id`, waiting for its holder.
    pub async fn lock(&self, id: &str) -> UploadLock {
        UploadLock(self.lock_of(id).lock_owned().await)
    }

    /// Takes the lock of upload `id` unless it is held.
    fn try_lock(&self, id: &str) -> Option<UploadLock> {
        self.lock_of(id).try_lock_owned().ok().map(UploadLock)
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
    pub async fn create(
        &self,
        bucket: &str,
        key: &str,
        metadata: loam_ufs::ObjectMetadata,
        checksum: Option<Algorithm>,
        checksum_type: Option<Kind>,
    ) -> UploadResult<String> {
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
            checksum,
            checksum_type,
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

    /// The manifest of upload `id` while parts may still be added (not completed).
    pub async fn live_manifest(&self, id: &str) -> UploadResult<Manifest> {
        let m = self.manifest(id).await?;
        if self.completion(id).await?.is_some() {
            return Err(UploadError::NoSuchUpload(id.into()));
        }
        Ok(m)
    }

    /// The record of upload `id` once completed.
    pub async fn completion(&self, id: &str) -> UploadResult<Option<Completion>> {
        match read_json::<Completion>(&self.dir(id)?.join("completed.json")).await {
            Ok(c) if c.version == UPLOAD_FORMAT_VERSION => Ok(Some(c)),
            Ok(c) => Err(UploadError::Corrupt(id.into(), format!("completion version {} is not supported", c.version))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(UploadError::Corrupt(id.into(), e.to_string())),
        }
    }

    /// Records upload `id` as completed (its lock held) and deletes its parts.
    pub async fn complete(&self, _lock: &UploadLock, id: &str, c: &Completion) -> UploadResult<()> {
        let dir = self.dir(id)?;
        write_json(&dir.join("completed.json"), c).await.map_err(Self::io(id))?;
        let mut entries = tokio::fs::read_dir(&dir).await.map_err(Self::io(id))?;
        while let Some(e) = entries.next_entry().await.map_err(Self::io(id))? {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name != "manifest.json" && name != "completed.json" {
                let _ = tokio::fs::remove_file(e.path()).await;
            }
        }
        Ok(())
    }

    /// The uploads not yet completed, with their manifests, in no order.
    pub async fn live_uploads(&self) -> UploadResult<Vec<(String, Manifest)>> {
        let mut out = Vec::new();
        for id in self.ids().await? {
            match self.live_manifest(&id).await {
                Ok(m) => out.push((id, m)),
                Err(UploadError::NoSuchUpload(_)) => {}
                Err(e) => tracing::warn!("S3 multipart upload {id} is skipped in listings: {e}"),
            }
        }
        Ok(out)
    }

    async fn ids(&self) -> UploadResult<Vec<String>> {
        let mut entries = match tokio::fs::read_dir(&self.root).await {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Self::io("(all)")(e)),
        };
        let mut ids = Vec::new();
        while let Some(e) = entries.next_entry().await.map_err(Self::io("(all)"))? {
            if let Some(id) = e.file_name().to_str().filter(|n| is_upload_id(n)) {
                ids.push(id.to_string());
            }
        }
        Ok(ids)
    }

    /// Removes every upload (completed or not) created before `cutoff_ms`, skipping those in use;
    /// returns how many went. An upload whose manifest cannot be read goes by its directory's age.
    pub async fn expire(&self, cutoff_ms: i64) -> UploadResult<usize> {
        let mut removed = 0;
        for id in self.ids().await? {
            let created = match self.manifest(&id).await {
                Ok(m) => m.created_ms,
                Err(_) => match tokio::fs::metadata(self.dir(&id)?).await.and_then(|m| m.modified()) {
                    Ok(t) => loam_core::time::epoch_millis(t),
                    Err(_) => continue,
                },
            };
            if created >= cutoff_ms {
                continue;
            }
            let Some(_lock) = self.try_lock(&id) else { continue };
            match tokio::fs::remove_dir_all(self.dir(&id)?).await {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!("expired S3 multipart upload {id} could not be removed: {e}"),
            }
            self.locks.lock().remove(&id);
        }
        Ok(removed)
    }

    /// Stores part `n` of upload `id` from `body` (checked by `verify`, which computes its MD5 and
    /// checksum in the same pass); returns its record.
    pub async fn put_part(&self, id: &str, n: i32, body: Checked) -> UploadResult<PartRecord> {
        if !(1..=MAX_PART_NUMBER).contains(&n) {
            return Err(UploadError::InvalidInput(format!("part number {n} is not in 1..={MAX_PART_NUMBER}")));
        }
        self.live_manifest(id).await?;
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
                    PartWriteError::TooLarge => UploadError::TooLarge(MAX_PART_SIZE),
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
        let _lock = self.lock(id).await;
        // An abort or a Complete may have ended the upload meanwhile: then this part has nowhere to go.
        if let Err(e) = self.live_manifest(id).await {
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

    /// Aborts upload `id`: removes it and its parts; a completed one is no upload.
    pub async fn remove(&self, id: &str) -> UploadResult<()> {
        self.dir(id)?;
        let _lock = self.lock(id).await;
        self.live_manifest(id).await?;
        tokio::fs::remove_dir_all(self.dir(id)?).await.map_err(Self::io(id))?;
        self.locks.lock().remove(id);
        Ok(())
    }
}

enum PartWriteError {
    Body(std::io::Error),
    Disk(std::io::Error),
    TooLarge,
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
    let mut size = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(PartWriteError::Body)?;
        size += chunk.len() as u64;
        if size > MAX_PART_SIZE {
            return Err(PartWriteError::TooLarge);
        }
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
        let id = store.create("data", "a/b", Default::default(), None, None).await.unwrap();
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
        let id = store.create("b", "k", Default::default(), None, None).await.unwrap();
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

    #[tokio::test]
    async fn a_completed_upload_keeps_its_result_and_takes_nothing_more() {
        let dir = tempfile::tempdir().unwrap();
        let store = UploadStore::new(dir.path().join("mp"));
        let id =
            store.create("b", "k", Default::default(), Some(Algorithm::Crc32), Some(Kind::Composite)).await.unwrap();
        store.put_part(&id, 1, body(&[b"one"])).await.unwrap();
        let object = CompletedObject {
            etag: "e-1".into(),
            answered_etag: "u".into(),
            size: 3,
            part_sizes: vec![3],
            checksum: None,
        };
        let c = Completion { version: UPLOAD_FORMAT_VERSION, parts: vec![(1, "x".into())], object };
        let lock = store.lock(&id).await;
        store.complete(&lock, &id, &c).await.unwrap();
        drop(lock);
        assert_eq!(store.completion(&id).await.unwrap(), Some(c));
        assert_eq!(store.manifest(&id).await.unwrap().checksum, Some(Algorithm::Crc32));
        assert!(matches!(store.live_manifest(&id).await, Err(UploadError::NoSuchUpload(_))));
        assert!(matches!(store.put_part(&id, 2, body(&[b"two"])).await, Err(UploadError::NoSuchUpload(_))));
        assert!(matches!(store.remove(&id).await, Err(UploadError::NoSuchUpload(_))));
        assert!(store.live_uploads().await.unwrap().is_empty());
        let mut left: Vec<_> =
            std::fs::read_dir(dir.path().join("mp").join(&id)).unwrap().map(|e| e.unwrap().file_name()).collect();
        left.sort();
        assert_eq!(left, ["completed.json", "manifest.json"], "the parts are gone");
    }
}
