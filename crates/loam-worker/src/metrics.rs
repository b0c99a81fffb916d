//! The worker's metrics: every name in one place, documented, registered on a registry that the caller
//! passes in (no global registry), so several workers can run in one process (`loam local`, tests).
//! The page store counts its own (hits, misses, evictions, corrupt pages, what is cached) on the handles
//! of a [`PageStoreMetrics`] (`loam_page_store::metrics`) that lives in [`WorkerMetrics::page_store`];
//! this module registers those handles under the names below, like every other worker metric.
//!
//! Every family is listed in [`CATALOG`] (name, type, labels, help): registering a metric means a name
//! constant, an entry in [`CATALOG`] and a `register` call with the entry's help. `loam metrics-reference`
//! renders the catalog into docs/METRICS.md, and a test checks that the registry and the catalog agree.
//!
//! Capacity and evictions (the page store sets them): `capacity_bytes{tier}` and `cache_dir_used_bytes{dir}`
//! beside the existing `cached_bytes{tier}` and `cache_dir_capacity_bytes{dir}`; `evicted_bytes{cause}`
//! counts page data that left the cache, by [`EvictionCause`]. Alluxio DORA's names with the same meaning
//! (`dora/core/common/src/main/java/alluxio/metrics/MultiDimensionalMetricsSystem.java`: `CACHED_EVICTED_DATA`,
//! `CACHED_STORAGE`, `CACHED_CAPACITY`, each built with `.unit(Unit.BYTES)`, which appends `_bytes`, and no
//! labels) are registered under those scraped names.
//!
//! Request latency, UFS calls by mount, hits and misses by mount, peer fetches and the Alluxio-named
//! series are in [`data_path`] (its own table); [`timed_ufs`] is the seam that times every UFS call.

pub mod data_path;
pub mod timed_ufs;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use loam_metrics::MetricDoc;
pub use loam_page_store::metrics::{DISK, DirLabel, EvictionCause, MEMORY, PageStoreMetrics, TierLabel};

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

/// Bytes a tier may hold now, by tier.
pub const CAPACITY: &str = "loam_worker_capacity_bytes";
/// Bytes of page data a cache directory holds now, by directory.
pub const CACHE_DIR_USED: &str = "loam_worker_cache_dir_used_bytes";
/// Bytes of page data that left the cache, by cause.
pub const EVICTED_BYTES: &str = "loam_worker_evicted_bytes";
/// Alluxio's `alluxio_cached_evicted_data` (unit bytes): bytes the cache evicted (capacity and priority).
pub const ALLUXIO_CACHED_EVICTED_DATA: &str = "alluxio_cached_evicted_data_bytes";
/// Alluxio's `alluxio_cached_storage` (unit bytes): bytes cached in the tier that keeps pages.
pub const ALLUXIO_CACHED_STORAGE: &str = "alluxio_cached_storage_bytes";
/// Alluxio's `alluxio_cached_capacity` (unit bytes): that tier's capacity.
pub const ALLUXIO_CACHED_CAPACITY: &str = "alluxio_cached_capacity_bytes";

const TIER: &[&str] = &["tier"];
const DIR: &[&str] = &["dir"];

