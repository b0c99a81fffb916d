//! The non-owner path (`loam_worker::non_owner`): S3 reads through a worker that does not own the object
//! are proxied from the owner without a UFS stat per request, at the client's pace, from one version; with
//! `redirect-to-owner`, anonymous reads are answered `307` to the owner (curl, reqwest follow it; boto3
//! does not, and signed requests are proxied), and refusals still come from the worker that answers.

use crate::s3_api::{check, options, run, script_env, venv_bin};
use futures::StreamExt;
use loam_testsupport::auth::{self, READ, WRITE};
use loam_testsupport::cluster::{Cluster, Options};
use loam_testsupport::data::pattern;
use loam_worker::WorkerHandle;
use std::time::Duration;

/// UFS stats every live worker made so far (the `stat` count of the UFS call histogram).
fn ufs_stats(c: &Cluster) -> u64 {
    let prefix = "loam_worker_ufs_operation_duration_seconds_count{op=\"stat\"";
    c.live()
        .iter()
        .map(|w| {
            let mut text = String::new();
            prometheus_client::encoding::text::encode(&mut text, &w.state.registry).unwrap();
            text.lines()
                .filter(|l| l.starts_with(prefix))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
                .sum::<u64>()
        })
        .sum()
}

/// A key under `dir` that worker `owner` owns, and the index of another worker.
fn key_owned_by(c: &Cluster, owner: usize, dir: &str) -> (String, usize) {
    let id = c.worker(owner).id;
    let ring = c.worker(0).state.members.ring();
    let key = (0..)
        .map(|i| format!("{dir}/f{i}"))
        .find(|k| ring.primary(&c.uri(k)).is_some_and(|(_, w)| w.id == id))
        .unwrap();
    (key, (owner + 1) % c.live().len())
}

/// The owner's bytes sent to clients (`served_bytes`) and the forwarder's bytes streamed from it.
fn served(w: &WorkerHandle) -> u64 {
    w.state.metrics.served_bytes.get()
}

