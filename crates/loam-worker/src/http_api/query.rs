//! Query strings as Alluxio's clients send them. `/v1/info`, `/v1/files` and `/v1/load` get form-encoded
//! queries (`+` is a space); the other endpoints get raw UFS URIs (`+` is a plus, and a URI may even hold
//! `&`). A raw query is split only at `&` followed by one of the endpoint's known parameter names.

use crate::error::WorkerError;
use percent_encoding::percent_decode_str;

/// Parsed query parameters.
#[derive(Debug, Default)]
pub struct Query {
    params: Vec<(String, String)>,
}

impl Query {
    /// Parses a form-encoded query (`+` → space, `%XX` decoded).
    pub fn form(raw: Option<&str>) -> Self {
        let params = raw
            .unwrap_or("")
            .split('&')
            .filter(|s| !s.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (decode(&k.replace('+', " ")), decode(&v.replace('+', " ")))
            })
            .collect();
        Self { params }
    }

    /// Parses a raw query whose values may hold `&` and `+` literally; `known` names the parameters.
    pub fn raw(raw: Option<&str>, known: &[&str]) -> Self {
        let q = raw.unwrap_or("");
        let mut cuts = vec![0usize];
        for (i, _) in q.match_indices('&') {
            let rest = &q[i + 1..];
            if known.iter().any(|k| rest.starts_with(k) && rest[k.len()..].starts_with('=')) {
                cuts.push(i + 1);
            }
        }
        cuts.push(q.len() + 1);
        let params = cuts
            .windows(2)
            .filter_map(|w| {
                let seg = &q[w[0]..(w[1] - 1).min(q.len())];
                if seg.is_empty() {
                    return None;
                }
                let (k, v) = seg.split_once('=').unwrap_or((seg, ""));
                Some((decode(k), decode(v)))
            })
            .collect();
        Self { params }
    }

    /// The value of `name`, if present (the last one wins).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The value of `name`, or a 400 naming it.
    pub fn required(&self, name: &str) -> Result<&str, WorkerError> {
        match self.get(name) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(WorkerError::InvalidInput(format!("missing query parameter `{name}`"))),
        }
    }

    /// An optional unsigned number, or a 400 naming the parameter.
    pub fn u64(&self, name: &str) -> Result<Option<u64>, WorkerError> {
        match self.get(name) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                WorkerError::InvalidInput(format!("query parameter `{name}` must be a non-negative integer, got {v:?}"))
            }),
        }
    }
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_keeps_plus_and_ampersand() {
        let q = Query::raw(Some("ufsFullPath=s3://b/a+b&c=d&offset=5"), &["ufsFullPath", "offset", "length"]);
        assert_eq!(q.get("ufsFullPath"), Some("s3://b/a+b&c=d"));
        assert_eq!(q.u64("offset").unwrap(), Some(5));
        assert_eq!(q.u64("length").unwrap(), None);
        assert!(Query::raw(Some("offset=x"), &["offset"]).u64("offset").is_err());
    }

    #[test]
    fn form_decodes_plus() {
        let q = Query::form(Some("path=s3%3A%2F%2Fb%2Fmy+file&x=1"));
        assert_eq!(q.get("path"), Some("s3://b/my file"));
        assert!(q.required("nope").is_err());
    }
}
