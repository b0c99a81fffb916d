//! The command line: global flags, one sub-command per concern, each in `cli/<name>.rs`. Output is for
//! humans by default and JSON with `--json`; errors are one line on stderr with a non-zero exit.

pub mod fs;
pub mod http;
pub mod mount;
pub mod nodes;

use crate::local::LocalArgs;
use clap::{Parser, Subcommand};

/// Loam: a distributed read cache for object stores and file systems.
#[derive(Parser, Debug)]
#[command(name = "loam", version, about)]
pub struct Cli {
    /// The Coordinator's URL.
    #[arg(long, global = true, env = "LOAM_COORDINATOR", default_value = "http://127.0.0.1:19999")]
    pub coordinator: String,
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
    Local(LocalArgs),
    /// Manage the mount table.
    #[command(subcommand)]
    Mount(mount::MountCommand),
    /// List the workers and whether they are online.
    Nodes,
    /// Browse and read files through the cache.
    #[command(subcommand)]
    Fs(fs::FsCommand),
    /// Measure throughput against baselines in the same run (results go to BENCHMARKS.md).
    #[command(subcommand)]
    Bench(BenchCommand),
}

/// Benchmarks.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Read one large file through a worker (cold, warm) against nginx and the local file system.
    Read(crate::bench::BenchArgs),
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let ctx = http::Ctx::new(&cli.coordinator, cli.json)?;
    match cli.command {
        Command::Local(args) => crate::local::run(args).await,
        Command::Mount(c) => mount::run(&ctx, c).await,
        Command::Nodes => nodes::run(&ctx).await,
        Command::Fs(c) => fs::run(&ctx, c).await,
        Command::Bench(BenchCommand::Read(args)) => crate::bench::run(args).await,
    }
}
