//! [`FaultyUfs`] (feature `testing`): a real [`Ufs`] wrapped with read accounting and injected faults,
//! so tests of the worker and client can prove "the UFS was read once", "a failing UFS is reported",
//! "a slow UFS read is waited for or timed out", "corrupted bytes are caught".
//!
//! Faults are set and cleared through `&self` while reads run (state behind a mutex, counters atomic).
//! Order of checks in `read_range`: count the call, URI-pattern faults, the "next N reads fail" budget,
//! the delay, the inner read, corruption, count the bytes. Pattern faults apply to every operation whose
//! URI (either URI of a copy/rename) contains the substring; the other faults apply to reads only.
//! A streamed read (`stream_pieces_of`) is one read: checked and counted the same way when it starts,
//! its bytes counted as its pieces pass, the first piece corrupted; and it can be held back after its
//! first pieces ([`FaultyUfs::hold_pieces_after`]) so that a test sees what a reader does while the rest
//! of a read has not arrived, without a clock.

use crate::{ListOptions, Ufs, UfsError, UfsResult, UfsStatus, WriteOptions};
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A [`Ufs`] that counts reads and injects errors, delays and corruption in front of another one.
pub struct FaultyUfs {
    inner: Arc<dyn Ufs>,
    faults: Mutex<Faults>,
    read_calls: AtomicU64,
    read_bytes: AtomicU64,
    per_uri: Mutex<HashMap<String, UriCounts>>,
    /// Reads in flight now, and the most at once.
    reading: AtomicU64,
    most_reading: AtomicU64,
    /// Pieces a streamed read yields before it waits (`None`: all).
    gate: tokio::sync::watch::Sender<Option<u64>>,
}

#[derive(Default)]
struct Faults {
    failing: Vec<(String, UfsError)>,
    next_reads: Option<(u64, UfsError)>,
    read_delay: Option<Duration>,
    corrupt: bool,
}

/// Reads of one URI.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UriCounts {
    /// `read_range` calls, failed ones included.
    pub calls: u64,
    /// Bytes returned.
    pub bytes: u64,
}

impl FaultyUfs {
    /// Wraps `inner` with no faults.
    pub fn new(inner: Arc<dyn Ufs>) -> Self {
        Self {
            inner,
            faults: Mutex::new(Faults::default()),
            read_calls: AtomicU64::new(0),
            read_bytes: AtomicU64::new(0),
            per_uri: Mutex::new(HashMap::new()),
            reading: AtomicU64::new(0),
            most_reading: AtomicU64::new(0),
            gate: tokio::sync::watch::Sender::new(None),
        }
    }

    /// Holds every streamed read (`stream_pieces_of`) after its first `n` pieces, until
    /// [`release_pieces`](Self::release_pieces). A plain read (`read_range`, `read_range_of`, and the
    /// default `read_pieces_of`) hands over all its bytes at once, so it is held whole.
    pub fn hold_pieces_after(&self, n: u64) {
        self.gate.send_replace(Some(n));
    }

    /// Lets held streamed reads go on.
    pub fn release_pieces(&self) {
        self.gate.send_replace(None);
    }

    /// The most reads that were in flight at once since the start or [`FaultyUfs::reset_counters`].
    pub fn most_reads_at_once(&self) -> u64 {
        self.most_reading.load(Ordering::SeqCst)
    }

    /// `read_range` calls so far, failed ones included.
    pub fn read_calls(&self) -> u64 {
        self.read_calls.load(Ordering::SeqCst)
    }

    /// Bytes returned by `read_range` so far.
    pub fn read_bytes(&self) -> u64 {
        self.read_bytes.load(Ordering::SeqCst)
    }

    /// Calls and bytes of one URI (exactly as passed to `read_range`).
    pub fn reads_of(&self, uri: &str) -> UriCounts {
        self.per_uri.lock().get(uri).copied().unwrap_or_default()
    }

    /// Zeroes every counter.
    pub fn reset_counters(&self) {
        self.read_calls.store(0, Ordering::SeqCst);
        self.read_bytes.store(0, Ordering::SeqCst);
        self.per_uri.lock().clear();
        self.most_reading.store(0, Ordering::SeqCst);
    }

    /// Fails every operation on a URI containing `pattern` with `err` (adds to earlier patterns).
    pub fn fail_matching(&self, pattern: &str, err: UfsError) {
        self.faults.lock().failing.push((pattern.to_string(), err));
    }

    /// Fails the next `n` reads (any URI) with `err`, replacing an earlier budget.
    pub fn fail_next_reads(&self, n: u64, err: UfsError) {
        self.faults.lock().next_reads = (n > 0).then_some((n, err));
    }

    /// Delays every read by `delay` before it reaches the inner UFS; `None` stops delaying.
    pub fn set_read_delay(&self, delay: Option<Duration>) {
        self.faults.lock().read_delay = delay;
    }

    /// Corrupts returned bytes (the first byte of each non-empty read is inverted) while `on`.
    pub fn set_corrupt_reads(&self, on: bool) {
        self.faults.lock().corrupt = on;
    }

    /// Removes every fault (counters are kept).
    pub fn clear_faults(&self) {
        *self.faults.lock() = Faults::default();
    }

    fn check_pattern(&self, uris: &[&str]) -> UfsResult<()> {
        let faults = self.faults.lock();
        match faults.failing.iter().find(|(p, _)| uris.iter().any(|u| u.contains(p.as_str()))) {
            Some((_, err)) => Err(err.clone()),
            None => Ok(()),
        }
    }

