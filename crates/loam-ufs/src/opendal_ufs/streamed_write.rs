//! Streamed writes: a body of unknown length goes to the UFS chunk by chunk, never held whole.
//!
//! - **S3** gets a multipart upload through OpenDAL's `Writer`: the body is cut into [`PART_SIZE`] parts
//!   (above S3's 5 MiB minimum part size, small enough that [`PARTS_IN_FLIGHT`] parts in memory stay modest)
//!   and up to [`PARTS_IN_FLIGHT`] parts are uploaded at once. The object appears only when the upload
//!   completes, so readers never see half a file; a failed body aborts the upload, leaving the old object.
//! - **fs** has no multipart upload, and OpenDAL's fs writer writes straight into the target (a failed
//!   body would leave a truncated file, and its `abort` is unsupported). So the body goes to a hidden
//!   sibling (`.<name>.loam-<pid>-<n>.tmp`) that is renamed over the target once complete, and deleted on
//!   failure: the target is always either the old or the new file, never a torn one. The sibling is
//!   visible to a listing of the directory while the write runs; that is the price of an atomic rename
//!   (it must be on the same file system, so it cannot live elsewhere).
//!
//! Metadata (`object_meta`): S3 gets it as the upload's headers when the writer is created (what
//! `WriteOptions::amend` adds after the body cannot reach it); fs gets it as the sibling's record, set after
//! the body (amendments included) and before the rename, so it appears with the bytes. On a file system
//! without xattrs a write that carries client metadata fails (`Unsupported`) and leaves the old file.
//!
//! Conditions (`WriteOptions::condition`): S3 sends them with the upload (`If-None-Match: *`, `If-Match`)
//! and the store decides; fs checks them when the sibling is renamed into place (`commit`).
//!
//! Which path is taken follows the operator's capabilities (`rename`: fs), not the scheme, so a service
//! added later takes the right one.

use super::beneath::Beneath;
use super::exact_paths::arm;
use super::{s3_meta, transient};
use crate::opendal_ufs::error_mapping::map_error;
use crate::{UfsError, WriteCondition, WriteOptions};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use loam_core::version::quoted;
use opendal::Operator;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes per multipart part (and per buffered chunk on fs).
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts uploaded concurrently.
pub const PARTS_IN_FLIGHT: usize = 4;

/// Why a streamed write failed: the body (the caller's side) or the UFS.
enum Failure {
    Body(std::io::Error),
    Ufs(opendal::Error),
    /// A condition checked before the upload does not hold.
    Condition(String),
    /// A condition that needs an object found none.
    Missing,
}

impl From<opendal::Error> for Failure {
    fn from(e: opendal::Error) -> Self {
        Failure::Ufs(e)
    }
}

/// Writes `body` to the relative key `rel` (full URI `uri`, for messages) with `opts`; returns the bytes
/// written. `beneath`: the root of a `file://` mount (where the metadata record is set).
pub async fn write_stream(
    op: &Operator,
    rel: &str,
    uri: &str,
    body: BoxStream<'static, Result<Bytes, std::io::Error>>,
    opts: WriteOptions,
    beneath: Option<&Beneath>,
) -> Result<u64, UfsError> {
    if op.info().capability().rename {
        let tmp = temp_sibling(rel);
        let done = async {
            let written = copy_into(op, &tmp, uri, body, None).await?;
            let meta = opts.finished_metadata();
            if let Some(b) = beneath
                && !meta.is_empty()
            {
                match b.set_record(&tmp, uri, meta.clone()).await {
                    // Only what the S3 API derived (the MD5) is lost: its answers fall back to the tag.
                    Err(UfsError::Unsupported(_)) if !meta.has_client_fields() => {}
                    r => r?,
                }
            }
            match beneath {
                Some(b) => b.commit(&tmp, rel, uri, opts.condition.clone()).await?,
                None if opts.condition.is_some() => {
                    return Err(UfsError::Unsupported(format!("{uri}: conditional writes need a file:// root")));
                }
                None => {
                    let (renamed, transient) = transient::observe(op.rename(&arm(&tmp), &arm(rel))).await;
                    renamed.map_err(|e| map_error(e, uri, transient))?;
                }
            }
            Ok(written)
        };
        let result = done.await;
        if let Err(e) = &result {
            // The sibling may not exist (the first write failed); nothing else to clean up then. Where a
            // file stands for a directory of the path (a conflict), it never could exist: nothing to say.
            let conflict = matches!(e, UfsError::Conflict(_));
            if let Err(del) = op.delete(&arm(&tmp)).await
                && !conflict
            {
                tracing::warn!("could not delete the partial upload {tmp} of {uri}: {del}");
            }
        }
        return result;
    }
    copy_into(op, rel, uri, body, Some(&opts)).await
}

