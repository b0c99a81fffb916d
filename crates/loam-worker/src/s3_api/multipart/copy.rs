//! UploadPartCopy: a part made of (a range of) another object, read through the cache like a GET
//! (`reading`: the owner's page store, streamed, never whole in memory) and stored like an uploaded
//! part (checked by `verify`, which computes its MD5 and the upload's checksum).
//!
//! `x-amz-copy-source-range` is `bytes=first-last` (both given, inclusive), as S3 takes it: any other
//! form is `400 InvalidArgument`; a range outside the source object, or `first > last`, is
//! `416 InvalidRange`. More than 5 GiB is `EntityTooLarge`. A source that is a directory or absent is
//! `NoSuchKey`; a version id is refused (`unsupported`).

use super::store::UploadStore;
use super::{MAX_PART_SIZE, upload_of};
use crate::http_api::WorkerState;
use crate::s3_api::buckets;
use crate::s3_api::errors::{NO_SUCH_KEY, from_worker};
use crate::s3_api::reading;
use crate::s3_api::unsupported::check_version_id;
use crate::s3_api::verify::{self, Expected};
use loam_client::Client;
use loam_core::ErrorKind;
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Result, s3_error};
use std::ops::Range as Span;
use std::sync::Arc;

/// The bytes `[start, end)` that `bytes=first-last` names in an object of `length` bytes.
pub fn copy_range(range: &str, length: u64) -> S3Result<Span<u64>> {
    let bad = || {
        s3_error!(
            InvalidArgument,
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are \
             the zero-based offsets of the first and last bytes to copy"
        )
    };
    let (first, last) = range.strip_prefix("bytes=").and_then(|r| r.split_once('-')).ok_or_else(bad)?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(first) || !digits(last) {
        return Err(bad());
    }
    let (first, last): (u64, u64) = (first.parse().map_err(|_| bad())?, last.parse().map_err(|_| bad())?);
    if first > last || last >= length {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRange,
            format!("Range specified is not valid for source object of size: {length}"),
        ));
    }
    Ok(first..last + 1)
}

/// UploadPartCopy.
pub async fn upload_part_copy(
    state: &Arc<WorkerState>,
    client: &Client,
    uploads: &UploadStore,
    input: UploadPartCopyInput,
) -> S3Result<UploadPartCopyOutput> {
    let m = upload_of(uploads, &input.upload_id, &input.bucket, &input.key, true).await?;
    let CopySource::Bucket { bucket, key, version_id } = &input.copy_source else {
        return Err(s3_error!(NotImplemented, "only bucket/key copy sources are supported"));
    };
    check_version_id(version_id.as_deref())?;
    let src = buckets::object(state, bucket, key)?;
    let missing = |why: String| {
        tracing::debug!("UploadPartCopy source {key:?} not found: {why}");
        S3Error::with_message(S3ErrorCode::NoSuchKey, NO_SUCH_KEY)
    };
    if src.is_dir {
        return Err(missing("a directory".into()));
    }
    let opened = reading::open(state, &src.uri).await.map_err(|e| match e.kind() {
        ErrorKind::NotFound => missing(e.to_string()),
        _ => from_worker(e),
    })?;
    let length = opened.meta.length;
    let span = match input.copy_source_range.as_deref() {
        Some(r) => copy_range(r, length)?,
        None => 0..length,
    };
    if span.end - span.start > MAX_PART_SIZE {
        return Err(s3_error!(
            EntityTooLarge,
            "Your proposed upload exceeds the maximum allowed size: a part holds at most {MAX_PART_SIZE} bytes"
        ));
    }
    let source_etag = opened.meta.etag.clone();
    let body = reading::body(state, client, opened, span.start, span.end).await.map_err(from_worker)?;
    let expected = match m.checksum {
        Some(a) => Expected::default().require(a)?,
        None => Expected::default(),
    };
    let checked = verify::check(body, expected);
    let outcome = checked.outcome.clone();
    let rec = uploads.put_part(&input.upload_id, input.part_number, checked).await.map_err(|e| outcome.error_or(e))?;
    tracing::debug!(source_etag, "UploadPartCopy stored part {}", rec.number);
    let sums = verify::fields(rec.checksum.as_ref());
    let result = CopyPartResult {
        e_tag: Some(ETag::Strong(rec.etag)),
        last_modified: Some(Timestamp::from(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(rec.modified_ms).unwrap_or(0)),
        )),
        checksum_crc32: sums.crc32,
        checksum_crc32c: sums.crc32c,
        checksum_crc64nvme: sums.crc64nvme,
        checksum_sha1: sums.sha1,
        checksum_sha256: sums.sha256,
    };
    Ok(UploadPartCopyOutput { copy_part_result: Some(result), ..Default::default() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_ranges_are_checked_as_s3_checks_them() {
        assert_eq!(copy_range("bytes=0-9", 10).unwrap(), 0..10);
        assert_eq!(copy_range("bytes=3-3", 10).unwrap(), 3..4);
        for bad in
            ["bytes=-1", "bytes=0-", "bytes=hello-world", "bytes=0-bar", "hello-", "bytes=0-2,3-5", "0-1", "bytes= 0-1"]
        {
            assert_eq!(copy_range(bad, 10).unwrap_err().code(), &S3ErrorCode::InvalidArgument, "{bad}");
        }
        for outside in ["bytes=0-10", "bytes=5-4", "bytes=10-12"] {
            assert_eq!(copy_range(outside, 10).unwrap_err().code(), &S3ErrorCode::InvalidRange, "{outside}");
        }
    }
}
