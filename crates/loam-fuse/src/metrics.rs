//! The FUSE mount's metrics (`loam fuse --metrics-port`, `GET /metrics`, OpenMetrics text): every name in
//! one place, on a registry of this mount's own (no global registry, so several mounts, as the tests make,
//! can share a process).
//!
//! | name | type | labels | meaning |
//! | --- | --- | --- | --- |
//! | `loam_fuse_operation_duration_seconds` | histogram | `op` | time from the kernel's request to the reply, by operation |
//! | `loam_fuse_operation_errors` | counter | `op`, `errno` | requests answered with an error, by operation and errno class |
//! | `loam_fuse_read_bytes` | counter | — | bytes returned to the kernel by `read` |
//! | `loam_fuse_readahead_reads` | counter | `result` | reads of a file with client read-ahead on: `hit` (served from read-ahead windows) or `miss` (read from the cluster itself) |
//! | `loam_fuse_reads_in_flight` | gauge | — | reads received and not yet answered |
//! | `loam_fuse_short_circuit_reads` | counter | — | reads served from a local worker's page files (`short_circuit.rs`) |
//! | `loam_fuse_short_circuit_read_bytes` | counter | — | bytes those reads returned |
//! | `loam_fuse_short_circuit_session_reads` | counter | — | of those reads, the ones answered on the FUSE session thread (page-cache hits, no hand-off) |
//! | `loam_fuse_short_circuit_fallbacks` | counter | `reason` | reads that tried a short-circuit read and went over HTTP, by why |
//! | `loam_fuse_reads_in_flight_peak` | gauge | — | the most reads in flight at once since the mount was made: the queue depth the kernel let through |
//!
//! - **Bounded labels.** `op` is one of [`Op`]'s names (the mutating requests, which a read-only mount
//!   refuses, are one op: `modify`); `errno` one of [`errno_class`]'s (a known errno's name, else
//!   `other`); `result` is `hit` or `miss`; `reason` one of `short_circuit::Fallback`'s names.
//! - **A scrape never blocks the data path.** Counters and histograms are atomics; a scrape only encodes
//!   them, and nothing on a request's path waits for one.
//! - **Process metrics** (`loam_metrics::process`: memory, fds, CPU) are served here too.
//! - **The listener.** FUSE has no credentials of its own to check a scraper's against, so metrics
//!   (reads, as the worker's anonymous-readable `/metrics` is) are served without authentication on
//!   loopback by default; `metrics-host` opens them wider where the network is trusted (a pod's IP).

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use fuser::Errno;
use loam_listener::Listener;
use loam_metrics::MetricDoc;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Operation latency by op.
pub const OPERATION_DURATION: &str = "loam_fuse_operation_duration_seconds";
/// Requests answered with an error, by op and errno class.
pub const OPERATION_ERRORS: &str = "loam_fuse_operation_errors";
/// Bytes returned by reads.
pub const READ_BYTES: &str = "loam_fuse_read_bytes";
/// Reads with client read-ahead on, by `hit` or `miss`.
pub const READAHEAD_READS: &str = "loam_fuse_readahead_reads";
/// Reads served from a local worker's page files.
pub const SHORT_CIRCUIT_READS: &str = "loam_fuse_short_circuit_reads";
/// Bytes of those reads.
pub const SHORT_CIRCUIT_READ_BYTES: &str = "loam_fuse_short_circuit_read_bytes";
/// Of those reads, the ones answered on the FUSE session thread.
pub const SHORT_CIRCUIT_SESSION_READS: &str = "loam_fuse_short_circuit_session_reads";
/// Reads that went over HTTP instead, by reason.
pub const SHORT_CIRCUIT_FALLBACKS: &str = "loam_fuse_short_circuit_fallbacks";

/// Reads received and not answered yet.
pub const READS_IN_FLIGHT: &str = "loam_fuse_reads_in_flight";
/// The most reads in flight at once since the mount was made.
pub const READS_IN_FLIGHT_PEAK: &str = "loam_fuse_reads_in_flight_peak";

/// Every FUSE metric family (the process metrics are `loam_metrics::process::CATALOG`), for the metrics
/// reference; each is registered with its entry's help text.
pub const CATALOG: &[MetricDoc] = &[
    MetricDoc::histogram(OPERATION_DURATION, &["op"], "Time from a FUSE request to its reply, by operation"),
    MetricDoc::counter(
        OPERATION_ERRORS,
        &["op", "errno"],
        "FUSE requests answered with an error, by operation and errno",
    ),
    MetricDoc::counter(READ_BYTES, &[], "Bytes returned to the kernel by FUSE reads"),
    MetricDoc::counter(
        READAHEAD_READS,
        &["result"],
        "FUSE reads with client read-ahead on: served from read-ahead windows (hit) or not (miss)",
    ),
    MetricDoc::counter(SHORT_CIRCUIT_READS, &[], "FUSE reads served from a local worker's page files (short-circuit)"),
    MetricDoc::counter(SHORT_CIRCUIT_READ_BYTES, &[], "Bytes returned by short-circuit reads"),
    MetricDoc::counter(
        SHORT_CIRCUIT_SESSION_READS,
        &[],
        "Short-circuit reads answered on the FUSE session thread (page-cache hits, no hand-off to other threads)",
    ),
    MetricDoc::counter(
        SHORT_CIRCUIT_FALLBACKS,
        &["reason"],
        "FUSE reads that tried a short-circuit read and went over HTTP instead, by reason",
    ),
    MetricDoc::gauge(READS_IN_FLIGHT, &[], "FUSE reads received and not yet answered"),
    MetricDoc::gauge(
        READS_IN_FLIGHT_PEAK,
        &[],
        "The most FUSE reads in flight at once since the mount was made (the queue depth the kernel let through)",
    ),
];

