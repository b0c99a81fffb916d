//! Object metadata through the S3 API: what a PutObject, CopyObject (`REPLACE`) or
//! CreateMultipartUpload asks to store ([`requested`]), the MD5 of a body taken while it streams
//! ([`md5_of`]: the S3 ETag of a single PUT, stored where the UFS can keep it after the body), and the
//! headers GET and HEAD answer ([`Headers`]), with GetObject's `response-*` overrides.
//!
//! Content-Type defaults to [`CONTENT_TYPE`] when none is stored (an object written outside Loam, or
//! without one). User-metadata keys are lower case (HTTP header names); values are Unicode (`s3s` decodes
//! and encodes RFC 2047 words, as S3 does). Keys starting with `loam-meta` are Loam's
//! ([`loam_ufs::object_meta::RESERVED_KEY`]): a request that sets one is `400 InvalidArgument`, and S3's
//! 2 KB limit on user metadata is `400 MetadataTooLarge`.

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use loam_ufs::ObjectMetadata;
use loam_ufs::object_meta::{Amend, RESERVED_KEY};
use md5::{Digest, Md5};
use parking_lot::Mutex;
use s3s::dto::{Metadata, Timestamp, TimestampFormat};
use s3s::{S3Result, s3_error};
use std::sync::Arc;

/// The Content-Type of an object that has none stored (S3's, and what S3 UFSes answer for one).
pub const CONTENT_TYPE: &str = "binary/octet-stream";
/// S3's limit on user metadata: keys and values, in UTF-8 bytes.
pub const MAX_USER_METADATA: usize = 2048;

/// The [`Headers`] of a write request's input: PutObject, CopyObject and CreateMultipartUpload
/// (three `s3s` types) name these fields alike.
macro_rules! requested_of {
    ($input:expr) => {
        $crate::s3_api::metadata::Headers {
            content_type: $input.content_type,
            cache_control: $input.cache_control,
            content_disposition: $input.content_disposition,
            content_encoding: $input.content_encoding,
            content_language: $input.content_language,
            expires: $input.expires,
            user: $input.metadata,
        }
    };
}
pub(crate) use requested_of;

/// The metadata to store for a write request's headers.
pub fn requested(r: Headers) -> S3Result<ObjectMetadata> {
    let user: std::collections::BTreeMap<String, String> =
        r.user.unwrap_or_default().into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
    let meta = ObjectMetadata {
        content_type: r.content_type,
        cache_control: r.cache_control,
        content_disposition: r.content_disposition,
        content_encoding: r.content_encoding.and_then(without_aws_chunked),
        content_language: r.content_language,
        expires: r.expires.as_ref().map(http_date).transpose()?,
        user,
        ..Default::default()
    };
    if let Some(k) = meta.reserved_key() {
        return Err(s3_error!(
            InvalidArgument,
            "x-amz-meta-{k}: user-metadata keys starting with '{RESERVED_KEY}' are reserved by Loam, which keeps \
             the object's other headers there; choose another name"
        ));
    }
    let size: usize = meta.user.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > MAX_USER_METADATA {
        return Err(s3_error!(
            MetadataTooLarge,
            "Your metadata headers exceed the maximum allowed metadata size: {size} bytes of user metadata, at \
             most {MAX_USER_METADATA}"
        ));
    }
    Ok(meta)
}

fn http_date(t: &Timestamp) -> S3Result<String> {
    let mut out = Vec::new();
    t.format(TimestampFormat::HttpDate, &mut out).map_err(|e| s3_error!(e, InvalidArgument, "invalid Expires"))?;
    String::from_utf8(out).map_err(|e| s3_error!(e, InternalError))
}

/// `body`, passed on unchanged, and an amendment that stores its MD5 (hex) as the `etag` once it has ended.
pub fn md5_of(
    body: BoxStream<'static, Result<Bytes, std::io::Error>>,
) -> (BoxStream<'static, Result<Bytes, std::io::Error>>, Amend) {
    let digest = Arc::new(Mutex::new(Some(Md5::new())));
    let feed = digest.clone();
    let body = body
        .map(move |chunk| {
            if let (Ok(b), Some(d)) = (&chunk, feed.lock().as_mut()) {
                d.update(b);
            }
            chunk
        })
        .boxed();
    let amend: Amend = Arc::new(move |m: &mut ObjectMetadata| {
        if let Some(d) = digest.lock().take() {
            m.etag = Some(hex::encode(d.finalize()));
        }
    });
    (body, amend)
}

