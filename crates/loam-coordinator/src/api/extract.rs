//! Request extractors that never let bad input through as anything but a `400` with a precise message.
//!
//! - [`ApiJson`] reads a JSON body. A body sent without `Content-Type: application/json` is refused with
//!   `415` before it is read (a cross-origin page can send form and text types without a preflight, so
//!   a state change must not accept them). An empty body, malformed JSON (with its line and column), a missing field and a mistyped field (with
//!   the field's path) are all `400 Required parameters not provided: <detail>`. Unknown fields are ignored.
//! - [`QueryParams`] reads the query string as raw pairs, and its accessors refuse empty, repeated and
//!   malformed values; axum's typed `Query` would answer some of those with its own plain-text body.
//! - [`Paging`] is the `?offset=&limit=` of every list endpoint.

use super::error::ApiError;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::error::Category;

/// A JSON request body of type `T`.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let content_type = req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = Bytes::from_request(req, state).await.map_err(body_rejection)?;
        let has_body = !body.iter().all(u8::is_ascii_whitespace);
        if has_body && !content_type.as_deref().is_some_and(is_json) {
            let given = content_type.map_or("none".to_string(), |c| format!("{c:?}"));
            return Err(ApiError::UnsupportedMediaType(format!(
                "the body must be sent with Content-Type: application/json (Content-Type was {given})"
            )));
        }
        parse_json_body(&body, content_type.as_deref()).map(ApiJson)
    }
}

fn body_rejection(r: BytesRejection) -> ApiError {
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::BodyTooLarge(r.body_text())
    } else {
        ApiError::MissingParameters(format!("cannot read the request body: {}", r.body_text()))
    }
}

/// Parses a request body as JSON `T`; `content_type` only improves the message when parsing fails.
pub fn parse_json_body<T: DeserializeOwned>(body: &[u8], content_type: Option<&str>) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::MissingParameters("empty request body (expected a JSON object)".into()));
    }
    // serde reads a struct from an array too (fields by position); every request body is an object.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
            Err(e) => json_error(".", &e, content_type),
            Ok(_) => ApiError::MissingParameters("the request body must be a JSON object".into()),
        });
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        json_error(&path, &e.into_inner(), content_type)
    })?;
    de.end().map_err(|e| json_error(".", &e, content_type))?;
    Ok(value)
}

/// `missing field `ufs` at line 1 column 20`, `invalid type: integer `5`, expected a string for `path` at
/// line 1 column 10`, `malformed JSON: trailing comma at line 3 column 1`.
fn json_error(path: &str, err: &serde_json::Error, content_type: Option<&str>) -> ApiError {
    let full = err.to_string();
    let position =
        if err.line() > 0 { format!(" at line {} column {}", err.line(), err.column()) } else { String::new() };
    let msg = full.strip_suffix(&position).unwrap_or(&full);
    let detail = match err.classify() {
        Category::Data if path == "." => format!("{msg}{position}"),
        Category::Data if msg.starts_with("missing field") => format!("{msg} in `{path}`{position}"),
        Category::Data => format!("{msg} for `{path}`{position}"),
        Category::Syntax | Category::Eof | Category::Io => {
            let hint = match content_type {
                Some(ct) if !is_json(ct) => format!(" (the body must be JSON; Content-Type was {ct:?})"),
                _ => String::new(),
            };
            format!("malformed JSON: {msg}{position}{hint}")
        }
    };
    ApiError::MissingParameters(detail)
}

fn is_json(content_type: &str) -> bool {
    loam_core::coordinator_api::is_json_media_type(content_type)
}

/// The query string as raw `(name, value)` pairs, `+` and `%xx` decoded.
#[derive(Debug, Default)]
pub struct QueryParams(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|e| ApiError::MissingParameters(format!("malformed query string: {}", e.body_text())))?;
        Ok(Self(pairs))
    }
}

