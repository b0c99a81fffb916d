//! Reports this worker's cached files to the Coordinator's global file index.
//!
//! Every `interval` the reporter lists the page store's files (`file_ids`), diffs them against what it
//! last reported, and posts the difference (`POST /api/v1/internal/file_index`, an [`IndexReport`] of
//! added and removed UFS URIs). Diffing the store's own list covers every cause of change — load, free,
//! TTL, eviction, read-through, clear-stale — without hooks inside the page store.
//!
//! - **Decision (what counts as cached):** a file is indexed while this worker holds at least one page of
//!   it (or its record, for an empty file). Eviction keeps a record whose pages are all gone, and a
//!   metadata-only load caches no page: neither puts the file in the index.
//! - A failed post changes nothing: the next tick diffs against the same last-reported set, so nothing is
//!   lost. A `404` (index disabled) counts as delivered, so a disabled index costs one small post a tick.
//! - At most [`MAX_FILES_PER_REPORT`] URIs ([`MAX_REPORT_BYTES`]) go in one post; the rest follow on the
//!   next ticks.
//! - The first delivered report carries `reset`: the Coordinator forgets what it held for this worker, so a
//!   worker restarted with fewer files (its reporter starts from nothing) leaves no stale entries behind.
//! - The loop stops when the worker's shutdown signal fires; the worker awaits its task.
//! - Reports go through [`Coordinators`]: with several configured, to the one that answered last, moving
//!   on past a dead one or a follower's `503`. A report reaches the leader (followers forward writes),
//!   which holds the index.

use loam_client::Coordinators;
use loam_core::cluster_ops_api::{CLUSTER_OPS_API_VERSION, FILE_INDEX_REPORT_PATH, IndexReport};
use loam_core::{ErrorKind, WorkerId};
use loam_page_store::PageStore;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Default time between two reports.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// Most URIs (added plus removed) in one report.
pub const MAX_FILES_PER_REPORT: usize = 10_000;
/// Most URI bytes in one report, well under the Coordinator's 2 MiB request body limit.
pub const MAX_REPORT_BYTES: usize = 1 << 20;

/// Starts the reporter of worker `id` to `coordinators` (sending the cluster token); it ends when `stop`
/// turns true.
pub fn spawn(
    id: WorkerId,
    pages: Arc<PageStore>,
    coordinators: Coordinators,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut reported: HashMap<String, String> = HashMap::new();
        // The first delivered report resets what the Coordinator holds for this worker: a restarted worker
        // may have lost files while it was down, and it has no memory of what it reported before.
        let mut reset = true;
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                _ = tokio::time::sleep(interval) => {}
            }
            let (added, removed) = diff(&pages, &reported);
            if added.is_empty() && removed.is_empty() && !reset {
                continue;
            }
            let report = IndexReport {
                version: CLUSTER_OPS_API_VERSION,
                worker: id.to_string(),
                reset,
                added: added.iter().map(|(_, uri)| uri.clone()).collect(),
                removed: removed.iter().map(|(_, uri)| uri.clone()).collect(),
            };
            let build = |req: reqwest::RequestBuilder| req.json(&report).timeout(Duration::from_secs(30));
            let sent = async {
                let resp = coordinators.send(reqwest::Method::POST, FILE_INDEX_REPORT_PATH, build).await?;
                loam_client::peer::success(coordinators.current(), resp).await
            };
            // A Coordinator that keeps no index answers 404: nothing to deliver, nothing to retry.
            let delivered = match sent.await {
                Ok(_) => true,
                Err(e) if e.kind() == ErrorKind::NotFound => true,
                Err(e) => {
                    tracing::debug!("file index report not delivered: {e}");
                    false
                }
            };
            if delivered {
                reset = false;
                for (id, _) in removed {
                    reported.remove(&id);
                }
                reported.extend(added);
            }
        }
    })
}

/// `(file id, UFS URI)` pairs.
type Files = Vec<(String, String)>;

/// `(added, removed)`, at most [`MAX_FILES_PER_REPORT`] together.
fn diff(pages: &PageStore, reported: &HashMap<String, String>) -> (Files, Files) {
    let current: HashSet<String> = pages.file_ids().into_iter().filter(|id| is_cached(pages, id)).collect();
    let mut budget = Budget { files: MAX_FILES_PER_REPORT, bytes: MAX_REPORT_BYTES };
    let removed: Files = reported
        .iter()
        .filter(|(id, _)| !current.contains(*id))
        .map(|(id, uri)| (id.clone(), uri.clone()))
        .take_while(|(_, uri)| budget.take(uri))
        .collect();
    let added = current
        .into_iter()
        .filter(|id| !reported.contains_key(id))
        .filter_map(|id| pages.file(&id).map(|r| (id, r.ufs_uri)))
        .take_while(|(_, uri)| budget.take(uri))
        .collect();
    (added, removed)
}

