//! The truthful answers to the read side of the bucket and object configuration S3 has and Loam does not
//! do: a Loam bucket is never versioned, has no ACL but the owner's, no tags, policy, lifecycle, CORS,
//! object lock or encryption configuration. Tools read these before they act (backup tools list object
//! versions; SDK helpers read ACLs and tags), so each read answers what S3 answers a bucket without the
//! feature, rather than `501`. The writes stay refused (`unsupported`, and `s3s`'s `501`).

use crate::http_api::WorkerState;
use crate::s3_api::buckets;
use crate::s3_api::listing;
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Result};

/// The version id of every object: S3's for objects of a bucket that was never versioned.
pub const NULL_VERSION: &str = "null";

/// The ACL of every bucket and object: the owner (the one key pair) with full control.
fn owner_acl() -> (Option<Owner>, Option<Grants>) {
    let o = buckets::owner();
    let grant = Grant {
        grantee: Some(Grantee {
            type_: Type::from_static(Type::CANONICAL_USER),
            id: o.id.clone(),
            display_name: o.display_name.clone(),
            email_address: None,
            uri: None,
        }),
        permission: Some(Permission::from_static(Permission::FULL_CONTROL)),
    };
    (Some(o), Some(vec![grant]))
}

/// GetBucketAcl: the owner's full control.
pub fn bucket_acl(state: &WorkerState, bucket: &str) -> S3Result<GetBucketAclOutput> {
    buckets::mount_of(state, bucket)?;
    let (owner, grants) = owner_acl();
    Ok(GetBucketAclOutput { owner, grants })
}

/// GetObjectAcl: the owner's full control, for an object that exists.
pub async fn object_acl(state: &WorkerState, bucket: &str, key: &str) -> S3Result<GetObjectAclOutput> {
    crate::s3_api::objects::exists(state, bucket, key).await?;
    let (owner, grants) = owner_acl();
    Ok(GetObjectAclOutput { owner, grants, ..Default::default() })
}

/// GetObjectTagging: no tags, for an object that exists.
pub async fn object_tagging(state: &WorkerState, bucket: &str, key: &str) -> S3Result<GetObjectTaggingOutput> {
    crate::s3_api::objects::exists(state, bucket, key).await?;
    Ok(GetObjectTaggingOutput { tag_set: Vec::new(), version_id: None })
}

/// GetBucketVersioning: never enabled (no `Status`, as S3 answers such a bucket).
pub fn versioning(state: &WorkerState, bucket: &str) -> S3Result<GetBucketVersioningOutput> {
    buckets::mount_of(state, bucket)?;
    Ok(GetBucketVersioningOutput::default())
}

/// The error S3 answers a read of configuration a bucket does not have.
pub fn not_configured(state: &WorkerState, bucket: &str, code: S3ErrorCode, what: &str) -> S3Error {
    match buckets::mount_of(state, bucket) {
        Err(e) => e,
        Ok(_) => S3Error::with_message(code, format!("The bucket has no {what}: Loam buckets have none")),
    }
}

/// ListObjectVersions: one version per object, `null`, the latest, as S3 lists a never-versioned bucket;
/// no delete markers. Pages as ListObjects V1 (`key-marker` is its marker; a `version-id-marker` other
/// than `null` with it names no version there is, so the listing continues after the key).
pub async fn list_versions(state: &WorkerState, input: ListObjectVersionsInput) -> S3Result<ListObjectVersionsOutput> {
    let v1 = ListObjectsInput {
        bucket: input.bucket,
        delimiter: input.delimiter,
        encoding_type: input.encoding_type,
        marker: input.key_marker.clone(),
        max_keys: input.max_keys,
        prefix: input.prefix,
        ..Default::default()
    };
    let out = listing::list_v1(state, v1).await?;
    let versions = out
        .contents
        .unwrap_or_default()
        .into_iter()
        .map(|o| ObjectVersion {
            e_tag: o.e_tag,
            is_latest: Some(true),
            key: o.key,
            last_modified: o.last_modified,
            owner: o.owner,
            size: o.size,
            storage_class: Some(ObjectVersionStorageClass::from_static(ObjectVersionStorageClass::STANDARD)),
            version_id: Some(NULL_VERSION.into()),
            ..Default::default()
        })
        .collect();
    let truncated = out.is_truncated.unwrap_or(false);
    Ok(ListObjectVersionsOutput {
        name: out.name,
        prefix: out.prefix,
        delimiter: out.delimiter,
        encoding_type: out.encoding_type,
        key_marker: Some(input.key_marker.unwrap_or_default()),
        version_id_marker: Some(input.version_id_marker.unwrap_or_default()),
        max_keys: out.max_keys,
        is_truncated: Some(truncated),
        next_key_marker: out.next_marker,
        next_version_id_marker: truncated.then(|| NULL_VERSION.to_string()),
        versions: Some(versions),
        common_prefixes: out.common_prefixes,
        ..Default::default()
    })
}
