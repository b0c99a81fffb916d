//! `loam-bench read`: throughput of reading one large file (default 1 GiB) through a worker, cold and
//! warm (one stream, and four parallel ranges), against nginx (`sendfile on`) serving the same file on
//! loopback to the same HTTP client, and against reading it straight from the local file system.
//! Rounds are interleaved (every variant once per round) and medians reported, with ratios to nginx.
//! The worker runs in this process on the embedded store; nginx is Debian's, started on a free port.
//!
//! `--ufs s3` puts the file in a bucket of an S3 server instead — moto (`S3TestServer`), or s3s-fs with
//! `--s3s-fs <binary>` (real ranged reads straight from a directory: the one to measure with at 1 GiB) —
//! mounts that, and takes reading the object straight from that server, with the same S3 client the
//! worker uses (`OpendalUfs`: one streamed GET, or four ranges), as the baseline in nginx's place. The
//! cold variant then reads through the worker at the UFS's latency and bandwidth, against reading the
//! UFS directly. (`file://`, the default: nginx serves the UFS file itself.)
//!
//! `--tls` adds a second worker serving HTTPS (a certificate from a test CA made by `openssl`, ECDSA P-256)
//! over the same file, and its warm reads to the rounds, with the ratio TLS / plain HTTP: what TLS on the
//! listeners costs the data path.
//!
//! `--buffered` adds the plain worker's warm reads again with mapped reads off (`PageStore::set_mapped_reads`:
//! each disk hit read into a buffer, as before issue 17 item 1), in the same rounds, with the ratio mapped /
//! buffered. Pair it with `--memory-size 0`: with a memory tier, a disk hit the tier takes is buffered
//! either way (the tier keeps that buffer).
//!
//! CPU (`crate::cpu`): each variant's serving side — nginx's process, or the workers, which run on the
//! serving runtime in this process — and the client (reqwest on the bench's runtime, or the reading
//! thread of the local read), sampled around each read, in CPU seconds per GiB; the ratio is of the
//! total (server + client) to nginx's one-stream total.

use crate::cpu::{self, InProcess};
use crate::median;
use anyhow::{Context, bail};
use clap::Args;
use futures::StreamExt;
use loam_core::path::UfsUri;
use loam_core::size::parse_size;
use loam_testsupport::cluster::{Cluster, Options};
use loam_testsupport::free_port;
use loam_ufs::{OpendalUfs, Ufs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Flags of `loam-bench read`.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Size of the test file.
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    pub size: u64,
    /// Rounds (each runs every variant once).
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Working directory (test file, worker cache, nginx config); a temp dir by default.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Memory tier of the worker.
    #[arg(long, default_value = "256MiB", value_parser = parse_size)]
    pub memory_size: u64,
    /// nginx binary.
    #[arg(long, default_value = "/usr/sbin/nginx")]
    pub nginx: PathBuf,
    /// Also read warm through a worker serving HTTPS, and report TLS / plain HTTP.
    #[arg(long)]
    pub tls: bool,
    /// Also read warm with the worker's mapped reads off (disk hits read into a buffer), and report mapped /
    /// buffered.
    #[arg(long)]
    pub buffered: bool,
    /// The UFS the worker reads: `file` (a local directory; baseline nginx) or `s3` (a moto bucket;
    /// baseline the S3 server's own GETs).
    #[arg(long, value_enum, default_value_t = UfsKind::File)]
    pub ufs: UfsKind,
    /// With `--ufs s3`: serve the bucket with this `s3s-fs` binary instead of moto
    /// (`cargo install s3s-fs@0.14.1 --features binary`).
    #[arg(long)]
    pub s3s_fs: Option<PathBuf>,
}

