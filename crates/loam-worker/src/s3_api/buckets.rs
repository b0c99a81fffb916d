//! Buckets are mount points: `/data` is bucket `data` and key `k` in it is the UFS URI `<mount root>/k`,
//! the same file the worker HTTP API calls `/data/k`. Mounts are read from the worker's live mount view,
//! so a mount added on the Coordinator is a bucket here within moments. Buckets are made and removed on the
//! Coordinator (`loam mount add`/`remove`), not through S3: CreateBucket of a mounted name answers `200` as
//! S3 does in us-east-1 when the owner re-creates a bucket it has (nothing changes); of any other name
//! `501 NotImplemented`, saying how to mount it. DeleteBucket of a bucket with objects is `409
//! BucketNotEmpty`, as S3; of an empty one `501` (unmount it on the Coordinator): a worker never changes
//! the mount table, which is the Coordinator's.

use crate::http_api::WorkerState;
use loam_ufs::Mount;
use loam_ufs::mount_table::MountError;
use s3s::dto::{Bucket, CreateBucketInput, CreateBucketOutput, ListBucketsInput, ListBucketsOutput, Owner, Timestamp};
use s3s::validation::NameValidation;
use s3s::{S3Error, S3ErrorCode, S3Result, s3_error};
use std::time::SystemTime;

/// Accepts any mount name as a bucket name: mount names are not held to S3's bucket-name rules
/// (`my_data` is a valid mount), and a name that is not mounted is `NoSuchBucket` anyway.
pub struct MountNames;

impl NameValidation for MountNames {
    fn validate_bucket_name(&self, name: &str) -> bool {
        !name.is_empty()
    }
}

/// The id (and display name) of the owner of every bucket and object: the one key pair the S3 API has.
pub const OWNER_ID: &str = "loam";

/// The owner of every bucket and object, as listings show it.
pub fn owner() -> Owner {
    Owner { id: Some(OWNER_ID.into()), display_name: Some(OWNER_ID.into()) }
}

/// An object named by bucket and key, resolved to its UFS URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The bucket (mount name).
    pub bucket: String,
    /// The key as the client sent it.
    pub key: String,
    /// The UFS URI it names.
    pub uri: String,
    /// Whether the key ends in `/`: a directory (an S3 "folder" marker).
    pub is_dir: bool,
}

/// The mount that is bucket `bucket`.
pub fn mount_of(state: &WorkerState, bucket: &str) -> S3Result<Mount> {
    match state.mounts.resolve(&format!("/{bucket}")) {
        Ok(r) if r.cluster_path == r.mount.path => Ok(r.mount),
        _ => Err(no_such_bucket(bucket)),
    }
}

/// `NoSuchBucket` for `bucket`.
pub fn no_such_bucket(bucket: &str) -> S3Error {
    s3_error!(NoSuchBucket, "The specified bucket does not exist: no mount point /{bucket}")
}

/// The longest key S3 accepts, in bytes of UTF-8.
pub const MAX_KEY_BYTES: usize = 1024;
/// The longest name of one path component a `file://` mount can hold (Linux's `NAME_MAX`).
pub const MAX_FILE_NAME_BYTES: usize = 255;

/// Why a key names no UFS path, if it names none: a `400` the client can act on, before anything is
/// written. S3 would store any such key as an object of its own; Loam refuses it rather than make it
/// another object (see docs/SEMANTICS.md, "S3 keys"). A key with a C1 control character is refused on
/// every bucket with S3's own answer, `400 InvalidURI`.
fn refuse_key(key: &str, path: &str, file_system: bool) -> Option<S3Error> {
    let invalid = |why: &str| Some(S3Error::with_message(S3ErrorCode::InvalidArgument, format!("key {key:?} {why}")));
    if let Err(e) = parseable(key) {
        return Some(e);
    }
    if key.len() > MAX_KEY_BYTES {
        let msg = format!("Your key is too long: {} bytes, at most {MAX_KEY_BYTES}", key.len());
        return Some(S3Error::with_message(S3ErrorCode::KeyTooLongError, msg));
    }
    if key.contains('\0') {
        return invalid("contains a NUL character, which no UFS path can hold");
    }
    if path.is_empty() || path.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
        return invalid("cannot name a file: its path segments must not be empty, '.' or '..'");
    }
    if file_system && let Some(long) = path.split('/').find(|s| s.len() > MAX_FILE_NAME_BYTES) {
        let msg = format!(
            "key {key:?}: a path segment of {} bytes is longer than a file:// mount can hold (at most \
             {MAX_FILE_NAME_BYTES})",
            long.len()
        );
        return Some(S3Error::with_message(S3ErrorCode::KeyTooLongError, msg));
    }
    None
}

/// `Ok` unless `key` holds a C1 control character (U+0080..=U+009F), which S3 does not parse in a URI:
/// then S3's answer word for word (ceph/s3-tests asserts the message), `400 InvalidURI`. Every operation
/// that names a key checks it, through `object` or, for an upload's later requests, `multipart`.
pub fn parseable(key: &str) -> S3Result<()> {
    if key.chars().any(|c| ('\u{80}'..='\u{9f}').contains(&c)) {
        return Err(S3Error::with_message(S3ErrorCode::InvalidURI, "Couldn't parse the specified URI."));
    }
    Ok(())
}

