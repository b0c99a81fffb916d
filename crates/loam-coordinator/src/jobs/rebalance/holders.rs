//! Who holds each cached file, for a rebalance's plan: every live worker's listing merged in URI order.
//!
//! - **Listings** ([`Listing`]) yield a worker's cached files ascending, each once. A live worker's
//!   ([`Pager`]) is read a page at a time (`PeerClient::cached_files_page`, which makes every page
//!   ascending and after its cursor), the next page fetched while this one is merged, so the planner holds
//!   at most two pages per worker, [`page_limit`] long — not every worker's whole list. A page that cannot
//!   be read after [`PAGE_TRIES`] tries fails the plan (a plan made without part of a worker's files would
//!   load or prune the wrong ones).
//! - **The merge** ([`Merge`]) keeps a heap of the listings' heads, with the file index's hints for workers
//!   that did not answer as one more sorted source; each name is moved, not copied, from its page to the
//!   heap and out.
//!
//! The planner runs on a blocking thread (it writes the plan file as it goes): a pager waits for its next
//! page there with the runtime's `block_on`, and its fetches run on the runtime.

use crate::jobs::workers::WorkerClient;
use loam_client::peer::worker_name;
use loam_client::{PeerError, WorkerEndpoint};
use loam_core::WorkerId;
use loam_core::cluster_ops_api::{CachedFiles, MAX_CACHED_FILES_PAGE};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, btree_map};
use std::time::Duration;
use tokio::task::JoinHandle;

/// URIs the planner holds at once over all listings (two pages per worker): about 30 MB of names.
pub const LISTED_AT_ONCE: u64 = 262_144;
/// The least a page asks for, however many workers there are.
const MIN_PAGE: u64 = 100;
/// Tries of one page before the plan fails.
pub const PAGE_TRIES: u32 = 3;
/// The pause between tries of a page.
const PAGE_RETRY_PAUSE: Duration = Duration::from_secs(1);

/// How many files a page asks for when `workers` workers are listed at once.
pub fn page_limit(workers: usize) -> u64 {
    (LISTED_AT_ONCE / (2 * workers.max(1) as u64)).clamp(MIN_PAGE, MAX_CACHED_FILES_PAGE)
}

/// A worker's cached files, ascending, each once; `Err` says why the rest cannot be read.
pub trait Listing: Send {
    /// The next file, or `None` at the end.
    fn next_file(&mut self) -> Result<Option<String>, String>;
}

/// A listing held whole (sorted and deduplicated when made), for tests.
#[cfg(test)]
pub struct Sorted(std::vec::IntoIter<String>);

#[cfg(test)]
impl Sorted {
    /// The listing of `files`, in any order.
    pub fn new(mut files: Vec<String>) -> Self {
        files.sort_unstable();
        files.dedup();
        Self(files.into_iter())
    }
}

#[cfg(test)]
impl Listing for Sorted {
    fn next_file(&mut self) -> Result<Option<String>, String> {
        Ok(self.0.next())
    }
}

/// A live worker's listing, read a page at a time; the next page is on its way while this one is read.
pub struct Pager {
    rt: tokio::runtime::Handle,
    workers: WorkerClient,
    worker: WorkerEndpoint,
    limit: u64,
    page: std::vec::IntoIter<String>,
    coming: Option<JoinHandle<Result<CachedFiles, PeerError>>>,
}

impl Pager {
    /// The listing of `worker` whose `first` page was read (with `limit`); the next is fetched at once.
    pub fn new(workers: WorkerClient, worker: WorkerEndpoint, limit: u64, first: CachedFiles) -> Self {
        let rt = tokio::runtime::Handle::current();
        let mut pager = Self { rt, workers, worker, limit, page: Vec::new().into_iter(), coming: None };
        pager.take(first);
        pager
    }

    fn take(&mut self, page: CachedFiles) {
        self.coming = page.next.map(|after| {
            let (workers, worker, limit) = (self.workers.clone(), self.worker.clone(), self.limit);
            self.rt.spawn(async move { fetch(&workers, &worker, &after, limit).await })
        });
        self.page = page.files.into_iter();
    }
}

/// The page after `after`, tried [`PAGE_TRIES`] times while the error may pass.
async fn fetch(workers: &WorkerClient, w: &WorkerEndpoint, after: &str, limit: u64) -> Result<CachedFiles, PeerError> {
    let mut tries = 1;
    loop {
        match workers.cached_files_page(w, Some(after), limit).await {
            Err(e) if e.is_retryable() && tries < PAGE_TRIES => {
                tracing::warn!("rebalance planning: reading the listing of {} again: {e}", worker_name(w));
                tries += 1;
                tokio::time::sleep(PAGE_RETRY_PAUSE).await;
            }
            done => return done,
        }
    }
}

