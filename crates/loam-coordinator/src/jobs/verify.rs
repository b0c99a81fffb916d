//! Verify, the load option: after loading, re-list the job's files and ask each owner whether every page
//! of each loaded file is present (`/v1/internal/verify`); a file that is not counts as failed, with its
//! error prefixed `verify:`. Files that already failed (the failed-file list) are not asked about again.

use super::ctx::JobsCtx;
use super::failed_list::{self, fail_once};
use super::job::{Job, Stop, next_unless_stopped};
use super::listing::{Listed, Lister, Source};
use futures::stream::StreamExt;
use loam_client::{Ring, WorkerEndpoint};
use loam_core::WorkerId;
use loam_core::job_api::JobState;
use regex::Regex;
use std::collections::HashMap;
use tokio::sync::watch;

/// Where a load job put its files: what verify checks against.
pub(super) struct Check<'a> {
    /// The ring the files were loaded on.
    pub ring: &'a Ring,
    /// Owners per file.
    pub replicas: usize,
    /// The job's filter.
    pub filter: Option<&'a Regex>,
    /// Whether only metadata was loaded.
    pub metadata_only: bool,
}

/// Checks that every loaded file is fully present on its owners; files that are not count as failed.
pub(super) async fn verify(
    ctx: &JobsCtx,
    job: &Job,
    check: &Check<'_>,
    lister: &Lister,
    source: &Source,
    batch_size: usize,
    stop: &mut watch::Receiver<Stop>,
) -> Result<(), Stop> {
    let Check { ring, replicas, filter, metadata_only } = *check;
    let id = job.update(|r| {
        r.state = JobState::Verifying;
        r.running_state = "VERIFYING".into();
        r.id.clone()
    });
    if let Err(e) = job.persist(&ctx.fence, &ctx.cluster).await {
        tracing::warn!(job = %id, "cannot persist the job: {e}");
    }
    let mut failed = failed_list::read(&failed_list::path(ctx, &id));
    let mut files = lister
        .list(source)
        .filter_map(|ev| async move {
            match ev {
                Listed::File { uri, length, .. } => Some((uri, length)),
                Listed::Error { .. } | Listed::Assigned { .. } => None,
            }
        })
        .chunks(batch_size)
        .boxed();
    while let Some(chunk) = next_unless_stopped(&mut files, stop).await? {
        let mut per_worker: HashMap<WorkerId, (WorkerEndpoint, Vec<String>)> = HashMap::new();
        let mut lengths = HashMap::new();
        for (uri, length) in chunk {
            if failed.contains(&uri) || filter.is_some_and(|re| !re.is_match(&uri)) {
                continue;
            }
            for (_, w) in ring.lookup(&uri, replicas) {
                per_worker.entry(w.id).or_insert_with(|| (w.clone(), Vec::new())).1.push(uri.clone());
            }
            lengths.insert(uri, length);
        }
        let calls = per_worker.into_values().map(|(w, uris)| {
            let client = ctx.workers.clone();
            async move {
                let r = client.verify(&w, uris.clone(), metadata_only).await;
                (uris, r)
            }
        });
        for (uris, r) in futures::future::join_all(calls).await {
            let errors: Vec<(String, String)> = match r {
                Ok(results) => {
                    results.into_iter().filter(|r| !r.ok).map(|r| (r.uri, r.error.unwrap_or_default())).collect()
                }
                Err(e) => uris.into_iter().map(|u| (u, e.to_string())).collect(),
            };
            for (uri, e) in errors {
                let length = lengths.get(&uri).copied().unwrap_or(0);
                fail_once(ctx, job, &mut failed, &uri, length, &format!("verify: {e}"));
            }
        }
    }
    Ok(())
}
