//! ListParts and ListMultipartUploads, paged as S3 pages them.
//!
//! - **ListParts**: the parts after `part-number-marker`, at most `max-parts` (default and limit 1000);
//!   a truncated page names its last part as `NextPartNumberMarker`.
//! - **ListMultipartUploads**: the unfinished uploads of a bucket **on this worker** (uploads live
//!   where they were created; see `store`), ordered by key and then by initiation, under `prefix`; with a
//!   `delimiter`, keys that hold it after the prefix roll up into common prefixes. Paging resumes after
//!   `key-marker` (every upload of that key, or — with `upload-id-marker` — those after that upload);
//!   a truncated page names where the next one starts.

use super::store::{Manifest, UploadStore};
use super::upload_of;
use crate::http_api::WorkerState;
use crate::s3_api::buckets;
use crate::s3_api::verify;
use s3s::S3Result;
use s3s::dto::*;
use std::time::{Duration, UNIX_EPOCH};

/// Parts listed per ListParts page at most (and by default).
const MAX_PARTS: i32 = 1000;
/// Uploads listed per ListMultipartUploads page at most (and by default).
const MAX_UPLOADS: i32 = 1000;

fn timestamp(ms: i64) -> Timestamp {
    Timestamp::from(UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
}

/// ListParts, after `part-number-marker`, `max-parts` at a time.
pub async fn list_parts(uploads: &UploadStore, input: ListPartsInput) -> S3Result<ListPartsOutput> {
    let m = upload_of(uploads, &input.upload_id, &input.bucket, &input.key, true).await?;
    let marker = input.part_number_marker.unwrap_or(0);
    let max = input.max_parts.unwrap_or(MAX_PARTS).clamp(0, MAX_PARTS);
    let mut parts: Vec<_> = uploads.parts(&input.upload_id).await?.into_iter().filter(|p| p.number > marker).collect();
    let truncated = parts.len() > max as usize;
    parts.truncate(max as usize);
    let next = truncated.then(|| parts.last().map(|p| p.number)).flatten();
    let parts = parts
        .into_iter()
        .map(|p| {
            let sums = verify::fields(p.checksum.as_ref());
            Part {
                part_number: Some(p.number),
                e_tag: Some(ETag::Strong(p.etag)),
                size: Some(i64::try_from(p.size).unwrap_or(i64::MAX)),
                last_modified: Some(timestamp(p.modified_ms)),
                checksum_crc32: sums.crc32,
                checksum_crc32c: sums.crc32c,
                checksum_crc64nvme: sums.crc64nvme,
                checksum_sha1: sums.sha1,
                checksum_sha256: sums.sha256,
            }
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
        checksum_algorithm: m.checksum.map(|a| ChecksumAlgorithm::from(a.name().to_string())),
        ..Default::default()
    })
}

/// One row of a listing: an upload, or a common prefix standing for the uploads under it.
enum Row {
    Upload(String, Box<Manifest>),
    Prefix(String),
}

/// ListMultipartUploads of this worker's unfinished uploads.
pub async fn list_uploads(
    state: &WorkerState,
    uploads: &UploadStore,
    input: ListMultipartUploadsInput,
) -> S3Result<ListMultipartUploadsOutput> {
    buckets::mount_of(state, &input.bucket)?;
    let prefix = input.prefix.clone().unwrap_or_default();
    let delimiter = input.delimiter.clone().filter(|d| !d.is_empty());
    let key_marker = input.key_marker.clone().unwrap_or_default();
    let id_marker = input.upload_id_marker.clone().filter(|_| !key_marker.is_empty());
    let max = input.max_uploads.unwrap_or(MAX_UPLOADS).clamp(0, MAX_UPLOADS) as usize;

    let mut all: Vec<(String, Manifest)> = uploads
        .live_uploads()
        .await?
        .into_iter()
        .filter(|(_, m)| m.bucket == input.bucket && m.key.starts_with(&prefix))
        .collect();
    all.sort_by(|(a_id, a), (b_id, b)| (&a.key, a.created_ms, a_id).cmp(&(&b.key, b.created_ms, b_id)));
    // After the marker: keys past key-marker; of key-marker itself, the uploads after upload-id-marker.
    let start = match &id_marker {
        Some(id) => all.iter().position(|(i, m)| m.key == key_marker && i == id).map(|p| p + 1),
        None => None,
    }
    .unwrap_or_else(|| all.partition_point(|(_, m)| m.key.as_str() <= key_marker.as_str()));

    let mut rows: Vec<Row> = Vec::new();
    let mut truncated = false;
    for (id, m) in all.into_iter().skip(start) {
        let rolled = delimiter
            .as_deref()
            .and_then(|d| m.key[prefix.len()..].find(d).map(|i| m.key[..prefix.len() + i + d.len()].to_string()));
        match rolled {
            Some(p) if matches!(rows.last(), Some(Row::Prefix(last)) if *last == p) => continue,
            // The prefix was the last row of an earlier page (its NextKeyMarker).
            Some(p) if key_marker.starts_with(&p) => continue,
            _ => {}
        }
        if rows.len() == max {
            truncated = true;
            break;
        }
        rows.push(match rolled {
            Some(p) => Row::Prefix(p),
            None => Row::Upload(id, Box::new(m)),
        });
    }
    let (next_key, next_id) = match rows.last() {
        Some(Row::Upload(id, m)) if truncated => (Some(m.key.clone()), Some(id.clone())),
        Some(Row::Prefix(p)) if truncated => (Some(p.clone()), None),
        _ => (None, None),
    };
    let (mut listed, mut prefixes) = (Vec::new(), Vec::new());
    for row in rows {
        match row {
            Row::Upload(id, m) => listed.push(MultipartUpload {
                key: Some(m.key),
                upload_id: Some(id),
                initiated: Some(timestamp(m.created_ms)),
                checksum_algorithm: m.checksum.map(|a| ChecksumAlgorithm::from(a.name().to_string())),
                storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
                ..Default::default()
            }),
            Row::Prefix(p) => prefixes.push(CommonPrefix { prefix: Some(p) }),
        }
    }
    Ok(ListMultipartUploadsOutput {
        bucket: Some(input.bucket),
        prefix: input.prefix,
        delimiter: input.delimiter,
        key_marker: input.key_marker,
        upload_id_marker: input.upload_id_marker,
        max_uploads: Some(max as i32),
        is_truncated: Some(truncated),
        next_key_marker: next_key,
        next_upload_id_marker: next_id,
        uploads: Some(listed),
        common_prefixes: Some(prefixes),
        encoding_type: input.encoding_type,
        ..Default::default()
    })
}
