//! OpenDAL errors to [`UfsError`]: the kind decides whether callers retry, so the mapping follows
//! OpenDAL's own judgement of temporary errors (5xx, `SlowDown`, connection and body errors, timeouts of
//! the timeout layer) rather than guessing from messages. Because the retry layer erases that mark from
//! the errors it returns, callers pass whether an attempt was temporary (see `transient`).
//!
//! **An upstream's answer body is never passed on.** OpenDAL puts the body of an S3 error answer (or its
//! parsed `Code`/`Message`) in the error's message and the answer's headers in its context. The endpoint is
//! a mount option, so it may be any server, and whatever it answers would reach the client in the
//! Coordinator's mount validation error or a worker's read error. An error that carries an HTTP answer is
//! therefore described by its kind, its HTTP status and — when the body parsed as an S3 error — its `Code`
//! if that is a plain identifier (`NoSuchBucket`, `AccessDenied`); nothing else of the answer.

use crate::UfsError;
use opendal::ErrorKind as K;

/// Maps an OpenDAL error met while working on `uri`; `transient`: an attempt failed temporarily.
pub fn map_error(err: opendal::Error, uri: &str, transient: bool) -> UfsError {
    let msg = match answer_summary(&err) {
        Some(summary) => format!("{uri}: {summary}"),
        None => format!("{uri}: {err}"),
    };
    // The caller's path cannot exist on this file system: its request is wrong, and no retry helps.
    match io_kind(&err) {
        Some(std::io::ErrorKind::InvalidFilename) => {
            return UfsError::InvalidInput(format!("{uri}: a path component is longer than the file system allows"));
        }
        // fs: a file where a directory must be, or the other way round (OpenDAL reports these as temporary
        // `Unexpected` errors, or `AlreadyExists` from `create_dir_all`): retrying cannot help.
        Some(
            std::io::ErrorKind::NotADirectory
            | std::io::ErrorKind::IsADirectory
            | std::io::ErrorKind::AlreadyExists
            | std::io::ErrorKind::DirectoryNotEmpty,
        ) => {
            return UfsError::Conflict(format!(
                "{uri}: a file and a directory would have the same name (a file cannot hold entries, and a \
                 directory cannot be replaced by a file)"
            ));
        }
        _ => {}
    }
    match err.kind() {
        K::NotFound => UfsError::NotFound(uri.to_string()),
        // A read pinned to a version (`If-Match`) found another one.
        K::ConditionNotMatch => UfsError::Changed(msg),
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

/// For an error that carries an HTTP answer (OpenDAL's `response` context): `<kind> (HTTP <status>[, <Code>])`,
/// without the body or headers. `None` for errors without an answer (I/O, connection, configuration).
fn answer_summary(err: &opendal::Error) -> Option<String> {
    let shown = err.to_string();
    let at = shown.find("response: Parts {")?;
    let status = shown[at..].split("status: ").nth(1).map(|r| r.chars().take_while(char::is_ascii_digit).collect());
    let status: String = status.filter(|s: &String| !s.is_empty()).unwrap_or_else(|| "?".into());
    // The parsed S3 error is the message, `S3Error { code: "NoSuchBucket", ... }` (opendal's Debug of it).
    let code = err
        .message()
        .strip_prefix("S3Error { code: \"")
        .and_then(|r| r.split('"').next())
        .filter(|c| !c.is_empty() && c.len() <= 64 && c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '.'));
    Some(match code {
        Some(code) => format!("{} (HTTP {status}, {code})", err.kind()),
        None => format!("{} (HTTP {status})", err.kind()),
    })
}

/// The kind of the I/O error behind `err`, if one is (OpenDAL reports most of them as `Unexpected`).
fn io_kind(err: &opendal::Error) -> Option<std::io::ErrorKind> {
    let mut source = std::error::Error::source(err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        source = e.source();
    }
    None
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
        for kind in
            [std::io::ErrorKind::NotADirectory, std::io::ErrorKind::IsADirectory, std::io::ErrorKind::AlreadyExists]
        {
            let conflict = e(K::Unexpected).set_temporary().set_source(std::io::Error::from(kind));
            assert!(
                matches!(map_error(conflict, "u", true), UfsError::Conflict(_)),
                "{kind:?}: not retried, not a 5xx"
            );
        }
    }

    #[test]
    fn an_answer_body_is_not_passed_on() {
        let answer = |msg: &str| {
            opendal::Error::new(K::PermissionDenied, msg)
                .with_context("response", "Parts { status: 403, version: HTTP/1.1, headers: {\"x-secret\": \"h\"} }")
        };
        let e = map_error(answer("TOPSECRET body"), "s3://b/k", false).to_string();
        assert!(!e.contains("TOPSECRET") && !e.contains("x-secret"), "{e}");
        assert!(e.contains("PermissionDenied (HTTP 403)"), "{e}");
        let parsed = r#"S3Error { code: "NoSuchBucket", message: "TOPSECRET", resource: "", request_id: "" }"#;
        let e = map_error(answer(parsed), "s3://b/k", false).to_string();
        assert!(e.contains("HTTP 403, NoSuchBucket") && !e.contains("TOPSECRET"), "{e}");
        let odd = r#"S3Error { code: "TOP SECRET", message: "", resource: "", request_id: "" }"#;
        assert!(!map_error(answer(odd), "u", false).to_string().contains("SECRET"), "a code that is no identifier");
        let plain = map_error(opendal::Error::new(K::Unexpected, "connection refused"), "u", false).to_string();
        assert!(plain.contains("connection refused"), "errors without an answer keep their message: {plain}");
    }
}
