//! A rebalance's plan: what each target worker must load, keep and prune, made once per job, stored in the
//! cluster store (`super::stored`, the truth) and cached in a file on the leading Coordinator's disk
//! (`<data_dir>/jobs/<id>.plan`, which the runner reads), so that the job's cursor indexes the same items
//! whenever and wherever it resumes.
//!
//! - **Holders** (`super::holders`). Every live worker lists its cached files (`/v1/internal/cached_files`,
//!   a page at a time). For a live worker that cannot answer its first page, the global file index (when
//!   enabled) says what it holds: such hints serve only as copy sources (a wrong one costs one failed copy
//!   attempt, after which the target reads the UFS). One that stops answering after its first page fails
//!   the plan.
//! - **Ownership** is clear-stale's rule: a worker owns a file when it is among the first `replicas`
//!   owners the ring of the live workers gives the file's UFS URI. The files considered are the ones
//!   cached somewhere: a rebalance moves cache, it does not load what nobody holds.
//! - **Items.** For each target and each cached file: owned and held → `keep` (only its missing pages are
//!   loaded; a complete one counts as preserved); owned and not held → `load`; held and not owned →
//!   `prune` (unless `skipPrune`). `load`/`keep` items name a `source`, a live worker that holds the file
//!   (spread over the holders by a hash of the URI). All loads come before all prunes, and the runner
//!   finishes the loads before it starts pruning, so a file is copied before its old holder drops it.
//! - **Memory.** No map of every cached file, no worker's whole list and no list of every item is held:
//!   the workers' listings, each ascending, are merged in URI order a page at a time (a heap over their
//!   heads, with the file index's hints merged in as one more sorted source), and each item is written as
//!   it is made — loads straight to the plan file, prunes to a side file appended after them; the header,
//!   which counts them, is written last over a blank line of its greatest length (JSON allows the trailing
//!   spaces). What stays is two pages per worker, about [`super::holders::LISTED_AT_ONCE`] names in all
//!   (`loam-bench scale` measures the Coordinator's peak while it plans).
//! - **File format.** JSON lines: a header `{"version", "job", "items", "loads", "plan"}` (`plan`: a UUID
//!   per plan, also in the record's `PlanSummary`), then one item per line, in plan order. It is written to
//!   a temporary name and renamed, so a plan file is whole or absent. The stored plan is these bytes.
//! - **Resume** ([`restore`]): the stored plan, when there is one, is written over the local file; else the
//!   local file is used (a plan too large for the store, on the Coordinator that made it). A plan that is
//!   missing, damaged, or not the record's (another `plan` id, item count or job) is made again (see
//!   `super::run`).

use super::holders::{self, Holders, Listing, Merge, Pager};
use super::stored::{self, Saved};
use crate::jobs::ctx::JobsCtx;
use crate::jobs::listing::{FileMeta, Listed};
use crate::jobs::record::{ALL, PlanSummary, RebalanceState};
use crate::jobs::workers::ring;
use futures::stream::{self, BoxStream, StreamExt};
use loam_client::WorkerEndpoint;
use loam_core::WorkerId;
use loam_store::StoreError;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::AsyncBufReadExt;

/// Version of the plan file.
pub const PLAN_FILE_VERSION: u32 = 1;

#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Header {
    version: u32,
    job: String,
    items: u64,
    loads: u64,
    /// The plan's id (a UUID; empty in files written before plans had one), also in the record's summary.
    #[serde(default)]
    plan: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Action {
    Load,
    Keep,
    Prune,
}

#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Item {
    worker: String,
    uri: String,
    action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source: Option<String>,
}

/// `<data_dir>/jobs/<id>.plan`.
pub fn plan_path(ctx: &JobsCtx, id: &str) -> PathBuf {
    ctx.data_dir.join("jobs").join(format!("{id}.plan"))
}

