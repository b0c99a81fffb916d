//! Short-circuit reads: when a worker that holds a file runs on this host (the Kubernetes layout, a
//! worker and the FUSE DaemonSet on each node), the mount reads that worker's page files itself, as
//! Curvine's and HDFS's short-circuit reads do, instead of asking for the bytes over HTTP. Any doubt
//! about a page sends that read over HTTP, as before (`files.rs`).
//!
//! - **Which worker is local.** A file's workers by the ring (primary, then replicas) are asked in turn
//!   `GET /v1/short-circuit?path=` (`loam-worker/src/http_api/short_circuit.rs`): the worker's page
//!   directories, layout version and page store *instance*, and its cached version of the file. A worker
//!   is local when its directories are readable here and each one's lock file names that instance
//!   ([`loam_page_store::LocalPages::open`], which also refuses a layout version it does not know): the
//!   proof is the directories themselves, not an address (in Kubernetes the worker's pod IP is not the
//!   FUSE pod's), and a directory at the same path that is not that live store's (another host's, another
//!   volume, an older store whose generations meant other versions) is never read. A worker found not
//!   local is not asked again by this mount (another host's stays another host's); the trusted
//!   directories are kept per instance, so a restarted local worker is checked again.
//! - **Which version.** An open file is pinned to one version (`files.rs`); the worker's cached version
//!   is used only when its version tag is the pin's, and its pages are read under that version's
//!   *generation* (`<dir>/loam-pages/v3/<id[0..2]>/<id>.<generation>.<index>.page`). Generations are in
//!   the names and page files are replaced only by rename, so a page read is the pinned version's or is
//!   missing: a replaced file's pages are deleted, and its reads fall back to HTTP, which answers `412`
//!   (`ESTALE`) as before when the version is gone. Each open asks once, at its first read.
//! - **Checks.** Every page is read whole and checked as the worker checks it (header magic, format and
//!   CRC, generation, index, page size, length, the data's CRC32) by loam-page-store's reader, so there
//!   is one copy of the format. A page that fails is not used: that read goes over HTTP, whose worker
//!   drops a corrupt page when it reads it; a missing page (evicted, or not cached yet) also goes over
//!   HTTP, which caches it again. The last page read stays with the open file, checked, so a stream of
//!   small reads reads and checks each page once.
//! - **Where a read runs.** A read within one page, once the local copy is known, is answered on the FUSE
//!   session thread that received it when its blocks are in the page cache (`preadv2` with `RWF_NOWAIT`:
//!   [`OpenShortCircuit::read_now`]); at queue depth 1 the hand-offs to the runtime, to a blocking thread
//!   and back were most of a 4 KiB read's time. A read that would wait on the disk, or spans pages, goes
//!   to the runtime and a blocking thread as before: a session thread never waits on a page's bytes from
//!   the disk (opening the page file may still read its directory entry, as any open does).
//! - **Asking again.** A file with no usable local copy (no local worker, not cached there, another
//!   version) is asked about again after [`REASK_AFTER`] reads, so a file that the HTTP reads are caching
//!   moves to short-circuit reads within the open; after that many missing pages in a row the answer is
//!   renewed too (the file may have been cached again under a new generation).
//! - **Permissions.** Page files are the worker's user's, `0600` in `0700` directories
//!   (`loam_core::private_fs`); only a mount running as that user (or root) can read them, and one that
//!   cannot falls back to HTTP. The mount's own permission checks (its file modes, `allow_other`) apply
//!   to every read as before: a short-circuit read happens only for a handle the kernel let open.
//! - **Off.** `short-circuit = false` (`settings.rs`) turns all of this off.

use crate::metrics::FuseMetrics;
use bytes::{Bytes, BytesMut};
use loam_client::membership::WorkerEndpoint;
use loam_client::reader::encode_query;
use loam_client::{Client, VersionPin};
use loam_core::worker_api::{SHORT_CIRCUIT_API_VERSION, SHORT_CIRCUIT_PATH, ShortCircuitFile, ShortCircuitInfo};
use loam_page_store::{LocalPages, LocalReadError, Wait};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Reads without a usable local copy before a file's worker is asked again, and missing pages in a row
/// before its answer is renewed.
pub const REASK_AFTER: u32 = 32;

