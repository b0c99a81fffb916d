//! OpenDAL errors to [`UfsError`]: the kind decides whether callers retry, so the mapping follows
//! OpenDAL's own judgement of temporary errors (5xx, `SlowDown`, connection and body errors, timeouts of
//! the timeout layer) rather than guessing from messages. Because the retry layer erases that mark from
//! the errors it returns, callers pass whether an attempt was temporary (see `transient`).

use crate::UfsError;
use opendal::ErrorKind as K;

/// Maps an OpenDAL error met while working on `uri`; `transient`: an attempt failed temporarily.
pub fn map_error(err: opendal::Error, uri: &str, transient: bool) -> UfsError {
    let msg = format!("{uri}: {err}");
    // The caller's path cannot exist on this file system: its request is wrong, and no retry helps.
    if names_too_long(&err) {
        return UfsError::InvalidInput(format!("{uri}: a path component is longer than the file system allows"));
    }
    match err.kind() {
        K::NotFound => UfsError::NotFound(uri.to_string()),
        K::PermissionDenied => UfsError::PermissionDenied(msg),
        K::RateLimited => UfsError::Unavailable(msg),
        _ if transient || err.is_temporary() => UfsError::Unavailable(msg),
        // ConfigInvalid includes S3's NoSuchBucket (OpenDAL classifies a missing bucket as configuration).
        K::ConfigInvalid | K::Unsupported | K::IsADirectory | K::NotADirectory | K::IsSameFile => {
            UfsError::InvalidInput(msg)
        }
        _ => UfsError::Other(msg),
    }
}

/// Whether an I/O error behind `err` is ENAMETOOLONG (OpenDAL reports it as `Unexpected`).
fn names_too_long(err: &opendal::Error) -> bool {
    let mut source = std::error::Error::source(err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::InvalidFilename;
        }
        source = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        let e = |k| opendal::Error::new(k, "x");
        assert!(matches!(map_error(e(K::NotFound), "s3://b/k", false), UfsError::NotFound(u) if u == "s3://b/k"));
        assert!(matches!(map_error(e(K::NotFound), "u", true), UfsError::NotFound(_)), "the last answer wins");
        assert!(matches!(map_error(e(K::PermissionDenied), "u", false), UfsError::PermissionDenied(_)));
        assert!(matches!(map_error(e(K::RateLimited), "u", false), UfsError::Unavailable(_)));
        assert!(matches!(map_error(e(K::Unexpected).set_temporary(), "u", false), UfsError::Unavailable(_)));
        assert!(matches!(map_error(e(K::Unexpected).set_persistent(), "u", true), UfsError::Unavailable(_)));
        assert!(matches!(map_error(e(K::ConfigInvalid), "u", false), UfsError::InvalidInput(_)));
        assert!(matches!(map_error(e(K::Unexpected), "u", false), UfsError::Other(m) if m.starts_with("u: ")));
        let too_long = e(K::Unexpected).set_source(std::io::Error::from(std::io::ErrorKind::InvalidFilename));
        assert!(matches!(map_error(too_long, "u", true), UfsError::InvalidInput(_)), "not retried, not a 5xx");
    }
}
