//! The namespace the mount shows, read-only: the root lists one directory per mount point (from the
//! mount table), and below a mount point directories and files are what the workers list and stat
//! (`/v1/files`, `/v1/info`, through [`loam_client::Client`]).
//!
//! Three caches, each trusted for the attribute TTL and each bounded by what the kernel holds: the
//! metadata in the inode table (one entry per inode the kernel has not forgotten), directory listings
//! (one per directory inode, dropped when the kernel forgets it), and the mount table (one). A lookup
//! in a directory whose listing is fresh answers from the listing (`ls -l` costs one listing, not a
//! stat per entry); otherwise it stats the one path, so opening a file in a huge directory does not
//! list it.

use crate::error::errno_of;
use crate::inodes::{InodeTable, ROOT};
use crate::meta::Meta;
use crate::short_circuit::ShortCircuit;
use fuser::{Errno, FileAttr, FileType};
use futures::future::BoxFuture;
use loam_client::Client;
use loam_core::path::UfsUri;
use loam_ufs::MountTable;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Where the mount table comes from (the Coordinator, the cluster store, or a fixed table).
pub trait MountSource: Send + Sync + 'static {
    /// The current mount table.
    fn mount_table(&self) -> BoxFuture<'_, Result<MountTable, String>>;
}

impl MountSource for MountTable {
    fn mount_table(&self) -> BoxFuture<'_, Result<MountTable, String>> {
        Box::pin(std::future::ready(Ok(self.clone())))
    }
}

/// One entry of a directory listing.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The name in its directory.
    pub name: String,
    /// Its full UFS URI.
    pub uri: String,
    /// Its metadata.
    pub meta: Meta,
    /// A file's version tag (`None` for directories).
    pub version: Option<String>,
}

/// A directory's entries and when they were listed.
type Listing = (Arc<Vec<Entry>>, Instant);

/// A directory entry as `readdir` returns it.
#[derive(Clone, Debug)]
pub struct DirEntry {
    /// Inode number.
    pub ino: u64,
    /// File type.
    pub kind: FileType,
    /// Name.
    pub name: String,
}

/// A file as an open reads it.
#[derive(Clone, Debug)]
pub struct ToOpen {
    /// Its full UFS URI.
    pub uri: Arc<str>,
    /// Its cluster path (for logs).
    pub path: String,
    /// Its length.
    pub size: u64,
    /// The version its inode stands for.
    pub version: Option<Arc<str>>,
}

/// The namespace of one mount.
pub struct Namespace {
    client: Client,
    mounts: Arc<dyn MountSource>,
    ttl: Duration,
    owner: (u32, u32),
    /// When the mount was made: the time the root and the mount points show.
    started: SystemTime,
    table: Mutex<InodeTable>,
    listings: Mutex<HashMap<u64, Listing>>,
    mount_table: Mutex<Option<(MountTable, Instant)>>,
    short_circuit: Option<Arc<ShortCircuit>>,
}

/// `/data` is a mount point; `/` and `/data/x` are not.
fn is_mount_point(path: &str) -> bool {
    path.len() > 1 && path.rfind('/') == Some(0)
}

fn child_path(parent: &str, name: &str) -> String {
    if parent == "/" { format!("/{name}") } else { format!("{parent}/{name}") }
}