/// Why a read went over HTTP instead: the `reason` label of the fallback counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fallback {
    /// None of the file's workers runs on this host.
    NoLocalWorker,
    /// The local worker's directories could not be trusted or read (another instance, permissions, a
    /// layout this build does not know, no disk tier).
    Directories,
    /// The local worker holds no record of the file.
    NotCached,
    /// The local worker holds another version than the open file's.
    Version,
    /// Asking the local worker failed.
    Ask,
    /// The page file is missing (evicted, or not cached yet).
    Missing,
    /// The page file failed a check (header, checksum, length) or is another page.
    Corrupt,
    /// Reading the page file failed.
    Io,
}

impl Fallback {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Fallback::NoLocalWorker => "no_local_worker",
            Fallback::Directories => "directories",
            Fallback::NotCached => "not_cached",
            Fallback::Version => "version",
            Fallback::Ask => "ask",
            Fallback::Missing => "missing",
            Fallback::Corrupt => "corrupt",
            Fallback::Io => "io",
        }
    }

    fn of(e: &LocalReadError) -> Self {
        match e {
            LocalReadError::Missing => Fallback::Missing,
            LocalReadError::Corrupt(_) | LocalReadError::Mismatch(_) => Fallback::Corrupt,
            // (`WouldBlock` comes only from `read_now`, which never counts it as a fallback)
            LocalReadError::Io(_) | LocalReadError::WouldBlock => Fallback::Io,
            LocalReadError::UnknownLayout(_) | LocalReadError::NotThisStore(_) => Fallback::Directories,
        }
    }
}

/// The mount's short-circuit reader: which workers are local, and the trusted directories per page store
/// instance.
pub struct ShortCircuit {
    client: Client,
    metrics: Arc<FuseMetrics>,
    /// By worker (its HTTP base): whether its directories proved readable here.
    local: Mutex<HashMap<String, bool>>,
    stores: Mutex<HashMap<String, Option<Arc<LocalPages>>>>,
}

impl ShortCircuit {
    /// Short-circuit reads through `client`'s ring, counted in `metrics`.
    pub fn new(client: Client, metrics: Arc<FuseMetrics>) -> Arc<Self> {
        Arc::new(Self { client, metrics, local: Mutex::default(), stores: Mutex::default() })
    }

    /// The state of one open file of `uri`.
    pub fn open(self: &Arc<Self>, uri: Arc<str>) -> OpenShortCircuit {
        OpenShortCircuit { sc: self.clone(), uri, state: Mutex::new(State::default()), ask: Default::default() }
    }

    /// The local worker's copy of `uri` in version `tag`, or why there is none.
    async fn find(&self, uri: &str, tag: &str) -> Result<Target, Fallback> {
        let mut why = Fallback::NoLocalWorker;
        for w in self.client.candidates(uri) {
            let base = w.http_base();
            if self.local.lock().get(&base) == Some(&false) {
                continue;
            }
            match self.ask(&w, uri, tag).await {
                Ok(t) => return Ok(t),
                Err(Fallback::Directories) => {
                    self.local.lock().insert(base, false);
                }
                Err(e) => why = e,
            }
        }
        Err(why)
    }

    async fn ask(&self, w: &WorkerEndpoint, uri: &str, tag: &str) -> Result<Target, Fallback> {
        let q = format!("{SHORT_CIRCUIT_PATH}?path={}", encode_query(uri));
        let info: ShortCircuitInfo = self.client.worker_json(w, &q).await.map_err(|e| {
            tracing::debug!("short-circuit: asking {} about {uri}: {e}", w.id);
            Fallback::Ask
        })?;
        if info.version != SHORT_CIRCUIT_API_VERSION {
            return Err(Fallback::Ask);
        }
        let file = info.file.clone();
        let pages = self.pages(w, info).await.ok_or(Fallback::Directories)?;
        self.local.lock().insert(w.http_base(), true);
        let file = file.ok_or(Fallback::NotCached)?;
        if file.version_tag != tag {
            return Err(Fallback::Version);
        }
        Ok(Target { pages, file })
    }

