//! The worker's metrics: every name in one place, documented, registered on a registry that the caller
//! passes in (no global registry), so several workers can run in one process (`loam local`, tests).
//! The page store counts its own (hits, misses, evictions, corrupt pages, what is cached) on the handles
//! of a [`PageStoreMetrics`] (`loam_page_store::metrics`) that lives in [`WorkerMetrics::page_store`];
//! this module registers those handles under the names below, like every other worker metric.
//!
//! | name | type | meaning |
//! | --- | --- | --- |
//! | `loam_worker_page_hits` | counter, `tier` | pages served from the cache, by tier (`memory`, `disk`) |
//! | `loam_worker_page_misses` | counter | pages not in the cache when asked for |
//! | `loam_worker_ufs_reads` | counter | UFS range reads issued by read-through |
//! | `loam_worker_ufs_read_bytes` | counter | bytes read from the UFS |
//! | `loam_worker_coalesced_reads` | counter | page requests that waited on another request's UFS read |
//! | `loam_worker_pages_evicted` | counter, `tier` | pages evicted to make room |
//! | `loam_worker_corrupt_pages` | counter | pages whose checksum failed on read (dropped, re-read) |
//! | `loam_worker_stale_files` | counter | cached files found changed in the UFS (dropped) |
//! | `loam_worker_served_bytes` | counter | bytes sent to clients |
//! | `loam_worker_read_ahead_bytes` | gauge | bytes range streams hold read ahead of what they sent (within `--read-ahead-size`) |
//! | `loam_worker_cached_bytes` | gauge, `tier` | bytes cached now |
//! | `loam_worker_cached_pages` | gauge, `tier` | pages cached now |
//! | `loam_worker_cached_files` | gauge | files with a record |
//! | `loam_worker_peer_invalidations_failed` | counter | invalidations after a write that a peer did not confirm |
//! | `loam_worker_cache_dir_healthy` | gauge, `dir` | 1 while a cache directory is in use, 0 while it is failed |
//! | `loam_worker_cache_dir_capacity_bytes` | gauge, `dir` | page bytes a cache directory may hold (clamped to its room) |
//! | `loam_worker_cache_dir_errors` | counter, `dir` | writes and reads that failed in a cache directory (full disk included) |
//!
//! Request latency, UFS calls by mount, hits and misses by mount, peer fetches and the Alluxio-named
//! series are in [`data_path`] (its own table); [`timed_ufs`] is the seam that times every UFS call.

pub mod data_path;
pub mod timed_ufs;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

pub use loam_page_store::metrics::{DISK, DirLabel, MEMORY, PageStoreMetrics, TierLabel};

/// Pages served from the cache, by tier.
pub const PAGE_HITS: &str = "loam_worker_page_hits";
/// Pages not in the cache when asked for.
pub const PAGE_MISSES: &str = "loam_worker_page_misses";
/// UFS range reads issued by read-through.
pub const UFS_READS: &str = "loam_worker_ufs_reads";
/// Bytes read from the UFS.
pub const UFS_READ_BYTES: &str = "loam_worker_ufs_read_bytes";
/// Page requests that waited on another request's UFS read.
pub const COALESCED_READS: &str = "loam_worker_coalesced_reads";
/// Pages evicted to make room, by tier.
pub const PAGES_EVICTED: &str = "loam_worker_pages_evicted";
/// Pages whose checksum failed on read.
pub const CORRUPT_PAGES: &str = "loam_worker_corrupt_pages";
/// Cached files found changed in the UFS.
pub const STALE_FILES: &str = "loam_worker_stale_files";
/// Bytes sent to clients.
pub const SERVED_BYTES: &str = "loam_worker_served_bytes";
/// Bytes range streams hold read ahead of what they sent.
pub const READ_AHEAD_BYTES: &str = "loam_worker_read_ahead_bytes";
/// Bytes cached now, by tier.
pub const CACHED_BYTES: &str = "loam_worker_cached_bytes";
/// Pages cached now, by tier.
pub const CACHED_PAGES: &str = "loam_worker_cached_pages";
/// Files with a record.
pub const CACHED_FILES: &str = "loam_worker_cached_files";

/// 1 while a cache directory is in use, 0 while it is failed, by directory.
pub const CACHE_DIR_HEALTHY: &str = "loam_worker_cache_dir_healthy";
/// Bytes of page data a cache directory may hold now, by directory.
pub const CACHE_DIR_CAPACITY: &str = "loam_worker_cache_dir_capacity_bytes";
/// Writes and reads that failed in a cache directory, by directory.
pub const CACHE_DIR_ERRORS: &str = "loam_worker_cache_dir_errors";

