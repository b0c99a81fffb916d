//! The command line: global flags, one sub-command per concern, each in `cli/<name>.rs` (the server
//! processes in `local`, `coordinator_cmd` and `worker_cmd`). Output is for humans by default and JSON
//! with `--json`; errors are one line on stderr with a non-zero exit.
//!
//! The cluster flags are global so that one environment (`LOAM_COORDINATOR`, `LOAM_ETCD`,
//! `LOAM_CLUSTER_NAME`) serves every command: the processes read them as their settings (over their
//! config file), the CLI to find the cluster.

pub mod cache;
pub mod diag;
pub mod fs;
pub mod http;
pub mod index;
pub mod job;
pub mod mount;
pub mod nodes;
pub mod rules;
pub mod status;

use crate::cluster_store::ClusterFlags;
use crate::coordinator_cmd::CoordinatorArgs;
use crate::local::LocalArgs;
use crate::worker_cmd::WorkerArgs;
use anyhow::Context;
use clap::parser::ValueSource;
use clap::{Parser, Subcommand};

/// The Coordinator URL the CLI uses when none is given.
pub const DEFAULT_COORDINATOR_URL: &str = "http://127.0.0.1:19999";

/// Loam: a distributed read cache for object stores and file systems.
#[derive(Parser, Debug)]
#[command(name = "loam", version, about)]
pub struct Cli {
    /// The Coordinators' URLs, comma-separated (several of a highly available Coordinator: tried in order,
    /// sticking to the one that answered) [default: http://127.0.0.1:19999]; `loam worker` keeps them for
    /// load forwarding and file index reports.
    #[arg(long, global = true, env = "LOAM_COORDINATOR", value_name = "URL[,URL...]")]
    pub coordinator: Option<String>,
    /// A file holding the bearer token the CLI sends [default: $LOAM_TOKEN, else ./loam-data/admin-token
    /// when it exists].
    #[arg(long, global = true, env = "LOAM_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<std::path::PathBuf>,
    /// etcd and the cluster name.
    #[command(flatten)]
    pub cluster: ClusterFlags,
    /// Trust only this CA (PEM) for HTTPS to the Coordinator and workers [default: the system's roots].
    #[arg(long, global = true, env = "LOAM_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<std::path::PathBuf>,
    /// Client certificate (PEM) for servers that require one (mutual TLS), with --client-key; server
    /// processes present their --tls-cert by default.
    #[arg(long, global = true, env = "LOAM_CLIENT_CERT", value_name = "FILE", requires = "client_key")]
    pub client_cert: Option<std::path::PathBuf>,
    /// Private key (PEM) of --client-cert.
    #[arg(long, global = true, env = "LOAM_CLIENT_KEY", value_name = "FILE", requires = "client_cert")]
    pub client_key: Option<std::path::PathBuf>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// More log output (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Sub-commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a coordinator and workers in this process, on the embedded store (no etcd needed).
    Local(Box<LocalArgs>),
    /// Run a Coordinator (on etcd with --etcd, else on the embedded store under --data-dir).
    Coordinator(CoordinatorArgs),
    /// Run a cache worker of a distributed cluster (needs --etcd).
    Worker(WorkerArgs),
    /// Manage the mount table.
    #[command(subcommand)]
    Mount(mount::MountCommand),
    /// One screen for operators: Coordinator health and leader, workers, capacity, hit ratio, running
    /// jobs; exit 1 when the cluster is unhealthy.
    Status,
    /// Write a diagnostics archive (.tar.gz): versions, status, API answers, metrics of every node,
    /// effective settings (secrets masked), the end of the logs.
    Diag(diag::DiagArgs),
    /// List the workers and whether they are online; `loam nodes drain <id>` drains one.
    Nodes {
        /// `drain <id>`.
        #[command(subcommand)]
        command: Option<nodes::NodesCommand>,
    },
    /// Browse and read files through the cache.
    Fs(fs::FsArgs),
    /// Mount the cluster namespace read-only with FUSE.
    Fuse(crate::fuse_cmd::FuseArgs),
    /// The global file index: which files are cached, cluster-wide.
    #[command(subcommand)]
    Index(index::IndexCommand),
    /// Cluster-wide cache operations (clear-stale).
    #[command(subcommand)]
    Cache(cache::CacheCommand),
    /// TTL rules: cached data under a path is evicted after this many seconds.
    #[command(subcommand)]
    Ttl(rules::RuleCommand),
    /// Priority rules (high, medium, low): low data is evicted first.
    #[command(subcommand)]
    Priority(rules::RuleCommand),
    /// Quotas: how many cached bytes data under a path may take.
    #[command(subcommand)]
    Quota(rules::RuleCommand),
    /// Distributed load and free jobs.
    #[command(subcommand)]
    Job(job::JobCommand),
    /// Print the shell completion script: `source <(loam completions bash)`, or write it where the shell
    /// looks (e.g. `loam completions fish > ~/.config/fish/completions/loam.fish`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the configuration reference (docs/CONFIGURATION.md) written from the settings.
    #[command(hide = true)]
    ConfigReference,
    /// Print the tables of docs/METRICS.md written from the metrics catalogs, or with `--write FILE`
    /// replace them in FILE.
    #[command(hide = true)]
    MetricsReference {
        /// The document whose generated block to replace (between its markers).
        #[arg(long)]
        write: Option<std::path::PathBuf>,
    },
}

