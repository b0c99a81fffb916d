//! Multipart upload: Create, UploadPart, UploadPartCopy (`copy`), ListParts and ListMultipartUploads
//! (`listing`), Complete, Abort; GetObject/HeadObject `partNumber` (`object_parts`); abandoned uploads
//! expire (`expiry`).
//!
//! Parts wait on the worker's disk (`store`), each checked as it arrives (`verify`: Content-MD5,
//! checksums; the MD5 is its ETag). Limits as S3's: part numbers 1..=10000, at most 5 GiB a part
//! (`EntityTooLarge`), every part but the last at least 5 MiB (`EntityTooSmall`, at Complete), at most
//! 5 TiB an object. An upload created with a `ChecksumAlgorithm` computes it for every part (a part
//! that sends another is `InvalidRequest`); the object's checksum is then COMPOSITE (the checksum of the
//! parts' checksums, `-<n>`) or, with `ChecksumType=FULL_OBJECT` and always for CRC64NVME, the CRC of the
//! whole object: the one Complete sends, else combined from the parts' CRCs, and either way checked
//! against the bytes as they are written (known before the body, so an S3 UFS stores it too).
//!
//! Complete checks the list the client sends against the parts as S3 does (ascending part numbers,
//! matching ETags and checksums; a number listed more than once in a row counts once, its last entry,
//! as RGW takes a list that names a part uploaded again), then streams their concatenation through `WriteThrough::put`, so the
//! object appears in the UFS whole or not at all and no cache keeps an older version. That can take a
//! while for a large object, so the answer is a `200` whose body `s3s` keeps alive with whitespace until
//! the XML result (or error) is ready, as S3 itself does. Once written, the parts are deleted and the
//! result is kept with the upload until it expires, so that a retried Complete gets the same answer;
//! if writing fails the parts stay, and the client may retry Complete or Abort.
//!
//! Complete takes `If-None-Match: *` and `If-Match: <etag>` as PutObject does: checked before the
//! kept-alive answer starts where the object already tells (`412 PreconditionFailed`, nothing written),
//! and again by the UFS in the same step as the write, so that of two uploads completed to one key at
//! once at most one wins. A repeated Complete of a completed upload answers its result, conditions or not.
//!
//! The object's metadata (`loam_ufs::ObjectMetadata`) gets CreateMultipartUpload's headers, S3's
//! MD5-of-MD5s ETag, the part sizes, the checksum and the parts' checksums; the answer's ETag is the one
//! a HEAD will show (`objects::remember`). The completed record ([`store::CompletedObject`]) keeps the answer.

pub mod copy;
pub mod expiry;
pub mod listing;
pub mod object_parts;
pub mod store;

use crate::http_api::WorkerState;
use crate::s3_api::buckets;
use crate::s3_api::conditions;
use crate::s3_api::errors::{NO_SUCH_KEY, path_conflict};
use crate::s3_api::metadata;
use crate::s3_api::objects::{meta_of, remember};
use crate::s3_api::verify::{self, Algorithm, Expected, Kind, ObjectChecksum};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use loam_core::ErrorKind;
use loam_ufs::{WriteCondition, WriteOptions};
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Result, s3_error};
use std::sync::Arc;
use std::time::Duration;
use store::{CompletedObject, Completion, Manifest, PartRecord, UPLOAD_FORMAT_VERSION, UploadStore};

/// The least size of every part but the last (S3's rule).
pub const MIN_PART_SIZE: u64 = 5 << 20;
/// The largest part (S3's rule).
pub const MAX_PART_SIZE: u64 = 5 << 30;
/// The largest object (S3's rule).
pub const MAX_OBJECT_SIZE: u64 = 5 << 40;
/// How long an upload may stay unfinished (and a completed one keep its result) by default.
pub const DEFAULT_MULTIPART_EXPIRY: Duration = Duration::from_secs(24 * 60 * 60);