/// Every worker metric family (the process metrics are `loam_metrics::process::CATALOG`), in the order
/// the reference lists them. The help texts are the ones registered.
pub const CATALOG: &[MetricDoc] = &[
    MetricDoc::counter(PAGE_HITS, TIER, "Pages served from the cache, by tier"),
    MetricDoc::counter(PAGE_MISSES, &[], "Pages not in the cache when asked for"),
    MetricDoc::counter(UFS_READS, &[], "UFS range reads issued by read-through"),
    MetricDoc::counter(UFS_READ_BYTES, &[], "Bytes read from the UFS"),
    MetricDoc::counter(COALESCED_READS, &[], "Page requests that waited on another's UFS read"),
    MetricDoc::counter(PAGES_EVICTED, TIER, "Pages evicted to make room, by tier"),
    MetricDoc::counter(CORRUPT_PAGES, &[], "Pages whose checksum failed on read"),
    MetricDoc::counter(STALE_FILES, &[], "Cached files found changed in the UFS"),
    MetricDoc::counter(SERVED_BYTES, &[], "Bytes sent to clients"),
    MetricDoc::gauge(READ_AHEAD_BYTES, &[], "Bytes range streams hold read ahead of what they sent"),
    MetricDoc::gauge(CACHED_BYTES, TIER, "Bytes cached now, by tier"),
    MetricDoc::gauge(CACHED_PAGES, TIER, "Pages cached now, by tier"),
    MetricDoc::gauge(CACHED_FILES, &[], "Files with a cache record"),
    MetricDoc::gauge(CACHE_DIR_HEALTHY, DIR, "1 while a cache directory is in use, 0 while failed"),
    MetricDoc::gauge(
        CACHE_DIR_CAPACITY,
        DIR,
        "Page bytes a cache directory may hold, clamped to its file system's room",
    ),
    MetricDoc::counter(CACHE_DIR_ERRORS, DIR, "Failed writes and reads in a cache directory"),
    MetricDoc::counter(PEER_INVALIDATIONS_FAILED, &[], "Invalidations after a write that a peer did not confirm"),
    MetricDoc::gauge(CAPACITY, TIER, "Bytes a tier may hold now (disk: the cache directories' clamped capacities)"),
    MetricDoc::gauge(CACHE_DIR_USED, DIR, "Bytes of page data a cache directory holds now"),
    MetricDoc::counter(
        EVICTED_BYTES,
        &["cause"],
        "Bytes of page data that left the cache, by cause (capacity, priority, ttl, free)",
    ),
    MetricDoc::counter(ALLUXIO_CACHED_EVICTED_DATA, &[], "amount of the evicted data"),
    MetricDoc::gauge(ALLUXIO_CACHED_STORAGE, &[], "amount of the cached data"),
    MetricDoc::gauge(ALLUXIO_CACHED_CAPACITY, &[], "configured maximum cache storage"),
];

