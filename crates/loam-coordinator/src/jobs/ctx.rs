//! What the runners of one Coordinator's jobs share: the cluster store, the leader fence and cluster name, the mount service
//! and UFS registry (listings), the client of the workers' task API, the Coordinator's data directory (the
//! failed-file lists and rebalance plans), the global file index (rebalance hints), the quota rules and
//! the reservations of running loads. [`super::JobService`] builds it once; every runner borrows it.

use super::reservations::Reservations;
use super::workers::WorkerClient;
use crate::file_index::FileIndex;
use crate::leader::Fence;
use crate::mounts::MountService;
use crate::rules::RuleService;
use loam_core::rules::QuotaRule;
use loam_store::ClusterStore;
use loam_ufs::UfsRegistry;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// What runners share.
pub struct JobsCtx {
    pub(super) store: Arc<dyn ClusterStore>,
    /// Job records are written through it: only while this Coordinator leads.
    pub(super) fence: Arc<Fence>,
    pub(super) cluster: String,
    pub(super) mounts: MountService,
    pub(super) ufs: UfsRegistry,
    pub(super) workers: WorkerClient,
    pub(super) data_dir: PathBuf,
    pub(super) file_index: Option<Arc<FileIndex>>,
    pub(super) quota: RuleService<QuotaRule>,
    pub(super) quota_check_interval: Duration,
    /// How long the files of a worker that cannot be reached are retried before they fail.
    pub(super) retry_window: Duration,
    pub(super) reservations: Reservations,
    /// The Coordinator's job counters (`crate::metrics`), moved with every job's own.
    pub(super) counters: crate::metrics::JobCounters,
}

impl JobsCtx {
    /// Adds `delta` to `job`'s counters and to the Coordinator's metrics: the one place job progress is counted.
    pub(super) fn count(&self, job: &super::job::Job, delta: &super::record::Counters) {
        let kind = job.update(|r| {
            r.counters.add(delta);
            r.kind
        });
        self.counters.add(kind, delta);
    }
}
