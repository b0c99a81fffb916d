//! Checked uploads: one pass over a request body that computes its MD5, its length and the checksum the
//! request names, and turns the body's end into an error when a digest does not match — so that the
//! write it feeds fails and the object never becomes visible (`Ufs::write_stream` keeps the old object
//! when its body fails: a temporary sibling renamed into place on `file://`, an aborted multipart upload
//! on S3; the part store removes its temporary file). Nothing is held in memory but the hashers.
//!
//! What is checked, and how S3 words a mismatch:
//!
//! - **The signed payload hash** (`x-amz-content-sha256: <hex>`) and **chunk signatures**
//!   (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`) are checked by `s3s` (0.14) inside the body it hands
//!   over: its stream fails at the end (hash) or before the bad chunk (signature). This wrapper only
//!   names those failures: `XAmzContentSHA256Mismatch` (400) and `SignatureDoesNotMatch` (403).
//!   `UNSIGNED-PAYLOAD` is accepted as is.
//! - **`Content-MD5`**: malformed (not base64 of 16 bytes) is `InvalidDigest`, before the body is read;
//!   a mismatch is `BadDigest`.
//! - **`x-amz-checksum-{crc32,crc32c,crc64nvme,sha1,sha256}`**, as a header or as a trailer of an
//!   aws-chunked body (`x-amz-trailer` names it; `s3s` parses and, when signed, verifies the trailer):
//!   more than one, a malformed value, or an `x-amz-sdk-checksum-algorithm` that names another (or no)
//!   checksum is `InvalidRequest`; a mismatch is `BadDigest`.
//!
//! What the pass computed is a [`Digests`] — the MD5 (the ETag of a single-part object), the length and
//! the checksum — which the caller stores with the object and echoes in its answer.

use bytes::Bytes;
use futures::stream::{BoxStream, Stream, StreamExt};
use s3s::crypto::{Checksum as _, Crc32, Crc32c, Crc64Nvme, Md5, Sha1, Sha256};
use s3s::dto::{ChecksumType, StreamingBlob};
use s3s::{S3Error, S3ErrorCode, S3Result, TrailingHeaders, s3_error};
use serde::{Deserialize, Serialize};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::http::HeaderMap;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// A checksum algorithm of S3's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Algorithm {
    /// CRC-32 (ISO-HDLC, zlib's).
    Crc32,
    /// CRC-32C (Castagnoli).
    Crc32c,
    /// CRC-64/NVME.
    Crc64nvme,
    /// SHA-1.
    Sha1,
    /// SHA-256.
    Sha256,
}

impl Algorithm {
    /// Every algorithm.
    pub const ALL: [Algorithm; 5] =
        [Algorithm::Crc32, Algorithm::Crc32c, Algorithm::Crc64nvme, Algorithm::Sha1, Algorithm::Sha256];

    /// S3's name (`x-amz-sdk-checksum-algorithm`, `ChecksumAlgorithm`).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Crc32 => "CRC32",
            Algorithm::Crc32c => "CRC32C",
            Algorithm::Crc64nvme => "CRC64NVME",
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
        }
    }

    /// The header that carries its value.
    pub fn header(self) -> &'static str {
        match self {
            Algorithm::Crc32 => "x-amz-checksum-crc32",
            Algorithm::Crc32c => "x-amz-checksum-crc32c",
            Algorithm::Crc64nvme => "x-amz-checksum-crc64nvme",
            Algorithm::Sha1 => "x-amz-checksum-sha1",
            Algorithm::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// The algorithm S3 names `name` (any case).
    pub fn parse(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.name().eq_ignore_ascii_case(name))
    }

    /// Length of its digest in bytes.
    fn len(self) -> usize {
        match self {
            Algorithm::Crc32 | Algorithm::Crc32c => 4,
            Algorithm::Crc64nvme => 8,
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
        }
    }

    /// Its digest of `data` (the composite checksum of a multipart upload hashes the parts' digests).
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        let mut h = Hasher::new(self);
        h.update(data);
        h.finish()
    }
}

/// Whether a checksum covers the object's bytes, or is made of its parts' checksums (`<base64>-<n>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Kind {
    /// Of all the bytes.
    FullObject,
    /// Of the parts' checksums.
    Composite,
}

/// An object's (or a part's) checksum, as stored and answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectChecksum {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// Base64 of the digest (`-<parts>` appended for a composite one).
    pub value: String,
    /// Full-object or composite.
    pub kind: Kind,
}

