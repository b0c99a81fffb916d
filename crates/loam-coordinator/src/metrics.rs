//! The Coordinator's metrics (`GET /metrics`, OpenMetrics text): every name in one place, registered on a
//! registry of this Coordinator's own (no global registry, so several Coordinators can share a process).
//!
//! Every family is listed in [`CATALOG`] (name, type, labels, help; rendered into docs/METRICS.md by
//! `loam metrics-reference`); a test checks the registry against it. The process metrics
//! (`loam_metrics::process`) and the cluster store's latency and errors by operation (every call through
//! `loam_store::timed::TimedStore`, which this type observes) are registered here too.
//!
//! - **Bounded labels.** `kind` is a job kind, `state` a job state, `status` of a request its class
//!   (`2xx` … `5xx`), `route` the matched route template (`/api/v1/load`), never the raw path; a request
//!   that matches no route is counted under `route="unmatched"`.
//! - **Counters move where the jobs' own counters do** ([`JobCounters::add`], called next to every
//!   `counters.add` of a running job), so they count progress made by this process; a job resumed
//!   after a restart continues its record's counters but these restart at zero, as counters may.
//! - **A scrape never blocks the data path.** The job gauge is computed from the jobs held in memory
//!   (a lock held only to copy each job's kind and state; no store read). The workers gauge needs
//!   the membership, which lives in the cluster store: a scrape reads it with a timeout of
//!   [`MEMBERSHIP_READ_TIMEOUT`] and, when the store does not answer in time, keeps the last values.
//!   Nothing on a job's or request's path waits for a scrape: counters and histograms are atomics.

use loam_core::job_api::JobState;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;

use crate::jobs::record::{Counters, JobKind};
use loam_metrics::MetricDoc;
use loam_store::timed::{StoreObserver, StoreOp};

/// Jobs by kind and state.
pub const JOBS: &str = "loam_coordinator_jobs";
/// Files listed by jobs, by kind.
pub const JOB_FILES_SCANNED: &str = "loam_coordinator_job_files_scanned";
/// Files loaded by jobs, by kind.
pub const JOB_FILES_LOADED: &str = "loam_coordinator_job_files_loaded";
/// Bytes loaded by jobs, by kind.
pub const JOB_BYTES_LOADED: &str = "loam_coordinator_job_bytes_loaded";
/// Files that failed in jobs, by kind.
pub const JOB_FILES_FAILED: &str = "loam_coordinator_job_files_failed";
/// Bytes of the files that failed in jobs, by kind.
pub const JOB_BYTES_FAILED: &str = "loam_coordinator_job_bytes_failed";
/// Files freed by jobs, by kind.
pub const JOB_FILES_FREED: &str = "loam_coordinator_job_files_freed";
/// Cached bytes freed by jobs, by kind.
pub const JOB_BYTES_FREED: &str = "loam_coordinator_job_bytes_freed";
/// Registered workers by status (`online`, `offline`).
pub const WORKERS: &str = "loam_coordinator_workers";
/// REST API latency by method, route template and status class.
pub const API_REQUEST_DURATION: &str = "loam_coordinator_api_request_duration_seconds";
/// Alluxio DORA's `DISTRIBUTED_LOAD_JOB_SCANNED`: files scanned by load jobs.
pub const ALLUXIO_LOAD_SCANNED: &str = "alluxio_distributed_load_job_scanned";
/// Alluxio DORA's `DISTRIBUTED_LOAD_JOB_PROCESSED`: non-empty files loaded by load jobs.
pub const ALLUXIO_LOAD_PROCESSED: &str = "alluxio_distributed_load_job_processed";
/// Alluxio DORA's `DISTRIBUTED_LOAD_JOB_LOADED_BYTES`: bytes loaded by load jobs.
pub const ALLUXIO_LOAD_LOADED_BYTES: &str = "alluxio_distributed_load_job_loaded_bytes";

