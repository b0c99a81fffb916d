//! OpenDAL errors to [`UfsError`]: the kind decides whether callers retry, so the mapping follows
//! OpenDAL's own `is_temporary()` judgement (it marks 5xx, `SlowDown`, connection and body errors, and
//! timeouts from the timeout layer) rather than guessing from messages.

use crate::UfsError;
use opendal::ErrorKind as K;

/// Maps an OpenDAL error met while working on `uri`.
pub fn map_error(err: opendal::Error, uri: &str) -> UfsError {
    let msg = format!("{uri}: {err}");
    match err.kind() {
        K::NotFound => UfsError::NotFound(uri.to_string()),
        K::PermissionDenied => UfsError::PermissionDenied(msg),
        K::RateLimited => UfsError::Unavailable(msg),
        _ if err.is_temporary() => UfsError::Unavailable(msg),
        // ConfigInvalid includes S3's NoSuchBucket (OpenDAL classifies a missing bucket as configuration).
        K::ConfigInvalid | K::Unsupported | K::IsADirectory | K::NotADirectory | K::IsSameFile => {
            UfsError::InvalidInput(msg)
        }
        _ => UfsError::Other(msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        let e = |k| opendal::Error::new(k, "x");
        assert!(matches!(map_error(e(K::NotFound), "s3://b/k"), UfsError::NotFound(u) if u == "s3://b/k"));
        assert!(matches!(map_error(e(K::PermissionDenied), "u"), UfsError::PermissionDenied(_)));
        assert!(matches!(map_error(e(K::RateLimited), "u"), UfsError::Unavailable(_)));
        assert!(matches!(map_error(e(K::Unexpected).set_temporary(), "u"), UfsError::Unavailable(_)));
        assert!(matches!(map_error(e(K::ConfigInvalid), "u"), UfsError::InvalidInput(_)));
        assert!(matches!(map_error(e(K::Unexpected), "u"), UfsError::Other(m) if m.starts_with("u: ")));
    }
}
