//! Cluster paths (`/mount/dir/file`) and UFS URIs (`s3://bucket/key`): validation, normalisation,
//! and longest-prefix rule matching (mounts, TTL, priority and quota rules all resolve this way).

use std::collections::BTreeMap;

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path is empty.
    #[error("path is empty")]
    Empty,
    /// The path holds a NUL byte.
    #[error("path {0:?} contains a NUL character")]
    Nul(String),
    /// The path has a `..` or `.` component.
    #[error("path {0:?} contains a '.' or '..' component")]
    DotSegment(String),
    /// A cluster path that does not start with `/`.
    #[error("path {0:?} is not absolute (must start with '/')")]
    NotAbsolute(String),
    /// A UFS URI without `scheme://`.
    #[error("{0:?} is not a UFS URI (expected scheme://authority/path)")]
    NotUri(String),
    /// A UFS URI whose scheme Loam cannot read.
    #[error("unsupported UFS scheme {0:?} (supported: file, s3, s3a)")]
    UnsupportedScheme(String),
}

fn check_chars(p: &str) -> Result<(), PathError> {
    if p.is_empty() {
        return Err(PathError::Empty);
    }
    if p.contains('\0') {
        return Err(PathError::Nul(p.replace('\0', "\\0")));
    }
    Ok(())
}

fn check_segments<'a>(p: &str, segs: impl Iterator<Item = &'a str>) -> Result<(), PathError> {
    for s in segs {
        if s == ".." || s == "." {
            return Err(PathError::DotSegment(p.to_string()));
        }
    }
    Ok(())
}

/// Normalises a cluster path: absolute, no `.`/`..`/NUL, single slashes, no trailing slash (`/` stays `/`).
pub fn normalize_cluster_path(p: &str) -> Result<String, PathError> {
    check_chars(p)?;
    if !p.starts_with('/') {
        return Err(PathError::NotAbsolute(p.to_string()));
    }
    let segs: Vec<&str> = p.split('/').filter(|s| !s.is_empty()).collect();
    check_segments(p, segs.iter().copied())?;
    Ok(format!("/{}", segs.join("/")))
}

/// A parsed UFS URI: `scheme://authority/key` (for `file://` the authority is empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UfsUri {
    /// `file` or `s3` (`s3a` is read as `s3`).
    pub scheme: String,
    /// The bucket for s3, empty for file.
    pub authority: String,
    /// The path inside the authority, without leading or trailing slash (empty for the root).
    pub key: String,
}

/// Schemes Loam can read.
pub const SUPPORTED_SCHEMES: &[&str] = &["file", "s3", "s3a"];

impl UfsUri {
    /// Parses and normalises a UFS URI; refuses `..`, `.`, NUL and unknown schemes.
    pub fn parse(uri: &str) -> Result<Self, PathError> {
        check_chars(uri)?;
        let (scheme, rest) = uri.split_once("://").ok_or_else(|| PathError::NotUri(uri.to_string()))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme.is_empty() || !scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-') {
            return Err(PathError::NotUri(uri.to_string()));
        }
        if !SUPPORTED_SCHEMES.contains(&scheme.as_str()) {
            return Err(PathError::UnsupportedScheme(scheme));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if scheme == "file" && !authority.is_empty() {
            return Err(PathError::NotUri(uri.to_string()));
        }
        if scheme != "file" && authority.is_empty() {
            return Err(PathError::NotUri(uri.to_string()));
        }
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        check_segments(uri, segs.iter().copied())?;
        let scheme = if scheme == "s3a" { "s3".to_string() } else { scheme };
        Ok(Self { scheme, authority: authority.to_string(), key: segs.join("/") })
    }

    /// The root of this URI's authority (`s3://bucket/`, `file:///`).
    pub fn root(&self) -> String {
        format!("{}://{}/", self.scheme, self.authority)
    }

    /// The canonical string: `scheme://authority/key` (no trailing slash; the root keeps its `/`).
    pub fn as_string(&self) -> String {
        format!("{}://{}/{}", self.scheme, self.authority, self.key)
    }

    /// This URI with `rel` appended.
    pub fn join(&self, rel: &str) -> Self {
        let rel = rel.trim_matches('/');
        let key = match (self.key.is_empty(), rel.is_empty()) {
            (_, true) => self.key.clone(),
            (true, false) => rel.to_string(),
            (false, false) => format!("{}/{}", self.key, rel),
        };
        Self { scheme: self.scheme.clone(), authority: self.authority.clone(), key }
    }

