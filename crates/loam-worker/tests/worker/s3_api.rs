//! The S3 API of real workers, driven by the real clients: boto3 (`tests/py/s3_boto3.py`, run with the
//! test venv's python) and the AWS CLI, over a `file://` bucket and a bucket of a moto S3 server; a
//! 2 GiB object read in random ranges; a GET whose owning worker dies mid-stream; and the access rules
//! for unsigned requests, checked with plain HTTP.

use crate::PAGE;
use futures::StreamExt;
use loam_testsupport::cluster::{Cluster, MOTO_BUCKET, Options};
use loam_testsupport::data::pattern;
use loam_worker::s3_api::{S3Config, S3Credentials};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;

/// The key pair workers accept in these tests.
const ACCESS_KEY: &str = "loam-s3-test-key";
/// Its secret.
const SECRET_KEY: &str = "loam-s3-test-secret";

/// `n` workers with pages of `page_size` (eight of them in memory, 256 MiB of disk), the test key pair and
/// anonymous read on; the workers read the UFS directly.
pub(crate) fn options(n: usize, page_size: u64) -> Options {
    let credentials = Some(S3Credentials { access_key: ACCESS_KEY.into(), secret_key: SECRET_KEY.into() });
    Options {
        workers: n,
        page_size,
        memory_size: 8 * page_size,
        cache_size: 256 << 20,
        ufs_read_size: 4 * page_size,
        s3: S3Config { port: 0, credentials, anonymous_read: true, multipart_expiry: None, unsized_puts: false },
        faulty: false,
        ..Options::default()
    }
}

/// The Python side of this test.
fn script() -> std::path::PathBuf {
    loam_testsupport::package_file("tests/py/s3_boto3.py")
}

pub(crate) fn venv_bin(name: &str) -> PathBuf {
    let bin = loam_testsupport::s3_server::venv_dir().join("bin").join(name);
    assert!(bin.is_file(), "{} is missing: run scripts/setup-test-deps.sh", bin.display());
    bin
}

/// Runs a command to its end off the async runtime (the workers it talks to run on that runtime), under
/// a watchdog so that it dies with the test.
pub(crate) async fn run(name: &str, program: PathBuf, args: Vec<String>, env: Vec<(String, String)>) -> Output {
    let name = name.to_string();
    tokio::task::spawn_blocking(move || {
        let mut cmd = loam_testsupport::watchdog::watched(&name, &program);
        cmd.args(&args).envs(env);
        cmd.output().unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()))
    })
    .await
    .unwrap()
}

