//! What a real `loam local` writes (issue 12), its log (stderr) going to a file the test reads:
//!
//! - **No mount secret reaches any output.** An S3 mount with literal keys, on an S3 server that checks
//!   signatures, is used every way there is — mounted, refused (a wrong secret, two secret aliases that
//!   disagree), listed (API and CLI), loaded, read, listed and read with `loam fs`, then loaded and read
//!   again after the S3 server is gone — under `RUST_LOG=trace`; neither key appears in the process's
//!   stdout or log, any API answer, or the CLI's output. The log does show the signer at work, so the
//!   check is not vacuous.
//! - **Client errors write no warning.** Requests that are the client's fault (bad JSON, an unknown mount,
//!   a missing or weak token, an unknown endpoint, bad paths, a missing file, a name over the file
//!   system's limit, the S3 API's refusals) each get their 4xx (the worker's "File does not exist" is
//!   Alluxio's 500) and not one WARN or ERROR line, on the Coordinator, a worker and its S3 API; each
//!   surface logs its refusals at debug.

use crate::http::{self, Answer};
use crate::local_process::{Local, cli, spawn_local_to};
use crate::process::loam;
use loam_testsupport::S3TestServer;
use loam_testsupport::auth::{ALL_ROLES, READ};
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// `loam local` with one worker and `RUST_LOG=<rust_log>`, data under `dir`; its log is `<dir>/local.log`.
fn local_logged(dir: &Path, rust_log: &str) -> (Local, PathBuf) {
    let log = dir.join("local.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut cmd = loam();
    cmd.env("RUST_LOG", rust_log);
    let data = dir.join("data").display().to_string();
    (spawn_local_to(cmd, &["--workers", "1", "--data-dir", &data], Stdio::from(file)), log)
}

/// A CLI run's stdout and stderr, and whether it succeeded.
fn run(l: &Local, args: &[&str]) -> (bool, String) {
    let o = cli(l, args);
    (o.status.success(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
}

fn json_as(method: &str, url: &str, token: Option<&str>, body: &str) -> Answer {
    http::send_as(method, url, token, Some(("application/json", body.as_bytes()))).unwrap()
}

#[test]
fn no_mount_secret_reaches_an_answer_the_cli_or_the_log() {
    const BUCKET: &str = "loam-secrets";
    let s3 = S3TestServer::start_signed(&[BUCKET]);
    let data = vec![7u8; 50_000];
    s3.put_object(BUCKET, "dir/obj.bin", &data);
    s3.put_object(BUCKET, "dir/late.bin", b"never read while the server is up");
    let (access, secret) = (s3.access_key().to_string(), s3.secret_key().to_string());
    let dir = tempfile::tempdir().unwrap();
    let (l, log) = local_logged(dir.path(), "trace");
    let (coordinator, worker) = (l.coordinator.clone(), l.workers[0].0.clone());
    let mut seen = Vec::new();
    let s3_opts = |secret_options: &[(&str, &str)]| -> Vec<String> {
        let mut args = vec![format!("alluxio.underfs.s3.endpoint={}", s3.endpoint())];
        args.push("alluxio.underfs.s3.disable.dns.buckets=true".into());
        args.push(format!("s3a.accessKeyId={access}"));
        args.extend(secret_options.iter().map(|(k, v)| format!("{k}={v}")));
        args.iter().flat_map(|o| ["-o".to_string(), o.clone()]).collect()
    };
    let mount = |path: &str, secret_options: &[(&str, &str)]| {
        let opts = s3_opts(secret_options);
        let mut args = vec!["mount", "add", path, "s3://loam-secrets/"];
        args.extend(opts.iter().map(String::as_str));
        run(&l, &args)
    };

    // Refused with a wrong secret and with two secret aliases that disagree — both answers name the
    // problem, not the values; then mounted with the right one (the check's requests are signed).
    let wrong = "wrong-secret-4e1d9a7c";
    let (ok, out) = mount("/wrong", &[("s3a.secretKey", wrong)]);
    assert!(!ok && out.contains("400") && out.contains("SignatureDoesNotMatch"), "{out}");
    assert!(!out.contains(wrong), "{out}");
    seen.push(out);
    let (ok, out) = mount("/clash", &[("s3a.secretKey", &secret), ("s3.secretKey", wrong)]);
    assert!(!ok && out.contains("s3a.secretKey and s3.secretKey disagree"), "{out}");
    assert!(!out.contains(wrong), "{out}");
    seen.push(out);
    let (ok, out) = mount("/s3", &[("s3a.secretKey", &secret)]);
    assert!(ok, "{out}");
    seen.push(out);

    // Listed every way; loaded; read through the worker's HTTP API and with `loam fs`.
    for args in [&["mount", "list"][..], &["--json", "mount", "list"], &["fs", "ls", "/s3/dir"]] {
        let (ok, out) = run(&l, args);
        assert!(ok, "{args:?}: {out}");
        seen.push(out);
    }
    for url in [format!("{coordinator}/api/v1/mount"), format!("{coordinator}/api/v1/mount?path=/s3")] {
        let a = http::get(&url).unwrap();
        assert_eq!(a.status, 200, "{}", a.text());
        seen.push(a.text());
    }
    let (ok, out) = run(&l, &["--json", "job", "load", "--path", "/s3/dir/obj.bin", "--sync"]);
    assert!(ok && out.contains("SUCCEEDED"), "{out}");
    seen.push(out);
    assert_eq!(http::range_read(&worker, "s3://loam-secrets/dir/obj.bin", data.len()).unwrap(), data);
    let (ok, out) = run(&l, &["fs", "stat", "/s3/dir/obj.bin"]);
    assert!(ok, "{out}");
    seen.push(out);

    // The S3 server goes away: a load and a read fail, and their errors are logged and answered.
    drop(s3);
    let (ok, out) = run(&l, &["--json", "job", "load", "--path", "/s3/dir", "--sync"]);
    assert!(!out.contains("SUCCEEDED"), "the load cannot succeed without its UFS: {ok} {out}");
    seen.push(out);
    let a = http::range_read(&worker, "s3://loam-secrets/dir/late.bin", 10).unwrap_err();
    seen.push(a);
    let (ok, out) = run(&l, &["fs", "cat", "/s3/dir/late.bin"]);
    assert!(!ok, "{out}");
    seen.push(out);
    let (_, out) = run(&l, &["--json", "job", "list"]);
    seen.push(out);

    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(log_text.contains("Trying credential provider"), "the signer's debug lines are in the log");
    seen.push(l.banner.join("\n"));
    seen.push(log_text);
    for (i, text) in seen.iter().enumerate() {
        for (what, value) in [("secret key", &secret), ("access key id", &access)] {
            if let Some(at) = text.find(value.as_str()) {
                let around = &text[at.saturating_sub(300)..(at + value.len() + 100).min(text.len())];
                panic!("the {what} is in output #{i}: …{around}…");
            }
        }
    }
}

#[test]
fn client_errors_write_no_warning_line() {
    let dir = tempfile::tempdir().unwrap();
    let ufs = dir.path().join("ufs");
    std::fs::create_dir_all(&ufs).unwrap();
    std::fs::write(ufs.join("f.txt"), b"hello").unwrap();
    let (l, log) = local_logged(dir.path(), "debug");
    let (c, w, s3) = (l.coordinator.clone(), l.workers[0].0.clone(), l.s3[0].clone());
    let ufs_uri = format!("file://{}", ufs.display());
    let mount = format!(r#"{{"path": "/data", "ufs": "{ufs_uri}"}}"#);
    assert_eq!(json_as("POST", &format!("{c}/api/v1/mount"), Some(ALL_ROLES), &mount).status, 200);
    let before = std::fs::read_to_string(&log).unwrap().lines().count();

    let long_name = "n".repeat(300);
    let get = |url: String, token: Option<&str>| http::send_as("GET", &url, token, None).unwrap();
    let refused: Vec<(&str, u16, Answer)> = vec![
        ("bad JSON", 400, json_as("POST", &format!("{c}/api/v1/mount"), Some(ALL_ROLES), r#"{"path": "#)),
        (
            "not a mount point",
            400,
            json_as("POST", &format!("{c}/api/v1/mount"), Some(ALL_ROLES), r#"{"path": "/a/b", "ufs": "file:///tmp"}"#),
        ),
        ("no token", 401, json_as("POST", &format!("{c}/api/v1/mount"), None, &mount)),
        ("a bad token", 401, get(format!("{c}/api/v1/mount"), Some("not-a-token-0123456789"))),
        (
            "read token, admin op",
            403,
            json_as("DELETE", &format!("{c}/api/v1/mount"), Some(READ), r#"{"path": "/data"}"#),
        ),
        ("unknown mount", 404, get(format!("{c}/api/v1/mount?path=/nope"), Some(ALL_ROLES))),
        ("unknown endpoint", 404, get(format!("{c}/api/v1/no-such-thing"), Some(ALL_ROLES))),
        (
            "load of an unmounted path",
            400,
            json_as("POST", &format!("{c}/api/v1/load"), Some(ALL_ROLES), r#"{"paths": ["/nope"]}"#),
        ),
        (
            "not JSON",
            415,
            http::send_as(
                "POST",
                &format!("{c}/api/v1/mount"),
                Some(ALL_ROLES),
                Some(("text/plain", mount.as_bytes())),
            )
            .unwrap(),
        ),
        ("worker: relative path", 400, get(format!("{w}/v1/info?path=relative"), Some(ALL_ROLES))),
        // Alluxio's clients read a 500 "File does not exist" as not-found (the spec keeps it).
        ("worker: missing file", 500, get(format!("{w}/v1/info?path={ufs_uri}/missing.txt"), Some(ALL_ROLES))),
        ("worker: name too long", 400, get(format!("{w}/v1/info?path={ufs_uri}/{long_name}"), Some(ALL_ROLES))),
        ("worker: bad file id", 400, get(format!("{w}/v1/range/not-an-id?offset=0&length=1"), Some(ALL_ROLES))),
        ("worker: unknown endpoint", 404, get(format!("{w}/v1/no-such-thing"), Some(ALL_ROLES))),
        ("worker: internal, no token", 401, json_as("POST", &format!("{w}/v1/internal/invalidate"), None, "{}")),
        (
            "worker: internal, read token",
            403,
            json_as("POST", &format!("{w}/v1/internal/invalidate"), Some(READ), "{}"),
        ),
        (
            "worker: write, read token",
            403,
            json_as("POST", &format!("{w}/v1/mkdir/0?ufsFullPath={ufs_uri}/d"), Some(READ), "{}"),
        ),
        ("s3: no such bucket", 404, get(format!("{s3}/no-such-bucket/k"), None)),
        (
            "s3: unsigned write",
            403,
            http::send_as("PUT", &format!("{s3}/data/new.txt"), None, Some(("application/octet-stream", b"x")))
                .unwrap(),
        ),
    ];
    for (what, status, answer) in &refused {
        assert_eq!(answer.status, *status, "{what}: {}", answer.text());
    }
    assert!(!ufs.join("d").exists() && !ufs.join("new.txt").exists(), "nothing changed");

    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().skip(before).collect();
    let warnings: Vec<&&str> =
        lines.iter().filter(|l| matches!(l.split_whitespace().nth(1), Some("WARN" | "ERROR"))).collect();
    assert!(warnings.is_empty(), "client errors logged as warnings:\n{warnings:#?}");
    // They are logged, at debug, by each surface's edge: the log is the process's and the refusals reached it.
    let edges = [
        "loam_auth::http: refused",
        "loam_coordinator::api::error: request refused",
        "loam_worker::http_api::error: request refused",
        "loam_worker::s3_api::auth: S3 request refused",
    ];
    for edge in edges {
        assert!(lines.iter().any(|l| l.contains(" DEBUG ") && l.contains(edge)), "no debug line of {edge}:\n{text}");
    }
}
