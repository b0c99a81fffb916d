//! Object operations: HeadObject and GetObject read through the cache (`reading`); PutObject,
//! DeleteObject(s) and CopyObject write through to the UFS with `WriteThrough`, which drops every cached
//! copy of what changed before it returns, so a read through any worker after the write sees the new
//! bytes.
//!
//! Keys are exact (`buckets::object`): `"report "` and `"report"` are two objects. S3 semantics over a
//! file system: a key ending in `/` is a directory ("folder" marker): PUT creates it (it cannot hold
//! bytes: a body is `400`), DELETE removes it when empty. A file where a directory is, or the other way
//! round, is `409 PathConflict` (`errors`), nothing written. A directory is no object: GET/HEAD of its name
//! is `NoSuchKey`, and DeleteObject of it is a no-op, as S3 answers for a missing key. Metadata
//! (Content-Type, Cache-Control, Expires, ..., `x-amz-meta-*`) is stored with the bytes (`metadata`,
//! `loam_ufs::object_meta`); a PUT stores the MD5 of its body as the object's ETag where the UFS can.
//! PutObject and DeleteObject take `If-None-Match: *` / `If-Match` (`conditions::write_condition`). GET
//! and HEAD answer the stored checksum when asked (`checksums`).

use crate::error::{WorkerError, WorkerResult};
use crate::http_api::WorkerState;
use crate::s3_api::buckets::{self, Target};
use crate::s3_api::checksums;
use crate::s3_api::conditions::{self, ReadConditions};
use crate::s3_api::errors::{self, from_worker};
use crate::s3_api::metadata::{self, Headers, Overrides};
use crate::s3_api::range;
use crate::s3_api::reading::{self, ObjectMeta, Opened};
use crate::s3_api::unsupported::check_version_id;
use crate::s3_api::verify::{self, Expected};
use futures::stream::StreamExt;
use loam_client::Client;
use loam_core::ErrorKind;
use loam_ufs::{UfsStatus, WriteCondition, WriteOptions};
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Response, S3Result, s3_error};
use std::sync::Arc;

/// The ETag of an empty body (MD5 of nothing), answered for a created directory.
const EMPTY_ETAG: &str = "d41d8cd98f00b204e9800998ecf8427e";
/// The most keys one DeleteObjects request may name (S3's limit).
pub const MAX_DELETE_KEYS: usize = 1000;
/// Deletes of one DeleteObjects request run this many at a time.
const DELETES_IN_PARALLEL: usize = 8;

/// What a GET needs of GetObjectInput (the route for ignored ranges builds one too).
#[derive(Clone, Debug, Default)]
pub struct GetRequest {
    /// Bucket.
    pub bucket: String,
    /// Key.
    pub key: String,
    /// The parsed `Range`, if any.
    pub range: Option<Range>,
    /// `If-Match`, `If-None-Match`, `If-Modified-Since`, `If-Unmodified-Since`.
    pub conditions: ReadConditions,
    /// The `response-*` overrides.
    pub overrides: Overrides,
    /// `x-amz-checksum-mode: ENABLED`: answer the stored checksum (`checksums`).
    pub checksums: bool,
}

/// `NoSuchKey`, as S3 words it: the cause (which may name UFS paths) goes to the log, not to the client;
/// the error document names the key (`edge`).
fn no_such_key(key: &str, why: impl std::fmt::Display) -> S3Error {
    tracing::debug!("S3 key {key:?} not found: {why}");
    S3Error::with_message(S3ErrorCode::NoSuchKey, errors::NO_SUCH_KEY)
}

/// Opens `bucket`/`key` for reading.
async fn open(state: &WorkerState, bucket: &str, key: &str) -> S3Result<Opened> {
    let t = buckets::object(state, bucket, key)?;
    if t.is_dir {
        return Err(no_such_key(key, "a directory"));
    }
    reading::open(state, &t.uri).await.map_err(|e| match e.kind() {
        ErrorKind::NotFound => no_such_key(key, e),
        _ => from_worker(e),
    })
}

/// The object `bucket`/`key` and its UFS status, asked of the UFS (not the cache): `NoSuchKey` for a
/// folder or nothing.
pub async fn stat_object(state: &WorkerState, bucket: &str, key: &str) -> S3Result<(Target, UfsStatus)> {
    let t = buckets::object(state, bucket, key)?;
    let not_found = || S3Error::with_message(S3ErrorCode::NoSuchKey, errors::NO_SUCH_KEY);
    if t.is_dir {
        return Err(not_found());
    }
    match stat(state, &t.uri).await {
        Ok(st) if !st.is_dir => Ok((t, st)),
        Ok(_) => Err(not_found()),
        Err(e) if e.kind() == ErrorKind::NotFound => Err(not_found()),
        Err(e) => Err(from_worker(e)),
    }
}

