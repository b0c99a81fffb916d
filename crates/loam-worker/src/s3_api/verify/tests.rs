use super::*;
use futures::TryStreamExt;

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (n, v) in pairs {
        h.insert(axum::http::HeaderName::from_bytes(n.as_bytes()).unwrap(), v.parse().unwrap());
    }
    h
}

fn b64(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

/// Runs `body` (in two chunks) through the check; the bytes passed on, or the failure.
async fn run(body: &'static [u8], expected: Expected) -> (Result<Vec<u8>, VerifyError>, Outcome) {
    let (a, b) = body.split_at(body.len() / 2);
    let chunks = vec![Ok::<_, std::io::Error>(Bytes::from_static(a)), Ok(Bytes::from_static(b))];
    let checked = check(futures::stream::iter(chunks), expected);
    let out: std::io::Result<Vec<Bytes>> = checked.body.try_collect().await;
    let r = match out {
        Ok(v) => Ok(v.concat()),
        Err(_) => Err(checked.outcome.failure().expect("a failed body records why")),
    };
    (r, checked.outcome)
}

/// The check values of "123456789" (the catalogue's) and the digests of it.
const CHECK: &[u8] = b"123456789";
fn check_value(a: Algorithm) -> Vec<u8> {
    match a {
        Algorithm::Crc32 => 0xCBF4_3926u32.to_be_bytes().to_vec(),
        Algorithm::Crc32c => 0xE306_9283u32.to_be_bytes().to_vec(),
        Algorithm::Crc64nvme => 0xAE8B_1486_0A79_9888u64.to_be_bytes().to_vec(),
        Algorithm::Sha1 => hex::decode("f7c3bc1d808e04732adf679965ccc34ca7ae3441").unwrap(),
        Algorithm::Sha256 => hex::decode("15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225").unwrap(),
    }
}

#[tokio::test]
async fn each_algorithm_passes_its_value_and_fails_another() {
    for a in Algorithm::ALL {
        let good = headers(&[(a.header(), &b64(&check_value(a))), ("x-amz-sdk-checksum-algorithm", a.name())]);
        let (r, outcome) = run(CHECK, Expected::from_request(&good, None).unwrap()).await;
        assert_eq!(r.unwrap(), CHECK, "{a:?}");
        let d = outcome.digests().unwrap();
        assert_eq!((d.size, d.md5_hex()), (9, "25f9e794323b453885f5181f1b624d0b".to_string()));
        let c = d.checksum.unwrap();
        assert_eq!((c.algorithm, c.value, c.kind), (a, b64(&check_value(a)), Kind::FullObject));
        let mut wrong = check_value(a);
        wrong[0] ^= 1;
        let bad = headers(&[(a.header(), &b64(&wrong))]);
        let (r, outcome) = run(CHECK, Expected::from_request(&bad, None).unwrap()).await;
        assert_eq!(r.unwrap_err(), VerifyError::Checksum(a));
        assert!(outcome.digests().is_none());
        assert_eq!(VerifyError::Checksum(a).to_s3().code(), &S3ErrorCode::BadDigest);
    }
}

#[tokio::test]
async fn content_md5_is_checked_and_must_be_well_formed() {
    let md5 = BASE64.encode(Md5::checksum(CHECK));
    let (r, _) = run(CHECK, Expected::from_request(&headers(&[("content-md5", &md5)]), None).unwrap()).await;
    assert!(r.is_ok());
    let other = BASE64.encode(Md5::checksum(b"other"));
    let (r, _) = run(CHECK, Expected::from_request(&headers(&[("content-md5", &other)]), None).unwrap()).await;
    assert_eq!(r.unwrap_err(), VerifyError::Md5);
    for bad in ["not base64!", "AAAA", ""] {
        let e = Expected::from_request(&headers(&[("content-md5", bad)]), None).unwrap_err();
        assert_eq!(e.code(), &S3ErrorCode::InvalidDigest, "{bad:?}");
    }
    // Nothing asked: the body passes, and its MD5 and length are known.
    let (r, outcome) = run(b"", Expected::default()).await;
    assert!(r.is_ok());
    assert_eq!(outcome.digests().unwrap().md5_hex(), "d41d8cd98f00b204e9800998ecf8427e");
}

#[test]
fn contradictory_or_malformed_checksum_headers_are_refused() {
    let crc = b64(&check_value(Algorithm::Crc32));
    let sha = b64(&check_value(Algorithm::Sha1));
    let refused = |pairs: &[(&str, &str)]| Expected::from_request(&headers(pairs), None).unwrap_err().code().clone();
    let invalid = S3ErrorCode::InvalidRequest;
    assert_eq!(refused(&[("x-amz-checksum-crc32", &crc), ("x-amz-checksum-sha1", &sha)]), invalid);
    assert_eq!(refused(&[("x-amz-checksum-crc32", &sha)]), invalid, "wrong length");
    assert_eq!(refused(&[("x-amz-checksum-crc32", "%%%")]), invalid);
    assert_eq!(refused(&[("x-amz-sdk-checksum-algorithm", "MD4")]), invalid);
    assert_eq!(refused(&[("x-amz-sdk-checksum-algorithm", "CRC32")]), invalid, "no value");
    assert_eq!(refused(&[("x-amz-sdk-checksum-algorithm", "SHA1"), ("x-amz-checksum-crc32", &crc)]), invalid);
    assert_eq!(refused(&[("x-amz-trailer", "x-amz-checksum-crc32")]), invalid, "not aws-chunked");
    let e = Expected::from_request(&HeaderMap::new(), None).unwrap();
    assert_eq!(e.algorithm(), None);
    let e = e.require(Algorithm::Crc32c).unwrap();
    assert_eq!(e.algorithm(), Some(Algorithm::Crc32c));
    let named = Expected::from_request(&headers(&[("x-amz-checksum-crc32", &crc)]), None).unwrap();
    assert_eq!(named.require(Algorithm::Sha1).unwrap_err().code(), &invalid);
}

#[tokio::test]
async fn s3s_body_failures_are_named_and_end_the_body() {
    for (text, want) in [
        ("UploadStreamError: Sha256Mismatch", VerifyError::PayloadSha256),
        ("AwsChunkedStreamError: SignatureMismatch", VerifyError::ChunkSignature),
        ("AwsChunkedStreamError: FormatError", VerifyError::Malformed("AwsChunkedStreamError: FormatError".into())),
        ("connection reset", VerifyError::Incomplete("connection reset".into())),
    ] {
        let chunks = vec![Ok(Bytes::from_static(b"x")), Err(std::io::Error::other(text)), Ok(Bytes::from_static(b"y"))];
        let checked = check(futures::stream::iter(chunks), Expected::default());
        let items: Vec<_> = checked.body.collect().await;
        assert_eq!(items.len(), 2, "nothing after the failure");
        assert_eq!(checked.outcome.failure(), Some(want.clone()));
        assert_eq!(checked.outcome.error_or(s3_error!(InternalError)).code(), want.to_s3().code());
    }
    let e = VerifyError::PayloadSha256.to_s3();
    assert_eq!((e.code().as_str(), e.status_code().map(|s| s.as_u16())), ("XAmzContentSHA256Mismatch", Some(400)));
    assert_eq!(VerifyError::ChunkSignature.to_s3().status_code().map(|s| s.as_u16()), Some(403));
}

#[test]
fn checksums_serialize_as_s3_names_them() {
    let c = ObjectChecksum { algorithm: Algorithm::Crc64nvme, value: "AAAAAAAAAAA=".into(), kind: Kind::FullObject };
    let json = serde_json::to_string(&c).unwrap();
    assert_eq!(json, r#"{"algorithm":"CRC64NVME","value":"AAAAAAAAAAA=","kind":"FULL_OBJECT"}"#);
    let f = c.fields();
    assert_eq!(
        (f.crc64nvme.as_deref(), f.kind.as_ref().map(|k| k.as_str())),
        (Some("AAAAAAAAAAA="), Some("FULL_OBJECT"))
    );
}
