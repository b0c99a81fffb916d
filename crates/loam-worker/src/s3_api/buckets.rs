//! Buckets are mount points: `/data` is bucket `data` and key `k` in it is the UFS URI `<mount root>/k`,
//! the same file the worker HTTP API calls `/data/k`. Mounts are read from the worker's live mount view,
//! so a mount added on the Coordinator is a bucket here within moments; buckets cannot be created or
//! deleted through S3 (that is `loam mount add`/`remove`).

use crate::http_api::WorkerState;
use loam_ufs::Mount;
use loam_ufs::mount_table::MountError;
use s3s::dto::{Bucket, ListBucketsOutput, Timestamp};
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

/// Resolves `bucket`/`key` to its UFS URI. Keys whose segments are empty, `.` or `..` name no UFS path.
pub fn object(state: &WorkerState, bucket: &str, key: &str) -> S3Result<Target> {
    let (path, is_dir) = match key.strip_suffix('/') {
        Some(dir) => (dir, true),
        None => (key, false),
    };
    if path.is_empty() || path.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            format!("key {key:?} cannot name a file: its path segments must not be empty, '.' or '..'"),
        ));
    }
    match state.mounts.resolve(&format!("/{bucket}/{path}")) {
        Ok(r) => Ok(Target { bucket: bucket.to_string(), key: key.to_string(), uri: r.ufs_uri, is_dir }),
        Err(MountError::NotMounted(_)) => Err(no_such_bucket(bucket)),
        Err(e) => Err(S3Error::with_message(S3ErrorCode::InvalidArgument, format!("key {key:?}: {e}"))),
    }
}

/// Every mount, as a bucket. Mounts record no creation time; `created` (when the API started) stands in.
pub fn list(state: &WorkerState, created: SystemTime) -> ListBucketsOutput {
    let buckets = state
        .mounts
        .snapshot()
        .iter()
        .map(|m| Bucket {
            name: Some(m.name().to_string()),
            creation_date: Some(Timestamp::from(created)),
            bucket_region: None,
        })
        .collect();
    ListBucketsOutput { buckets: Some(buckets), ..Default::default() }
}