/// Cluster store call latency by operation.
pub const STORE_DURATION: &str = "loam_coordinator_store_request_duration_seconds";
/// Cluster store calls that failed, by operation.
pub const STORE_ERRORS: &str = "loam_coordinator_store_errors";

const KIND: &[&str] = &["kind"];
const OP: &[&str] = &["op"];

/// Every Coordinator metric family (the process metrics are `loam_metrics::process::CATALOG`). The help
/// texts are the ones registered.
pub const CATALOG: &[MetricDoc] = &[
    MetricDoc::gauge(JOBS, &["kind", "state"], "Jobs by kind and state"),
    MetricDoc::counter(JOB_FILES_SCANNED, KIND, "Files listed by jobs, by kind"),
    MetricDoc::counter(JOB_FILES_LOADED, KIND, "Files loaded by jobs, by kind"),
    MetricDoc::counter(JOB_BYTES_LOADED, KIND, "Bytes loaded by jobs, by kind"),
    MetricDoc::counter(JOB_FILES_FAILED, KIND, "Files that failed in jobs, by kind"),
    MetricDoc::counter(JOB_BYTES_FAILED, KIND, "Bytes of the files that failed in jobs, by kind"),
    MetricDoc::counter(JOB_FILES_FREED, KIND, "Files freed by jobs, by kind"),
    MetricDoc::counter(JOB_BYTES_FREED, KIND, "Cached bytes freed by jobs, by kind"),
    MetricDoc::gauge(WORKERS, &["status"], "Registered workers by status"),
    MetricDoc::histogram(API_REQUEST_DURATION, &["method", "route", "status"], "REST API request latency"),
    MetricDoc::counter(ALLUXIO_LOAD_SCANNED, &[], "counter of the inodes scanned in distributed load"),
    MetricDoc::counter(ALLUXIO_LOAD_PROCESSED, &[], "counter of the non empty file copies loaded in distributed load"),
    MetricDoc::counter(ALLUXIO_LOAD_LOADED_BYTES, &[], "counter of the bytes loaded in distributed load"),
    MetricDoc::histogram(STORE_DURATION, OP, "Cluster store call latency by operation (get, put, list, txn, ...)"),
    MetricDoc::counter(STORE_ERRORS, OP, "Cluster store calls that failed, by operation"),
];

/// The help text of `name` in [`CATALOG`].
fn help(name: &str) -> &'static str {
    CATALOG.iter().find(|m| m.name == name).map_or("", |m| m.help)
}

/// The `op` label of the store metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabel {
    /// A [`StoreOp`] as a string.
    pub op: &'static str,
}

/// The route label of a request that matched no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";
/// How long a scrape waits for the membership before it keeps the last worker counts.
pub const MEMBERSHIP_READ_TIMEOUT: Duration = Duration::from_millis(500);

/// `kind` and `state` of [`JOBS`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    /// `load`, `free`, `rebalance`.
    pub kind: String,
    /// `RUNNING`, `VERIFYING`, `STOPPED`, `SUCCEEDED`, `FAILED`.
    pub state: String,
}

/// `kind` of the job counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// The job kind.
    pub kind: String,
}

/// `status` of [`WORKERS`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkerStatus {
    /// `online` or `offline`.
    pub status: String,
}

/// Labels of [`API_REQUEST_DURATION`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabels {
    /// The HTTP method.
    pub method: String,
    /// The matched route template, or [`UNMATCHED_ROUTE`].
    pub route: String,
    /// `2xx`, `3xx`, `4xx`, `5xx`.
    pub status: String,
}

/// Every job state, as the API spells it.
const STATES: [JobState; 5] =
    [JobState::Running, JobState::Verifying, JobState::Stopped, JobState::Succeeded, JobState::Failed];

