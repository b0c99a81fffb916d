//! Drain: this worker leaves the cluster cleanly, handing its cached files to their next owners before it
//! exits (`POST /v1/drain`, the `loam worker drain` preStop hook, `loam nodes drain <id>`).
//!
//! **Order.**
//! 1. **Leave the ring.** The worker revokes its liveness lease and stops its keepalive (its permanent
//!    registration stays, so it is listed `OFFLINE`). Every ring built from the membership from then on —
//!    clients, the other workers, the Coordinator's jobs — sends new files to the next owners.
//! 2. **Push.** Each cached file goes to its owner on the ring without this worker (the primary owner of
//!    its UFS URI among the other live workers). The push is the rebalance's copy, unchanged: this worker
//!    sends the next owner a load batch (`/v1/internal/load`) naming itself as the `source`, and the next
//!    owner copies the missing pages from this worker's page API, after adopting its record (same version,
//!    no UFS read; `crate::tasks::peer`). There is no second copy path. A file the next owner already holds
//!    whole is counted `present`. A batch the next owner cannot take (down, refusing) is tried
//!    [`ATTEMPTS`] times, then its files are reported failed with the reason; the other owners' batches
//!    go on.
//! 3. **Answer** the counts ([`DrainReport`]): files moved and their bytes, files already present, files
//!    failed with why.
//!
//! **Reads during a drain** are served as before, until the process exits: its listeners stay open and its
//! cache stays whole (a drain copies, it never frees). Clients whose ring still names this worker read
//! from it; a file it does not hold is read through from the UFS as usual (and cached here, uselessly).
//! Writes through other workers no longer invalidate this worker's copy once they see it gone from the
//! ring, so a read that reaches it late may see the version it cached, within the usual `max-age`.
//!
//! **After a drain** the worker stays out of the ring until it is restarted (a restart registers it again,
//! with its identity and cache). A second drain leaves nothing to leave and pushes again: files already
//! moved count as present, so a retried preStop hook is cheap. Drains run one at a time.
//!
//! **Why not on SIGTERM.** A worker stopped by a signal only leaves the ring (`WorkerHandle::shutdown`).
//! A node that crashes cannot drain, so correctness never depends on a drain: it only decides what stays
//! cached. The preStop hook drains; a stop without it costs cache, never data.

