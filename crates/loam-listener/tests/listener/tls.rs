//! TLS: clients that trust the CA are served, others are refused; a certificate rotated on disk is served
//! to new connections; with a client CA, clients without a certificate it signed are refused.

use crate::{BOUND, TestServer, install_provider};
use loam_listener::{ListenerConfig, TlsFiles};
use loam_testsupport::tls::{CertFiles, TestCa};
use std::path::Path;
use tokio::process::Command;

fn tls_config(server: &CertFiles, client_ca: Option<&Path>) -> ListenerConfig {
    let tls =
        TlsFiles { cert: server.cert.clone(), key: server.key.clone(), client_ca: client_ca.map(Path::to_path_buf) };
    ListenerConfig { tls: Some(tls), ..ListenerConfig::default() }
}

/// A fresh client (no pooled connection) that trusts only `ca`, presenting `identity` if given.
fn client(ca: &Path, identity: Option<&CertFiles>) -> reqwest::Client {
    install_provider();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap();
    let mut b = reqwest::Client::builder().tls_certs_only([ca]).pool_max_idle_per_host(0);
    if let Some(id) = identity {
        let mut pem = std::fs::read(&id.cert).unwrap();
        pem.extend(std::fs::read(&id.key).unwrap());
        b = b.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    b.build().unwrap()
}

async fn hello(client: &reqwest::Client, srv: &TestServer) -> Result<String, reqwest::Error> {
    client.get(format!("{}/hello", srv.url)).send().await?.error_for_status()?.text().await
}

/// `curl` with `args` on `url`: its exit status and output.
async fn curl(args: &[&str], url: &str) -> (bool, String) {
    let out =
        Command::new("curl").args(["-sS", "--max-time", "30"]).args(args).arg(url).output().await.expect("run curl");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test]
async fn https_for_clients_that_trust_the_ca_and_no_one_else() {
    let ca = TestCa::new("listener");
    let srv = TestServer::start(tls_config(&ca.issue("server"), None)).await;
    assert!(srv.url.starts_with("https://"), "{}", srv.url);
    assert_eq!(hello(&client(&ca.cert(), None), &srv).await.unwrap(), "hello");
    let other = TestCa::new("other");
    let refused = hello(&client(&other.cert(), None), &srv).await.expect_err("a server of another CA is refused");
    assert!(format!("{refused:?}").to_lowercase().contains("certificate"), "{refused:?}");
    let url = format!("{}/hello", srv.url);
    let (ok, out) = curl(&["--cacert", path(&ca.cert())], &url).await;
    assert!(ok && out == "hello", "curl over HTTPS: {out}");
    let (ok, out) = curl(&[], &url).await;
    assert!(!ok, "curl without the CA refuses the certificate: {out}");
    let plain = url.replacen("https://", "http://", 1);
    let (ok, out) = curl(&[], &plain).await;
    assert!(!ok || !out.contains("hello"), "plain HTTP is not served on a TLS listener: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_rotated_on_disk_is_served_to_new_connections() {
    let (old_ca, new_ca) = (TestCa::new("old"), TestCa::new("new"));
    let served = old_ca.issue("server");
    let srv = TestServer::start(tls_config(&served, None)).await;
    assert_eq!(hello(&client(&old_ca.cert(), None), &srv).await.unwrap(), "hello");
    assert!(hello(&client(&new_ca.cert(), None), &srv).await.is_err(), "the new CA's clients wait for the rotation");
    // The rotation: the new CA's pair written over the files the listener serves, certificate first.
    let rotated = new_ca.issue("server");
    std::fs::copy(&rotated.cert, &served.cert).unwrap();
    std::fs::copy(&rotated.key, &served.key).unwrap();
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        match hello(&client(&new_ca.cert(), None), &srv).await {
            Ok(body) => break assert_eq!(body, "hello"),
            Err(e) if tokio::time::Instant::now() > deadline => {
                panic!("the rotated certificate is never served: {e:?}")
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    assert!(hello(&client(&old_ca.cert(), None), &srv).await.is_err(), "the old certificate is no longer served");
}

#[tokio::test]
async fn mutual_tls_refuses_clients_without_a_certificate_of_the_client_ca() {
    let ca = TestCa::new("cluster");
    let srv = TestServer::start(tls_config(&ca.issue("server"), Some(&ca.cert()))).await;
    let member = ca.issue("member");
    assert_eq!(hello(&client(&ca.cert(), Some(&member)), &srv).await.unwrap(), "hello");
    assert!(hello(&client(&ca.cert(), None), &srv).await.is_err(), "no client certificate: refused");
    let stranger_ca = TestCa::new("stranger");
    let stranger = stranger_ca.issue("stranger");
    assert!(hello(&client(&ca.cert(), Some(&stranger)), &srv).await.is_err(), "another CA's client: refused");
    let url = format!("{}/hello", srv.url);
    let (ok, out) = curl(&["--cacert", path(&ca.cert())], &url).await;
    assert!(!ok && !out.contains("hello"), "curl without a client certificate is refused: {out}");
    let ca_cert = ca.cert();
    let with_cert = ["--cacert", path(&ca_cert), "--cert", path(&member.cert), "--key", path(&member.key)];
    let (ok, out) = curl(&with_cert, &url).await;
    assert!(ok && out == "hello", "curl with the member's certificate: {out}");
}
