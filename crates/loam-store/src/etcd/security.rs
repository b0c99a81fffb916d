//! How the etcd client proves who it is and checks whom it talks to: TLS (rustls, through tonic) with a
//! CA and a client certificate, and an etcd user.
//!
//! - TLS is on when an endpoint is `https://` or a CA or client certificate is given; then every endpoint
//!   must be `https://` (or a bare `host:port`, which becomes one): a plain `http://` endpoint next to TLS
//!   settings is a mistake to refuse, not to downgrade. The server is checked against `ca_cert`, or the
//!   system roots when none is given; the client certificate and key come as a pair.
//! - The user's password is read from a file (a flag value would show in `ps`), its trailing newline
//!   dropped, and never put in an error or a log line.
//! - etcd's auth tokens expire (`--auth-token-ttl` for simple tokens, the JWT's `exp`): the client refreshes
//!   the token when etcd refuses it and sends the request again (etcd-client's `auto_token_refresh`). Every
//!   request, each lease renewal (a fresh keepalive stream per renewal) and each watch it opens goes through
//!   that retry, so long-lived membership and watches survive token expiry.
//! - Connecting with a user authenticates at once (etcd-client's `connect` does), so a wrong password fails
//!   the start; with TLS but no user, [`probe`] makes one request at start so that an untrusted server or a
//!   refused client certificate fail the start too, while an etcd that is merely down does not.

use crate::{StoreError, StoreResult};
use etcd_client::{Certificate, ConnectOptions, Identity, TlsOptions};
use std::error::Error as _;
use std::path::{Path, PathBuf};