/// `Ok` when `bucket`/`key` is an object (`NoSuchKey` else), for the reads of its configuration.
pub async fn exists(state: &WorkerState, bucket: &str, key: &str) -> S3Result<()> {
    open(state, bucket, key).await.map(drop)
}

/// HeadObject: length, ETag, Last-Modified and Content-Type of an object.
pub async fn head(state: &WorkerState, input: HeadObjectInput) -> S3Result<S3Response<HeadObjectOutput>> {
    let opened = open(state, &input.bucket, &input.key).await?;
    let meta = opened.meta;
    conditions::check(&meta, &conditions::read_conditions_of!(input))?;
    let h = Headers::of(&meta.stored, metadata::overrides_of!(input));
    let length = length_i64(meta.length)?;
    let mut out = metadata::object_answer!(HeadObjectOutput, h, meta, { content_length: Some(length) });
    if checksums::enabled(input.checksum_mode.as_ref()) {
        checksums::set_head(&mut out, checksums::of_object(&meta.stored).as_ref());
    }
    Ok(S3Response::new(out))
}

/// GetObject.
pub async fn get(
    state: &Arc<WorkerState>,
    client: &Client,
    input: GetObjectInput,
) -> S3Result<S3Response<GetObjectOutput>> {
    let get = GetRequest {
        bucket: input.bucket,
        key: input.key,
        range: input.range,
        conditions: conditions::read_conditions_of!(input),
        overrides: metadata::overrides_of!(input),
        checksums: checksums::enabled(input.checksum_mode.as_ref()),
    };
    Ok(S3Response::new(get_output(state, client, get).await?))
}

/// The output of a GET: the (ranged) body, streamed from the cache, and the headers that describe it.
pub async fn get_output(state: &Arc<WorkerState>, client: &Client, get: GetRequest) -> S3Result<GetObjectOutput> {
    let opened = open(state, &get.bucket, &get.key).await?;
    conditions::check(&opened.meta, &get.conditions)?;
    let (span, content_range) = range::span(get.range, opened.meta.length)?;
    let meta = opened.meta.clone();
    let body = reading::body(state, client, opened, span.start, span.end).await.map_err(|e| match e.kind() {
        ErrorKind::NotFound => no_such_key(&get.key, e),
        _ => from_worker(e),
    })?;
    let h = Headers::of(&meta.stored, get.overrides);
    // A range's bytes are not what the whole object's checksum describes.
    let whole = (get.checksums && content_range.is_none()).then(|| checksums::of_object(&meta.stored)).flatten();
    let length = length_i64(span.end - span.start)?;
    let mut out = metadata::object_answer!(GetObjectOutput, h, meta, {
        body: Some(body),
        content_length: Some(length),
        content_range: content_range,
    });
    checksums::set_get(&mut out, whole.as_ref());
    Ok(out)
}

fn length_i64(n: u64) -> S3Result<i64> {
    i64::try_from(n).map_err(|_| s3_error!(InternalError, "object length {n} does not fit a Content-Length"))
}

/// The ETag and time an S3 client sees for a UFS status (a listing's: no stored metadata; a stat's:
/// the stored ETag when there is one).
pub fn meta_of(st: &UfsStatus) -> ObjectMeta {
    ObjectMeta::of_status(st)
}

/// The UFS status of `uri`.
async fn stat(state: &WorkerState, uri: &str) -> WorkerResult<UfsStatus> {
    let (resolved, ufs) = state.rt.resolve(uri)?;
    Ok(ufs.stat(&resolved.ufs_uri).await?)
}

/// PutObject: streams the body to the UFS through `WriteThrough`, checked as `expected` asks (`verify`: a
/// mismatch fails the write, so the old object stays); a key ending in `/` makes a directory.
pub async fn put(state: &WorkerState, input: PutObjectInput, expected: Expected) -> S3Result<PutObjectOutput> {
    let t = buckets::object(state, &input.bucket, &input.key)?;
    let condition = conditions::write_condition(input.if_match, input.if_none_match)?;
    let condition_given = condition.is_some();
    if t.is_dir {
        if condition.is_some() {
            return Err(s3_error!(NotImplemented, "conditional writes of folder markers (keys ending in '/')"));
        }
        if input.content_length.unwrap_or(0) > 0 {
            return Err(s3_error!(
                InvalidArgument,
                "key {:?} ends in '/': Loam stores it as a directory (a folder marker), which cannot hold bytes; \
                 send it with an empty body to create the folder, or name the object without the '/'",
                t.key
            ));
        }
        state.writes.mkdir(&t.uri).await?;
        return Ok(PutObjectOutput {
            e_tag: Some(ETag::Strong(EMPTY_ETAG.into())),
            size: Some(0),
            ..Default::default()
        });
    }
    let mut metadata = metadata::requested(metadata::requested_of!(input))?;
    // A checksum sent as a header is known before the body: stored up front (S3 UFSes store nothing
    // later); the body's check fails the write if it is wrong.
    metadata.checksum = expected.declared().map(|c| c.to_ufs());
    // One pass: the check computes the MD5 (the ETag) and the checksum, stored after the body.
    let checked = verify::check_blob(input.body, expected);
    let opts = WriteOptions { metadata, amend: Some(verify::amendment(&checked.outcome)), condition };
    let st = state.writes.put(&t.uri, checked.body, opts).await.map_err(|e| match e.kind() {
        ErrorKind::NotFound if condition_given => no_such_key(&t.key, e), // If-Match of a missing key
        _ => checked.outcome.error_or(e),
    })?;
    let meta = remember(state, &t.uri, &st);
    let sums = verify::fields(checked.outcome.digests().and_then(|d| d.checksum).as_ref());
    Ok(PutObjectOutput {
        e_tag: Some(ETag::Strong(meta.etag)),
        size: Some(length_i64(st.length)?),
        checksum_crc32: sums.crc32,
        checksum_crc32c: sums.crc32c,
        checksum_crc64nvme: sums.crc64nvme,
        checksum_sha1: sums.sha1,
        checksum_sha256: sums.sha256,
        checksum_type: sums.kind,
        ..Default::default()
    })
}

