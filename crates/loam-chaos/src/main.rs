//! `loam-chaos`: the chaos soak (see the library's header and docs/RELIABILITY.md). Prints a table per
//! fault (or JSON with `--json`) and exits 1 when the goal is missed, 2 when the soak could not run.
//!
//! `loam-chaos loam <args>` (not in the help) is the `loam` command itself: the soak starts its processes
//! that way.

use clap::Parser;
use std::ffi::OsString;
use std::process::ExitCode;
use std::time::Duration;

/// The chaos soak: etcd, a Coordinator and three workers as processes; verified readers (boto3, the
/// alluxio client, loam fs cat, FUSE); loads and frees in a loop; faults in turn. Exits 1 when a byte was
/// wrong, a job lost or wrongly SUCCEEDED, or a read failed where it should not have.
#[derive(Parser, Debug)]
#[command(name = "loam-chaos", version, about)]
struct Cli {
    /// How long faults go on (every fault runs at least once), e.g. 30m, 180s.
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    duration: Duration,
    /// Seed of every random choice (files read, bytes flipped, files rewritten).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How long each fault is held.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    hold: Duration,
    /// The pause after each fault is healed.
    #[arg(long, default_value = "8s", value_parser = parse_duration)]
    settle: Duration,
    /// The workers' lease TTL.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    lease_ttl: Duration,
    /// What an error stretch of a reader addressing a dead worker may exceed the lease TTL by.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    margin: Duration,
    /// Keep the cluster's directory (logs, caches) here instead of a temp dir.
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == loam_chaos::LOAM) {
        return loam::cli::main(args.into_iter().skip(1));
    }
    let cli = Cli::parse_from(args);
    let opts = loam_chaos::Options {
        duration: cli.duration,
        seed: cli.seed,
        hold: cli.hold,
        settle: cli.settle,
        lease_ttl: cli.lease_ttl,
        margin: cli.margin,
        dir: cli.dir,
    };
    match loam_chaos::run(&opts) {
        Ok(report) => {
            if cli.json {
                println!("{}", report.json());
            } else {
                print!("{}", report.text());
            }
            if report.passed() { ExitCode::SUCCESS } else { ExitCode::from(1) }
        }
        Err(e) => {
            eprintln!("error: the soak could not run: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// `90s`, `3m`, `1h`, `500ms`, or plain seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s.find(|c: char| !c.is_ascii_digit()).map_or((s, ""), |i| s.split_at(i));
    let n: u64 = num.parse().map_err(|_| format!("`{s}` is not a duration (e.g. 30m, 90s, 500ms)"))?;
    match unit {
        "" | "s" => Ok(Duration::from_secs(n)),
        "ms" => Ok(Duration::from_millis(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("`{s}`: unknown unit `{unit}` (ms, s, m, h)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent_and_durations_parse() {
        Cli::command().debug_assert();
        assert_eq!(parse_duration("3m"), Ok(Duration::from_secs(180)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("3 weeks").is_err());
        let cli = Cli::try_parse_from(["loam-chaos"]).unwrap();
        assert_eq!((cli.duration, cli.seed, cli.json), (Duration::from_secs(1800), 1, false));
    }
}
