//! Disk-tier hits served from mapped page files (issue 17, item 1) through a real worker: warm ranges that
//! cross pages through `/v1/range`, the page API and S3 GetObject with `Range` give the UFS's bytes with no
//! UFS read, mapped or buffered alike; and a page file corrupted on disk between two reads is never sent:
//! the second read finds the bad checksum on the mapping and reads the page again from the UFS.
//!
//! The workers have no memory tier, so every warm page is a disk hit, and the test pages (64 KiB of data)
//! are large enough to be mapped (`loam_page_store`'s `mapped.rs`; its own tests show the mapping in
//! `/proc/self/maps`).

use crate::PAGE;
use loam_testsupport::cluster::{Cluster, Options};
use loam_testsupport::data::pattern;
use std::os::unix::fs::FileExt;

/// One worker, disk tier only, S3 API with anonymous reads, reading the UFS through `FaultyUfs` (which
/// counts its reads).
async fn disk_only() -> Cluster {
    Cluster::start(Options { memory_size: 0, faulty: true, ..crate::s3_api::options(1, PAGE) }).await
}

/// `GET` of `url` with `Range: bytes=lo-(hi-1)`, unsigned: status and body.
async fn get_range(url: &str, lo: u64, hi: u64) -> (u16, Vec<u8>) {
    let r = reqwest::Client::new().get(url).header("Range", format!("bytes={lo}-{}", hi - 1)).send().await.unwrap();
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

/// The page files of the worker's cache, in name order.
fn page_files(c: &Cluster) -> Vec<std::path::PathBuf> {
    let mut pages: Vec<_> = crate::files_under(&c.cache_dir(0))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "page"))
        .collect();
    pages.sort();
    pages
}

#[tokio::test]
async fn warm_ranges_across_pages_are_the_ufs_bytes_over_http_the_page_api_and_s3() {
    let c = disk_only().await;
    let data = pattern((3 * PAGE + 100) as usize, 5);
    let uri = c.write("zc/f.bin", &data);
    let id = loam_core::file_id(&uri);
    assert_eq!(c.range(0, &uri, 0, data.len() as u64).await, data, "cold read");
    assert_eq!(page_files(&c).len(), 4);
    let reads = c.faulty().read_calls();
    let s3 = format!("{}/data/zc/f.bin", c.worker(0).s3_base());
    let pages = c.worker(0).state.rt.pages().clone();
    for mapped in [true, false] {
        pages.set_mapped_reads(mapped);
        // From the middle of page 0 to the middle of page 2, and from page 1 to the end of the file.
        for (lo, hi) in [(PAGE - 100, 2 * PAGE + 100), (PAGE + 1, data.len() as u64)] {
            let want = &data[lo as usize..hi as usize];
            assert_eq!(c.range(0, &uri, lo, hi - lo).await, want, "/v1/range {lo}..{hi}, mapped {mapped}");
            assert_eq!(get_range(&s3, lo, hi).await, (206, want.to_vec()), "S3 {lo}..{hi}, mapped {mapped}");
        }
        let r = c.get(0, &format!("/v1/file/{id}/page/1?ufsFullPath={uri}")).await;
        assert_eq!(r.status(), 200);
        assert_eq!(&r.bytes().await.unwrap()[..], &data[PAGE as usize..2 * PAGE as usize], "page API");
        let whole = reqwest::get(&s3).await.unwrap();
        assert_eq!(whole.status(), 200);
        assert_eq!(&whole.bytes().await.unwrap()[..], &data[..], "S3 whole object, mapped {mapped}");
    }
    assert_eq!(c.faulty().read_calls(), reads, "every warm read came from the disk tier");
}

#[tokio::test]
async fn a_page_file_corrupted_between_two_reads_is_never_sent() {
    let c = disk_only().await;
    let data = pattern((2 * PAGE) as usize, 6);
    let uri = c.write("zc/c.bin", &data);
    let s3 = format!("{}/data/zc/c.bin", c.worker(0).s3_base());
    assert_eq!(c.range(0, &uri, 0, 2 * PAGE).await, data, "cold read");
    assert_eq!(c.range(0, &uri, 0, 2 * PAGE).await, data, "warm read, from the mapped pages");
    let reads = c.faulty().read_calls();
    // One bit of each page's data flipped in place, as a failing disk would (the worker itself never
    // writes a page file in place, so nothing but the checksum can notice).
    let files = page_files(&c);
    assert_eq!(files.len(), 2);
    for (k, path) in files.iter().enumerate() {
        let f = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
        let len = f.metadata().unwrap().len();
        let at = len - 1000 - k as u64;
        let mut byte = [0u8];
        f.read_at(&mut byte, at).unwrap();
        f.write_at(&[byte[0] ^ 0x20], at).unwrap();
    }
    // Through S3 a range inside page 1 first, then the whole file through /v1/range.
    let (lo, hi) = (PAGE + 10, 2 * PAGE - 10);
    assert_eq!(get_range(&s3, lo, hi).await, (206, data[lo as usize..hi as usize].to_vec()), "S3 range");
    assert_eq!(c.range(0, &uri, 0, 2 * PAGE).await, data, "corrupt pages are never served");
    assert!(c.faulty().read_calls() > reads, "the corrupt pages were read again from the UFS");
    let metrics = c.get(0, "/metrics").await.text().await.unwrap();
    assert!(metrics.contains("loam_worker_corrupt_pages_total 2"), "{metrics}");
    // And they are cached again, whole: the next read needs no UFS.
    let reads = c.faulty().read_calls();
    assert_eq!(c.range(0, &uri, 0, 2 * PAGE).await, data);
    assert_eq!(c.faulty().read_calls(), reads);
}
