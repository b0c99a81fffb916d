//! GetObjectAttributes (`GET /<bucket>/<key>?attributes`, `x-amz-object-attributes: ETag,Checksum,
//! ObjectParts,StorageClass,ObjectSize`), answered as S3 does:
//!
//! - only the attributes asked for, from one UFS stat (the stored metadata, `loam_ufs::ObjectMetadata`);
//!   an unknown attribute name (or none) is `400 InvalidArgument`, a missing object `404 NoSuchKey`;
//! - `ETag` without quotes (S3's answer here, unlike every other one); `StorageClass` is `STANDARD`;
//! - `Checksum`: the stored checksum and its type (`checksums`; absent where none is stored);
//! - `ObjectParts` of a multipart object: `PartsCount`, and, where the parts' checksums are stored, the
//!   parts (number, size, checksum) paged by `x-amz-max-parts` (default and at most 1000) and
//!   `x-amz-part-number-marker` with `IsTruncated` and `NextPartNumberMarker`. As on S3, parts are only
//!   listed for an object uploaded with checksums; a single-part object has no `ObjectParts`.
//!
//! It is served by [`AttributesRoute`] rather than through `s3s`'s operation because `s3s` (0.14)
//! always quotes the ETag it writes into XML. Who may call it: signed requests only (S3 wants
//! `s3:GetObjectAttributes`, which Loam's anonymous read does not grant); the headers are checked as a
//! GetObject's (`unsupported`).

use crate::http_api::WorkerState;
use crate::s3_api::LoamS3;
use crate::s3_api::auth::Policy;
use crate::s3_api::multipart::object_parts;
use crate::s3_api::multipart::store::UploadStore;
use crate::s3_api::objects::meta_of;
use crate::s3_api::verify::{ChecksumFields, ObjectChecksum};
use crate::s3_api::{checksums, range};
use axum::http::header::{CONTENT_TYPE, LAST_MODIFIED};
use axum::http::{Extensions, HeaderMap, HeaderValue, Method, Uri};
use s3s::dto::{Timestamp, TimestampFormat};
use s3s::route::S3Route;
use s3s::{Body, S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};
use std::fmt::Write as _;

/// The operation's name (for the access policy and the checks of `unsupported`).
pub const OPERATION: &str = "GetObjectAttributes";
/// The most parts one answer lists (S3's limit and default).
pub const MAX_PARTS: usize = 1000;

/// An attribute a client may ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attribute {
    /// `ETag`.
    ETag,
    /// `Checksum`.
    Checksum,
    /// `ObjectParts`.
    ObjectParts,
    /// `StorageClass`.
    StorageClass,
    /// `ObjectSize`.
    ObjectSize,
}

impl Attribute {
    fn parse(name: &str) -> Option<Attribute> {
        [Self::ETag, Self::Checksum, Self::ObjectParts, Self::StorageClass, Self::ObjectSize]
            .into_iter()
            .find(|a| format!("{a:?}") == name)
    }
}

/// What a GetObjectAttributes request asks.
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    /// The attributes, in any order.
    pub attributes: Vec<Attribute>,
    /// `x-amz-max-parts` (capped at [`MAX_PARTS`]).
    pub max_parts: usize,
    /// `x-amz-part-number-marker`: parts after this one.
    pub marker: i32,
}

fn invalid(msg: impl Into<String>) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidArgument, msg.into())
}

/// The request's headers, checked.
pub fn parse(headers: &HeaderMap) -> S3Result<Request> {
    let mut attributes = Vec::new();
    for v in headers.get_all("x-amz-object-attributes") {
        let v = v.to_str().map_err(|_| invalid("Invalid attribute name specified."))?;
        for name in v.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            attributes.push(Attribute::parse(name).ok_or_else(|| invalid("Invalid attribute name specified."))?);
        }
    }
    if attributes.is_empty() {
        return Err(invalid("Missing required header for this request: x-amz-object-attributes"));
    }
    let number = |name: &str| -> S3Result<Option<i64>> {
        let Some(v) = headers.get(name) else { return Ok(None) };
        let n = v.to_str().ok().and_then(|s| s.trim().parse::<i64>().ok()).filter(|n| *n >= 0);
        n.map(Some).ok_or_else(|| invalid(format!("Provided {name} not an integer or within integer range")))
    };
    let max_parts = number("x-amz-max-parts")?.map_or(MAX_PARTS, |n| usize::try_from(n).unwrap_or(MAX_PARTS));
    let marker = number("x-amz-part-number-marker")?.map_or(0, |n| i32::try_from(n).unwrap_or(i32::MAX));
    Ok(Request { attributes, max_parts: max_parts.min(MAX_PARTS), marker })
}

