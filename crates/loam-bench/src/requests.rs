//! `loam-bench requests`: small random reads — what one request costs — through a worker's HTTP API
//! (`/v1/range`) and its S3 API (GetObject with `Range`), against nginx answering the same `Range`
//! requests for the same file, in one run.
//!
//! Set-up: an in-process `loam local` with one worker (anonymous S3 reads on) under a temp dir, and a test
//! file (default 1 GiB, four times the memory tier, so most hits are the disk tier's) in a `file://` UFS
//! mounted at `/bench`, which nginx (Debian's, `sendfile on`) serves too. The worker's cache is filled first by one whole GET, and the file is read once so that
//! nginx's reads hit the page cache: every variant is warm.
//!
//! Each round runs every variant for `--seconds`, interleaved: `--connections` clients, each on its own
//! kept-alive connection, each sending one request at a time for a random `--request-size`-aligned range
//! of the file. Every answer must be `206` with exactly the range's length; one in [`CHECK_EVERY`] is
//! compared byte for byte with the file. Medians of requests/s are reported with the ratio to nginx.
//!
//! CPU (`crate::cpu`): per request, in microseconds, of the serving side (nginx's process; the worker,
//! which runs on the serving runtime in this process) and of the client (reqwest on the bench's runtime),
//! over all rounds. On a 2-core machine client and server share the cores, so requests/s is what the
//! pair achieves; the server's µs/request is the figure to cut.
//!
//! `--client wrk` sends the same requests with wrk instead (see [`wrk`]): a client that costs the shared
//! cores less, as in the first figures.
//!
//! The S3 requests are unsigned (anonymous read): a SigV4 check adds an HMAC chain per request on both
//! sides; its cost is measured apart, not here.

use crate::cpu::{self, InProcess};
use crate::median;
use crate::read::{Nginx, start_nginx};
use anyhow::{Context, bail};
use clap::Args;
use loam_core::size::parse_size;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod wrk;

/// One answer in this many is compared byte for byte with the file (all are checked for status and length).
const CHECK_EVERY: u64 = 64;

/// Flags of `loam-bench requests`.
#[derive(Args, Debug, Clone)]
pub struct RequestsArgs {
    /// Size of the test file (by default 4x the memory tier: most requests are disk-tier hits).
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    pub size: u64,
    /// Size of each request's range (ranges are aligned to it).
    #[arg(long, default_value = "4KiB", value_parser = parse_size)]
    pub request_size: u64,
    /// Connections, each with one request in flight.
    #[arg(long, default_value_t = 16)]
    pub connections: usize,
    /// Seconds each variant runs per round.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Rounds (each runs every variant once).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Memory tier of the worker.
    #[arg(long, default_value = "256MiB", value_parser = parse_size)]
    pub memory_size: u64,
    /// Working directory (test file, cluster state); a temp dir by default.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// nginx binary.
    #[arg(long, default_value = "/usr/sbin/nginx")]
    pub nginx: PathBuf,
    /// The client that sends the requests.
    #[arg(long, value_enum, default_value_t = Client::Reqwest)]
    pub client: Client,
    /// wrk binary (`--client wrk`).
    #[arg(long, default_value = "wrk")]
    pub wrk: PathBuf,
}

/// Which client sends the requests.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// reqwest on the bench's runtime, one answer in 64 compared with the file.
    Reqwest,
    /// wrk (C), every answer checked for status and length.
    Wrk,
}

/// The variants, in the order each round runs them.
pub const VARIANTS: [&str; 3] = ["nginx Range", "worker /v1/range", "worker S3 GetObject Range"];

/// What a run measured.
#[derive(Debug, Clone)]
pub struct RequestsReport {
    /// Median requests/s of each of [`VARIANTS`].
    pub medians: Vec<f64>,
    /// Microseconds of server CPU per request, over all rounds, for each of [`VARIANTS`].
    pub server_us: Vec<f64>,
    /// Microseconds of client CPU per request, over all rounds, for each of [`VARIANTS`].
    pub client_us: Vec<f64>,
    /// Requests sent in all, every answer checked.
    pub requests: u64,
}