impl Command {
    /// The log settings a server process was given by flag or environment (its config file's are known
    /// later), so that its first lines are in that format already.
    fn log_settings(&self) -> Option<&loam_config::LogSettings> {
        match self {
            Command::Local(a) => Some(&a.log),
            Command::Coordinator(a) => Some(&a.log),
            Command::Worker(a) => Some(&a.log),
            Command::Fuse(a) => Some(&a.log),
            _ => None,
        }
    }
}

/// The `loam` command on `args` (the program name first): parses them, runs the command on a runtime of
/// its own, and answers the exit code. It is the `loam` binary's `main`; `loam-bench` runs the server
/// processes of a benchmark with it (`loam-bench loam …`), so that they are the code the bench was built
/// from.
pub fn main(args: impl IntoIterator<Item = std::ffi::OsString>) -> std::process::ExitCode {
    crate::allocator::tune();
    let (cli, matches) = loam_config::parse_with_matches_from::<Cli>(args);
    crate::logging::init(cli.verbose, cli.command.log_settings());
    // TLS (for S3 over https) needs its crypto provider installed before any HTTP client is built.
    loam_ufs::install_process_defaults();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli, Some(&matches))) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            // Settings that cannot be used exit 2, as a bad command line does (nothing was started).
            let config = e.chain().any(|c| c.is::<loam_config::ConfigError>());
            std::process::ExitCode::from(if config { 2 } else { 1 })
        }
    }
}

