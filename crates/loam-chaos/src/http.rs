//! HTTP calls of the soak's control side (jobs, checks, readiness) made with `curl`, as an operator would:
//! one process per call, a bearer token, a cap on each call. The readers do not use this: each reads
//! through its own client (boto3, the `alluxio` client, `loam fs cat`, the kernel's FUSE).
//!
//! **Decision**: `curl` rather than an HTTP client library: the calls are few (a few per second), blocking
//! calls from plain threads keep the soak free of an async runtime, and a request is exactly what a
//! user would type.

use std::process::Command;

/// The cap of one call: a stopped etcd makes the Coordinator slow, not silent forever.
const MAX_TIME_SECS: &str = "15";

/// `method url` with an optional JSON body, sending `token`; the status and the body, or `Err` when
/// nothing answered (refused, timed out).
pub fn call(method: &str, url: &str, body: Option<&str>, token: &str) -> Result<(u16, String), String> {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-X", method, "--max-time", MAX_TIME_SECS, "-w", "\n%{http_code}"])
        .args(["-H", &format!("Authorization: Bearer {token}")]);
    if let Some(b) = body {
        cmd.args(["-H", "Content-Type: application/json", "--data-binary", b]);
    }
    let out = cmd.arg(url).output().map_err(|e| format!("cannot run curl: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let (body, code) = text.rsplit_once('\n').ok_or_else(|| format!("no status from curl: {text}"))?;
    let code = code.trim().parse().map_err(|_| format!("no status from curl: {text}"))?;
    Ok((code, body.to_string()))
}

/// [`call`] answering JSON; `Err` also when the body is not JSON.
pub fn json(method: &str, url: &str, body: Option<&str>, token: &str) -> Result<(u16, serde_json::Value), String> {
    let (code, text) = call(method, url, body, token)?;
    let v = serde_json::from_str(&text).map_err(|e| format!("{method} {url}: {code}, not JSON ({e}): {text}"))?;
    Ok((code, v))
}