/// The counters jobs move while they run. Cloning shares the values.
#[derive(Clone, Debug, Default)]
pub struct JobCounters {
    scanned: Family<KindLabel, Counter>,
    files_loaded: Family<KindLabel, Counter>,
    bytes_loaded: Family<KindLabel, Counter>,
    files_failed: Family<KindLabel, Counter>,
    bytes_failed: Family<KindLabel, Counter>,
    files_freed: Family<KindLabel, Counter>,
    bytes_freed: Family<KindLabel, Counter>,
    alluxio_scanned: Counter,
    alluxio_processed: Counter,
    alluxio_loaded_bytes: Counter,
}

impl JobCounters {
    /// Counts `delta`, what a job of `kind` just added to its record's counters.
    pub fn add(&self, kind: JobKind, delta: &Counters) {
        let k = kind_label(kind);
        let loaded_files = delta.loaded_non_empty_files + delta.loaded_files;
        for (family, n) in [
            (&self.scanned, delta.scanned_files),
            (&self.files_loaded, loaded_files),
            (&self.bytes_loaded, delta.loaded_bytes),
            (&self.files_failed, delta.failed_files),
            (&self.bytes_failed, delta.failed_bytes),
            (&self.files_freed, delta.freed_files),
            (&self.bytes_freed, delta.freed_bytes),
        ] {
            if n > 0 {
                family.get_or_create(&k).inc_by(n);
            }
        }
        if kind == JobKind::Load {
            self.alluxio_scanned.inc_by(delta.scanned_files);
            self.alluxio_processed.inc_by(delta.loaded_non_empty_files);
            self.alluxio_loaded_bytes.inc_by(delta.loaded_bytes);
        }
    }
}

/// Every Coordinator metric and the registry they are served from.
pub struct CoordinatorMetrics {
    registry: Registry,
    /// What jobs count; handed to the job service.
    pub jobs: JobCounters,
    job_states: Family<JobLabels, Gauge>,
    workers: Family<WorkerStatus, Gauge>,
    api: Family<ApiLabels, Histogram>,
    store_duration: Family<OpLabel, Histogram>,
    store_errors: Family<OpLabel, Counter>,
}

fn kind_label(kind: JobKind) -> KindLabel {
    KindLabel { kind: kind.as_str().to_string() }
}

