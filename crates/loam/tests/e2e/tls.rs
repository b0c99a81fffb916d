//! `loam local` with TLS on every listener (certificates from `loam_testsupport::tls`): the CLI with
//! `--ca-cert` mounts and reads (CLI → Coordinator → workers, all HTTPS), curl reaches the Coordinator
//! and a worker, boto3 reads through the S3 API; without the CA every client refuses the server; with a
//! client CA (mutual TLS) the members still talk to each other and a client without a certificate is
//! refused.

use crate::local_process::{Local, start_local};
use crate::process::LOAM;
use loam_testsupport::tls::TestCa;
use std::path::Path;
use std::process::{Command, Output};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The CLI against `l`, trusting `ca` (`LOAM_CA_CERT`) when given.
fn cli(l: &Local, ca: Option<&Path>, args: &[&str]) -> Output {
    let mut c = Command::new(LOAM);
    c.env("LOAM_COORDINATOR", &l.coordinator).env("LOAM_TOKEN", &l.token).env_remove("LOAM_CA_CERT").args(args);
    if let Some(ca) = ca {
        c.env("LOAM_CA_CERT", ca);
    }
    c.output().expect("run loam")
}

fn ok(o: Output, what: &str) -> String {
    assert!(o.status.success(), "{what} failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

/// `curl` with `l`'s admin token.
fn curl(l: &Local, args: &[&str]) -> Output {
    let auth = format!("Authorization: Bearer {}", l.token);
    Command::new("curl").args(["-sS", "--max-time", "30", "-H", &auth]).args(args).output().expect("run curl")
}

/// `loam local` over a UFS directory holding `hello.txt`, its listeners on TLS with `extra` flags; its
/// members trust `ca` when they call each other (`--ca-cert`).
fn start(ca: &TestCa, ufs: &Path, data: &Path, extra: &[&str]) -> Local {
    std::fs::write(ufs.join("hello.txt"), b"hello over TLS\n").unwrap();
    let server = ca.issue("server");
    let cacert = ca.cert();
    let mut args = vec!["--workers", "2", "--tls-cert", s(&server.cert), "--tls-key", s(&server.key)];
    args.extend_from_slice(&["--ca-cert", s(&cacert)]);
    args.extend_from_slice(extra);
    start_local(data, &args)
}

#[test]
fn loam_local_over_tls_serves_the_cli_curl_and_boto3() {
    let (ca, ufs, data) = (TestCa::new("local"), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let l = start(&ca, ufs.path(), data.path(), &[]);
    assert!(l.coordinator.starts_with("https://") && l.workers.iter().all(|(u, _)| u.starts_with("https://")));
    let cacert = ca.cert();
    let ufs_uri = format!("file://{}", ufs.path().display());
    assert!(ok(cli(&l, Some(&cacert), &["mount", "add", "/data", &ufs_uri]), "mount").contains("mounted"));
    let read = ok(cli(&l, Some(&cacert), &["fs", "cat", "/data/hello.txt"]), "cat over HTTPS");
    assert_eq!(read, "hello over TLS\n");
    let refused = cli(&l, None, &["mount", "list"]);
    assert!(!refused.status.success(), "the CLI without --ca-cert does not trust the test CA");
    let e = String::from_utf8_lossy(&refused.stderr);
    assert!(e.contains("cannot reach the coordinator"), "{e}");

    let nodes = ok(curl(&l, &["--cacert", s(&cacert), &format!("{}/api/v1/nodes", l.coordinator)]), "curl nodes");
    assert_eq!(nodes.matches("ONLINE").count(), 2, "{nodes}");
    let health = ok(curl(&l, &["--cacert", s(&cacert), &format!("{}/v1/health", l.workers[0].0)]), "curl worker");
    assert!(!health.is_empty());
    assert!(!curl(&l, &[&format!("{}/api/v1/nodes", l.coordinator)]).status.success(), "curl without the CA");

    // boto3 over HTTPS to worker 0's S3 API (anonymous reads are on in `loam local`).
    let s3 = &l.s3[0];
    assert!(s3.starts_with("https://"), "{s3}");
    let script = "import boto3, sys\nfrom botocore import UNSIGNED\nfrom botocore.config import Config\n\
        c = boto3.client('s3', endpoint_url=sys.argv[1], verify=sys.argv[2], region_name='us-east-1', \
        config=Config(signature_version=UNSIGNED, s3={'addressing_style': 'path'}))\n\
        sys.stdout.write(c.get_object(Bucket='data', Key='hello.txt')['Body'].read().decode())\n";
    let python = loam_testsupport::s3_server::venv_dir().join("bin/python");
    let out = Command::new(&python).args(["-c", script, s3, s(&cacert)]).output().expect("run python");
    assert_eq!(ok(out, "boto3 over HTTPS"), "hello over TLS\n");
}

#[test]
fn mutual_tls_between_members_and_clients_without_a_certificate_are_refused() {
    let (ca, ufs, data) = (TestCa::new("mtls"), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let cacert = ca.cert();
    let l = start(&ca, ufs.path(), data.path(), &["--tls-client-ca", s(&cacert)]);
    let client = ca.issue("operator");
    let with_cert = |args: &[&str]| {
        let mut c = Command::new(LOAM);
        c.env("LOAM_COORDINATOR", &l.coordinator).env("LOAM_TOKEN", &l.token).env("LOAM_CA_CERT", &cacert);
        c.args(["--client-cert", s(&client.cert), "--client-key", s(&client.key)]).args(args);
        c.output().expect("run loam")
    };
    let ufs_uri = format!("file://{}", ufs.path().display());
    assert!(ok(with_cert(&["mount", "add", "/data", &ufs_uri]), "mount with a client certificate").contains("mounted"));
    assert_eq!(ok(with_cert(&["fs", "cat", "/data/hello.txt"]), "cat with mTLS"), "hello over TLS\n");
    // A load job: the Coordinator sends each worker its batch over HTTPS, presenting its own certificate.
    let load = ok(with_cert(&["job", "load", "--path", "/data", "--sync"]), "load job under mTLS");
    assert!(load.contains("SUCCEEDED") && load.contains("files 1/1"), "{load}");
    let refused = cli(&l, Some(&cacert), &["mount", "list"]);
    assert!(!refused.status.success(), "a CLI without a client certificate is refused");
    let url = format!("{}/api/v1/nodes", l.coordinator);
    assert!(!curl(&l, &["--cacert", s(&cacert), &url]).status.success(), "curl without a client certificate");
    let nodes = curl(&l, &["--cacert", s(&cacert), "--cert", s(&client.cert), "--key", s(&client.key), &url]);
    assert!(ok(nodes, "curl with a client certificate").contains("ONLINE"));
}