/// The S3 ETag of a multipart object: the MD5 of its parts' MD5s (given as hex), then `-<parts>`.
pub fn multipart_etag<'a>(part_md5s: impl Iterator<Item = &'a str>) -> String {
    let mut d = Md5::new();
    let mut n = 0;
    for hex_md5 in part_md5s {
        d.update(hex::decode(hex_md5).unwrap_or_default());
        n += 1;
    }
    format!("{}-{n}", hex::encode(d.finalize()))
}

/// A Content-Encoding without `aws-chunked`, which says how this request's body was sent (SigV4 chunks),
/// not what the object is: S3 stores the rest (`gzip, aws-chunked` is stored `gzip`; alone, nothing).
fn without_aws_chunked(encoding: String) -> Option<String> {
    let kept: Vec<&str> = encoding
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty() && !e.eq_ignore_ascii_case("aws-chunked"))
        .collect();
    (!kept.is_empty()).then(|| kept.join(", "))
}

/// The [`Overrides`] of a HeadObject's or GetObject's input (two `s3s` types, alike in these fields).
macro_rules! overrides_of {
    ($input:expr) => {
        $crate::s3_api::metadata::Overrides {
            content_type: $input.response_content_type,
            cache_control: $input.response_cache_control,
            content_disposition: $input.response_content_disposition,
            content_encoding: $input.response_content_encoding,
            content_language: $input.response_content_language,
            expires: $input.response_expires,
        }
    };
}
pub(crate) use overrides_of;

/// GetObject's `response-*` query parameters: they replace the stored headers in the answer.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `response-content-type`.
    pub content_type: Option<String>,
    /// `response-cache-control`.
    pub cache_control: Option<String>,
    /// `response-content-disposition`.
    pub content_disposition: Option<String>,
    /// `response-content-encoding`.
    pub content_encoding: Option<String>,
    /// `response-content-language`.
    pub content_language: Option<String>,
    /// `response-expires`.
    pub expires: Option<Timestamp>,
}

/// The metadata headers of an object: as a write request names them (checked by [`requested`]), and as a
/// GET or HEAD answers them.
#[derive(Debug, Default)]
pub struct Headers {
    /// `Content-Type` (always set).
    pub content_type: Option<String>,
    /// `Cache-Control`.
    pub cache_control: Option<String>,
    /// `Content-Disposition`.
    pub content_disposition: Option<String>,
    /// `Content-Encoding`.
    pub content_encoding: Option<String>,
    /// `Content-Language`.
    pub content_language: Option<String>,
    /// `Expires`.
    pub expires: Option<Timestamp>,
    /// `x-amz-meta-*`.
    pub user: Option<Metadata>,
}

/// A HeadObject or GetObject answer (two `s3s` types, alike in these fields): the answer headers `h`
/// ([`Headers`]), the ETag and Last-Modified of `meta` (`reading::ObjectMeta`), byte ranges accepted, and
/// the fields in braces.
macro_rules! object_answer {
    ($ty:ident, $h:expr, $meta:expr, { $($field:ident : $value:expr),* $(,)? }) => {{
        let h: $crate::s3_api::metadata::Headers = $h;
        s3s::dto::$ty {
            accept_ranges: Some("bytes".into()),
            content_type: h.content_type,
            cache_control: h.cache_control,
            content_disposition: h.content_disposition,
            content_encoding: h.content_encoding,
            content_language: h.content_language,
            expires: h.expires,
            metadata: h.user,
            e_tag: Some(s3s::dto::ETag::Strong($meta.etag)),
            last_modified: $meta.modified.map(s3s::dto::Timestamp::from),
            $($field: $value,)*
            ..Default::default()
        }
    }};
}
pub(crate) use object_answer;

