//! What the S3 API refuses rather than silently ignores, checked in one place: [`Gate`], the `s3s` access
//! check, which runs once the signature is checked and before the request body is read or any operation
//! runs, so a refused request writes nothing (UFS and cache untouched). The route for ignored ranges
//! calls [`check`] too.
//!
//! Loam keeps objects as the UFS holds them: unencrypted, unversioned, without ACLs, locks or tags. A
//! request that asks for one of these would otherwise be stored without it (plain text, readable without
//! the customer's key), so it is refused with the error S3 gives a bucket that lacks the feature, or
//! `501 NotImplemented` where S3 has none:
//!
//! | Request | Answer |
//! | --- | --- |
//! | a write with `x-amz-server-side-encryption*` (SSE-S3, SSE-KMS, SSE-C) | `501 NotImplemented` |
//! | a read with SSE-C headers, a copy with `x-amz-copy-source-server-side-encryption-customer-*` | `400 InvalidRequest` (no object is encrypted), as S3 |
//! | a read with `x-amz-server-side-encryption*` | `400 InvalidArgument`, as S3 |
//! | a write with `x-amz-object-lock-*`, a delete with `x-amz-bypass-governance-retention` | `400 InvalidRequest` "Bucket is missing Object Lock Configuration", as S3 |
//! | a write with `x-amz-acl` other than `private`/`bucket-owner-full-control`, or `x-amz-grant-*` | `400 AccessControlListNotSupported`, as S3 for a bucket with ACLs disabled |
//! | a write with a non-empty `x-amz-tagging` | `501 NotImplemented` |
//! | CreateBucket with `x-amz-bucket-object-lock-enabled: true` (its ACL headers as a write's) | `501 NotImplemented` |
//! | `versionId` other than `null` (query, copy source, DeleteObjects entry) | `400 InvalidArgument` "Invalid version id specified", as S3 |
//!
//! The ACL, tagging, versioning, lock and encryption operations themselves (`?acl`, `?tagging`,
//! `?versioning`, ...) are not implemented by [`LoamS3`](crate::s3_api::LoamS3), so `s3s` answers them
//! `501 NotImplemented` before anything runs.

use crate::s3_api::auth::Policy;
use axum::http::{HeaderMap, Uri};
use s3s::access::{S3Access, S3AccessContext};
use s3s::{S3Error, S3ErrorCode, S3Result};

/// Operations that read an object.
const READS: &[&str] = &["GetObject", "HeadObject", "GetObjectAttributes"];
/// Operations that write an object (or a part of one).
const WRITES: &[&str] =
    &["PutObject", "CopyObject", "CreateMultipartUpload", "UploadPart", "UploadPartCopy", "CompleteMultipartUpload"];
/// Operations that delete objects.
const DELETES: &[&str] = &["DeleteObject", "DeleteObjects"];
/// The canned ACLs that say what Loam does anyway: the owner (the one key pair) has full control.
const OWNER_ONLY_ACLS: &[&str] = &["private", "bucket-owner-full-control"];

const SSE: &str = "x-amz-server-side-encryption";
const SSE_C: &str = "x-amz-server-side-encryption-customer-";
const COPY_SOURCE_SSE_C: &str = "x-amz-copy-source-server-side-encryption-customer-";

use crate::metrics::data_path::S3OperationSlot;

/// The access check of the S3 API: who may call ([`Policy`]), then what is refused ([`check`]).
#[derive(Clone, Copy, Debug)]
pub struct Gate {
    /// Who may call what.
    pub policy: Policy,
}

#[async_trait::async_trait]
impl S3Access for Gate {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        if let Some(slot) = cx.extensions_mut().get::<S3OperationSlot>().cloned() {
            slot.set(cx.s3_op().name());
        }
        let op = cx.s3_op().name();
        self.policy.check(cx.credentials().is_some(), op)?;
        check(op, cx.headers(), cx.uri())
    }
}