pub(crate) fn check(what: &str, out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The environment `s3_boto3.py` reads.
pub(crate) fn script_env(c: &Cluster) -> Vec<(String, String)> {
    let mut env = vec![
        ("LOAM_S3_ENDPOINTS".to_string(), c.endpoints().join(",")),
        ("LOAM_S3_ACCESS_KEY".into(), ACCESS_KEY.into()),
        ("LOAM_S3_SECRET_KEY".into(), SECRET_KEY.into()),
        ("LOAM_UFS_DIR".into(), c.ufs_root().display().to_string()),
    ];
    if let Some(m) = &c.moto {
        env.push(("LOAM_MOTO_ENDPOINT".into(), m.endpoint()));
        env.push(("LOAM_MOTO_BUCKET".into(), MOTO_BUCKET.into()));
        env.push(("LOAM_MOTO_ACCESS_KEY".into(), m.access_key().into()));
        env.push(("LOAM_MOTO_SECRET_KEY".into(), m.secret_key().into()));
    }
    env
}

#[tokio::test(flavor = "multi_thread")]
async fn boto3_against_a_file_bucket_and_an_s3_bucket() {
    let c = Cluster::start(Options { moto: true, ..options(3, PAGE) }).await;
    let out =
        run("s3_boto3", venv_bin("python"), vec![script().display().to_string(), "suite".into()], script_env(&c)).await;
    let stdout = check("s3_boto3.py suite", &out);
    for line in ["ok: listing of data", "ok: multipart to s3data", "ok: signatures and anonymous reads"] {
        assert!(stdout.contains(line), "{line:?} missing from:\n{stdout}");
    }
}

/// Runs `aws --endpoint-url <endpoint> <args>` with the test key pair and path-style addressing.
pub(crate) async fn aws(config: &Path, endpoint: &str, args: &[&str]) -> String {
    let mut all = vec!["--endpoint-url".to_string(), endpoint.to_string()];
    all.extend(args.iter().map(|a| a.to_string()));
    let env = [
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_CONFIG_FILE", &config.display().to_string()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let out = run("aws", venv_bin("aws"), all, env).await;
    check(&format!("aws {}", args.join(" ")), &out)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_aws_cli_lists_copies_and_reads_ranges() {
    let c = Cluster::start(options(2, PAGE)).await;
    let eps = c.endpoints();
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("aws-config");
    std::fs::write(&config, "[default]\ns3 =\n    addressing_style = path\n").unwrap();
    c.write("cli/a.txt", b"alpha");
    c.write("cli/sub/b.txt", b"beta");

    let buckets = aws(&config, &eps[0], &["s3", "ls"]).await;
    assert!(buckets.lines().any(|l| l.ends_with(" data")), "{buckets}");
    let listing = aws(&config, &eps[1], &["s3", "ls", "s3://data/cli/"]).await;
    assert!(listing.contains("PRE sub/") && listing.contains(" 5 a.txt"), "{listing}");

    // Over the CLI's 8 MiB multipart threshold: uploaded in parts, downloaded in ranges.
    let data = pattern(9 << 20, 3);
    let up = tmp.path().join("up.bin");
    std::fs::write(&up, &data).unwrap();
    aws(&config, &eps[0], &["s3", "cp", up.to_str().unwrap(), "s3://data/cli/up.bin"]).await;
    assert_eq!(std::fs::read(c.ufs_root().join("cli/up.bin")).unwrap(), data, "the UFS holds the upload");
    let down = tmp.path().join("down.bin");
    aws(&config, &eps[1], &["s3", "cp", "s3://data/cli/up.bin", down.to_str().unwrap()]).await;
    assert!(std::fs::read(&down).unwrap() == data, "downloaded through the other worker");

    let part = tmp.path().join("part.bin");
    let args = ["s3api", "get-object", "--bucket", "data", "--key", "cli/up.bin", "--range", "bytes=100-199"];
    let meta = aws(&config, &eps[1], &[&args[..], &[part.to_str().unwrap()]].concat()).await;
    assert!(meta.contains(&format!("bytes 100-199/{}", data.len())), "{meta}");
    assert_eq!(std::fs::read(&part).unwrap(), &data[100..200]);

    aws(&config, &eps[0], &["s3", "rm", "s3://data/cli/up.bin"]).await;
    assert!(!c.ufs_root().join("cli/up.bin").exists(), "deleted in the UFS");
}

/// Writes `size` bytes whose 8-byte little-endian words hold their own offsets, a chunk at a time.
fn write_words(path: &Path, size: u64) {
    const CHUNK: u64 = 8 << 20;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut buf = Vec::with_capacity(CHUNK as usize);
    for start in (0..size).step_by(CHUNK as usize) {
        buf.clear();
        let end = (start + CHUNK).min(size);
        for w in (start / 8)..end.div_ceil(8) {
            buf.extend_from_slice(&(w * 8).to_le_bytes());
        }
        buf.truncate((end - start) as usize);
        f.write_all(&buf).unwrap();
    }
    f.flush().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_2_gib_object_reads_correctly_in_random_ranges() {
    const SIZE: u64 = 2 << 30;
    let c = Cluster::start(options(2, 1 << 20)).await;
    std::fs::create_dir_all(c.ufs_root().join("big")).unwrap();
    let path = c.ufs_root().join("big/words.bin");
    tokio::task::spawn_blocking(move || write_words(&path, SIZE)).await.unwrap();
    let mut env = script_env(&c);
    env.push(("LOAM_BIG_KEY".into(), "big/words.bin".into()));
    env.push(("LOAM_BIG_SIZE".into(), SIZE.to_string()));
    env.push(("LOAM_RANGE_COUNT".into(), "120".into()));
    let out = run("s3_boto3", venv_bin("python"), vec![script().display().to_string(), "ranges".into()], env).await;
    let stdout = check("s3_boto3.py ranges", &out);
    assert!(stdout.contains("ok: 120 ranges"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_get_completes_when_the_owning_worker_dies_mid_stream() {
    const SIZE: u64 = 64 << 20;
    let c = Cluster::start(options(2, 256 << 10)).await;
    let mut owner = c.start_isolated(2).await;
    c.wait_for_ring(3).await;
    let owner_id = owner.handle.as_ref().unwrap().id;
    let receiver = c.worker(0);
    let ring = receiver.state.members.ring();
    let key = (0..)
        .map(|i| format!("failover/f{i}"))
        .find(|k| ring.primary(&c.uri(k)).is_some_and(|(_, w)| w.id == owner_id))
        .unwrap();
    std::fs::create_dir_all(c.ufs_root().join("failover")).unwrap();
    let path = c.ufs_root().join(&key);
    tokio::task::spawn_blocking(move || write_words(&path, SIZE)).await.unwrap();
    let original = std::fs::read(c.ufs_root().join(&key)).unwrap();

    let url = format!("{}/data/{key}", receiver.s3_base());
    let resp = reqwest::get(&url).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.content_length(), Some(SIZE));
    let mut body = resp.bytes_stream();
    let mut got = Vec::with_capacity(SIZE as usize);
    while got.len() < (4 << 20) {
        got.extend_from_slice(&body.next().await.unwrap().unwrap());
    }
    owner.kill();
    while let Some(chunk) = body.next().await {
        got.extend_from_slice(&chunk.expect("the stream survives the owner's death"));
    }
    assert_eq!(got.len(), original.len());
    assert!(got == original, "the bytes after the failover are the file's");
    // The rest came from a replica (or this worker's own read-through), which cached what it served.
    let id = loam_core::file_id(&c.uri(&key));
    let cached: u64 = c.live().iter().map(|w| w.state.rt.pages().cached_page_count(&id)).sum();
    assert!(cached > 0, "a surviving worker served (and cached) the rest");
}

/// Status and body of an unsigned request.
async fn unsigned(method: reqwest::Method, url: &str) -> (u16, String) {
    let r = reqwest::Client::new().request(method, url).body("x").send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn unsigned_requests_read_only_with_anonymous_read() {
    let open = Cluster::start(options(1, PAGE)).await;
    open.write("anon/f", b"public bytes");
    let base = open.worker(0).s3_base();
    assert_eq!(unsigned(reqwest::Method::GET, &format!("{base}/data/anon/f")).await, (200, "public bytes".into()));
    let (status, xml) = unsigned(reqwest::Method::GET, &format!("{base}/data?list-type=2&prefix=anon/")).await;
    assert_eq!(status, 200);
    assert!(xml.contains("<Key>anon/f</Key>"), "{xml}");
    let (status, xml) = unsigned(reqwest::Method::PUT, &format!("{base}/data/anon/g")).await;
    assert_eq!(status, 403);
    assert!(xml.contains("AccessDenied"), "{xml}");
    assert!(!open.ufs_root().join("anon/g").exists());

    let signed_only = S3Config { anonymous_read: false, ..options(1, PAGE).s3 };
    let closed = Cluster::start(Options { s3: signed_only, ..options(1, PAGE) }).await;
    closed.write("anon/f", b"private bytes");
    let (status, xml) = unsigned(reqwest::Method::GET, &format!("{}/data/anon/f", closed.worker(0).s3_base())).await;
    assert_eq!(status, 403);
    assert!(xml.contains("AccessDenied"), "{xml}");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_key_and_no_anonymous_read_refuses_everything() {
    let c = Cluster::start(Options { s3: S3Config::default(), ..options(1, PAGE) }).await;
    c.write("f", b"bytes");
    let base = c.worker(0).s3_base();
    for (method, url) in [
        (reqwest::Method::GET, format!("{base}/data/f")),
        (reqwest::Method::GET, format!("{base}/")),
        (reqwest::Method::HEAD, format!("{base}/data")),
        (reqwest::Method::PUT, format!("{base}/data/g")),
    ] {
        assert_eq!(unsigned(method.clone(), &url).await.0, 403, "{method} {url}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_bound_s3_port_is_advertised_and_closed_on_shutdown() {
    let mut c = Cluster::start(options(1, PAGE)).await;
    let w = c.workers.pop().flatten().unwrap();
    let ring = w.state.members.ring();
    let me = ring.members().map(|(_, e)| e.clone()).find(|e| e.id == w.id).unwrap();
    assert_eq!(me.s3_port, w.s3_addr.port(), "the membership record carries the bound S3 port");
    assert_ne!(w.s3_addr.port(), w.http_addr.port());
    let addr = w.s3_addr;
    assert!(tokio::net::TcpStream::connect(addr).await.is_ok());
    w.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "the S3 listener is closed after shutdown");
}