/// The S3 view of a status just written, remembered in this worker's metadata cache.
pub fn remember(state: &WorkerState, uri: &str, st: &UfsStatus) -> ObjectMeta {
    let meta = meta_of(st);
    state.writes.meta_cache().put(uri, &meta.tag, meta.stored.clone());
    meta
}

/// DeleteObject: deleting what does not exist (or is a non-empty directory) succeeds, as on S3.
pub async fn delete(state: &WorkerState, bucket: &str, key: &str) -> S3Result<()> {
    let t: Target = buckets::object(state, bucket, key)?;
    match stat(state, &t.uri).await {
        // A file's name is not the directory's: S3 would not find an object `k` for a folder `k/`.
        Ok(st) if st.is_dir != t.is_dir => return Ok(()),
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(from_worker(e)),
    }
    match state.writes.delete(&t.uri, false).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        // A folder with objects in it stays: on S3 they would keep listing it as a common prefix.
        Err(WorkerError::InvalidInput(_)) if t.is_dir => Ok(()),
        Err(e) => Err(from_worker(e)),
    }
}

/// DeleteObject with `If-Match`: `412` when the object's ETag is another, `404 NoSuchKey` when there is
/// no object, as S3 answers; checked by the UFS in the same step as the delete.
pub async fn delete_if_match(state: &WorkerState, bucket: &str, key: &str, if_match: ETagCondition) -> S3Result<()> {
    let t: Target = buckets::object(state, bucket, key)?;
    let Some(Some(WriteCondition::Matches(etag))) = conditions::write_condition(Some(if_match), None).ok() else {
        return Err(s3_error!(NotImplemented, "DeleteObject takes If-Match with an ETag, not '*'"));
    };
    if t.is_dir {
        return Err(no_such_key(key, "a directory"));
    }
    state.writes.delete_if_match(&t.uri, &etag).await.map_err(|e| match e.kind() {
        ErrorKind::NotFound => no_such_key(key, e),
        _ => from_worker(e),
    })
}

/// DeleteObjects: 1 to [`MAX_DELETE_KEYS`] keys, each as DeleteObject, reported one by one.
pub async fn delete_many(state: &WorkerState, input: DeleteObjectsInput) -> S3Result<DeleteObjectsOutput> {
    buckets::mount_of(state, &input.bucket)?;
    let n = input.delete.objects.len();
    if n == 0 || n > MAX_DELETE_KEYS {
        return Err(s3_error!(
            MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema: \
             a DeleteObjects request names 1 to {MAX_DELETE_KEYS} keys, this one {n}"
        ));
    }
    let bucket = &input.bucket;
    let results: Vec<(String, S3Result<()>)> = futures::stream::iter(input.delete.objects)
        .map(|o| async move {
            let r = match check_version_id(o.version_id.as_deref()) {
                Ok(()) => delete(state, bucket, &o.key).await,
                Err(e) => Err(e),
            };
            (o.key, r)
        })
        .buffered(DELETES_IN_PARALLEL)
        .collect()
        .await;
    let quiet = input.delete.quiet.unwrap_or(false);
    let (mut deleted, mut errors) = (Vec::new(), Vec::new());
    for (key, r) in results {
        match r {
            Ok(()) if quiet => {}
            Ok(()) => deleted.push(DeletedObject { key: Some(key), ..Default::default() }),
            Err(e) => errors.push(s3s::dto::Error {
                code: Some(e.code().as_str().to_string()),
                key: Some(key),
                message: e.message().map(str::to_string),
                version_id: None,
            }),
        }
    }
    Ok(DeleteObjectsOutput { deleted: Some(deleted), errors: Some(errors), ..Default::default() })
}
