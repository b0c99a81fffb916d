//! CopyObject, with S3's `x-amz-metadata-directive`: `COPY` (the default) stores the source's metadata
//! with the copy, `REPLACE` the request's. A copy onto itself is how S3 clients change an object's
//! metadata: allowed with `REPLACE`, `400 InvalidRequest` with `COPY` (as S3 answers).
//!
//! The bytes stream through this worker, from the source's version that was stat'ed (pinned reads: a
//! source replaced during the copy fails it, `503`, rather than mixing two versions), into a
//! write-through PUT with the metadata, so that every UFS stores metadata the same way (a UFS's own copy
//! would not carry `file://` records) and the MD5 of the bytes becomes the copy's ETag. The cost is that
//! a copy within one S3 bucket is not server-side.
//!
//! `x-amz-copy-source-if-*` are checked against the source version that is copied
//! (`conditions::check_copy_source`). s3s 0.14 does not carry a destination `If-Match`/`If-None-Match`
//! on CopyObject, so those are not honoured.

use crate::error::WorkerError;
use crate::http_api::WorkerState;
use crate::s3_api::buckets;
use crate::s3_api::conditions::{self, ReadConditions};
use crate::s3_api::errors::{self, from_worker};
use crate::s3_api::metadata;
use crate::s3_api::objects::remember;
use crate::s3_api::reading::ObjectMeta;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use loam_core::ErrorKind;
use loam_ufs::{ObjectMetadata, Ufs, UfsError, WriteOptions};
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Result, s3_error};
use std::sync::Arc;

/// Bytes per UFS read of the source.
const COPY_CHUNK: u64 = 8 * 1024 * 1024;

fn no_such_key(key: &str, why: impl std::fmt::Display) -> S3Error {
    tracing::debug!("S3 copy source {key:?} not found: {why}");
    S3Error::with_message(S3ErrorCode::NoSuchKey, errors::NO_SUCH_KEY)
}

/// CopyObject (see the module header).
pub async fn copy(state: &WorkerState, input: CopyObjectInput) -> S3Result<CopyObjectOutput> {
    let CopySource::Bucket { bucket, key, .. } = &input.copy_source else {
        return Err(s3_error!(NotImplemented, "only bucket/key copy sources are supported"));
    };
    let src = buckets::object(state, bucket, key)?;
    let dst = buckets::object(state, &input.bucket, &input.key)?;
    if src.is_dir || dst.is_dir {
        return Err(s3_error!(InvalidArgument, "directories (keys ending in '/') cannot be copied"));
    }
    let replace = match input.metadata_directive.as_ref().map(|d| d.as_str()) {
        None | Some(MetadataDirective::COPY) => false,
        Some(MetadataDirective::REPLACE) => true,
        Some(other) => {
            return Err(s3_error!(InvalidArgument, "x-amz-metadata-directive {other:?}: it is COPY or REPLACE"));
        }
    };
    if src.uri == dst.uri && !replace {
        return Err(s3_error!(
            InvalidRequest,
            "This copy request is illegal because it is trying to copy an object to itself without changing the \
             object's metadata, storage class, website redirect location or encryption attributes."
        ));
    }
    let requested = match replace {
        true => Some(metadata::requested(metadata::requested_of!(input))?),
        false => None,
    };
    let (resolved, ufs) = state.rt.resolve(&src.uri)?;
    let st = match ufs.stat(&resolved.ufs_uri).await {
        Ok(st) if !st.is_dir => st,
        Ok(_) => return Err(no_such_key(key, "a directory")),
        Err(UfsError::NotFound(m)) => return Err(no_such_key(key, m)),
        Err(e) => return Err(from_worker(e.into())),
    };
    let source = ObjectMeta::of_status(&st);
    // Checked against the version stat'ed, which is the one copied (the reads are pinned to it).
    let source_conditions = ReadConditions {
        if_match: input.copy_source_if_match,
        if_none_match: input.copy_source_if_none_match,
        if_modified_since: input.copy_source_if_modified_since,
        if_unmodified_since: input.copy_source_if_unmodified_since,
    };
    conditions::check_copy_source(&source, &source_conditions)?;
    let metadata = requested.unwrap_or_else(|| ObjectMetadata {
        // What describes the source's bytes as uploaded is recomputed for the copy.
        etag: None,
        checksum: None,
        parts: Vec::new(),
        part_checksums: Vec::new(),
        ..(*source.stored).clone()
    });
    let body = pinned(ufs, resolved.ufs_uri, source.length, source.tag.clone());
    let (body, amend) = metadata::md5_of(body);
    let opts = WriteOptions { metadata, amend: Some(amend), condition: None };
    let written = state.writes.put(&dst.uri, body, opts).await.map_err(|e| match (e.kind(), e) {
        (ErrorKind::NotFound, e) => no_such_key(key, e),
        (_, WorkerError::Ufs(UfsError::Changed(m))) => {
            from_worker(WorkerError::Unavailable(format!("the copy source changed while it was copied: {m}; retry")))
        }
        (_, e) => from_worker(e),
    })?;
    let meta = remember(state, &dst.uri, &written);
    let result = CopyObjectResult {
        e_tag: Some(ETag::Strong(meta.etag)),
        last_modified: meta.modified.map(Timestamp::from),
        ..Default::default()
    };
    Ok(CopyObjectOutput { copy_object_result: Some(result), ..Default::default() })
}

/// The `length` bytes of version `tag` of `uri`, read in [`COPY_CHUNK`] pieces; a source that changed
/// or ends early fails the stream (the UFS error travels in the `io::Error`, keeping its kind).
fn pinned(
    ufs: Arc<dyn Ufs>,
    uri: String,
    length: u64,
    tag: String,
) -> BoxStream<'static, Result<Bytes, std::io::Error>> {
    stream::try_unfold(0u64, move |offset| {
        let (ufs, uri, tag) = (ufs.clone(), uri.clone(), tag.clone());
        async move {
            if offset >= length {
                return Ok(None);
            }
            let want = COPY_CHUNK.min(length - offset);
            let data = ufs.read_range_of(&uri, offset, want, &tag).await.map_err(std::io::Error::other)?;
            if data.len() as u64 != want {
                let changed =
                    UfsError::Changed(format!("{uri} ended at byte {} of {length}", offset + data.len() as u64));
                return Err(std::io::Error::other(changed));
            }
            Ok(Some((data, offset + want)))
        }
    })
    .boxed()
}
