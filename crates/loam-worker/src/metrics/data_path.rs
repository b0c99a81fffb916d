//! The worker's data-path metrics: request latency by API and operation, UFS calls by operation and
//! mount, cache hits and misses by mount, peer fetches, and the Alluxio-named series that let an
//! Alluxio dashboard read a Loam worker. Names are `pub const`s with their help text beside them
//! ([`CATALOG`]), so the docs generator can list them.
//!
//! | name | type | labels | meaning |
//! | --- | --- | --- | --- |
//! | `loam_worker_http_request_duration_seconds` | histogram | `method`, `route`, `status` | worker HTTP API latency |
//! | `loam_worker_s3_request_duration_seconds` | histogram | `operation`, `status` | S3 API latency |
//! | `loam_worker_page_read_duration_seconds` | histogram | `tier` | page reads: `memory`, `disk` hits, `ufs` fills |
//! | `loam_worker_ufs_operation_duration_seconds` | histogram | `op`, `mount` | UFS call latency |
//! | `loam_worker_ufs_operation_errors` | counter | `op`, `mount`, `kind` | failed UFS calls |
//! | `loam_worker_mount_cache_hits` | counter | `mount` | pages served to clients from the cache |
//! | `loam_worker_mount_cache_misses` | counter | `mount` | pages served to clients read through |
//! | `loam_worker_mount_read_bytes` | counter | `mount`, `source` | bytes of those pages (`cache`, `ufs`) |
//! | `loam_worker_served_without_revalidation` | counter | — | files served while the UFS was unreachable |
//! | `loam_worker_peer_fetched_pages` / `_bytes` | counter | — | pages and bytes copied from a peer |
//! | `alluxio_data_access_bytes` | histogram | `method` | Alluxio: size of each piece sent to clients |
//! | `alluxio_ufs_data_access_bytes` | counter | `method` | Alluxio: bytes read from / written to the UFS |
//! | `alluxio_cached_data_read_bytes` | counter | — | Alluxio: bytes served from the cache |
//! | `alluxio_external_data_read_bytes` | counter | — | Alluxio: bytes served that the cache missed |
//!
//! - **Bounded labels.** `route` is the matched route template (`/v1/file/{id}/page/{n}`), never the raw
//!   path, and `unmatched` for a request that matched none; `method` one of the HTTP methods the API
//!   serves, `other` for any other; `status` the class (`2xx` … `5xx`); `operation` an S3 operation as
//!   AWS names it (`GetObject`) or `unknown` before one was parsed (a bad signature, a malformed
//!   request); `mount` a mount's cluster path (`/data`), never a file path — a mount is a bounded set
//!   the admin creates; `op` a UFS call (`stat`, `list`, `read`, `write`, `delete`, `create_dir`,
//!   `copy`, `rename`); `kind` a UFS error's variant (`not_found`, `unavailable`, …).
//! - **A scrape never blocks the data path**: every value is an atomic; a family's label map is locked
//!   only to find a series, never across an await.
//! - **Latency is time to the response head** for the HTTP and S3 APIs (a streamed body is counted in
//!   bytes, not in time); a UFS `list` is timed from the call until its stream ends or is dropped.
//!
//! The Alluxio names and label sets come from Alluxio's
//! `dora/core/common/src/main/java/alluxio/metrics/MultiDimensionalMetricsSystem.java` (`DATA_ACCESS`,
//! `UFS_DATA_ACCESS`, `CACHED_DATA_READ`, `EXTERNAL_DATA_READ`). Alluxio declares them with
//! `Unit.BYTES`, which its Prometheus client appends to the name (`alluxio_cached_data_read_bytes_total`);
//! the constants here carry that `_bytes`, so the exposed names are the same.

use loam_metrics::MetricDoc;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use loam_page_store::metrics::{Histograms, TierLabel, latency_histogram as latency};