/// Runs the benchmark and prints a table.
pub async fn run(args: RequestsArgs, serve: &tokio::runtime::Handle) -> anyhow::Result<()> {
    let r = measure(&args, serve).await?;
    println!(
        "\nfile {} bytes, random {}-byte ranges, {} connections with one request each, {} rounds of {} s per \
         variant, medians (CPU = user + system microseconds per request, over all rounds):",
        args.size, args.request_size, args.connections, args.rounds, args.seconds
    );
    println!(
        "| variant | requests/s | vs nginx | server CPU µs/request | client CPU µs/request | CPU vs nginx |\n\
         | --- | ---: | ---: | ---: | ---: | ---: |"
    );
    let total = |i: usize| r.server_us[i] + r.client_us[i];
    eprintln!("{} requests answered, every one checked for status and length", r.requests);
    for (i, name) in VARIANTS.iter().enumerate() {
        println!(
            "| {name} | {:.0} | {:.2}x | {:.1} | {:.1} | {} |",
            r.medians[i],
            r.medians[i] / r.medians[0],
            r.server_us[i],
            r.client_us[i],
            cpu::ratio(total(i), total(0))
        );
    }
    Ok(())
}

/// Sets the cluster and nginx up, runs the rounds, and shuts them down.
/// The cluster runs on `serve` (the client on the caller's runtime), so that their CPU is told apart.
pub async fn measure(args: &RequestsArgs, serve: &tokio::runtime::Handle) -> anyhow::Result<RequestsReport> {
    if args.request_size == 0 || args.size < args.request_size || args.connections == 0 || args.rounds == 0 {
        bail!("--request-size must be more than 0 and at most --size; --connections and --rounds more than 0");
    }
    if !(args.seconds > 0.0 && args.seconds.is_finite()) {
        bail!("--seconds must be more than 0");
    }
    let tmp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let ufs_dir = dir.join("ufs");
    std::fs::create_dir_all(&ufs_dir)?;
    let file = ufs_dir.join("small-reads.bin");
    crate::write_test_file(&file, args.size)?;
    let nginx = start_nginx(&args.nginx, &dir, &ufs_dir)?;
    let cluster = serve
        .spawn(loam::local::start(crate::s3::local_args(1, args.memory_size, args.size, &dir.join("cluster"))?))
        .await??;
    let result = rounds(args, &cluster, &nginx, &ufs_dir, &file).await;
    cluster.shutdown().await;
    result
}

/// Where a variant's requests go (for either client).
#[derive(Clone)]
struct Target {
    /// The URL without the range.
    base: String,
    /// The range goes in the URL (`&offset=…&length=…`, answered 200) rather than a `Range` header (206).
    query: bool,
    /// A bearer token, if the target needs one.
    token: Option<String>,
}

impl Target {
    fn url(&self, lo: u64, hi: u64) -> String {
        match self.query {
            true => format!("{}&offset={lo}&length={}", self.base, hi - lo),
            false => self.base.clone(),
        }
    }

    /// A client for one connection (reqwest keeps one connection per client when one request is in flight).
    fn client(&self) -> reqwest::Client {
        match &self.token {
            Some(t) => loam_testsupport::auth::client_with(t),
            None => loam_testsupport::auth::anonymous_client(),
        }
    }
}