impl Listing for Pager {
    fn next_file(&mut self) -> Result<Option<String>, String> {
        loop {
            if let Some(uri) = self.page.next() {
                return Ok(Some(uri));
            }
            let Some(coming) = self.coming.take() else { return Ok(None) };
            let read = self.rt.block_on(coming).map_err(|e| e.to_string()).and_then(|r| r.map_err(|e| e.to_string()));
            let page = read.map_err(|e| {
                format!("cannot read the rest of the cached files of {}: {e}", worker_name(&self.worker))
            })?;
            self.take(page);
        }
    }
}

impl Drop for Pager {
    fn drop(&mut self) {
        if let Some(coming) = self.coming.take() {
            coming.abort();
        }
    }
}

/// Who holds a file: workers whose own list says so, and hints of the file index.
#[derive(Default)]
pub struct Holders {
    pub listed: Vec<WorkerId>,
    pub hinted: Vec<WorkerId>,
}

/// Every cached file once, in URI order, with its holders.
pub struct Merge {
    lists: Vec<(WorkerId, Box<dyn Listing>)>,
    heads: BinaryHeap<Reverse<(String, usize)>>,
    hinted: std::iter::Peekable<btree_map::IntoIter<String, Vec<WorkerId>>>,
    started: bool,
}

impl Merge {
    /// The merge of `lists` and the file index's `hinted` holders.
    pub fn new(lists: Vec<(WorkerId, Box<dyn Listing>)>, hinted: BTreeMap<String, Vec<WorkerId>>) -> Self {
        Self { lists, heads: BinaryHeap::new(), hinted: hinted.into_iter().peekable(), started: false }
    }

    /// Pushes list `i`'s next file onto the heap.
    fn advance(&mut self, i: usize) -> Result<(), String> {
        if let Some(next) = self.lists[i].1.next_file()? {
            self.heads.push(Reverse((next, i)));
        }
        Ok(())
    }

    fn next_holders(&mut self) -> Result<Option<(String, Holders)>, String> {
        if !self.started {
            self.started = true;
            for i in 0..self.lists.len() {
                self.advance(i)?;
            }
        }
        let listed_first = match (self.heads.peek(), self.hinted.peek()) {
            (None, None) => return Ok(None),
            (Some(Reverse((l, _))), Some((h, _))) => l <= h,
            (l, _) => l.is_some(),
        };
        if !listed_first {
            return Ok(self.hinted.next().map(|(uri, hinted)| (uri, Holders { listed: Vec::new(), hinted })));
        }
        let Some(Reverse((uri, first))) = self.heads.pop() else { return Ok(None) };
        let mut from = vec![first];
        while self.heads.peek().is_some_and(|Reverse((u, _))| *u == uri) {
            if let Some(Reverse((_, i))) = self.heads.pop() {
                from.push(i);
            }
        }
        let mut h = Holders::default();
        for i in from {
            h.listed.push(self.lists[i].0);
            self.advance(i)?;
        }
        if self.hinted.peek().is_some_and(|(u, _)| *u == uri) {
            h.hinted = self.hinted.next().map(|(_, ws)| ws).unwrap_or_default();
        }
        Ok(Some((uri, h)))
    }
}

impl Iterator for Merge {
    type Item = Result<(String, Holders), String>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_holders().transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn sorted(v: &[&str]) -> Box<dyn Listing> {
        Box::new(Sorted::new(v.iter().map(|x| x.to_string()).collect()))
    }

    #[test]
    fn the_merge_lists_each_file_once_in_order_with_its_holders_in_worker_order() {
        let (a, b, c) = (WorkerId::random(), WorkerId::random(), WorkerId::random());
        let listed = vec![(a, sorted(&["u3", "u1", "u2", "u1"])), (b, sorted(&["u2", "u5"])), (c, sorted(&[]))];
        let hinted: BTreeMap<String, Vec<WorkerId>> = [("u2".to_string(), vec![c]), ("u4".to_string(), vec![c])].into();
        let got: Vec<(String, Vec<WorkerId>, Vec<WorkerId>)> =
            Merge::new(listed, hinted).map(|r| r.map(|(u, h)| (u, h.listed, h.hinted)).unwrap()).collect();
        let want = vec![
            ("u1".to_string(), vec![a], vec![]),
            ("u2".to_string(), vec![a, b], vec![c]),
            ("u3".to_string(), vec![a], vec![]),
            ("u4".to_string(), vec![], vec![c]),
            ("u5".to_string(), vec![b], vec![]),
        ];
        assert_eq!(got, want);
    }

    /// A listing that fails after its files.
    struct Failing(Sorted);

