//! Logs that can be followed (issue 16), and the shell completions:
//!
//! - `loam completions bash` is a script bash loads (`bash -n`) that offers the sub-commands.
//! - `log-format = "json"` (here from the config file) makes every line of the log one JSON object.

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