/// The help text of `name` in [`CATALOG`].
fn help(name: &str) -> &'static str {
    CATALOG.iter().find(|m| m.name == name).map_or("", |m| m.help)
}

/// A FUSE operation, the `op` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `lookup`.
    Lookup,
    /// `getattr`.
    Getattr,
    /// `open`.
    Open,
    /// `read`.
    Read,
    /// `release`.
    Release,
    /// `opendir`.
    Opendir,
    /// `readdir`.
    Readdir,
    /// `releasedir`.
    Releasedir,
    /// `statfs`.
    Statfs,
    /// Any request that would change the file system (refused with `EROFS`).
    Modify,
}

impl Op {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Lookup => "lookup",
            Op::Getattr => "getattr",
            Op::Open => "open",
            Op::Read => "read",
            Op::Release => "release",
            Op::Opendir => "opendir",
            Op::Readdir => "readdir",
            Op::Releasedir => "releasedir",
            Op::Statfs => "statfs",
            Op::Modify => "modify",
        }
    }
}

/// The errno class of an error reply: the names of the errnos this mount answers, else `other`.
pub fn errno_class(e: Errno) -> &'static str {
    const KNOWN: [(Errno, &str); 8] = [
        (Errno::ENOENT, "ENOENT"),
        (Errno::EIO, "EIO"),
        (Errno::EROFS, "EROFS"),
        (Errno::ESTALE, "ESTALE"),
        (Errno::EBADF, "EBADF"),
        (Errno::EACCES, "EACCES"),
        (Errno::ENOTDIR, "ENOTDIR"),
        (Errno::EISDIR, "EISDIR"),
    ];
    KNOWN.iter().find(|(k, _)| *k == e).map_or("other", |(_, n)| n)
}

/// `op` of [`OPERATION_DURATION`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabel {
    /// [`Op::as_str`].
    pub op: &'static str,
}

/// Labels of [`OPERATION_ERRORS`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// [`Op::as_str`].
    pub op: &'static str,
    /// [`errno_class`].
    pub errno: &'static str,
}

/// `reason` of [`SHORT_CIRCUIT_FALLBACKS`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// `short_circuit::Fallback::as_str`.
    pub reason: &'static str,
}

/// `result` of [`READAHEAD_READS`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// `hit` or `miss`.
    pub result: &'static str,
}

fn latency_histogram() -> Histogram {
    // 50 µs … ~26 s: a cached getattr answers in microseconds, a cold read of a window in seconds.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 20))
}

/// One mount's metrics and their registry.
pub struct FuseMetrics {
    registry: Registry,
    duration: Family<OpLabel, Histogram, fn() -> Histogram>,
    errors: Family<ErrorLabels, Counter>,
    read_bytes: Counter,
    readahead: Family<ResultLabel, Counter>,
    in_flight: Gauge,
    peak: Gauge,
    sc_reads: Counter,
    sc_bytes: Counter,
    sc_session: Counter,
    sc_fallbacks: Family<ReasonLabel, Counter>,
}