/// Makes job `id`'s plan over the `live` workers and writes it to `path`.
pub async fn make(
    ctx: &JobsCtx,
    id: &str,
    state: &RebalanceState,
    live: &[WorkerEndpoint],
    path: &Path,
) -> Result<PlanSummary, String> {
    let limit = holders::page_limit(live.len());
    let firsts = futures::future::join_all(live.iter().map(|w| ctx.workers.cached_files_page(w, None, limit))).await;
    let mut listed: Vec<(WorkerId, Box<dyn Listing>)> = Vec::new();
    let mut hinted: BTreeMap<String, Vec<WorkerId>> = BTreeMap::new();
    let mut silent: HashMap<String, (WorkerId, String)> = HashMap::new();
    for (w, first) in live.iter().zip(firsts) {
        match first {
            Ok(first) => listed.push((w.id, Box::new(Pager::new(ctx.workers.clone(), w.clone(), limit, first)))),
            Err(e) => {
                tracing::warn!(job = %id, "rebalance planning: {e}");
                silent.insert(w.id.to_string(), (w.id, e.to_string()));
            }
        }
    }
    if let Some(index) = ctx.file_index.as_ref().filter(|i| i.enabled() && !silent.is_empty()) {
        for uri in index.list("", 0, None).unwrap_or_default() {
            for w in index.locate(&uri).ok().flatten().unwrap_or_default() {
                if let Some((wid, _)) = silent.get(&w) {
                    hinted.entry(uri.clone()).or_default().push(*wid);
                }
            }
        }
    }
    let mut unreachable = BTreeMap::new();
    let targets: Vec<WorkerId> = if state.target == ALL {
        live.iter().map(|w| w.id).collect()
    } else {
        live.iter().filter(|w| w.id.to_string() == state.target).map(|w| w.id).collect()
    };
    if targets.is_empty() && state.target != ALL {
        unreachable.insert(state.target.clone(), "the worker is not live".to_string());
    }
    let targets: Vec<WorkerId> = targets
        .into_iter()
        .filter(|t| match silent.get(&t.to_string()) {
            Some((_, e)) => {
                unreachable.insert(t.to_string(), format!("cannot list its cached files: {e}"));
                false
            }
            None => true,
        })
        .collect();
    let input = Input {
        job: id.to_string(),
        ring_workers: live.to_vec(),
        replicas: state.options.replicas.max(1) as usize,
        skip_prune: state.options.skip_prune,
        targets,
        listed,
        hinted,
        path: path.to_path_buf(),
    };
    let mut summary = tokio::task::spawn_blocking(move || input.write())
        .await
        .map_err(|e| format!("planning failed: {e}"))?
        .map_err(|e| match e {
            Unmade::Listing(e) => e,
            Unmade::Io(e) => format!("cannot write the plan file {}: {e}", path.display()),
        })?;
    summary.unreachable = unreachable;
    match stored::save(&ctx.fence, &ctx.cluster, id, &summary.plan, path).await {
        Ok(Saved::Stored) => {}
        Ok(Saved::TooLarge(n)) => tracing::warn!(
            job = %id,
            "the plan ({n} bytes) is over {} bytes: it is kept only on this Coordinator's disk, and a job \
             resumed by another Coordinator plans again",
            stored::MAX_STORED_PLAN_BYTES
        ),
        // Today's behaviour (a plan on this disk only) rather than a failed job; a deposed leader's
        // runner is being stopped anyway.
        Err(e) => tracing::warn!(job = %id, "cannot store the plan (only this Coordinator's disk has it): {e}"),
    }
    Ok(summary)
}

/// Why [`restore`] found no usable plan.
#[derive(Debug, thiserror::Error)]
pub enum Unusable {
    /// The store did not answer: the plan may be fine, so the caller retries rather than plan again.
    #[error("cannot read the stored plan: {0}")]
    Store(StoreError),
    /// No plan, or not the job's: the job plans again.
    #[error("{0}")]
    Plan(String),
}

/// Makes job `id`'s plan file at `path` usable for `summary`: the stored plan when there is one (written
/// to `path`, which only caches it), else the file already at `path` (a plan too large for the store, on
/// the Coordinator that made it).
pub async fn restore(ctx: &JobsCtx, path: &Path, id: &str, summary: &PlanSummary) -> Result<(), Unusable> {
    let found = stored::load(ctx.store.as_ref(), &ctx.cluster, id).await.map_err(|e| match e {
        stored::LoadError::Store(e) => Unusable::Store(e),
        e @ stored::LoadError::Damaged(_) => Unusable::Plan(e.to_string()),
    })?;
    match found {
        Some((header, bytes)) => {
            if header.plan != summary.plan {
                let e = format!("the stored plan {} is not the job's plan {}", header.plan, summary.plan);
                return Err(Unusable::Plan(e));
            }
            let path = path.to_path_buf();
            let written = tokio::task::spawn_blocking(move || write_atomically(&path, &bytes)).await;
            let cached = written.map_err(|e| e.to_string()).and_then(|r| r.map_err(|e| e.to_string()));
            cached.map_err(|e| Unusable::Plan(format!("cannot cache the stored plan: {e}")))?;
        }
        None => tracing::debug!(job = %id, "no stored plan: trying the plan file on this disk"),
    }
    check(path, id, summary).await.map_err(Unusable::Plan)
}

