//! The listeners' settings group: TLS files and limits, shared by every listener of a process (the
//! Coordinator's REST API, each worker's HTTP and S3 APIs). `loam coordinator`, `loam worker` and
//! `loam local` flatten it; the defaults live in [`Group::defaults`] only.

use crate::{Limits, ListenerConfig, TlsFiles};
use loam_config::{ConfigError, Group, HumaneDuration, Layered};
use std::path::PathBuf;

/// TLS and limits of a process's listeners.
#[derive(clap::Args, serde::Serialize, serde::Deserialize, Debug, Clone, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct ListenerSettings {
    /// TLS certificate chain (PEM) of every listener; with --tls-key. Re-read when the file changes.
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert. Re-read when the file changes.
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// CA (PEM) that clients' certificates must chain to: mutual TLS. Cluster members present their
    /// --tls-cert as their client certificate.
    #[arg(long, value_name = "FILE")]
    pub tls_client_ca: Option<PathBuf>,
    /// Time a client has to send a request's head (a new connection: TLS handshake included).
    #[arg(long, value_name = "DURATION")]
    pub header_read_timeout: Option<HumaneDuration>,
    /// Time a kept-alive connection may stay idle between requests.
    #[arg(long, value_name = "DURATION")]
    pub idle_timeout: Option<HumaneDuration>,
    /// Open connections per listener at most; further clients wait to be accepted.
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,
}

impl Group for ListenerSettings {
    const TITLE: &'static str = "Listeners";

    fn defaults() -> Self {
        Self {
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            header_read_timeout: Some(HumaneDuration(crate::DEFAULT_HEADER_READ_TIMEOUT)),
            idle_timeout: Some(HumaneDuration(crate::DEFAULT_IDLE_TIMEOUT)),
            max_connections: Some(crate::DEFAULT_MAX_CONNECTIONS),
        }
    }
}

impl ListenerConfig {
    /// The listener configuration of these merged settings; errors name the key and its source.
    pub fn from_settings(s: &Layered<ListenerSettings>) -> Result<Self, ConfigError> {
        let v = &s.value;
        let invalid = |why: String| Err(ConfigError::Invalid(why));
        let tls = match (&v.tls_cert, &v.tls_key) {
            (Some(cert), Some(key)) => {
                Some(TlsFiles { cert: cert.clone(), key: key.clone(), client_ca: v.tls_client_ca.clone() })
            }
            (None, None) if v.tls_client_ca.is_some() => {
                return invalid(format!("{} needs TLS: set tls-cert and tls-key", s.named("tls-client-ca")));
            }
            (None, None) => None,
            _ => {
                return invalid(format!(
                    "{} and {} go together: give both or neither",
                    s.named("tls-cert"),
                    s.named("tls-key")
                ));
            }
        };
        let defaults = Limits::default();
        let limits = Limits {
            header_read_timeout: v.header_read_timeout.map_or(defaults.header_read_timeout, |d| d.0),
            idle_timeout: v.idle_timeout.map_or(defaults.idle_timeout, |d| d.0),
            max_connections: v.max_connections.unwrap_or(defaults.max_connections),
        };
        for (key, d) in [("header-read-timeout", limits.header_read_timeout), ("idle-timeout", limits.idle_timeout)] {
            if d.is_zero() {
                return invalid(format!("{} must be longer than 0", s.named(key)));
            }
        }
        if limits.max_connections == 0 {
            return invalid(format!("{} must be at least 1", s.named("max-connections")));
        }
        Ok(Self { tls, limits })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loam_config::Resolver;

    fn resolve(args: ListenerSettings) -> Result<ListenerConfig, ConfigError> {
        ListenerConfig::from_settings(&Resolver::<ListenerSettings>::new().args(&args, None).resolve()?)
    }

    #[test]
    fn defaults_are_plain_http_with_limits() {
        let cfg = resolve(ListenerSettings::default()).unwrap();
        assert_eq!(cfg, ListenerConfig::default());
        assert_eq!(cfg.scheme(), "http");
    }

    #[test]
    fn a_cert_without_its_key_or_a_client_ca_without_tls_is_refused() {
        let cert_only = ListenerSettings { tls_cert: Some("c.pem".into()), ..Default::default() };
        let e = resolve(cert_only).unwrap_err().to_string();
        assert!(e.contains("`tls-cert` (flag --tls-cert)") && e.contains("tls-key"), "{e}");
        let ca_only = ListenerSettings { tls_client_ca: Some("ca.pem".into()), ..Default::default() };
        assert!(resolve(ca_only).unwrap_err().to_string().contains("needs TLS"));
        let zero = ListenerSettings { max_connections: Some(0), ..Default::default() };
        assert!(resolve(zero).unwrap_err().to_string().contains("max-connections"));
    }

    #[test]
    fn cert_and_key_turn_tls_on() {
        let s =
            ListenerSettings { tls_cert: Some("c.pem".into()), tls_key: Some("k.pem".into()), ..Default::default() };
        let cfg = resolve(s).unwrap();
        assert_eq!(cfg.scheme(), "https");
        assert_eq!(cfg.tls.unwrap().client_ca, None);
    }
}
