//! One configuration model for every Loam process.
//!
//! A process's settings are a few **groups** (`NodeSettings` here; the worker's, the coordinator's and
//! the FUSE mount's in their own crates). A group is one struct of `Option` fields that derives both its
//! flags (`clap::Args`) and its TOML keys (`serde`, kebab-case, so a key is its long flag's name), and
//! says in [`Group::defaults`] the default of every key that has one: that function is the only place a
//! default lives. A process that shares a group with another (`loam local` runs a coordinator and
//! workers) flattens the same groups, so every setting of either is available there too.
//!
//! [`Resolver`] merges a group's layers, later over earlier: the defaults, the config file, the
//! environment, the flags. It keeps where each key's value came from ([`Source`]), so
//! `--print-config` shows it and every validation error names the key and its source. A value moves
//! between layers as TOML, so a group needs no merge code of its own: adding a setting is adding a field.
//!
//! [`reference`] writes the configuration reference (`docs/CONFIGURATION.md`) from the same structs.

pub mod duration;
mod error;
mod file;
pub mod log;
pub mod reference;
pub mod render;
pub mod values;

pub use error::ConfigError;
pub use file::{ConfigFile, field_names};
pub use log::{LogFormat, LogSettings};
pub use values::{ByteSize, HumaneDuration};

use clap::ArgMatches;
use clap::parser::ValueSource;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// The only version of the config file format.
pub const CONFIG_VERSION: u32 = 1;

/// A group of settings: flags and TOML keys from one struct of `Option` fields.
pub trait Group: clap::Args + Serialize + DeserializeOwned + Default + Clone {
    /// The group's heading in the configuration reference.
    const TITLE: &'static str;

    /// Every key's default, where it has one (the others stay `None`).
    fn defaults() -> Self;

    /// Keys read from files (and global flags) that are not this group's own flags, documented by hand:
    /// `(key, how to set it, meaning)`.
    fn other_keys() -> Vec<(&'static str, &'static str, &'static str)> {
        Vec::new()
    }
}

/// The process-independent settings of a cluster member: where it binds, where it keeps its state, and
/// which cluster it belongs to. `etcd`, `cluster-name` and the `etcd-*` keys of TLS and the etcd user are
/// the CLI's global flags (`--etcd`, `--cluster-name`, `--etcd-ca-cert`, …: `loam fuse` and `loam fs`
/// reach etcd too), so here they are keys of the file only; the processes put the flags over them.
#[derive(clap::Args, serde::Serialize, serde::Deserialize, Debug, Clone, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct NodeSettings {
    /// etcd endpoints of a distributed cluster (a coordinator without them runs on its embedded store).
    #[arg(skip)]
    #[serde(default, deserialize_with = "values::string_list", skip_serializing_if = "Option::is_none")]
    pub etcd: Option<Vec<String>>,
    /// Cluster name in the membership keys.
    #[arg(skip)]
    pub cluster_name: Option<String>,
    /// CA certificate (PEM) etcd's server certificate must chain to (TLS; none: the system roots).
    #[arg(skip)]
    pub etcd_ca_cert: Option<PathBuf>,
    /// Client certificate (PEM) presented to etcd.
    #[arg(skip)]
    pub etcd_cert: Option<PathBuf>,
    /// Private key (PEM) of `etcd-cert`.
    #[arg(skip)]
    pub etcd_key: Option<PathBuf>,
    /// etcd user to authenticate as.
    #[arg(skip)]
    pub etcd_user: Option<String>,
    /// File holding the etcd user's password.
    #[arg(skip)]
    pub etcd_password_file: Option<PathBuf>,
    /// Address to bind (`0.0.0.0`: every interface); also the address advertised, unless advertise-host is set.
    #[arg(long)]
    pub host: Option<String>,
    /// Address the others connect to: written to the membership (a worker) and printed (a coordinator),
    /// e.g. a pod's stable DNS name; `loam local` ignores it [default: host].
    #[arg(long, env = "LOAM_ADVERTISE_HOST", value_name = "HOST")]
    pub advertise_host: Option<String>,
    /// Where the process keeps its state (the embedded store, identities, caches, job files).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Time between quota passes: workers report usage and admit data, running loads check their quotas.
    #[arg(long, value_name = "DURATION")]
    pub quota_check_interval: Option<HumaneDuration>,
    /// Bearer tokens this process accepts: `<role> <token>` lines (roles admin, read, write, cluster; `#`
    /// comments), re-read when the file changes.
    #[arg(long, env = "LOAM_AUTH_TOKEN_FILE", value_name = "FILE")]
    pub auth_token_file: Option<PathBuf>,
    /// The token this process sends to the other cluster members: a file holding it, re-read when it changes
    /// (e.g. a projected Kubernetes service-account token) [default: the first `cluster` token of
    /// --auth-token-file].
    #[arg(long, env = "LOAM_CLUSTER_TOKEN_FILE", value_name = "FILE")]
    pub cluster_token_file: Option<PathBuf>,
    /// JWKS file with the keys that sign accepted JWTs (RS256, ES256), re-read when it changes.
    #[arg(long, value_name = "FILE")]
    pub jwks_file: Option<PathBuf>,
    /// Audience a JWT must name in `aud` (needed with --jwks-file).
    #[arg(long, value_name = "AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Issuer a JWT must name in `iss`, when set.
    #[arg(long, value_name = "ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Claim holding a JWT's roles: a role, a list, or space-separated roles; a dotted path reaches into objects.
    #[arg(long, value_name = "CLAIM")]
    pub jwt_role_claim: Option<String>,
    /// A role given to a JWT subject whatever its claims say, `SUBJECT=ROLE` (repeatable), e.g.
    /// `system:serviceaccount:loam:loam-worker=cluster`.
    #[arg(long, value_name = "SUBJECT=ROLE")]
    #[serde(default, deserialize_with = "values::string_list", skip_serializing_if = "Option::is_none")]
    pub jwt_subject_role: Option<Vec<String>>,
}

