//! A minimal blocking HTTP/1.0 client over `std::net` (GET, and any method with a body), for talking to
//! the coordinator and the workers from test threads without an async runtime. HTTP/1.0 makes the server close the connection after the
//! answer, so the body is simply everything after the headers, streamed or not. Every socket has a
//! generous timeout so a hung server fails the test instead of hanging it.

use loam_client::reader::encode_query;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// How long one request may take on a loaded machine.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// An HTTP answer.
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `GET url` (`http://host:port/path?query`) with the test token of every role; `Err` when the server
/// cannot be reached or the answer is not HTTP.
pub fn get(url: &str) -> Result<Answer, String> {
    get_as(url, Some(loam_testsupport::auth::ALL_ROLES))
}

/// `GET url` sending `token` (none: anonymous).
pub fn get_as(url: &str, token: Option<&str>) -> Result<Answer, String> {
    send_as("GET", url, token, None)
}

/// `method url` sending `token` (none: anonymous) and `body` (its `Content-Type` and bytes), if any.
pub fn send_as(method: &str, url: &str, token: Option<&str>, body: Option<(&str, &[u8])>) -> Result<Answer, String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| format!("not an http URL: {url}"))?;
    let (host, path) = match rest.split_once('/') {
        Some((h, p)) => (h, format!("/{p}")),
        None => (rest, "/".to_string()),
    };
    let run = || -> std::io::Result<Vec<u8>> {
        let mut s = TcpStream::connect(host)?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        s.set_write_timeout(Some(IO_TIMEOUT))?;
        let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
        let content = body.map(|(ct, b)| format!("Content-Type: {ct}\r\nContent-Length: {}\r\n", b.len()));
        write!(s, "{method} {path} HTTP/1.0\r\nHost: {host}\r\n{auth}{}\r\n", content.unwrap_or_default())?;
        s.write_all(body.map(|(_, b)| b).unwrap_or_default())?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)?;
        Ok(raw)
    };
    let raw = run().map_err(|e| format!("{method} {url}: {e}"))?;
    let split =
        raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| format!("{method} {url}: no HTTP header"))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{method} {url}: bad status line {head:?}"))?;
    Ok(Answer { status, body: raw[split + 4..].to_vec() })
}

/// `GET url`, which must answer 200; its body.
pub fn get_ok(url: &str) -> Result<Vec<u8>, String> {
    let a = get(url)?;
    if a.status != 200 {
        return Err(format!("GET {url}: HTTP {} {}", a.status, a.text()));
    }
    Ok(a.body)
}

/// The whole of `ufs_uri` read through the worker at `worker_url` (`/v1/range`), as a client that knows
/// the file's UFS URI reads it.
pub fn range_read(worker_url: &str, ufs_uri: &str, len: usize) -> Result<Vec<u8>, String> {
    let id = loam_core::id::file_id(ufs_uri);
    get_ok(&format!("{worker_url}/v1/range/{id}?ufsFullPath={}&offset=0&length={len}", encode_query(ufs_uri)))
}

/// The primary worker (`host:port`) the worker at `worker_url` names for `path` (`/v1/node`).
pub fn node_of(worker_url: &str, path: &str) -> Result<String, String> {
    let body = get_ok(&format!("{worker_url}/v1/node?path={}", encode_query(path)))?;
    let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| format!("/v1/node answer: {e}"))?;
    match (v["Host"].as_str(), v["HttpServerPort"].as_u64()) {
        (Some(h), Some(p)) => Ok(format!("{h}:{p}")),
        _ => Err(format!("/v1/node answer lacks Host/HttpServerPort: {v}")),
    }
}

/// The sum of a Prometheus sample over its label sets (`name` or `name{…}` lines); 0 when absent.
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(series, _)| *series == name || series.strip_prefix(name).is_some_and(|r| r.starts_with('{')))
        .filter_map(|(_, v)| v.trim().parse::<f64>().ok())
        .sum()
}