/// The `x-amz-checksum-*` fields of an S3 answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChecksumFields {
    /// `x-amz-checksum-crc32`.
    pub crc32: Option<String>,
    /// `x-amz-checksum-crc32c`.
    pub crc32c: Option<String>,
    /// `x-amz-checksum-crc64nvme`.
    pub crc64nvme: Option<String>,
    /// `x-amz-checksum-sha1`.
    pub sha1: Option<String>,
    /// `x-amz-checksum-sha256`.
    pub sha256: Option<String>,
    /// `x-amz-checksum-type`.
    pub kind: Option<ChecksumType>,
}

impl ObjectChecksum {
    /// The answer's fields for this checksum.
    pub fn fields(&self) -> ChecksumFields {
        let mut f = ChecksumFields {
            kind: Some(ChecksumType::from_static(match self.kind {
                Kind::FullObject => ChecksumType::FULL_OBJECT,
                Kind::Composite => ChecksumType::COMPOSITE,
            })),
            ..Default::default()
        };
        let v = Some(self.value.clone());
        match self.algorithm {
            Algorithm::Crc32 => f.crc32 = v,
            Algorithm::Crc32c => f.crc32c = v,
            Algorithm::Crc64nvme => f.crc64nvme = v,
            Algorithm::Sha1 => f.sha1 = v,
            Algorithm::Sha256 => f.sha256 = v,
        }
        f
    }
}

impl ObjectChecksum {
    /// As the object's metadata record (`loam_ufs::ObjectMetadata::checksum`) keeps it.
    pub fn to_ufs(&self) -> loam_ufs::object_meta::Checksum {
        loam_ufs::object_meta::Checksum {
            algorithm: self.algorithm.name().to_string(),
            value: self.value.clone(),
            kind: match self.kind {
                Kind::FullObject => loam_ufs::object_meta::ChecksumType::FullObject,
                Kind::Composite => loam_ufs::object_meta::ChecksumType::Composite,
            },
        }
    }
}

/// The fields of `c`, or none.
pub fn fields(c: Option<&ObjectChecksum>) -> ChecksumFields {
    c.map(ObjectChecksum::fields).unwrap_or_default()
}

/// What one pass over a body computed: handed to the object's (or part's) record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Digests {
    /// MD5 of the bytes.
    pub md5: [u8; 16],
    /// Length in bytes.
    pub size: u64,
    /// The checksum the request named (or the upload asked for), of all the bytes.
    pub checksum: Option<ObjectChecksum>,
}

impl Digests {
    /// The MD5 as lowercase hex: S3's ETag of a single-part object.
    pub fn md5_hex(&self) -> String {
        hex::encode(self.md5)
    }
}

/// Where the expected value of the checksum comes from.
#[derive(Clone, Debug)]
enum Source {
    /// Compute it, check nothing (a part of an upload that asked for this algorithm, or a whole object).
    Compute,
    /// The request's header (the digest's bytes).
    Header(Vec<u8>),
    /// The aws-chunked body's trailer, read once the body has ended.
    Trailer(TrailingHeaders),
}

/// What a request asks to be checked, read from its headers before its body.
#[derive(Clone, Debug, Default)]
pub struct Expected {
    md5: Option<[u8; 16]>,
    checksum: Option<(Algorithm, Source)>,
}