    /// Takes one from the "next N reads fail" budget, if any is left.
    fn take_read_failure(&self) -> Option<UfsError> {
        let mut faults = self.faults.lock();
        let (left, err) = faults.next_reads.as_mut()?;
        *left -= 1;
        let err = err.clone();
        if *left == 0 {
            faults.next_reads = None;
        }
        Some(err)
    }

    /// Counts a read in flight until the guard is dropped.
    fn reading(&self) -> Reading<'_> {
        let now = self.reading.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_reading.fetch_max(now, Ordering::SeqCst);
        Reading(&self.reading)
    }

    /// The checks that come before a read is in flight.
    fn check_read(&self, uri: &str) -> UfsResult<()> {
        self.count(uri, 1, 0);
        self.check_pattern(&[uri])?;
        match self.take_read_failure() {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    /// The delay before a read in flight reaches the inner UFS.
    async fn delay(&self) {
        let delay = self.faults.lock().read_delay;
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
    }

    fn corrupt(&self, data: Bytes) -> Bytes {
        if self.faults.lock().corrupt && !data.is_empty() {
            let mut m = BytesMut::from(&data[..]);
            m[0] = !m[0];
            return m.freeze();
        }
        data
    }

    fn count(&self, uri: &str, calls: u64, bytes: u64) {
        self.read_calls.fetch_add(calls, Ordering::SeqCst);
        self.read_bytes.fetch_add(bytes, Ordering::SeqCst);
        let mut per_uri = self.per_uri.lock();
        let c = per_uri.entry(uri.to_string()).or_default();
        c.calls += calls;
        c.bytes += bytes;
    }
}

impl FaultyUfs {
    /// A read with the injected faults, pinned to `tag` when given.
    async fn read_faulty(&self, uri: &str, offset: u64, len: u64, tag: Option<&str>) -> UfsResult<Bytes> {
        self.check_read(uri)?;
        let _reading = self.reading();
        self.delay().await;
        let _ = self.gate.subscribe().wait_for(Option::is_none).await;
        let data = match tag {
            Some(tag) => self.inner.read_range_of(uri, offset, len, tag).await?,
            None => self.inner.read_range(uri, offset, len).await?,
        };
        let data = self.corrupt(data);
        self.count(uri, 0, data.len() as u64);
        Ok(data)
    }
}

/// A read in flight (see [`FaultyUfs::most_reads_at_once`]).
struct Reading<'a>(&'a AtomicU64);

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl Ufs for FaultyUfs {
    async fn stat(&self, uri: &str) -> UfsResult<UfsStatus> {
        self.check_pattern(&[uri])?;
        self.inner.stat(uri).await
    }

    fn list(&self, uri: &str, opts: ListOptions) -> BoxStream<'static, UfsResult<UfsStatus>> {
        match self.check_pattern(&[uri]) {
            Ok(()) => self.inner.list(uri, opts),
            Err(e) => stream::once(async move { Err(e) }).boxed(),
        }
    }

    async fn read_range_of(&self, uri: &str, offset: u64, len: u64, tag: &str) -> UfsResult<Bytes> {
        self.read_faulty(uri, offset, len, Some(tag)).await
    }

    async fn read_range(&self, uri: &str, offset: u64, len: u64) -> UfsResult<Bytes> {
        self.read_faulty(uri, offset, len, None).await
    }

    fn stream_pieces_of<'a>(
        &'a self,
        uri: &'a str,
        offset: u64,
        len: u64,
        tag: &'a str,
        piece: u64,
    ) -> BoxStream<'a, UfsResult<Bytes>> {
        stream::once(async move {
            self.check_read(uri)?;
            let reading = self.reading();
            self.delay().await;
            Ok(reading)
        })
        .map_ok(move |reading| {
            let gate = self.gate.subscribe();
            self.inner.stream_pieces_of(uri, offset, len, tag, piece).enumerate().then(move |(k, r)| {
                let _in_flight = &reading;
                let mut gate = gate.clone();
                async move {
                    // Held: this piece waits until the test lets pieces past `k` through.
                    let _ = gate.wait_for(|held| held.is_none_or(|n| (k as u64) < n)).await;
                    let data = r?;
                    let data = if k == 0 { self.corrupt(data) } else { data };
                    self.count(uri, 0, data.len() as u64);
                    Ok(data)
                }
            })
        })
        .try_flatten()
        .boxed()
    }

    async fn write(&self, uri: &str, data: Bytes) -> UfsResult<()> {
        self.check_pattern(&[uri])?;
        self.inner.write(uri, data).await
    }

    async fn write_stream(
        &self,
        uri: &str,
        body: BoxStream<'static, Result<Bytes, std::io::Error>>,
        opts: WriteOptions,
    ) -> UfsResult<u64> {
        self.check_pattern(&[uri])?;
        self.inner.write_stream(uri, body, opts).await
    }

    async fn delete(&self, uri: &str, recursive: bool) -> UfsResult<()> {
        self.check_pattern(&[uri])?;
        self.inner.delete(uri, recursive).await
    }

    async fn delete_if_match(&self, uri: &str, etag: &str) -> UfsResult<()> {
        self.check_pattern(&[uri])?;
        self.inner.delete_if_match(uri, etag).await
    }

    async fn create_dir(&self, uri: &str) -> UfsResult<()> {
        self.check_pattern(&[uri])?;
        self.inner.create_dir(uri).await
    }

    async fn copy(&self, from: &str, to: &str) -> UfsResult<()> {
        self.check_pattern(&[from, to])?;
        self.inner.copy(from, to).await
    }

    async fn rename(&self, from: &str, to: &str) -> UfsResult<()> {
        self.check_pattern(&[from, to])?;
        self.inner.rename(from, to).await
    }
}
