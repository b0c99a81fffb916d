//! GetObject/HeadObject `partNumber` and `PartsCount`: the part sizes of objects made by
//! CompleteMultipartUpload.
//!
//! The part sizes are the object's stored metadata (`ObjectMetadata::parts`, set by Complete) where the
//! UFS keeps it after the body (`file://`: every worker reads them, as long as the object is that
//! version). S3 UFSes do not keep them (their record is sent before the body), so Complete also writes a
//! record of this worker's, `<data-dir>/s3-multipart/objects/<sha256 of the URI>.json`, trusted only
//! while the object is still that one (same length and ETag): there, an object completed on another
//! worker is a single-part object.
//!
//! As S3 answers: `partNumber=n` of an object of `k` parts is `206` with the part's bytes and
//! `x-amz-mp-parts-count: k`; of a single-part object, part 1 is the whole object; a part past the
//! last is `416 InvalidPartNumber`; a number outside 1..=10000 is `400 InvalidArgument`, and with a
//! `Range` too, `400 InvalidRequest`.

use super::store::{CompletedObject, UploadStore};
use crate::http_api::WorkerState;
use crate::s3_api::checksums;
use crate::s3_api::objects::meta_of;
use crate::s3_api::verify::ObjectChecksum;
use loam_ufs::UfsStatus;
use s3s::crypto::{Checksum as _, Sha256};
use s3s::dto::Range;
use s3s::{S3Error, S3ErrorCode, S3Result, s3_error};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Version of the records.
const RECORD_VERSION: u32 = 1;
/// Highest part number S3 allows.
const MAX_PART_NUMBER: i32 = super::store::MAX_PART_NUMBER;

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    version: u32,
    uri: String,
    size: u64,
    etag: String,
    part_sizes: Vec<u64>,
}

fn path(uploads: &UploadStore, uri: &str) -> PathBuf {
    uploads.root().join("objects").join(format!("{}.json", hex::encode(Sha256::checksum(uri.as_bytes()))))
}

/// Keeps the part sizes of the object Complete wrote at `uri` (a failure is logged: the object then
/// reads as a single part).
pub async fn remember(uploads: &UploadStore, uri: &str, done: &CompletedObject) {
    let rec = Record {
        version: RECORD_VERSION,
        uri: uri.to_string(),
        size: done.size,
        etag: done.answered_etag.clone(),
        part_sizes: done.part_sizes.clone(),
    };
    let p = path(uploads, uri);
    let write = async {
        if let Some(dir) = p.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let tmp = p.with_extension(format!("{}.tmp", uuid::Uuid::new_v4().simple()));
        tokio::fs::write(&tmp, serde_json::to_vec(&rec)?).await?;
        tokio::fs::rename(&tmp, &p).await
    };
    if let Err(e) = write.await {
        tracing::warn!("the part sizes of {uri} could not be kept (partNumber reads it as one part): {e}");
    }
}

/// The part sizes of the object at `uri` of `size` bytes and ETag `etag`, if Complete made it here.
async fn part_sizes(uploads: &UploadStore, uri: &str, size: u64, etag: &str) -> Option<Vec<u64>> {
    let text = tokio::fs::read(path(uploads, uri)).await.ok()?;
    let r: Record = serde_json::from_slice(&text).ok()?;
    (r.version == RECORD_VERSION && r.uri == uri && r.size == size && r.etag == etag).then_some(r.part_sizes)
}

/// The part sizes of the object `st` at `uri`: the stored ones, else this worker's record of its Complete;
/// none for a single-part object (or sizes that do not add up to its length).
pub async fn sizes_of(uploads: &UploadStore, uri: &str, st: &UfsStatus) -> Option<Vec<u64>> {
    let meta = meta_of(st);
    let sizes = match Some(meta.stored.parts.clone()).filter(|p| !p.is_empty()) {
        Some(p) => Some(p),
        None => part_sizes(uploads, uri, st.length, &meta.etag).await,
    };
    sizes.filter(|p| p.iter().sum::<u64>() == st.length)
}

/// What a `partNumber` request reads.
#[derive(Debug, PartialEq, Eq)]
pub struct PartRead {
    /// The range of the part (none: the whole, single-part object).
    pub range: Option<Range>,
    /// `PartsCount` (multipart objects only).
    pub count: Option<i32>,
    /// The part's length.
    pub size: u64,
    /// The part's stored checksum (multipart objects whose upload computed them).
    pub checksum: Option<ObjectChecksum>,
}

/// The part `n` of `bucket`/`key`; `ranged` when the request has a `Range` too.
pub async fn select(
    state: &WorkerState,
    uploads: &UploadStore,
    bucket: &str,
    key: &str,
    n: i32,
    ranged: bool,
) -> S3Result<PartRead> {
    if !(1..=MAX_PART_NUMBER).contains(&n) {
        return Err(s3_error!(InvalidArgument, "Part number must be an integer between 1 and 10000, inclusive"));
    }
    if ranged {
        return Err(s3_error!(InvalidRequest, "Cannot specify both Range header and partNumber query parameter"));
    }
    let (t, st) = crate::s3_api::objects::stat_object(state, bucket, key).await?;
    let meta = meta_of(&st);
    let Some(sizes) = sizes_of(uploads, &t.uri, &st).await else {
        return match n {
            1 => Ok(PartRead { range: None, count: None, size: st.length, checksum: None }),
            _ => Err(invalid_part_number()),
        };
    };
    let i = usize::try_from(n - 1).unwrap_or(usize::MAX);
    let size = *sizes.get(i).ok_or_else(invalid_part_number)?;
    let first: u64 = sizes[..i].iter().sum();
    let range = (size > 0).then_some(Range::Int { first, last: Some(first + size - 1) });
    let checksum = checksums::of_part(&meta.stored, i + 1);
    Ok(PartRead { range, count: i32::try_from(sizes.len()).ok(), size, checksum })
}

fn invalid_part_number() -> S3Error {
    let mut e = S3Error::with_message(
        S3ErrorCode::Custom("InvalidPartNumber".into()),
        "The requested partnumber is not satisfiable",
    );
    e.set_status_code(axum::http::StatusCode::RANGE_NOT_SATISFIABLE);
    e
}