/// What one row of the table reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    Local,
    Nginx1,
    Nginx4,
    Cold,
    Warm1,
    Warm4,
    Tls1,
    Tls4,
    Buffered1,
    Buffered4,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Local => "local fs read (1 stream)",
            Variant::Nginx1 => "nginx sendfile (1 stream)",
            Variant::Nginx4 => "nginx sendfile (4 ranges)",
            Variant::Cold => "worker cold (1 stream)",
            Variant::Warm1 => "worker warm (1 stream)",
            Variant::Warm4 => "worker warm (4 ranges)",
            Variant::Tls1 => "worker warm TLS (1 stream)",
            Variant::Tls4 => "worker warm TLS (4 ranges)",
            Variant::Buffered1 => "worker warm buffered (1 stream)",
            Variant::Buffered4 => "worker warm buffered (4 ranges)",
        }
    }
}

/// Which UFS `loam-bench read` mounts.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum UfsKind {
    /// A local directory (`file://`), also served by nginx.
    File,
    /// A bucket of a moto S3 server (`s3://`), read directly as the baseline.
    S3,
}

/// What serves the UFS file itself: the baseline.
enum Baseline {
    Nginx(Nginx),
    /// An S3 server, and a client of it as the worker's (the file's URI, its version tag).
    S3 {
        server: S3Server,
        ufs: Arc<dyn Ufs>,
        uri: String,
        tag: String,
    },
}

/// The S3 server of `--ufs s3`.
enum S3Server {
    Moto(loam_testsupport::s3_server::S3TestServer),
    S3sFs(loam_testsupport::process::Server),
}

/// The bucket `--ufs s3` mounts.
const BENCH_BUCKET: &str = "loam-bench";

