//! Static membership: a file that lists the workers, for clusters (or clients) without etcd and without
//! the Coordinator's nodes API. One worker per line, `host:port` (the worker HTTP port; a bare `host`
//! means port [`DEFAULT_HTTP_PORT`]); `#` starts a comment, blank lines are ignored:
//!
//! ```text
//! # the cache workers of rack 12
//! cache-01.example.com:28080
//! cache-02.example.com:28080
//! [fd00::3]:28080
//! ```
//!
//! A listed worker's identity is the name-based UUID v3 of its host name, as Alluxio's static worker
//! list does, so a static ring places files exactly like Alluxio's clients given the same list. Since
//! the identity comes from the host alone, a host may be listed once: two entries for one host would be
//! one point set on the ring, and the file is rejected instead of silently merging them.

use crate::membership::{MembershipView, WorkerEndpoint};
use loam_core::{ErrorKind, WorkerId};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The worker HTTP port assumed for a line that names only a host.
pub const DEFAULT_HTTP_PORT: u16 = 28080;

/// Why a static worker list cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StaticMembersError {
    /// The file could not be read.
    #[error("cannot read the workers file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line is not `host[:port]`, or repeats a host.
    #[error("{origin}:{line}: {message}")]
    Syntax {
        /// The file (or `<text>` when parsing a string).
        origin: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong with the line.
        message: String,
    },
    /// The file lists no worker.
    #[error("{0}: lists no worker (expected one host:port per line)")]
    Empty(String),
}

impl StaticMembersError {
    /// The error's kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            StaticMembersError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            StaticMembersError::Io { .. } => ErrorKind::Unavailable,
            StaticMembersError::Syntax { .. } | StaticMembersError::Empty(_) => ErrorKind::InvalidInput,
        }
    }
}

/// Reads the worker list at `path`.
pub fn load(path: &Path) -> Result<Vec<WorkerEndpoint>, StaticMembersError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| StaticMembersError::Io { path: path.to_path_buf(), source })?;
    parse(&text, &path.display().to_string())
}

/// A fixed membership view of the workers listed at `path`.
pub fn view(path: &Path, virtual_nodes: u32) -> Result<MembershipView, StaticMembersError> {
    Ok(MembershipView::fixed(load(path)?, virtual_nodes))
}

/// Parses a worker list; `origin` names it in error messages (usually the file's path).
pub fn parse(text: &str, origin: &str) -> Result<Vec<WorkerEndpoint>, StaticMembersError> {
    let mut workers = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let entry = raw.split('#').next().unwrap_or("").trim();
        if entry.is_empty() {
            continue;
        }
        let err = |message: String| StaticMembersError::Syntax { origin: origin.to_string(), line, message };
        let (host, port) = split_host_port(entry).map_err(err)?;
        if let Some(first) = seen.insert(host.to_ascii_lowercase(), line) {
            return Err(err(format!(
                "host {host:?} is already listed on line {first} (a worker's identity comes from its host name, \
                 so each host may be listed once)"
            )));
        }
        workers.push(WorkerEndpoint {
            id: WorkerId::from_host_name(&host),
            host,
            http_port: port,
            s3_port: 0,
            tls: false,
        });
    }
    if workers.is_empty() {
        return Err(StaticMembersError::Empty(origin.to_string()));
    }
    Ok(workers)
}