/// Default address to bind (and advertise, without `advertise-host`).
pub const DEFAULT_HOST: &str = "127.0.0.1";
/// Default data directory (`loam worker` needs one given).
pub const DEFAULT_DATA_DIR: &str = "./loam-data";
/// Default claim holding a JWT's roles.
pub const DEFAULT_JWT_ROLE_CLAIM: &str = "loam.roles";
/// Default time between quota passes.
pub const DEFAULT_QUOTA_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

impl NodeSettings {
    /// The address this process advertises: `advertise-host`, else `host`, else the default.
    pub fn advertised_host(&self) -> String {
        self.advertise_host.clone().or_else(|| self.host.clone()).unwrap_or_else(|| DEFAULT_HOST.into())
    }
}

/// Whether `host` is a wildcard address (`0.0.0.0`, `::`): one to bind, never one to advertise.
pub fn is_unspecified_host(host: &str) -> bool {
    host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_unspecified())
}

/// `scheme://host:port` with `host` bracketed when it is an IPv6 literal.
pub fn url_of(scheme: &str, host: &str, port: u16) -> String {
    match host.parse::<std::net::Ipv6Addr>() {
        Ok(_) => format!("{scheme}://[{host}]:{port}"),
        Err(_) => format!("{scheme}://{host}:{port}"),
    }
}

impl Group for NodeSettings {
    const TITLE: &'static str = "Every process";

    fn defaults() -> Self {
        Self {
            etcd: None,
            cluster_name: Some(loam_core::membership::DEFAULT_CLUSTER_NAME.into()),
            etcd_ca_cert: None,
            etcd_cert: None,
            etcd_key: None,
            etcd_user: None,
            etcd_password_file: None,
            host: Some(DEFAULT_HOST.into()),
            data_dir: Some(DEFAULT_DATA_DIR.into()),
            quota_check_interval: Some(HumaneDuration(DEFAULT_QUOTA_CHECK_INTERVAL)),
            jwt_role_claim: Some(DEFAULT_JWT_ROLE_CLAIM.into()),
            ..Default::default()
        }
    }

    fn other_keys() -> Vec<(&'static str, &'static str, &'static str)> {
        vec![
            ("etcd", "`--etcd URL[,URL...]`, `LOAM_ETCD`", "etcd endpoints: a string `\"URL,URL\"` or a list"),
            ("cluster-name", "`--cluster-name`, `LOAM_CLUSTER_NAME`", "cluster name in the membership keys"),
            (
                "etcd-ca-cert",
                "`--etcd-ca-cert FILE`, `LOAM_ETCD_CA_CERT`",
                "CA certificate (PEM) that etcd's server certificate must chain to; given, or an `https://` \
                 endpoint, turns TLS on (without it: the system roots)",
            ),
            ("etcd-cert", "`--etcd-cert FILE`, `LOAM_ETCD_CERT`", "client certificate (PEM) presented to etcd"),
            ("etcd-key", "`--etcd-key FILE`, `LOAM_ETCD_KEY`", "private key (PEM) of `etcd-cert`"),
            ("etcd-user", "`--etcd-user NAME`, `LOAM_ETCD_USER`", "etcd user to authenticate as"),
            (
                "etcd-password-file",
                "`--etcd-password-file FILE`, `LOAM_ETCD_PASSWORD_FILE`",
                "file holding the etcd user's password (never a flag value)",
            ),
        ]
    }
}