/// Invalidations after a write that a peer did not confirm.
pub const PEER_INVALIDATIONS_FAILED: &str = "loam_worker_peer_invalidations_failed";

/// Handles to every worker metric. Cloning shares the underlying values.
#[derive(Clone, Default)]
pub struct WorkerMetrics {
    /// What the page store counts: [`PAGE_HITS`], [`PAGE_MISSES`], [`PAGES_EVICTED`], [`CORRUPT_PAGES`],
    /// [`CACHED_BYTES`], [`CACHED_PAGES`], [`CACHED_FILES`], [`CACHE_DIR_HEALTHY`], [`CACHE_DIR_CAPACITY`],
    /// [`CACHE_DIR_ERRORS`].
    pub page_store: PageStoreMetrics,
    /// See [`UFS_READS`].
    pub ufs_reads: Counter,
    /// See [`UFS_READ_BYTES`].
    pub ufs_read_bytes: Counter,
    /// See [`COALESCED_READS`].
    pub coalesced_reads: Counter,
    /// See [`STALE_FILES`].
    pub stale_files: Counter,
    /// See [`SERVED_BYTES`].
    pub served_bytes: Counter,
    /// See [`PEER_INVALIDATIONS_FAILED`].
    pub peer_invalidations_failed: Counter,
    /// See [`READ_AHEAD_BYTES`].
    pub read_ahead_bytes: Gauge,
    /// Latency, UFS calls, hits by mount, peer fetches, Alluxio's names: see [`data_path`].
    pub data: data_path::DataPathMetrics,
}

impl WorkerMetrics {
    /// New metrics, registered on `registry` (give each worker its own registry or sub-registry).
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        let p = &m.page_store;
        // prometheus-client appends `_total` to counters itself, so names are given without it.
        registry.register(PAGE_HITS, "Pages served from the cache, by tier", p.page_hits.clone());
        registry.register(PAGE_MISSES, "Pages not in the cache when asked for", p.page_misses.clone());
        registry.register(
            data_path::PAGE_READ_DURATION,
            "Page read latency by tier: memory, disk, or ufs (a read-through fill)",
            p.page_read_seconds.clone(),
        );
        registry.register(UFS_READS, "UFS range reads issued by read-through", m.ufs_reads.clone());
        registry.register(UFS_READ_BYTES, "Bytes read from the UFS", m.ufs_read_bytes.clone());
        registry.register(
            COALESCED_READS,
            "Page requests that waited on another's UFS read",
            m.coalesced_reads.clone(),
        );
        registry.register(PAGES_EVICTED, "Pages evicted to make room, by tier", p.pages_evicted.clone());
        registry.register(CORRUPT_PAGES, "Pages whose checksum failed on read", p.corrupt_pages.clone());
        registry.register(STALE_FILES, "Cached files found changed in the UFS", m.stale_files.clone());
        registry.register(SERVED_BYTES, "Bytes sent to clients", m.served_bytes.clone());
        registry.register(
            READ_AHEAD_BYTES,
            "Bytes range streams hold read ahead of what they sent",
            m.read_ahead_bytes.clone(),
        );
        registry.register(CACHED_BYTES, "Bytes cached now, by tier", p.cached_bytes.clone());
        registry.register(CACHED_PAGES, "Pages cached now, by tier", p.cached_pages.clone());
        registry.register(CACHED_FILES, "Files with a cache record", p.cached_files.clone());
        registry.register(
            CACHE_DIR_HEALTHY,
            "1 while a cache directory is in use, 0 while failed",
            p.dir_healthy.clone(),
        );
        registry.register(
            CACHE_DIR_CAPACITY,
            "Page bytes a cache directory may hold, clamped to its file system's room",
            p.dir_capacity.clone(),
        );
        registry.register(CACHE_DIR_ERRORS, "Failed writes and reads in a cache directory", p.dir_errors.clone());
        registry.register(
            PEER_INVALIDATIONS_FAILED,
            "Invalidations after a write that a peer did not confirm",
            m.peer_invalidations_failed.clone(),
        );
        m.data.register(registry);
        // Create every tier's series up front so scrapes show zeros rather than nothing.
        for tier in [&MEMORY, &DISK, &data_path::UFS_TIER] {
            drop(p.page_read_seconds.get_or_create(tier));
        }
        for tier in [&MEMORY, &DISK] {
            drop(p.page_hits.get_or_create(tier));
            drop(p.pages_evicted.get_or_create(tier));
            drop(p.cached_bytes.get_or_create(tier));
            drop(p.cached_pages.get_or_create(tier));
        }
        m
    }
}
