//! Open files and their reads. A read goes through [`Client::read_pinned`]: the file's worker by the
//! ring, then its replicas, then the UFS, resuming mid-stream on the next one when a worker fails, so a
//! worker dying under a `dd` costs a reconnect. Every read of one open file is pinned to one version of
//! it ([`VersionPin`]): the version its inode stands for (`inodes.rs`), whose size the kernel holds and
//! clamps reads to, so the bytes a handle serves and the length the kernel lets through are one
//! version's. Once that version is replaced in the UFS, reads of the handle fail with `ESTALE` unless a
//! worker still holds it, instead of returning another version's bytes; an `open` after the path's next
//! lookup reads the new version. Sequential reads are served from read-ahead windows
//! (`readahead.rs`): each window is one background read task whose result is shared by the reads that
//! need it, and is aborted once neither the read-ahead state nor a waiting read holds it.
//!
//! Where a worker on this host holds the pinned version, a read is served from its page files first
//! (`short_circuit.rs`, off with `short-circuit = false`) and goes the HTTP way above only when that
//! fails; short-circuit reads start no read-ahead windows (a local page file needs none).

use crate::error::errno_of;
use crate::readahead::{ReadAhead, ReadAheadConfig};
use crate::short_circuit::OpenShortCircuit;
use bytes::{Bytes, BytesMut};
use fuser::Errno;
use futures::StreamExt;
use loam_client::{Client, ClientError, VersionPin};
use parking_lot::Mutex;
use std::ops::Range;
use std::sync::Arc;
use tokio::sync::watch;

/// What a window's read produced (the error as text: it is only logged).
type WindowResult = Option<Result<Bytes, String>>;

/// Aborts a window's read task when the last holder lets go.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A read-ahead window in flight or done.
#[derive(Clone)]
pub struct Window {
    data: watch::Receiver<WindowResult>,
    _task: Arc<AbortOnDrop>,
}

/// An open file.
pub struct OpenFile {
    uri: Arc<str>,
    path: String,
    pin: VersionPin,
    readahead: Mutex<ReadAhead<Window>>,
    short_circuit: Option<OpenShortCircuit>,
}

/// Reads `[off, off + len)` of version `pin` of `uri` into one buffer (shorter at the end of the file).
pub async fn fetch(client: &Client, uri: &str, off: u64, len: u64, pin: &VersionPin) -> Result<Bytes, ClientError> {
    let mut body = client.read_pinned(uri, off, len, pin.clone());
    let Some(first) = body.next().await.transpose()? else { return Ok(Bytes::new()) };
    if first.len() as u64 >= len {
        return Ok(first);
    }
    let mut buf = BytesMut::with_capacity(usize::try_from(len).unwrap_or(usize::MAX).min(64 << 20));
    buf.extend_from_slice(&first);
    while let Some(chunk) = body.next().await {
        buf.extend_from_slice(&chunk?);
    }
    Ok(buf.freeze())
}

fn start_window(client: &Client, uri: &Arc<str>, pin: &VersionPin, range: Range<u64>) -> Window {
    let (tx, data) = watch::channel(None);
    let (client, uri, pin) = (client.clone(), uri.clone(), pin.clone());
    let task = tokio::spawn(async move {
        let r = fetch(&client, &uri, range.start, range.end - range.start, &pin).await.map_err(|e| e.to_string());
        let _ = tx.send(Some(r));
    });
    Window { data, _task: Arc::new(AbortOnDrop(task.abort_handle())) }
}

/// The bytes of `[off, end)` from `windows` (which cover it, in order), or `None` when a window
/// failed or came back short (the file changed): the caller then reads the range itself.
async fn from_windows(windows: Vec<(Range<u64>, Window)>, off: u64, end: u64) -> Option<Bytes> {
    let mut parts = Vec::with_capacity(windows.len());
    for (range, w) in windows {
        let mut rx = w.data.clone();
        let bytes = match &*rx.wait_for(Option::is_some).await.ok()? {
            Some(Ok(b)) => b.clone(),
            Some(Err(e)) => {
                tracing::debug!("read-ahead window {range:?} failed, reading directly: {e}");
                return None;
            }
            None => return None,
        };
        let from = (off.max(range.start) - range.start) as usize;
        let to = (end.min(range.end) - range.start) as usize;
        if bytes.len() < to {
            return None;
        }
        parts.push(bytes.slice(from..to));
    }
    match parts.len() {
        1 => parts.pop(),
        _ => {
            let mut buf = BytesMut::with_capacity((end - off) as usize);
            for p in parts {
                buf.extend_from_slice(&p);
            }
            Some(buf.freeze())
        }
    }
}

impl OpenFile {
    /// An open file at `uri` (cluster path `path`, for logs) of `size` bytes, pinned to `version` (or,
    /// without one, to the version of the first answer).
    pub fn new(uri: Arc<str>, path: String, size: u64, version: Option<&str>, cfg: ReadAheadConfig) -> Self {
        let pin = version.map(VersionPin::to).unwrap_or_default();
        Self { uri, path, pin, readahead: Mutex::new(ReadAhead::new(cfg, size)), short_circuit: None }
    }

    /// The same, reading a local worker's page files first when `sc` is given.
    pub fn with(mut self, sc: Option<OpenShortCircuit>) -> Self {
        self.short_circuit = sc;
        self
    }

    /// Whether client read-ahead is on for this file.
    pub fn readahead_on(&self) -> bool {
        self.readahead.lock().enabled()
    }

    /// A read served on the calling thread from the local worker's page cache, if it can be
    /// ([`OpenShortCircuit::read_now`]): `Some(Some(bytes))` served, `Some(None)` read it over HTTP (pass
    /// `local: false` to [`OpenFile::read`]), `None` take [`OpenFile::read`] as usual.
    pub fn read_now(&self, off: u64, len: u32) -> Option<Option<Bytes>> {
        self.short_circuit.as_ref()?.read_now(off, u64::from(len))
    }

    /// Reads `len` bytes at `off` (fewer at the end of the file); with them, whether read-ahead windows
    /// served them. `local`: try the local worker's page files first (short-circuit reads, when on).
    pub async fn read(&self, client: &Client, off: u64, len: u32, local: bool) -> Result<(Bytes, bool), Errno> {
        let len = u64::from(len);
        if local
            && let Some(sc) = &self.short_circuit
            && let Some(b) = sc.read(&self.pin, off, len).await
        {
            return Ok((b, false));
        }
        let windows = self.readahead.lock().on_read(off, len, |r| start_window(client, &self.uri, &self.pin, r));
        if let Some(ws) = windows
            && let Some(b) = from_windows(ws, off, off.saturating_add(len)).await
        {
            return Ok((b, true));
        }
        let bytes = fetch(client, &self.uri, off, len, &self.pin).await.map_err(|e| {
            let errno = errno_of(&e);
            tracing::warn!("read {} at {off} (+{len}): {e}", self.path);
            errno
        })?;
        Ok((bytes, false))
    }
}