impl Headers {
    /// The headers of `meta`, with `overrides` applied.
    pub fn of(meta: &ObjectMetadata, overrides: Overrides) -> Self {
        let stored_expires = meta.expires.as_deref().and_then(|s| Timestamp::parse(TimestampFormat::HttpDate, s).ok());
        Self {
            content_type: overrides.content_type.or(meta.content_type.clone()).or(Some(CONTENT_TYPE.into())),
            cache_control: overrides.cache_control.or(meta.cache_control.clone()),
            content_disposition: overrides.content_disposition.or(meta.content_disposition.clone()),
            content_encoding: overrides.content_encoding.or(meta.content_encoding.clone()),
            content_language: overrides.content_language.or(meta.content_language.clone()),
            expires: overrides.expires.or(stored_expires),
            user: (!meta.user.is_empty()).then(|| meta.user.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_chunked_is_how_a_body_was_sent_not_its_encoding() {
        assert_eq!(without_aws_chunked("gzip, aws-chunked".into()).as_deref(), Some("gzip"));
        assert_eq!(without_aws_chunked("aws-chunked".into()), None);
        assert_eq!(without_aws_chunked("aws-chunked,br , gzip".into()).as_deref(), Some("br, gzip"));
        assert_eq!(without_aws_chunked("identity".into()).as_deref(), Some("identity"));
    }
    use futures::TryStreamExt;

    fn plain() -> Headers {
        Headers {
            content_type: None,
            cache_control: None,
            content_disposition: None,
            content_encoding: None,
            content_language: None,
            expires: None,
            user: None,
        }
    }

    #[tokio::test]
    async fn the_md5_is_of_every_chunk_and_set_after_the_body() {
        let chunks = vec![Ok(Bytes::from_static(b"hello ")), Ok(Bytes::from_static(b"world"))];
        let (body, amend) = md5_of(futures::stream::iter(chunks).boxed());
        let got: Vec<Bytes> = body.try_collect().await.unwrap();
        assert_eq!(got.concat(), b"hello world");
        let mut m = ObjectMetadata::default();
        amend(&mut m);
        assert_eq!(m.etag.as_deref(), Some("5eb63bbbe01eeed093cb22bb8f5acdc3"));
    }

    #[test]
    fn multipart_etags_are_the_md5_of_the_part_md5s() {
        // Two parts "a" and "b": md5(md5("a") ++ md5("b")), as S3 computes it.
        let parts = [hex::encode(Md5::digest(b"a")), hex::encode(Md5::digest(b"b"))];
        let mut joined = Md5::digest(b"a").to_vec();
        joined.extend_from_slice(&Md5::digest(b"b"));
        let expected = format!("{}-2", hex::encode(Md5::digest(&joined)));
        assert_eq!(multipart_etag(parts.iter().map(String::as_str)), expected);
    }

    #[test]
    fn reserved_and_oversized_user_metadata_are_refused() {
        let with = |k: &str, v: String| Headers { user: Some([(k.to_string(), v)].into_iter().collect()), ..plain() };
        assert!(requested(with("ok", "v".into())).is_ok());
        let e = requested(with("loam-meta", "x".into())).err().unwrap();
        assert_eq!(e.code().as_str(), "InvalidArgument");
        let e = requested(with("big", "x".repeat(MAX_USER_METADATA))).err().unwrap();
        assert_eq!(e.code().as_str(), "MetadataTooLarge");
    }

    #[test]
    fn overrides_win_and_content_type_has_a_default() {
        let meta = ObjectMetadata { cache_control: Some("no-cache".into()), ..Default::default() };
        let h = Headers::of(&meta, Overrides::default());
        assert_eq!(h.content_type.as_deref(), Some(CONTENT_TYPE));
        assert_eq!(h.cache_control.as_deref(), Some("no-cache"));
        let o = Overrides {
            cache_control: Some("max-age=1".into()),
            content_type: Some("a/b".into()),
            ..Default::default()
        };
        let h = Headers::of(&meta, o);
        assert_eq!((h.cache_control.as_deref(), h.content_type.as_deref()), (Some("max-age=1"), Some("a/b")));
    }
}
