//! Multipart upload: Create, UploadPart, ListParts, Complete, Abort.
//!
//! Parts wait on the worker's disk (`store`); Complete checks the list the client sends against them as
//! S3 does (ascending part numbers, matching ETags, every part but the last at least 5 MiB), then
//! streams their concatenation through `WriteThrough::put`, so the object appears in the UFS whole or
//! not at all and no cache keeps an older version. That can take a while for a large object, so the
//! answer is a `200` whose body `s3s` keeps alive with whitespace until the XML result (or error) is
//! ready, as S3 itself does. The parts are removed once the object is written; if writing fails they
//! stay, and the client may retry Complete or Abort.
//!
//! The object's ETag is the one a HEAD will show (the UFS's, or one made of length and time), not
//! S3's MD5-of-MD5s: the UFS, not this worker, holds the object from then on.

pub mod store;

use crate::http_api::WorkerState;
use crate::s3_api::buckets;
use crate::s3_api::errors::path_conflict;
use crate::s3_api::metadata::{self, Requested};
use crate::s3_api::objects::remember;
use crate::s3_api::verify::{self, Expected};
use loam_core::ErrorKind;
use loam_ufs::WriteOptions;
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Result, s3_error};
use std::sync::Arc;
use store::{Manifest, UploadStore};

/// The least size of every part but the last (S3's rule).
pub const MIN_PART_SIZE: u64 = 5 << 20;
/// Parts listed per ListParts page by default.
const MAX_PARTS: i32 = 1000;

/// The manifest of `upload_id`, which must be an upload of `bucket`/`key`.
async fn upload_of(uploads: &UploadStore, upload_id: &str, bucket: &str, key: &str) -> S3Result<Manifest> {
    let m = uploads.manifest(upload_id).await?;
    if m.bucket != bucket || m.key != key {
        return Err(S3Error::with_message(
            S3ErrorCode::NoSuchUpload,
            format!("upload {upload_id} is not an upload of {bucket}/{key}"),
        ));
    }
    Ok(m)
}

/// CreateMultipartUpload.
pub async fn create(
    state: &WorkerState,
    uploads: &UploadStore,
    input: CreateMultipartUploadInput,
) -> S3Result<CreateMultipartUploadOutput> {
    let t = buckets::object(state, &input.bucket, &input.key)?;
    if t.is_dir {
        return Err(s3_error!(
            InvalidArgument,
            "key {} ends in '/': it names a directory, which holds no bytes",
            t.key
        ));
    }
    let metadata = metadata::requested(Requested {
        content_type: input.content_type,
        cache_control: input.cache_control,
        content_disposition: input.content_disposition,
        content_encoding: input.content_encoding,
        content_language: input.content_language,
        expires: input.expires,
        user: input.metadata,
    })?;
    let id = uploads.create(&input.bucket, &input.key, metadata).await?;
    Ok(CreateMultipartUploadOutput {
        bucket: Some(input.bucket),
        key: Some(input.key),
        upload_id: Some(id),
        ..Default::default()
    })
}

/// UploadPart: stores the part, checked as `expected` asks (`verify`); its ETag is its MD5.
pub async fn upload_part(
    uploads: &UploadStore,
    input: UploadPartInput,
    expected: Expected,
) -> S3Result<UploadPartOutput> {
    upload_of(uploads, &input.upload_id, &input.bucket, &input.key).await?;
    let checked = verify::check_blob(input.body, expected);
    let outcome = checked.outcome.clone();
    let rec = uploads.put_part(&input.upload_id, input.part_number, checked).await.map_err(|e| outcome.error_or(e))?;
    let sums = verify::fields(rec.checksum.as_ref());
    Ok(UploadPartOutput {
        e_tag: Some(ETag::Strong(rec.etag)),
        checksum_crc32: sums.crc32,
        checksum_crc32c: sums.crc32c,
        checksum_crc64nvme: sums.crc64nvme,
        checksum_sha1: sums.sha1,
        checksum_sha256: sums.sha256,
        ..Default::default()
    })
}

/// ListParts, after `part-number-marker`, `max-parts` at a time.
pub async fn list_parts(uploads: &UploadStore, input: ListPartsInput) -> S3Result<ListPartsOutput> {
    upload_of(uploads, &input.upload_id, &input.bucket, &input.key).await?;
    let marker = input.part_number_marker.unwrap_or(0);
    let max = input.max_parts.unwrap_or(MAX_PARTS).clamp(0, MAX_PARTS);
    let mut parts: Vec<_> = uploads.parts(&input.upload_id).await?.into_iter().filter(|p| p.number > marker).collect();
    let truncated = parts.len() > max as usize;
    parts.truncate(max as usize);
    let next = truncated.then(|| parts.last().map(|p| p.number)).flatten();
    let parts = parts
        .into_iter()
        .map(|p| Part {
            part_number: Some(p.number),
            e_tag: Some(ETag::Strong(p.etag)),
            size: Some(i64::try_from(p.size).unwrap_or(i64::MAX)),
            last_modified: Some(Timestamp::from(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(p.modified_ms).unwrap_or(0)),
            )),
            ..Default::default()
        })
        .collect();
    Ok(ListPartsOutput {
        bucket: Some(input.bucket),
        key: Some(input.key),
        upload_id: Some(input.upload_id),
        part_number_marker: input.part_number_marker,
        next_part_number_marker: next,
        max_parts: Some(max),
        is_truncated: Some(truncated),
        parts: Some(parts),
        ..Default::default()
    })
}

