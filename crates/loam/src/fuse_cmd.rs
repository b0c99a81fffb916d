//! `loam fuse --mount-point DIR`: mounts the cluster namespace read-only (the `loam-fuse` crate).
//!
//! The mount table and the ring come from where `loam fs` takes them (`cli/fs/session.rs`): etcd with
//! `--etcd` (real mount options, so the UFS fallback covers every mount), else the Coordinator (its
//! mount API, and its nodes API polled for the ring; the fallback then covers `file://` mounts only,
//! since the Coordinator masks credentials). Both are followed while mounted: the mount table is read
//! again once the attribute TTL has passed, the ring follows membership. The fallback keeps the mount
//! table it started with.
//!
//! With `--foreground` the command runs the mount until SIGINT/SIGTERM or an outside unmount, then
//! unmounts. Without it, it starts itself again with `--foreground` as a background process, waits
//! until that one has mounted, and returns. The background process keeps none of the caller's output
//! streams (a caller capturing them, as `$(loam fuse …)` does, would otherwise wait for the unmount):
//! it logs to `--log-file`, or nowhere.
//!
//! With `--metrics-port`, the mount's metrics (`loam_fuse::metrics`) are served at `GET /metrics` on
//! `--metrics-host` (loopback by default: FUSE has no credentials to check a scraper's against) until the
//! mount ends. A port that cannot be bound fails the command before it reports the mount as up.

use crate::cli::fs::{mounts_from_coordinator, mounts_from_store};
use crate::cli::http::Ctx;
use crate::cluster_store::{self, ClusterFlags};
use crate::settings::{ConfigFlags, Inputs};
use anyhow::{Context, bail};
use clap::{ArgMatches, Args};
use futures::future::BoxFuture;
use loam_client::reader::UfsFallback;
use loam_client::{Client, MembershipView, static_members};
use loam_config::{ConfigError, Layered, LogSettings, field_names};
use loam_core::hash_ring::DEFAULT_VIRTUAL_NODES;
use loam_fuse::{FuseConfig, FuseSettings, MountSource};
use loam_store::ClusterStore;
use loam_ufs::{MountTable, UfsRegistry};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The banner's last line: the mount is up.
const READY_LINE: &str = "Press Ctrl-C to stop.";
/// How often the ring is refreshed from the Coordinator's nodes API.
const NODES_POLL: Duration = Duration::from_secs(5);

/// Flags of `loam fuse`.
#[derive(Args, Debug, Clone)]
pub struct FuseArgs {
    /// `--config`, `--print-config`.
    #[command(flatten)]
    pub config: ConfigFlags,
    /// Run in the foreground until SIGINT/SIGTERM (else the mount runs in a background process).
    #[arg(long)]
    pub foreground: bool,
    /// The mount's settings.
    #[command(flatten)]
    pub settings: FuseSettings,
    /// The log's format.
    #[command(flatten)]
    pub log: LogSettings,
}

/// The merged settings of `loam fuse`.
#[derive(Debug)]
pub struct Resolved {
    /// The mount's settings.
    pub settings: Layered<FuseSettings>,
    /// The log's.
    pub log: Layered<LogSettings>,
    /// The mount's configuration, checked.
    pub cfg: FuseConfig,
    /// The config file, if any.
    pub file: Option<PathBuf>,
}

/// The merged settings of `loam fuse`: flags over environment over the `--config` file over the defaults.
pub fn resolve(args: &FuseArgs, cluster: &ClusterFlags, matches: Option<&ArgMatches>) -> Result<Resolved, ConfigError> {
    let inputs = Inputs::new(
        &args.config,
        &[field_names::<FuseSettings>(), field_names::<LogSettings>()],
        matches,
        cluster,
        None,
    )?;
    let settings = inputs.group(None, &args.settings)?;
    let log = inputs.group(None, &args.log)?;
    let cfg = FuseConfig::from_settings(&settings)?;
    Ok(Resolved { settings, log, cfg, file: inputs.file_path() })
}

/// The mount table's source while mounted.
enum Mounts {
    Coordinator(Ctx),
    Store(Arc<dyn ClusterStore>, String),
}

