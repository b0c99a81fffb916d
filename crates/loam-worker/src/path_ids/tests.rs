use super::*;
use crate::cluster::mount_view::MountView;
use crate::metrics::WorkerMetrics;
use crate::read_through::ReadTuning;
use loam_page_store::metrics::PageStoreMetrics;
use loam_page_store::{PageStore, PageStoreConfig};
use loam_ufs::{MountTable, UfsRegistry};
use std::time::Duration;

fn ids(capacity: usize) -> Arc<PathIds> {
    let pages = PageStore::open(
        PageStoreConfig { page_size: 16, memory_capacity: 1 << 20, disk_dirs: vec![], disk_capacity: 0 },
        PageStoreMetrics::default(),
    )
    .unwrap();
    let mounts = MountView::fixed(MountTable::new());
    let tuning = ReadTuning { max_age: Duration::from_secs(60), ufs_read_size: 16, read_ahead: 64 };
    let rt = ReadThrough::new(pages, UfsRegistry::new(), mounts, tuning, WorkerMetrics::default());
    PathIds::new(rt, capacity)
}

#[test]
fn remembers_under_the_uri_id_and_the_asked_spelling() {
    let m = ids(100);
    m.remember("s3://b/one");
    m.remember_as("s3://b//two", "s3://b/two");
    assert_eq!(m.get(&loam_core::file_id("s3://b/one")).as_deref(), Some("s3://b/one"));
    assert_eq!(m.get(&loam_core::file_id("s3://b/two")).as_deref(), Some("s3://b/two"));
    assert_eq!(m.get(&loam_core::file_id("s3://b//two")).as_deref(), Some("s3://b/two"));
    assert_eq!(m.get(&loam_core::file_id("s3://b/three")), None);
    assert_eq!(m.get("not-an-id"), None);
}

#[test]
fn stays_bounded_and_keeps_what_is_used() {
    let m = ids(10);
    m.remember("s3://b/hot");
    let hot = loam_core::file_id("s3://b/hot");
    for i in 0..100 {
        m.remember(&format!("s3://b/f{i}"));
        // A hit moves the entry to the young generation, so it survives the rotations.
        assert!(m.get(&hot).is_some(), "hot entry lost after {i} inserts");
        assert!(m.len() <= 10, "{} entries", m.len());
    }
    assert_eq!(m.get(&loam_core::file_id("s3://b/f0")), None, "cold entries are forgotten");
    assert!(m.get(&loam_core::file_id("s3://b/f99")).is_some());
}

#[tokio::test]
async fn unknown_ids_are_not_found_and_bad_ids_invalid() {
    let m = ids(10);
    let e = m.resolve(&loam_core::file_id("s3://b/none")).await.unwrap_err();
    assert_eq!(e.kind(), loam_core::ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains("ufsFullPath"), "{e}");
    let e = m.resolve("xyz").await.unwrap_err();
    assert_eq!(e.kind(), loam_core::ErrorKind::InvalidInput, "{e}");
}
