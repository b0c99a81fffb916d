//! The version of a UFS file, as one string: the *version tag*. Every read path names the version it
//! serves with it (the worker's `ETag` header, S3's `ETag`, the page store's record) and pins follow-up
//! reads to it (`If-Match`), so that one response never mixes two versions of a file.
//!
//! The tag is the UFS's ETag when it has one (S3), else `<length hex>-<mtime ms hex>` (`file://`), which a
//! rewrite changes with the modification time. Quotes are not part of it: they are added where a header
//! carries it (`"<tag>"`) and stripped where one is read.

/// The version tag of a file of `length` bytes with the UFS's `etag` and modification time.
pub fn version_tag(length: u64, etag: Option<&str>, modified_ms: Option<i64>) -> String {
    match etag.map(unquote).filter(|e| !e.is_empty()) {
        Some(e) => e.to_string(),
        None => format!("{length:x}-{:x}", modified_ms.unwrap_or(0)),
    }
}

/// `tag` as a strong entity tag for an `ETag` or `If-Match` header: `"<tag>"`.
pub fn quoted(tag: &str) -> String {
    format!("\"{}\"", unquote(tag))
}

/// An entity tag as a header carries it (`"abc"`, `W/"abc"`), without its quotes and weakness mark.
pub fn unquote(tag: &str) -> &str {
    let t = tag.trim();
    let t = t.strip_prefix("W/").unwrap_or(t);
    t.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_the_etag_or_length_and_time() {
        assert_eq!(version_tag(5, Some("\"abc\""), Some(1)), "abc");
        assert_eq!(version_tag(255, None, Some(16)), "ff-10");
        assert_eq!(version_tag(255, Some(""), Some(16)), "ff-10");
        assert_ne!(version_tag(255, None, Some(17)), version_tag(255, None, Some(16)), "a rewrite changes it");
        assert_eq!(quoted("abc"), "\"abc\"");
        assert_eq!(quoted("\"abc\""), "\"abc\"");
        assert_eq!(unquote("W/\"abc\""), "abc");
    }
}