fn forwarded(w: &WorkerHandle) -> u64 {
    w.state.metrics.data.forwarded_bytes.get()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proxied_get_asks_the_owner_not_the_ufs_after_the_first() {
    let c = Cluster::start(options(2, 64 << 10)).await;
    let (key, other) = key_owned_by(&c, 0, "proxied");
    let body = pattern(300_000, 7);
    let uri = c.write(&key, &body);
    let url = format!("{}/data/{key}", c.worker(other).s3_base());
    let http = auth::anonymous_client();
    let get = |range: Option<&'static str>| {
        let mut r = http.get(&url);
        if let Some(range) = range {
            r = r.header("Range", range);
        }
        r.send()
    };
    let first = get(None).await.unwrap();
    assert_eq!(first.status(), 200);
    let etag = first.headers()["etag"].clone();
    assert_eq!(first.bytes().await.unwrap(), body);
    let stats = ufs_stats(&c);

    for _ in 0..3 {
        let r = get(None).await.unwrap();
        assert_eq!((r.status().as_u16(), r.headers()["etag"].clone()), (200, etag.clone()));
        assert_eq!(r.bytes().await.unwrap(), body);
    }
    let r = get(Some("bytes=1000-1999")).await.unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap(), &body[1000..2000]);
    let head = http.head(&url).send().await.unwrap();
    assert_eq!((head.status().as_u16(), head.headers()["content-length"].to_str().unwrap()), (200, "300000"));
    assert_eq!(ufs_stats(&c), stats, "no UFS stat on any worker for the GETs after the first");
    assert!(forwarded(c.worker(other)) >= 4 * body.len() as u64, "the bytes came from the owner");
    assert!(c.holders(&uri) == [0], "only the owner caches the object");

    // A write through the owner drops the forwarder's copy of the owner's answer at once.
    let new = futures::stream::iter([Ok(bytes::Bytes::from_static(b"new bytes"))]).boxed();
    c.worker(0).state.writes.put(&uri, new, Default::default()).await.unwrap();
    let r = get(None).await.unwrap();
    assert_ne!(r.headers()["etag"], etag);
    assert_eq!(r.bytes().await.unwrap(), "new bytes", "the new version at once, not the old for max-age");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forwarded_stream_goes_at_its_clients_pace() {
    const SIZE: usize = 96 << 20;
    const PAGE: u64 = 1 << 20;
    let opts = Options { read_ahead_size: 2 * PAGE, cache_size: 256 << 20, ..options(2, PAGE) };
    let c = Cluster::start(opts).await;
    let (key, other) = key_owned_by(&c, 0, "paced");
    let body = pattern(SIZE, 3);
    c.write(&key, &body);
    let url = format!("{}/data/{key}", c.worker(other).s3_base());
    let resp = auth::anonymous_client().get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    let mut got = Vec::with_capacity(SIZE);
    while got.len() < (1 << 20) {
        got.extend_from_slice(&stream.next().await.unwrap().unwrap());
    }
    // The client stops reading. Whatever the time allowed, the owner can only have sent what the sockets
    // of both hops and the read-ahead hold: the forwarder holds no more than the piece in hand.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (sent, passed) = (served(c.worker(0)), forwarded(c.worker(other)));
    assert!(passed <= sent, "the forwarder passed on {passed} bytes, the owner sent {sent}");
    assert!(sent < (SIZE / 2) as u64, "the owner sent {sent} of {SIZE} bytes to a client that read 1 MiB");
    while let Some(chunk) = stream.next().await {
        got.extend_from_slice(&chunk.unwrap());
    }
    assert!(got == body, "the whole object, in order");
    assert_eq!(forwarded(c.worker(other)), SIZE as u64);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_version_change_mid_stream_ends_a_forwarded_response_with_an_error() {
    const SIZE: usize = 64 << 20;
    const PAGE: u64 = 256 << 10;
    let opts = Options { read_ahead_size: 2 * PAGE, cache_size: 256 << 20, ..options(2, PAGE) };
    let c = Cluster::start(opts).await;
    let (key, other) = key_owned_by(&c, 0, "changing");
    let old = pattern(SIZE, 1);
    c.write(&key, &old);
    let url = format!("{}/data/{key}", c.worker(other).s3_base());
    let resp = auth::anonymous_client().get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    let mut got = Vec::new();
    while got.len() < (1 << 20) {
        got.extend_from_slice(&stream.next().await.unwrap().unwrap());
    }
    // Replaced behind the cache's back: the owner has not read the rest of the old version yet.
    c.write(&key, &pattern(SIZE + 1, 2));
    let mut failed = false;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(b) => got.extend_from_slice(&b),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "the response ends with an error, not with the new version's bytes or short");
    assert!(got.len() < SIZE && got[..] == old[..got.len()], "every byte sent is the old version's");
}

/// Workers 0 and 1 with `redirect-to-owner` on (and anonymous reads as `anonymous_read` says).
async fn redirecting(anonymous_read: bool) -> Cluster {
    let mut opts = options(2, 64 << 10);
    opts.s3.anonymous_read = anonymous_read;
    let mut c = Cluster::start(Options { workers: 0, ..opts }).await;
    for i in 0..2 {
        let mut cfg = c.config(i);
        cfg.redirect_to_owner = true;
        let w = c.start_worker(cfg).await;
        c.workers.push(Some(w));
    }
    c.wait_for_ring(2).await;
    c
}