/// Runs a parsed command line; `matches` (when given) tells the server processes which settings came
/// from environment variables rather than flags.
pub async fn run(cli: Cli, matches: Option<&clap::ArgMatches>) -> anyhow::Result<()> {
    // Before any client is built: every one of this process carries it (`loam_client::tls`).
    let identity = cli.client_cert.clone().zip(cli.client_key.clone());
    let tls = loam_client::tls::ClientTls { ca_cert: cli.ca_cert.clone(), identity };
    if tls != loam_client::tls::ClientTls::default() {
        loam_client::tls::install(&tls).context("loading --ca-cert or --client-cert")?;
    }
    let sub = matches.and_then(|m| m.subcommand().map(|(_, m)| m));
    // Built for the client commands only: the server processes take their settings their own way (`loam
    // worker` checks its `coordinator` list there, naming where it came from).
    let ctx = || -> anyhow::Result<http::Ctx> {
        let from_env = matches.is_some_and(|m| m.value_source("coordinator") == Some(ValueSource::EnvVariable));
        let flag = if from_env { "LOAM_COORDINATOR" } else { "--coordinator" };
        let urls = http::coordinator_urls(cli.coordinator.as_deref(), flag)?;
        http::Ctx::new(&urls, cli.json, http::token(cli.token_file.as_deref())?)
    };
    match cli.command {
        Command::Local(args) => crate::local::run(*args, cli.cluster, sub).await,
        Command::Coordinator(args) => crate::coordinator_cmd::run(args, cli.cluster, sub).await,
        Command::Worker(args) => crate::worker_cmd::run(args, cli.cluster, cli.coordinator.clone(), sub).await,
        Command::Mount(c) => mount::run(&ctx()?, c).await,
        Command::Nodes { command } => nodes::run(&ctx()?, command).await,
        Command::Status => status::run(&ctx()?).await,
        Command::Diag(args) => diag::run(&ctx()?, args).await,
        Command::Fs(args) => fs::run(&ctx()?, &cli.cluster, args).await,
        Command::Fuse(args) => crate::fuse_cmd::run(&ctx()?, &cli.cluster, args, sub).await,
        Command::Job(c) => job::run(&ctx()?, c).await,
        Command::Index(c) => index::run(&ctx()?, c).await,
        Command::Cache(c) => cache::run(&ctx()?, c).await,
        Command::Ttl(c) => rules::run(&ctx()?, rules::RuleKind::Ttl, c).await,
        Command::Priority(c) => rules::run(&ctx()?, rules::RuleKind::Priority, c).await,
        Command::Quota(c) => rules::run(&ctx()?, rules::RuleKind::Quota, c).await,
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "loam", &mut std::io::stdout());
            Ok(())
        }
        Command::ConfigReference => {
            print!("{}", crate::settings::reference());
            Ok(())
        }
        Command::MetricsReference { write: None } => {
            print!("{}", crate::metrics_reference::block());
            Ok(())
        }
        Command::MetricsReference { write: Some(path) } => {
            use anyhow::Context as _;
            let doc = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            let fresh = crate::metrics_reference::replace_block(&doc).with_context(|| {
                format!(
                    "{} lacks the markers of the generated block ({})",
                    path.display(),
                    crate::metrics_reference::BEGIN
                )
            })?;
            std::fs::write(&path, fresh).with_context(|| format!("writing {}", path.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn process_flags_parse() {
        let cli = Cli::try_parse_from([
            "loam",
            "worker",
            "--etcd",
            "http://a:2379,http://b:2379",
            "--coordinator",
            "http://c:19999",
            "--host",
            "h",
            "--http-port",
            "1",
            "--s3-port",
            "2",
            "--data-dir",
            "/d",
            "--cache-size",
            "1GiB",
            "--memory-size",
            "0",
            "--cache-dir",
            "/c1",
            "--cache-dir",
            "/c2",
            "--page-size",
            "4KiB",
            "--max-age",
            "3",
            "--lease-ttl",
            "4",
            "--cluster-name",
            "x",
            "--config",
            "/w.toml",
        ])
        .unwrap();
        assert_eq!(cli.cluster.endpoints(), ["http://a:2379", "http://b:2379"]);
        assert_eq!(cli.cluster.cluster_name(), "x");
        assert_eq!(cli.coordinator.as_deref(), Some("http://c:19999"));
        let Command::Worker(w) = cli.command else { panic!("not a worker command") };
        let w = w.settings.worker;
        let size = |s: Option<loam_config::ByteSize>| s.map(|s| s.0);
        assert_eq!((size(w.cache_size), size(w.memory_size), size(w.page_size)), (Some(1 << 30), Some(0), Some(4096)));
        assert_eq!(w.cache_dir.map(|d| d.len()), Some(2));
        let cli = Cli::try_parse_from(["loam", "coordinator", "--port", "5", "--data-dir", "/d"]).unwrap();
        let Command::Coordinator(c) = cli.command else { panic!("not a coordinator command") };
        assert_eq!(c.coordinator.port, Some(5));
        assert!(Cli::try_parse_from(["loam", "worker", "--cache-size", "lots"]).is_err());
    }

    #[test]
    fn fs_flags_parse_after_the_sub_command() {
        let cli =
            Cli::try_parse_from(["loam", "fs", "cat", "/d/f", "--workers-file", "/w", "--no-ufs-fallback"]).unwrap();
        let Command::Fs(f) = cli.command else { panic!("not an fs command") };
        assert!(f.no_ufs_fallback);
        assert_eq!(f.workers_file, Some("/w".into()));
        assert_eq!(f.command.path(), "/d/f");
    }
}