async fn rounds(
    args: &RequestsArgs,
    cluster: &loam::local::LocalCluster,
    nginx: &Nginx,
    ufs_dir: &Path,
    file: &Path,
) -> anyhow::Result<RequestsReport> {
    let admin = loam_testsupport::auth::client_with(&cluster.admin_token);
    let mount = serde_json::json!({ "path": "/bench", "ufs": format!("file://{}", ufs_dir.display()) });
    let r = admin.post(format!("{}/api/v1/mount", cluster.coordinator_url)).json(&mount).send().await?;
    if !r.status().is_success() {
        bail!("mounting /bench: HTTP {}: {}", r.status(), r.text().await.unwrap_or_default());
    }
    let worker = &cluster.workers[0];
    let name = file.file_name().and_then(|n| n.to_str()).context("the test file's name")?;
    let uri = format!("file://{}", file.display());
    let id = loam_core::file_id(&uri);
    let (http_base, s3_base, token) = (worker.http_base(), worker.s3_base(), cluster.admin_token.clone());
    let s3_url = format!("{s3_base}/bench/{name}");
    crate::s3::wait_for(&loam_testsupport::auth::anonymous_client(), &s3_url).await?;
    // Fill the worker's cache (and the page cache under nginx's file) before anything is measured.
    let whole = admin.get(format!("{http_base}/v1/range/{id}?ufsFullPath={uri}&offset=0&length={}", args.size));
    let mut body = whole.send().await?.error_for_status()?.bytes_stream();
    let mut n = 0u64;
    while let Some(chunk) = futures::StreamExt::next(&mut body).await {
        n += chunk?.len() as u64;
    }
    if n != args.size {
        bail!("the warming read returned {n} bytes, the file has {}", args.size);
    }
    std::fs::read(file)?;

    let targets = [
        Target { base: format!("http://127.0.0.1:{}/{name}", nginx.port), query: false, token: None },
        Target { base: format!("{http_base}/v1/range/{id}?ufsFullPath={uri}"), query: true, token: Some(token) },
        Target { base: s3_url, query: false, token: None },
    ];
    let file = Arc::new(std::fs::File::open(file)?);
    let nginx_cpu = || cpu::process(nginx.child.id());
    let mut results: Vec<Vec<f64>> = vec![Vec::new(); VARIANTS.len()];
    let (mut server, mut client, mut count) = (vec![0.0; 3], vec![0.0; 3], vec![0u64; 3]);
    let mut requests = 0;
    for round in 0..args.rounds {
        for (i, target) in targets.iter().enumerate() {
            let (cpu0, nginx0) = (InProcess::sample()?, nginx_cpu()?);
            let (t0, children0) = (Instant::now(), cpu::children());
            let (n, rate) = match args.client {
                Client::Reqwest => {
                    let n = drive(args, target, &file, round as u64 * 1000 + i as u64).await?;
                    (n, n as f64 / t0.elapsed().as_secs_f64())
                }
                Client::Wrk => {
                    let r = run_wrk(args, target, ufs_dir).await?;
                    (r.requests, r.per_second)
                }
            };
            let (mut used, nginx_used) = (InProcess::sample()?.since(cpu0), nginx_cpu()? - nginx0);
            if args.client == Client::Wrk {
                used.client = cpu::children() - children0;
            }
            eprintln!("round {round}: {:<28} {rate:>9.0} requests/s", VARIANTS[i]);
            results[i].push(rate);
            server[i] += if i == 0 { nginx_used } else { used.server };
            client[i] += used.client;
            count[i] += n;
            requests += n;
        }
    }
    let per =
        |secs: &[f64]| -> Vec<f64> { secs.iter().zip(&count).map(|(s, n)| s * 1e6 / (*n).max(1) as f64).collect() };
    Ok(RequestsReport {
        medians: results.iter_mut().map(|v| median(v)).collect(),
        server_us: per(&server),
        client_us: per(&client),
        requests,
    })
}

/// Runs wrk against `target` for `--seconds` (its script goes beside the test file).
async fn run_wrk(args: &RequestsArgs, target: &Target, dir: &Path) -> anyhow::Result<wrk::WrkRun> {
    let (bin, dir) = (args.wrk.clone(), dir.parent().unwrap_or(dir).to_path_buf());
    let (slots, rs, c) = (args.size / args.request_size, args.request_size, args.connections);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let seconds = Duration::from_secs_f64(args.seconds.ceil());
    let target = target.clone();
    tokio::task::spawn_blocking(move || wrk::run(&bin, &dir, &target, slots, rs, c, threads, seconds)).await?
}