    /// The trusted directories of the store `info` describes (checked once per instance).
    async fn pages(&self, w: &WorkerEndpoint, info: ShortCircuitInfo) -> Option<Arc<LocalPages>> {
        if let Some(known) = self.stores.lock().get(&info.instance) {
            return known.clone();
        }
        let dirs: Vec<PathBuf> = info.dirs.iter().map(PathBuf::from).collect();
        let (layout, instance) = (info.layout.clone(), info.instance.clone());
        let opened = tokio::task::spawn_blocking(move || LocalPages::open(&layout, &dirs, &instance)).await.ok()?;
        let pages = match opened {
            Ok(p) => {
                tracing::info!("short-circuit reads from worker {} in {:?}", w.id, info.dirs);
                Some(Arc::new(p))
            }
            Err(e) => {
                tracing::debug!("no short-circuit reads from worker {} ({:?}): {e}", w.id, info.dirs);
                None
            }
        };
        self.stores.lock().insert(info.instance, pages.clone());
        pages
    }
}

/// A local copy of one version of a file.
#[derive(Clone)]
struct Target {
    pages: Arc<LocalPages>,
    file: ShortCircuitFile,
}

#[derive(Default)]
struct State {
    target: Option<Target>,
    /// Reads left before asking again, and why the last ask found nothing.
    wait: Option<(u32, Fallback)>,
    /// Missing pages in a row.
    missing: u32,
    /// The last page read, checked: (index, data).
    last: Option<(u64, Bytes)>,
}

/// One open file's short-circuit reads.
pub struct OpenShortCircuit {
    sc: Arc<ShortCircuit>,
    uri: Arc<str>,
    state: Mutex<State>,
    /// Held by the read that asks the workers.
    ask: tokio::sync::Mutex<()>,
}

impl OpenShortCircuit {
    /// `[off, off + len)` of version `pin` from the local worker's page files (shorter at the end of the
    /// file), or `None`: the caller reads it over HTTP. Counts the read or its fallback.
    pub async fn read(&self, pin: &VersionPin, off: u64, len: u64) -> Option<Bytes> {
        let m = &self.sc.metrics;
        match self.try_read(pin, off, len).await {
            Ok(bytes) => {
                m.short_circuit_read(bytes.len(), false);
                Some(bytes)
            }
            Err(why) => {
                m.short_circuit_fallback(why);
                None
            }
        }
    }

    /// A read served on the calling thread — the FUSE session's — without the hops to the runtime and
    /// to a blocking thread and back (at queue depth 1 those hand-offs were most of a 4 KiB read's time):
    /// when the local copy is already known and the read lies in one page, either the page kept from the
    /// last read or a part whose blocks are in the page cache (`LocalPages::read_part` with `Wait::Cached`, the same
    /// checks). `None`: not tried here, or it would wait on the disk — the caller takes
    /// [`OpenShortCircuit::read`]'s way, which reads it on a thread that may wait. `Some(None)`: tried and
    /// failed, counted as a fallback — the caller reads over HTTP. `Some(Some(_))`: the bytes, counted.
    pub fn read_now(&self, off: u64, len: u64) -> Option<Option<Bytes>> {
        let (t, kept) = {
            let s = self.state.lock();
            (s.target.clone()?, s.last.clone())
        };
        let (page, length) = (t.file.page_size, t.file.length);
        let end = off.saturating_add(len).min(length);
        if off >= end || off / page != (end - 1) / page {
            return None;
        }
        let index = off / page;
        let part = (off - index * page) as usize..(end - index * page) as usize;
        let read = match kept {
            Some((at, data)) if at == index && part.end <= data.len() => Ok(data.slice(part)),
            _ if end - off >= page.min(length - index * page) => return None, // a whole page: kept by the async way
            _ => t.pages.read_part(&t.file.file_id, t.file.generation, index, page, length, part, Wait::Cached),
        };
        let m = &self.sc.metrics;
        match read {
            Ok(bytes) => {
                m.short_circuit_read(bytes.len(), true);
                Some(Some(bytes))
            }
            Err(LocalReadError::WouldBlock) => None,
            Err(e) => {
                m.short_circuit_fallback(self.failed(&e, off, len));
                Some(None)
            }
        }
    }

    /// The local copy reads use, asking for it when due. One read asks at a time; the reads that arrive
    /// meanwhile wait for its answer rather than ask too.
    async fn target(&self, pin: &VersionPin) -> Result<Target, Fallback> {
        if let Some(known) = self.known() {
            return known;
        }
        let _asking = self.ask.lock().await;
        if let Some(known) = self.known() {
            return known;
        }
        // An open whose inode names no version (none is known yet) reads over HTTP, which pins one.
        let found = match pin.get() {
            Some(tag) => self.sc.find(&self.uri, &tag).await,
            None => Err(Fallback::Version),
        };
        let mut s = self.state.lock();
        match &found {
            Ok(t) => (s.target, s.wait, s.missing) = (Some(t.clone()), None, 0),
            Err(why) => s.wait = Some((REASK_AFTER, *why)),
        }
        found
    }