/// A client that does not follow redirects.
fn no_follow(token: Option<&str>) -> reqwest::Client {
    let mut b = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
    if let Some(t) = token {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(reqwest::header::AUTHORIZATION, format!("Bearer {t}").parse().unwrap());
        b = b.default_headers(h);
    }
    b.build().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn redirects_send_anonymous_reads_to_the_owner_and_serve_the_others() {
    let c = redirecting(true).await;
    let (key, other) = key_owned_by(&c, 0, "redirected");
    let body = pattern(200_000, 5);
    let uri = c.write(&key, &body);
    let (owner_s3, other_s3) = (c.worker(0).s3_base(), c.worker(other).s3_base());

    // S3, unsigned: 307 to the same path and query at the owner, which a following client reads.
    let path = format!("/data/{key}?response-content-type=text%2Fplain");
    let r = no_follow(None).get(format!("{other_s3}{path}")).send().await.unwrap();
    assert_eq!(r.status(), 307);
    assert_eq!(r.headers()["location"], format!("{owner_s3}{path}").as_str());
    let r = no_follow(None).head(format!("{other_s3}/data/{key}")).send().await.unwrap();
    assert_eq!(r.status(), 307);
    assert_eq!(r.headers()["location"], format!("{owner_s3}/data/{key}").as_str());
    let r = reqwest::get(format!("{other_s3}{path}")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/plain");
    assert_eq!(r.bytes().await.unwrap(), body);
    let r = no_follow(None).get(format!("{owner_s3}/data/{key}")).send().await.unwrap();
    assert_eq!(r.status(), 200, "the owner serves what it owns");
    assert_eq!(forwarded(c.worker(other)), 0, "no byte crossed the redirecting worker");

    // Worker HTTP API: anonymous reads naming ufsFullPath are redirected, reads with a token served here.
    let id = loam_core::file_id(&uri);
    let range = format!("/v1/range/{id}?ufsFullPath={uri}&offset=10&length=100");
    let r = no_follow(None).get(format!("{}{range}", c.worker(other).http_base())).send().await.unwrap();
    assert_eq!(r.status(), 307);
    assert_eq!(r.headers()["location"], format!("{}{range}", c.worker(0).http_base()).as_str());
    let curl = std::process::Command::new("curl")
        .args(["-sfL", &format!("{}{range}", c.worker(other).http_base())])
        .output()
        .unwrap();
    assert!(curl.status.success(), "curl -L: {}", String::from_utf8_lossy(&curl.stderr));
    assert_eq!(curl.stdout, &body[10..110]);
    let r = no_follow(Some(READ)).get(format!("{}{range}", c.worker(other).http_base())).send().await.unwrap();
    assert_eq!(r.status(), 200, "a read with a token is never redirected");
    assert_eq!(r.bytes().await.unwrap(), &body[10..110]);
    assert!(c.worker(other).state.metrics.data.redirects.get() >= 4);

    // boto3: signed reads are proxied (their signature covers the host); unsigned ones get the 307, which
    // botocore does not follow.
    let mut env = script_env(&c);
    env.push(("LOAM_KEY".into(), key.clone()));
    env.push(("LOAM_OWNER".into(), owner_s3));
    env.push(("LOAM_OTHER".into(), other_s3));
    let script = loam_testsupport::package_file("tests/py/s3_redirect.py").display().to_string();
    let out = run("s3_redirect", venv_bin("python"), vec![script], env).await;
    let stdout = check("s3_redirect.py", &out);
    assert!(stdout.contains("ok: signed GET proxied, 200000 bytes"), "{stdout}");
    assert!(stdout.contains("ok: unsigned GET answered 307"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirecting_worker_still_refuses_what_it_would_refuse() {
    let c = redirecting(false).await;
    let (key, other) = key_owned_by(&c, 0, "refused");
    let uri = c.write(&key, b"secret bytes");
    let r = no_follow(None).get(format!("{}/data/{key}", c.worker(other).s3_base())).send().await.unwrap();
    assert_eq!(r.status(), 403, "unsigned without anonymous read: AccessDenied here, not a redirect");
    assert!(r.headers().get("location").is_none());
    let range = format!("/v1/range/{}?ufsFullPath={uri}", loam_core::file_id(&uri));
    let url = format!("{}{range}", c.worker(other).http_base());
    let r = no_follow(None).get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401, "no token: 401 here");
    let r = no_follow(Some(WRITE)).get(&url).send().await.unwrap();
    assert_eq!(r.status(), 403, "a token without the read role: 403 here");
    let r = no_follow(Some(READ)).get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap(), "secret bytes");
    assert_eq!(c.worker(other).state.metrics.data.redirects.get(), 0);
}