/// TLS files and the etcd user; all optional (none: plain HTTP, no user).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EtcdSecurity {
    /// PEM CA certificate(s) that etcd's server certificate must chain to (none: the system roots).
    pub ca_cert: Option<PathBuf>,
    /// PEM client certificate presented to etcd (with `key`).
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert`.
    pub key: Option<PathBuf>,
    /// etcd user to authenticate as (with `password_file`).
    pub user: Option<String>,
    /// File holding the user's password.
    pub password_file: Option<PathBuf>,
}

impl EtcdSecurity {
    /// Whether TLS is on for `endpoints`.
    pub fn tls_enabled(&self, endpoints: &[String]) -> bool {
        self.ca_cert.is_some() || self.cert.is_some() || endpoints.iter().any(|e| e.starts_with("https://"))
    }

    /// `options` with TLS and the user applied; reads the files. Errors name the setting and file, never
    /// the password.
    pub(super) fn apply(&self, endpoints: &[String], mut options: ConnectOptions) -> StoreResult<ConnectOptions> {
        if self.tls_enabled(endpoints) {
            if let Some(plain) = endpoints.iter().find(|e| e.starts_with("http://")) {
                return Err(invalid(format!(
                    "etcd endpoint {plain} is plain http while TLS is configured (etcd-ca-cert, etcd-cert or an \
                     https:// endpoint): use https:// endpoints"
                )));
            }
            options = options.with_tls(self.tls_options()?);
        }
        match (&self.user, &self.password_file) {
            (Some(user), Some(file)) => options = options.with_user(user, read_password(file)?),
            (Some(user), None) => {
                return Err(invalid(format!("etcd-user {user} needs etcd-password-file (the password's file)")));
            }
            (None, Some(_)) => return Err(invalid("etcd-password-file is set without etcd-user".into())),
            (None, None) => {}
        }
        Ok(options.with_auto_token_refresh(true))
    }

    fn tls_options(&self) -> StoreResult<TlsOptions> {
        let mut tls = TlsOptions::new();
        tls = match &self.ca_cert {
            Some(path) => tls.ca_certificate(Certificate::from_pem(read("etcd-ca-cert", path)?)),
            None => tls.with_enabled_roots(),
        };
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                Ok(tls.identity(Identity::from_pem(read("etcd-cert", cert)?, read("etcd-key", key)?)))
            }
            (None, None) => Ok(tls),
            (Some(_), None) => Err(invalid("etcd-cert is set without etcd-key".into())),
            (None, Some(_)) => Err(invalid("etcd-key is set without etcd-cert".into())),
        }
    }
}

fn invalid(message: String) -> StoreError {
    StoreError::Other(message)
}

fn read(setting: &str, path: &Path) -> StoreResult<Vec<u8>> {
    std::fs::read(path).map_err(|e| invalid(format!("cannot read {setting} {}: {e}", path.display())))
}

/// The password in `path`, without its trailing line end.
fn read_password(path: &Path) -> StoreResult<String> {
    let bytes = read("etcd-password-file", path)?;
    let text =
        String::from_utf8(bytes).map_err(|_| invalid(format!("etcd-password-file {} is not UTF-8", path.display())))?;
    let password = text.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        return Err(invalid(format!("etcd-password-file {} is empty", path.display())));
    }
    Ok(password)
}

/// An etcd-client error with the chain of its sources: tonic's transport error alone says only
/// "transport error", the reason (an unknown issuer, a refused certificate) is in its sources.
pub(super) fn describe(e: &etcd_client::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// What to add to a failure to connect over TLS without a client certificate: etcd with
/// `--client-cert-auth` closes such a connection without a reason the client can read.
pub(super) fn hint(security: &EtcdSecurity, endpoints: &[String]) -> &'static str {
    if security.tls_enabled(endpoints) && security.cert.is_none() {
        " (no client certificate was presented: etcd-cert and etcd-key are not set)"
    } else {
        ""
    }
}

/// Whether `e` says only that etcd cannot be reached now (refused, unreachable, timed out), which a
/// process may start through; any other failure at start (TLS, authentication) is a configuration error.
pub(super) fn is_unreachable(e: &etcd_client::Error) -> bool {
    use std::io::ErrorKind::*;
    // A gRPC status (how a failed connect shows when authenticating) carries the transport error as
    // its own source; etcd-client's error does not chain to it.
    let mut source = match e {
        etcd_client::Error::GRpcStatus(status) => status.source(),
        other => other.source(),
    };
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return matches!(io.kind(), ConnectionRefused | TimedOut | HostUnreachable | NetworkUnreachable);
        }
        source = s.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eps(e: &[&str]) -> Vec<String> {
        e.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn https_or_a_ca_turns_tls_on() {
        let none = EtcdSecurity::default();
        assert!(!none.tls_enabled(&eps(&["http://a:2379"])));
        assert!(none.tls_enabled(&eps(&["https://a:2379"])));
        let ca = EtcdSecurity { ca_cert: Some("/ca.pem".into()), ..Default::default() };
        assert!(ca.tls_enabled(&eps(&["a:2379"])));
    }

    #[test]
    fn half_configured_settings_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("x.pem");
        std::fs::write(&pem, "not checked here").unwrap();
        let cases = [
            (EtcdSecurity { ca_cert: Some(pem.clone()), ..Default::default() }, "http://a:1", "plain http"),
            (EtcdSecurity { cert: Some(pem.clone()), ..Default::default() }, "https://a:1", "without etcd-key"),
            (EtcdSecurity { user: Some("u".into()), ..Default::default() }, "http://a:1", "etcd-password-file"),
            (EtcdSecurity { password_file: Some(pem.clone()), ..Default::default() }, "http://a:1", "without"),
            (
                EtcdSecurity { ca_cert: Some(dir.path().join("missing")), ..Default::default() },
                "https://a:1",
                "cannot read etcd-ca-cert",
            ),
        ];
        for (security, endpoint, expected) in cases {
            let err = security.apply(&eps(&[endpoint]), ConnectOptions::new()).unwrap_err().to_string();
            assert!(err.contains(expected), "{security:?}: {err}");
        }
    }

    #[test]
    fn the_password_loses_its_line_end_and_never_shows() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cr3t-pw\n").unwrap();
        assert_eq!(read_password(&file).unwrap(), "s3cr3t-pw");
        std::fs::write(&file, "\n").unwrap();
        let err = read_password(&file).unwrap_err().to_string();
        assert!(err.contains("is empty"), "{err}");
    }
}