    /// The local copy, or why there is none while it is not time to ask again; `None` when it is.
    fn known(&self) -> Option<Result<Target, Fallback>> {
        let mut s = self.state.lock();
        if let Some(t) = &s.target {
            return Some(Ok(t.clone()));
        }
        match &mut s.wait {
            Some((left, why)) if *left > 0 => {
                *left -= 1;
                Some(Err(*why))
            }
            _ => None,
        }
    }

    async fn try_read(&self, pin: &VersionPin, off: u64, len: u64) -> Result<Bytes, Fallback> {
        let t = self.target(pin).await?;
        let (page, length) = (t.file.page_size, t.file.length);
        let end = off.saturating_add(len).min(length);
        if off >= end {
            return Ok(Bytes::new());
        }
        let (first, last) = (off / page, (end - 1) / page);
        let cached = self.state.lock().last.clone();
        let pages = t.pages.clone();
        let file = t.file.clone();
        // Less than one page, not the page kept from the last read: its checksum blocks alone are read
        // and checked (a random 4 KiB read does not read and check a whole page).
        let whole = page.min(length - first * page);
        if first == last && end - off < whole && cached.as_ref().is_none_or(|(at, _)| *at != first) {
            let part = (off - first * page) as usize..(end - first * page) as usize;
            let read = tokio::task::spawn_blocking(move || {
                pages.read_part(&file.file_id, file.generation, first, file.page_size, file.length, part, Wait::Block)
            })
            .await
            .map_err(|_| Fallback::Io)?;
            return read.map_err(|e| self.failed(&e, off, len));
        }
        let read = tokio::task::spawn_blocking(move || {
            (first..=last)
                .map(|i| match &cached {
                    Some((at, data)) if *at == i => Ok((i, data.clone())),
                    _ => {
                        pages.read_page(&file.file_id, file.generation, i, file.page_size, file.length).map(|d| (i, d))
                    }
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|_| Fallback::Io)?;
        let pages = match read {
            Ok(p) => p,
            Err(e) => return Err(self.failed(&e, off, len)),
        };
        let mut s = self.state.lock();
        s.missing = 0;
        s.last = pages.last().cloned();
        drop(s);
        Ok(join(&pages, off, end, page))
    }

    /// Why a local read failed; after too many missing pages in a row (or any other failure) the local
    /// copy is asked for again.
    fn failed(&self, e: &LocalReadError, off: u64, len: u64) -> Fallback {
        let why = Fallback::of(e);
        tracing::debug!("short-circuit read of {} at {off} (+{len}) goes over HTTP: {e}", self.uri);
        let mut s = self.state.lock();
        s.missing = if why == Fallback::Missing { s.missing + 1 } else { REASK_AFTER };
        if s.missing >= REASK_AFTER {
            (s.target, s.missing) = (None, 0);
        }
        why
    }
}

/// The bytes `[off, end)` of consecutive `pages` of `page` bytes each (the first holding `off`).
fn join(pages: &[(u64, Bytes)], off: u64, end: u64, page: u64) -> Bytes {
    let slice = |(i, d): &(u64, Bytes)| {
        let start = i * page;
        let from = off.max(start) - start;
        let to = (end.min(start + d.len() as u64) - start).max(from);
        d.slice(from as usize..to as usize)
    };
    if let [one] = pages {
        return slice(one);
    }
    let mut buf = BytesMut::with_capacity((end - off) as usize);
    for p in pages {
        buf.extend_from_slice(&slice(p));
    }
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_is_cut_from_the_pages_that_hold_it() {
        let pages = vec![(2, Bytes::from_static(b"abcd")), (3, Bytes::from_static(b"ef"))];
        assert_eq!(&join(&pages, 9, 13, 4)[..], b"bcde");
        assert_eq!(&join(&pages, 8, 14, 4)[..], b"abcdef");
        assert_eq!(&join(&pages[..1], 9, 10, 4)[..], b"b");
    }
}