/// `Ok` unless a request for `op` with these headers and URI asks for what Loam does not do.
pub fn check(op: &str, headers: &HeaderMap, uri: &Uri) -> S3Result<()> {
    let r = check_version_id(query_value(uri, "versionId").as_deref()).and_then(|()| {
        if READS.contains(&op) {
            read_headers(headers)
        } else if WRITES.contains(&op) {
            write_headers(headers)
        } else if op == "CreateBucket" {
            create_bucket_headers(headers)
        } else if DELETES.contains(&op) {
            delete_headers(headers)
        } else {
            Ok(())
        }
    });
    if let Err(e) = &r {
        tracing::debug!(op, code = e.code().as_str(), "S3 request refused: not supported");
    }
    r
}

/// `Ok` for no version id or `null`, the only version an object of an unversioned bucket has.
pub fn check_version_id(version_id: Option<&str>) -> S3Result<()> {
    match version_id {
        None | Some("null") => Ok(()),
        Some(_) => Err(S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            "Invalid version id specified: buckets are not versioned, the only version is \"null\"",
        )),
    }
}

fn read_headers(headers: &HeaderMap) -> S3Result<()> {
    for name in headers.keys().map(|n| n.as_str()) {
        if name.starts_with(SSE_C) {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                "The encryption parameters are not applicable to this object: it is stored without encryption",
            ));
        }
        if name.starts_with(SSE) {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                format!("{name} header is not supported for this operation"),
            ));
        }
    }
    Ok(())
}

fn write_headers(headers: &HeaderMap) -> S3Result<()> {
    for (name, value) in headers {
        let name = name.as_str();
        if name.starts_with(COPY_SOURCE_SSE_C) {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                "The encryption parameters are not applicable to the copy source: it is stored without encryption",
            ));
        }
        if name.starts_with(SSE) {
            return Err(S3Error::with_message(
                S3ErrorCode::NotImplemented,
                format!(
                    "server-side encryption ({name}) is not supported: objects are stored as the UFS keeps \
                     them, unencrypted; nothing was written"
                ),
            ));
        }
        if name.starts_with("x-amz-object-lock-") {
            return Err(no_object_lock());
        }
        let acl = name == "x-amz-acl" && !value.to_str().is_ok_and(|v| OWNER_ONLY_ACLS.contains(&v.trim()));
        if acl || name.starts_with("x-amz-grant-") {
            return Err(S3Error::with_message(
                S3ErrorCode::AccessControlListNotSupported,
                format!("The bucket does not allow ACLs ({name}): only the owner has access; nothing was written"),
            ));
        }
        if name == "x-amz-tagging" && !value.is_empty() {
            return Err(S3Error::with_message(
                S3ErrorCode::NotImplemented,
                "object tagging (x-amz-tagging) is not supported; nothing was written",
            ));
        }
    }
    // The version of a copy source rides in the x-amz-copy-source header: `bucket/key?versionId=v`.
    let source = headers.get("x-amz-copy-source").and_then(|v| v.to_str().ok());
    let version = source.and_then(|s| s.split_once('?')).and_then(|(_, q)| value_in(q, "versionId"));
    check_version_id(version.as_deref())
}

/// CreateBucket of a mounted name changes nothing, so what it would set must be what the bucket is.
fn create_bucket_headers(headers: &HeaderMap) -> S3Result<()> {
    let lock = headers.get("x-amz-bucket-object-lock-enabled").and_then(|v| v.to_str().ok());
    if lock.is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            "object lock is not supported: a bucket is a mount point of files; nothing was changed",
        ));
    }
    write_headers(headers)
}

fn delete_headers(headers: &HeaderMap) -> S3Result<()> {
    if headers.contains_key("x-amz-bypass-governance-retention") { Err(no_object_lock()) } else { Ok(()) }
}

fn no_object_lock() -> S3Error {
    S3Error::with_message(
        S3ErrorCode::InvalidRequest,
        "Bucket is missing Object Lock Configuration: object lock is not supported; nothing was written",
    )
}

/// The percent-decoded value of query parameter `name` (`""` when it has none).
fn query_value(uri: &Uri, name: &str) -> Option<String> {
    value_in(uri.query()?, name)
}