use crate::cluster::file_report;
use crate::error::WorkerError;
use futures::StreamExt;
use loam_client::{MembershipView, PeerClient, PeerError, WorkerEndpoint};
use loam_core::cluster_ops_api::{CLUSTER_OPS_API_VERSION, DRAIN_FAILURES_SHOWN, DrainFailure, DrainReport};
use loam_core::job_api::{FileResult, LOAD_TASK_PATH, LoadTask, LoadTaskFile, TASK_API_VERSION, TaskResults};
use loam_core::{HashRing, WorkerId};
use loam_page_store::PageStore;
use loam_store::membership::MembershipHandle;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Files per load batch sent to a next owner (a job's default batch size).
pub const BATCH_FILES: usize = 100;
/// Batches in flight at once, over all next owners.
pub const BATCHES_IN_FLIGHT: usize = 4;
/// Tries of one batch before its files fail (a job's `MAX_ATTEMPTS`).
pub const ATTEMPTS: u32 = 3;
/// The first retry delay; it doubles.
const FIRST_RETRY: Duration = Duration::from_millis(200);
/// How long a next owner may take over one batch (a job's `BATCH_TIMEOUT`).
const BATCH_TIMEOUT: Duration = Duration::from_secs(600);

/// This worker's membership and its drain.
pub struct Drain {
    id: WorkerId,
    pages: Arc<PageStore>,
    members: MembershipView,
    virtual_nodes: u32,
    peers: PeerClient,
    /// The keepalive of this worker's liveness key, until it leaves (a drain or a shutdown takes it).
    membership: Mutex<Option<MembershipHandle>>,
    /// Where this worker serves, as its membership record says: the `source` its next owners copy from.
    me: Mutex<Option<WorkerEndpoint>>,
    /// Drains run one at a time.
    running: tokio::sync::Mutex<()>,
}

impl Drain {
    /// The drain of worker `id`, before it has registered.
    pub fn new(
        id: WorkerId,
        pages: Arc<PageStore>,
        members: MembershipView,
        virtual_nodes: u32,
        peers: PeerClient,
    ) -> Arc<Self> {
        Arc::new(Self {
            id,
            pages,
            members,
            virtual_nodes,
            peers,
            membership: Mutex::new(None),
            me: Mutex::new(None),
            running: tokio::sync::Mutex::new(()),
        })
    }

    /// Records the registration: its keepalive, and the endpoint its record announces.
    pub fn registered(&self, handle: MembershipHandle, me: WorkerEndpoint) {
        *self.membership.lock() = Some(handle);
        *self.me.lock() = Some(me);
    }

    /// Leaves the ring: stops the keepalive and revokes the lease (the liveness key goes at once). Does
    /// nothing when already left.
    pub async fn leave(&self) {
        let handle = self.membership.lock().take();
        if let Some(m) = handle {
            match m.shutdown().await {
                Ok(()) => tracing::info!(worker = %self.id, "left the ring"),
                Err(e) => tracing::warn!("could not revoke the liveness lease (it will expire by itself): {e}"),
            }
        }
    }

    /// Leaves the ring, then moves every cached file to its next owner (see the module header).
    pub async fn run(&self) -> Result<DrainReport, WorkerError> {
        let _one = self.running.lock().await;
        let me = self.me.lock().clone().ok_or_else(|| {
            WorkerError::Unavailable("the worker has not joined the cluster yet: nothing to drain".into())
        })?;
        self.leave().await;
        let others: Vec<WorkerEndpoint> =
            self.members.ring().members().filter(|(_, w)| w.id != self.id).map(|(_, w)| w.clone()).collect();
        let ring = HashRing::new(others.into_iter().map(|w| (w.id.identity(), w)), self.virtual_nodes);
        let uris = file_report::cached_uris(&self.pages);
        let mut report = DrainReport {
            version: CLUSTER_OPS_API_VERSION,
            worker: self.id.to_string(),
            files: uris.len() as u64,
            ..DrainReport::default()
        };
        let mut by_owner: BTreeMap<String, (WorkerEndpoint, Vec<String>)> = BTreeMap::new();
        for uri in uris {
            match ring.primary(&uri) {
                Some((_, owner)) => by_owner.entry(owner.id.to_string()).or_insert((owner.clone(), vec![])).1.push(uri),
                None => fail(&mut report, uri, String::new(), "no other worker is in the ring".into()),
            }
        }
        tracing::info!(worker = %self.id, files = report.files, owners = by_owner.len(), "draining");
        let source = me.http_base();
        let batches = by_owner.into_values().flat_map(|(owner, uris)| {
            uris.chunks(BATCH_FILES).map(|c| (owner.clone(), c.to_vec())).collect::<Vec<_>>()
        });
        let mut done = futures::stream::iter(batches)
            .map(|(owner, uris)| {
                let source = source.clone();
                async move {
                    let results = self.push(&owner, &uris, &source).await;
                    (owner, uris, results)
                }
            })
            .buffer_unordered(BATCHES_IN_FLIGHT);
        while let Some((owner, uris, results)) = done.next().await {
            match results {
                Ok(results) => {
                    for r in results {
                        count(&mut report, r, &owner);
                    }
                }
                Err(e) => {
                    for uri in uris {
                        fail(&mut report, uri, owner.id.to_string(), e.to_string());
                    }
                }
            }
        }
        tracing::info!(
            worker = %self.id,
            moved = report.moved_files,
            present = report.present_files,
            failed = report.failed_files,
            "drain ended"
        );
        Ok(report)
    }

    /// Asks `owner` to copy `uris` from `source` (this worker); one result per file.
    async fn push(&self, owner: &WorkerEndpoint, uris: &[String], source: &str) -> Result<Vec<FileResult>, PeerError> {
        let files: Vec<LoadTaskFile> = uris
            .iter()
            .map(|u| LoadTaskFile {
                ufs_uri: u.clone(),
                skip_if_exists: true,
                metadata_only: false,
                length: None,
                etag: None,
                modified_ms: None,
                source: Some(source.to_string()),
            })
            .collect();
        let task = LoadTask { version: TASK_API_VERSION, files, bandwidth: 0 };
        let peer = loam_client::peer::worker_name(owner);
        let url = format!("{}{LOAD_TASK_PATH}", owner.http_base());
        let mut attempt = 0;
        loop {
            attempt += 1;
            let answer: Result<TaskResults, PeerError> = self.peers.post(&peer, &url, &task, BATCH_TIMEOUT).await;
            let e = match answer {
                Ok(r) if r.version == TASK_API_VERSION && r.results.len() == uris.len() => return Ok(r.results),
                Ok(r) => {
                    let what = format!("{} results of version {} for {} files", r.results.len(), r.version, uris.len());
                    return Err(PeerError::new(loam_core::ErrorKind::InvalidInput, format!("{peer} answered {what}")));
                }
                Err(e) => e,
            };
            if attempt >= ATTEMPTS || !e.is_retryable() {
                return Err(e);
            }
            tokio::time::sleep(FIRST_RETRY * 2u32.pow(attempt - 1)).await;
        }
    }
}

fn count(report: &mut DrainReport, r: FileResult, owner: &WorkerEndpoint) {
    match (r.ok, r.skipped) {
        (true, true) => report.present_files += 1,
        (true, false) => {
            report.moved_files += 1;
            report.moved_bytes += r.bytes;
        }
        (false, _) => fail(report, r.uri, owner.id.to_string(), r.error.unwrap_or_default()),
    }
}

fn fail(report: &mut DrainReport, uri: String, owner: String, error: String) {
    report.failed_files += 1;
    if report.failures.len() < DRAIN_FAILURES_SHOWN {
        report.failures.push(DrainFailure { uri, owner, error });
    }
}