/// The help text of `name` in [`CATALOG`] or [`data_path::CATALOG`] (empty if it is in neither, which the
/// catalog test reports).
fn help(name: &str) -> &'static str {
    CATALOG.iter().chain(data_path::CATALOG).find(|m| m.name == name).map_or("", |m| m.help)
}

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
        registry.register(PAGE_HITS, help(PAGE_HITS), p.page_hits.clone());
        registry.register(PAGE_MISSES, help(PAGE_MISSES), p.page_misses.clone());
        registry.register(
            data_path::PAGE_READ_DURATION,
            help(data_path::PAGE_READ_DURATION),
            p.page_read_seconds.clone(),
        );
        registry.register(UFS_READS, help(UFS_READS), m.ufs_reads.clone());
        registry.register(UFS_READ_BYTES, help(UFS_READ_BYTES), m.ufs_read_bytes.clone());
        registry.register(COALESCED_READS, help(COALESCED_READS), m.coalesced_reads.clone());
        registry.register(PAGES_EVICTED, help(PAGES_EVICTED), p.pages_evicted.clone());
        registry.register(CORRUPT_PAGES, help(CORRUPT_PAGES), p.corrupt_pages.clone());
        registry.register(STALE_FILES, help(STALE_FILES), m.stale_files.clone());
        registry.register(SERVED_BYTES, help(SERVED_BYTES), m.served_bytes.clone());
        registry.register(READ_AHEAD_BYTES, help(READ_AHEAD_BYTES), m.read_ahead_bytes.clone());
        registry.register(CACHED_BYTES, help(CACHED_BYTES), p.cached_bytes.clone());
        registry.register(CACHED_PAGES, help(CACHED_PAGES), p.cached_pages.clone());
        registry.register(CACHED_FILES, help(CACHED_FILES), p.cached_files.clone());
        registry.register(CACHE_DIR_HEALTHY, help(CACHE_DIR_HEALTHY), p.dir_healthy.clone());
        registry.register(CACHE_DIR_CAPACITY, help(CACHE_DIR_CAPACITY), p.dir_capacity.clone());
        registry.register(CACHE_DIR_ERRORS, help(CACHE_DIR_ERRORS), p.dir_errors.clone());
        registry.register(
            PEER_INVALIDATIONS_FAILED,
            help(PEER_INVALIDATIONS_FAILED),
            m.peer_invalidations_failed.clone(),
        );
        m.data.register(registry);
        registry.register(CAPACITY, help(CAPACITY), p.capacity.clone());
        registry.register(CACHE_DIR_USED, help(CACHE_DIR_USED), p.dir_used.clone());
        registry.register(EVICTED_BYTES, help(EVICTED_BYTES), p.evicted_bytes.clone());
        registry.register(ALLUXIO_CACHED_EVICTED_DATA, help(ALLUXIO_CACHED_EVICTED_DATA), p.alluxio_evicted.clone());
        registry.register(ALLUXIO_CACHED_STORAGE, help(ALLUXIO_CACHED_STORAGE), p.alluxio_storage.clone());
        registry.register(ALLUXIO_CACHED_CAPACITY, help(ALLUXIO_CACHED_CAPACITY), p.alluxio_capacity.clone());
        for cause in EvictionCause::ALL {
            drop(p.evicted_bytes.get_or_create(&cause.label()));
        }
        // Create every tier's series up front so scrapes show zeros rather than nothing.
        for tier in [&MEMORY, &DISK, &data_path::UFS_TIER] {
            drop(p.page_read_seconds.get_or_create(tier));
        }
        for tier in [&MEMORY, &DISK] {
            drop(p.page_hits.get_or_create(tier));
            drop(p.pages_evicted.get_or_create(tier));
            drop(p.cached_bytes.get_or_create(tier));
            drop(p.cached_pages.get_or_create(tier));
            drop(p.capacity.get_or_create(tier));
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_lists_exactly_what_is_registered() {
        let mut registry = Registry::default();
        let m = WorkerMetrics::register(&mut registry);
        // A family shows in a scrape once it has a series; the page store creates these per directory.
        let dir = DirLabel { dir: "/cache".into() };
        let p = &m.page_store;
        for f in [&p.dir_healthy, &p.dir_capacity, &p.dir_used] {
            drop(f.get_or_create(&dir));
        }
        drop(p.dir_errors.get_or_create(&dir));
        // And the data path's per-request families once a request, a UFS call or a mount's read made one.
        let d = &m.data;
        let mount = || "/data".to_string();
        drop(d.http.get_or_create(&data_path::HttpLabels { method: "GET", route: "/v1/health".into(), status: "2xx" }));
        drop(d.s3.get_or_create(&data_path::S3Labels { operation: "GetObject".into(), status: "2xx" }));
        drop(d.ufs.get_or_create(&data_path::UfsLabels { op: "read", mount: mount() }));
        drop(d.ufs_errors.get_or_create(&data_path::UfsErrorLabels { op: "read", mount: mount(), kind: "other" }));
        drop(d.mount_hits.get_or_create(&data_path::MountLabel { mount: mount() }));
        drop(d.mount_misses.get_or_create(&data_path::MountLabel { mount: mount() }));
        drop(d.mount_bytes.get_or_create(&data_path::MountSourceLabels { mount: mount(), source: "cache" }));
        drop(d.data_access.get_or_create(&data_path::READ));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        let catalog: Vec<MetricDoc> = CATALOG.iter().chain(data_path::CATALOG).copied().collect();
        let problems = loam_metrics::check_catalog(&text, &catalog);
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