/// The answer of GetObjectAttributes for `bucket`/`key`: its XML document and the Last-Modified time.
pub async fn answer(
    state: &WorkerState,
    uploads: &UploadStore,
    bucket: &str,
    key: &str,
    req: &Request,
) -> S3Result<(String, Option<Timestamp>)> {
    let (t, st) = crate::s3_api::objects::stat_object(state, bucket, key).await?;
    let meta = meta_of(&st);
    let asked = |a| req.attributes.contains(&a);
    let mut xml = String::from(
        r#"<?xml version="1.0" encoding="UTF-8"?><GetObjectAttributesResponse xmlns="http://s3.amazonaws.com/doc/2006-03-01/">"#,
    );
    if asked(Attribute::ETag) {
        element(&mut xml, "ETag", &meta.etag);
    }
    if asked(Attribute::Checksum)
        && let Some(c) = checksums::of_object(&meta.stored)
    {
        xml.push_str("<Checksum>");
        checksum_elements(&mut xml, &c, true);
        xml.push_str("</Checksum>");
    }
    if asked(Attribute::ObjectParts)
        && let Some(sizes) = object_parts::sizes_of(uploads, &t.uri, &st).await
    {
        object_parts_element(&mut xml, &meta.stored, &sizes, req);
    }
    if asked(Attribute::StorageClass) {
        element(&mut xml, "StorageClass", "STANDARD");
    }
    if asked(Attribute::ObjectSize) {
        element(&mut xml, "ObjectSize", &st.length.to_string());
    }
    xml.push_str("</GetObjectAttributesResponse>");
    Ok((xml, meta.modified.map(Timestamp::from)))
}

/// `<ObjectParts>`: the count, and the page of parts after the marker where their checksums are stored.
fn object_parts_element(xml: &mut String, stored: &loam_ufs::ObjectMetadata, sizes: &[u64], req: &Request) {
    xml.push_str("<ObjectParts>");
    let listed: Vec<(usize, u64, ObjectChecksum)> = (1..=sizes.len())
        .filter_map(|n| Some((n, sizes[n - 1], checksums::of_part(stored, n)?)))
        .filter(|(n, ..)| i64::try_from(*n).unwrap_or(i64::MAX) > i64::from(req.marker))
        .collect();
    if checksums::of_part(stored, 1).is_some() {
        let page = &listed[..listed.len().min(req.max_parts)];
        let truncated = page.len() < listed.len();
        element(xml, "IsTruncated", if truncated { "true" } else { "false" });
        element(xml, "MaxParts", &req.max_parts.to_string());
        let next = page.last().map_or(i64::from(req.marker), |(n, ..)| i64::try_from(*n).unwrap_or(0));
        element(xml, "NextPartNumberMarker", &next.to_string());
        element(xml, "PartNumberMarker", &req.marker.to_string());
        for (n, size, c) in page {
            xml.push_str("<Part>");
            checksum_elements(xml, c, false);
            element(xml, "PartNumber", &n.to_string());
            element(xml, "Size", &size.to_string());
            xml.push_str("</Part>");
        }
    }
    element(xml, "PartsCount", &sizes.len().to_string());
    xml.push_str("</ObjectParts>");
}

/// `<ChecksumCRC32>`... and, `with_type` (an object's checksum, not a part's), `<ChecksumType>`.
fn checksum_elements(xml: &mut String, c: &ObjectChecksum, with_type: bool) {
    let ChecksumFields { crc32, crc32c, crc64nvme, sha1, sha256, kind } = c.fields();
    let named = [
        ("ChecksumCRC32", crc32),
        ("ChecksumCRC32C", crc32c),
        ("ChecksumCRC64NVME", crc64nvme),
        ("ChecksumSHA1", sha1),
        ("ChecksumSHA256", sha256),
    ];
    for (name, v) in named {
        if let Some(v) = v {
            element(xml, name, &v);
        }
    }
    if let Some(k) = kind.filter(|_| with_type) {
        element(xml, "ChecksumType", k.as_str());
    }
}

fn element(xml: &mut String, name: &str, text: &str) {
    let _ = write!(xml, "<{name}>");
    for ch in text.chars() {
        match ch {
            '&' => xml.push_str("&amp;"),
            '<' => xml.push_str("&lt;"),
            '>' => xml.push_str("&gt;"),
            '"' => xml.push_str("&quot;"),
            c => xml.push(c),
        }
    }
    let _ = write!(xml, "</{name}>");
}

/// Whether a request is a GetObjectAttributes (`GET` of an object with `?attributes`).
pub fn is_request(method: &Method, uri: &Uri) -> bool {
    method == Method::GET
        && range::bucket_and_key(uri).is_some()
        && uri.query().unwrap_or("").split('&').any(|p| p.split_once('=').map_or(p, |(n, _)| n) == "attributes")
}

