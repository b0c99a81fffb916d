//! `loam diag [-o FILE.tar.gz]`: one archive to attach to a support request, gathered through the public
//! APIs with the CLI's usual Coordinator list and token (`cli/http.rs`), so it needs the `read` role only.
//!
//! Members (under `loam-diag/`):
//! - `versions.txt`: this `loam`'s version and git revision (when the build was given one in
//!   `LOAM_GIT_REVISION`), the OS, its kernel and architecture;
//! - `status.json`: what `loam status --json` prints;
//! - `api/<name>.json`: the answers of `nodes`, `coordinators`, `mount`, `load`, `free`, `rebalance`,
//!   `ttl`, `priority` and `quota` as the Coordinator gave them (it masks mount secrets itself);
//! - `metrics/coordinator-<n>.txt` for each Coordinator given, `metrics/<worker id>.txt` for each online
//!   worker: a `/metrics` snapshot;
//! - `config/<kind>-<n>.txt` for each `--config KIND=FILE`: the effective settings of that process as
//!   `loam KIND --config FILE --print-config` prints them (this binary runs it, so the masking is that
//!   command's, the one rule of `loam_core::secrets`, and the environment counts as it would);
//! - `logs/<name>` for each `--log PATH` (a file, or a directory's files): its last [`LOG_TAIL`] bytes;
//! - `errors.txt`: what could not be gathered and why (an archive is written whatever failed).
//!
//! The archive never holds the CLI's token: no member is a request or its headers.

use super::http::Ctx;
use anyhow::{Context, bail};
use flate2::Compression;
use flate2::write::GzEncoder;
use loam_core::coordinator_api::{NODE_ONLINE, NodeList};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The bytes kept from the end of each log.
pub const LOG_TAIL: u64 = 8 << 20;
/// The directory every member is under.
const ROOT: &str = "loam-diag";
/// The process kinds whose settings `--config` may name.
const KINDS: [&str; 4] = ["local", "coordinator", "worker", "fuse"];
/// The API answers gathered, by endpoint (under `/api/v1/`).
const ENDPOINTS: [&str; 9] =
    ["nodes", "coordinators", "mount", "load", "free", "rebalance", "ttl", "priority", "quota"];

/// Flags of `loam diag`.
#[derive(clap::Args, Debug)]
pub struct DiagArgs {
    /// Where to write the archive [default: loam-diag-<unix time>.tar.gz].
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// A process's config file, as `KIND=FILE` (KIND: local, coordinator, worker, fuse); repeatable.
    #[arg(long = "config", value_name = "KIND=FILE")]
    pub configs: Vec<String>,
    /// A log file, or a directory of log files, to include the end of; repeatable.
    #[arg(long = "log", value_name = "PATH")]
    pub logs: Vec<PathBuf>,
}

/// The archive being written, and what failed on the way.
struct Archive {
    tar: tar::Builder<GzEncoder<std::fs::File>>,
    errors: Vec<String>,
    mtime: u64,
}

impl Archive {
    fn add(&mut self, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(self.mtime);
        h.set_cksum();
        self.tar.append_data(&mut h, format!("{ROOT}/{name}"), bytes).with_context(|| format!("writing {name}"))
    }

    /// Adds `what`'s result, or records why it failed.
    fn add_or_note(&mut self, name: &str, what: anyhow::Result<Vec<u8>>) -> anyhow::Result<()> {
        match what {
            Ok(bytes) => self.add(name, &bytes),
            Err(e) => {
                self.errors.push(format!("{name}: {e:#}"));
                Ok(())
            }
        }
    }
}

fn versions() -> String {
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_string())));
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|k| k.trim().to_string()).ok();
    let unknown = || "unknown".to_string();
    format!(
        "loam {}\ngit revision: {}\nos: {} ({})\nkernel: {}\narch: {}\n",
        env!("CARGO_PKG_VERSION"),
        option_env!("LOAM_GIT_REVISION").unwrap_or("not recorded in this build"),
        os.unwrap_or_else(unknown),
        std::env::consts::OS,
        kernel.unwrap_or_else(unknown),
        std::env::consts::ARCH,
    )
}

/// The effective settings of `loam KIND --config FILE`, masked by that command's `--print-config`.
fn effective_config(kind: &str, file: &str) -> anyhow::Result<Vec<u8>> {
    let exe = std::env::current_exe().context("finding the loam binary")?;
    let o = std::process::Command::new(exe)
        .args([kind, "--config", file, "--print-config"])
        .stdin(std::process::Stdio::null())
        .output()
        .context("running --print-config")?;
    if !o.status.success() {
        bail!("loam {kind} --config {file} --print-config failed: {}", String::from_utf8_lossy(&o.stderr).trim());
    }
    Ok(o.stdout)
}