impl Baseline {
    /// Starts the baseline of `args.ufs` over `file` (in `ufs_dir`); with it, the mount the worker takes
    /// (`None`: `ufs_dir` as `file://`).
    async fn start(
        args: &BenchArgs,
        dir: &Path,
        ufs_dir: &Path,
        file: &Path,
    ) -> anyhow::Result<(Self, Option<UfsMount>)> {
        if args.ufs == UfsKind::File {
            return Ok((Self::Nginx(start_nginx(&args.nginx, dir, ufs_dir)?), None));
        }
        let (server, options) = match &args.s3s_fs {
            Some(bin) => {
                let port = free_port();
                let server = crate::load::procs::start_s3s_fs(dir, bin, port, BENCH_BUCKET, None)?;
                // s3s-fs serves the files under `<dir>/s3s-data/<bucket>`: a hard link, no copy.
                let object = dir.join("s3s-data").join(BENCH_BUCKET).join("big.bin");
                if !object.exists() {
                    std::fs::hard_link(file, &object).or_else(|_| std::fs::copy(file, &object).map(|_| ()))?;
                }
                s3s_fs_etag(&dir.join("s3s-data"), BENCH_BUCKET, "big.bin", file)?;
                let options = [
                    ("s3a.accessKeyId", "loam-bench".to_string()),
                    ("s3a.secretKey", "loam-bench".to_string()),
                    ("alluxio.underfs.s3.endpoint", format!("http://127.0.0.1:{port}")),
                    ("alluxio.underfs.s3.endpoint.region", "us-east-1".to_string()),
                    ("alluxio.underfs.s3.disable.dns.buckets", "true".to_string()),
                ];
                (S3Server::S3sFs(server), options.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }
            None => {
                let s3 = loam_testsupport::s3_server::S3TestServer::start();
                s3.create_bucket(BENCH_BUCKET);
                eprintln!("putting the test file into the bucket…");
                s3.put_object(BENCH_BUCKET, "big.bin", &std::fs::read(file)?);
                let options = s3.mount_options();
                (S3Server::Moto(s3), options)
            }
        };
        let root = format!("s3://{BENCH_BUCKET}/");
        let ufs: Arc<dyn Ufs> = Arc::new(OpendalUfs::new(&UfsUri::parse(&root)?, &options)?);
        let uri = format!("{root}big.bin");
        let st = ufs.stat(&uri).await?;
        let tag = loam_core::version::version_tag(
            st.length,
            st.etag.as_deref(),
            st.modified.map(loam_core::time::epoch_millis),
        );
        Ok((Self::S3 { server, ufs, uri, tag }, Some((root, options))))
    }

    fn url(&self) -> String {
        match self {
            Self::Nginx(n) => format!("http://127.0.0.1:{}/big.bin", n.port),
            Self::S3 { uri, .. } => uri.clone(),
        }
    }

    fn pid(&self) -> u32 {
        match self {
            Self::Nginx(n) => n.child.id(),
            Self::S3 { server: S3Server::Moto(s), .. } => s.pid(),
            Self::S3 { server: S3Server::S3sFs(s), .. } => s.pid(),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Nginx(_) => "nginx sendfile",
            Self::S3 { server: S3Server::Moto(_), .. } => "S3 (moto) direct",
            Self::S3 { server: S3Server::S3sFs(_), .. } => "S3 (s3s-fs) direct",
        }
    }

    /// Reads bytes `[lo, hi)` of the file from the baseline; the bytes received.
    async fn read(&self, http: &reqwest::Client, lo: u64, hi: u64, whole: bool) -> anyhow::Result<u64> {
        match self {
            Self::Nginx(_) => fetch(http, &self.url(), (!whole).then_some((lo, hi))).await,
            Self::S3 { ufs, uri, tag, .. } => {
                let mut pieces = ufs.stream_pieces_of(uri, lo, hi - lo, tag, 1 << 20);
                let mut n = 0u64;
                while let Some(p) = pieces.next().await {
                    n += p?.len() as u64;
                }
                Ok(n)
            }
        }
    }
}

/// A mount's UFS root and options.
type UfsMount = (String, loam_ufs::MountOptions);

pub(crate) struct Nginx {
    pub(crate) child: std::process::Child,
    pub(crate) port: u16,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// s3s-fs (0.14) answers a GET with the object's MD5 as its ETag, and computes it by reading the whole
/// file on every GET unless the object's internal info holds it — which its PutObject writes. The test file
/// is hard-linked into place instead of put, so this writes that info as PutObject would have: without it
/// every ranged GET of a run read the whole 1 GiB, and a cold read measured s3s-fs's hashing.
fn s3s_fs_etag(root: &Path, bucket: &str, key: &str, file: &Path) -> anyhow::Result<()> {
    use base64::Engine;
    use md5::Digest;
    let encode = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let mut md5 = md5::Md5::new();
    std::io::copy(&mut std::fs::File::open(file)?, &mut md5)?;
    let info = serde_json::json!({ "e_tag": format!("{:x}", md5.finalize()) });
    let path = root.join(format!(".bucket-{}.object-{}.internal.json", encode(bucket), encode(key)));
    std::fs::write(path, serde_json::to_vec(&info)?)?;
    Ok(())
}

pub(crate) fn start_nginx(bin: &Path, dir: &Path, root: &Path) -> anyhow::Result<Nginx> {
    let port = free_port();
    let conf = dir.join("nginx.conf");
    std::fs::create_dir_all(dir.join("nginx-tmp"))?;
    let text = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\nerror_log {d}/nginx-error.log;\npid {d}/nginx.pid;\n\
         events {{ worker_connections 64; }}\n\
         http {{ access_log off; sendfile on; tcp_nopush on; client_body_temp_path {d}/nginx-tmp;\n\
         proxy_temp_path {d}/nginx-tmp; fastcgi_temp_path {d}/nginx-tmp; uwsgi_temp_path {d}/nginx-tmp;\n\
         scgi_temp_path {d}/nginx-tmp;\n\
         server {{ listen 127.0.0.1:{port}; root {r}; }} }}\n",
        d = dir.display(),
        r = root.display()
    );
    std::fs::write(&conf, text)?;
    let child = std::process::Command::new(bin)
        .arg("-c")
        .arg(&conf)
        .arg("-p")
        .arg(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .with_context(|| format!("starting {} (apt-get install nginx-light)", bin.display()))?;
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(Nginx { child, port });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("nginx did not start; see {}/nginx-error.log", dir.display())
}

/// Reads `url` (with an optional byte range) and returns the bytes received.
async fn fetch(http: &reqwest::Client, url: &str, range: Option<(u64, u64)>) -> anyhow::Result<u64> {
    let mut req = http.get(url);
    if let Some((lo, hi)) = range {
        req = req.header("Range", format!("bytes={lo}-{}", hi - 1));
    }
    let r = req.send().await?.error_for_status()?;
    let mut body = r.bytes_stream();
    let mut n = 0u64;
    while let Some(c) = body.next().await {
        n += c?.len() as u64;
    }
    Ok(n)
}

/// Four parallel ranges covering `size` bytes; `url_of` makes the URL of a range.
async fn parallel4(
    http: &reqwest::Client,
    size: u64,
    url_of: impl Fn(u64, u64) -> (String, Option<(u64, u64)>),
) -> anyhow::Result<u64> {
    let q = size.div_ceil(4);
    let parts = (0..4).map(|i| {
        let (lo, hi) = (i * q, ((i + 1) * q).min(size));
        let (url, range) = url_of(lo, hi);
        let http = http.clone();
        async move { fetch(&http, &url, range).await }
    });
    let mut total = 0;
    for r in futures::future::join_all(parts).await {
        total += r?;
    }
    Ok(total)
}

/// Runs the read benchmark and prints a table.
pub async fn run(args: BenchArgs, serve: &tokio::runtime::Handle) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let ufs_dir = dir.join("ufs");
    std::fs::create_dir_all(&ufs_dir)?;
    let file = ufs_dir.join("big.bin");
    crate::write_test_file(&file, args.size)?;
    let (baseline, ufs) = Baseline::start(&args, &dir, &ufs_dir, &file).await?;
    // A worker as `loam worker` runs by default, on the embedded store, `/bench` mounted on `<dir>/ufs`.
    let opts = Options {
        mount_path: "/bench".into(),
        dir: Some(dir.clone()),
        ufs,
        ..Options::worker_defaults(args.memory_size, args.size * 2)
    };
    let mut cluster = serve.spawn(Cluster::start(opts)).await?;
    let worker = cluster.worker(0);
    let uri = cluster.uri("big.bin");
    let id = loam_core::file_id(&uri);
    let base = worker.http_base();
    let worker_url =
        |lo: u64, hi: u64| (format!("{base}/v1/range/{id}?ufsFullPath={uri}&offset={lo}&length={}", hi - lo), None);
    let http = loam_testsupport::auth::client_with(loam_testsupport::auth::ALL_ROLES);
    let size = args.size;
    let tls = match args.tls {
        true => Some(TlsWorker::start(&dir, &ufs_dir, &args, serve).await?),
        false => None,
    };
    let tls_url = |lo: u64, hi: u64| {
        let t = tls.as_ref().expect("TLS variants run with --tls");
        (format!("{}/v1/range/{id}?ufsFullPath={}&offset={lo}&length={}", t.base, t.uri, hi - lo), None)
    };
    use Variant::*;
    let mut variants = vec![Local, Nginx1, Nginx4, Cold, Warm1, Warm4];
    if tls.is_some() {
        variants.extend([Tls1, Tls4]);
    }
    if args.buffered {
        variants.extend([Buffered1, Buffered4]);
    }
    let (base1, base4) = (format!("{} (1 stream)", baseline.name()), format!("{} (4 ranges)", baseline.name()));
    let names: Vec<&str> = variants
        .iter()
        .map(|v| match v {
            Nginx1 => base1.as_str(),
            Nginx4 => base4.as_str(),
            v => v.name(),
        })
        .collect();
    let at = |v: Variant| variants.iter().position(|w| *w == v).expect("a variant of this run");
    let mut results: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    // CPU of each variant's serving side and client, over every round.
    let (mut server, mut client) = (vec![cpu::Tally::default(); names.len()], vec![cpu::Tally::default(); names.len()]);
    let nginx_cpu = || cpu::process(baseline.pid());
    for round in 0..args.rounds {
        for (i, (&variant, name)) in variants.iter().zip(&names).enumerate() {
            if variant == Cold {
                worker.state.pages.remove_file(&id).await?;
            }
            worker.state.pages.set_mapped_reads(!matches!(variant, Buffered1 | Buffered4));
            let (cpu0, nginx0) = (InProcess::sample()?, nginx_cpu()?);
            let t0 = Instant::now();
            let n = match variant {
                Local => {
                    let f = file.clone();
                    tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
                        use std::io::Read;
                        let mut r = std::fs::File::open(f)?;
                        let mut buf = vec![0u8; 1 << 20];
                        let mut n = 0u64;
                        loop {
                            let k = r.read(&mut buf)?;
                            if k == 0 {
                                return Ok(n);
                            }
                            n += k as u64;
                        }
                    })
                    .await??
                }
                Nginx1 => baseline.read(&http, 0, size, true).await?,
                Nginx4 => {
                    let q = size.div_ceil(4);
                    let parts = (0..4).map(|i| baseline.read(&http, i * q, ((i + 1) * q).min(size), false));
                    futures::future::try_join_all(parts).await?.iter().sum()
                }
                Cold | Warm1 | Buffered1 => fetch(&http, &worker_url(0, size).0, None).await?,
                Warm4 | Buffered4 => parallel4(&http, size, worker_url).await?,
                Tls1 => fetch(&tls.as_ref().unwrap().http, &tls_url(0, size).0, None).await?,
                Tls4 => parallel4(&tls.as_ref().unwrap().http, size, tls_url).await?,
            };
            let secs = t0.elapsed().as_secs_f64();
            let (used, nginx_used) = (InProcess::sample()?.since(cpu0), nginx_cpu()? - nginx0);
            let server_used = match variant {
                Local => 0.0,
                Nginx1 | Nginx4 => nginx_used,
                _ => used.server,
            };
            server[i].add(server_used, n);
            client[i].add(used.client, n);
            if n != size {
                bail!("{name}: read {n} bytes, expected {size}");
            }
            let mbps = size as f64 / secs / 1e6;
            eprintln!("round {round}: {name:<32} {mbps:>9.1} MB/s");
            results[i].push(mbps);
        }
    }
    let med: Vec<f64> = results.iter_mut().map(|v| median(v)).collect();
    let (server, client): (Vec<f64>, Vec<f64>) =
        server.iter().zip(&client).map(|(s, c)| (s.per_gib(), c.per_gib())).unzip();
    let nginx1 = med[1];
    println!(
        "\nbaseline {}, file {} bytes, {} rounds, medians (MB/s = 10^6 bytes/s; CPU = user + system seconds per GiB \
         read, over all rounds):",
        baseline.name(),
        size,
        args.rounds
    );
    println!(
        "| variant | MB/s | vs {b} | server CPU s/GiB | client CPU s/GiB | CPU vs {b} |\n\
         | --- | ---: | ---: | ---: | ---: | ---: |",
        b = base1
    );
    let total = |i: usize| server[i] + client[i];
    for (i, (name, m)) in names.iter().zip(&med).enumerate() {
        let s = if i == 0 { "—".to_string() } else { format!("{:.2}", server[i]) };
        println!(
            "| {name} | {m:.0} | {:.2}x | {s} | {:.2} | {} |",
            m / nginx1,
            client[i],
            cpu::ratio(total(i), total(1))
        );
    }
    let m = |v: Variant| med[at(v)];
    let b = baseline.name();
    println!("\ncold worker 1 stream / {b} 1 stream: {:.2}x", m(Cold) / m(Nginx1));
    println!("warm worker 1 stream / {b} 1 stream: {:.2}x", m(Warm1) / m(Nginx1));
    println!("warm worker 4 ranges / {b} 4 ranges: {:.2}x", m(Warm4) / m(Nginx4));
    println!("warm worker 1 stream / local fs: {:.2}x", m(Warm1) / m(Local));
    if args.buffered {
        println!("warm worker mapped / buffered, 1 stream: {:.2}x", m(Warm1) / m(Buffered1));
        println!("warm worker mapped / buffered, 4 ranges: {:.2}x", m(Warm4) / m(Buffered4));
    }
    if let Some(mut t) = tls {
        println!("warm worker TLS / plain HTTP, 1 stream: {:.2}x", m(Tls1) / m(Warm1));
        println!("warm worker TLS / plain HTTP, 4 ranges: {:.2}x", m(Tls4) / m(Warm4));
        t.cluster.kill_worker(0).await;
    }
    cluster.kill_worker(0).await;
    drop(baseline);
    Ok(())
}