impl MountSource for Mounts {
    fn mount_table(&self) -> BoxFuture<'_, Result<MountTable, String>> {
        Box::pin(async move {
            match self {
                Mounts::Coordinator(ctx) => mounts_from_coordinator(ctx).await,
                Mounts::Store(store, cluster) => mounts_from_store(store.as_ref(), cluster).await,
            }
            .map_err(|e| format!("{e:#}"))
        })
    }
}

/// Runs `loam fuse`.
pub async fn run(
    ctx: &Ctx,
    cluster: &ClusterFlags,
    args: FuseArgs,
    matches: Option<&ArgMatches>,
) -> anyhow::Result<()> {
    let Resolved { settings, log, cfg, file } = resolve(&args, cluster, matches)?;
    crate::logging::set_format(&log.value);
    let printout = || crate::settings::printout("loam fuse", file).group(&settings).group(&log);
    if crate::settings::print_if_asked(&args.config, printout) {
        return Ok(());
    }
    let settings = settings.value;
    if !args.foreground {
        let log = settings.log_file.clone();
        return tokio::task::spawn_blocking(move || start_in_background(log)).await?;
    }
    let (stop, stopped) = watch::channel(false);
    let endpoints = cluster.endpoints();
    let (mounts, members, follower) = if endpoints.is_empty() {
        let Some((view, task)) = follow_when_up(&ctx.coordinators, stopped).await? else {
            return Ok(());
        };
        (Mounts::Coordinator(Ctx { json: false, ..ctx.clone() }), view, task)
    } else {
        let store = cluster_store::connect_etcd(&endpoints, &cluster.security()).await?;
        let name = cluster.cluster_name().to_string();
        let (view, task) = MembershipView::follow_store(store.clone(), &name, DEFAULT_VIRTUAL_NODES, stopped)
            .await
            .context("reading the workers from etcd")?;
        (Mounts::Store(store, name), view, task)
    };
    let result = mount_until_stopped(ctx, &settings, cfg, mounts, members).await;
    let _ = stop.send(true);
    let _ = follower.await;
    result
}

/// Set by `loam fuse` (in the background) for the process it starts with `--foreground`: no waiting.
const FAIL_FAST_ENV: &str = "LOAM_FUSE_FAIL_FAST";