fn value_in(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
        (n == name).then(|| percent_encoding::percent_decode_str(v).decode_utf8_lossy().into_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs.iter().map(|(n, v)| (n.parse().unwrap(), v.parse().unwrap())).collect()
    }

    fn code(op: &str, pairs: &[(&str, &str)], uri: &str) -> Option<S3ErrorCode> {
        check(op, &headers(pairs), &uri.parse().unwrap()).err().map(|e| e.code().clone())
    }

    #[test]
    fn writes_that_ask_for_what_loam_does_not_do_are_refused() {
        use S3ErrorCode::*;
        let put = |pairs: &[(&str, &str)]| code("PutObject", pairs, "/d/k");
        assert_eq!(put(&[]), None);
        assert_eq!(put(&[("x-amz-server-side-encryption", "AES256")]), Some(NotImplemented));
        assert_eq!(put(&[("x-amz-server-side-encryption", "aws:kms")]), Some(NotImplemented));
        assert_eq!(put(&[("x-amz-server-side-encryption-customer-algorithm", "AES256")]), Some(NotImplemented));
        assert_eq!(put(&[("x-amz-object-lock-mode", "GOVERNANCE")]), Some(InvalidRequest));
        assert_eq!(put(&[("x-amz-object-lock-legal-hold", "ON")]), Some(InvalidRequest));
        assert_eq!(put(&[("x-amz-acl", "private")]), None);
        assert_eq!(put(&[("x-amz-acl", "bucket-owner-full-control")]), None);
        assert_eq!(put(&[("x-amz-acl", "public-read")]), Some(AccessControlListNotSupported));
        assert_eq!(put(&[("x-amz-grant-read", "id=x")]), Some(AccessControlListNotSupported));
        assert_eq!(put(&[("x-amz-tagging", "a=b")]), Some(NotImplemented));
        assert_eq!(put(&[("x-amz-tagging", "")]), None);
        assert_eq!(
            code("CreateMultipartUpload", &[("x-amz-server-side-encryption", "AES256")], "/d/k?uploads"),
            Some(NotImplemented)
        );
        let copy = |pairs: &[(&str, &str)]| code("CopyObject", pairs, "/d/k");
        assert_eq!(copy(&[("x-amz-copy-source", "d/src")]), None);
        assert_eq!(copy(&[("x-amz-copy-source", "d/src?versionId=null")]), None);
        assert_eq!(copy(&[("x-amz-copy-source", "d/src?versionId=abc")]), Some(InvalidArgument));
        assert_eq!(copy(&[("x-amz-copy-source-server-side-encryption-customer-key", "k")]), Some(InvalidRequest));
    }

    #[test]
    fn reads_deletes_and_version_ids_follow_s3() {
        use S3ErrorCode::*;
        assert_eq!(
            code("GetObject", &[("x-amz-server-side-encryption-customer-key", "k")], "/d/k"),
            Some(InvalidRequest)
        );
        assert_eq!(code("HeadObject", &[("x-amz-server-side-encryption", "AES256")], "/d/k"), Some(InvalidArgument));
        assert_eq!(code("GetObject", &[("x-amz-acl", "public-read")], "/d/k"), None, "meaningless on a read");
        assert_eq!(code("GetObject", &[], "/d/k?versionId=null"), None);
        assert_eq!(code("GetObject", &[], "/d/k?versionId=3sL4kqtJlcpXroDTDmJ%2BrmSpXd3dIbrHY"), Some(InvalidArgument));
        assert_eq!(code("DeleteObject", &[], "/d/k?versionId=v1"), Some(InvalidArgument));
        assert_eq!(
            code("DeleteObject", &[("x-amz-bypass-governance-retention", "true")], "/d/k"),
            Some(InvalidRequest)
        );
        assert_eq!(code("ListObjectsV2", &[("x-amz-server-side-encryption", "AES256")], "/d"), None);
        let e = check("PutObject", &headers(&[("x-amz-server-side-encryption", "AES256")]), &"/d/k".parse().unwrap());
        assert_eq!(e.unwrap_err().status_code().map(|s| s.as_u16()), Some(501));
    }
}
