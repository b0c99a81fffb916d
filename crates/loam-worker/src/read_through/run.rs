//! A run of pages read from the UFS as one streamed request, served to its readers as the bytes arrive and
//! cached on the side.
//!
//! - **Streaming.** A missed run is read with `Ufs::stream_pieces_of`: each page-sized piece is published
//!   to the run's readers the moment it is complete, so a cold response sends its first page while the
//!   UFS is still sending the rest of the run (before: the whole run was read, then stored, then served).
//! - **Coalescing.** A run in flight is found by (file id, generation, run number) in `inflight`; every
//!   request for a page of it waits on the same [`StreamedRun`]. Its pages are kept in order as they
//!   arrive, so a reader that joins mid-run gets exactly the bytes the first reader got, and one UFS read
//!   serves them all. The read is a task of its own: a reader that goes away (a closed connection) does
//!   not stop it, and no reader has to take over; the run (at most `ufs_read_size`) ends and is cached.
//! - **Caching on the side.** Pieces go to a store task as they arrive, which writes whatever has
//!   arrived (`put_pages_of`) while the next pieces stream in. Nothing a reader waits on depends on the
//!   store: a failed or full store is logged and the responses go on. The run leaves `inflight` once its
//!   pages are stored (a later request finds them in the store), or at once when its read failed.
//! - **Budget.** A client's run waits for room in the worker's budget of client runs before it reads,
//!   and holds it until its pages are stored (as before: then they are the memory tier's, or the
//!   responses', counted by the read-ahead budget). A load's run (no budget: the load bounds its own)
//!   can be awaited whole ([`StreamedRun::stored`]), since a load reports what it cached.
//! - **One version.** The read is pinned to the file's version tag; each piece was checked (see
//!   `Ufs::stream_pieces_of`). `Changed`, a short file or a longer one ends the run with an error for
//!   every page not yet published, and marks the record for re-validation; pages published before it are
//!   bytes of the pinned version, and the response that waits on a later page ends with the error.
//! - **Pace.** Each run reports its first-piece latency and bandwidth to `pace`, which sizes the
//!   read-ahead of that mount's streams.

use super::OpenFile;
use super::pace::Pace;
use crate::error::{WorkerError, WorkerResult};
use crate::metrics::WorkerMetrics;
use bytes::Bytes;
use futures::StreamExt;
use loam_page_store::PageStore;
use loam_ufs::UfsError;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};

/// A run in flight: the file id, the generation (version) it is read for, the run number.
type RunKey = (String, u64, u64);

/// The runs being read, shared by the read-through layer and the tasks that read them.
pub struct Runs {
    pages: Arc<PageStore>,
    metrics: WorkerMetrics,
    inflight: Mutex<HashMap<RunKey, Arc<StreamedRun>>>,
    /// Each mount's measured pace.
    pub pace: Pace,
}

/// The pages of one UFS read, published in order as they arrive.
pub struct StreamedRun {
    /// The pages read: `first..=last` (`first > last`: none were missing, nothing is read).
    first: u64,
    last: u64,
    progress: watch::Sender<Progress>,
}

#[derive(Default)]
struct Progress {
    /// The pages arrived so far, from `first` on.
    pages: Vec<Bytes>,
    /// How the read ended (`None`: still reading).
    end: Option<WorkerResult<()>>,
    /// The store has taken every page that arrived (or failed to).
    stored: bool,
}

impl StreamedRun {
    /// Page `index` once it has arrived; `None` when this run does not read it (it was cached when the
    /// run began); the read's error when it ended before the page.
    pub async fn page(&self, index: u64) -> WorkerResult<Option<Bytes>> {
        if index < self.first || index > self.last {
            return Ok(None);
        }
        let k = (index - self.first) as usize;
        let mut rx = self.progress.subscribe();
        let p = rx
            .wait_for(|p| p.pages.len() > k || p.end.is_some())
            .await
            .map_err(|_| WorkerError::Unavailable("the UFS read ended before the page arrived".into()))?;
        if let Some(b) = p.pages.get(k) {
            return Ok(Some(b.clone()));
        }
        match &p.end {
            Some(Err(e)) => Err(e.clone()),
            _ => Err(WorkerError::Unavailable(format!("page {index} was not read; retry"))),
        }
    }