/// The manifest of `upload_id`, which must be an upload of `bucket`/`key` (and not completed, if `live`).
async fn upload_of(uploads: &UploadStore, upload_id: &str, bucket: &str, key: &str, live: bool) -> S3Result<Manifest> {
    buckets::parseable(key)?;
    let m = if live { uploads.live_manifest(upload_id).await? } else { uploads.manifest(upload_id).await? };
    if m.bucket != bucket || m.key != key {
        return Err(S3Error::with_message(
            S3ErrorCode::NoSuchUpload,
            format!("upload {upload_id} is not an upload of {bucket}/{key}"),
        ));
    }
    Ok(m)
}

/// The algorithm S3 names `name`; an unknown one is `InvalidRequest`.
fn algorithm(name: Option<&ChecksumAlgorithm>) -> S3Result<Option<Algorithm>> {
    name.map(|n| {
        Algorithm::parse(n.as_str())
            .ok_or_else(|| s3_error!(InvalidRequest, "Value for x-amz-checksum-algorithm header is invalid."))
    })
    .transpose()
}

/// CreateMultipartUpload (with the checksum its parts must carry, if any).
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
    let metadata = metadata::requested(metadata::requested_of!(input))?;
    let checksum = algorithm(input.checksum_algorithm.as_ref())?;
    let kind = match input.checksum_type.as_ref().map(|t| t.as_str()) {
        None => None,
        Some(ChecksumType::FULL_OBJECT) => Some(Kind::FullObject),
        Some(ChecksumType::COMPOSITE) if checksum != Some(Algorithm::Crc64nvme) => Some(Kind::Composite),
        Some(t) => return Err(s3_error!(InvalidRequest, "Value for x-amz-checksum-type header is invalid: {t}")),
    };
    if kind.is_some() && checksum.is_none() {
        return Err(s3_error!(InvalidRequest, "x-amz-checksum-type needs x-amz-checksum-algorithm"));
    }
    let kind = checksum.map(|a| match kind {
        Some(k) => k,
        None if a == Algorithm::Crc64nvme => Kind::FullObject,
        None => Kind::Composite,
    });
    let id = uploads.create(&input.bucket, &input.key, metadata, checksum, kind).await?;
    Ok(CreateMultipartUploadOutput {
        bucket: Some(input.bucket),
        key: Some(input.key),
        upload_id: Some(id),
        checksum_algorithm: input.checksum_algorithm,
        checksum_type: kind.map(|k| ChecksumType::from_static(kind_name(k))),
        ..Default::default()
    })
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::FullObject => ChecksumType::FULL_OBJECT,
        Kind::Composite => ChecksumType::COMPOSITE,
    }
}

/// `EntityTooLarge` when a part declares more than [`MAX_PART_SIZE`] bytes (the store also stops a body
/// that runs past it).
fn check_part_size(declared: Option<i64>) -> S3Result<()> {
    match declared {
        Some(n) if n > MAX_PART_SIZE as i64 => Err(s3_error!(
            EntityTooLarge,
            "Your proposed upload exceeds the maximum allowed size: a part holds at most {MAX_PART_SIZE} bytes"
        )),
        _ => Ok(()),
    }
}