/// Worker HTTP API latency by method, route template and status class.
pub const HTTP_REQUEST_DURATION: &str = "loam_worker_http_request_duration_seconds";
/// S3 API latency by S3 operation and status class.
pub const S3_REQUEST_DURATION: &str = "loam_worker_s3_request_duration_seconds";
/// Page read latency by where the page came from: `memory`, `disk`, or `ufs` (a read-through fill).
pub const PAGE_READ_DURATION: &str = "loam_worker_page_read_duration_seconds";
/// UFS call latency by operation and mount.
pub const UFS_DURATION: &str = "loam_worker_ufs_operation_duration_seconds";
/// Failed UFS calls by operation, mount and error kind.
pub const UFS_ERRORS: &str = "loam_worker_ufs_operation_errors";
/// Pages served to clients from the cache, by mount.
pub const MOUNT_HITS: &str = "loam_worker_mount_cache_hits";
/// Pages served to clients that the cache did not hold (read through from the UFS), by mount.
pub const MOUNT_MISSES: &str = "loam_worker_mount_cache_misses";
/// Bytes of the pages served to clients, by mount and `source` (`cache`, `ufs`).
pub const MOUNT_READ_BYTES: &str = "loam_worker_mount_read_bytes";
/// Files opened from their cached record because the UFS was unreachable to re-validate them.
pub const UFS_UNREACHABLE_SERVED: &str = "loam_worker_served_without_revalidation";
/// Pages copied from a peer worker instead of the UFS.
pub const PEER_PAGES: &str = "loam_worker_peer_fetched_pages";
/// Bytes copied from a peer worker instead of the UFS.
pub const PEER_BYTES: &str = "loam_worker_peer_fetched_bytes";
/// Reads answered `307` to the file's owner (`redirect-to-owner`).
pub const OWNER_REDIRECTS: &str = "loam_worker_owner_redirects";
/// Bytes of S3 reads streamed from the owning worker (or a replica) to a client of this one.
pub const FORWARDED_BYTES: &str = "loam_worker_forwarded_bytes";
/// Alluxio's `DATA_ACCESS`: size of each piece of data sent to clients, label `method` (`read`).
pub const ALLUXIO_DATA_ACCESS: &str = "alluxio_data_access_bytes";
/// Alluxio's `UFS_DATA_ACCESS`: bytes read from or written to the UFS, label `method` (`read`, `write`).
pub const ALLUXIO_UFS_DATA_ACCESS: &str = "alluxio_ufs_data_access_bytes";
/// Alluxio's `CACHED_DATA_READ`: bytes of pages served from the cache.
pub const ALLUXIO_CACHED_DATA_READ: &str = "alluxio_cached_data_read_bytes";
/// Alluxio's `EXTERNAL_DATA_READ`: bytes of pages served that were missing from the cache (Alluxio
/// counts it in its client; a Loam worker is where the miss is read).
pub const ALLUXIO_EXTERNAL_DATA_READ: &str = "alluxio_external_data_read_bytes";

/// Every name of this module with its help text, for the metrics catalog.
pub const CATALOG: &[MetricDoc] = &[
    MetricDoc::histogram(
        HTTP_REQUEST_DURATION,
        &["method", "route", "status"],
        "Worker HTTP API latency by method, route template and status class",
    ),
    MetricDoc::histogram(
        S3_REQUEST_DURATION,
        &["operation", "status"],
        "S3 API latency by S3 operation and status class",
    ),
    MetricDoc::histogram(
        PAGE_READ_DURATION,
        &["tier"],
        "Page read latency by tier: memory, disk, or ufs (a read-through fill)",
    ),
    MetricDoc::histogram(UFS_DURATION, &["op", "mount"], "UFS call latency by operation and mount"),
    MetricDoc::counter(UFS_ERRORS, &["op", "mount", "kind"], "Failed UFS calls by operation, mount and error kind"),
    MetricDoc::counter(MOUNT_HITS, &["mount"], "Pages served to clients from the cache, by mount"),
    MetricDoc::counter(MOUNT_MISSES, &["mount"], "Pages served to clients read through from the UFS, by mount"),
    MetricDoc::counter(
        MOUNT_READ_BYTES,
        &["mount", "source"],
        "Bytes of pages served to clients, by mount and source (cache, ufs)",
    ),
    MetricDoc::counter(
        UFS_UNREACHABLE_SERVED,
        &[],
        "Files opened from their cached record because the UFS was unreachable",
    ),
    MetricDoc::counter(PEER_PAGES, &[], "Pages copied from a peer worker instead of the UFS"),
    MetricDoc::counter(PEER_BYTES, &[], "Bytes copied from a peer worker instead of the UFS"),
    MetricDoc::counter(OWNER_REDIRECTS, &[], "Reads answered with a 307 redirect to the file's owner"),
    MetricDoc::counter(
        FORWARDED_BYTES,
        &[],
        "Bytes of S3 reads streamed from the owning worker to a client of this one",
    ),
    MetricDoc::histogram(ALLUXIO_DATA_ACCESS, &["method"], "aggregated throughput of all the data access"),
    MetricDoc::counter(ALLUXIO_UFS_DATA_ACCESS, &["method"], "amount of the ufs access"),
    MetricDoc::counter(ALLUXIO_CACHED_DATA_READ, &[], "amount of the read cached data"),
    MetricDoc::counter(ALLUXIO_EXTERNAL_DATA_READ, &[], "amount of the read data when cache missed on client"),
];