    /// If `self` is `other` or lies under it, the relative key (empty when equal).
    pub fn strip_prefix(&self, other: &UfsUri) -> Option<String> {
        if self.scheme != other.scheme || self.authority != other.authority {
            return None;
        }
        strip_key_prefix(&self.key, &other.key)
    }
}

/// `key` relative to `prefix` on whole components, or `None` when `key` is not under `prefix`.
pub fn strip_key_prefix(key: &str, prefix: &str) -> Option<String> {
    if prefix.is_empty() {
        return Some(key.to_string());
    }
    if key == prefix {
        return Some(String::new());
    }
    key.strip_prefix(prefix).and_then(|r| r.strip_prefix('/')).map(str::to_string)
}

/// Rules keyed by normalised cluster path; a lookup returns the most specific (longest) rule above a path.
#[derive(Debug, Clone, Default)]
pub struct PathRules<T> {
    rules: BTreeMap<String, T>,
}

impl<T> PathRules<T> {
    /// An empty rule set.
    pub fn new() -> Self {
        Self { rules: BTreeMap::new() }
    }

    /// Adds or replaces the rule at `path` (already normalised).
    pub fn insert(&mut self, path: String, rule: T) -> Option<T> {
        self.rules.insert(path, rule)
    }

    /// Removes the rule at `path`.
    pub fn remove(&mut self, path: &str) -> Option<T> {
        self.rules.remove(path)
    }

    /// The rule at exactly `path`.
    pub fn get(&self, path: &str) -> Option<&T> {
        self.rules.get(path)
    }

    /// The most specific rule at or above `path`, with the rule's own path.
    pub fn lookup<'a>(&'a self, path: &'a str) -> Option<(&'a str, &'a T)> {
        let mut cur = path;
        loop {
            if let Some(r) = self.rules.get(cur) {
                return Some((cur, r));
            }
            if cur == "/" || cur.is_empty() {
                return None;
            }
            cur = match cur.rfind('/') {
                Some(0) => "/",
                Some(i) => &cur[..i],
                None => return None,
            };
        }
    }

    /// All rules in path order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &T)> {
        self.rules.iter()
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_paths() {
        assert_eq!(normalize_cluster_path("/data/").unwrap(), "/data");
        assert_eq!(normalize_cluster_path("//data//x").unwrap(), "/data/x");
        assert_eq!(normalize_cluster_path("/").unwrap(), "/");
        assert!(matches!(normalize_cluster_path("data"), Err(PathError::NotAbsolute(_))));
        assert!(matches!(normalize_cluster_path("/a/../b"), Err(PathError::DotSegment(_))));
        assert!(matches!(normalize_cluster_path("/a/\0"), Err(PathError::Nul(_))));
        assert!(matches!(normalize_cluster_path(""), Err(PathError::Empty)));
    }

    #[test]
    fn ufs_uris() {
        let u = UfsUri::parse("s3://bucket/dir/x/").unwrap();
        assert_eq!((u.scheme.as_str(), u.authority.as_str(), u.key.as_str()), ("s3", "bucket", "dir/x"));
        assert_eq!(u.as_string(), "s3://bucket/dir/x");
        assert_eq!(UfsUri::parse("s3a://b").unwrap().as_string(), "s3://b/");
        assert_eq!(UfsUri::parse("file:///tmp/a").unwrap().as_string(), "file:///tmp/a");
        assert!(UfsUri::parse("file://host/tmp").is_err());
        assert!(UfsUri::parse("s3:///key").is_err());
        assert!(UfsUri::parse("/tmp/a").is_err());
        assert!(matches!(UfsUri::parse("s3://b/../c"), Err(PathError::DotSegment(_))));
        assert!(matches!(UfsUri::parse("gopher://b/c"), Err(PathError::UnsupportedScheme(_))));
        let root = UfsUri::parse("s3://bucket/dir").unwrap();
        assert_eq!(u.strip_prefix(&root).as_deref(), Some("x"));
        assert_eq!(UfsUri::parse("s3://bucket/dirx").unwrap().strip_prefix(&root), None);
        assert_eq!(root.join("a/b").as_string(), "s3://bucket/dir/a/b");
    }

    #[test]
    fn longest_rule_wins() {
        let mut r = PathRules::new();
        r.insert("/data".to_string(), 1);
        r.insert("/data/a/b".to_string(), 2);
        assert_eq!(r.lookup("/data/a/b/c").map(|x| *x.1), Some(2));
        assert_eq!(r.lookup("/data/a/bc").map(|x| *x.1), Some(1));
        assert_eq!(r.lookup("/other"), None);
        r.insert("/".to_string(), 0);
        assert_eq!(r.lookup("/other").map(|x| *x.1), Some(0));
    }
}
