//! Logs that can be followed (issue 16), and the shell completions:
//!
//! - `loam completions bash` is a script bash loads (`bash -n`) that offers the sub-commands.
//! - `log-format = "json"` (here from the config file) makes every line of the log one JSON object.
//! - Request ids: a well-formed `x-request-id` is answered back (S3: in `x-amz-request-id` too) and is on
//!   the JSON lines the request causes; a malformed one is replaced, never echoed.

use crate::local_process::spawn_local_to;
use crate::process::loam;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// `loam local` with one worker, `RUST_LOG=info` and `extra` flags, data under `dir`; its log is
/// `<dir>/local.log`.
fn local_logged(dir: &Path, extra: &[&str]) -> (crate::local_process::Local, PathBuf) {
    let log = dir.join("local.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut cmd = loam();
    cmd.env("RUST_LOG", "info");
    let data = dir.join("data").display().to_string();
    let args: Vec<&str> = ["--workers", "1", "--data-dir", &data].into_iter().chain(extra.iter().copied()).collect();
    (spawn_local_to(cmd, &args, Stdio::from(file)), log)
}

/// The log's lines, each parsed as JSON; panics on one that is not.
pub fn json_lines(log: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(log).unwrap();
    let parse = |l: &str| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
    text.lines().filter(|l| !l.trim().is_empty()).map(parse).collect()
}

#[test]
fn bash_completions_load_and_name_the_commands() {
    let out = loam().args(["completions", "bash"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let script = String::from_utf8(out.stdout).unwrap();
    for command in ["coordinator", "worker", "local", "fs"] {
        assert!(script.split(|c: char| !c.is_ascii_alphanumeric() && c != '-').any(|w| w == command), "{command}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("loam.bash");
    std::fs::write(&path, &script).unwrap();
    let check = std::process::Command::new("bash").arg("-n").arg(&path).output().unwrap();
    assert!(check.status.success(), "bash -n: {}", String::from_utf8_lossy(&check.stderr));
    for shell in ["zsh", "fish"] {
        let out = loam().args(["completions", shell]).output().unwrap();
        assert!(out.status.success() && out.stdout.windows(11).any(|w| w == b"coordinator"), "{shell}");
    }
    let bad = loam().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2), "an unknown shell is a usage error");
}

#[test]
fn the_config_file_turns_json_logs_on() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("loam.toml");
    std::fs::write(&config, "log-format = \"json\"\n").unwrap();
    let (l, log) = local_logged(dir.path(), &["--config", config.to_str().unwrap()]);
    drop(l);
    let lines = json_lines(&log);
    assert!(!lines.is_empty(), "info lines were written");
    for line in &lines {
        assert!(line["level"].is_string() && line["fields"].is_object() && line["timestamp"].is_string(), "{line}");
    }
}

/// `curl` of `url` sending `x-request-id: <id>`; the response's headers, names lower-cased.
fn headers_for(url: &str, id: &str) -> Vec<(String, String)> {
    let out = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-D", "-", "-H", &format!("x-request-id: {id}"), url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect()
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// The request ids of a JSON line's spans.
fn ids_of(line: &serde_json::Value) -> Vec<String> {
    let spans = line["spans"].as_array().cloned().unwrap_or_default();
    spans.iter().filter_map(|s| s["request_id"].as_str().map(String::from)).collect()
}

#[test]
fn request_ids_are_answered_and_logged() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("local.log");
    let mut cmd = loam();
    cmd.env("RUST_LOG", "debug");
    let data = dir.path().join("data").display().to_string();
    let args = ["--workers", "1", "--data-dir", &data, "--log-format", "json"];
    let l = spawn_local_to(cmd, &args, Stdio::from(std::fs::File::create(&log).unwrap()));
    let s3 = headers_for(&format!("{}/no-such-bucket/k", l.s3[0]), "s3-7");
    assert_eq!(header(&s3, "x-request-id"), Some("s3-7"), "{s3:?}");
    assert_eq!(header(&s3, "x-amz-request-id"), Some("s3-7"), "one id for both headers");
    // A request the Coordinator refuses (no token): logged at debug, inside the request's span.
    let rest = headers_for(&format!("{}/api/v1/mount", l.coordinator), "abc-123");
    assert_eq!(header(&rest, "x-request-id"), Some("abc-123"), "{rest:?}");
    for bad in ["a b", &"x".repeat(200)] {
        let h = headers_for(&format!("{}/api/v1/mount", l.coordinator), bad);
        let id = header(&h, "x-request-id").expect("an id is always answered");
        assert!(id.len() == 16 && id != bad, "{bad:?} replaced by a new id, got {id:?}");
    }
    let none = headers_for(&format!("{}/no-such-bucket/k", l.s3[0]), "");
    assert_eq!(header(&none, "x-request-id").map(str::len), Some(16), "made when none is sent");
    drop(l);
    let lines = json_lines(&log);
    assert!(lines.iter().any(|line| ids_of(line).iter().any(|id| id == "abc-123")), "a line carries abc-123");
    assert!(!lines.iter().any(|line| ids_of(line).iter().any(|id| id == "a b")), "never echoed into the log");
}