/// What is left of one report's size limits.
struct Budget {
    files: usize,
    bytes: usize,
}

impl Budget {
    /// Whether `uri` still fits; always lets the first URI through so an oversized one cannot stall reports.
    fn take(&mut self, uri: &str) -> bool {
        let first = self.files == MAX_FILES_PER_REPORT;
        if self.files == 0 || (!first && uri.len() > self.bytes) {
            return false;
        }
        self.files -= 1;
        self.bytes = self.bytes.saturating_sub(uri.len());
        true
    }
}

/// Whether `file_id` counts as cached for the index: some page held, or the record of an empty file.
pub fn is_cached(pages: &PageStore, file_id: &str) -> bool {
    pages.cached_page_count(file_id) > 0 || pages.file(file_id).is_some_and(|r| r.length == 0)
}

/// The UFS URIs of every file that counts as cached ([`is_cached`]).
pub fn cached_uris(pages: &PageStore) -> Vec<String> {
    pages
        .file_ids()
        .iter()
        .filter(|id| is_cached(pages, id))
        .filter_map(|id| pages.file(id).map(|r| r.ufs_uri))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::post;
    use axum::{Json, Router};
    use bytes::Bytes;
    use loam_page_store::metrics::PageStoreMetrics;
    use loam_page_store::{FileRecord, PageStoreConfig};
    use parking_lot::Mutex;

    fn store() -> Arc<PageStore> {
        let cfg = PageStoreConfig { page_size: 16, memory_capacity: 1 << 20, disk_dirs: vec![], disk_capacity: 0 };
        PageStore::open(cfg, PageStoreMetrics::default()).unwrap()
    }

    async fn cache(pages: &PageStore, uri: &str) -> String {
        let rec = FileRecord::new(uri, 16, None, None, 0);
        let id = rec.file_id.clone();
        pages.put_file(rec).await.unwrap();
        pages.put_page(&id, 0, Bytes::from_static(&[1; 16])).await.unwrap();
        id
    }

    /// A fake Coordinator endpoint that records every report.
    async fn coordinator() -> (String, Arc<Mutex<Vec<IndexReport>>>) {
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        let app = Router::new().route(
            FILE_INDEX_REPORT_PATH,
            post(move |Json(r): Json<IndexReport>| async move {
                sink.lock().push(r);
                "{}"
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, got)
    }

    fn coordinators(urls: &[&str]) -> Coordinators {
        let urls: Vec<String> = urls.iter().map(|u| u.to_string()).collect();
        Coordinators::new(&urls, loam_client::PeerClient::build(Default::default()).unwrap()).unwrap()
    }

    async fn until(got: &Mutex<Vec<IndexReport>>, pred: impl Fn(&[IndexReport]) -> bool) {
        while !pred(&got.lock()) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn reports_added_and_removed_files_once_to_the_first_coordinator_that_answers() {
        loam_ufs::install_process_defaults();
        let pages = store();
        let (url, got) = coordinator().await;
        let (tx, rx) = watch::channel(false);
        let id = WorkerId::random();
        let a = cache(&pages, "s3://b/a").await;
        let to = coordinators(&["http://127.0.0.1:1", &url]);
        let task = spawn(id, pages.clone(), to, Duration::from_millis(10), rx);
        until(&got, |r| !r.is_empty()).await;
        pages.remove_file(&a).await.unwrap();
        until(&got, |r| r.len() >= 2).await;
        tx.send(true).unwrap();
        task.await.unwrap();
        let r = got.lock().clone();
        assert_eq!(r.len(), 2, "nothing changed after the removal: {r:?}");
        assert!(r[0].reset && !r[1].reset);
        assert_eq!(
            (r[0].worker.as_str(), r[0].added.as_slice(), r[0].removed.len()),
            (&*id.to_string(), &["s3://b/a".to_string()][..], 0)
        );
        assert_eq!((r[1].added.len(), r[1].removed.as_slice()), (0, &["s3://b/a".to_string()][..]));
    }

    #[tokio::test]
    async fn shutdown_stops_the_loop() {
        let (tx, rx) = watch::channel(false);
        let task =
            spawn(WorkerId::random(), store(), coordinators(&["http://127.0.0.1:1"]), Duration::from_secs(3600), rx);
        tx.send(true).unwrap();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_file_whose_pages_are_gone_is_not_cached() {
        let pages = store();
        let rec = FileRecord::new("s3://b/meta-only", 16, None, None, 0);
        let id = rec.file_id.clone();
        pages.put_file(rec).await.unwrap();
        assert!(!is_cached(&pages, &id));
        let empty = FileRecord::new("s3://b/empty", 0, None, None, 0);
        pages.put_file(empty).await.unwrap();
        assert_eq!(cached_uris(&pages), vec!["s3://b/empty".to_string()]);
    }
}
