//! A distributed cluster on an etcd that serves TLS only, wants client certificates and has `auth enable`:
//! real `loam coordinator`, `loam worker` and CLI processes reach it with `--etcd-ca-cert`, `--etcd-cert`,
//! `--etcd-key`, `--etcd-user` and `--etcd-password-file`; a wrong password, a missing client certificate
//! or an untrusted CA stop a worker at start with exit 2 and a line naming the problem, never the password.

use crate::cluster::{Cluster, ETCD_PASSWORD};
use crate::process::{run_cli, strings};

#[test]
fn a_coordinator_workers_and_the_cli_join_through_tls_etcd_as_a_user() {
    let c = Cluster::start_secure(2);
    let text = c.ok(&["nodes"]);
    assert_eq!(text.matches("ONLINE").count(), 2, "{text}");
    c.mount_data();
    let bytes = c.write_file("secure/a.bin", 300_000, 7);
    // `loam fs cat` resolves the mount from etcd itself, with the same flags.
    let o = c.cli(&["fs", "cat", "/data/secure/a.bin"]);
    assert!(o.status.success(), "loam fs cat: {}", o.stderr);
    assert!(o.stdout == bytes, "the bytes read through the cluster are the file's");
}

/// `loam worker` with the cluster's etcd flags changed by `change`; must fail at start. Its stderr.
fn worker_refused(c: &Cluster, change: impl FnOnce(&mut Vec<String>)) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut flags = c.etcd_flags.clone();
    change(&mut flags);
    let mut args = strings(&["worker", "--etcd", &c.etcd_url(), "--coordinator", &c.coordinator_url()]);
    args.extend(strings(&["--host", "127.0.0.1", "--http-port", "0", "--s3-port", "0", "--data-dir"]));
    args.push(dir.path().display().to_string());
    args.extend(flags);
    let o = run_cli(&args);
    assert_eq!(o.status.code(), Some(2), "a worker with unusable etcd settings exits 2: {}", o.stderr);
    assert!(!o.stderr.contains(ETCD_PASSWORD), "the password never shows: {}", o.stderr);
    o.stderr
}

/// Replaces the value of `flag` in `flags` (or removes flag and value when `value` is None).
fn set(flags: &mut Vec<String>, flag: &str, value: Option<String>) {
    let i = flags.iter().position(|f| f == flag).unwrap_or_else(|| panic!("{flag} in {flags:?}"));
    match value {
        Some(v) => flags[i + 1] = v,
        None => {
            flags.drain(i..i + 2);
        }
    }
}

#[test]
fn a_wrong_password_a_missing_client_certificate_or_an_untrusted_ca_stop_the_start() {
    let c = Cluster::start_secure(0);
    let dir = c.ca.as_ref().expect("a TLS cluster").cert.parent().unwrap().to_path_buf();
    let wrong = dir.join("wrong-password");
    std::fs::write(&wrong, "hunter2-wrong\n").unwrap();
    let err = worker_refused(&c, |f| set(f, "--etcd-password-file", Some(wrong.display().to_string())));
    assert!(err.contains("as user loam") && err.contains("authentication failed"), "{err}");
    assert!(!err.contains("hunter2-wrong"), "{err}");

    let err = worker_refused(&c, |f| {
        set(f, "--etcd-cert", None);
        set(f, "--etcd-key", None);
    });
    assert!(err.contains("no client certificate was presented"), "{err}");

    let other = loam_testsupport::certs::TestCa::new("not-etcds-ca");
    let err = worker_refused(&c, |f| set(f, "--etcd-ca-cert", Some(other.cert.display().to_string())));
    assert!(err.to_lowercase().contains("unknown issuer") || err.contains("UnknownIssuer"), "{err}");

    let err = worker_refused(&c, |f| set(f, "--etcd-password-file", None));
    assert!(err.contains("etcd-password-file"), "{err}");
}
