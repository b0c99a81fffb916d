//! Who may call the S3 API. `s3s` checks signatures (SigV4, presigned URLs, V2) with the secret that
//! [`KeyAuth`] returns for the request's access key; [`Policy`] then decides per operation (called by
//! the access check, `unsupported::Gate`, and by the route for ignored ranges). A request
//! signed with an unknown key is `InvalidAccessKeyId`, a wrong signature `SignatureDoesNotMatch` (both
//! 403, from `s3s`); an unsigned one is served only when it reads and anonymous read is on, because
//! `alluxiofs` and plain HTTP tools send unsigned GETs.

use crate::s3_api::S3Credentials;
use s3s::auth::{S3Auth, SecretKey};
use s3s::{S3Result, s3_error};

/// Operations an unsigned request may call when anonymous read is on: they read and change nothing.
pub const ANONYMOUS_READS: &[&str] =
    &["GetObject", "HeadObject", "ListObjects", "ListObjectsV2", "ListBuckets", "HeadBucket", "GetBucketLocation"];

/// The secret of the configured access key (none configured: every signed request is refused).
pub struct KeyAuth {
    key: Option<(String, SecretKey)>,
}

impl KeyAuth {
    /// Checks signatures against `credentials`.
    pub fn new(credentials: Option<&S3Credentials>) -> Self {
        Self { key: credentials.map(|c| (c.access_key.clone(), SecretKey::from(c.secret_key.as_str()))) }
    }
}

#[async_trait::async_trait]
impl S3Auth for KeyAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match &self.key {
            Some((id, secret)) if id == access_key => Ok(secret.clone()),
            _ => {
                // The client's error, logged here at debug because `s3s`'s own log is off (`loam::logging`).
                tracing::debug!("S3 request refused: unknown access key");
                Err(s3_error!(InvalidAccessKeyId, "The AWS access key Id you provided does not exist in our records."))
            }
        }
    }
}

/// Which requests pass once their signature (if any) was checked.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// Whether unsigned reads are served.
    pub anonymous_read: bool,
}

impl Policy {
    /// Whether a request for `operation` passes; `signed` when it carried a valid signature.
    pub fn allows(&self, signed: bool, operation: &str) -> bool {
        signed || (self.anonymous_read && ANONYMOUS_READS.contains(&operation))
    }

    /// `Ok` when [`allows`](Self::allows), else S3's `AccessDenied`.
    pub fn check(&self, signed: bool, operation: &str) -> S3Result<()> {
        if self.allows(signed, operation) {
            return Ok(());
        }
        tracing::debug!(signed, operation, "S3 request refused: not allowed");
        Err(if self.anonymous_read {
            s3_error!(AccessDenied, "Anonymous requests may only read; sign {operation} requests")
        } else {
            s3_error!(AccessDenied, "Signature is required (anonymous read is off)")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsigned_requests_only_read_and_only_when_allowed() {
        let open = Policy { anonymous_read: true };
        let closed = Policy { anonymous_read: false };
        for op in ["GetObject", "HeadObject", "ListObjectsV2", "ListBuckets"] {
            assert!(open.allows(false, op) && !closed.allows(false, op), "{op}");
            assert!(closed.allows(true, op), "{op}");
        }
        for op in ["PutObject", "DeleteObject", "CopyObject", "CreateMultipartUpload", "DeleteObjects"] {
            assert!(!open.allows(false, op) && open.allows(true, op), "{op}");
        }
        assert_eq!(closed.check(false, "GetObject").unwrap_err().code(), &s3s::S3ErrorCode::AccessDenied);
    }

    #[tokio::test]
    async fn only_the_configured_key_has_a_secret() {
        let creds = S3Credentials { access_key: "AK".into(), secret_key: "SK".into() };
        let auth = KeyAuth::new(Some(&creds));
        assert_eq!(auth.get_secret_key("AK").await.unwrap().expose(), "SK");
        let e = auth.get_secret_key("other").await.unwrap_err();
        assert_eq!(e.code(), &s3s::S3ErrorCode::InvalidAccessKeyId);
        assert!(KeyAuth::new(None).get_secret_key("AK").await.is_err());
    }
}
