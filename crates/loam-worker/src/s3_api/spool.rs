//! PutObject with `Transfer-Encoding: chunked` and no `Content-Length` (plain HTTP chunking, not
//! `aws-chunked`): accepted when `s3-unsized-puts` is on, as RGW and MinIO accept it (ceph/s3-tests'
//! `test_object_write_with_chunked_transfer_encoding`); off (the default) it is `s3s`'s
//! `411 MissingContentLength`, as AWS answers, because the spool below runs before the signature check.
//!
//! `s3s` (0.14) checks a signed payload hash against a body of known length only, and refuses such a
//! request before Loam sees it. So the edge spools the body first: into an unnamed temporary file under
//! the worker's data directory (`s3-spool`; gone with the request, also when the worker dies), counting
//! its bytes, then hands `s3s` the same request with that `Content-Length` and the file as its body.
//! From there it is any PutObject: signature, payload hash, `Content-MD5` and checksums are checked and
//! the object is streamed to the UFS. At most [`MAX_PART_SIZE`] bytes (5 GiB, a PutObject's limit):
//! a longer body is `400 EntityTooLarge`, nothing written.
//!
//! The spool runs before `s3s` has checked the signature (it cannot check one without the length), so
//! it is limited: only requests that name the worker's access key (header or presigned, SigV4 or
//! SigV2) are spooled — others go to `s3s` as they are and get its answer — and at most
//! [`MAX_SPOOLS`] at a time, each holding its file until its request ends; more wait their turn.
//!
//! UploadPart keeps `s3s`'s `411 MissingContentLength`, as AWS answers: parts are sized pieces of an
//! object, and a client that can split an object knows each part's length.

use crate::s3_api::multipart::MAX_PART_SIZE;
use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, TRANSFER_ENCODING};
use axum::http::{HeaderValue, Method};
use futures::StreamExt;
use s3s::{S3Error, S3ErrorCode, S3Result, s3_error};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use tokio::sync::Semaphore;

/// The directory under the worker's data directory that holds spooled bodies (unnamed files).
pub const SPOOL_DIR: &str = "s3-spool";
/// How many bodies may be spooled (and kept) at once.
pub const MAX_SPOOLS: usize = 4;

/// Spools chunked PutObject bodies of requests signed with `access_key`.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    access_key: String,
    permits: Arc<Semaphore>,
}

impl Spool {
    /// Spools under `data_dir`/[`SPOOL_DIR`] for requests that name `access_key`.
    pub fn new(data_dir: &Path, access_key: &str) -> Self {
        Self {
            dir: data_dir.join(SPOOL_DIR),
            access_key: access_key.to_string(),
            permits: Arc::new(Semaphore::new(MAX_SPOOLS)),
        }
    }

    /// Whether `req` is a chunked PutObject without a length, signed with this worker's key.
    pub fn applies(&self, req: &Request) -> bool {
        let h = req.headers();
        let chunked = h
            .get(TRANSFER_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("chunked")));
        let aws_chunked = h.contains_key("x-amz-decoded-content-length")
            || h.get("x-amz-content-sha256").is_some_and(|v| v.as_bytes().starts_with(b"STREAMING-"));
        let query = req.uri().query().unwrap_or("");
        let upload_part = query.split('&').any(|p| p == "uploadId" || p.starts_with("uploadId="));
        let has_key = req.uri().path().trim_start_matches('/').split_once('/').is_some_and(|(_, k)| !k.is_empty());
        req.method() == Method::PUT
            && chunked
            && !h.contains_key(CONTENT_LENGTH)
            && !aws_chunked
            && !upload_part
            && has_key
            && names_key(h.get(AUTHORIZATION).and_then(|v| v.to_str().ok()), query, &self.access_key)
    }

    /// `req` with its body in a spool file and its `Content-Length` set; `EntityTooLarge` past 5 GiB.
    pub async fn spool(&self, req: Request) -> S3Result<Request> {
        let internal = |e: std::io::Error| s3_error!(e, InternalError, "spooling the request body failed");
        let permit = self.permits.clone().acquire_owned().await.map_err(|e| s3_error!(e, InternalError))?;
        let (mut parts, body) = req.into_parts();
        loam_core::private_fs::create_dir_all(&self.dir).map_err(internal)?;
        // Unlinked as soon as it is open: the file lives as long as the open handle, never longer.
        let path = self.dir.join(uuid::Uuid::new_v4().simple().to_string());
        let file = loam_core::private_fs::open_options().read(true).write(true).create_new(true).open(&path);
        let file = file.and_then(|f| std::fs::remove_file(&path).map(|()| f)).map_err(internal)?;
        let mut file = tokio::fs::File::from_std(file);
        let mut len: u64 = 0;
        let mut data = body.into_data_stream();
        while let Some(chunk) = data.next().await {
            let chunk = chunk.map_err(|e| S3Error::with_message(S3ErrorCode::IncompleteBody, e.to_string()))?;
            len += chunk.len() as u64;
            if len > MAX_PART_SIZE {
                return Err(s3_error!(EntityTooLarge, "Your proposed upload exceeds the maximum allowed size"));
            }
            file.write_all(&chunk).await.map_err(internal)?;
        }
        file.flush().await.map_err(internal)?;
        file.rewind().await.map_err(internal)?;
        parts.headers.remove(TRANSFER_ENCODING);
        parts.headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
        // The permit goes with the body: the file (and its disk space) lives as long as the body does.
        let stream = tokio_util::io::ReaderStream::new(file).map(move |r| {
            let _held = &permit;
            r
        });
        Ok(Request::from_parts(parts, Body::from_stream(stream)))
    }
}