    /// Waits until the read has ended and what it read is stored (or failed to be).
    pub async fn stored(&self) {
        let mut rx = self.progress.subscribe();
        let _ = rx.wait_for(|p| p.stored).await;
    }

    fn push(&self, page: Bytes) {
        self.progress.send_modify(|p| p.pages.push(page));
    }

    fn end(&self, result: WorkerResult<()>) {
        self.progress.send_modify(|p| p.end = Some(result));
    }
}

impl Runs {
    /// No runs yet; pages of `pages`, pace per mount for runs of `run_pages`, read-ahead at most `max_pages`.
    pub fn new(pages: Arc<PageStore>, metrics: WorkerMetrics, run_pages: u64, max_pages: u64) -> Arc<Self> {
        let pace = Pace::new(pages.page_size(), run_pages, max_pages);
        Arc::new(Self { pages, metrics, inflight: Mutex::new(HashMap::new()), pace })
    }

    /// Runs being read or stored now.
    pub fn in_flight(&self) -> usize {
        self.inflight.lock().len()
    }

    /// The run in flight that reads pages `[first, first + count)` of `f` (run number `first / count`),
    /// joined, or a new one started; with `budget`, its read waits for room there.
    pub fn fetch(
        self: &Arc<Self>,
        f: &OpenFile,
        first: u64,
        count: u64,
        budget: Option<&Arc<Semaphore>>,
    ) -> Arc<StreamedRun> {
        let key = (f.file_id().to_string(), f.generation, first / count.max(1));
        let mut inflight = self.inflight.lock();
        if let Some(run) = inflight.get(&key) {
            self.metrics.coalesced_reads.inc();
            return run.clone();
        }
        let run = self.start(f, first, count, budget, Some(key.clone()));
        if run.first <= run.last {
            inflight.insert(key, run.clone());
        }
        run
    }

    /// Starts reading the missing pages among `[first, first + count)`, not shared (`key: None`) or
    /// under `key` in `inflight` (which the caller inserts).
    pub fn start(
        self: &Arc<Self>,
        f: &OpenFile,
        first: u64,
        count: u64,
        budget: Option<&Arc<Semaphore>>,
        key: Option<RunKey>,
    ) -> Arc<StreamedRun> {
        let ps = self.pages.page_size();
        let last_page = f.record.length.div_ceil(ps).saturating_sub(1);
        let end = (first + count.max(1) - 1).min(last_page);
        let missing = |i: &u64| !self.pages.has_page_of(f.file_id(), f.generation, *i);
        let lo = (first..=end).find(missing);
        let hi = (first..=end).rev().find(missing);
        let (progress, _) = watch::channel(Progress::default());
        let (Some(lo), Some(hi)) = (lo, hi) else {
            // Everything arrived meanwhile (another run's read): the readers find it in the store.
            progress.send_modify(|p| {
                p.end = Some(Ok(()));
                p.stored = true;
            });
            return Arc::new(StreamedRun { first: 1, last: 0, progress });
        };
        let run = Arc::new(StreamedRun { first: lo, last: hi, progress });
        let task = Fill { runs: self.clone(), f: f.clone(), run: run.clone(), key };
        tokio::spawn(task.run(budget.cloned()));
        run
    }
}

/// The task that reads one run and stores it.
struct Fill {
    runs: Arc<Runs>,
    f: OpenFile,
    run: Arc<StreamedRun>,
    key: Option<RunKey>,
}

