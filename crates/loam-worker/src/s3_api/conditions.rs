//! Conditional GET and HEAD (RFC 9110 section 13.2.2): `If-Match` is evaluated first, and only without it
//! `If-Unmodified-Since` (either failing: `412 PreconditionFailed`); then `If-None-Match`, and only without
//! it `If-Modified-Since` (either saying "unchanged": `304 Not Modified`, with the `ETag` and
//! `Last-Modified` the `200` would have carried, and no body).
//!
//! ETags are compared with what the S3 API answers (`ObjectMeta::etag`: the stored MD5 where there is
//! one), strongly, quotes and `W/` ignored. Times are compared in whole seconds, as HTTP dates carry them.
//!
//! Writes (PutObject, DeleteObject) take `If-None-Match: *` (only if nothing is there) or `If-Match: <etag>`
//! ([`write_condition`]), which the UFS checks in the same step as the write (`loam_ufs::WriteCondition`):
//! `412` when it does not hold, nothing written. CopyObject's `x-amz-copy-source-if-*` are the GET
//! conditions applied to the source version that is copied, except that "unchanged" is `412` too
//! ([`check_copy_source`]), as S3 answers.
//!
//! One deviation of S3 is not copied: S3 answers `304` when `If-None-Match` does not match but
//! `If-Modified-Since` says unchanged; RFC 9110 (and this) ignores `If-Modified-Since` then.

use crate::s3_api::reading::ObjectMeta;
use axum::http::header::{ETAG, LAST_MODIFIED};
use axum::http::{HeaderMap, HeaderValue};
use loam_ufs::WriteCondition;
use s3s::dto::{ETagCondition, Timestamp, TimestampFormat};
use s3s::{S3Error, S3ErrorCode, S3Result};
use std::time::UNIX_EPOCH;

/// The [`ReadConditions`] of a HeadObject's or GetObject's input (two `s3s` types, alike in these fields).
macro_rules! read_conditions_of {
    ($input:expr) => {
        $crate::s3_api::conditions::ReadConditions {
            if_match: $input.if_match,
            if_none_match: $input.if_none_match,
            if_modified_since: $input.if_modified_since,
            if_unmodified_since: $input.if_unmodified_since,
        }
    };
}
pub(crate) use read_conditions_of;

/// The conditions of a GET or HEAD.
#[derive(Clone, Debug, Default)]
pub struct ReadConditions {
    /// `If-Match`.
    pub if_match: Option<ETagCondition>,
    /// `If-None-Match`.
    pub if_none_match: Option<ETagCondition>,
    /// `If-Modified-Since`.
    pub if_modified_since: Option<Timestamp>,
    /// `If-Unmodified-Since`.
    pub if_unmodified_since: Option<Timestamp>,
}

/// Whether `c` names the ETag `etag` (or is `*`).
pub fn matches(c: &ETagCondition, etag: &str) -> bool {
    c.is_any() || c.as_etag().is_some_and(|e| loam_core::version::unquote(e.value()) == etag)
}

/// Seconds since the epoch of an HTTP date.
fn secs(t: &Timestamp) -> Option<i64> {
    let mut out = Vec::new();
    t.format(TimestampFormat::EpochSeconds, &mut out).ok()?;
    let s = String::from_utf8(out).ok()?;
    s.split('.').next()?.parse().ok()
}

/// `412 PreconditionFailed`, as S3 words it.
pub fn precondition_failed() -> S3Error {
    S3Error::with_message(
        S3ErrorCode::PreconditionFailed,
        "At least one of the pre-conditions you specified did not hold",
    )
}

/// Checks `c` against the object `meta` (see the module header).
pub fn check(meta: &ObjectMeta, c: &ReadConditions) -> S3Result<()> {
    let modified = meta.modified.and_then(|m| m.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_secs() as i64);
    match (&c.if_match, &c.if_unmodified_since) {
        (Some(m), _) if !matches(m, &meta.etag) => return Err(precondition_failed()),
        (None, Some(t)) if modified.zip(secs(t)).is_some_and(|(m, t)| m > t) => return Err(precondition_failed()),
        _ => {}
    }
    let unchanged = match (&c.if_none_match, &c.if_modified_since) {
        (Some(m), _) => matches(m, &meta.etag),
        (None, Some(t)) => modified.zip(secs(t)).is_some_and(|(m, t)| m <= t),
        (None, None) => false,
    };
    if unchanged {
        return Err(not_modified(meta));
    }
    Ok(())
}

/// The condition of a write: `If-None-Match: *` or `If-Match: <etag>`. S3 takes no other
/// `If-None-Match` on a write, nor both at once: `501 NotImplemented`, as S3 answers such headers.
pub fn write_condition(
    if_match: Option<ETagCondition>,
    if_none_match: Option<ETagCondition>,
) -> S3Result<Option<WriteCondition>> {
    let not_implemented = |what: &str| {
        S3Error::with_message(
            S3ErrorCode::NotImplemented,
            format!("A header you provided implies functionality that is not implemented: {what}"),
        )
    };
    match (if_match, if_none_match) {
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err(not_implemented("If-Match and If-None-Match together")),
        (None, Some(c)) => match c.as_etag() {
            None => Ok(Some(WriteCondition::NotExists)),
            Some(e) => Ok(Some(WriteCondition::NoneMatch(loam_core::version::unquote(e.value()).to_string()))),
        },
        (Some(c), None) => match c.as_etag() {
            Some(e) => Ok(Some(WriteCondition::Matches(loam_core::version::unquote(e.value()).to_string()))),
            None => Ok(Some(WriteCondition::Exists)),
        },
    }
}