/// Whether the request's signature names `access_key`: SigV4 `Credential=<key>/…` or SigV2 `AWS <key>:…`
/// in `Authorization`, or a presigned URL's `X-Amz-Credential` / `AWSAccessKeyId`.
fn names_key(authorization: Option<&str>, query: &str, access_key: &str) -> bool {
    if let Some(a) = authorization {
        let v4 = a.split_once("Credential=").is_some_and(|(_, c)| c.split('/').next() == Some(access_key));
        let v2 = a.strip_prefix("AWS ").is_some_and(|c| c.split(':').next() == Some(access_key));
        return v4 || v2;
    }
    query.split('&').any(|p| {
        let (n, v) = p.split_once('=').unwrap_or((p, ""));
        let v = percent_encoding::percent_decode_str(v).decode_utf8_lossy();
        match n {
            "X-Amz-Credential" => v.split('/').next() == Some(access_key),
            "AWSAccessKeyId" => v == access_key,
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;

    fn put(uri: &str, headers: &[(&str, &str)]) -> Request {
        let mut b = Request::builder().method(Method::PUT).uri(uri);
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        b.body(Body::from("bar")).unwrap()
    }

    const V4: &str = "AWS4-HMAC-SHA256 Credential=KEY/20261206/us-east-1/s3/aws4_request, SignedHeaders=host, \
                      Signature=00";

    #[test]
    fn only_chunked_put_objects_without_a_length_signed_with_the_key_are_spooled() {
        let s = Spool::new(Path::new("/nonexistent"), "KEY");
        let te = ("transfer-encoding", "chunked");
        assert!(s.applies(&put("/b/k", &[te, ("authorization", V4)])));
        assert!(s.applies(&put("/b/k", &[te, ("authorization", "AWS KEY:sig")])));
        assert!(s.applies(&put("/b/k?X-Amz-Credential=KEY%2F20261206%2Fus-east-1%2Fs3%2Faws4_request", &[te])));
        assert!(!s.applies(&put("/b/k", &[te, ("authorization", "AWS OTHER:sig")])), "another key");
        assert!(!s.applies(&put("/b/k", &[te])), "unsigned");
        assert!(!s.applies(&put("/b/k", &[("authorization", V4)])), "not chunked");
        assert!(!s.applies(&put("/b/k", &[te, ("content-length", "3"), ("authorization", V4)])), "a length");
        assert!(!s.applies(&put("/b/k?partNumber=1&uploadId=u", &[te, ("authorization", V4)])), "UploadPart");
        assert!(!s.applies(&put("/b", &[te, ("authorization", V4)])), "no key");
        let streaming = ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD");
        assert!(!s.applies(&put("/b/k", &[te, streaming, ("authorization", V4)])), "aws-chunked");
    }

    #[tokio::test]
    async fn the_spooled_request_has_the_body_and_its_length() {
        let dir = tempfile::tempdir().unwrap();
        let s = Spool::new(dir.path(), "KEY");
        let req = s.spool(put("/b/k", &[("transfer-encoding", "chunked")])).await.unwrap();
        assert_eq!(req.headers()[CONTENT_LENGTH], "3");
        assert!(!req.headers().contains_key(TRANSFER_ENCODING));
        assert_eq!(to_bytes(req.into_body(), 16).await.unwrap(), "bar");
        let left: Vec<_> = std::fs::read_dir(dir.path().join(SPOOL_DIR)).unwrap().collect();
        assert!(left.is_empty(), "the spool file has no name: {left:?}");
    }
}