/// Resolves `bucket`/`key` to its UFS URI, exactly: the key's bytes are the path's (whitespace, `%`, `+`
/// and unicode included; the UFS layer keeps them, see loam-ufs `exact_paths`). A key that names no UFS
/// path is refused (`refuse_key`).
pub fn object(state: &WorkerState, bucket: &str, key: &str) -> S3Result<Target> {
    let (path, is_dir) = match key.strip_suffix('/') {
        Some(dir) => (dir, true),
        None => (key, false),
    };
    let resolved = state.mounts.resolve(&format!("/{bucket}/{path}"));
    let file_system = resolved.as_ref().is_ok_and(|r| r.ufs_uri.starts_with("file://"));
    if let Some(e) = refuse_key(key, path, file_system) {
        return Err(e);
    }
    match resolved {
        Ok(r) => Ok(Target { bucket: bucket.to_string(), key: key.to_string(), uri: r.ufs_uri, is_dir }),
        Err(MountError::NotMounted(_)) => Err(no_such_bucket(bucket)),
        Err(e) => Err(S3Error::with_message(S3ErrorCode::InvalidArgument, format!("key {key:?}: {e}"))),
    }
}

/// The most buckets a ListBuckets page holds (S3's limit for `max-buckets`).
pub const MAX_BUCKETS: i32 = 10_000;

/// ListBuckets: the mounts whose names start with `prefix`, in name order, `max-buckets` at a time after
/// the continuation token (the hex of the last name of the previous page, as listings' tokens). Mounts
/// record no creation time; `created` (when the API started) stands in.
pub fn list(state: &WorkerState, created: SystemTime, input: ListBucketsInput) -> S3Result<ListBucketsOutput> {
    let max = match input.max_buckets {
        None => MAX_BUCKETS as usize,
        Some(n) if (1..=MAX_BUCKETS).contains(&n) => n as usize,
        Some(n) => {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                format!("max-buckets must be 1 to {MAX_BUCKETS}, not {n}"),
            ));
        }
    };
    let after = match input.continuation_token.as_deref() {
        None => None,
        Some(t) => Some(
            hex::decode(t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| s3_error!(InvalidArgument, "The continuation token provided is incorrect"))?,
        ),
    };
    let prefix = input.prefix.clone().unwrap_or_default();
    let mut names: Vec<String> = state
        .mounts
        .snapshot()
        .iter()
        .map(|m| m.name().to_string())
        .filter(|n| n.starts_with(&prefix) && after.as_ref().is_none_or(|a| n > a))
        .collect();
    names.sort();
    let truncated = names.len() > max;
    names.truncate(max);
    let next = truncated.then(|| names.last().map(hex::encode)).flatten();
    let buckets = names
        .into_iter()
        .map(|name| Bucket { name: Some(name), creation_date: Some(Timestamp::from(created)), bucket_region: None })
        .collect();
    Ok(ListBucketsOutput {
        buckets: Some(buckets),
        owner: Some(owner()),
        continuation_token: next,
        prefix: input.prefix,
    })
}

/// How a bucket is made or removed, for the answers of CreateBucket and DeleteBucket.
fn use_the_coordinator(what: &str, bucket: &str) -> S3Error {
    S3Error::with_message(
        S3ErrorCode::NotImplemented,
        format!(
            "{what}: a bucket is a mount point of the Loam Coordinator; {} /{bucket} there \
             (`loam mount`, the Coordinator's /api/v1/mount); nothing was changed",
            if what.starts_with("CreateBucket") { "mount a UFS at" } else { "unmount" }
        ),
    )
}

/// CreateBucket: `200` for a mounted name (the owner re-creating its bucket, as S3 in us-east-1 answers;
/// the request's ACL and object-lock headers went through the same refusals as writes), else `501`.
pub fn create(state: &WorkerState, input: &CreateBucketInput) -> S3Result<CreateBucketOutput> {
    if input.create_bucket_configuration.as_ref().is_some_and(|c| c.location_constraint.is_some()) {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidLocationConstraint,
            "The specified location-constraint is not valid: Loam buckets have no region",
        ));
    }
    match mount_of(state, &input.bucket) {
        Ok(_) => Ok(CreateBucketOutput { location: Some(format!("/{}", input.bucket)) }),
        Err(_) => Err(use_the_coordinator("CreateBucket of a bucket that is not mounted", &input.bucket)),
    }
}

/// DeleteBucket of a mounted bucket: `409 BucketNotEmpty` when it holds anything, else `501`.
pub fn delete_refused(bucket: &str, empty: bool) -> S3Error {
    if empty {
        use_the_coordinator("DeleteBucket", bucket)
    } else {
        S3Error::with_message(S3ErrorCode::BucketNotEmpty, "The bucket you tried to delete is not empty")
    }
}
