//! The mount's `/metrics` scraped over HTTP after the kernel's requests through a real FUSE mount: the
//! operation counts match what the test did, reads are split into read-ahead hits and misses, bytes read
//! add up, and a missing path is counted as a `lookup` `ENOENT`.

use crate::mount::{blocking, cluster, require_fuse};
use loam_listener::Listener;
use std::io::Read;
use tokio::net::TcpListener;

/// The value of the sample `series` (name with labels, as the text spells it), or 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.split(' ').next()?.parse().ok()).unwrap_or(0.0)
}

async fn scrape(url: &str) -> String {
    let r = reqwest::get(format!("{url}/metrics")).await.unwrap();
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    r.text().await.unwrap()
}

fn count(text: &str, op: &str) -> f64 {
    sample(text, &format!("loam_fuse_operation_duration_seconds_count{{op=\"{op}\"}}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_scrape_counts_the_operations_read_ahead_and_bytes_of_what_was_read() {
    require_fuse();
    let c = cluster(2).await;
    let big = c.write("big", 9 << 20, 1);
    let small = c.write("small", 1000, 2);
    let m = c.mount();
    let listener = Listener::plain(TcpListener::bind("127.0.0.1:0").await.unwrap());
    let url = listener.url().unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(loam_fuse::metrics::serve(listener, m.metrics(), async move {
        let mut stopped = stopped;
        let _ = stopped.wait_for(|s| *s).await;
    }));
    let before = scrape(&url).await;
    assert_eq!(count(&before, "read"), 0.0, "nothing read yet:\n{before}");

    let root = m.mount_point().to_path_buf();
    let (big_len, small_len) = (big.len(), small.len());
    blocking(move || {
        // A sequential stream, in the kernel's 128 KiB requests: read-ahead starts after two of them.
        let mut f = std::fs::File::open(root.join("data/big")).unwrap();
        let mut got = Vec::new();
        f.read_to_end(&mut got).unwrap();
        assert!(got == big);
        drop(f);
        assert_eq!(std::fs::read(root.join("data/small")).unwrap(), small);
        assert_eq!(std::fs::read_dir(root.join("data")).unwrap().count(), 3, "big, small, sub");
        assert!(std::fs::metadata(root.join("data/nope")).is_err());
    })
    .await;

    let text = scrape(&url).await;
    assert_eq!(count(&text, "open"), 2.0, "two files opened:\n{text}");
    assert_eq!(count(&text, "opendir"), 1.0, "one directory listed:\n{text}");
    assert!(count(&text, "readdir") >= 1.0, "{text}");
    assert!(count(&text, "lookup") >= 3.0, "data, big, small, nope at least:\n{text}");
    assert_eq!(sample(&text, "loam_fuse_operation_errors_total{op=\"lookup\",errno=\"ENOENT\"}"), 1.0, "{text}");
    // The kernel reads each file once (its page cache serves the rest); every byte came through `read`.
    assert_eq!(sample(&text, "loam_fuse_read_bytes_total"), (big_len + small_len) as f64, "{text}");
    let reads = count(&text, "read");
    let hits = sample(&text, "loam_fuse_readahead_reads_total{result=\"hit\"}");
    let misses = sample(&text, "loam_fuse_readahead_reads_total{result=\"miss\"}");
    assert!(hits >= 1.0, "a 9 MiB sequential read is served from read-ahead windows:\n{text}");
    assert!(misses >= 2.0, "the reads before the stream is recognised are misses:\n{text}");
    assert_eq!(hits + misses, reads, "every read is a hit or a miss:\n{text}");
    assert_eq!(
        sample(&text, "loam_fuse_operation_errors_total{op=\"read\",errno=\"EIO\"}"),
        0.0,
        "no read failed:\n{text}"
    );
    // The sum of a histogram's buckets is its count: the largest bucket holds every read.
    assert_eq!(sample(&text, "loam_fuse_operation_duration_seconds_bucket{le=\"+Inf\",op=\"read\"}"), reads, "{text}");
    // Releases reach the mount after close() returns; both arrive.
    let mut text = text;
    for _ in 0..100 {
        if count(&text, "release") >= 2.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        text = scrape(&url).await;
    }
    assert_eq!(count(&text, "release"), 2.0, "{text}");

    let _ = stop.send(true);
    server.await.unwrap().unwrap();
    blocking(move || m.unmount().unwrap()).await;
}