    impl Listing for Failing {
        fn next_file(&mut self) -> Result<Option<String>, String> {
            match self.0.next_file()? {
                Some(u) => Ok(Some(u)),
                None => Err("the worker went away".into()),
            }
        }
    }

    #[test]
    fn a_listing_that_fails_midway_fails_the_merge() {
        let (a, b) = (WorkerId::random(), WorkerId::random());
        let failing = Box::new(Failing(Sorted::new(vec!["u2".into()])));
        let mut merge = Merge::new(vec![(a, sorted(&["u1", "u3"])), (b, failing)], BTreeMap::new());
        assert_eq!(merge.next().unwrap().unwrap().0, "u1");
        // `u2` is b's last: reading past it fails, and the merge says so rather than end early.
        assert_eq!(merge.next().unwrap().err().as_deref(), Some("the worker went away"));
    }

    #[test]
    fn pages_shrink_with_the_workers_within_bounds() {
        assert_eq!(page_limit(1), MAX_CACHED_FILES_PAGE);
        assert_eq!(page_limit(0), MAX_CACHED_FILES_PAGE);
        assert_eq!(page_limit(100), LISTED_AT_ONCE / 200);
        assert_eq!(page_limit(10_000), MIN_PAGE);
        assert!((1..=5000).all(|n| page_limit(n) * 2 * n as u64 <= LISTED_AT_ONCE.max(2 * MIN_PAGE * n as u64)));
    }

    /// A worker's listing served over HTTP, failing every page after `fail_after` pages.
    async fn serve_listing(files: Vec<String>, fail_after: usize) -> (WorkerEndpoint, Arc<AtomicUsize>) {
        use axum::extract::{Query, State};
        use loam_core::cluster_ops_api::{CACHED_FILES_PATH, CLUSTER_OPS_API_VERSION, CachedFilesQuery};
        type Served = (WorkerId, Arc<Vec<String>>, Arc<AtomicUsize>, usize);
        async fn page(
            State((id, files, served, fail_after)): State<Served>,
            Query(q): Query<CachedFilesQuery>,
        ) -> Result<axum::Json<CachedFiles>, axum::http::StatusCode> {
            if served.fetch_add(1, Ordering::SeqCst) >= fail_after {
                return Err(axum::http::StatusCode::SERVICE_UNAVAILABLE);
            }
            let (files, next) = q.page_of(&files);
            Ok(axum::Json(CachedFiles { version: CLUSTER_OPS_API_VERSION, worker: id.to_string(), files, next }))
        }
        let id = WorkerId::random();
        let served = Arc::new(AtomicUsize::new(0));
        let app = axum::Router::new().route(CACHED_FILES_PATH, axum::routing::get(page)).with_state((
            id,
            Arc::new(files),
            served.clone(),
            fail_after,
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (WorkerEndpoint { id, host: "127.0.0.1".into(), http_port: port, s3_port: 0, tls: false }, served)
    }

    fn client() -> WorkerClient {
        WorkerClient::new(loam_client::PeerClient::build(loam_auth::Credential::none()).unwrap())
    }

    /// Reads `pager` to its end on a blocking thread, as the planner does.
    async fn drain(mut pager: Pager) -> (Vec<String>, Result<(), String>) {
        tokio::task::spawn_blocking(move || {
            let mut got = Vec::new();
            loop {
                match pager.next_file() {
                    Ok(Some(u)) => got.push(u),
                    Ok(None) => return (got, Ok(())),
                    Err(e) => return (got, Err(e)),
                }
            }
        })
        .await
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_pager_reads_every_page_in_order_and_fails_when_a_later_page_cannot_be_read() {
        let files: Vec<String> = (0..25).map(|i| format!("s3://b/f{i:02}")).collect();
        let (w, served) = serve_listing(files.clone(), usize::MAX).await;
        let workers = client();
        let first = workers.cached_files_page(&w, None, 4).await.unwrap();
        let (got, end) = drain(Pager::new(workers.clone(), w, 4, first)).await;
        assert_eq!((got, end), (files.clone(), Ok(())));
        assert_eq!(served.load(Ordering::SeqCst), 7, "25 files in pages of 4");

        // The third page fails every try: the files before it, then why, after PAGE_TRIES tries of it.
        let (w, served) = serve_listing(files.clone(), 2).await;
        let first = workers.cached_files_page(&w, None, 4).await.unwrap();
        let (got, end) = drain(Pager::new(workers, w.clone(), 4, first)).await;
        assert_eq!(got, files[..8].to_vec());
        let e = end.unwrap_err();
        assert!(
            e.contains("cannot read the rest of the cached files of worker")
                && e.contains(&w.id.to_string())
                && e.contains("503"),
            "{e}"
        );
        assert_eq!(served.load(Ordering::SeqCst), 2 + PAGE_TRIES as usize);
    }
}
