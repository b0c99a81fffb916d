//! `FaultyUfs`: read counting and injected faults, in front of a real fs UFS.

use bytes::Bytes;
use futures::{StreamExt, future::join_all};
use loam_core::path::UfsUri;
use loam_ufs::faulty::{FaultyUfs, UriCounts};
use loam_ufs::{ListOptions, MountOptions, OpendalUfs, Ufs, UfsError};
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;

/// A FaultyUfs over a temp dir holding `a` (10 bytes) and `b` (5 bytes); returns (ufs, root, dir).
async fn setup() -> (Arc<FaultyUfs>, String, TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let root = format!("file://{}", tmp.path().display());
    let inner = OpendalUfs::new(&UfsUri::parse(&root).unwrap(), &MountOptions::new()).unwrap();
    inner.write(&format!("{root}/a"), Bytes::from_static(b"0123456789")).await.unwrap();
    inner.write(&format!("{root}/b"), Bytes::from_static(b"abcde")).await.unwrap();
    (Arc::new(FaultyUfs::new(Arc::new(inner))), root, tmp)
}

#[tokio::test]
async fn counts_calls_and_bytes_in_total_and_per_uri() {
    let (ufs, root, _tmp) = setup().await;
    let (a, b) = (format!("{root}/a"), format!("{root}/b"));
    assert_eq!(ufs.read_range(&a, 2, 3).await.unwrap(), Bytes::from_static(b"234"));
    ufs.read_range(&a, 8, 100).await.unwrap();
    ufs.read_range(&b, 0, 100).await.unwrap();
    assert!(ufs.read_range(&format!("{root}/missing"), 0, 1).await.is_err());
    assert_eq!(ufs.read_calls(), 4, "failed reads count as calls");
    assert_eq!(ufs.read_bytes(), 3 + 2 + 5);
    assert_eq!(ufs.reads_of(&a), UriCounts { calls: 2, bytes: 5 });
    assert_eq!(ufs.reads_of(&b), UriCounts { calls: 1, bytes: 5 });
    ufs.stat(&a).await.unwrap();
    assert_eq!(ufs.read_calls(), 4, "stat is not a read");
    ufs.reset_counters();
    assert_eq!((ufs.read_calls(), ufs.read_bytes(), ufs.reads_of(&a)), (0, 0, UriCounts::default()));
}

#[tokio::test]
async fn fails_every_operation_on_matching_uris() {
    let (ufs, root, _tmp) = setup().await;
    let (a, b) = (format!("{root}/a"), format!("{root}/b"));
    ufs.fail_matching("/a", UfsError::Unavailable("injected".into()));
    let unavailable = |r: Result<(), UfsError>| matches!(r, Err(UfsError::Unavailable(m)) if m == "injected");
    assert!(unavailable(ufs.read_range(&a, 0, 1).await.map(|_| ())));
    assert!(unavailable(ufs.stat(&a).await.map(|_| ())));
    assert!(unavailable(ufs.write(&a, Bytes::new()).await));
    let body = futures::stream::iter(vec![Ok(Bytes::from_static(b"x"))]).boxed();
    assert!(unavailable(ufs.write_stream(&a, body, Default::default()).await.map(|_| ())));
    assert!(unavailable(ufs.delete(&a, false).await));
    assert!(unavailable(ufs.copy(&b, &a).await), "either URI of a copy matches");
    assert!(unavailable(ufs.rename(&a, &b).await));
    let first = ufs.list(&a, ListOptions::default()).next().await;
    assert!(matches!(first, Some(Err(UfsError::Unavailable(_)))));
    assert_eq!(ufs.read_range(&b, 0, 5).await.unwrap(), Bytes::from_static(b"abcde"), "others pass");
    ufs.clear_faults();
    assert_eq!(ufs.read_range(&a, 0, 1).await.unwrap(), Bytes::from_static(b"0"));
    let body = futures::stream::iter(vec![Ok(Bytes::from_static(b"new"))]).boxed();
    assert_eq!(
        ufs.write_stream(&a, body, Default::default()).await.unwrap(),
        3,
        "a cleared fault lets streamed writes through"
    );
    assert_eq!(ufs.read_range(&a, 0, 10).await.unwrap(), Bytes::from_static(b"new"));
}

/// The budget is shared by concurrent reads and set through `&self` while they run: exactly N fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_exactly_the_next_n_reads_under_concurrency() {
    let (ufs, root, _tmp) = setup().await;
    let a = format!("{root}/a");
    ufs.fail_next_reads(5, UfsError::Other("boom".into()));
    let reads = (0..20).map(|_| {
        let (ufs, a) = (ufs.clone(), a.clone());
        tokio::spawn(async move { ufs.read_range(&a, 0, 10).await })
    });
    let results: Vec<_> = join_all(reads).await.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(results.iter().filter(|r| matches!(r, Err(UfsError::Other(m)) if m == "boom")).count(), 5);
    assert!(results.iter().filter_map(|r| r.as_ref().ok()).all(|d| d.as_ref() == b"0123456789"));
    assert!(ufs.read_range(&a, 0, 10).await.is_ok(), "the budget is spent");
}

#[tokio::test(start_paused = true)]
async fn delays_reads_until_cleared() {
    let (ufs, root, _tmp) = setup().await;
    let a = format!("{root}/a");
    ufs.set_read_delay(Some(Duration::from_secs(3600)));
    // With the clock paused, time jumps to the next timer: the 60 s timeout fires before the 1 h delay.
    let slow = tokio::time::timeout(Duration::from_secs(60), ufs.read_range(&a, 0, 10)).await;
    assert!(slow.is_err(), "the read was held back");
    ufs.set_read_delay(None);
    // Awaited without a timeout: a paused clock could fire one while the file read runs.
    assert_eq!(ufs.read_range(&a, 0, 10).await.unwrap(), Bytes::from_static(b"0123456789"));
}

#[tokio::test]
async fn corrupts_returned_bytes() {
    let (ufs, root, _tmp) = setup().await;
    let a = format!("{root}/a");
    ufs.set_corrupt_reads(true);
    let bad = ufs.read_range(&a, 0, 10).await.unwrap();
    assert_ne!(bad.as_ref(), b"0123456789");
    assert_eq!(bad[0], !b'0', "the first byte is inverted");
    assert_eq!(&bad[1..], b"123456789");
    assert!(ufs.read_range(&a, 50, 10).await.unwrap().is_empty(), "nothing to corrupt past EOF");
    ufs.set_corrupt_reads(false);
    assert_eq!(ufs.read_range(&a, 0, 10).await.unwrap().as_ref(), b"0123456789");
}