/// Where a key's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The built-in default (or the process's own, as `loam local`'s anonymous S3 reads).
    Default,
    /// The config file, at this line when known.
    File {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: Option<usize>,
    },
    /// This environment variable.
    Env(String),
    /// This command-line flag (`--page-size`).
    Flag(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File { path, line: Some(l) } => write!(f, "file {}, line {l}", path.display()),
            Source::File { path, line: None } => write!(f, "file {}", path.display()),
            Source::Env(var) => write!(f, "environment {var}"),
            Source::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

/// Merges the layers of group `G`, each over the ones before it.
pub struct Resolver<G> {
    table: toml::Table,
    sources: BTreeMap<String, Source>,
    _group: std::marker::PhantomData<G>,
}

impl<G: Group> Default for Resolver<G> {
    fn default() -> Self {
        Self::new()
    }
}

impl<G: Group> Resolver<G> {
    /// Starts from `G::defaults()`.
    pub fn new() -> Self {
        let empty = Self { table: toml::Table::new(), sources: BTreeMap::new(), _group: std::marker::PhantomData };
        empty.layer(&G::defaults(), |_| Source::Default)
    }

    /// Puts every key `layer` sets over what is there, with the source `source(key)` gives.
    pub fn layer(mut self, layer: &G, source: impl Fn(&str) -> Source) -> Self {
        for (key, value) in to_table(layer) {
            self.sources.insert(key.clone(), source(&key));
            self.table.insert(key, value);
        }
        self
    }

    /// Puts the keys of `G` that `file` sets over what is there.
    pub fn file(self, file: Option<&ConfigFile>) -> Result<Self, ConfigError> {
        let Some(file) = file else { return Ok(self) };
        let layer: G = file.group()?;
        let path = file.path().to_path_buf();
        Ok(self.layer(&layer, |key| Source::File { path: path.clone(), line: file.line_of(key) }))
    }

    /// Puts the flags and environment variables that `args` holds over what is there; `matches` (the
    /// parsed command line) tells which came from the environment; without it every value is a flag's.
    pub fn args(self, args: &G, matches: Option<&ArgMatches>) -> Self {
        let command = G::augment_args(clap::Command::new("settings"));
        self.layer(args, |key| arg_source(&command, matches, key))
    }

    /// The merged settings, and where each value came from.
    pub fn resolve(self) -> Result<Layered<G>, ConfigError> {
        let value = toml::Value::Table(self.table.clone())
            .try_into::<G>()
            .map_err(|e| ConfigError::Invalid(format!("merging the settings: {}", e.message().trim())))?;
        Ok(Layered { value, table: self.table, sources: self.sources })
    }
}

/// The source of `key` as an argument of `command`: its environment variable or its flag.
fn arg_source(command: &clap::Command, matches: Option<&ArgMatches>, key: &str) -> Source {
    let id = key.replace('-', "_");
    let arg = command.get_arguments().find(|a| a.get_id().as_str() == id);
    let flag = format!("--{}", arg.and_then(|a| a.get_long()).unwrap_or(key));
    let from_env = arg.is_some()
        && matches.is_some_and(|m| {
            m.try_get_raw(&id).is_ok_and(|v| v.is_some()) && m.value_source(&id) == Some(ValueSource::EnvVariable)
        });
    match arg.and_then(|a| a.get_env()) {
        Some(var) if from_env => Source::Env(var.to_string_lossy().into_owned()),
        _ => Source::Flag(flag),
    }
}

/// A group's merged settings with the source of each value.
#[derive(Debug, Clone)]
pub struct Layered<G> {
    /// The settings.
    pub value: G,
    table: toml::Table,
    sources: BTreeMap<String, Source>,
}

impl<G> Layered<G> {
    /// Where `key`'s value came from (`None`: no layer set it).
    pub fn source(&self, key: &str) -> Option<&Source> {
        self.sources.get(key)
    }

    /// Whether `key` was set by something other than a default.
    pub fn is_given(&self, key: &str) -> bool {
        self.source(key).is_some_and(|s| *s != Source::Default)
    }

    /// `key` with its source, for error messages: `` `page-size` (flag --page-size) ``.
    pub fn named(&self, key: &str) -> String {
        match self.source(key) {
            Some(s) => format!("`{key}` ({s})"),
            None => format!("`{key}`"),
        }
    }

    /// The settings as TOML, with the source of each key (for `--print-config`).
    pub fn entries(&self) -> impl Iterator<Item = (&str, &toml::Value, Option<&Source>)> {
        self.table.iter().map(|(k, v)| (k.as_str(), v, self.sources.get(k)))
    }
}

/// The keys `value` sets, as TOML (`None` fields are left out).
fn to_table<T: Serialize>(value: &T) -> toml::Table {
    match toml::Value::try_from(value) {
        Ok(toml::Value::Table(t)) => t,
        // Every group is a struct of plain values; anything else is a bug in its declaration.
        Ok(other) => panic!("a settings group serialized to {}, not a table", other.type_str()),
        Err(e) => panic!("a settings group does not serialize to TOML: {e}"),
    }
}

/// The command line parsed with its matches, so that settings can tell flags from environment variables.
pub fn parse_with_matches<C: clap::Parser>() -> (C, ArgMatches) {
    parse_with_matches_from(std::env::args_os())
}

/// [`parse_with_matches`] of `args` (the program name first) rather than the process's own arguments.
pub fn parse_with_matches_from<C: clap::Parser>(
    args: impl IntoIterator<Item = impl Into<std::ffi::OsString> + Clone>,
) -> (C, ArgMatches) {
    let matches = C::command().get_matches_from(args);
    match C::from_arg_matches(&matches) {
        Ok(cli) => (cli, matches),
        Err(e) => e.exit(),
    }
}

#[cfg(test)]
mod tests;