fn parent_path(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

impl Namespace {
    /// A namespace read through `client`, with mounts from `mounts`, files owned by `owner` (uid, gid).
    pub fn new(client: Client, mounts: Arc<dyn MountSource>, ttl: Duration, owner: (u32, u32)) -> Self {
        let started = SystemTime::now();
        Self {
            client,
            mounts,
            ttl,
            owner,
            started,
            table: Mutex::new(InodeTable::new(Meta::synthetic_dir(started))),
            listings: Mutex::new(HashMap::new()),
            mount_table: Mutex::new(None),
            short_circuit: None,
        }
    }

    /// The same, with short-circuit reads of local workers' page files for the files it opens.
    pub fn with_short_circuit(mut self, sc: Option<Arc<ShortCircuit>>) -> Self {
        self.short_circuit = sc;
        self
    }

    /// The short-circuit reader, when on.
    pub fn short_circuit(&self) -> Option<&Arc<ShortCircuit>> {
        self.short_circuit.as_ref()
    }

    /// The client reads go through.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Entries in the inode table (the root included).
    pub fn inodes(&self) -> usize {
        self.table.lock().len()
    }

    fn fresh(&self, at: Instant) -> bool {
        at.elapsed() < self.ttl
    }

    /// The mount table, refreshed after the TTL; the last one is kept while its source fails.
    pub async fn mount_table(&self) -> Result<MountTable, Errno> {
        if let Some((t, at)) = &*self.mount_table.lock()
            && self.fresh(*at)
        {
            return Ok(t.clone());
        }
        match self.mounts.mount_table().await {
            Ok(t) => {
                *self.mount_table.lock() = Some((t.clone(), Instant::now()));
                Ok(t)
            }
            Err(e) => match &*self.mount_table.lock() {
                Some((t, _)) => {
                    // With a short attribute TTL this runs on every lookup while the source is down.
                    loam_core::warn_limited!("cannot refresh the mount table, keeping the last one: {e}");
                    Ok(t.clone())
                }
                None => {
                    loam_core::warn_limited!("cannot read the mount table: {e}");
                    Err(Errno::EIO)
                }
            },
        }
    }

    /// Attributes of `ino` when the cached ones are still fresh, which a file's always are: its inode
    /// stands for one version, whose attributes never change (`inodes.rs`).
    pub fn cached_attr(&self, ino: u64) -> Option<FileAttr> {
        let t = self.table.lock();
        let n = t.get(ino)?;
        (n.version.is_some() || self.fresh(n.fetched)).then(|| n.meta.attr(ino, self.owner))
    }

    /// Attributes of `ino`, fetched again once the TTL has passed.
    pub async fn getattr(&self, ino: u64) -> Result<FileAttr, Errno> {
        if let Some(a) = self.cached_attr(ino) {
            return Ok(a);
        }
        let node = self.table.lock().get(ino).cloned().ok_or(Errno::ENOENT)?;
        let meta = if ino == ROOT {
            Meta::synthetic_dir(self.started)
        } else if is_mount_point(&node.path) {
            self.mount_table().await?.get(&node.path).map_err(|_| Errno::ENOENT)?;
            Meta::synthetic_dir(self.started)
        } else {
            let uri = node.uri.as_deref().ok_or(Errno::ENOENT)?;
            self.info(uri, &node.path).await?.0
        };
        self.table.lock().refresh(ino, meta);
        Ok(meta.attr(ino, self.owner))
    }

    /// The metadata and version tag of `uri`.
    async fn info(&self, uri: &str, path: &str) -> Result<(Meta, Option<String>), Errno> {
        match self.client.info(uri).await {
            Ok(i) => Ok((Meta::of(&i), Meta::version_of(&i))),
            Err(e) => Err(self.failed(&e, "stat", path)),
        }
    }

    /// The errno of `e`, logged when it is a failure rather than a missing path.
    fn failed(&self, e: &loam_client::ClientError, op: &str, path: &str) -> Errno {
        let errno = errno_of(e);
        if errno != Errno::ENOENT {
            tracing::warn!("{op} {path}: {e}");
        }
        errno
    }

    /// Looks up `name` in directory `parent`; the attributes of what it names, which the kernel now holds
    /// (for a file, of the inode of its current version).
    pub async fn lookup(&self, parent: u64, name: &str) -> Result<FileAttr, Errno> {
        let dir = self.table.lock().get(parent).cloned().ok_or(Errno::ENOENT)?;
        if !dir.meta.dir {
            return Err(Errno::ENOTDIR);
        }
        let path = child_path(&dir.path, name);
        let fresh_listing = self.listings.lock().get(&parent).filter(|(_, at)| self.fresh(*at)).map(|(l, _)| l.clone());
        let (uri, meta, version) = if parent == ROOT {
            let table = self.mount_table().await?;
            let m = table.get(&path).map_err(|_| Errno::ENOENT)?;
            (m.ufs.clone(), Meta::synthetic_dir(self.started), None)
        } else if let Some(listing) = fresh_listing {
            let e = listing.iter().find(|e| e.name == name).ok_or(Errno::ENOENT)?;
            (e.uri.clone(), e.meta, e.version.clone())
        } else {
            let base = dir.uri.as_deref().ok_or(Errno::ENOENT)?;
            let uri = UfsUri::parse(base).map_err(|_| Errno::EIO)?.join(name).as_string();
            let (meta, version) = self.info(&uri, &path).await?;
            (uri, meta, version)
        };
        let ino = self.table.lock().lookup(&path, Some(&uri), version.as_deref(), meta);
        Ok(meta.attr(ino, self.owner))
    }

    /// The kernel dropped `n` references to `ino`.
    pub fn forget(&self, ino: u64, n: u64) {
        if self.table.lock().forget(ino, n) {
            self.listings.lock().remove(&ino);
        }
    }

    /// The entries of directory `ino` (from the cache while it is fresh).
    pub async fn children(&self, ino: u64) -> Result<Arc<Vec<Entry>>, Errno> {
        if let Some((l, at)) = self.listings.lock().get(&ino)
            && self.fresh(*at)
        {
            return Ok(l.clone());
        }
        let node = self.table.lock().get(ino).cloned().ok_or(Errno::ENOENT)?;
        if !node.meta.dir {
            return Err(Errno::ENOTDIR);
        }
        let entries: Vec<Entry> = match node.uri.as_deref() {
            None => self
                .mount_table()
                .await?
                .iter()
                .map(|m| Entry {
                    name: m.name().to_string(),
                    uri: m.ufs.clone(),
                    meta: Meta::synthetic_dir(self.started),
                    version: None,
                })
                .collect(),
            Some(uri) => {
                let list = self.client.list(uri).await.map_err(|e| self.failed(&e, "list", &node.path))?;
                let me = uri.trim_end_matches('/');
                list.iter()
                    .filter(|i| i.m_ufs_path.trim_end_matches('/') != me)
                    .map(|i| Entry {
                        name: i.m_name.trim_matches('/').to_string(),
                        uri: i.m_ufs_path.clone(),
                        meta: Meta::of(i),
                        version: Meta::version_of(i),
                    })
                    .filter(|e| !e.name.is_empty())
                    .collect()
            }
        };
        let entries = Arc::new(entries);
        // Only directories the kernel holds are cached, so the cache cannot outlive their inodes.
        if self.table.lock().get(ino).is_some() {
            self.listings.lock().insert(ino, (entries.clone(), Instant::now()));
        }
        Ok(entries)
    }

    /// What `readdir` returns for directory `ino`: `.`, `..`, then its entries.
    pub async fn dir_entries(&self, ino: u64) -> Result<Vec<DirEntry>, Errno> {
        let children = self.children(ino).await?;
        let t = self.table.lock();
        let path = t.get(ino).map(|n| n.path.clone()).ok_or(Errno::ENOENT)?;
        let parent = match parent_path(&path) {
            "/" => ROOT,
            p => t.ino_for(p, None),
        };
        let mut out = Vec::with_capacity(children.len() + 2);
        out.push(DirEntry { ino, kind: FileType::Directory, name: ".".into() });
        out.push(DirEntry { ino: parent, kind: FileType::Directory, name: "..".into() });
        for e in children.iter() {
            let ino = t.ino_for(&child_path(&path, &e.name), e.version.as_deref());
            out.push(DirEntry { ino, kind: e.meta.kind(), name: e.name.clone() });
        }
        Ok(out)
    }

    /// File `ino` as an open reads it, and whether the open must check that its version is still the
    /// path's (`check_version`): not when the inode was looked up since its last open, so an open right
    /// after its lookup costs nothing.
    pub fn open(&self, ino: u64) -> Result<(ToOpen, bool), Errno> {
        let mut t = self.table.lock();
        let n = t.get(ino).ok_or(Errno::ENOENT)?;
        if n.meta.dir {
            return Err(Errno::EISDIR);
        }
        let uri = n.uri.clone().ok_or(Errno::ENOENT)?;
        let file = ToOpen { uri, path: n.path.to_string(), size: n.meta.size, version: n.version.clone() };
        Ok((file, !t.open(ino)))
    }

    /// Whether `file`'s version is still its path's (close-to-open: an inode opened again may have been
    /// replaced within the TTL). When it is not, the directory's cached listing is dropped, so that the
    /// lookup the kernel retries after `ESTALE` sees the new version. A failed check (no worker answers)
    /// counts as current: the reads, pinned to the version, decide.
    pub async fn still_current(&self, file: &ToOpen) -> bool {
        // A file gone, or now a directory, has no version: not current either.
        let version = match self.client.info(&file.uri).await {
            Ok(i) => Meta::version_of(&i),
            Err(e) if errno_of(&e) == Errno::ENOENT => None,
            Err(e) => {
                tracing::debug!("open {}: cannot check its version: {e}", file.path);
                return true;
            }
        };
        if version.is_some() && version.as_deref() == file.version.as_deref() {
            return true;
        }
        let parent = self.table.lock().ino_for(parent_path(&file.path), None);
        self.listings.lock().remove(&parent);
        false
    }

    /// The cluster path of `ino` (for logs).
    pub fn path(&self, ino: u64) -> String {
        self.table.lock().get(ino).map(|n| n.path.to_string()).unwrap_or_else(|| format!("inode {ino}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert!(is_mount_point("/data"));
        assert!(!is_mount_point("/"));
        assert!(!is_mount_point("/data/x"));
        assert_eq!(child_path("/", "data"), "/data");
        assert_eq!(child_path("/data/d", "f"), "/data/d/f");
        assert_eq!(parent_path("/data/d/f"), "/data/d");
        assert_eq!(parent_path("/data"), "/");
    }

    /// A mount table source that answers once, then fails as an unreachable etcd does.
    struct FailsAfterOnce(std::sync::atomic::AtomicBool);

    impl MountSource for FailsAfterOnce {
        fn mount_table(&self) -> BoxFuture<'_, Result<MountTable, String>> {
            let answered = self.0.swap(true, std::sync::atomic::Ordering::SeqCst);
            Box::pin(std::future::ready(if answered {
                Err("etcd is unreachable".into())
            } else {
                Ok(MountTable::new())
            }))
        }
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_mount_table_that_cannot_be_refreshed_is_kept_with_one_warning_not_one_per_lookup() {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish();
        let client = Client::new(
            loam_client::PeerClient::build(Default::default()).unwrap(),
            loam_client::MembershipView::fixed(Vec::new(), 5),
            None,
        );
        // TTL 0 (`--attr-timeout 0`): every lookup asks for the mount table again.
        let ns = Namespace::new(client, Arc::new(FailsAfterOnce(Default::default())), Duration::ZERO, (0, 0));
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..200 {
                assert!(rt.block_on(ns.mount_table()).is_ok(), "the last table is kept");
            }
        });
        let text = String::from_utf8(out.0.lock().clone()).unwrap();
        assert_eq!(text.matches("cannot refresh the mount table").count(), 1, "{text}");
    }
}
