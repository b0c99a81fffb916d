//! The page store's metrics seam: handles to the counters and gauges the store updates, and nothing else.
//! The store registers nothing itself: the process that embeds it (the worker, `loam_worker::metrics`)
//! creates a [`PageStoreMetrics`] and registers each handle on its own registry under its own metric
//! names, so several stores can run in one process and the store's crate knows no metric name.
//!
//! **Decision:** the handles are plain prometheus-client values (cloning shares them), not a trait of
//! callbacks: the store counts on its hot path with one atomic add, and a test reads a value back with
//! `get()` without a registry. `PageStoreMetrics::default()` gives unregistered handles, for tests and
//! for callers that do not export metrics.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

/// The `tier` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TierLabel {
    /// `memory` or `disk`.
    pub tier: &'static str,
}

/// Label of the memory tier.
pub const MEMORY: TierLabel = TierLabel { tier: "memory" };
/// Label of the disk tier.
pub const DISK: TierLabel = TierLabel { tier: "disk" };

/// The `dir` label: a cache directory as configured.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirLabel {
    /// The directory's path.
    pub dir: String,
}

/// A histogram family whose series are made by a plain function (so the struct stays `Clone`).
pub type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// The buckets of a latency histogram, in seconds: 0.5 ms to ~2 min, by factors of 4 (a memory hit is
/// in the first; a disk read or a UFS read in the middle ones).
pub fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 4.0, 10))
}

/// Why page data left the cache: the `cause` label of the eviction counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvictionCause {
    /// Made room among data of the same or a higher priority (LRU), or a tier shrank (a full disk, the
    /// start-up clamp).
    Capacity,
    /// Made way for data of a higher priority (the priority rules).
    Priority,
    /// Expired by the TTL scan (the TTL rules).
    Ttl,
    /// Freed by a free job or the free API.
    Free,
}

impl EvictionCause {
    /// Every cause, to create each series at start.
    pub const ALL: [EvictionCause; 4] = [Self::Capacity, Self::Priority, Self::Ttl, Self::Free];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Capacity => "capacity",
            Self::Priority => "priority",
            Self::Ttl => "ttl",
            Self::Free => "free",
        }
    }

    /// The `cause` label.
    pub fn label(self) -> CauseLabel {
        CauseLabel { cause: self.as_str() }
    }
}

/// The `cause` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CauseLabel {
    /// See [`EvictionCause`].
    pub cause: &'static str,
}

/// Handles to what the page store counts. Cloning shares the underlying values.
#[derive(Clone)]
pub struct PageStoreMetrics {
    /// Pages served from the cache, by tier.
    pub page_hits: Family<TierLabel, Counter>,
    /// Pages not in the cache when asked for.
    pub page_misses: Counter,
    /// Seconds a page read that hit took, by tier (the read-through layer adds its fills as `ufs`).
    pub page_read_seconds: Histograms<TierLabel>,
    /// Pages evicted to make room, by tier.
    pub pages_evicted: Family<TierLabel, Counter>,
    /// Pages whose checksum failed on read (dropped and reported as a miss).
    pub corrupt_pages: Counter,
    /// Bytes cached now, by tier.
    pub cached_bytes: Family<TierLabel, Gauge>,
    /// Pages cached now, by tier.
    pub cached_pages: Family<TierLabel, Gauge>,
    /// Files with a record.
    pub cached_files: Gauge,
    /// 1 while a cache directory is in use, 0 while it is failed (its pages are misses).
    pub dir_healthy: Family<DirLabel, Gauge>,
    /// Bytes of page data a cache directory may hold now: its share of the disk capacity, clamped to the
    /// room its file system has.
    pub dir_capacity: Family<DirLabel, Gauge>,
    /// Page and record writes or reads that failed in a cache directory (a full disk included).
    pub dir_errors: Family<DirLabel, Counter>,
    /// Bytes of page data a cache directory holds now (headers not counted).
    pub dir_used: Family<DirLabel, Gauge>,
    /// Bytes a tier may hold now (disk: the sum of the directories' clamped capacities).
    pub capacity: Family<TierLabel, Gauge>,
    /// Bytes of page data that left the cache (no tier holds them any more), by cause.
    pub evicted_bytes: Family<CauseLabel, Counter>,
    /// Alluxio's `alluxio_cached_evicted_data`: bytes evicted by the cache itself (capacity and priority).
    pub alluxio_evicted: Counter,
    /// Alluxio's `alluxio_cached_storage`: bytes cached in the tier that keeps pages (disk, else memory).
    pub alluxio_storage: Gauge,
    /// Alluxio's `alluxio_cached_capacity`: the capacity of that tier.
    pub alluxio_capacity: Gauge,
}

impl PageStoreMetrics {
    /// Counts `bytes` of page data that left the cache for `cause`.
    pub fn evicted(&self, cause: EvictionCause, bytes: u64) {
        if bytes == 0 {
            return;
        }
        self.evicted_bytes.get_or_create(&cause.label()).inc_by(bytes);
        if matches!(cause, EvictionCause::Capacity | EvictionCause::Priority) {
            self.alluxio_evicted.inc_by(bytes);
        }
    }
}

impl Default for PageStoreMetrics {
    fn default() -> Self {
        Self {
            page_hits: Family::default(),
            page_misses: Counter::default(),
            page_read_seconds: Family::new_with_constructor(latency_histogram),
            pages_evicted: Family::default(),
            corrupt_pages: Counter::default(),
            cached_bytes: Family::default(),
            cached_pages: Family::default(),
            cached_files: Gauge::default(),
            dir_healthy: Family::default(),
            dir_capacity: Family::default(),
            dir_errors: Family::default(),
            dir_used: Family::default(),
            capacity: Family::default(),
            evicted_bytes: Family::default(),
            alluxio_evicted: Counter::default(),
            alluxio_storage: Gauge::default(),
            alluxio_capacity: Gauge::default(),
        }
    }
}