/// The part numbers to join, after checking the client's list against the stored parts.
async fn checked_parts(uploads: &UploadStore, upload_id: &str, listed: &[CompletedPart]) -> S3Result<Vec<i32>> {
    if listed.is_empty() {
        return Err(s3_error!(MalformedXML, "You must specify at least one part"));
    }
    let stored = uploads.parts(upload_id).await?;
    let mut numbers = Vec::with_capacity(listed.len());
    for (i, part) in listed.iter().enumerate() {
        let n = part.part_number.ok_or_else(|| s3_error!(MalformedXML, "a part has no PartNumber"))?;
        if numbers.last().is_some_and(|prev| *prev >= n) {
            return Err(s3_error!(InvalidPartOrder, "The list of parts was not in ascending order"));
        }
        let rec = stored.iter().find(|r| r.number == n).ok_or_else(|| {
            s3_error!(InvalidPart, "One or more of the specified parts could not be found: part {n} was not uploaded")
        })?;
        if part.e_tag.as_ref().is_some_and(|e| e.value() != rec.etag) {
            return Err(s3_error!(InvalidPart, "part {n}: the ETag does not match the uploaded part's"));
        }
        if i + 1 < listed.len() && rec.size < MIN_PART_SIZE {
            return Err(s3_error!(
                EntityTooSmall,
                "Your proposed upload is smaller than the minimum allowed object size: part {n} has {} bytes",
                rec.size
            ));
        }
        numbers.push(n);
    }
    Ok(numbers)
}

/// CompleteMultipartUpload: checks the parts, then writes the object in the background of a kept-alive
/// answer.
pub async fn complete(
    state: &Arc<WorkerState>,
    uploads: &Arc<UploadStore>,
    input: CompleteMultipartUploadInput,
) -> S3Result<CompleteMultipartUploadOutput> {
    let (id, bucket, key) = (input.upload_id, input.bucket, input.key);
    let manifest = upload_of(uploads, &id, &bucket, &key).await?;
    let target = buckets::object(state, &bucket, &key)?;
    let listed = input.multipart_upload.and_then(|m| m.parts).unwrap_or_default();
    let numbers = checked_parts(uploads, &id, &listed).await?;
    let stored = uploads.parts(&id).await?;
    let chosen: Vec<_> = numbers.iter().filter_map(|n| stored.iter().find(|r| r.number == *n)).collect();
    let mut object_meta = manifest.metadata;
    object_meta.etag = Some(metadata::multipart_etag(chosen.iter().map(|r| r.etag.as_str())));
    object_meta.parts = chosen.iter().map(|r| r.size).collect();
    conflict_before_writing(state, &target.uri).await?;
    let body = uploads.concat(&id, &numbers)?;
    let (state, uploads) = (state.clone(), uploads.clone());
    let write = async move {
        let st = state.writes.put(&target.uri, body, WriteOptions::with_metadata(object_meta)).await?;
        if let Err(e) = uploads.remove(&id).await {
            tracing::warn!("upload {id} completed, but its parts could not be removed: {e}");
        }
        Ok(CompleteMultipartUploadOutput {
            bucket: Some(bucket.clone()),
            key: Some(key.clone()),
            e_tag: Some(ETag::Strong(remember(&state, &target.uri, &st).etag)),
            location: Some(format!("/{bucket}/{key}")),
            ..Default::default()
        })
    };
    Ok(CompleteMultipartUploadOutput { future: Some(Box::pin(write)), ..Default::default() })
}

/// `file://` only: the file/directory conflict that writing `uri` would meet (a directory at `uri`, or a
/// file among its ancestors), found before the kept-alive answer starts. An error inside that answer
/// comes from `s3s` (0.14) after a second XML declaration, which SDKs cannot parse (boto3 reads a bare
/// `500` and retries), so what can be seen up front is answered as a plain `409 PathConflict`; a conflict
/// made in between still fails the write. Local stats are cheap, and S3 mounts hold a file and a
/// directory of one name side by side, so they skip this.
async fn conflict_before_writing(state: &WorkerState, uri: &str) -> S3Result<()> {
    if !uri.starts_with("file://") {
        return Ok(());
    }
    let (resolved, ufs) = state.rt.resolve(uri)?;
    let (uri, root) = (resolved.ufs_uri, resolved.mount.ufs_uri().as_string());
    if ufs.stat(&uri).await.is_ok_and(|st| st.is_dir) {
        return Err(path_conflict(format!("{uri} is a directory; an object cannot replace it")));
    }
    let mut at = uri.as_str();
    while let Some((parent, _)) = at.rsplit_once('/')
        && parent.len() > root.len()
    {
        match ufs.stat(parent).await {
            Ok(st) if st.is_dir => break,
            Ok(_) => return Err(path_conflict(format!("{parent} is a file; {uri} cannot be written under it"))),
            Err(e) if e.kind() == ErrorKind::NotFound => at = parent,
            Err(_) => break, // the write itself reports it
        }
    }
    Ok(())
}

/// AbortMultipartUpload: removes the parts.
pub async fn abort(uploads: &UploadStore, input: AbortMultipartUploadInput) -> S3Result<()> {
    upload_of(uploads, &input.upload_id, &input.bucket, &input.key).await?;
    Ok(uploads.remove(&input.upload_id).await?)
}