/// Splits `host[:port]`; an IPv6 address must be bracketed (`[fd00::3]:28080`) and keeps its brackets,
/// which is the form URLs need.
fn split_host_port(entry: &str) -> Result<(String, u16), String> {
    if entry.contains(char::is_whitespace) {
        return Err(format!("{entry:?} is not host:port (one worker per line, no spaces)"));
    }
    let (host, port) = if entry.starts_with('[') {
        let close = entry.find(']').ok_or_else(|| format!("{entry:?}: unclosed '[' in an IPv6 address"))?;
        let (host, rest) = entry.split_at(close + 1);
        match rest {
            "" => (host, None),
            _ => match rest.strip_prefix(':') {
                Some(p) => (host, Some(p)),
                None => return Err(format!("{entry:?}: expected ':port' after the IPv6 address")),
            },
        }
    } else {
        match entry.split_once(':') {
            Some((h, p)) if p.contains(':') => {
                return Err(format!("{entry:?}: an IPv6 address must be bracketed, as in [{h}:{p}]:28080"));
            }
            Some((h, p)) => (h, Some(p)),
            None => (entry, None),
        }
    };
    if host.is_empty() || host == "[]" {
        return Err(format!("{entry:?}: the host is empty"));
    }
    let port = match port {
        None => DEFAULT_HTTP_PORT,
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return Err(format!("{entry:?}: invalid port {p:?} (expected 1-65535)")),
            Ok(n) => n,
        },
    };
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_comments_and_blank_lines() {
        let text = "# workers\n\ncache-01:28080\n  cache-02:28090   # second rack\n\t\ncache-03\n[fd00::3]:8080\n";
        let w = parse(text, "workers.txt").unwrap();
        let got: Vec<(&str, u16)> = w.iter().map(|w| (w.host.as_str(), w.http_port)).collect();
        assert_eq!(
            got,
            [("cache-01", 28080), ("cache-02", 28090), ("cache-03", DEFAULT_HTTP_PORT), ("[fd00::3]", 8080)]
        );
        assert_eq!(w[3].http_base(), "http://[fd00::3]:8080");
    }

    #[test]
    fn identities_are_uuid_v3_of_the_host_name() {
        let w = parse("worker-host-7:28080\n", "f").unwrap();
        assert_eq!(w[0].id, WorkerId::from_host_name("worker-host-7"));
        assert_eq!(w[0].id.uuid().get_version_num(), 3);
        // The port is not part of the identity: the same host on another port is the same worker.
        let again = parse("worker-host-7:1234\n", "f").unwrap();
        assert_eq!(again[0].id, w[0].id);
    }

    #[test]
    fn matches_alluxio_identities_of_the_ring_vectors() {
        // Compiled in: a path fixed at build time goes stale when the shared target dir serves another checkout.
        let hosts = include_str!("../../loam-core/tests/vectors/hash-ring/workerHostnames.json");
        let list = include_str!("../../loam-core/tests/vectors/hash-ring/workerList.json");
        let hosts: Vec<String> = serde_json::from_str(hosts).unwrap();
        let text: String = hosts.iter().map(|h| format!("{h}:28080\n")).collect();
        let mut ours: Vec<String> = parse(&text, "f").unwrap().iter().map(|w| w.id.identity().identifier).collect();
        let mut theirs: Vec<String> = serde_json::from_str::<Vec<serde_json::Value>>(list)
            .unwrap()
            .iter()
            .map(|v| v["identifier"].as_str().unwrap().to_string())
            .collect();
        ours.sort();
        theirs.sort();
        assert_eq!(ours, theirs);
    }

    fn error_of(text: &str) -> String {
        parse(text, "w.txt").unwrap_err().to_string()
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(error_of("a:1\n\nb:http\n"), "w.txt:3: \"b:http\": invalid port \"http\" (expected 1-65535)");
        assert_eq!(error_of("# c\na:0\n"), "w.txt:2: \"a:0\": invalid port \"0\" (expected 1-65535)");
        assert_eq!(error_of("a:99999\n"), "w.txt:1: \"a:99999\": invalid port \"99999\" (expected 1-65535)");
        assert_eq!(error_of("a:1\n:28080\n"), "w.txt:2: \":28080\": the host is empty");
        assert!(error_of("a b:1\n").starts_with("w.txt:1: \"a b:1\" is not host:port"));
        assert!(error_of("fd00::3\n").contains("must be bracketed"));
        assert!(error_of("[fd00::3\n").contains("unclosed"));
        assert!(error_of("[fd00::3]x\n").contains("expected ':port'"));
        let dup = error_of("a:1\nb:2\nA:3\n");
        assert!(dup.starts_with("w.txt:3: host \"A\" is already listed on line 1"), "{dup}");
    }

    #[test]
    fn an_empty_list_is_an_error() {
        let e = parse("# nothing\n\n", "w.txt").unwrap_err();
        assert!(matches!(e, StaticMembersError::Empty(_)));
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn load_reads_a_file_and_reports_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("workers");
        std::fs::write(&path, "h1:1\nh2:2\n").unwrap();
        let v = view(&path, 5).unwrap();
        assert_eq!(v.ring().lookup("s3://b/k", 2).len(), 2);
        let e = load(&dir.path().join("missing")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(e.to_string().contains("missing"), "{e}");
    }
}