/// Follows the Coordinator's nodes API, waiting while no Coordinator answers (a FUSE DaemonSet starts beside
/// the Coordinators, and a crash loop would only add the kubelet's back-off): the reason is logged at once
/// and every minute, retries back off to 5 s. A refusal (a bad token: 401, 403) fails at once; a signal
/// during the wait ends it (`None`).
async fn follow_when_up(
    coordinators: &loam_client::Coordinators,
    stopped: watch::Receiver<bool>,
) -> anyhow::Result<Option<(MembershipView, tokio::task::JoinHandle<()>)>> {
    let (mut backoff, mut logged) = (Duration::from_millis(250), None::<std::time::Instant>);
    let signal = crate::assembly::shutdown_signal();
    tokio::pin!(signal);
    loop {
        let followed = MembershipView::follow_coordinator(
            coordinators.clone(),
            DEFAULT_VIRTUAL_NODES,
            NODES_POLL,
            stopped.clone(),
        );
        match followed.await {
            Ok(f) => return Ok(Some(f)),
            Err(e) if e.is_retryable() && std::env::var_os(FAIL_FAST_ENV).is_none() => {
                if logged.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                    tracing::warn!(
                        "waiting for a Coordinator: listing the workers at {}: {e}",
                        coordinators.describe()
                    );
                    logged = Some(std::time::Instant::now());
                }
            }
            Err(e) => return Err(e).with_context(|| format!("listing the workers at {}", coordinators.describe())),
        }
        tokio::select! {
            s = &mut signal => {
                eprintln!("{}: stopped while waiting for a Coordinator", s?);
                return Ok(None);
            }
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn mount_until_stopped(
    ctx: &Ctx,
    args: &FuseSettings,
    cfg: FuseConfig,
    mounts: Mounts,
    members: MembershipView,
) -> anyhow::Result<()> {
    let table = mounts.mount_table().await.map_err(anyhow::Error::msg).context("reading the mount table")?;
    let members = match &args.workers_file {
        Some(file) => static_members::view(file, DEFAULT_VIRTUAL_NODES)?,
        None => members,
    };
    let fallback = (args.no_ufs_fallback != Some(true)).then(|| {
        let usable = match &mounts {
            Mounts::Store(..) => table.clone(),
            Mounts::Coordinator(_) => {
                MountTable::from_mounts(table.iter().filter(|m| m.ufs_uri().scheme == "file").cloned())
            }
        };
        UfsFallback { mounts: usable, registry: UfsRegistry::new() }
    });
    let client = Client::new(ctx.http.clone(), members, fallback);
    let rt = tokio::runtime::Handle::current();
    let mounts: Arc<dyn MountSource> = Arc::new(mounts);
    let mounted = tokio::task::spawn_blocking(move || loam_fuse::mount(client, mounts, &cfg, rt)).await??;
    let (stop_metrics, metrics_stopped) = watch::channel(false);
    let metrics = match args.metrics_port {
        Some(port) => {
            let host = args.metrics_host.as_deref().unwrap_or(loam_fuse::settings::DEFAULT_METRICS_HOST);
            let listener = loam_listener::Listener::bind(host, port, &Default::default())
                .await
                .with_context(|| format!("binding the metrics listener on {host}:{port}"))?;
            let url = listener.url()?;
            let mut stopped = metrics_stopped;
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            let task = tokio::spawn(loam_fuse::metrics::serve(listener, mounted.metrics(), shutdown));
            Some((url, task))
        }
        None => None,
    };
    println!("Loam FUSE mount at {} ({} mount points)", mounted.mount_point().display(), table.len());
    if let Some((url, _)) = &metrics {
        println!("Metrics at {url}/metrics");
    }
    println!("{READY_LINE}");
    std::io::stdout().flush()?;
    // Nothing goes to stdout from here on: in the background its reader has gone.
    let why = tokio::select! {
        s = crate::assembly::shutdown_signal() => s?,
        _ = mounted.ended() => "unmounted from outside",
    };
    eprintln!("{why}: unmounting {}", mounted.mount_point().display());
    let _ = stop_metrics.send(true);
    if let Some((_, task)) = metrics {
        task.await??;
    }
    tokio::task::spawn_blocking(move || mounted.unmount()).await??;
    Ok(())
}

/// Starts this command again with `--foreground` in its own process group and returns once it has
/// mounted (its banner passed on), or fails with its exit status.
fn start_in_background(log: Option<PathBuf>) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;
    let exe = std::env::current_exe().context("finding the loam binary")?;
    let stderr = match &log {
        Some(path) => Stdio::from(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening the log file {}", path.display()))?,
        ),
        None => Stdio::null(),
    };
    let mut child = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .arg("--foreground")
        // The caller waits for the mount: an absent Coordinator is its error now, not a wait.
        .env(FAIL_FAST_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .process_group(0)
        .spawn()
        .context("starting the mount process")?;
    let stdout = child.stdout.take().context("the mount process's output")?;
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        if line == READY_LINE {
            println!("running in the background as pid {} (unmount with: fusermount3 -u DIR, or kill it)", child.id());
            return Ok(());
        }
        println!("{line}");
    }
    let status = child.wait()?;
    let see =
        log.map(|p| format!("; see {}", p.display())).unwrap_or_else(|| "; run with --foreground to see why".into());
    bail!("the mount process exited before mounting ({status}{see})")
}

#[cfg(test)]
mod tests {
    use crate::cli::{Cli, Command};
    use clap::Parser;
    use std::time::Duration;

    #[test]
    fn fuse_flags_parse_with_defaults_and_the_global_cluster_flags() {
        let cli = Cli::try_parse_from(["loam", "fuse", "--mount-point", "/mnt/l", "--etcd", "http://e:2379"]).unwrap();
        assert_eq!(cli.cluster.endpoints(), ["http://e:2379"]);
        let Command::Fuse(f) = cli.command else { panic!("not loam fuse") };
        let super::Resolved { settings: s, cfg, .. } = super::resolve(&f, &cli.cluster, None).unwrap();
        let s = s.value;
        assert_eq!(cfg.mount_point.to_str(), Some("/mnt/l"));
        assert!(!f.foreground && !cfg.allow_other && s.no_ufs_fallback != Some(true));
        assert_eq!((cfg.attr_ttl, cfg.readahead.window, cfg.readahead.windows), (Duration::from_secs(1), 4 << 20, 2));
        assert_eq!((cfg.kernel_readahead, cfg.threads, s.log_file), (4 << 20, 2, None));
        assert_eq!(cfg.max_background, 64);
        let cli = Cli::try_parse_from([
            "loam",
            "fuse",
            "--mount-point",
            "m",
            "--foreground",
            "--attr-timeout",
            "250ms",
            "--readahead",
            "8MiB",
            "--readahead-windows",
            "3",
            "--threads",
            "4",
            "--max-background",
            "128",
        ])
        .unwrap();
        let Command::Fuse(f) = cli.command else { panic!("not loam fuse") };
        assert!(f.foreground);
        let cfg = super::resolve(&f, &cli.cluster, None).unwrap().cfg;
        assert_eq!(
            (cfg.attr_ttl, cfg.readahead.window, cfg.readahead.windows),
            (Duration::from_millis(250), 8 << 20, 3)
        );
        assert_eq!((cfg.threads, cfg.max_background), (4, 128));
        for bad in [["--threads", "0"], ["--max-background", "0"]] {
            let cli = Cli::try_parse_from(["loam", "fuse", "--mount-point", "m", bad[0], bad[1]]).unwrap();
            let Command::Fuse(f) = cli.command else { panic!("not loam fuse") };
            let err = super::resolve(&f, &cli.cluster, None).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains("must be at least 1"), "{bad:?}: {err}");
        }
        assert!(Cli::try_parse_from(["loam", "fuse", "--mount-point", "m", "--max-background", "70000"]).is_err());
        assert!(Cli::try_parse_from(["loam", "fuse"]).is_err(), "the mount point is required");
        assert!(Cli::try_parse_from(["loam", "fuse", "--mount-point", "m", "--attr-timeout", "soon"]).is_err());
        let cli = Cli::try_parse_from(["loam", "fuse", "--mount-point", "m", "--readahead", "0"]).unwrap();
        let Command::Fuse(f) = cli.command else { panic!("not loam fuse") };
        assert_eq!(super::resolve(&f, &cli.cluster, None).unwrap().cfg.readahead.windows, 0, "0 turns read-ahead off");
    }

    #[test]
    fn the_mount_point_may_come_from_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fuse.toml");
        std::fs::write(&path, "mount-point = \"/mnt/f\"\nthreads = 4\nattr-timeout = \"2s\"\n").unwrap();
        let path = path.display().to_string();
        let cli = Cli::try_parse_from(["loam", "fuse", "--config", &path, "--threads", "3"]).unwrap();
        let Command::Fuse(f) = cli.command else { panic!("not loam fuse") };
        let cfg = super::resolve(&f, &cli.cluster, None).unwrap().cfg;
        assert_eq!((cfg.mount_point.to_str(), cfg.threads, cfg.attr_ttl), (Some("/mnt/f"), 3, Duration::from_secs(2)));
        std::fs::write(&path, "threads = 4\n").unwrap();
        let cli = Cli::try_parse_from(["loam", "fuse", "--config", &path]).unwrap();
        let Command::Fuse(f) = cli.command else { panic!("not loam fuse") };
        let e = super::resolve(&f, &cli.cluster, None).unwrap_err();
        assert!(e.to_string().contains("--mount-point"), "{e}");
        std::fs::write(&path, "mount-point = \"/m\"\ncache-size = 1\n").unwrap();
        let e = super::resolve(&f, &cli.cluster, None).unwrap_err();
        assert!(e.to_string().contains("unknown field `cache-size`"), "{e}");
    }
}
