//! How far ahead of a client a cold read must ask the UFS: the pace of each mount, measured as its reads
//! happen.
//!
//! A streamed run (`run`) reports, per mount, how long its first piece took to arrive (the UFS's
//! first-byte latency, plus one piece at its bandwidth: an over-estimate that errs towards reading further
//! ahead) and the bandwidth of the rest. To keep the UFS sending while a client receives, the next run
//! must be asked for at least one latency before the client reaches it, so a stream keeps
//! `latency × bandwidth` bytes in flight beyond the run it is in: [`Pace::depth`] pages of read-ahead,
//! never fewer than [`READ_AHEAD_PAGES`] and never more than the worker's read-ahead budget (which bounds
//! the pages actually taken anyway: a deeper queue only lets one stream use more of it). Both figures are
//! moving averages (each new read weighs a fifth), so a mount that slows down or speeds up is followed
//! within a few runs, and one odd read does not swing it.
//!
//! `file://` on a local disk: ~0.1 ms × 2 GB/s = 200 KB, under one page: the minimum depth. S3 at 30 ms
//! first byte and 300 MB/s: 9 MB, so 9 pages plus a run of 4 = 13 pages (of the default 1 MiB).

use super::read_ahead::READ_AHEAD_PAGES;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The weight of a new sample in the moving averages.
const WEIGHT: f64 = 0.2;

/// The read-ahead depth (pages) of the streams of one mount, updated as its reads are measured.
pub type Depth = Arc<AtomicUsize>;

/// The measured pace of each mount's UFS and the read-ahead depth it calls for.
pub struct Pace {
    page_size: u64,
    run_pages: u64,
    max_pages: usize,
    mounts: Mutex<HashMap<String, Mount>>,
}

/// One mount's averages and the depth its streams read.
struct Mount {
    first_byte_secs: Option<f64>,
    bytes_per_sec: Option<f64>,
    depth: Depth,
}

impl Pace {
    /// Depths in pages of `page_size`, for runs of `run_pages`, at most `max_pages` (the budget's pages).
    pub fn new(page_size: u64, run_pages: u64, max_pages: u64) -> Self {
        let max_pages = usize::try_from(max_pages).unwrap_or(usize::MAX).max(READ_AHEAD_PAGES);
        Self { page_size: page_size.max(1), run_pages, max_pages, mounts: Mutex::new(HashMap::new()) }
    }

    /// The depth the streams of `mount` read ahead (shared: it follows later measurements).
    pub fn depth(&self, mount: &str) -> Depth {
        self.mounts.lock().entry(mount.to_string()).or_insert_with(Mount::new).depth.clone()
    }

    /// Records a read of `mount`: its first piece after `first_byte`, then `rest` bytes in `rest_time`.
    pub fn record(&self, mount: &str, first_byte: Duration, rest: u64, rest_time: Duration) {
        let mut mounts = self.mounts.lock();
        let m = mounts.entry(mount.to_string()).or_insert_with(Mount::new);
        m.first_byte_secs = Some(average(m.first_byte_secs, first_byte.as_secs_f64()));
        // Too short a remainder says more about the clock than about the UFS.
        if rest >= self.page_size && !rest_time.is_zero() {
            m.bytes_per_sec = Some(average(m.bytes_per_sec, rest as f64 / rest_time.as_secs_f64()));
        }
        if let (Some(lat), Some(bw)) = (m.first_byte_secs, m.bytes_per_sec) {
            m.depth.store(self.depth_for(lat, bw), Ordering::Relaxed);
        }
    }

    /// Pages of read-ahead for a UFS with first-byte latency `lat` (s) and bandwidth `bw` (bytes/s).
    fn depth_for(&self, lat: f64, bw: f64) -> usize {
        let in_flight = (lat * bw / self.page_size as f64).ceil();
        let pages = if in_flight.is_finite() { in_flight.min(self.max_pages as f64) as usize } else { self.max_pages };
        pages.saturating_add(self.run_pages as usize).clamp(READ_AHEAD_PAGES, self.max_pages)
    }
}

impl Mount {
    fn new() -> Self {
        Self { first_byte_secs: None, bytes_per_sec: None, depth: Arc::new(AtomicUsize::new(READ_AHEAD_PAGES)) }
    }
}

fn average(old: Option<f64>, new: f64) -> f64 {
    match old {
        Some(old) => old + WEIGHT * (new - old),
        None => new,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn a_fast_local_ufs_keeps_the_minimum_depth() {
        let p = Pace::new(MIB, 4, 64);
        let d = p.depth("/local");
        p.record("/local", Duration::from_micros(100), 3 * MIB, Duration::from_micros(1500));
        assert_eq!(d.load(Ordering::Relaxed), READ_AHEAD_PAGES);
    }

    #[test]
    fn a_slow_first_byte_reads_further_ahead_within_the_budget() {
        let p = Pace::new(MIB, 4, 64);
        let d = p.depth("/s3");
        // 30 ms to the first piece, then 300 MiB/s: 9 MiB in flight beyond the run of 4 pages.
        p.record("/s3", Duration::from_millis(30), 3 * MIB, Duration::from_millis(10));
        assert_eq!(d.load(Ordering::Relaxed), 9 + 4);
        // A much slower UFS asks for more than the budget: the budget is the cap.
        let q = Pace::new(MIB, 4, 16);
        q.record("/far", Duration::from_secs(1), 30 * MIB, Duration::from_millis(100));
        assert_eq!(q.depth("/far").load(Ordering::Relaxed), 16);
    }

    #[test]
    fn mounts_are_measured_apart_and_averaged() {
        let p = Pace::new(MIB, 4, 1000);
        p.record("/a", Duration::from_millis(100), 10 * MIB, Duration::from_millis(100));
        assert_eq!(p.depth("/b").load(Ordering::Relaxed), READ_AHEAD_PAGES, "another mount is not measured");
        let deep = p.depth("/a").load(Ordering::Relaxed);
        assert_eq!(deep, 10 + 4);
        // One fast read moves the average a fifth of the way, not all of it.
        p.record("/a", Duration::ZERO, 10 * MIB, Duration::from_millis(100));
        assert_eq!(p.depth("/a").load(Ordering::Relaxed), 8 + 4);
    }
}