/// Runs `--connections` clients against `target` for `--seconds`; the requests answered.
async fn drive(args: &RequestsArgs, target: &Target, file: &Arc<std::fs::File>, seed: u64) -> anyhow::Result<u64> {
    let deadline = Instant::now() + Duration::from_secs_f64(args.seconds);
    let slots = args.size / args.request_size;
    let clients = (0..args.connections).map(|c| {
        let http = target.client();
        let mut rng = Xorshift::new(seed.wrapping_mul(0x9e37_79b9).wrapping_add(c as u64 + 1));
        let file = file.clone();
        let rs = args.request_size;
        async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                let lo = rng.next() % slots * rs;
                let hi = lo + rs;
                let mut req = http.get(target.url(lo, hi));
                if !target.query {
                    req = req.header("Range", format!("bytes={lo}-{}", hi - 1));
                }
                let r = req.send().await?;
                let status = r.status();
                let body = r.bytes().await?;
                let want_status = if target.query { 200 } else { 206 };
                if status.as_u16() != want_status || body.len() as u64 != rs {
                    bail!("bytes {lo}..{hi}: HTTP {status} with {} bytes", body.len());
                }
                if n.is_multiple_of(CHECK_EVERY) {
                    let mut want = vec![0u8; rs as usize];
                    file.read_exact_at(&mut want, lo)?;
                    if body[..] != want[..] {
                        bail!("bytes {lo}..{hi} differ from the file");
                    }
                }
                n += 1;
            }
            Ok(n)
        }
    });
    let mut total = 0;
    for r in futures::future::join_all(clients).await {
        total += r?;
    }
    Ok(total)
}

/// A small, fast, seeded generator of offsets (xorshift64).
struct Xorshift(u64);

impl Xorshift {
    fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `measure` fails on any answer that is not the range's status and length (and, with reqwest, on one
    /// that is not the file's bytes).
    async fn short_run(client: Client) {
        let dir = tempfile::tempdir().unwrap();
        let args = RequestsArgs {
            size: (2 << 20) + 4096,
            request_size: 4096,
            connections: 3,
            seconds: if client == Client::Wrk { 1.0 } else { 0.3 },
            rounds: 1,
            memory_size: 4 << 20,
            dir: Some(dir.path().to_path_buf()),
            nginx: "/usr/sbin/nginx".into(),
            client,
            wrk: "wrk".into(),
        };
        let serve = cpu::serve_runtime().unwrap();
        let r = measure(&args, serve.handle()).await.unwrap();
        serve.shutdown_background();
        assert!(r.medians.iter().all(|m| *m > 0.0), "{r:?}");
        assert!(r.requests >= VARIANTS.len() as u64, "{r:?}");
        let cpu = r.server_us.iter().chain(&r.client_us);
        assert!(cpu.clone().all(|c| c.is_finite() && *c >= 0.0), "{r:?}");
        if client == Client::Wrk {
            // (reqwest's CPU is counted on the bench's client threads, which a test does not run on)
            assert!(r.client_us.iter().all(|c| *c > 0.0), "wrk's CPU is counted: {r:?}");
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_short_run_answers_every_variant_with_the_files_bytes() {
        short_run(Client::Reqwest).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_short_run_with_wrk_answers_every_variant() {
        short_run(Client::Wrk).await;
    }

    #[tokio::test]
    async fn bad_sizes_are_refused() {
        let args = RequestsArgs {
            size: 10,
            request_size: 4096,
            connections: 1,
            seconds: 1.0,
            rounds: 1,
            memory_size: 0,
            dir: None,
            nginx: "/usr/sbin/nginx".into(),
            client: Client::Reqwest,
            wrk: "wrk".into(),
        };
        let serve = cpu::serve_runtime().unwrap();
        let e = measure(&args, serve.handle()).await.unwrap_err();
        serve.shutdown_background();
        assert!(e.to_string().contains("at most --size"), "{e}");
    }

    #[test]
    fn offsets_stay_in_the_file_and_differ() {
        let mut r = Xorshift::new(7);
        let v: Vec<u64> = (0..100).map(|_| r.next() % 64).collect();
        assert!(v.iter().all(|x| *x < 64));
        assert!(v.iter().collect::<std::collections::HashSet<_>>().len() > 10);
    }
}