/// Serves GetObjectAttributes (see the module header).
pub struct AttributesRoute {
    /// The operations' state.
    pub s3: LoamS3,
    /// Who may call it.
    pub policy: Policy,
}

#[async_trait::async_trait]
impl S3Route for AttributesRoute {
    fn is_match(&self, method: &Method, uri: &Uri, _: &HeaderMap, _: &mut Extensions) -> bool {
        is_request(method, uri)
    }

    async fn check_access(&self, req: &mut S3Request<Body>) -> S3Result<()> {
        self.policy.check(req.credentials.is_some(), OPERATION)?;
        crate::s3_api::unsupported::check(OPERATION, &req.headers, &req.uri)
    }

    async fn call(&self, req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        let (bucket, key) = range::bucket_and_key(&req.uri).ok_or_else(|| s3_error!(InvalidURI))?;
        let asked = parse(&req.headers)?;
        let (xml, modified) = answer(&self.s3.state, &self.s3.uploads, &bucket, &key, &asked).await?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/xml"));
        if let Some(t) = modified {
            let mut date = Vec::new();
            t.format(TimestampFormat::HttpDate, &mut date).map_err(|e| s3_error!(e, InternalError))?;
            if let Ok(v) = HeaderValue::from_bytes(&date) {
                headers.insert(LAST_MODIFIED, v);
            }
        }
        Ok(S3Response::with_headers(Body::from(xml), headers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (axum::http::HeaderName::from_static(k), HeaderValue::from_str(v).unwrap())).collect()
    }

    #[test]
    fn requests_are_parsed_as_s3_reads_them() {
        let r = parse(&headers(&[("x-amz-object-attributes", "ETag, ObjectParts"), ("x-amz-max-parts", "2")])).unwrap();
        assert_eq!(r, Request { attributes: vec![Attribute::ETag, Attribute::ObjectParts], max_parts: 2, marker: 0 });
        let r = parse(&headers(&[("x-amz-object-attributes", "ObjectSize"), ("x-amz-max-parts", "5000")])).unwrap();
        assert_eq!(r.max_parts, MAX_PARTS);
        for bad in [
            headers(&[]),
            headers(&[("x-amz-object-attributes", "Etag")]),
            headers(&[("x-amz-object-attributes", "ETag,Size")]),
            headers(&[("x-amz-object-attributes", "ETag"), ("x-amz-max-parts", "-1")]),
            headers(&[("x-amz-object-attributes", "ETag"), ("x-amz-part-number-marker", "x")]),
        ] {
            assert_eq!(parse(&bad).unwrap_err().code(), &S3ErrorCode::InvalidArgument, "{bad:?}");
        }
        let uri = |s: &str| s.parse::<Uri>().unwrap();
        assert!(is_request(&Method::GET, &uri("/b/k?attributes")));
        assert!(
            !is_request(&Method::GET, &uri("/b/k?attributes-x")) && !is_request(&Method::HEAD, &uri("/b/k?attributes"))
        );
        assert!(!is_request(&Method::GET, &uri("/b?attributes")));
    }

    #[test]
    fn part_pages_follow_the_marker() {
        let stored = loam_ufs::ObjectMetadata {
            checksum: Some(loam_ufs::object_meta::Checksum {
                algorithm: "CRC32".into(),
                value: "x-3".into(),
                kind: loam_ufs::object_meta::ChecksumType::Composite,
            }),
            parts: vec![5, 5, 1],
            part_checksums: vec!["a".into(), "b".into(), "c".into()],
            ..Default::default()
        };
        let req = Request { attributes: vec![Attribute::ObjectParts], max_parts: 1, marker: 1 };
        let mut xml = String::new();
        object_parts_element(&mut xml, &stored, &stored.parts, &req);
        assert_eq!(
            xml,
            "<ObjectParts><IsTruncated>true</IsTruncated><MaxParts>1</MaxParts><NextPartNumberMarker>2</NextPartNumberMarker>\
             <PartNumberMarker>1</PartNumberMarker><Part><ChecksumCRC32>b</ChecksumCRC32><PartNumber>2</PartNumber>\
             <Size>5</Size></Part><PartsCount>3</PartsCount></ObjectParts>"
        );
        let no_sums = loam_ufs::ObjectMetadata { part_checksums: Vec::new(), ..stored };
        let mut xml = String::new();
        object_parts_element(&mut xml, &no_sums, &no_sums.parts, &req);
        assert_eq!(xml, "<ObjectParts><PartsCount>3</PartsCount></ObjectParts>");
    }
}