/// Writes `bytes` to a temporary name beside `path` and renames it, so the file is whole or absent.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        loam_core::private_fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("plan.tmp");
    let mut f = loam_core::private_fs::create_file(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// What the (blocking) computation of the items needs.
struct Input {
    job: String,
    ring_workers: Vec<WorkerEndpoint>,
    replicas: usize,
    skip_prune: bool,
    targets: Vec<WorkerId>,
    /// Each answering worker's listing of its cached files.
    listed: Vec<(WorkerId, Box<dyn Listing>)>,
    /// Files the file index says silent workers hold.
    hinted: BTreeMap<String, Vec<WorkerId>>,
    path: PathBuf,
}

/// Why a plan was not made.
#[derive(Debug, thiserror::Error)]
enum Unmade {
    #[error("{0}")]
    Listing(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Input {
    /// Writes the plan; a plan not made leaves no file behind.
    fn write(self) -> Result<PlanSummary, Unmade> {
        let temporaries = [self.path.with_extension("plan.tmp"), self.path.with_extension("prunes.tmp")];
        let made = self.write_items();
        if made.is_err() {
            temporaries.iter().for_each(|t| drop(std::fs::remove_file(t)));
        }
        made
    }

    fn write_items(self) -> Result<PlanSummary, Unmade> {
        let ring = ring(&self.ring_workers);
        let targets: HashSet<WorkerId> = self.targets.iter().copied().collect();
        let mut workers: BTreeMap<String, u64> = self.targets.iter().map(|t| (t.to_string(), 0)).collect();
        let plan = uuid::Uuid::new_v4().to_string();
        // The header's room: its longest form, with counts of 20 digits.
        let room = header_json(&self.job, u64::MAX, u64::MAX, &plan)?.len();
        if let Some(dir) = self.path.parent() {
            loam_core::private_fs::create_dir_all(dir)?;
        }
        let tmp = self.path.with_extension("plan.tmp");
        let prunes_tmp = self.path.with_extension("prunes.tmp");
        let mut out = BufWriter::new(loam_core::private_fs::create_file(&tmp)?);
        out.write_all(&vec![b' '; room])?;
        out.write_all(b"\n")?;
        let mut prune_out = BufWriter::new(loam_core::private_fs::create_file(&prunes_tmp)?);
        let (mut loads, mut prunes) = (0u64, 0u64);
        for merged in Merge::new(self.listed, self.hinted) {
            let (uri, h) = merged.map_err(Unmade::Listing)?;
            let owners: Vec<WorkerId> = ring.lookup(&uri, self.replicas).into_iter().map(|(_, w)| w.id).collect();
            let mut mine: Vec<(WorkerId, bool)> =
                owners.iter().filter(|o| targets.contains(o)).map(|o| (*o, true)).collect();
            if !self.skip_prune {
                mine.extend(
                    h.listed.iter().filter(|w| targets.contains(w) && !owners.contains(w)).map(|w| (*w, false)),
                );
            }
            for (t, owns) in mine {
                *workers.entry(t.to_string()).or_default() += 1;
                let worker = t.to_string();
                if owns {
                    let action = if h.listed.contains(&t) { Action::Keep } else { Action::Load };
                    let source = pick_source(&uri, &h, t).map(|s| s.to_string());
                    write_item(&mut out, &Item { worker, uri: uri.clone(), action, source })?;
                    loads += 1;
                } else {
                    write_item(
                        &mut prune_out,
                        &Item { worker, uri: uri.clone(), action: Action::Prune, source: None },
                    )?;
                    prunes += 1;
                }
            }
        }
        // All loads come before all prunes.
        drop(prune_out.into_inner().map_err(|e| e.into_error())?);
        // Written write-only (a private file); read back through a read-only handle.
        std::io::copy(&mut std::fs::File::open(&prunes_tmp)?, &mut out)?;
        std::fs::remove_file(&prunes_tmp)?;
        let header = Header { version: PLAN_FILE_VERSION, job: self.job, items: loads + prunes, loads, plan };
        let mut line = header_json(&header.job, header.items, header.loads, &header.plan)?;
        line.resize(room, b' ');
        let mut file = out.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&line)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        Ok(PlanSummary {
            items: header.items,
            loads: header.loads,
            workers,
            unreachable: BTreeMap::new(),
            plan: header.plan,
        })
    }
}

/// The plan file's header line (without its newline).
fn header_json(job: &str, items: u64, loads: u64, plan: &str) -> std::io::Result<Vec<u8>> {
    let header = Header { version: PLAN_FILE_VERSION, job: job.to_string(), items, loads, plan: plan.to_string() };
    Ok(serde_json::to_vec(&header)?)
}

fn write_item(out: &mut impl Write, item: &Item) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, item)?;
    out.write_all(b"\n")
}

