//! [`TimedUfs`]: the one seam where the worker's UFS calls are timed and their errors counted, by call
//! and mount. `ReadThrough::resolve` — the only way the worker gets a mount's UFS — wraps every UFS it
//! hands out, so read-through, write-through, the S3 API, listings and loads are all counted and no
//! call site can forget to. The wrapper is a thin `Arc` around the registry's shared instance (built
//! per resolve: one allocation, next to a UFS round trip). It also counts Alluxio's
//! `alluxio_ufs_data_access` (bytes read and written).

use super::data_path::{DataPathMetrics, READ, UfsErrorLabels, UfsLabels, WRITE};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use loam_ufs::{ListOptions, Ufs, UfsError, UfsResult, UfsStatus, WriteOptions};
use std::sync::Arc;
use std::time::Instant;

/// A [`Ufs`] that times every call into `metrics`, labelled with `mount` (a mount's cluster path).
pub struct TimedUfs {
    inner: Arc<dyn Ufs>,
    mount: String,
    metrics: DataPathMetrics,
}

impl TimedUfs {
    /// Wraps `inner`, the UFS of the mount at cluster path `mount`.
    pub fn wrap(inner: Arc<dyn Ufs>, mount: &str, metrics: &DataPathMetrics) -> Arc<dyn Ufs> {
        Arc::new(Self { inner, mount: mount.to_string(), metrics: metrics.clone() })
    }

    fn observe<T>(&self, op: &'static str, started: Instant, r: &UfsResult<T>) {
        observe(&self.metrics, &self.mount, op, started, r.as_ref().err());
    }
}

/// Records one call: its time, and its error if any.
fn observe(m: &DataPathMetrics, mount: &str, op: &'static str, started: Instant, err: Option<&UfsError>) {
    let labels = UfsLabels { op, mount: mount.to_string() };
    m.ufs.get_or_create(&labels).observe(started.elapsed().as_secs_f64());
    if let Some(e) = err {
        m.ufs_errors.get_or_create(&UfsErrorLabels { op, mount: labels.mount, kind: error_kind(e) }).inc();
    }
}

/// The `kind` label of a UFS error: its variant (bounded).
pub fn error_kind(e: &UfsError) -> &'static str {
    match e {
        UfsError::NotFound(_) => "not_found",
        UfsError::InvalidInput(_) => "invalid_input",
        UfsError::PermissionDenied(_) => "permission_denied",
        UfsError::Unavailable(_) => "unavailable",
        UfsError::Changed(_) => "changed",
        UfsError::ConditionFailed(_) => "condition_failed",
        UfsError::Unsupported(_) => "unsupported",
        UfsError::Conflict(_) => "conflict",
        UfsError::Other(_) => "other",
    }
}

/// Times a listing or a streamed read from the call until its stream ends or is dropped.
struct StreamTimer {
    metrics: DataPathMetrics,
    mount: String,
    started: Instant,
    failed: Option<UfsError>,
    op: &'static str,
}

impl Drop for StreamTimer {
    fn drop(&mut self) {
        observe(&self.metrics, &self.mount, self.op, self.started, self.failed.as_ref());
    }
}

#[async_trait]
impl Ufs for TimedUfs {
    async fn stat(&self, uri: &str) -> UfsResult<UfsStatus> {
        let started = Instant::now();
        let r = self.inner.stat(uri).await;
        self.observe("stat", started, &r);
        r
    }