impl Expected {
    /// What the headers of a PutObject or UploadPart ask for; `trailers` is `s3s`'s handle on an
    /// aws-chunked body's trailer. Malformed or contradictory headers are refused here, before any byte.
    pub fn from_request(h: &HeaderMap, trailers: Option<TrailingHeaders>) -> S3Result<Expected> {
        let text = |name: &str| h.get(name).map(|v| v.to_str().unwrap_or("\u{FFFD}").trim().to_string());
        let md5 = match text("content-md5") {
            None => None,
            Some(v) => Some(
                BASE64
                    .decode(&v)
                    .ok()
                    .and_then(|d| <[u8; 16]>::try_from(d).ok())
                    .ok_or_else(|| s3_error!(InvalidDigest, "The Content-MD5 you specified was invalid."))?,
            ),
        };
        let mut named: Vec<(Algorithm, Source)> = Vec::new();
        for a in Algorithm::ALL {
            if let Some(v) = text(a.header()) {
                let digest = BASE64
                    .decode(&v)
                    .ok()
                    .filter(|d| d.len() == a.len())
                    .ok_or_else(|| s3_error!(InvalidRequest, "Value for {} header is invalid.", a.header()))?;
                named.push((a, Source::Header(digest)));
            }
        }
        if let Some(t) = text("x-amz-trailer") {
            for name in t.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                let Some(a) = Algorithm::ALL.into_iter().find(|a| a.header().eq_ignore_ascii_case(name)) else {
                    return Err(s3_error!(InvalidRequest, "The trailer {name:?} is not supported."));
                };
                let Some(handle) = trailers.clone() else {
                    return Err(s3_error!(
                        InvalidRequest,
                        "x-amz-trailer names {name}, but the body is not aws-chunked (send x-amz-content-sha256 \
                         STREAMING-UNSIGNED-PAYLOAD-TRAILER or STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER)"
                    ));
                };
                named.push((a, Source::Trailer(handle)));
            }
        }
        if named.len() > 1 {
            return Err(s3_error!(
                InvalidRequest,
                "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."
            ));
        }
        let checksum = named.pop();
        if let Some(sdk) = text("x-amz-sdk-checksum-algorithm") {
            let Some(a) = Algorithm::parse(&sdk) else {
                return Err(s3_error!(InvalidRequest, "Value for x-amz-sdk-checksum-algorithm header is invalid."));
            };
            match &checksum {
                None => {
                    return Err(s3_error!(
                        InvalidRequest,
                        "x-amz-sdk-checksum-algorithm specified, but no corresponding x-amz-checksum-* or \
                         x-amz-trailer headers were found."
                    ));
                }
                Some((named, _)) if *named != a => {
                    return Err(s3_error!(
                        InvalidRequest,
                        "Value for x-amz-sdk-checksum-algorithm header is invalid: it is {}, the checksum sent is {}",
                        a.name(),
                        named.name()
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(Expected { md5, checksum })
    }

    /// The checksum the request declares in a header (known before the body), if any.
    pub fn declared(&self) -> Option<ObjectChecksum> {
        match &self.checksum {
            Some((a, Source::Header(d))) => {
                Some(ObjectChecksum { algorithm: *a, value: BASE64.encode(d), kind: Kind::FullObject })
            }
            _ => None,
        }
    }

    /// The algorithm whose checksum the request carries, if any.
    pub fn algorithm(&self) -> Option<Algorithm> {
        self.checksum.as_ref().map(|(a, _)| *a)
    }

    /// Also compute `algorithm` when the request names no checksum (a part of an upload that asked for
    /// it); a request that names another is refused, as S3 does.
    pub fn require(mut self, algorithm: Algorithm) -> S3Result<Expected> {
        match self.algorithm() {
            None => self.checksum = Some((algorithm, Source::Compute)),
            Some(a) if a == algorithm => {}
            Some(a) => {
                return Err(s3_error!(
                    InvalidRequest,
                    "Checksum Type mismatch occurred, expected checksum Type: {}, actual checksum Type: {}",
                    algorithm.name().to_ascii_lowercase(),
                    a.name().to_ascii_lowercase()
                ));
            }
        }
        Ok(self)
    }

    /// Checks the whole body against `value` (base64) of `algorithm`.
    pub fn full_object(algorithm: Algorithm, value: &str) -> S3Result<Expected> {
        let digest = BASE64
            .decode(value)
            .ok()
            .filter(|d| d.len() == algorithm.len())
            .ok_or_else(|| s3_error!(InvalidRequest, "Value for {} header is invalid.", algorithm.header()))?;
        Ok(Expected { md5: None, checksum: Some((algorithm, Source::Header(digest))) })
    }
}

/// Why a checked body failed. Each is the client's fault, and answered as S3 answers it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The body's MD5 is not `Content-MD5`.
    #[error("The Content-MD5 you specified did not match what we received.")]
    Md5,
    /// The body's checksum is not the one sent.
    #[error("The {} you specified did not match the calculated checksum.", .0.name())]
    Checksum(Algorithm),
    /// The aws-chunked body ended without the trailer `x-amz-trailer` announced.
    #[error("The trailer {} announced in x-amz-trailer is missing or malformed.", .0.header())]
    Trailer(Algorithm),
    /// The body's SHA-256 is not the signed `x-amz-content-sha256`.
    #[error("The provided 'x-amz-content-sha256' header does not match what was computed.")]
    PayloadSha256,
    /// A chunk of an aws-chunked body is not signed as its seed signature requires.
    #[error(
        "The request signature we calculated does not match the signature you provided (a chunk of the \
         aws-chunked body)."
    )]
    ChunkSignature,
    /// The aws-chunked encoding is broken.
    #[error("The aws-chunked body is malformed: {0}")]
    Malformed(String),
    /// The body ended early, or reading it failed.
    #[error("The request body ended before its declared length, or could not be read: {0}")]
    Incomplete(String),
}

impl VerifyError {
    /// The S3 error.
    pub fn to_s3(&self) -> S3Error {
        let code = match self {
            VerifyError::Md5 | VerifyError::Checksum(_) => S3ErrorCode::BadDigest,
            VerifyError::Trailer(_) | VerifyError::Malformed(_) => S3ErrorCode::InvalidRequest,
            VerifyError::PayloadSha256 => {
                let mut e =
                    S3Error::with_message(S3ErrorCode::Custom("XAmzContentSHA256Mismatch".into()), self.to_string());
                e.set_status_code(axum::http::StatusCode::BAD_REQUEST);
                return e;
            }
            VerifyError::ChunkSignature => S3ErrorCode::SignatureDoesNotMatch,
            VerifyError::Incomplete(_) => S3ErrorCode::IncompleteBody,
        };
        tracing::debug!("S3 upload refused: {self}");
        S3Error::with_message(code, self.to_string())
    }

