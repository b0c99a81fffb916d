//! What differs between job kinds, as two traits; everything else (submission, stop and resume,
//! persistence, batches, retries, checkpoints, the failed-file list) is shared.
//!
//! - [`JobKindRunner`]: how a job of the kind runs, from its checkpoint to the end of its work — list or
//!   plan its files, run one or more passes of the [`Execution`](super::execution::Execution) over them,
//!   and whatever comes after (a load's verify). One implementation per kind (`load`, `free`,
//!   `rebalance`); `runner::runner_for` picks it by [`JobKind`](super::record::JobKind), the one place
//!   that matches on the kind to run a job.
//! - [`BatchPlan`]: what one pass asks of its kind — where a listed file goes, how a batch is sent to a
//!   worker (`run_batch`), and what a file's outcome adds to the job's progress counters (`progress`).
//!   The execution knows no kind: it calls these.
//!
//! Adding a kind: a module with a `JobKindRunner` (and a `BatchPlan` per pass), one arm in
//! `runner::runner_for`, and the kind's record fields and progress object in `record` (see
//! `docs/DEVELOPMENT.md`, "How to add a job kind").

use super::ctx::JobsCtx;
use super::job::{Job, Stop};
use super::listing::FileMeta;
use super::record::Counters;
use super::tracker::Outcome;
use super::workers::WorkerClient;
use futures::future::BoxFuture;
use loam_client::{PeerError, WorkerEndpoint};
use loam_core::WorkerId;
use loam_core::job_api::FileResult;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::watch;

/// A file waiting in a batch: tracker index, UFS URI, and (length, listing metadata) shared by its replicas.
pub type Planned = (u64, String, Arc<(u64, FileMeta)>);

/// How a job of one kind runs (see the module header).
pub trait JobKindRunner: Send + Sync {
    /// Runs `job` from its checkpoint until its work is done (`Ok`, whatever failed on the way) or it is
    /// asked to stop (`Err`, with why). The caller (`runner::run`) does the rest of the run's life: its
    /// start, the final state, the failed-file list and the last persist.
    fn run<'a>(
        &'a self,
        ctx: &'a JobsCtx,
        job: &'a Job,
        stop: &'a mut watch::Receiver<Stop>,
    ) -> BoxFuture<'a, Result<(), Stop>>;

    /// Files the kind keeps on the Coordinator's disk for job `id` besides its failed-file list; they are
    /// deleted with the job when it expires.
    fn job_files(&self, _ctx: &JobsCtx, _id: &str) -> Vec<PathBuf> {
        Vec::new()
    }

    /// Cluster-store prefixes the kind keeps for job `id` besides its record; they are deleted (fenced)
    /// with the job when it expires.
    fn job_prefixes(&self, _ctx: &JobsCtx, _id: &str) -> Vec<String> {
        Vec::new()
    }
}

/// What one pass of the execution asks of its job kind (see the module header).
pub trait BatchPlan: Send + Sync {
    /// The job's `runningState` while the pass runs: `listing_done` once every event is listed,
    /// `retrying` while files wait for a retry.
    fn phase(&self, listing_done: bool, retrying: bool) -> &'static str {
        match () {
            _ if !listing_done => "LISTING",
            _ if retrying => "RETRYING",
            _ => "LOADING",
        }
    }

    /// The workers a listed file goes to, or `None` when the pass leaves it out (filtered: it counts as
    /// scanned only). Events that come assigned to a worker (a rebalance's) are not asked about.
    fn assign(&self, uri: &str) -> Option<Vec<WorkerEndpoint>>;

    /// Re-reads the live workers, so that [`reassign`](Self::reassign) sees the ring as it is now. A kind
    /// whose files stay where they were planned does nothing.
    fn refresh<'a>(&'a self, _ctx: &'a JobsCtx) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }

    /// Where a file planned on `from`, a worker that cannot be reached, goes now: `None` keeps it as it
    /// was (the kind does not re-plan); `Some(w)` where to send it: `from` itself at its address of now
    /// when it still owns the file on the current ring (a restarted worker may serve on another port), or
    /// a live owner that is not among `others`, the file's other owners (replicas stay on distinct workers).
    fn reassign(&self, _uri: &str, _from: &WorkerId, _others: &[WorkerId]) -> Option<WorkerEndpoint> {
        None
    }

    /// What a matched file that no worker takes counts: `Some` the counters it is decided with (a free:
    /// nothing holds it, so it is freed), `None` it fails (no live worker to load it onto).
    fn unowned(&self, _length: u64) -> Option<Counters> {
        None
    }

    /// Sends one batch of `files` to `worker`: one result per file, in order, or the error of the whole
    /// batch.
    fn run_batch(
        &self,
        client: &WorkerClient,
        worker: &WorkerEndpoint,
        files: &[Planned],
    ) -> BoxFuture<'static, Result<Vec<FileResult>, PeerError>>;

    /// What a file's final outcome on `worker` adds to the job's counters (its progress); `length` is the
    /// listed length.
    fn progress(&self, worker: &WorkerId, length: u64, outcome: &Outcome) -> Counters;
}
