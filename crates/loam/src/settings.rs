//! How a server process (`loam local`, `loam coordinator`, `loam worker`, `loam fuse`) gathers its
//! settings: the groups of `loam_config` that it flattens into its flags, layered defaults < `--config`
//! file < environment < flags. The CLI's global flags (`--etcd`, `--cluster-name`, `--coordinator`) are
//! layered over their file keys here, the one place that knows them. `--print-config` prints the result
//! with each value's source; the configuration reference (`docs/CONFIGURATION.md`) is written from the
//! same groups ([`reference`]).

use crate::cluster_store::ClusterFlags;
use clap::ArgMatches;
use clap::parser::ValueSource;
use loam_config::render::Printout;
use loam_config::{ConfigError, ConfigFile, Group, Layered, NodeSettings, Resolver, Source};
use loam_coordinator::CoordinatorSettings;
use loam_fuse::FuseSettings;
use loam_listener::ListenerSettings;
use loam_worker::WorkerSettings;
use std::path::PathBuf;

/// `--config` and `--print-config`, which every server process takes.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ConfigFlags {
    /// TOML config file; its keys are the long flags' names; environment variables and flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the effective settings and where each value came from (default, file, environment, flag),
    /// secrets masked, then check them and exit.
    #[arg(long)]
    pub print_config: bool,
}

/// What a process's settings are gathered from.
pub struct Inputs<'a> {
    file: Option<ConfigFile>,
    matches: Option<&'a ArgMatches>,
    cluster: &'a ClusterFlags,
    coordinator: Option<&'a str>,
}

impl<'a> Inputs<'a> {
    /// Reads the `--config` file, refusing keys that none of the process's groups (`known`) owns.
    /// `matches` is the process's parsed sub-command (`None` in tests: every value is then a flag's).
    pub fn new(
        flags: &ConfigFlags,
        known: &[&[&str]],
        matches: Option<&'a ArgMatches>,
        cluster: &'a ClusterFlags,
        coordinator: Option<&'a str>,
    ) -> Result<Self, ConfigError> {
        let file = flags.config.as_deref().map(ConfigFile::load).transpose()?;
        if let Some(f) = &file {
            f.check_keys(&known.concat())?;
        }
        Ok(Self { file, matches, cluster, coordinator })
    }

    /// Group `G` from its defaults, the process's own `defaults` (if any), the file and `args`.
    pub fn group<G: Group>(&self, defaults: Option<&G>, args: &G) -> Result<Layered<G>, ConfigError> {
        self.resolve(defaults, args, None)
    }

    /// The node settings, with the global `--etcd`, `--cluster-name` and `--etcd-*` over their file keys.
    pub fn node(&self, args: &NodeSettings) -> Result<Layered<NodeSettings>, ConfigError> {
        let endpoints = self.cluster.endpoints();
        let globals = NodeSettings {
            etcd: (!endpoints.is_empty()).then_some(endpoints),
            cluster_name: self.cluster.cluster_name.clone(),
            ..self.cluster.security_settings()
        };
        self.resolve(None, args, Some(&globals))
    }

    /// The worker settings, with the global `--coordinator` (comma-separated) over the file's `coordinator`.
    pub fn worker(
        &self,
        defaults: Option<&WorkerSettings>,
        args: &WorkerSettings,
    ) -> Result<Layered<WorkerSettings>, ConfigError> {
        let coordinator = self.coordinator.map(|c| loam_config::values::split_list_with_empties(&[c.to_string()]));
        let globals = WorkerSettings { coordinator, ..Default::default() };
        self.resolve(defaults, args, Some(&globals))
    }

    /// Defaults < process defaults < file < `args` < the global flags in `globals`.
    fn resolve<G: Group>(
        &self,
        defaults: Option<&G>,
        args: &G,
        globals: Option<&G>,
    ) -> Result<Layered<G>, ConfigError> {
        let mut r = Resolver::<G>::new();
        if let Some(d) = defaults {
            r = r.layer(d, |_| Source::Default);
        }
        r = r.file(self.file.as_ref())?.args(args, self.matches);
        if let Some(g) = globals {
            r = r.layer(g, |key| self.global_source(key));
        }
        r.resolve()
    }

    /// The config file's path and where it was named, for `--print-config`.
    pub fn file_path(&self) -> Option<PathBuf> {
        self.file.as_ref().map(|f| f.path().to_path_buf())
    }