/// A second worker over the same UFS directory, serving HTTPS, already warm; and a client trusting it.
struct TlsWorker {
    cluster: Cluster,
    base: String,
    uri: String,
    http: reqwest::Client,
    _ca: loam_testsupport::tls::TestCa,
}

impl TlsWorker {
    async fn start(
        dir: &Path,
        ufs_dir: &Path,
        args: &BenchArgs,
        serve: &tokio::runtime::Handle,
    ) -> anyhow::Result<Self> {
        let ca = loam_testsupport::tls::TestCa::new("bench");
        std::fs::create_dir_all(dir.join("tls-worker"))?;
        let cert = ca.issue("worker");
        let tls = loam_listener::TlsFiles { cert: cert.cert, key: cert.key, client_ca: None };
        let opts = Options {
            mount_path: "/bench".into(),
            ufs: Some((format!("file://{}", ufs_dir.display()), Default::default())),
            dir: Some(dir.join("tls-worker")),
            listener: loam_listener::ListenerConfig { tls: Some(tls), ..Default::default() },
            ..Options::worker_defaults(args.memory_size, args.size * 2)
        };
        let cluster = serve.spawn(Cluster::start(opts)).await?;
        let base = cluster.worker(0).http_base();
        let uri = cluster.uri("big.bin");
        let root = reqwest::Certificate::from_pem(&std::fs::read(ca.cert())?)?;
        let mut headers = reqwest::header::HeaderMap::new();
        let token = format!("Bearer {}", loam_testsupport::auth::ALL_ROLES);
        headers.insert(reqwest::header::AUTHORIZATION, reqwest::header::HeaderValue::from_str(&token)?);
        let http = reqwest::Client::builder().default_headers(headers).no_proxy().tls_certs_only([root]).build()?;
        let id = loam_core::file_id(&uri);
        let url = format!("{base}/v1/range/{id}?ufsFullPath={uri}&offset=0&length={}", args.size);
        let n = fetch(&http, &url, None).await.context("warming the TLS worker")?;
        if n != args.size {
            bail!("warming the TLS worker read {n} bytes, expected {}", args.size);
        }
        Ok(Self { cluster, base, uri, http, _ca: ca })
    }
}

#[cfg(test)]
mod s3s_fs_tests {
    use super::*;

    #[test]
    fn the_etag_goes_where_s3s_fs_looks_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"hello").unwrap();
        s3s_fs_etag(dir.path(), "bench", "big.bin", &file).unwrap();
        // base64url("bench") = "YmVuY2g", base64url("big.bin") = "YmlnLmJpbg"; md5("hello") is well known.
        let info = std::fs::read(dir.path().join(".bucket-YmVuY2g.object-YmlnLmJpbg.internal.json")).unwrap();
        let info: serde_json::Value = serde_json::from_slice(&info).unwrap();
        assert_eq!(info, serde_json::json!({ "e_tag": "5d41402abc4b2a76b9719d911017c592" }));
    }
}
