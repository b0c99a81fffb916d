//! The etcd store against a real etcd serving TLS only, with client-certificate authentication and
//! `auth enable` (an etcd user with a role on `/`), certificates from a test CA: every testkit behaviour
//! through it, a watch and a lease that outlive the user's token, and the start-up failures (wrong
//! password, no client certificate, an untrusted server) with errors that name the problem and no secret.

use futures::StreamExt;
use loam_store::{ClusterStore, EtcdOptions, EtcdSecurity, EtcdStore, StoreError, WatchEvent, testkit};
use loam_testsupport::certs::{LeafCert, TestCa};
use loam_testsupport::{EtcdServer, EtcdTls};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

const PASSWORD: &str = "loam-pw-7f3a9c";
const ROOT_PASSWORD: &str = "root-pw-51be";
/// A cap on waits for background work, so a broken store fails the test instead of hanging it.
const WAIT: Duration = Duration::from_secs(20);

/// A TLS etcd with auth enabled and user `loam`, plus the client's certificate and password file.
struct Secured {
    server: EtcdServer,
    ca: TestCa,
    client: LeafCert,
    password_file: PathBuf,
}

/// Starts it; `token_ttl`: etcd's `--auth-token-ttl`.
fn secured(token_ttl: Option<u32>) -> Secured {
    let ca = TestCa::new("loam-test-ca");
    let server = EtcdServer::start_tls(EtcdTls {
        ca: ca.cert.clone(),
        server: ca.leaf("etcd-server"),
        auth_token_ttl: token_ttl,
    });
    // The client certificate's CN is no etcd user, so only the password authenticates.
    let client = ca.leaf("loam-client");
    server.enable_auth(&client, ROOT_PASSWORD, "loam", PASSWORD);
    let password_file = ca.cert.with_file_name("etcd-password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).expect("write the password file");
    Secured { server, ca, client, password_file }
}

impl Secured {
    fn security(&self) -> EtcdSecurity {
        EtcdSecurity {
            ca_cert: Some(self.ca.cert.clone()),
            cert: Some(self.client.cert.clone()),
            key: Some(self.client.key.clone()),
            user: Some("loam".into()),
            password_file: Some(self.password_file.clone()),
        }
    }

    async fn connect(&self, security: EtcdSecurity) -> Result<Arc<EtcdStore>, StoreError> {
        EtcdStore::connect(vec![self.server.endpoint()], EtcdOptions { security, ..Default::default() }).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_behaviour_over_tls_as_an_etcd_user() {
    let s = secured(None);
    let store = s.connect(s.security()).await.expect("connect over TLS as loam");
    testkit::run_all(store).await;
}

#[tokio::test]
async fn a_watch_and_a_lease_outlive_the_users_token() {
    let s = secured(Some(1));
    let store = s.connect(s.security()).await.expect("connect");
    let lease = store.grant_lease(Duration::from_secs(30)).await.expect("grant");
    store.put("/tok/leased", "v".into(), Some(lease)).await.expect("put on the lease");
    let mut watch = store.watch("/tok/", 0).await.expect("watch");
    // Idle past the token's TTL: etcd forgets an unused simple token after `--auth-token-ttl`.
    tokio::time::sleep(Duration::from_secs(3)).await;
    store.keep_alive(lease).await.expect("a renewal after the token expired re-authenticates");
    let rev = store.put("/tok/k", "after".into(), None).await.expect("a put after the token expired");
    let event = tokio::time::timeout(WAIT, watch.next()).await.expect("the watch yields").expect("an event");
    match event.expect("no error") {
        WatchEvent::Put(kv) => assert_eq!((kv.key.as_str(), kv.mod_revision), ("/tok/k", rev)),
        other => panic!("expected the put, got {other:?}"),
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut again = store.watch("/tok/", rev).await.expect("a new watch after the token expired");
    store.delete("/tok/k").await.expect("delete");
    let event = tokio::time::timeout(WAIT, again.next()).await.expect("the new watch yields").expect("an event");
    assert!(matches!(event, Ok(WatchEvent::Delete { .. })), "{event:?}");
    assert_eq!(store.get("/tok/leased").await.expect("get").expect("the key").lease, Some(lease));
}

/// The start-up error of `security`, which must fail.
async fn refused(s: &Secured, security: EtcdSecurity) -> String {
    match tokio::time::timeout(WAIT, s.connect(security)).await.expect("connect hung") {
        Ok(_) => panic!("connecting must fail"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn a_wrong_password_a_missing_certificate_or_an_untrusted_server_fail_at_connect() {
    let s = secured(None);
    let wrong = s.ca.cert.with_file_name("wrong-password");
    std::fs::write(&wrong, "not-the-password\n").unwrap();
    let err = refused(&s, EtcdSecurity { password_file: Some(wrong), ..s.security() }).await;
    assert!(err.contains("as user loam") && err.contains("authentication failed"), "{err}");
    assert!(!err.contains("not-the-password") && !err.contains(PASSWORD), "{err}");

    let no_cert = EtcdSecurity { cert: None, key: None, ..s.security() };
    let err = refused(&s, no_cert.clone()).await;
    assert!(err.contains("certificate") || err.contains("Certificate"), "no client certificate: {err}");
    let err = refused(&s, EtcdSecurity { user: None, password_file: None, ..no_cert }).await;
    assert!(err.contains("over TLS") && err.to_lowercase().contains("certificate"), "no user, no cert: {err}");

    let other = TestCa::new("some-other-ca");
    let err = refused(&s, EtcdSecurity { ca_cert: Some(other.cert.clone()), ..s.security() }).await;
    assert!(err.contains("UnknownIssuer") || err.contains("unknown issuer"), "untrusted server: {err}");

    let plain = EtcdStore::connect(
        vec![s.server.endpoint().replace("https://", "http://")],
        EtcdOptions { security: s.security(), ..Default::default() },
    )
    .await;
    let err = plain.expect_err("http with TLS settings").to_string();
    assert!(err.contains("plain http"), "{err}");
}