    /// The source of a global flag: its environment variable (`LOAM_ETCD`, …) or the flag.
    fn global_source(&self, key: &str) -> Source {
        let id = key.replace('-', "_");
        let from_env = self.matches.is_some_and(|m| {
            m.try_get_raw(&id).is_ok_and(|v| v.is_some()) && m.value_source(&id) == Some(ValueSource::EnvVariable)
        });
        if from_env {
            Source::Env(format!("LOAM_{}", id.to_ascii_uppercase()))
        } else {
            Source::Flag(format!("--{key}"))
        }
    }
}

/// Prints `printout` when `--print-config` was given; says whether it was.
pub fn print_if_asked(flags: &ConfigFlags, printout: impl FnOnce() -> Printout) -> bool {
    if flags.print_config {
        print!("{}", printout());
    }
    flags.print_config
}

/// A printout headed with the process and the config file in use, if any.
pub fn printout(title: &str, file: Option<PathBuf>) -> Printout {
    match file {
        Some(path) => Printout::new(format!("{title}: effective settings, config file {}", path.display())),
        None => Printout::new(format!("{title}: effective settings, no config file")),
    }
}

/// The configuration reference (`docs/CONFIGURATION.md`), written from the settings groups.
pub fn reference() -> String {
    use loam_config::reference::{Section, markdown};
    let sections = [
        Section::of::<NodeSettings>("`loam coordinator`, `loam worker` and `loam local`"),
        Section::of::<CoordinatorSettings>("`loam coordinator` and `loam local`"),
        Section::of::<WorkerSettings>("`loam worker` and `loam local` (each of its workers)"),
        Section::of::<ListenerSettings>("`loam coordinator`, `loam worker` and `loam local`: every listener"),
        Section::of::<crate::local::LocalSettings>("`loam local` only"),
        Section::of::<FuseSettings>("`loam fuse`"),
        Section::of::<loam_config::LogSettings>("`loam coordinator`, `loam worker`, `loam local` and `loam fuse`"),
    ];
    markdown(REFERENCE_INTRO, &sections)
}

const REFERENCE_INTRO: &str = r#"# Configuration reference

<!-- Generated from the settings groups (crates/*/src/settings.rs) by `loam config-reference`; a test fails
     when this file is out of date. Edit the doc comments there, then run:
     cargo run -p loam -- config-reference > docs/CONFIGURATION.md -->

Every setting of a server process is a flag, a key of its TOML config file (`--config FILE`) and, for some,
an environment variable; the key is the long flag's name. Later sources win: the default, then the file,
then the environment, then the flag. `loam <process> --print-config` prints the effective settings, each
with its source (default, file, environment, flag) and secrets masked, then checks them and exits.

- Durations are seconds (`60`) or a string with units: `"60s"`, `"500ms"`, `"1h30m"`, `"7d"`.
- Sizes are bytes (`1048576`) or a string with a unit: `"512KiB"`, `"10GiB"`.
- A list (`etcd`, `cache-dir`) is one string or an array; a list given by flags replaces the file's.
- A key the process does not take, a value of the wrong type, an unreadable duration or size, or settings
  that contradict each other: one error line naming the key and its source, exit code 2, nothing started.
- `version = 1` may head a file (the only format so far).

`loam local` takes the groups of the Coordinator and of the workers (each of its workers gets the worker
settings, worker i on `http-port` + i and `s3-port` + i), and its own below.

A coordinator's file, with a static mount table (then `POST` and `DELETE /api/v1/mount` answer `501`):

```toml
version = 1
etcd = ["http://10.0.0.2:2379", "http://10.0.0.3:2379"]
host = "10.0.0.2"
data-dir = "/var/lib/loam/coordinator"
job-retention = "3d"

[[mount]]
path = "/data"
ufs = "s3://my-bucket/datasets"
options = { "s3.endpoint" = "http://10.0.0.9:9000", "s3a.accessKeyId" = "AKIA…", "s3a.secretKey" = "…" }
```

A worker's file:

```toml
version = 1
etcd = ["http://10.0.0.2:2379", "http://10.0.0.3:2379"]
coordinator = "http://10.0.0.2:19999"
host = "10.0.0.5"
data-dir = "/var/lib/loam/worker"
cache-dir = ["/mnt/nvme0/loam", "/mnt/nvme1/loam"]
cache-size = "1TiB"
memory-size = "8GiB"
max-age = "5m"
```
"#;

#[cfg(test)]
mod tests {
    /// The committed reference is what the settings groups write now.
    #[test]
    fn the_configuration_reference_is_up_to_date() {
        let committed = include_str!("../../../docs/CONFIGURATION.md");
        let fresh = super::reference();
        assert!(
            committed == fresh,
            "docs/CONFIGURATION.md is out of date; regenerate it:\n  cargo run -p loam -- config-reference > docs/CONFIGURATION.md"
        );
    }
}