impl QueryParams {
    /// Parameters from `(name, value)` pairs.
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Self(pairs)
    }

    /// The value of `name` if given; an empty or repeated value is a `400`.
    pub fn optional(&self, name: &str) -> Result<Option<&str>, ApiError> {
        let mut values = self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str());
        match (values.next(), values.next()) {
            (None, _) => Ok(None),
            (Some(_), Some(_)) => {
                Err(ApiError::MissingParameters(format!("query parameter `{name}` is given more than once")))
            }
            (Some(""), None) => Err(ApiError::MissingParameters(format!("query parameter `{name}` is empty"))),
            (Some(v), None) => Ok(Some(v)),
        }
    }

    /// The value of `name`; absent, empty or repeated is a `400`.
    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.optional(name)?.ok_or_else(|| ApiError::MissingParameters(format!("missing query parameter `{name}`")))
    }

    /// The non-negative integer value of `name`, if given.
    pub fn count(&self, name: &str) -> Result<Option<usize>, ApiError> {
        self.optional(name)?
            .map(|v| {
                v.parse::<usize>().map_err(|_| {
                    ApiError::MissingParameters(format!(
                        "query parameter `{name}` must be a non-negative integer, got {v:?}"
                    ))
                })
            })
            .transpose()
    }
}

/// `?offset=N&limit=M` of list endpoints (**Decision**, spec Conventions): skip `N` items, return at most
/// `M`; both default to everything. `limit=0` returns no items.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Paging {
    /// Items to skip.
    pub offset: usize,
    /// Most items to return; `None` for all.
    pub limit: Option<usize>,
}

impl Paging {
    /// Reads `offset` and `limit` from the query.
    pub fn from_query(q: &QueryParams) -> Result<Self, ApiError> {
        Ok(Self { offset: q.count("offset")?.unwrap_or(0), limit: q.count("limit")? })
    }

    /// The page of `items` (already in their stable order).
    pub fn apply<T>(&self, items: Vec<T>) -> Vec<T> {
        items.into_iter().skip(self.offset).take(self.limit.unwrap_or(usize::MAX)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Body {
        path: String,
        #[serde(default)]
        options: BTreeMap<String, String>,
    }

    fn err(body: &str, ct: Option<&str>) -> String {
        parse_json_body::<Body>(body.as_bytes(), ct).unwrap_err().to_string()
    }

    #[test]
    fn json_messages_are_precise() {
        assert_eq!(err("", None), "Required parameters not provided: empty request body (expected a JSON object)");
        assert_eq!(err("{}", None), "Required parameters not provided: missing field `path` at line 1 column 2");
        assert_eq!(
            err(r#"{"path": 5}"#, None),
            "Required parameters not provided: invalid type: integer `5`, expected a string for `path` at line 1 column 10"
        );
        assert!(err(r#"{"path": "/a", "options": {"k": 1}}"#, None).contains("for `options.k`"));
        assert_eq!(
            err("{\"path\": \"/a\",}", Some("application/json")),
            "Required parameters not provided: malformed JSON: trailing comma at line 1 column 15"
        );
        assert!(err("path=/a", Some("application/x-www-form-urlencoded")).contains("Content-Type was"));
        assert!(err(r#"{"path": "/a"} x"#, None).contains("malformed JSON: trailing characters"));
        assert_eq!(err(r#"["/a"]"#, None), "Required parameters not provided: the request body must be a JSON object");
        assert!(err("[1", None).contains("malformed JSON: EOF while parsing a list at line 1 column 2"));
    }

    #[test]
    fn content_type_is_not_required() {
        let b: Body = parse_json_body(br#"{"path": "/a", "extra": [1]}"#, Some("text/plain")).unwrap();
        assert_eq!(b.path, "/a");
    }

    #[test]
    fn query_values_are_checked() {
        let q = |pairs: &[(&str, &str)]| {
            QueryParams::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
        };
        assert_eq!(q(&[("id", "w")]).required("id").unwrap(), "w");
        assert!(q(&[("id", "")]).optional("id").is_err());
        assert!(q(&[("id", "a"), ("id", "b")]).optional("id").is_err());
        assert!(q(&[]).required("id").is_err());
        assert!(q(&[("limit", "-1")]).count("limit").is_err());
        let p = Paging::from_query(&q(&[("offset", "1"), ("limit", "2")])).unwrap();
        assert_eq!(p.apply(vec![1, 2, 3, 4]), vec![2, 3]);
        assert_eq!(Paging::default().apply(vec![1, 2]), vec![1, 2]);
    }
}