/// A holder other than `target` to copy `uri` from: one whose own list has it if any, else a hinted one.
fn pick_source(uri: &str, h: &Holders, target: WorkerId) -> Option<WorkerId> {
    let pick = |ws: &[WorkerId]| {
        let others: Vec<WorkerId> = ws.iter().copied().filter(|w| *w != target).collect();
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        uri.hash(&mut hasher);
        // Spreads the copies of a many-replica file over its holders.
        (!others.is_empty()).then(|| others[(hasher.finish() % others.len() as u64) as usize])
    };
    pick(&h.listed).or_else(|| pick(&h.hinted))
}

/// Opens job `id`'s plan file, which must match `summary`; `Err` says why it cannot be used.
pub async fn check(path: &Path, id: &str, summary: &PlanSummary) -> Result<(), String> {
    let file = tokio::fs::File::open(path).await.map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut first = String::new();
    tokio::io::BufReader::new(file).read_line(&mut first).await.map_err(|e| e.to_string())?;
    let header: Header = serde_json::from_str(&first).map_err(|e| format!("unreadable plan header: {e}"))?;
    let want = Header {
        version: PLAN_FILE_VERSION,
        job: id.to_string(),
        items: summary.items,
        loads: summary.loads,
        plan: summary.plan.clone(),
    };
    if header != want {
        return Err(format!("the plan file does not match the job ({header:?}, expected {want:?})"));
    }
    Ok(())
}

/// Items `[from, to)` of the plan file at `path` as events, their workers and sources resolved to the
/// `live` endpoints (a worker not live has none).
pub fn events(
    path: &Path,
    from: u64,
    to: u64,
    live: Arc<HashMap<String, WorkerEndpoint>>,
) -> BoxStream<'static, Listed> {
    let path = path.to_path_buf();
    let shown = path.display().to_string();
    stream::once(async move {
        let file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) => {
                let error = format!("cannot open the plan file: {e}");
                return stream::iter([Listed::Error { path: path.display().to_string(), error }]).boxed();
            }
        };
        let lines = tokio::io::BufReader::new(file).lines();
        // The header is line 0; item `i` is line `i + 1`.
        stream::unfold(lines, |mut lines| async move {
            let line = lines.next_line().await.transpose()?;
            Some((line, lines))
        })
        .skip(from as usize + 1)
        .take((to - from) as usize)
        .map(move |line| to_event(line, &live, &shown))
        .boxed()
    })
    .flatten()
    .boxed()
}

