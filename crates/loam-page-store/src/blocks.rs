//! Block checksums: a CRC32 for every [`BLOCK`] bytes of a page's data, stored in the page file between
//! the header and the data (page format 2), so that a read of part of a page reads and verifies only the
//! blocks it touches.
//!
//! Why: a page is 1 MiB by default and a client's request may want 4 KiB of it. With one checksum per page,
//! serving those 4 KiB from the disk tier meant reading and checksumming the whole MiB (a profile of random
//! 4 KiB `Range` GETs put two thirds of a worker's CPU there). With one per 16 KiB block, a part read reads
//! the blocks under it and checks each one: every byte served is still verified against a checksum written
//! with it, so "a corrupt page is never served" holds for parts as for whole pages.
//!
//! The table is not checksummed itself: a damaged entry fails its block, which drops the page (a miss, read
//! again from the UFS), the same outcome as damaged data. The header keeps the CRC32 of the whole data,
//! which whole-page reads check in one pass; it is combined from the blocks' CRCs when the page is written,
//! so writing costs one pass over the data too.

use std::ops::Range;

/// Bytes of data each checksum covers (the last block of a page may be shorter).
pub const BLOCK: usize = 16 << 10;
/// Bytes of one table entry (a little-endian CRC32).
pub const ENTRY: usize = 4;

/// The blocks of `len` bytes of data.
pub fn count(len: usize) -> usize {
    len.div_ceil(BLOCK)
}

/// Bytes of the table of a page of `len` data bytes.
pub fn table_len(len: usize) -> usize {
    count(len) * ENTRY
}

/// The table of `data` and the CRC32 of the whole of it (combined from the blocks', one pass).
pub fn table_of(data: &[u8]) -> (Vec<u8>, u32) {
    let mut table = Vec::with_capacity(table_len(data.len()));
    let mut whole = crc32fast::Hasher::new();
    for block in data.chunks(BLOCK) {
        let mut h = crc32fast::Hasher::new();
        h.update(block);
        table.extend_from_slice(&h.clone().finalize().to_le_bytes());
        whole.combine(&h);
    }
    (table, whole.finalize())
}

/// The blocks `[first, end)` that hold bytes `range` of the data (empty for an empty range).
pub fn covering(range: &Range<usize>) -> Range<usize> {
    if range.is_empty() {
        return 0..0;
    }
    range.start / BLOCK..range.end.div_ceil(BLOCK)
}

/// Checks `data`, the bytes of the consecutive blocks from block `first` on (the last of which may be a
/// page's short last block), against their entries in `table` (the page's whole table).
pub fn verify(table: &[u8], first: usize, data: &[u8]) -> Result<(), String> {
    for (i, block) in data.chunks(BLOCK).enumerate() {
        let at = (first + i) * ENTRY;
        let entry = table.get(at..at + ENTRY).ok_or_else(|| format!("no checksum for block {}", first + i))?;
        let want = u32::from_le_bytes([entry[0], entry[1], entry[2], entry[3]]);
        if crc32fast::hash(block) != want {
            return Err(format!("checksum mismatch in block {}", first + i));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn the_whole_crc_is_the_datas() {
        for len in [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 5 * BLOCK + 77, 1 << 20] {
            let d = data(len);
            let (table, whole) = table_of(&d);
            assert_eq!(whole, crc32fast::hash(&d), "len {len}");
            assert_eq!(table.len(), table_len(len), "len {len}");
        }
    }

    #[test]
    fn every_block_checks_and_a_flipped_byte_fails_only_its_block() {
        let mut d = data(3 * BLOCK + 100);
        let (table, _) = table_of(&d);
        verify(&table, 0, &d).unwrap();
        verify(&table, 1, &d[BLOCK..]).unwrap();
        verify(&table, 3, &d[3 * BLOCK..]).unwrap();
        d[2 * BLOCK + 5] ^= 1;
        assert!(verify(&table, 0, &d).unwrap_err().contains("block 2"));
        verify(&table, 0, &d[..2 * BLOCK]).unwrap();
        verify(&table, 3, &d[3 * BLOCK..]).unwrap();
    }

    #[test]
    fn a_damaged_table_or_a_missing_entry_fails() {
        let d = data(2 * BLOCK);
        let (mut table, _) = table_of(&d);
        table[5] ^= 0x10;
        assert!(verify(&table, 1, &d[BLOCK..]).is_err());
        verify(&table, 0, &d[..BLOCK]).unwrap();
        assert!(verify(&table[..4], 0, &d).unwrap_err().contains("no checksum for block 1"));
    }

    #[test]
    fn covering_blocks() {
        assert_eq!(covering(&(0..0)), 0..0);
        assert_eq!(covering(&(0..1)), 0..1);
        assert_eq!(covering(&(BLOCK - 1..BLOCK + 1)), 0..2);
        assert_eq!(covering(&(BLOCK..2 * BLOCK)), 1..2);
        assert_eq!(covering(&(4096..8192)), 0..1);
    }
}
