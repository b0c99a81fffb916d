//! The embedded cluster store: [`ClusterStore`] on one redb file, for a single process (`loam local`).
//!
//! - Keys, values, create/mod revisions and lease ids are stored in redb (layout and format version in
//!   `tables`); every write transaction that changes something takes the next global revision.
//! - redb calls block (and a commit fsyncs), so every operation runs on `tokio::task::spawn_blocking`.
//! - Leases live in memory (`leases`): the store serves one process, so a lease cannot outlive it, and
//!   `open` deletes the keys a previous process left on leases. A background task revokes due leases; it
//!   stops on [`EmbeddedStore::shutdown`] or when the store is dropped.
//! - Watches (`watch`) replay a bounded in-memory history and then follow a broadcast channel; history
//!   older than what is kept (or older than this process) is `Compacted`, and a watcher that falls behind
//!   gets an error rather than a gap.

mod leases;
mod state;
mod tables;
mod txn;
mod watch;

pub use tables::FORMAT_VERSION;

use crate::{
    CasOutcome, ClusterStore, Expect, KeyValue, LeaseId, ListPage, Revision, StoreError, StoreResult, WatchEvent,
};
use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use parking_lot::Mutex;
use state::Inner;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::watch as signal;
use tokio::task::JoinHandle;

/// Tuning of an embedded store; the defaults suit production.
#[derive(Clone, Debug)]
pub struct EmbeddedOptions {
    /// How many recent events watches can replay.
    pub history_events: usize,
    /// How many transactions a watcher may fall behind before its stream ends with an error.
    pub watch_buffer: usize,
    /// How often the expiry task looks for due leases.
    pub expiry_tick: Duration,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self { history_events: 10_000, watch_buffer: 4096, expiry_tick: Duration::from_millis(100) }
    }
}

/// The redb-backed [`ClusterStore`] of a single process.
pub struct EmbeddedStore {
    inner: Arc<Inner>,
    closed: AtomicBool,
    /// Dropping it (with the store) also stops the expiry task.
    stop: signal::Sender<bool>,
    expiry: Mutex<Option<JoinHandle<()>>>,
}

impl EmbeddedStore {
    /// Opens (creating if missing) the store file at `path`. Blocks on file I/O; call from a Tokio runtime.
    pub fn open(path: &Path) -> StoreResult<Arc<Self>> {
        Self::open_with(path, EmbeddedOptions::default())
    }

    /// [`EmbeddedStore::open`] with explicit options.
    pub fn open_with(path: &Path, options: EmbeddedOptions) -> StoreResult<Arc<Self>> {
        let db = redb::Database::create(path).map_err(tables::db_err)?;
        // redb creates the file with the umask's mode; the cluster state (mount options) is private.
        loam_core::private_fs::restrict_file(path)
            .map_err(|e| StoreError::Other(format!("cannot make {} private: {e}", path.display())))?;
        Self::start(db, path, options)
    }

    /// A store that lives in memory only (tests, throwaway clusters).
    pub fn in_memory() -> StoreResult<Arc<Self>> {
        Self::in_memory_with(EmbeddedOptions::default())
    }

    /// [`EmbeddedStore::in_memory`] with explicit options.
    pub fn in_memory_with(options: EmbeddedOptions) -> StoreResult<Arc<Self>> {
        let db = redb::Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(tables::db_err)?;
        Self::start(db, Path::new("<memory>"), options)
    }

    fn start(db: redb::Database, origin: &Path, options: EmbeddedOptions) -> StoreResult<Arc<Self>> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| StoreError::Other("the embedded store must be opened inside a Tokio runtime".into()))?;
        let inner = Arc::new(Inner::open(db, origin, options.history_events, options.watch_buffer)?);
        let (stop, stopped) = signal::channel(false);
        let task = runtime.spawn(leases::expiry_loop(Arc::downgrade(&inner), stopped, options.expiry_tick));
        Ok(Arc::new(Self { inner, closed: AtomicBool::new(false), stop, expiry: Mutex::new(Some(task)) }))
    }

    /// Stops the expiry task (and waits for it), ends every watch stream with an error, and makes every
    /// later operation fail with `Unavailable`. The file closes when the last handle is dropped.
    pub async fn shutdown(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.stop.send_replace(true);
        let task = self.expiry.lock().take();
        if let Some(task) = task
            && let Err(e) = task.await
        {
            tracing::error!(error = %e, "embedded store expiry task failed");
        }
        self.inner.events.lock().close();
        self.inner.leases.lock().clear();
    }

    fn check_open(&self) -> StoreResult<()> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("the embedded store has been shut down".into()));
        }
        Ok(())
    }

    /// Runs `f` on a blocking thread: redb calls block and commits fsync.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        self.check_open()?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| StoreError::Other(format!("embedded store call failed: {e}")))?
    }
}

#[async_trait]
impl ClusterStore for EmbeddedStore {
    async fn get(&self, key: &str) -> StoreResult<Option<KeyValue>> {
        let key = key.to_string();
        self.blocking(move |s| s.get(&key)).await
    }

    async fn put(&self, key: &str, value: Bytes, lease: Option<LeaseId>) -> StoreResult<Revision> {
        let key = key.to_string();
        self.blocking(move |s| s.put(&key, &value, lease)).await
    }

    async fn delete(&self, key: &str) -> StoreResult<bool> {
        let key = key.to_string();
        self.blocking(move |s| s.delete(&key)).await
    }

    async fn delete_prefix(&self, prefix: &str) -> StoreResult<u64> {
        let prefix = prefix.to_string();
        self.blocking(move |s| s.delete_prefix(&prefix)).await
    }

    async fn list(&self, prefix: &str, start_after: Option<&str>, limit: usize) -> StoreResult<ListPage> {
        let prefix = prefix.to_string();
        let start_after = start_after.map(str::to_string);
        self.blocking(move |s| s.list(&prefix, start_after.as_deref(), limit)).await
    }

    async fn compare_and_set(
        &self,
        key: &str,
        expect: Expect,
        value: Bytes,
        lease: Option<LeaseId>,
    ) -> StoreResult<CasOutcome> {
        let key = key.to_string();
        self.blocking(move |s| s.compare_and_set(&key, expect, &value, lease)).await
    }

    async fn grant_lease(&self, ttl: Duration) -> StoreResult<LeaseId> {
        self.blocking(move |s| s.grant_lease(ttl)).await
    }

    async fn keep_alive(&self, lease: LeaseId) -> StoreResult<()> {
        // Memory only: no need for a blocking thread.
        self.check_open()?;
        self.inner.leases.lock().keep_alive(lease)
    }

    async fn revoke_lease(&self, lease: LeaseId) -> StoreResult<()> {
        self.blocking(move |s| s.revoke_lease(lease)).await
    }

    async fn watch(&self, prefix: &str, after: Revision) -> StoreResult<BoxStream<'static, StoreResult<WatchEvent>>> {
        // Memory only: the history and the channel.
        self.check_open()?;
        self.inner.watch(prefix, after)
    }

    async fn revision(&self) -> StoreResult<Revision> {
        self.check_open()?;
        Ok(self.inner.revision())
    }
}