fn state_str(state: JobState) -> String {
    serde_json::to_value(state).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

impl CoordinatorMetrics {
    /// New metrics on a registry of their own, every kind's series created so a fresh scrape shows zeros.
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::default();
        let jobs = JobCounters::default();
        let job_states = Family::<JobLabels, Gauge>::default();
        let workers = Family::<WorkerStatus, Gauge>::default();
        let api = Family::<ApiLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.001, 4.0, 9))) as fn() -> Histogram,
        );
        // Store calls: 250 µs × 4ⁿ up to ~16 s (a local etcd answers in about a millisecond).
        let store_duration = Family::<OpLabel, Histogram>::new_with_constructor(
            (|| Histogram::new(exponential_buckets(0.00025, 4.0, 9))) as fn() -> Histogram,
        );
        let store_errors = Family::<OpLabel, Counter>::default();
        // prometheus-client appends `_total` to counters itself, so names are given without it.
        registry.register(JOBS, help(JOBS), job_states.clone());
        registry.register(JOB_FILES_SCANNED, help(JOB_FILES_SCANNED), jobs.scanned.clone());
        registry.register(JOB_FILES_LOADED, help(JOB_FILES_LOADED), jobs.files_loaded.clone());
        registry.register(JOB_BYTES_LOADED, help(JOB_BYTES_LOADED), jobs.bytes_loaded.clone());
        registry.register(JOB_FILES_FAILED, help(JOB_FILES_FAILED), jobs.files_failed.clone());
        registry.register(JOB_BYTES_FAILED, help(JOB_BYTES_FAILED), jobs.bytes_failed.clone());
        registry.register(JOB_FILES_FREED, help(JOB_FILES_FREED), jobs.files_freed.clone());
        registry.register(JOB_BYTES_FREED, help(JOB_BYTES_FREED), jobs.bytes_freed.clone());
        registry.register(WORKERS, help(WORKERS), workers.clone());
        registry.register(API_REQUEST_DURATION, help(API_REQUEST_DURATION), api.clone());
        registry.register(ALLUXIO_LOAD_SCANNED, help(ALLUXIO_LOAD_SCANNED), jobs.alluxio_scanned.clone());
        registry.register(ALLUXIO_LOAD_PROCESSED, help(ALLUXIO_LOAD_PROCESSED), jobs.alluxio_processed.clone());
        registry.register(
            ALLUXIO_LOAD_LOADED_BYTES,
            help(ALLUXIO_LOAD_LOADED_BYTES),
            jobs.alluxio_loaded_bytes.clone(),
        );
        registry.register(STORE_DURATION, help(STORE_DURATION), store_duration.clone());
        registry.register(STORE_ERRORS, help(STORE_ERRORS), store_errors.clone());
        for op in StoreOp::ALL {
            drop(store_duration.get_or_create(&OpLabel { op: op.as_str() }));
            drop(store_errors.get_or_create(&OpLabel { op: op.as_str() }));
        }
        loam_metrics::process::register(&mut registry);
        for kind in JobKind::ALL {
            let k = kind_label(kind);
            for f in [&jobs.scanned, &jobs.files_loaded, &jobs.bytes_loaded, &jobs.files_failed, &jobs.bytes_failed] {
                drop(f.get_or_create(&k));
            }
            for f in [&jobs.files_freed, &jobs.bytes_freed] {
                drop(f.get_or_create(&k));
            }
            for state in STATES {
                drop(job_states.get_or_create(&JobLabels { kind: k.kind.clone(), state: state_str(state) }));
            }
        }
        for status in ["online", "offline"] {
            drop(workers.get_or_create(&WorkerStatus { status: status.into() }));
        }
        Arc::new(Self { registry, jobs, job_states, workers, api, store_duration, store_errors })
    }

    /// Sets the job gauge from `jobs`, the (kind, state) of every job held now.
    pub fn set_jobs(&self, jobs: impl IntoIterator<Item = (JobKind, JobState)>) {
        let mut counts = std::collections::HashMap::<(JobKind, JobState), i64>::new();
        for j in jobs {
            *counts.entry(j).or_default() += 1;
        }
        for kind in JobKind::ALL {
            for state in STATES {
                let labels = JobLabels { kind: kind.as_str().to_string(), state: state_str(state) };
                self.job_states.get_or_create(&labels).set(counts.get(&(kind, state)).copied().unwrap_or(0));
            }
        }
    }

    /// Sets the workers gauge.
    pub fn set_workers(&self, online: usize, offline: usize) {
        self.workers.get_or_create(&WorkerStatus { status: "online".into() }).set(online as i64);
        self.workers.get_or_create(&WorkerStatus { status: "offline".into() }).set(offline as i64);
    }

    /// Records one answered request.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let labels =
            ApiLabels { method: method.to_string(), route: route.to_string(), status: format!("{}xx", status / 100) };
        self.api.get_or_create(&labels).observe(elapsed.as_secs_f64());
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

impl StoreObserver for CoordinatorMetrics {
    fn observe(&self, op: StoreOp, elapsed: Duration, ok: bool) {
        let label = OpLabel { op: op.as_str() };
        self.store_duration.get_or_create(&label).observe(elapsed.as_secs_f64());
        if !ok {
            self.store_errors.get_or_create(&label).inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_lists_exactly_what_is_registered() {
        let m = CoordinatorMetrics::new();
        m.observe_request("GET", "/api/v1/nodes", 200, Duration::from_millis(1));
        let text = m.encode().unwrap();
        let mut catalog = CATALOG.to_vec();
        catalog.extend_from_slice(loam_metrics::process::CATALOG);
        let problems = loam_metrics::check_catalog(&text, &catalog);
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
