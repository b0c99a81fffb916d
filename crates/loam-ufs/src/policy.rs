//! [`UfsPolicy`]: which UFSs may be mounted. The Coordinator checks every mount against it — `POST
//! /api/v1/mount` and the static `[[mount]]` table alike — before the mount is written or the UFS is touched.
//!
//! - **`file://` roots** only under the allowed local directories ([`LocalRoots`]). Paths are compared
//!   canonicalized, not as strings: the root is resolved with every symlink (`/srv/data/link` → `/etc` is
//!   `/etc`), and so are the allowed directories when the policy is made. A root that does not exist yet is
//!   judged by its deepest existing ancestor (the mount is refused later anyway: its root must exist).
//!   `LocalRoots::Any` allows every path (`loam local` on loopback); the default allows none.
//! - **S3 endpoints** only from the allowed patterns, when patterns are given (none given: any endpoint, as
//!   before). A pattern is `scheme://host[:port]`: `scheme` is `http` or `https`; `host` is a name or an
//!   address, `*` (any host) or `*.suffix` (any host that ends in `.suffix`, at least one label more);
//!   `port` is a number or `*`, and a pattern without one allows only the scheme's default port (443, 80).
//!   Hosts compare case-insensitively. A mount without an endpoint goes to AWS, and is judged as
//!   `https://s3.<region>.amazonaws.com` (so `https://*.amazonaws.com` allows it). A bare endpoint
//!   (`host:9000`) is `https`, as OpenDAL reads it.
//!
//! The policy only decides which roots and endpoints a mount may name; `beneath` keeps each path of a
//! `file://` mount under its root once mounted.

use crate::Mount;
use crate::opendal_ufs::s3_options::S3Settings;
use std::path::{Path, PathBuf};

/// Which local directories `file://` mounts may be under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LocalRoots {
    /// Any path (`loam local` bound to loopback).
    Any,
    /// Only these directories and what is under them (canonical paths); none allows no `file://` mount.
    Under(Vec<PathBuf>),
}

/// One allowed S3 endpoint pattern (see the module header for the syntax).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointPattern {
    text: String,
    scheme: String,
    host: HostPattern,
    /// `None`: any port.
    port: Option<u16>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum HostPattern {
    Any,
    Suffix(String),
    Exact(String),
}

/// Which UFSs may be mounted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UfsPolicy {
    local: LocalRoots,
    /// `None`: any endpoint.
    endpoints: Option<Vec<EndpointPattern>>,
}

impl Default for UfsPolicy {
    /// No `file://` mount; any S3 endpoint.
    fn default() -> Self {
        Self { local: LocalRoots::Under(Vec::new()), endpoints: None }
    }
}

impl LocalRoots {
    /// Only under `dirs`, each of which must be an existing directory (it is canonicalized now).
    pub fn under(dirs: &[PathBuf]) -> Result<Self, String> {
        let canon = dirs
            .iter()
            .map(|d| match std::fs::canonicalize(d) {
                Ok(c) if c.is_dir() => Ok(c),
                Ok(_) => Err(format!("{} is not a directory", d.display())),
                Err(e) => Err(format!("{}: {e}", d.display())),
            })
            .collect::<Result<_, _>>()?;
        Ok(LocalRoots::Under(canon))
    }
}

impl EndpointPattern {
    /// Parses `scheme://host[:port]` (see the module header).
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!("endpoint pattern {text:?}: {why} (expected scheme://host[:port], e.g. https://*.amazonaws.com)")
        };
        let (scheme, rest) = text.split_once("://").ok_or_else(|| bad("no scheme"))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(bad("the scheme must be http or https"));
        }
        let (host, port) = split_host_port(rest.trim_end_matches('/')).ok_or_else(|| bad("bad host or port"))?;
        let port = match port {
            Some("*") => None,
            Some(p) => Some(p.parse::<u16>().map_err(|_| bad("bad port"))?),
            None => Some(default_port(&scheme)),
        };
        let host = match host.as_str() {
            "*" => HostPattern::Any,
            h if h.starts_with("*.") && h.len() > 2 && !h[2..].contains('*') => HostPattern::Suffix(h[1..].to_string()),
            h if !h.contains('*') => HostPattern::Exact(h.to_string()),
            _ => return Err(bad("`*` may only be the whole host or its first label")),
        };
        Ok(Self { text: text.to_string(), scheme, host, port })
    }

    fn matches(&self, scheme: &str, host: &str, port: u16) -> bool {
        let host_ok = match &self.host {
            HostPattern::Any => true,
            HostPattern::Suffix(s) => host.len() > s.len() && host.ends_with(s.as_str()),
            HostPattern::Exact(h) => host == h,
        };
        self.scheme == scheme && host_ok && self.port.is_none_or(|p| p == port)
    }
}