    /// What a failure of `s3s`'s body stream means. `s3s` keeps its stream errors private, so they are
    /// told apart by their text (pinned to `s3s` 0.14.1; the upload tests send each kind).
    fn of_body(e: &dyn std::fmt::Display) -> VerifyError {
        let text = e.to_string();
        if text.contains("Sha256Mismatch") {
            VerifyError::PayloadSha256
        } else if text.contains("SignatureMismatch") {
            VerifyError::ChunkSignature
        } else if ["FormatError", "TooLarge", "TooManyTrailerHeaders"].iter().any(|m| text.contains(m)) {
            VerifyError::Malformed(text)
        } else {
            VerifyError::Incomplete(text)
        }
    }
}

/// The outcome of a checked body, filled in when the body ends (or fails).
#[derive(Clone, Debug, Default)]
pub struct Outcome(Arc<Mutex<Option<Result<Digests, VerifyError>>>>);

impl Outcome {
    fn set(&self, r: Result<Digests, VerifyError>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
    }

    fn get(&self) -> Option<Result<Digests, VerifyError>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// What the body held, once it ended and every check passed.
    pub fn digests(&self) -> Option<Digests> {
        self.get().and_then(Result::ok)
    }

    /// Why the body failed, if it did.
    pub fn failure(&self) -> Option<VerifyError> {
        self.get().and_then(Result::err)
    }

