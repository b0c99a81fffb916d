//! The global file index holds a million entries well under the coordinator's 300 MB budget. It reads the
//! process RSS, so it must be alone in its process: nextest runs every test in a process of its own; with
//! `cargo test`, run it by itself (`cargo test -p loam-coordinator --test api file_index_memory`).

use loam_coordinator::file_index::FileIndex;

/// Resident set size of this process, from `/proc/self/statm` (pages × 4 KiB).
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("reading /proc/self/statm");
    let resident: u64 = statm.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("statm resident field");
    resident * 4096
}

#[test]
fn a_million_entries_fit_in_the_memory_budget() {
    const N: usize = 1_000_000;
    let index = FileIndex::new(true, usize::MAX);
    let before = rss_bytes();
    let mut batch = Vec::with_capacity(10_000);
    for i in 0..N {
        // ~60-byte URIs, as a real bucket layout gives; four workers share the entries.
        batch.push(format!("s3://datasets-bucket/training/shard-{:05}/part-{i:08}.parquet", i % 1000));
        if batch.len() == 10_000 {
            index.apply_report(&format!("worker-{}", i % 4), &batch, &[]).unwrap();
            batch.clear();
        }
    }
    let after = rss_bytes();
    assert_eq!(index.len(), N);
    let delta = after.saturating_sub(before);
    println!("file index: {N} entries, RSS delta {} MB ({} bytes/entry)", delta >> 20, delta / N as u64);
    assert!(delta < 300 << 20, "a million entries took {} MB", delta >> 20);
}