/// UploadPart: stores the part, checked as `expected` asks (`verify`); its ETag is its MD5.
pub async fn upload_part(
    uploads: &UploadStore,
    input: UploadPartInput,
    expected: Expected,
) -> S3Result<UploadPartOutput> {
    let m = upload_of(uploads, &input.upload_id, &input.bucket, &input.key, true).await?;
    check_part_size(input.content_length)?;
    let expected = match m.checksum {
        Some(a) => expected.require(a)?,
        None => expected,
    };
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

/// The stored records of the parts to join, after checking the client's list against them as S3 does.
async fn checked_parts(uploads: &UploadStore, upload_id: &str, listed: &[CompletedPart]) -> S3Result<Vec<PartRecord>> {
    if listed.is_empty() {
        return Err(s3_error!(MalformedXML, "You must specify at least one part"));
    }
    let numbers = listed
        .iter()
        .map(|p| p.part_number.ok_or_else(|| s3_error!(MalformedXML, "a part has no PartNumber")))
        .collect::<S3Result<Vec<i32>>>()?;
    let stored = uploads.parts(upload_id).await?;
    let mut out: Vec<PartRecord> = Vec::with_capacity(listed.len());
    for (i, part) in listed.iter().enumerate() {
        let n = numbers[i];
        // A part number listed twice in a row: the last entry counts, as RGW takes it (a part uploaded
        // again names the stored part; the earlier entry is the upload it replaced). Not descending.
        if numbers.get(i + 1) == Some(&n) {
            continue;
        }
        if out.last().is_some_and(|prev| prev.number >= n) {
            return Err(s3_error!(InvalidPartOrder, "The list of parts was not in ascending order"));
        }
        let rec = stored.iter().find(|r| r.number == n).ok_or_else(|| {
            s3_error!(InvalidPart, "One or more of the specified parts could not be found: part {n} was not uploaded")
        })?;
        if part.e_tag.as_ref().is_some_and(|e| e.value() != rec.etag) {
            return Err(s3_error!(InvalidPart, "part {n}: the ETag does not match the uploaded part's"));
        }
        let sent = [
            &part.checksum_crc32,
            &part.checksum_crc32c,
            &part.checksum_crc64nvme,
            &part.checksum_sha1,
            &part.checksum_sha256,
        ];
        if let Some(c) = &rec.checksum
            && sent_value(c.algorithm, sent).is_some_and(|v| v != c.value)
        {
            return Err(s3_error!(
                InvalidPart,
                "part {n}: the {} does not match the uploaded part's",
                c.algorithm.name()
            ));
        }
        if i + 1 < listed.len() && rec.size < MIN_PART_SIZE {
            return Err(s3_error!(
                EntityTooSmall,
                "Your proposed upload is smaller than the minimum allowed object size: part {n} has {} bytes",
                rec.size
            ));
        }
        out.push(rec.clone());
    }
    let total: u64 = out.iter().map(|p| p.size).sum();
    if total > MAX_OBJECT_SIZE {
        return Err(s3_error!(
            EntityTooLarge,
            "Your proposed upload exceeds the maximum allowed object size ({total} bytes)"
        ));
    }
    Ok(out)
}

/// The value among `sent` (CRC32, CRC32C, CRC64NVME, SHA1, SHA256, as the DTOs list them) of `a`.
fn sent_value(a: Algorithm, sent: [&Option<String>; 5]) -> Option<&str> {
    let i = Algorithm::ALL.iter().position(|x| *x == a)?;
    sent[i].as_deref()
}

/// The full-object CRC (base64) of the parts joined in order, combined from their stored CRCs and sizes;
/// `None` for a digest that does not combine (SHA) or a part without the checksum.
fn combined_crc(a: Algorithm, parts: &[PartRecord]) -> Option<String> {
    use crc_fast::CrcAlgorithm as C;
    let (alg, width) = match a {
        Algorithm::Crc32 => (C::Crc32IsoHdlc, 4),
        Algorithm::Crc32c => (C::Crc32Iscsi, 4),
        Algorithm::Crc64nvme => (C::Crc64Nvme, 8),
        Algorithm::Sha1 | Algorithm::Sha256 => return None,
    };
    let mut whole: Option<u64> = None;
    for p in parts {
        let c = p.checksum.as_ref().filter(|c| c.algorithm == a)?;
        let raw = BASE64.decode(&c.value).ok().filter(|r| r.len() == width)?;
        let crc = raw.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        whole = Some(match whole {
            None => crc,
            Some(w) => crc_fast::checksum_combine(alg, w, crc, p.size),
        });
    }
    whole.map(|w| BASE64.encode(&w.to_be_bytes()[8 - width..]))
}

/// `(number, ETag)` of each listed part: what a repeated Complete must list again.
fn listed_pairs(listed: &[CompletedPart]) -> Vec<(i32, String)> {
    listed
        .iter()
        .map(|p| (p.part_number.unwrap_or(0), p.e_tag.as_ref().map(|e| e.value().to_string()).unwrap_or_default()))
        .collect()
}

/// What the write of the object checks and computes: a full-object checksum (the client's, when it sent
/// one, is checked), or none; and the composite checksum made of the parts' checksums.
fn object_checksum(
    m: &Manifest,
    parts: &[PartRecord],
    sent: [&Option<String>; 5],
) -> S3Result<(Expected, Option<ObjectChecksum>)> {
    let Some(a) = m.checksum else { return Ok((Expected::default(), None)) };
    if m.checksum_type == Some(Kind::FullObject) || a == Algorithm::Crc64nvme {
        // The parts' CRCs make the object's before it is written, so that it is stored with the object
        // also where nothing can be stored after the body (S3 UFSes); the write checks it all the same.
        let expected = match sent_value(a, sent).map(str::to_string).or_else(|| combined_crc(a, parts)) {
            Some(v) => Expected::full_object(a, &v)?,
            None => Expected::default().require(a)?,
        };
        return Ok((expected, None));
    }
    let mut raw = Vec::new();
    for p in parts {
        let c = p.checksum.as_ref().filter(|c| c.algorithm == a).ok_or_else(|| {
            s3_error!(InvalidRequest, "part {} carries no {} checksum, which this upload requires", p.number, a.name())
        })?;
        raw.extend(BASE64.decode(&c.value).unwrap_or_default());
    }
    let whole = BASE64.encode(a.digest(&raw));
    let value = format!("{whole}-{}", parts.len());
    // A composite checksum the client sent (with or without its `-<n>`) must be the one the parts make.
    if let Some(sent) = sent_value(a, sent)
        && sent != value
        && sent != whole
    {
        return Err(s3_error!(BadDigest, "The {} you specified did not match the calculated checksum.", a.header()));
    }
    Ok((Expected::default(), Some(ObjectChecksum { algorithm: a, value, kind: Kind::Composite })))
}

/// The checksums of `parts` (for `partNumber` reads and GetObjectAttributes), when the upload has an
/// algorithm and every part carries it.
fn part_checksums(m: &Manifest, parts: &[PartRecord]) -> Vec<String> {
    let Some(a) = m.checksum else { return Vec::new() };
    let values: Option<Vec<String>> =
        parts.iter().map(|p| p.checksum.as_ref().filter(|c| c.algorithm == a).map(|c| c.value.clone())).collect();
    values.unwrap_or_default()
}

fn complete_output(bucket: &str, key: &str, done: &CompletedObject) -> CompleteMultipartUploadOutput {
    let sums = verify::fields(done.checksum.as_ref());
    CompleteMultipartUploadOutput {
        bucket: Some(bucket.to_string()),
        key: Some(key.to_string()),
        e_tag: Some(ETag::Strong(done.answered_etag.clone())),
        location: Some(format!("/{bucket}/{key}")),
        checksum_crc32: sums.crc32,
        checksum_crc32c: sums.crc32c,
        checksum_crc64nvme: sums.crc64nvme,
        checksum_sha1: sums.sha1,
        checksum_sha256: sums.sha256,
        checksum_type: sums.kind,
        ..Default::default()
    }
}

/// CompleteMultipartUpload: checks the parts, then writes the object in the background of a kept-alive
/// answer, holding the upload's lock (a second Complete or an Abort waits for it). A repeated Complete
/// of a completed upload with the same part list answers the same result; another list: `NoSuchUpload`.
pub async fn complete(
    state: &Arc<WorkerState>,
    uploads: &Arc<UploadStore>,
    input: CompleteMultipartUploadInput,
) -> S3Result<CompleteMultipartUploadOutput> {
    let condition = conditions::write_condition(input.if_match, input.if_none_match)?;
    let (id, bucket, key) = (input.upload_id, input.bucket, input.key);
    upload_of(uploads, &id, &bucket, &key, false).await?;
    let target = buckets::object(state, &bucket, &key)?;
    let listed = input.multipart_upload.and_then(|m| m.parts).unwrap_or_default();
    let lock = uploads.lock(&id).await;
    if let Some(done) = uploads.completion(&id).await? {
        if done.parts == listed_pairs(&listed) {
            return Ok(complete_output(&bucket, &key, &done.object));
        }
        return Err(S3Error::with_message(
            S3ErrorCode::NoSuchUpload,
            format!("upload {id} was completed with another list of parts"),
        ));
    }
    // An Abort may have removed it while this waited for the lock.
    let m = upload_of(uploads, &id, &bucket, &key, true).await?;
    let parts = checked_parts(uploads, &id, &listed).await?;
    let sent = [
        &input.checksum_crc32,
        &input.checksum_crc32c,
        &input.checksum_crc64nvme,
        &input.checksum_sha1,
        &input.checksum_sha256,
    ];
    let (expected, composite) = object_checksum(&m, &parts, sent)?;
    if let Some(c) = &condition {
        condition_before_writing(state, &target.uri, c).await?;
    }
    conflict_before_writing(state, &target.uri).await?;
    let etag = metadata::multipart_etag(parts.iter().map(|p| p.etag.as_str()));
    // What is known before the body is stored with it (S3 UFSes store nothing later); a full-object
    // checksum that could not be combined from the parts is computed while writing and added after the
    // body (`file://`).
    let mut object_meta = m.metadata.clone();
    object_meta.etag = Some(etag.clone());
    object_meta.parts = parts.iter().map(|p| p.size).collect();
    object_meta.part_checksums = part_checksums(&m, &parts);
    object_meta.checksum = composite.as_ref().or(expected.declared().as_ref()).map(ObjectChecksum::to_ufs);
    let numbers: Vec<i32> = parts.iter().map(|p| p.number).collect();
    let checked = verify::check(uploads.concat(&id, &numbers)?, expected);
    let opts =
        WriteOptions { metadata: object_meta, amend: Some(verify::checksum_amendment(&checked.outcome)), condition };
    let condition_given = opts.condition.is_some();
    let (state, uploads) = (state.clone(), uploads.clone());
    let write = async move {
        let outcome = checked.outcome;
        let st = state.writes.put(&target.uri, checked.body, opts).await.map_err(|e| match e.kind() {
            ErrorKind::NotFound if condition_given => no_such_key(), // If-Match of a key deleted meanwhile
            _ => outcome.error_or(e),
        })?;
        let full = outcome.digests().and_then(|d| d.checksum);
        let done = CompletedObject {
            etag,
            answered_etag: remember(&state, &target.uri, &st).etag,
            size: st.length,
            part_sizes: parts.iter().map(|p| p.size).collect(),
            checksum: composite.or(full),
        };
        let record = Completion { version: UPLOAD_FORMAT_VERSION, parts: listed_pairs(&listed), object: done.clone() };
        if let Err(e) = uploads.complete(&lock, &id, &record).await {
            tracing::warn!("upload {id} completed, but its record could not be kept: {e}");
        }
        object_parts::remember(&uploads, &target.uri, &done).await;
        Ok(complete_output(&bucket, &key, &done))
    };
    Ok(CompleteMultipartUploadOutput { future: Some(Box::pin(write)), ..Default::default() })
}

fn no_such_key() -> S3Error {
    S3Error::with_message(S3ErrorCode::NoSuchKey, NO_SUCH_KEY)
}

/// `If-None-Match: *` / `If-Match` checked against the object as it is before the kept-alive answer
/// starts, so that a condition that already fails is a plain `412` (or `404 NoSuchKey` for `If-Match` of
/// a missing key), nothing written. The write checks it again in the same step as it replaces the object
/// (`WriteOptions::condition`): of two Completes racing for one key, at most one wins; the loser's `412`
/// then comes inside its kept-alive `200` (as S3's Complete errors can; boto3 reads it as the `412`), and
/// a retry gets the plain `412` here.
async fn condition_before_writing(state: &WorkerState, uri: &str, c: &WriteCondition) -> S3Result<()> {
    let (resolved, ufs) = state.rt.resolve(uri)?;
    let found = match ufs.stat(&resolved.ufs_uri).await {
        Ok(st) if st.is_dir => return Ok(()), // the conflict check answers it
        Ok(st) => Some(st),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(_) => return Ok(()), // the write itself checks, and reports
    };
    match c.holds(found.map(|st| meta_of(&st).etag).as_deref()) {
        Ok(true) => Ok(()),
        Ok(false) => Err(conditions::precondition_failed()),
        Err(_) => Err(no_such_key()),
    }
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

/// AbortMultipartUpload: removes the parts (waiting for a Complete in progress; a completed upload is no
/// upload).
pub async fn abort(uploads: &UploadStore, input: AbortMultipartUploadInput) -> S3Result<()> {
    upload_of(uploads, &input.upload_id, &input.bucket, &input.key, false).await?;
    Ok(uploads.remove(&input.upload_id).await?)
}