impl std::fmt::Display for EndpointPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

fn default_port(scheme: &str) -> u16 {
    if scheme == "http" { 80 } else { 443 }
}

/// `host[:port]` (the host lowercased; `[v6]` kept bracketed); `None` when malformed.
fn split_host_port(s: &str) -> Option<(String, Option<&str>)> {
    if s.is_empty() || s.contains(['/', '@', '?', '#']) || s.contains(char::is_whitespace) {
        return None;
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        (format!("[{v6}]"), if after.is_empty() { None } else { Some(after.strip_prefix(':')?) })
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (s.to_string(), None),
        }
    };
    (!host.is_empty()).then(|| (host.to_ascii_lowercase(), port))
}

impl UfsPolicy {
    /// A policy of these local roots and endpoint patterns (`None`: any endpoint).
    pub fn new(local: LocalRoots, endpoints: Option<Vec<EndpointPattern>>) -> Self {
        Self { local, endpoints }
    }

    /// Allows every UFS (tests, `loam local`).
    pub fn open() -> Self {
        Self { local: LocalRoots::Any, endpoints: None }
    }

    /// The local roots.
    pub fn local_roots(&self) -> &LocalRoots {
        &self.local
    }

    /// Also allows `dir` as a local root (unless every path already is).
    pub fn allow_local(&mut self, dir: &Path) -> Result<(), String> {
        if let LocalRoots::Under(dirs) = &mut self.local
            && let LocalRoots::Under(more) = LocalRoots::under(&[dir.to_path_buf()])?
        {
            dirs.extend(more);
        }
        Ok(())
    }

    /// Whether `mount` may be mounted; the error says why not and which setting decides it.
    pub fn check(&self, mount: &Mount) -> Result<(), String> {
        let uri = mount.ufs_uri();
        match uri.scheme.as_str() {
            "file" => self.check_local(&format!("/{}", uri.key), &mount.display_ufs()),
            "s3" => self.check_endpoint(mount),
            _ => Ok(()),
        }
    }

    fn check_local(&self, dir: &str, shown: &str) -> Result<(), String> {
        let roots = match &self.local {
            LocalRoots::Any => return Ok(()),
            LocalRoots::Under(roots) if roots.is_empty() => {
                return Err(format!(
                    "{shown}: file:// mounts are not allowed on this Coordinator (allow a directory with --allow-local-ufs DIR)"
                ));
            }
            LocalRoots::Under(roots) => roots,
        };
        let real = canonical_or_ancestor(Path::new(dir)).map_err(|e| format!("{shown}: {e}"))?;
        if roots.iter().any(|r| real.starts_with(r)) {
            return Ok(());
        }
        let allowed: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
        Err(format!(
            "{shown} is not under a directory allowed by --allow-local-ufs ({}; it resolves to {})",
            allowed.join(", "),
            real.display()
        ))
    }

    fn check_endpoint(&self, mount: &Mount) -> Result<(), String> {
        let Some(patterns) = &self.endpoints else { return Ok(()) };
        // The endpoint as the UFS will use it: a secret reference (`env:NAME`, `file:/path`) resolved.
        let options = crate::secret_refs::resolve(&mount.options).map_err(|e| e.to_string())?;
        let s = S3Settings::parse(&options).map_err(|e| e.to_string())?;
        let endpoint = s.endpoint.clone().unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", s.region));
        let (scheme, rest) = match endpoint.split_once("://") {
            Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
            None => ("https".to_string(), endpoint.as_str()),
        };
        let refused = || {
            let allowed: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
            format!(
                "S3 endpoint {endpoint} of {} is not allowed by --allow-ufs-endpoint ({})",
                mount.display_ufs(),
                allowed.join(", ")
            )
        };
        let (host, port) = split_host_port(rest.trim_end_matches('/')).ok_or_else(refused)?;
        let port = match port {
            Some(p) => p.parse::<u16>().map_err(|_| refused())?,
            None => default_port(&scheme),
        };
        if patterns.iter().any(|p| p.matches(&scheme, &host, port)) { Ok(()) } else { Err(refused()) }
    }
}