    /// The S3 error of a write that failed with `e`: the body's failure when it failed (the write's
    /// error then only says that its body broke), else `e`'s.
    pub fn error_or(&self, e: impl Into<S3Error>) -> S3Error {
        match self.failure() {
            Some(v) => v.to_s3(),
            None => e.into(),
        }
    }
}

/// The amendment (`loam_ufs::object_meta::Amend`) that stores what the pass computed once the body has
/// ended: the MD5 as the `etag`, and the checksum. The UFS calls it only after the body ended well.
pub fn amendment(outcome: &Outcome) -> loam_ufs::object_meta::Amend {
    let outcome = outcome.clone();
    Arc::new(move |m: &mut loam_ufs::ObjectMetadata| {
        if let Some(d) = outcome.digests() {
            m.etag = Some(d.md5_hex());
            if let Some(c) = &d.checksum {
                m.checksum = Some(c.to_ufs());
            }
        }
    })
}

/// The amendment that stores only the checksum the pass computed (a multipart object's ETag is not its
/// MD5).
pub fn checksum_amendment(outcome: &Outcome) -> loam_ufs::object_meta::Amend {
    let outcome = outcome.clone();
    Arc::new(move |m: &mut loam_ufs::ObjectMetadata| {
        if let Some(c) = outcome.digests().and_then(|d| d.checksum) {
            m.checksum = Some(c.to_ufs());
        }
    })
}

/// A body under check, and where its outcome appears.
pub struct Checked {
    /// The bytes, passed on as they come; the last item is an error when a check failed.
    pub body: BoxStream<'static, std::io::Result<Bytes>>,
    /// Filled in at the body's end.
    pub outcome: Outcome,
}

/// Checks an S3 request's body (none: an empty one) against `expected`.
pub fn check_blob(body: Option<StreamingBlob>, expected: Expected) -> Checked {
    match body {
        Some(blob) => check(blob, expected),
        None => check(futures::stream::empty::<Result<Bytes, std::io::Error>>(), expected),
    }
}

/// Checks `body` against `expected`.
pub fn check<S, E>(body: S, expected: Expected) -> Checked
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
    E: std::fmt::Display + Send + 'static,
{
    let outcome = Outcome::default();
    let hasher = expected.checksum.as_ref().map(|(a, _)| Hasher::new(*a));
    let stream =
        Verifying { inner: body, md5: Md5::new(), size: 0, hasher, expected, outcome: outcome.clone(), done: false };
    Checked { body: stream.boxed(), outcome }
}

struct Verifying<S> {
    inner: S,
    md5: Md5,
    size: u64,
    hasher: Option<Hasher>,
    expected: Expected,
    outcome: Outcome,
    done: bool,
}

impl<S> Verifying<S> {
    fn fail(&mut self, e: VerifyError) -> Poll<Option<std::io::Result<Bytes>>> {
        self.done = true;
        self.outcome.set(Err(e.clone()));
        Poll::Ready(Some(Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e))))
    }

    /// The checks at the body's end.
    fn finish(&mut self) -> Result<Digests, VerifyError> {
        let md5 = std::mem::take(&mut self.md5).finalize();
        if self.expected.md5.is_some_and(|want| want != md5) {
            return Err(VerifyError::Md5);
        }
        let checksum = match (self.hasher.take(), &self.expected.checksum) {
            (Some(h), Some((a, source))) => {
                let got = h.finish();
                let want = match source {
                    Source::Compute => None,
                    Source::Header(d) => Some(d.clone()),
                    Source::Trailer(t) => Some(
                        t.read(|m| {
                            m.get(a.header()).and_then(|v| v.to_str().ok()).and_then(|v| BASE64.decode(v.trim()).ok())
                        })
                        .flatten()
                        .ok_or(VerifyError::Trailer(*a))?,
                    ),
                };
                if want.is_some_and(|w| w != got) {
                    return Err(VerifyError::Checksum(*a));
                }
                Some(ObjectChecksum { algorithm: *a, value: BASE64.encode(&got), kind: Kind::FullObject })
            }
            _ => None,
        };
        Ok(Digests { md5, size: self.size, checksum })
    }
}

impl<S, E> Stream for Verifying<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.inner.poll_next_unpin(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                self.md5.update(&chunk);
                if let Some(h) = self.hasher.as_mut() {
                    h.update(&chunk);
                }
                self.size += chunk.len() as u64;
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                let v = VerifyError::of_body(&e);
                self.fail(v)
            }
            Poll::Ready(None) => match self.finish() {
                Ok(d) => {
                    self.done = true;
                    self.outcome.set(Ok(d));
                    Poll::Ready(None)
                }
                Err(v) => self.fail(v),
            },
        }
    }
}

/// One of the checksum algorithms, running.
enum Hasher {
    Crc32(Crc32),
    Crc32c(Crc32c),
    Crc64nvme(Crc64Nvme),
    Sha1(Sha1),
    Sha256(Sha256),
}

impl Hasher {
    fn new(a: Algorithm) -> Hasher {
        match a {
            Algorithm::Crc32 => Hasher::Crc32(Crc32::new()),
            Algorithm::Crc32c => Hasher::Crc32c(Crc32c::new()),
            Algorithm::Crc64nvme => Hasher::Crc64nvme(Crc64Nvme::new()),
            Algorithm::Sha1 => Hasher::Sha1(Sha1::new()),
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Crc32(h) => h.update(data),
            Hasher::Crc32c(h) => h.update(data),
            Hasher::Crc64nvme(h) => h.update(data),
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
        }
    }

    fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Crc32(h) => h.finalize().to_vec(),
            Hasher::Crc32c(h) => h.finalize().to_vec(),
            Hasher::Crc64nvme(h) => h.finalize().to_vec(),
            Hasher::Sha1(h) => h.finalize().as_ref().to_vec(),
            Hasher::Sha256(h) => h.finalize().as_ref().to_vec(),
        }
    }
}

#[cfg(test)]
mod tests;
