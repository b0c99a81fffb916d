//! Deterministic test bytes: a test writes a file of them, reads it back through Loam, and compares every
//! byte. Two generators because tests were written against both; each gives different bytes per seed and
//! per position, so a wrong page, a misplaced slice or another file's bytes cannot pass for the right ones.

/// `len` bytes, different for each `seed` (the in-process tests' generator).
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[1] ^ seed).collect()
}

/// `len` bytes, different for each `seed` and position (the FUSE and process tests' generator).
pub fn content(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32).map(|i| (i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 24) as u8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_give_different_bytes_of_the_length_asked() {
        assert_eq!((pattern(1000, 1).len(), content(1000, 1).len()), (1000, 1000));
        assert_ne!(pattern(1000, 1), pattern(1000, 2));
        assert_ne!(content(1000, 1), content(1000, 2));
        assert_eq!(content(7, 3), content(7, 3));
    }
}
