//! `loam-bench requests --client wrk`: the same random `Range` requests sent by wrk (C, one event loop per
//! thread) instead of reqwest, so that the client takes less of the two cores the server shares with it —
//! wrk is what the issue's first figures were taken with.
//!
//! A Lua script per variant draws each request's range (aligned to `--request-size`, uniform over the
//! file) and counts every answer whose status or body length is not the range's; the run fails on any.
//! Bytes are not compared here (wrk's Lua sees the body, not the file): the reqwest client compares one
//! answer in 64 with the file, and the worker checks every block it serves against its checksum.

use super::Target;
use anyhow::{Context, bail};
use std::path::Path;
use std::time::Duration;

/// What one wrk run measured.
#[derive(Debug, Clone, Copy)]
pub struct WrkRun {
    pub requests: u64,
    pub per_second: f64,
}

/// Runs wrk against `target` for `seconds` with `connections` over `threads`; fails on any wrong answer.
#[allow(clippy::too_many_arguments)]
pub fn run(
    wrk: &Path,
    dir: &Path,
    target: &Target,
    slots: u64,
    request_size: u64,
    connections: usize,
    threads: usize,
    seconds: Duration,
) -> anyhow::Result<WrkRun> {
    let script = dir.join("requests.lua");
    std::fs::write(&script, lua(target, slots, request_size))?;
    let out = std::process::Command::new(wrk)
        .arg(format!("--threads={}", threads.clamp(1, connections)))
        .arg(format!("--connections={connections}"))
        .arg(format!("--duration={}s", seconds.as_secs().max(1)))
        .arg(format!("--script={}", script.display()))
        .arg(&target.base)
        .output()
        .with_context(|| format!("running {} (apt-get install wrk)", wrk.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    parse(&text)
}

/// The script: random aligned ranges, and a count of wrong answers printed at the end.
fn lua(target: &Target, slots: u64, request_size: u64) -> String {
    let auth = match &target.token {
        Some(t) => format!("[\"Authorization\"] = \"Bearer {t}\""),
        None => String::new(),
    };
    let (want, query) = if target.query { (200, "true") } else { (206, "false") };
    format!(
        r#"local slots, rs, want, query = {slots}, {request_size}, {want}, {query}
local threads, n = {{}}, 0
function setup(thread)
  n = n + 1
  thread:set("id", n)
  table.insert(threads, thread)
end
function init(args)
  math.randomseed(id * 7919)
  bad, path = 0, wrk.path
end
function request()
  local lo = math.random(0, slots - 1) * rs
  if query then
    return wrk.format("GET", path .. "&offset=" .. lo .. "&length=" .. rs, {{ {auth} }})
  end
  return wrk.format("GET", path, {{ ["Range"] = "bytes=" .. lo .. "-" .. (lo + rs - 1), {auth} }})
end
function response(status, headers, body)
  if status ~= want or #body ~= rs then bad = bad + 1 end
end
function done(summary, latency, requests)
  local b = 0
  for _, t in ipairs(threads) do b = b + t:get("bad") end
  io.write(string.format("wrong answers: %d\n", b))
end
"#
    )
}

/// Reads wrk's report: "N requests in …", "Requests/sec: R", and the script's "wrong answers: B".
fn parse(text: &str) -> anyhow::Result<WrkRun> {
    let field = |line: &str, at: usize| line.split_whitespace().nth(at).map(str::to_string);
    let requests = text.lines().find(|l| l.contains(" requests in ")).and_then(|l| field(l, 0));
    let per_second = text.lines().find(|l| l.starts_with("Requests/sec:")).and_then(|l| field(l, 1));
    let wrong = text.lines().find(|l| l.starts_with("wrong answers:")).and_then(|l| field(l, 2));
    let (Some(requests), Some(per_second), Some(wrong)) = (requests, per_second, wrong) else {
        bail!("unexpected wrk report:\n{text}");
    };
    let errors = text.lines().find(|l| l.contains("Socket errors") || l.contains("Non-2xx"));
    if wrong != "0" || errors.is_some() {
        bail!("wrk saw {wrong} wrong answers ({}):\n{text}", errors.unwrap_or("no socket errors"));
    }
    Ok(WrkRun { requests: requests.parse()?, per_second: per_second.parse()? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_report_and_refuses_wrong_answers() {
        let ok = "Running 1s test @ http://x\n  2 threads and 4 connections\n  1234 requests in 1.00s, 5 MB read\n\
                  Requests/sec:   1233.50\nTransfer/sec:      5MB\nwrong answers: 0\n";
        let r = parse(ok).unwrap();
        assert_eq!((r.requests, r.per_second), (1234, 1233.5));
        assert!(parse(&ok.replace("answers: 0", "answers: 3")).is_err());
        assert!(parse(&ok.replace("wrong answers: 0\n", "  Non-2xx or 3xx responses: 9\nwrong answers: 0\n")).is_err());
        assert!(parse("garbage").is_err());
    }
}