/// The route label of a request that matched no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";
/// The operation label of an S3 request refused before its operation was known.
pub const UNKNOWN_OPERATION: &str = "unknown";

/// Labels of [`HTTP_REQUEST_DURATION`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// The HTTP method, or `other`.
    pub method: &'static str,
    /// The matched route template, or [`UNMATCHED_ROUTE`].
    pub route: String,
    /// `2xx` … `5xx`.
    pub status: &'static str,
}

/// Labels of [`S3_REQUEST_DURATION`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct S3Labels {
    /// The S3 operation (`GetObject`), or [`UNKNOWN_OPERATION`].
    pub operation: String,
    /// `2xx` … `5xx`.
    pub status: &'static str,
}

/// Labels of [`UFS_DURATION`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UfsLabels {
    /// The UFS call.
    pub op: &'static str,
    /// The mount's cluster path.
    pub mount: String,
}

/// Labels of [`UFS_ERRORS`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UfsErrorLabels {
    /// The UFS call.
    pub op: &'static str,
    /// The mount's cluster path.
    pub mount: String,
    /// The error's variant.
    pub kind: &'static str,
}

/// A mount's cluster path.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MountLabel {
    /// The mount's cluster path.
    pub mount: String,
}

/// Labels of [`MOUNT_READ_BYTES`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MountSourceLabels {
    /// The mount's cluster path.
    pub mount: String,
    /// `cache` or `ufs`.
    pub source: &'static str,
}

/// Alluxio's `method` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabel {
    /// `read` or `write`.
    pub method: &'static str,
}

/// The `tier` of a page read through from the UFS, in [`PAGE_READ_DURATION`].
pub const UFS_TIER: TierLabel = TierLabel { tier: "ufs" };

/// Bytes: 1 KiB to 64 MiB, by factors of 4.
fn sizes() -> Histogram {
    Histogram::new(exponential_buckets(1024.0, 4.0, 9))
}

/// Handles to the data-path metrics. Cloning shares the values.
#[derive(Clone)]
pub struct DataPathMetrics {
    /// See [`HTTP_REQUEST_DURATION`].
    pub http: Histograms<HttpLabels>,
    /// See [`S3_REQUEST_DURATION`].
    pub s3: Histograms<S3Labels>,
    /// See [`UFS_DURATION`].
    pub ufs: Histograms<UfsLabels>,
    /// See [`UFS_ERRORS`].
    pub ufs_errors: Family<UfsErrorLabels, Counter>,
    /// See [`MOUNT_HITS`].
    pub mount_hits: Family<MountLabel, Counter>,
    /// See [`MOUNT_MISSES`].
    pub mount_misses: Family<MountLabel, Counter>,
    /// See [`MOUNT_READ_BYTES`].
    pub mount_bytes: Family<MountSourceLabels, Counter>,
    /// See [`UFS_UNREACHABLE_SERVED`].
    pub unrevalidated: Counter,
    /// See [`PEER_PAGES`].
    pub peer_pages: Counter,
    /// See [`PEER_BYTES`].
    pub peer_bytes: Counter,
    /// See [`OWNER_REDIRECTS`].
    pub redirects: Counter,
    /// See [`FORWARDED_BYTES`].
    pub forwarded_bytes: Counter,
    /// See [`ALLUXIO_DATA_ACCESS`].
    pub data_access: Histograms<MethodLabel>,
    /// See [`ALLUXIO_UFS_DATA_ACCESS`].
    pub ufs_data_access: Family<MethodLabel, Counter>,
    /// See [`ALLUXIO_CACHED_DATA_READ`].
    pub cached_data_read: Counter,
    /// See [`ALLUXIO_EXTERNAL_DATA_READ`].
    pub external_data_read: Counter,
}

impl Default for DataPathMetrics {
    fn default() -> Self {
        Self {
            http: Family::new_with_constructor(latency),
            s3: Family::new_with_constructor(latency),
            ufs: Family::new_with_constructor(latency),
            ufs_errors: Family::default(),
            mount_hits: Family::default(),
            mount_misses: Family::default(),
            mount_bytes: Family::default(),
            unrevalidated: Counter::default(),
            peer_pages: Counter::default(),
            peer_bytes: Counter::default(),
            redirects: Counter::default(),
            forwarded_bytes: Counter::default(),
            data_access: Family::new_with_constructor(sizes),
            ufs_data_access: Family::default(),
            cached_data_read: Counter::default(),
            external_data_read: Counter::default(),
        }
    }
}