impl Fill {
    async fn run(self, budget: Option<Arc<Semaphore>>) {
        let pages = (self.run.last - self.run.first + 1).min(u64::from(u32::MAX)) as u32;
        let room: Option<OwnedSemaphorePermit> = match budget {
            Some(b) => match b.acquire_many_owned(pages).await {
                Ok(p) => Some(p),
                Err(_) => return self.run.end(Err(WorkerError::Unavailable("the worker is shutting down".into()))),
            },
            None => None,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let store = tokio::spawn(store(self.runs.pages.clone(), self.f.clone(), rx));
        let result = self.read(&tx).await;
        drop(tx);
        if result.is_err() {
            // Readers that come now start a read of their own rather than join a failed one.
            self.leave();
        }
        self.run.end(result);
        let _ = store.await;
        drop(room);
        // Dropped: stored (see `Drop`).
    }

    /// Streams the run from the UFS, publishing each page and handing it to the store.
    async fn read(&self, store: &mpsc::UnboundedSender<(u64, Bytes)>) -> WorkerResult<()> {
        let (f, run, pages) = (&self.f, &self.run, &self.runs.pages);
        let ps = pages.page_size();
        let id = f.file_id();
        let last_page = f.record.length.div_ceil(ps).saturating_sub(1);
        let offset = run.first * ps;
        let want = ((run.last + 1) * ps).min(f.record.length) - offset;
        // The run that ends the file asks one byte more: a file longer than its record answers it.
        let ends_file = run.last == last_page;
        let metrics = &self.runs.metrics;
        metrics.ufs_reads.inc();
        let tag = f.tag();
        let started = Instant::now();
        let mut first_piece = None;
        let mut pieces = f.ufs.stream_pieces_of(&f.record.ufs_uri, offset, want + u64::from(ends_file), &tag, ps);
        let (mut got, mut index) = (0u64, run.first);
        while let Some(piece) = pieces.next().await {
            let piece = match piece {
                Err(UfsError::Changed(m)) => {
                    // Another version is there now: the next open re-validates; this reader cannot go on.
                    pages.set_validated(id, 0);
                    return Err(WorkerError::Changed(m));
                }
                r => r?,
            };
            got += piece.len() as u64;
            first_piece.get_or_insert_with(|| started.elapsed());
            if got > want {
                pages.set_validated(id, 0);
                return Err(WorkerError::Unavailable(format!(
                    "{} is longer than its record says ({} bytes): it changed, or the length given was wrong; \
                     retry",
                    f.record.ufs_uri, f.record.length
                )));
            }
            if (piece.len() as u64) < ps && got < want {
                break; // a short piece ends the file early: reported below
            }
            metrics.ufs_read_bytes.inc_by(piece.len() as u64);
            run.push(piece.clone());
            let _ = store.send((index, piece));
            index += 1;
        }
        if got != want {
            // The object is shorter than its record says: it changed. Make the next open re-validate.
            pages.set_validated(id, 0);
            return Err(WorkerError::Unavailable(format!(
                "{} changed while it was read (expected {want} bytes at {offset}, got {got}); retry",
                f.record.ufs_uri,
            )));
        }
        if let Some(first) = first_piece {
            let rest = got.saturating_sub(ps.min(got));
            self.runs.pace.record(&f.resolved.mount.path, first, rest, started.elapsed().saturating_sub(first));
        }
        Ok(())
    }

    /// Removes the run from `inflight` (if it is still the one there).
    fn leave(&self) {
        if let Some(key) = &self.key {
            let mut inflight = self.runs.inflight.lock();
            if inflight.get(key).is_some_and(|r| Arc::ptr_eq(r, &self.run)) {
                inflight.remove(key);
            }
        }
    }
}

/// However the task ends (done, failed, or stopped: a panic, the runtime shutting down), the run is
/// taken out of `inflight` and marked stored, so that no reader waits on it for ever.
impl Drop for Fill {
    fn drop(&mut self) {
        self.leave();
        self.run.progress.send_modify(|p| {
            p.end.get_or_insert_with(|| Err(WorkerError::Unavailable("the UFS read was stopped; retry".into())));
            p.stored = true;
        });
    }
}

/// Stores pages as they come, in batches of what has arrived; a failure is logged, never passed on.
async fn store(pages: Arc<PageStore>, f: OpenFile, mut rx: mpsc::UnboundedReceiver<(u64, Bytes)>) {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, 64).await > 0 {
        let got = std::mem::take(&mut batch);
        let (lo, hi) = (got[0].0, got[got.len() - 1].0);
        if let Err(e) = pages.put_pages_of(f.file_id(), f.generation, got).await {
            loam_core::warn_limited!("could not cache pages {lo}..={hi} of {}: {e}", f.record.ufs_uri);
        }
    }
}