/// Streams `body` into a new writer of `key`, aborting the writer when anything fails; `native`: the
/// options an object store takes with the upload (its metadata).
async fn copy_into(
    op: &Operator,
    key: &str,
    uri: &str,
    mut body: BoxStream<'static, Result<Bytes, std::io::Error>>,
    native: Option<&WriteOptions>,
) -> Result<u64, UfsError> {
    let conditional = native.is_some_and(|o| o.condition.is_some());
    let (result, transient) = transient::observe(async {
        let armed = arm(key);
        let mut fut = op.writer_with(&armed).chunk(PART_SIZE).concurrent(PARTS_IN_FLIGHT);
        if let Some(opts) = native {
            let m = &opts.metadata;
            if let Some(v) = &m.content_type {
                fut = fut.content_type(v);
            }
            if let Some(v) = &m.cache_control {
                fut = fut.cache_control(v);
            }
            if let Some(v) = &m.content_disposition {
                fut = fut.content_disposition(v);
            }
            if let Some(v) = &m.content_encoding {
                fut = fut.content_encoding(v);
            }
            let user = s3_meta::user_metadata(m);
            if !user.is_empty() {
                fut = fut.user_metadata(user);
            }
            // The object store checks the condition itself when the object is created (PutObject, or
            // CompleteMultipartUpload for a body of more than one part).
            match &opts.condition {
                Some(WriteCondition::NotExists) => fut = fut.if_not_exists(true),
                Some(WriteCondition::Matches(etag)) => fut = fut.if_match(&quoted(etag)),
                // S3 has no conditional write for these: checked before the upload (check-then-act,
                // SEMANTICS.md "Conditional writes").
                Some(c @ (WriteCondition::Exists | WriteCondition::NoneMatch(_))) => {
                    let etag = match op.stat(&armed).await {
                        Ok(m) => Some(m.etag().map(|e| loam_core::version::unquote(e).to_string()).unwrap_or_default()),
                        Err(e) if e.kind() == opendal::ErrorKind::NotFound => None,
                        Err(e) => return Err(Failure::Ufs(e)),
                    };
                    match c.holds(etag.as_deref()) {
                        Ok(true) => {}
                        Ok(false) => return Err(Failure::Condition(format!("{uri}: {c:?} fails"))),
                        Err(_) => return Err(Failure::Missing),
                    }
                }
                None => {}
            }
        }
        let mut w = fut.await?;
        let mut written = 0u64;
        let outcome = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(Failure::Body)?;
                written += chunk.len() as u64;
                w.write(chunk).await?;
            }
            Ok::<_, Failure>(())
        }
        .await;
        match outcome {
            Ok(()) => {
                w.close().await?;
                Ok(written)
            }
            Err(e) => {
                // fs cannot abort (its caller deletes the sibling instead); S3 drops the uploaded parts.
                if let Err(abort) = w.abort().await
                    && abort.kind() != opendal::ErrorKind::Unsupported
                {
                    tracing::warn!("could not abort the upload of {uri}: {abort}");
                }
                Err(e)
            }
        }
    })
    .await;
    result.map_err(|e| match e {
        // A body read from another UFS (a copy across mounts) carries that UFS's error: keep its kind.
        Failure::Body(e) => match e.get_ref().and_then(|inner| inner.downcast_ref::<UfsError>()) {
            Some(source) => source.clone(),
            None => UfsError::InvalidInput(format!("the body of the write to {uri} failed: {e}")),
        },
        // OpenDAL's answer to S3's 404 for `If-Match` of a missing key; S3 clients expect `NoSuchKey`.
        Failure::Ufs(e) if conditional && e.message() == MISSING_TARGET_WRITE => UfsError::NotFound(uri.to_string()),
        Failure::Ufs(e) if conditional && e.kind() == opendal::ErrorKind::ConditionNotMatch => {
            UfsError::ConditionFailed(format!("{uri}: {e}"))
        }
        // S3's `409 ConditionalRequestConflict`: a conditional write raced another write of the key.
        Failure::Ufs(e) if conditional && e.kind() == opendal::ErrorKind::Conflict => {
            UfsError::ConditionFailed(format!("{uri}: {e}"))
        }
        Failure::Ufs(e) => map_error(e, uri, transient),
        Failure::Condition(why) => UfsError::ConditionFailed(why),
        Failure::Missing => UfsError::NotFound(uri.to_string()),
    })
}

/// What OpenDAL's S3 writer says when `If-Match` found no object.
const MISSING_TARGET_WRITE: &str = "write precondition requires a live target";

/// A hidden name beside `rel` in the same directory, unique within this process and across processes.
fn temp_sibling(rel: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let (dir, name) = match rel.rsplit_once('/') {
        Some((dir, name)) => (format!("{dir}/"), name),
        None => (String::new(), rel),
    };
    format!("{dir}.{name}.loam-{}-{n}.tmp", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::temp_sibling;

    #[test]
    fn temp_siblings_stay_in_the_directory_and_differ() {
        let a = temp_sibling("d/e/f.bin");
        let b = temp_sibling("d/e/f.bin");
        assert!(a.starts_with("d/e/.f.bin.loam-") && a.ends_with(".tmp"), "{a}");
        assert_ne!(a, b);
        assert!(temp_sibling("top").starts_with(".top.loam-"));
    }
}