/// The last [`LOG_TAIL`] bytes of `path`.
fn tail(path: &Path) -> anyhow::Result<Vec<u8>> {
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL)))?;
    let mut out = Vec::new();
    f.read_to_end(&mut out)?;
    Ok(out)
}

/// The log files `path` names: itself, or a directory's regular files (sorted).
fn log_files(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut v: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("listing {}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    Ok(v)
}

fn pretty(v: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec_pretty(v).unwrap_or_default()
}

/// `KIND=FILE`, checked before anything is gathered.
fn parse_config(spec: &str) -> anyhow::Result<(&str, &str)> {
    match spec.split_once('=') {
        Some((kind, file)) if KINDS.contains(&kind) && !file.is_empty() => Ok((kind, file)),
        _ => bail!("--config {spec:?}: expected KIND=FILE with KIND one of {}", KINDS.join(", ")),
    }
}

/// Runs `loam diag`.
pub async fn run(ctx: &Ctx, args: DiagArgs) -> anyhow::Result<()> {
    let configs = args.configs.iter().map(|c| parse_config(c)).collect::<anyhow::Result<Vec<_>>>()?;
    let mtime = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let out = args.output.clone().unwrap_or_else(|| PathBuf::from(format!("loam-diag-{mtime}.tar.gz")));
    // Owner-only, as the data directory's private files: logs and API answers say how the cluster is built.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&out)
        .with_context(|| format!("creating {}", out.display()))?;
    let mut a = Archive { tar: tar::Builder::new(GzEncoder::new(file, Compression::default())), errors: vec![], mtime };

    a.add("versions.txt", versions().as_bytes())?;
    let status = super::status::gather(ctx).await.and_then(|s| Ok(serde_json::to_vec_pretty(&s)?));
    a.add_or_note("status.json", status)?;
    for ep in ENDPOINTS {
        let answer = ctx.get::<serde_json::Value>(ep, &[]).await.map(|v| pretty(&v));
        a.add_or_note(&format!("api/{ep}.json"), answer)?;
    }
    for (i, url) in ctx.coordinators.urls().iter().enumerate() {
        let text = super::status::fetch_text(ctx, &format!("{url}/metrics")).await.map(String::into_bytes);
        a.add_or_note(&format!("metrics/coordinator-{i}.txt"), text.map_err(anyhow::Error::msg))?;
    }
    match ctx.get::<NodeList>("nodes", &[]).await {
        Ok(nodes) => {
            for n in nodes.result.iter().filter(|n| n.status == NODE_ONLINE) {
                let scheme = if n.tls { "https" } else { "http" };
                let url = format!("{scheme}://{}/metrics", n.address);
                let text = super::status::fetch_text(ctx, &url).await.map(String::into_bytes);
                a.add_or_note(&format!("metrics/{}.txt", n.identity), text.map_err(anyhow::Error::msg))?;
            }
        }
        Err(e) => a.errors.push(format!("metrics of the workers: {e:#}")),
    }
    for (i, (kind, file)) in configs.iter().enumerate() {
        a.add_or_note(&format!("config/{kind}-{i}.txt"), effective_config(kind, file))?;
    }
    for path in &args.logs {
        match log_files(path) {
            Ok(files) => {
                for f in files {
                    let name = f.file_name().map_or_else(|| "log".into(), |n| n.to_string_lossy().into_owned());
                    a.add_or_note(&format!("logs/{name}"), tail(&f))?;
                }
            }
            Err(e) => a.errors.push(format!("logs {}: {e:#}", path.display())),
        }
    }
    let errors = a.errors.join("\n");
    a.add("errors.txt", errors.as_bytes())?;
    let gz = a.tar.into_inner().context("finishing the archive")?;
    gz.finish().context("finishing the archive")?.flush()?;
    let summary = serde_json::json!({ "archive": out.display().to_string(), "errors": a.errors });
    ctx.print(&summary, || {
        let mut t = format!("wrote {}", out.display());
        if !a.errors.is_empty() {
            t.push_str(&format!(" ({} parts could not be gathered: see errors.txt)", a.errors.len()));
        }
        t
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn config_specs_name_a_known_kind_and_a_file() {
        assert_eq!(super::parse_config("worker=/etc/w.toml").unwrap(), ("worker", "/etc/w.toml"));
        for bad in ["worker", "nope=/x", "worker=", "=x"] {
            let e = super::parse_config(bad).unwrap_err().to_string();
            assert!(e.contains("KIND=FILE"), "{bad}: {e}");
        }
    }
}