/// CopyObject's `x-amz-copy-source-if-*` against the source version `meta`: the GET rules (a true
/// `if-match` makes `if-unmodified-since` irrelevant; a false `if-none-match` makes `if-modified-since`
/// irrelevant), with every failure `412 PreconditionFailed`.
pub fn check_copy_source(meta: &ObjectMeta, c: &ReadConditions) -> S3Result<()> {
    check(meta, c).map_err(|e| if *e.code() == S3ErrorCode::NotModified { precondition_failed() } else { e })
}

/// `304 Not Modified` with the validators of `meta`.
fn not_modified(meta: &ObjectMeta) -> S3Error {
    let mut e = S3Error::new(S3ErrorCode::NotModified);
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&loam_core::version::quoted(&meta.etag)) {
        headers.insert(ETAG, v);
    }
    if let Some(m) = meta.modified {
        let mut date = Vec::new();
        if Timestamp::from(m).format(TimestampFormat::HttpDate, &mut date).is_ok()
            && let Ok(v) = HeaderValue::from_bytes(&date)
        {
            headers.insert(LAST_MODIFIED, v);
        }
    }
    e.set_headers(headers);
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> Timestamp {
        Timestamp::from(UNIX_EPOCH + std::time::Duration::from_secs(secs))
    }

    fn etag(s: &str) -> Option<ETagCondition> {
        Some(ETagCondition::parse_http_header(s.as_bytes()).unwrap())
    }

    #[test]
    fn rfc_9110_precedence() {
        let meta = ObjectMeta::new(3, Some("abc"), Some(1_000_500)); // modified at 1000.5 s
        let code = |c: ReadConditions| check(&meta, &c).err().map(|e| e.code().clone());
        assert_eq!(code(ReadConditions::default()), None);
        assert_eq!(code(ReadConditions { if_match: etag("\"abc\""), ..Default::default() }), None);
        assert_eq!(
            code(ReadConditions { if_match: etag("\"x\""), ..Default::default() }),
            Some(S3ErrorCode::PreconditionFailed)
        );
        // If-Match true: If-Unmodified-Since is not looked at.
        let c = ReadConditions { if_match: etag("*"), if_unmodified_since: Some(at(10)), ..Default::default() };
        assert_eq!(code(c), None);
        assert_eq!(
            code(ReadConditions { if_unmodified_since: Some(at(999)), ..Default::default() }),
            Some(S3ErrorCode::PreconditionFailed)
        );
        assert_eq!(
            code(ReadConditions { if_unmodified_since: Some(at(1000)), ..Default::default() }),
            None,
            "whole seconds"
        );
        assert_eq!(
            code(ReadConditions { if_none_match: etag("\"abc\""), ..Default::default() }),
            Some(S3ErrorCode::NotModified)
        );
        // If-None-Match false: If-Modified-Since is not looked at.
        let c =
            ReadConditions { if_none_match: etag("\"x\""), if_modified_since: Some(at(2000)), ..Default::default() };
        assert_eq!(code(c), None);
        assert_eq!(
            code(ReadConditions { if_modified_since: Some(at(1000)), ..Default::default() }),
            Some(S3ErrorCode::NotModified)
        );
        assert_eq!(code(ReadConditions { if_modified_since: Some(at(999)), ..Default::default() }), None);
        let e = check(&meta, &ReadConditions { if_none_match: etag("*"), ..Default::default() }).unwrap_err();
        let h = e.headers().unwrap();
        assert_eq!(h[ETAG], "\"abc\"");
        assert_eq!(h[LAST_MODIFIED], "Thu, 01 Jan 1970 00:16:40 GMT");
    }

    #[test]
    fn write_conditions_are_star_or_one_etag() {
        assert_eq!(write_condition(None, None).unwrap(), None);
        assert_eq!(write_condition(None, etag("*")).unwrap(), Some(WriteCondition::NotExists));
        assert_eq!(write_condition(etag("\"abc\""), None).unwrap(), Some(WriteCondition::Matches("abc".into())));
        assert_eq!(write_condition(etag("*"), None).unwrap(), Some(WriteCondition::Exists));
        assert_eq!(write_condition(None, etag("\"abc\"")).unwrap(), Some(WriteCondition::NoneMatch("abc".into())));
        let both = write_condition(etag("\"a\""), etag("*")).unwrap_err();
        assert_eq!(*both.code(), S3ErrorCode::NotImplemented);
    }

    #[test]
    fn copy_source_conditions_fail_with_412_only() {
        let meta = ObjectMeta::new(3, Some("abc"), Some(1_000_500));
        let code = |c: ReadConditions| check_copy_source(&meta, &c).err().map(|e| e.code().clone());
        // S3: if-match true and if-unmodified-since false: copied.
        let c = ReadConditions { if_match: etag("\"abc\""), if_unmodified_since: Some(at(10)), ..Default::default() };
        assert_eq!(code(c), None);
        // S3: if-none-match false and if-modified-since true: 412.
        let c =
            ReadConditions { if_none_match: etag("\"abc\""), if_modified_since: Some(at(10)), ..Default::default() };
        assert_eq!(code(c), Some(S3ErrorCode::PreconditionFailed));
        let c = ReadConditions { if_modified_since: Some(at(2000)), ..Default::default() };
        assert_eq!(code(c), Some(S3ErrorCode::PreconditionFailed), "unmodified since: 412, not 304");
    }
}