/// A read in flight, counted in [`READS_IN_FLIGHT`] until dropped (answered, or its task gone).
pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Default for FuseMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl FuseMetrics {
    /// Metrics at zero, registered on a registry of their own.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let duration = Family::<OpLabel, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        let errors = Family::<ErrorLabels, Counter>::default();
        let read_bytes = Counter::default();
        let readahead = Family::<ResultLabel, Counter>::default();
        let (in_flight, peak) = (Gauge::default(), Gauge::default());
        registry.register(OPERATION_DURATION, help(OPERATION_DURATION), duration.clone());
        registry.register(OPERATION_ERRORS, help(OPERATION_ERRORS), errors.clone());
        registry.register(READ_BYTES, help(READ_BYTES), read_bytes.clone());
        registry.register(READAHEAD_READS, help(READAHEAD_READS), readahead.clone());
        registry.register(READS_IN_FLIGHT, help(READS_IN_FLIGHT), in_flight.clone());
        registry.register(READS_IN_FLIGHT_PEAK, help(READS_IN_FLIGHT_PEAK), peak.clone());
        let (sc_reads, sc_bytes, sc_fallbacks) = (Counter::default(), Counter::default(), Family::default());
        registry.register(SHORT_CIRCUIT_READS, help(SHORT_CIRCUIT_READS), sc_reads.clone());
        registry.register(SHORT_CIRCUIT_READ_BYTES, help(SHORT_CIRCUIT_READ_BYTES), sc_bytes.clone());
        let sc_session = Counter::default();
        registry.register(SHORT_CIRCUIT_SESSION_READS, help(SHORT_CIRCUIT_SESSION_READS), sc_session.clone());
        registry.register(SHORT_CIRCUIT_FALLBACKS, help(SHORT_CIRCUIT_FALLBACKS), sc_fallbacks.clone());
        loam_metrics::process::register(&mut registry);
        Self {
            registry,
            duration,
            errors,
            read_bytes,
            readahead,
            in_flight,
            peak,
            sc_reads,
            sc_bytes,
            sc_session,
            sc_fallbacks,
        }
    }

    /// Records a request of `op` received at `start`, answered now with `result`.
    pub fn observe<T>(&self, op: Op, start: Instant, result: &Result<T, Errno>) {
        self.duration.get_or_create(&OpLabel { op: op.as_str() }).observe(start.elapsed().as_secs_f64());
        if let Err(e) = result {
            self.errors.get_or_create(&ErrorLabels { op: op.as_str(), errno: errno_class(*e) }).inc();
        }
    }

    /// Records `n` bytes returned by a read.
    pub fn read_bytes(&self, n: usize) {
        self.read_bytes.inc_by(n as u64);
    }

    /// Counts a read received until the returned guard is dropped, and raises the peak.
    pub fn read_started(&self) -> InFlight {
        let now = self.in_flight.inc() + 1;
        self.peak.inner().fetch_max(now, Ordering::Relaxed);
        InFlight(self.in_flight.clone())
    }

    /// The most reads in flight at once since the mount was made.
    pub fn peak_reads_in_flight(&self) -> i64 {
        self.peak.get()
    }

    /// Records a read of a file with read-ahead on: served from its windows (`hit`) or not.
    pub fn readahead(&self, hit: bool) {
        self.readahead.get_or_create(&ResultLabel { result: if hit { "hit" } else { "miss" } }).inc();
    }

    /// Records a read of `n` bytes served from a local worker's page files, on the FUSE session thread
    /// or not.
    pub fn short_circuit_read(&self, n: usize, on_session_thread: bool) {
        self.sc_reads.inc();
        self.sc_bytes.inc_by(n as u64);
        if on_session_thread {
            self.sc_session.inc();
        }
    }

    /// Records a read that went over HTTP instead of short-circuit, for `why`.
    pub fn short_circuit_fallback(&self, why: crate::short_circuit::Fallback) {
        self.sc_fallbacks.get_or_create(&ReasonLabel { reason: why.as_str() }).inc();
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// The OpenMetrics content type, as the worker and the Coordinator answer it.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

async fn scrape(State(m): State<Arc<FuseMetrics>>) -> Response {
    match m.encode() {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("metrics encoding failed: {e}")).into_response(),
    }
}

/// Serves `GET /metrics` of `metrics` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: Listener,
    metrics: Arc<FuseMetrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new().route("/metrics", get(scrape)).with_state(metrics);
    listener.serve(app, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_appear_under_their_names_and_bounded_labels() {
        let m = FuseMetrics::new();
        m.observe(Op::Read, Instant::now(), &Ok::<(), Errno>(()));
        m.observe::<()>(Op::Lookup, Instant::now(), &Err(Errno::ENOENT));
        m.observe::<()>(Op::Lookup, Instant::now(), &Err(Errno::from_i32(libc_e2big())));
        m.read_bytes(10);
        m.readahead(true);
        let text = m.encode().unwrap();
        for line in [
            "loam_fuse_operation_duration_seconds_count{op=\"read\"} 1",
            "loam_fuse_operation_duration_seconds_count{op=\"lookup\"} 2",
            "loam_fuse_operation_errors_total{op=\"lookup\",errno=\"ENOENT\"} 1",
            "loam_fuse_operation_errors_total{op=\"lookup\",errno=\"other\"} 1",
            "loam_fuse_read_bytes_total 10",
            "loam_fuse_readahead_reads_total{result=\"hit\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in:\n{text}");
        }
    }

    #[test]
    fn the_catalog_lists_exactly_what_is_registered() {
        let m = FuseMetrics::new();
        m.observe::<()>(Op::Read, Instant::now(), &Err(Errno::EIO));
        m.readahead(true);
        m.short_circuit_read(3, true);
        m.short_circuit_fallback(crate::short_circuit::Fallback::Missing);
        let text = m.encode().unwrap();
        let catalog: Vec<MetricDoc> = CATALOG.iter().chain(loam_metrics::process::CATALOG).copied().collect();
        let problems = loam_metrics::check_catalog(&text, &catalog);
        assert!(problems.is_empty(), "{problems:#?}");
    }

    /// E2BIG, an errno the mount never answers.
    fn libc_e2big() -> i32 {
        7
    }
}
