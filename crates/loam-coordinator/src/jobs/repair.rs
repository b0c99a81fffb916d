//! Repair, after a load's pass when the ring lost workers while it ran: the pass re-plans the files of a
//! worker it cannot reach, but a file that a worker had already loaded before it died is cached nowhere
//! live. So the job's files are listed again, and each one whose owners on the ring of now were not its
//! owners on the ring the pass began with is loaded onto those new owners (skipping what they hold). A file
//! that still cannot be loaded there counts as failed (`repair: …`). The job's loaded counters are not
//! changed: the file was counted when the pass loaded it.
//!
//! Not checkpointed: a Coordinator that restarts during a repair resumes the job on the ring of then, and
//! does not repair again (a `skipIfExists` resubmission fills the holes).

use super::ctx::JobsCtx;
use super::failed_list::{self, fail_once};
use super::job::{Job, Stop, next_unless_stopped};
use super::listing::{Listed, Lister, Source};
use futures::stream::StreamExt;
use loam_client::{Ring, WorkerEndpoint};
use loam_core::WorkerId;
use loam_core::job_api::LoadTaskFile;
use regex::Regex;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::watch;

/// Attempts per batch of a repair.
const ATTEMPTS: u32 = 3;
/// Backoff between them.
const BACKOFF: Duration = Duration::from_secs(1);

/// What a repair loads, and how.
pub(super) struct Repair<'a> {
    /// The ring the pass began with.
    pub then: &'a Ring,
    /// The ring of now.
    pub now: &'a Ring,
    /// Owners per file.
    pub replicas: usize,
    /// The job's filter.
    pub filter: Option<&'a Regex>,
    /// Whether only metadata is loaded.
    pub metadata_only: bool,
    /// Bytes per second per worker.
    pub bandwidth: u64,
}

impl Repair<'_> {
    /// Whether a worker of the ring the pass began with has left it.
    pub fn needed(&self) -> bool {
        self.then.members().any(|(id, _)| !self.now.members().any(|(now, _)| now == id))
    }

    /// The owners of `uri` now that were not its owners then.
    fn new_owners(&self, uri: &str) -> Vec<WorkerEndpoint> {
        let then: Vec<WorkerId> = self.then.lookup(uri, self.replicas).into_iter().map(|(_, w)| w.id).collect();
        self.now
            .lookup(uri, self.replicas)
            .into_iter()
            .map(|(_, w)| w)
            .filter(|w| !then.contains(&w.id))
            .cloned()
            .collect()
    }
}

/// Runs the repair (see the module header).
pub(super) async fn repair(
    ctx: &JobsCtx,
    job: &Job,
    r: &Repair<'_>,
    lister: &Lister,
    source: &Source,
    batch_size: usize,
    stop: &mut watch::Receiver<Stop>,
) -> Result<(), Stop> {
    let id = job.update(|rec| {
        rec.running_state = "REPAIRING".into();
        rec.id.clone()
    });
    let mut failed = failed_list::read(&failed_list::path(ctx, &id));
    let mut files = lister.list(source).chunks(batch_size).boxed();
    while let Some(chunk) = next_unless_stopped(&mut files, stop).await? {
        let mut per_worker: HashMap<WorkerId, (WorkerEndpoint, Vec<LoadTaskFile>)> = HashMap::new();
        let mut lengths = HashMap::new();
        for ev in chunk {
            let Listed::File { uri, length, meta } = ev else { continue };
            if failed.contains(&uri) || r.filter.is_some_and(|re| !re.is_match(&uri)) {
                continue;
            }
            for w in r.new_owners(&uri) {
                let f = LoadTaskFile {
                    ufs_uri: uri.clone(),
                    skip_if_exists: true,
                    metadata_only: r.metadata_only,
                    length: Some(length),
                    etag: meta.etag.clone(),
                    modified_ms: meta.modified_ms,
                    source: None,
                };
                per_worker.entry(w.id).or_insert_with(|| (w.clone(), Vec::new())).1.push(f);
            }
            lengths.insert(uri, length);
        }
        let calls = per_worker.into_values().map(|(w, files)| async move {
            let mut last = Vec::new();
            for attempt in 1..=ATTEMPTS {
                let uris: Vec<String> = files.iter().map(|f| f.ufs_uri.clone()).collect();
                last = match ctx.workers.load(&w, files.clone(), r.bandwidth).await {
                    Ok(results) => {
                        results.into_iter().filter(|x| !x.ok).map(|x| (x.uri, x.error.unwrap_or_default())).collect()
                    }
                    Err(e) => uris.into_iter().map(|u| (u, e.to_string())).collect(),
                };
                if last.is_empty() {
                    break;
                }
                if attempt < ATTEMPTS {
                    tokio::time::sleep(BACKOFF).await;
                }
            }
            last
        });
        for errors in futures::future::join_all(calls).await {
            for (uri, e) in errors {
                let length = lengths.get(&uri).copied().unwrap_or(0);
                fail_once(ctx, job, &mut failed, &uri, length, &format!("repair: {e}"));
            }
        }
    }
    Ok(())
}
