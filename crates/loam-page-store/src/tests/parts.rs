//! Store-level tests of part reads (`get_page_part_of`, `blocks.rs`): a part of a disk-tier page is read
//! and checked block by block, is not promoted into memory, and a damaged block under the part is never
//! served.

use super::*;
use crate::blocks::BLOCK;

/// Pages of four checksum blocks.
const PAGE: u64 = 4 * BLOCK as u64;

fn store(memory_capacity: u64, dir: &Path) -> (Arc<PageStore>, PageStoreMetrics) {
    open(PageStoreConfig {
        page_size: PAGE,
        memory_capacity,
        disk_dirs: vec![dir.to_path_buf()],
        disk_capacity: 8 * PAGE,
    })
}

fn bytes(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 253) as u8).collect()
}

/// A one-page file (the page a little short of `PAGE`, so its last block is short), cached on disk only.
async fn one_page(store: &PageStore) -> (FileRecord, Vec<u8>, u64) {
    let want = bytes(PAGE as usize - 100);
    let rec = record("s3://b/parts", want.len() as u64, "e");
    let generation = store.put_file_pending(rec.clone()).await.unwrap();
    let put = store.put_pages_of(&rec.file_id, generation, vec![(0, Bytes::from(want.clone()))]).await.unwrap();
    assert_eq!(put, vec![true]);
    (rec, want, generation)
}

#[tokio::test]
async fn parts_of_a_disk_page_are_its_bytes_and_are_not_promoted() {
    let dir = tempfile::tempdir().unwrap();
    let (store, metrics) = store(0, dir.path());
    let (rec, want, g) = one_page(&store).await;
    let n = want.len();
    for (lo, hi) in [(0, 4096), (BLOCK - 10, BLOCK + 10), (3 * BLOCK, n), (5, n), (n - 1, n + 50), (n, n + 1)] {
        let got = store.get_page_part_of(&rec.file_id, g, 0, lo..hi).await.unwrap().unwrap();
        assert_eq!(&got[..], &want[lo.min(n)..hi.min(n)], "{lo}..{hi}");
    }
    assert_eq!(metrics.page_hits.get_or_create(&DISK).get(), 6);
    assert_eq!(store.usage().memory_pages, 0);
    assert_eq!(store.get_page_part_of(&rec.file_id, g + 1, 0, 0..10).await.unwrap(), None, "another version");
}

#[tokio::test]
async fn a_part_out_of_the_page_cache_is_read_from_the_disk_all_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let (store, metrics) = store(0, dir.path());
    let (rec, want, g) = one_page(&store).await;
    // (a part in the page cache is read on the calling thread; one that is not waits on a blocking one)
    let path = store.layout.as_ref().unwrap().page_path(&rec.file_id, g, 0);
    let file = std::fs::File::open(&path).unwrap();
    file.sync_all().unwrap();
    rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed).unwrap();
    let got = store.get_page_part_of(&rec.file_id, g, 0, BLOCK + 5..2 * BLOCK + 5).await.unwrap().unwrap();
    assert_eq!(&got[..], &want[BLOCK + 5..2 * BLOCK + 5]);
    assert_eq!(metrics.page_hits.get_or_create(&DISK).get(), 1);
    assert_eq!(metrics.corrupt_pages.get(), 0);
}

#[tokio::test]
async fn a_part_read_with_a_memory_tier_leaves_the_page_on_disk_only() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = store(8 * PAGE, dir.path());
    let (rec, want, g) = one_page(&store).await;
    // The write went to both tiers; drop the memory copy by reopening on the same directory.
    drop(store);
    let (store, metrics) = self::store(8 * PAGE, dir.path());
    let got = store.get_page_part_of(&rec.file_id, g, 0, 100..200).await.unwrap().unwrap();
    assert_eq!(&got[..], &want[100..200]);
    assert_eq!(store.usage().memory_pages, 0, "a part is not promoted");
    assert_eq!(store.get_page_of(&rec.file_id, g, 0).await.unwrap().as_deref(), Some(&want[..]));
    assert_eq!(store.usage().memory_pages, 1, "a whole page still is");
    assert_eq!(metrics.page_hits.get_or_create(&DISK).get(), 2);
}

#[tokio::test]
async fn a_damaged_block_under_a_part_is_never_served_and_drops_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let (store, metrics) = store(0, dir.path());
    let (rec, want, g) = one_page(&store).await;
    let path = page_path(&store, &rec.file_id, 0);
    // One bit of block 2's data, in place.
    let mut raw = std::fs::read(&path).unwrap();
    let data_at = raw.len() - want.len();
    raw[data_at + 2 * BLOCK + 5] ^= 0x04;
    std::fs::write(&path, &raw).unwrap();
    // A part over other blocks only is checked against their own checksums, and served.
    let got = store.get_page_part_of(&rec.file_id, g, 0, 0..BLOCK).await.unwrap().unwrap();
    assert_eq!(&got[..], &want[..BLOCK]);
    // A part that touches block 2, even by one byte, is a miss: counted, the page deleted.
    let hit = store.get_page_part_of(&rec.file_id, g, 0, 2 * BLOCK + 100..2 * BLOCK + 101).await.unwrap();
    assert_eq!(hit, None);
    assert_eq!(metrics.corrupt_pages.get(), 1);
    assert!(!path.exists() && !store.has_page(&rec.file_id, 0));
}

#[tokio::test]
async fn a_damaged_checksum_table_or_a_cut_file_is_a_miss() {
    let dir = tempfile::tempdir().unwrap();
    let (store, metrics) = store(0, dir.path());
    let (rec, _, g) = one_page(&store).await;
    let path = page_path(&store, &rec.file_id, 0);
    let mut raw = std::fs::read(&path).unwrap();
    raw[disk::HEADER_LEN + 4 + 1] ^= 0x01; // block 1's entry
    std::fs::write(&path, &raw).unwrap();
    assert_eq!(store.get_page_part_of(&rec.file_id, g, 0, BLOCK..BLOCK + 8).await.unwrap(), None);
    assert_eq!(metrics.corrupt_pages.get(), 1);

    let (rec, want, g) = one_page(&store).await;
    let path = page_path(&store, &rec.file_id, 0);
    let raw = std::fs::read(&path).unwrap();
    std::fs::write(&path, &raw[..raw.len() - 1]).unwrap();
    // Cut in its last block: a part before it is its checked blocks (the file's size is not asked for a
    // part); a part on the cut block finds the file shorter than its header says.
    let whole = store.get_page_part_of(&rec.file_id, g, 0, 0..8).await.unwrap();
    assert_eq!(whole.as_deref(), Some(&want[..8]));
    assert_eq!(metrics.corrupt_pages.get(), 1);
    assert_eq!(store.get_page_part_of(&rec.file_id, g, 0, want.len() - 8..want.len()).await.unwrap(), None);
    assert_eq!(metrics.corrupt_pages.get(), 2);
}