fn to_event(line: std::io::Result<String>, live: &HashMap<String, WorkerEndpoint>, path: &str) -> Listed {
    let item: Item =
        match line.map_err(|e| e.to_string()).and_then(|l| serde_json::from_str(&l).map_err(|e| e.to_string())) {
            Ok(i) => i,
            Err(e) => return Listed::Error { path: path.to_string(), error: format!("unreadable plan item: {e}") },
        };
    let source = item.source.as_ref().and_then(|s| live.get(s)).map(|w| w.http_base());
    let meta = FileMeta { source, held: item.action == Action::Keep, ..FileMeta::default() };
    Listed::Assigned { endpoint: live.get(&item.worker).cloned(), uri: item.uri, worker: item.worker, meta }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(port: u16) -> WorkerEndpoint {
        WorkerEndpoint { id: WorkerId::random(), host: "127.0.0.1".into(), http_port: port, s3_port: 0, tls: false }
    }

    /// Job `j` over `a` and `b`, both targets, one replica; `a` lists `listing`, `b` nothing.
    fn two_workers(a: &WorkerEndpoint, b: &WorkerEndpoint, listing: Box<dyn Listing>, path: &Path) -> Input {
        Input {
            job: "j".into(),
            ring_workers: vec![a.clone(), b.clone()],
            replicas: 1,
            skip_prune: false,
            targets: vec![a.id, b.id],
            listed: vec![(a.id, listing)],
            hinted: BTreeMap::new(),
            path: path.to_path_buf(),
        }
    }

    #[tokio::test]
    async fn plans_loads_before_prunes_and_reads_back_any_range() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (endpoint(1), endpoint(2));
        let ring = ring(&[a.clone(), b.clone()]);
        let uris: Vec<String> = (0..30).map(|i| format!("s3://b/f{i}")).collect();
        // Everything is on `a`: `b` must load its files from `a`, and `a` must prune them.
        let mut listed_by_a = uris.clone();
        listed_by_a.reverse();
        let path = dir.path().join("x.plan");
        let input = two_workers(&a, &b, Box::new(super::holders::Sorted::new(listed_by_a)), &path);
        let summary = input.write().unwrap();
        let on_b = uris.iter().filter(|u| ring.primary(u).unwrap().1.id == b.id).count() as u64;
        assert!(on_b > 0 && on_b < 30);
        assert_eq!((summary.items, summary.loads), (30 + on_b, 30));
        assert_eq!(summary.workers[&b.id.to_string()], on_b);
        check(&path, "j", &summary).await.unwrap();
        assert!(check(&path, "other", &summary).await.is_err());
        let live: Arc<HashMap<String, WorkerEndpoint>> =
            Arc::new([(a.id.to_string(), a.clone())].into_iter().collect());
        let all: Vec<Listed> = events(&path, 0, summary.items, live.clone()).collect().await;
        assert_eq!(all.len() as u64, summary.items);
        for (i, ev) in all.iter().enumerate() {
            let Listed::Assigned { worker, endpoint, meta, .. } = ev else { panic!("{ev:?}") };
            let loading = (i as u64) < summary.loads;
            if *worker == b.id.to_string() {
                assert!(loading && endpoint.is_none(), "b is not live here");
                assert_eq!(meta.source.as_deref(), Some(a.http_base().as_str()), "copied from a");
            } else {
                assert_eq!(meta.held, loading, "a keeps what it owns, prunes the rest");
            }
        }
        let tail: Vec<Listed> = events(&path, summary.loads, summary.items, live).collect().await;
        assert_eq!(tail, all[summary.loads as usize..].to_vec());
        // The header was written last, over its room: one JSON line, padded.
        let text = std::fs::read_to_string(&path).unwrap();
        let first = text.lines().next().unwrap();
        assert!(first.starts_with('{') && serde_json::from_str::<Header>(first).is_ok(), "{first:?}");
        assert_eq!(text.lines().count() as u64, summary.items + 1);
        assert!(!dir.path().join("x.prunes.tmp").exists() && !dir.path().join("x.plan.tmp").exists());
    }

    /// A listing whose worker stops answering after its first files.
    struct Cut(std::vec::IntoIter<String>);

    impl Listing for Cut {
        fn next_file(&mut self) -> Result<Option<String>, String> {
            self.0.next().map(Some).ok_or_else(|| "worker w stopped answering".to_string())
        }
    }

    #[test]
    fn a_listing_cut_midway_makes_no_plan_and_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (endpoint(1), endpoint(2));
        let path = dir.path().join("x.plan");
        let cut: Vec<String> = (0..10).map(|i| format!("s3://b/f{i}")).collect();
        let input = two_workers(&a, &b, Box::new(Cut(cut.into_iter())), &path);
        match input.write() {
            Err(Unmade::Listing(e)) => assert_eq!(e, "worker w stopped answering"),
            other => panic!("{other:?}"),
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "neither the plan nor its temporaries");
    }
}
