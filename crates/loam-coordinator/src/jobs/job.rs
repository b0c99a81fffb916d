//! One job in memory while it runs: its record behind a lock, a watch that wakes `sync` waiters on each
//! change, the stop signal its runner listens to, and the runner's task. The record is written to the
//! store by [`Job::persist`] (each second while running, and at every state change), fenced by the
//! Coordinator's leadership.

use super::record::{JobKind, JobRecord};
use crate::leader::Fence;
use loam_core::store_keys::jobs_prefix;
use loam_store::StoreError;
use parking_lot::Mutex;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Why a runner is asked to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Keep going.
    No,
    /// `DELETE`: the job becomes `STOPPED`.
    User,
    /// The coordinator is shutting down: the job stays `RUNNING` and resumes on restart.
    Shutdown,
    /// A quota the job loads under is full (`super::quota`): the job becomes `FAILED`. Only the runner
    /// itself ends a run this way; it is never sent on the stop signal.
    Quota,
}

/// The next item of `items`, or why the run must stop first (`Err`); `Ok(None)` once `items` ends. The
/// one wait of the passes that walk a listing outside an `Execution` (verify, repair).
pub(super) async fn next_unless_stopped<T>(
    items: &mut (impl futures::Stream<Item = T> + Unpin),
    stop: &mut watch::Receiver<Stop>,
) -> Result<Option<T>, Stop> {
    use futures::StreamExt;
    loop {
        tokio::select! {
            biased;
            r = stop.changed() => {
                let why = if r.is_err() { Stop::Shutdown } else { *stop.borrow() };
                if why != Stop::No {
                    return Err(why);
                }
            }
            item = items.next() => return Ok(item),
        }
    }
}

/// A job being run by this coordinator.
pub struct Job {
    record: Mutex<JobRecord>,
    changed: watch::Sender<u64>,
    stop: watch::Sender<Stop>,
    task: Mutex<Option<JoinHandle<()>>>,
}

/// The store key of a job.
pub fn job_key(cluster: &str, kind: JobKind, id: &str) -> String {
    format!("{}{id}", jobs_prefix(cluster, kind.as_str()))
}

impl Job {
    /// A job over `record`, not yet running.
    pub fn new(record: JobRecord) -> Arc<Self> {
        Arc::new(Self {
            record: Mutex::new(record),
            changed: watch::channel(0).0,
            stop: watch::channel(Stop::No).0,
            task: Mutex::new(None),
        })
    }

    /// A copy of the record.
    pub fn snapshot(&self) -> JobRecord {
        self.record.lock().clone()
    }

    /// Changes the record and wakes the waiters.
    pub fn update<T>(&self, f: impl FnOnce(&mut JobRecord) -> T) -> T {
        let out = f(&mut self.record.lock());
        self.changed.send_modify(|n| *n += 1);
        out
    }

    /// Writes the record to the store, with the time of the current run so far counted in `elapsed_ms`
    /// (`JobRecord::stored`): a coordinator killed mid-run resumes the count from its last persist.
    /// Written through `fence`: only while this Coordinator leads (`crate::leader`), so a former leader
    /// never overwrites the progress of the job the new leader resumed.
    pub async fn persist(&self, fence: &Fence, cluster: &str) -> Result<(), StoreError> {
        let rec = self.snapshot().stored();
        let value =
            serde_json::to_vec(&rec).map_err(|e| StoreError::Other(format!("cannot encode job {}: {e}", rec.id)))?;
        fence.put(&job_key(cluster, rec.kind, &rec.id), value.into()).await?;
        Ok(())
    }

    /// A receiver that sees every change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The receiver the runner listens to.
    pub fn stop_signal(&self) -> watch::Receiver<Stop> {
        self.stop.subscribe()
    }

    /// Asks the runner to stop.
    pub fn request_stop(&self, why: Stop) {
        self.stop.send_replace(why);
    }

    /// Remembers the runner's task.
    pub fn set_task(&self, task: JoinHandle<()>) {
        *self.task.lock() = Some(task);
    }

    /// Waits for the runner to end (at once if none runs).
    pub async fn join(&self) {
        let task = self.task.lock().take();
        if let Some(t) = task
            && let Err(e) = t.await
        {
            tracing::error!("job runner task failed: {e}");
        }
    }
}