/// `path` canonicalized; when it does not exist, its deepest existing ancestor canonicalized with the rest
/// appended (the rest has no `..`: UFS URIs refuse it).
fn canonical_or_ancestor(path: &Path) -> Result<PathBuf, String> {
    let mut rest = Vec::new();
    let mut at = path;
    loop {
        match std::fs::canonicalize(at) {
            Ok(real) => return Ok(rest.iter().rev().fold(real, |p, c| p.join(c))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                rest.push(at.file_name().ok_or_else(|| format!("cannot resolve {}", path.display()))?.to_owned());
                at = at.parent().ok_or_else(|| format!("cannot resolve {}", path.display()))?;
            }
            Err(e) => return Err(format!("cannot resolve {}: {e}", path.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MountOptions;

    fn mount(ufs: &str, opts: &[(&str, &str)]) -> Mount {
        let options: MountOptions = opts.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Mount::new("/m", ufs, options).unwrap()
    }

    fn endpoints(patterns: &[&str]) -> UfsPolicy {
        let p = patterns.iter().map(|p| EndpointPattern::parse(p).unwrap()).collect();
        UfsPolicy::new(LocalRoots::Any, Some(p))
    }

    #[test]
    fn local_roots_compare_canonical_paths() {
        let tmp = tempfile::tempdir().unwrap();
        let allowed = tmp.path().join("allowed");
        std::fs::create_dir_all(allowed.join("sub")).unwrap();
        std::fs::create_dir(tmp.path().join("other")).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("other"), allowed.join("link")).unwrap();
        let policy = UfsPolicy::new(LocalRoots::under(std::slice::from_ref(&allowed)).unwrap(), None);
        let file = |p: &Path| mount(&format!("file://{}", p.display()), &[]);
        assert!(policy.check(&file(&allowed)).is_ok());
        assert!(policy.check(&file(&allowed.join("sub"))).is_ok());
        assert!(policy.check(&file(&allowed.join("not-yet"))).is_ok(), "judged by its existing ancestor");
        let e = policy.check(&file(&allowed.join("link"))).unwrap_err();
        assert!(e.contains("--allow-local-ufs") && e.contains("other"), "a symlink out is refused: {e}");
        assert!(policy.check(&file(&tmp.path().join("other"))).is_err());
        assert!(policy.check(&file(Path::new("/etc"))).is_err());
        // A sibling whose name starts like the root is not under it.
        std::fs::create_dir(tmp.path().join("allowed2")).unwrap();
        assert!(policy.check(&file(&tmp.path().join("allowed2"))).is_err());
        let none = UfsPolicy::default().check(&file(&allowed)).unwrap_err();
        assert!(none.contains("not allowed") && none.contains("--allow-local-ufs"), "{none}");
        assert!(UfsPolicy::open().check(&file(Path::new("/etc"))).is_ok());
        assert!(LocalRoots::under(&[tmp.path().join("missing")]).is_err());
    }

    #[test]
    fn endpoint_patterns() {
        let p = endpoints(&["https://*.amazonaws.com", "http://127.0.0.1:9000", "http://minio.local:*"]);
        let s3 = |endpoint: Option<&str>| match endpoint {
            Some(e) => mount("s3://b/p", &[("s3.endpoint", e)]),
            None => mount("s3://b/p", &[]),
        };
        for ok in [
            None,
            Some("https://s3.eu-west-1.amazonaws.com"),
            Some("https://S3.AmazonAWS.com:443/"),
            Some("http://127.0.0.1:9000"),
            Some("http://minio.local:1234"),
        ] {
            assert!(p.check(&s3(ok)).is_ok(), "{ok:?}");
        }
        for bad in [
            "http://s3.amazonaws.com", // another scheme
            "https://amazonaws.com",   // `*.` needs one label more
            "https://evil.com",        // another host
            "https://s3.amazonaws.com.evil.com",
            "https://s3.amazonaws.com:8443", // not the default port
            "http://127.0.0.1:9001",
            "127.0.0.1:9000", // bare: https
        ] {
            let e = p.check(&s3(Some(bad))).unwrap_err();
            assert!(e.contains("--allow-ufs-endpoint"), "{bad}: {e}");
        }
        assert!(endpoints(&["http://*:*"]).check(&s3(Some("http://anything:1"))).is_ok());
        assert!(UfsPolicy::default().check(&s3(Some("http://anything:1"))).is_ok(), "no patterns: any endpoint");
        for bad in ["*.amazonaws.com", "ftp://x", "https://a.*.com", "https://x:port", "https://"] {
            assert!(EndpointPattern::parse(bad).is_err(), "{bad}");
        }
    }
}