/// Alluxio's `method="read"`.
pub const READ: MethodLabel = MethodLabel { method: "read" };
/// Alluxio's `method="write"`.
pub const WRITE: MethodLabel = MethodLabel { method: "write" };

impl DataPathMetrics {
    /// Registers every handle on `registry` under the names of [`CATALOG`].
    pub fn register(&self, registry: &mut Registry) {
        let help = |name: &str| CATALOG.iter().find(|m| m.name == name).map_or("", |m| m.help);
        // prometheus-client appends `_total` to counters itself, so names are given without it.
        registry.register(HTTP_REQUEST_DURATION, help(HTTP_REQUEST_DURATION), self.http.clone());
        registry.register(S3_REQUEST_DURATION, help(S3_REQUEST_DURATION), self.s3.clone());
        registry.register(UFS_DURATION, help(UFS_DURATION), self.ufs.clone());
        registry.register(UFS_ERRORS, help(UFS_ERRORS), self.ufs_errors.clone());
        registry.register(MOUNT_HITS, help(MOUNT_HITS), self.mount_hits.clone());
        registry.register(MOUNT_MISSES, help(MOUNT_MISSES), self.mount_misses.clone());
        registry.register(MOUNT_READ_BYTES, help(MOUNT_READ_BYTES), self.mount_bytes.clone());
        registry.register(UFS_UNREACHABLE_SERVED, help(UFS_UNREACHABLE_SERVED), self.unrevalidated.clone());
        registry.register(PEER_PAGES, help(PEER_PAGES), self.peer_pages.clone());
        registry.register(PEER_BYTES, help(PEER_BYTES), self.peer_bytes.clone());
        registry.register(OWNER_REDIRECTS, help(OWNER_REDIRECTS), self.redirects.clone());
        registry.register(FORWARDED_BYTES, help(FORWARDED_BYTES), self.forwarded_bytes.clone());
        registry.register(ALLUXIO_DATA_ACCESS, help(ALLUXIO_DATA_ACCESS), self.data_access.clone());
        registry.register(ALLUXIO_UFS_DATA_ACCESS, help(ALLUXIO_UFS_DATA_ACCESS), self.ufs_data_access.clone());
        registry.register(ALLUXIO_CACHED_DATA_READ, help(ALLUXIO_CACHED_DATA_READ), self.cached_data_read.clone());
        registry.register(
            ALLUXIO_EXTERNAL_DATA_READ,
            help(ALLUXIO_EXTERNAL_DATA_READ),
            self.external_data_read.clone(),
        );
        // Series a dashboard expects before the first read.
        for m in [&READ, &WRITE] {
            drop(self.ufs_data_access.get_or_create(m));
        }
    }

    /// Counts `n` bytes sent to a client (Alluxio's `DATA_ACCESS`, `method="read"`).
    pub fn sent(&self, n: usize) {
        self.data_access.get_or_create(&READ).observe(n as f64);
    }

    /// Counts one page served to a client from `mount`: from the cache (`hit`) or read through.
    pub fn page_served(&self, mount: &str, hit: bool, len: usize) {
        let m = MountLabel { mount: mount.to_string() };
        let (pages, source, alluxio) = if hit {
            (&self.mount_hits, "cache", &self.cached_data_read)
        } else {
            (&self.mount_misses, "ufs", &self.external_data_read)
        };
        pages.get_or_create(&m).inc();
        self.mount_bytes.get_or_create(&MountSourceLabels { mount: m.mount, source }).inc_by(len as u64);
        alluxio.inc_by(len as u64);
    }
}

/// `2xx` … `5xx` of a status code.
pub fn status_class(code: u16) -> &'static str {
    match code / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

/// The method label: the methods the worker's APIs serve, `other` for anything else (bounded).
pub fn method_label(method: &axum::http::Method) -> &'static str {
    const KNOWN: [&str; 6] = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"];
    KNOWN.into_iter().find(|k| *k == method.as_str()).unwrap_or("other")
}

/// Where the S3 API's access check writes a request's operation (s3s names it only there), for the
/// latency middleware that put the slot in the request's extensions to read once the response is made.
#[derive(Clone, Debug, Default)]
pub struct S3OperationSlot(std::sync::Arc<std::sync::OnceLock<String>>);

impl S3OperationSlot {
    /// Records the request's operation (the first one set wins).
    pub fn set(&self, operation: &str) {
        let _ = self.0.set(operation.to_string());
    }

    /// The operation, or [`UNKNOWN_OPERATION`] when none was set.
    pub fn operation(&self) -> String {
        self.0.get().cloned().unwrap_or_else(|| UNKNOWN_OPERATION.to_string())
    }
}