    fn list(&self, uri: &str, opts: ListOptions) -> BoxStream<'static, UfsResult<UfsStatus>> {
        let mut timer = StreamTimer {
            metrics: self.metrics.clone(),
            mount: self.mount.clone(),
            started: Instant::now(),
            failed: None,
            op: "list",
        };
        self.inner
            .list(uri, opts)
            .inspect(move |r| {
                if let Err(e) = r
                    && timer.failed.is_none()
                {
                    timer.failed = Some(e.clone());
                }
            })
            .boxed()
    }

    async fn read_range(&self, uri: &str, offset: u64, len: u64) -> UfsResult<Bytes> {
        let started = Instant::now();
        let r = self.inner.read_range(uri, offset, len).await;
        self.observe("read", started, &r);
        self.read_bytes(r.as_ref().map_or(0, |b| b.len() as u64));
        r
    }

    async fn read_range_of(&self, uri: &str, offset: u64, len: u64, tag: &str) -> UfsResult<Bytes> {
        let started = Instant::now();
        let r = self.inner.read_range_of(uri, offset, len, tag).await;
        self.observe("read", started, &r);
        self.read_bytes(r.as_ref().map_or(0, |b| b.len() as u64));
        r
    }

    async fn read_pieces_of(&self, uri: &str, offset: u64, len: u64, tag: &str, piece: u64) -> UfsResult<Vec<Bytes>> {
        let started = Instant::now();
        let r = self.inner.read_pieces_of(uri, offset, len, tag, piece).await;
        self.observe("read", started, &r);
        self.read_bytes(r.as_ref().map_or(0, |v| v.iter().map(|b| b.len() as u64).sum()));
        r
    }

    fn stream_pieces_of<'a>(
        &'a self,
        uri: &'a str,
        offset: u64,
        len: u64,
        tag: &'a str,
        piece: u64,
    ) -> BoxStream<'a, UfsResult<Bytes>> {
        // Timed as one read, from the call until the stream ends or is dropped; bytes counted as they pass.
        let mut timer = StreamTimer {
            metrics: self.metrics.clone(),
            mount: self.mount.clone(),
            started: Instant::now(),
            failed: None,
            op: "read",
        };
        self.inner
            .stream_pieces_of(uri, offset, len, tag, piece)
            .inspect(move |r| match r {
                Ok(b) => {
                    timer.metrics.ufs_data_access.get_or_create(&READ).inc_by(b.len() as u64);
                }
                Err(e) if timer.failed.is_none() => timer.failed = Some(e.clone()),
                Err(_) => {}
            })
            .boxed()
    }

    async fn write(&self, uri: &str, data: Bytes) -> UfsResult<()> {
        let (started, n) = (Instant::now(), data.len() as u64);
        let r = self.inner.write(uri, data).await;
        self.observe("write", started, &r);
        if r.is_ok() {
            self.metrics.ufs_data_access.get_or_create(&WRITE).inc_by(n);
        }
        r
    }

    async fn write_stream(
        &self,
        uri: &str,
        body: BoxStream<'static, Result<Bytes, std::io::Error>>,
        opts: WriteOptions,
    ) -> UfsResult<u64> {
        let started = Instant::now();
        let r = self.inner.write_stream(uri, body, opts).await;
        self.observe("write", started, &r);
        if let Ok(n) = &r {
            self.metrics.ufs_data_access.get_or_create(&WRITE).inc_by(*n);
        }
        r
    }

    async fn delete(&self, uri: &str, recursive: bool) -> UfsResult<()> {
        let started = Instant::now();
        let r = self.inner.delete(uri, recursive).await;
        self.observe("delete", started, &r);
        r
    }

    async fn delete_if_match(&self, uri: &str, etag: &str) -> UfsResult<()> {
        let started = Instant::now();
        let r = self.inner.delete_if_match(uri, etag).await;
        self.observe("delete", started, &r);
        r
    }

    async fn create_dir(&self, uri: &str) -> UfsResult<()> {
        let started = Instant::now();
        let r = self.inner.create_dir(uri).await;
        self.observe("create_dir", started, &r);
        r
    }

    async fn copy(&self, from: &str, to: &str) -> UfsResult<()> {
        let started = Instant::now();
        let r = self.inner.copy(from, to).await;
        self.observe("copy", started, &r);
        r
    }

    async fn rename(&self, from: &str, to: &str) -> UfsResult<()> {
        let started = Instant::now();
        let r = self.inner.rename(from, to).await;
        self.observe("rename", started, &r);
        r
    }
}

impl TimedUfs {
    fn read_bytes(&self, n: u64) {
        self.metrics.ufs_data_access.get_or_create(&READ).inc_by(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;
    use loam_core::path::UfsUri;
    use loam_ufs::OpendalUfs;

    fn count(m: &DataPathMetrics, op: &'static str) -> u64 {
        let text = {
            let mut r = prometheus_client::registry::Registry::default();
            m.register(&mut r);
            let mut s = String::new();
            prometheus_client::encoding::text::encode(&mut s, &r).unwrap();
            s
        };
        let prefix = format!("loam_worker_ufs_operation_duration_seconds_count{{op=\"{op}\",mount=\"/m\"}} ");
        text.lines().find_map(|l| l.strip_prefix(&prefix)).map_or(0, |v| v.parse().unwrap())
    }

    #[tokio::test]
    async fn every_call_is_timed_by_op_and_mount_and_errors_are_counted_by_kind() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"12345").unwrap();
        let root = format!("file://{}", dir.path().display());
        let inner: Arc<dyn Ufs> =
            Arc::new(OpendalUfs::new(&UfsUri::parse(&root).unwrap(), &Default::default()).unwrap());
        let m = DataPathMetrics::default();
        let ufs = TimedUfs::wrap(inner, "/m", &m);
        let file = format!("{root}/f");
        assert_eq!(ufs.read_range(&file, 1, 3).await.unwrap(), "234");
        assert_eq!(ufs.stat(&file).await.unwrap().length, 5);
        let missing = format!("{root}/missing");
        assert!(matches!(ufs.stat(&missing).await, Err(UfsError::NotFound(_))));
        let not_found = UfsErrorLabels { op: "stat", mount: "/m".into(), kind: "not_found" };
        assert_eq!(m.ufs_errors.get_or_create(&not_found).get(), 1);
        assert_eq!((count(&m, "read"), count(&m, "stat")), (1, 2));
        assert_eq!(m.ufs_data_access.get_or_create(&READ).get(), 3);

        // A listing is timed once, when its stream ends or when it is dropped unfinished.
        let listed: Vec<UfsStatus> = ufs.list(&root, ListOptions::default()).try_collect().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(count(&m, "list"), 1);
        let unfinished = ufs.list(&root, ListOptions::default());
        assert_eq!(count(&m, "list"), 1, "not yet: the listing is still open");
        drop(unfinished);
        assert_eq!(count(&m, "list"), 2);
    }
}
