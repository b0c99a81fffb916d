//! Secure by default (issue 12), with real processes: `loam local` makes its admin token on first start
//! (`./loam-data/admin-token`, 0600), prints it, and the CLI finds it by itself, so the walk-through needs
//! no extra step; without it the CLI gets a clear `401`. `loam coordinator` and `loam worker` refuse to
//! start without a way to check tokens. Anonymous reads stay on in `loam local` only on loopback.

use crate::http;
use crate::local_process::spawn_local;
use crate::process::{LOAM, loam};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

/// `loam` without any token setting or test token.
fn bare() -> Command {
    loam_testsupport::process::clean_env(Command::new(LOAM))
}

#[test]
fn loam_local_makes_an_admin_token_the_cli_finds_by_itself() {
    let cwd = tempfile::tempdir().unwrap();
    let ufs = tempfile::tempdir().unwrap();
    std::fs::write(ufs.path().join("f.txt"), b"hello").unwrap();
    let mut cmd = bare();
    cmd.current_dir(cwd.path());
    let l = spawn_local(cmd, &["--workers", "1"]);
    let token_file = cwd.path().join("loam-data/admin-token");
    let kept = std::fs::read_to_string(&token_file).unwrap();
    assert_eq!(kept.trim(), l.token, "the printed LOAM_TOKEN is the kept one");
    assert!(l.token.len() >= 32, "a long random token");
    assert_eq!(std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777, 0o600);

    let cli = |cwd: &std::path::Path, token: Option<&str>, args: &[&str]| {
        let mut c = bare();
        c.current_dir(cwd).env("LOAM_COORDINATOR", &l.coordinator).args(args);
        if let Some(t) = token {
            c.env("LOAM_TOKEN", t);
        }
        c.output().unwrap()
    };
    let ufs_uri = format!("file://{}", ufs.path().display());
    // In the directory `loam local` ran in: found by itself, as the README's walk-through runs.
    let o = cli(cwd.path(), None, &["mount", "add", "/data", &ufs_uri]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Elsewhere and without a token: a clear 401, and nothing changes.
    let elsewhere = tempfile::tempdir().unwrap();
    let o = cli(elsewhere.path(), None, &["mount", "remove", "/data"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("authentication required") && err.contains("401"), "{err}");
    let o = cli(elsewhere.path(), Some("wrong-token-0123456789"), &["mount", "list"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("401"));
    let o = cli(elsewhere.path(), Some(&l.token), &["mount", "list"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("/data"), "LOAM_TOKEN works anywhere");
    // Reads stay anonymous on loopback, as the unmodified Python clients need; the Coordinator does not.
    let (worker, _) = &l.workers[0];
    let read = http::get_as(&format!("{worker}/v1/info?path={ufs_uri}/f.txt"), None).unwrap();
    assert_eq!(read.status, 200, "{}", read.text());
    let listed = http::get_as(&format!("{}/api/v1/mount", l.coordinator), None).unwrap();
    assert_eq!(listed.status, 401);
}

#[test]
fn coordinator_and_worker_refuse_to_start_without_authentication() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().display().to_string();
    for args in [
        vec!["coordinator", "--data-dir", &data, "--port", "0"],
        vec!["worker", "--etcd", "http://127.0.0.1:1", "--data-dir", &data],
    ] {
        let o = bare().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("auth-token-file") && err.contains("authenticated"), "{err}");
    }
    // A token file with no `cluster` line: the node could not call the others.
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "admin admin-0123456789abcdef\n").unwrap();
    let o = bare().args(["coordinator", "--data-dir", &data, "--auth-token-file"]).arg(&tokens).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("cluster") && !err.contains("admin-0123456789abcdef"), "{err}");
    // A JWKS needs an audience.
    let o = bare()
        .args(["coordinator", "--data-dir", &data, "--jwks-file", "/nonexistent", "--auth-token-file"])
        .arg(&tokens)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("jwt-audience"));
}

#[test]
fn loam_local_keeps_anonymous_reads_only_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().display().to_string();
    for (host, want) in [("127.0.0.1", "anonymous-read = true"), ("0.0.0.0", "anonymous-read = false")] {
        let o = loam().args(["local", "--data-dir", &data, "--host", host, "--print-config"]).output().unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains(want), "--host {host}: {out}");
    }
}
