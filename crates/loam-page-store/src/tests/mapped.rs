//! Store-level tests of mapped disk hits (`mapped.rs`): which hits are mapped, and that a page corrupted
//! on disk between two reads is never served from a mapping. Whether a page is mapped is read from
//! `/proc/self/maps`, where the kernel lists every file mapping of the process.

use super::*;
use std::os::unix::fs::FileExt;

/// Pages big enough to be mapped (`mapped::MAP_MIN_DATA`).
const BIG: u64 = 2 * crate::mapped::MAP_MIN_DATA;

fn big_store(memory_capacity: u64, dir: &Path) -> (Arc<PageStore>, PageStoreMetrics) {
    open(PageStoreConfig {
        page_size: BIG,
        memory_capacity,
        disk_dirs: vec![dir.to_path_buf()],
        disk_capacity: 10 * BIG,
    })
}

/// A record of two pages of `BIG`, both cached on disk, the page `index` filled with `index + 1`.
async fn two_pages(store: &PageStore) -> FileRecord {
    let rec = record("s3://b/mapped", 2 * BIG, "e");
    store.put_file(rec.clone()).await.unwrap();
    for index in 0..2 {
        let data = Bytes::from(vec![index as u8 + 1; BIG as usize]);
        assert!(store.put_page(&rec.file_id, index, data).await.unwrap());
    }
    rec
}

fn mapped_now(path: &Path) -> bool {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines().any(|l| l.contains(path.to_str().unwrap()))
}

#[tokio::test]
async fn a_disk_hit_without_a_memory_tier_is_served_from_a_mapping_until_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (store, metrics) = big_store(0, dir.path());
    let rec = two_pages(&store).await;
    let path = page_path(&store, &rec.file_id, 1);
    let page = store.get_page(&rec.file_id, 1).await.unwrap().unwrap();
    assert_eq!(page, Bytes::from(vec![2u8; BIG as usize]));
    assert!(mapped_now(&path), "the page is a slice of a mapping of its file");
    // A slice keeps the mapping; the last one dropped unmaps it.
    let part = page.slice(100..200);
    drop(page);
    assert!(mapped_now(&path));
    drop(part);
    assert!(!mapped_now(&path));
    assert_eq!(metrics.page_hits.get_or_create(&DISK).get(), 1);
    // Turned off: the same hit is read into a buffer.
    store.set_mapped_reads(false);
    let page = store.get_page(&rec.file_id, 1).await.unwrap().unwrap();
    assert!(!mapped_now(&path) && page[..] == vec![2u8; BIG as usize][..]);
}

#[tokio::test]
async fn a_hit_the_memory_tier_takes_is_buffered_and_promoted_never_mapped() {
    let dir = tempfile::tempdir().unwrap();
    // Memory for one page: writing page 1 evicted page 0 from memory, so page 0 is a disk hit.
    let (store, metrics) = big_store(BIG, dir.path());
    let rec = two_pages(&store).await;
    let path = page_path(&store, &rec.file_id, 0);
    let page = store.get_page(&rec.file_id, 0).await.unwrap().unwrap();
    assert!(!mapped_now(&path), "the memory tier keeps a buffer, not a mapping of a file");
    assert_eq!(page, Bytes::from(vec![1u8; BIG as usize]));
    assert_eq!(store.get_page(&rec.file_id, 0).await.unwrap(), Some(page));
    assert_eq!(metrics.page_hits.get_or_create(&MEMORY).get(), 1, "promoted by the disk hit");
}

#[tokio::test]
async fn a_page_corrupted_on_disk_between_two_reads_is_never_served_from_its_mapping() {
    let dir = tempfile::tempdir().unwrap();
    let (store, metrics) = big_store(0, dir.path());
    let rec = two_pages(&store).await;
    let path = page_path(&store, &rec.file_id, 0);
    let first = store.get_page(&rec.file_id, 0).await.unwrap().unwrap();
    assert!(mapped_now(&path));
    // One bit flipped in place, as a failing disk would (the store never writes a page file in place),
    // while the first read still holds its mapping of the same inode.
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.write_at(&[1 ^ 0x04], disk::HEADER_LEN as u64 + BIG / 2).unwrap();
    drop(file);
    assert_eq!(store.get_page(&rec.file_id, 0).await.unwrap(), None, "the CRC check on the mapping failed");
    assert_eq!(metrics.corrupt_pages.get(), 1);
    assert!(!path.exists() && !store.has_page(&rec.file_id, 0), "dropped, to be read again from the UFS");
    drop(first);
    // The header too: a page whose header is bad on the mapping is a miss as well.
    let path = page_path(&store, &rec.file_id, 1);
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.write_at(&[0xff], 9).unwrap();
    drop(file);
    assert_eq!(store.get_page(&rec.file_id, 1).await.unwrap(), None);
    assert_eq!(metrics.corrupt_pages.get(), 2);
}

#[tokio::test]
async fn an_intact_page_of_another_generation_is_not_served_from_its_mapping() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = big_store(0, dir.path());
    let rec = two_pages(&store).await;
    let path = page_path(&store, &rec.file_id, 0);
    // A page of another version of the file lands under this version's name (a late write).
    let generation = store.file_version(&rec.file_id).unwrap().1;
    let data = vec![9u8; BIG as usize];
    let header = disk::PageHeader::for_data(generation + 1, 0, BIG, 1, &data);
    disk::write_page(&path, &header, &data).unwrap();
    assert_eq!(store.get_page_of(&rec.file_id, generation, 0).await.unwrap(), None);
    assert!(!store.has_page(&rec.file_id, 0));
}
