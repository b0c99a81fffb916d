//! The `fuser::Filesystem`: the glue between the kernel's requests and the namespace and open files.
//!
//! fuser calls these methods on its session threads and expects them not to block, so anything that
//! may touch the network is spawned on the tokio runtime with the reply (fuser's `Reply*` values are
//! `Send`): a slow read never holds up a `stat` behind it. Whatever only reads local state (cached
//! attributes, an open right after its lookup, readdir from the snapshot taken at opendir, forget)
//! answers in place.
//!
//! An open pins the version its inode stands for (`inodes.rs`: one inode per version of a file). A file
//! opened again since its last lookup may have been replaced within the TTL, so that open first checks
//! the path's version (one stat, close-to-open as NFS does); when it changed, the open answers `ESTALE`,
//! on which the kernel looks the path up again and retries the open once, on the new version's inode.
//!
//! The kernel's page cache is kept across opens (`FOPEN_KEEP_CACHE`): without it the kernel drops an
//! inode's cached pages on every open, and the second epoch of a training run reads the whole file
//! through the mount again. Keeping them is exact because an inode's bytes never change: every page
//! the kernel caches for an inode was read pinned to that inode's version, and a new version is a new
//! inode, so a replaced file is read from the new inode with an empty cache while the old inode's pages
//! serve only handles still open on it and go when the kernel forgets it.
//!
//! Queue depth: the kernel sends reads without waiting for earlier ones (`FUSE_ASYNC_READ`, fuser's
//! default) up to `max_background` in flight, and with `FUSE_ASYNC_DIO` does the same for direct
//! reads submitted asynchronously (fio `libaio`, `--direct=1`); without that flag the kernel turns each
//! such read into a synchronous one, and a queue of 16 reaches the mount one read at a time. Each read
//! is answered by its own task, so the reads in flight at the mount are as many as the kernel sends.
//!
//! Every request that would change something answers `EROFS`, though with the `ro` mount option the
//! kernel refuses most of them before they get here.
//!
//! Every request is measured (`metrics.rs`) from its arrival to its reply, where the reply is made.

use crate::config::FuseConfig;
use crate::files::OpenFile;
use crate::metrics::{FuseMetrics, Op};
use crate::namespace::{DirEntry, Namespace, ToOpen};
use crate::readahead::ReadAheadConfig;
use bytes::Bytes;
use fuser::{
    Errno, FileHandle, FopenFlags, Generation, INodeNo, InitFlags, KernelConfig, LockOwner, OpenAccMode, OpenFlags,
    ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite,
    Request, WriteFlags,
};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use tokio::sync::watch;

/// State shared by the session threads and the tasks answering requests.
struct Inner {
    ns: Namespace,
    ttl: Duration,
    readahead: ReadAheadConfig,
    files: Mutex<HashMap<u64, Arc<OpenFile>>>,
    dirs: Mutex<HashMap<u64, Arc<Vec<DirEntry>>>>,
    next_fh: AtomicU64,
    metrics: Arc<FuseMetrics>,
}

impl Inner {
    /// Records the outcome of a request of `op` that arrived at `start`, and passes it on.
    fn seen<T>(&self, op: Op, start: Instant, r: Result<T, Errno>) -> Result<T, Errno> {
        self.metrics.observe(op, start, &r);
        r
    }

    /// Answers a read of `file` received at `start` with its bytes (and whether read-ahead windows served
    /// them) or its error, and counts it.
    fn answer_read(&self, file: &OpenFile, start: Instant, read: Result<(Bytes, bool), Errno>, reply: ReplyData) {
        match self.seen(Op::Read, start, read) {
            Ok((bytes, from_windows)) => {
                self.metrics.read_bytes(bytes.len());
                if file.readahead_on() {
                    self.metrics.readahead(from_windows);
                }
                reply.data(&bytes)
            }
            Err(e) => reply.error(e),
        }
    }

    /// Opens `file` as handle `fh`, pinned to the version of its inode.
    fn opened(&self, fh: u64, file: ToOpen, reply: ReplyOpen) {
        let sc = self.ns.short_circuit().map(|sc| sc.open(file.uri.clone()));
        let file = OpenFile::new(file.uri, file.path, file.size, file.version.as_deref(), self.readahead).with(sc);
        self.files.lock().insert(fh, Arc::new(file));
        // The inode stands for one version, whose bytes the kernel's pages hold (see the header).
        reply.opened(FileHandle(fh), FopenFlags::FOPEN_KEEP_CACHE);
    }
}

/// The filesystem fuser runs. Dropping it (the session ended) flips `ended`.
pub struct LoamFs {
    inner: Arc<Inner>,
    rt: Handle,
    kernel_readahead: u32,
    max_background: u16,
    ended: watch::Sender<bool>,
}

impl Drop for LoamFs {
    fn drop(&mut self) {
        let _ = self.ended.send(true);
    }
}

impl LoamFs {
    /// A filesystem over `ns` configured by `cfg`, answering on `rt`, measured in `metrics`; `ended`
    /// turns true when the session is over.
    pub fn new(
        ns: Namespace,
        cfg: &FuseConfig,
        rt: Handle,
        ended: watch::Sender<bool>,
        metrics: Arc<FuseMetrics>,
    ) -> Self {
        let inner = Inner {
            ns,
            ttl: cfg.attr_ttl,
            readahead: cfg.readahead,
            files: Mutex::new(HashMap::new()),
            dirs: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            metrics,
        };
        let (kernel_readahead, max_background) = (cfg.kernel_readahead, cfg.max_background);
        Self { inner: Arc::new(inner), rt, kernel_readahead, max_background, ended }
    }

    fn fh(&self) -> u64 {
        self.inner.next_fh.fetch_add(1, Ordering::Relaxed)
    }

    /// Counts a refused change (`op` `modify`) and returns its errno.
    fn refuse(&self) -> Errno {
        self.inner.metrics.observe::<()>(Op::Modify, Instant::now(), &Err(Errno::EROFS));
        Errno::EROFS
    }
}

impl fuser::Filesystem for LoamFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // The kernel offers at most its current read-ahead (128 KiB by default); `mount.rs` raises the
        // mount's read-ahead through sysfs afterwards, where that is allowed.
        if let Err(max) = config.set_max_readahead(self.kernel_readahead) {
            let _ = config.set_max_readahead(max);
        }
        let _ = config.set_max_background(self.max_background);
        // Each where the kernel offers it: a kernel without one works, only without what it brings.
        for flag in [InitFlags::FUSE_AUTO_INVAL_DATA, InitFlags::FUSE_PARALLEL_DIROPS, InitFlags::FUSE_ASYNC_DIO] {
            if let Err(missing) = config.add_capabilities(flag) {
                tracing::info!("the kernel does not offer {missing:?}");
            }
        }
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let start = Instant::now();
        let Some(name) = name.to_str().map(str::to_string) else {
            return reply.error(self.inner.seen::<()>(Op::Lookup, start, Err(Errno::ENOENT)).unwrap_err());
        };
        let inner = self.inner.clone();
        self.rt.spawn(async move {
            match inner.seen(Op::Lookup, start, inner.ns.lookup(parent.0, &name).await) {
                Ok(attr) => reply.entry(&inner.ttl, &attr, Generation(0)),
                Err(e) => reply.error(e),
            }
        });
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.inner.ns.forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let start = Instant::now();
        if let Some(attr) = self.inner.ns.cached_attr(ino.0) {
            self.inner.metrics.observe(Op::Getattr, start, &Ok::<_, Errno>(()));
            return reply.attr(&self.inner.ttl, &attr);
        }
        let inner = self.inner.clone();
        self.rt.spawn(async move {
            match inner.seen(Op::Getattr, start, inner.ns.getattr(ino.0).await) {
                Ok(attr) => reply.attr(&inner.ttl, &attr),
                Err(e) => reply.error(e),
            }
        });
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let start = Instant::now();
        if flags.acc_mode() != OpenAccMode::O_RDONLY {
            return reply.error(self.inner.seen::<()>(Op::Open, start, Err(Errno::EROFS)).unwrap_err());
        }
        let (file, check) = match self.inner.seen(Op::Open, start, self.inner.ns.open(ino.0)) {
            Ok(f) => f,
            Err(e) => return reply.error(e),
        };
        let fh = self.fh();
        if !check {
            return self.inner.opened(fh, file, reply);
        }
        let inner = self.inner.clone();
        self.rt.spawn(async move {
            if inner.ns.still_current(&file).await {
                inner.opened(fh, file, reply);
            } else {
                // The kernel looks the path up again and retries the open once, on the new version's inode.
                tracing::debug!("open {}: replaced since its lookup, ESTALE", file.path);
                inner.metrics.observe::<()>(Op::Open, start, &Err(Errno::ESTALE));
                reply.error(Errno::ESTALE);
            }
        });
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let start = Instant::now();
        let Some(file) = self.inner.files.lock().get(&fh.0).cloned() else {
            return reply.error(self.inner.seen::<()>(Op::Read, start, Err(Errno::EBADF)).unwrap_err());
        };
        tracing::trace!(fh = fh.0, offset, size, "read");
        let inner = self.inner.clone();
        let in_flight = inner.metrics.read_started();
        // A local page-cache read is answered here, on the session thread; the rest go to the runtime.
        let now = file.read_now(offset, size);
        if let Some(Some(bytes)) = now {
            drop(in_flight);
            return inner.answer_read(&file, start, Ok((bytes, false)), reply);
        }
        self.rt.spawn(async move {
            let read = file.read(inner.ns.client(), offset, size, now.is_none()).await;
            // Out of the count before the reply, so the kernel's next read never finds this one counted.
            drop(in_flight);
            inner.answer_read(&file, start, read, reply);
        });
    }

    fn flush(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _owner: LockOwner, reply: ReplyEmpty) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        // Dropping the file drops its read-ahead windows, which aborts their reads.
        let start = Instant::now();
        self.inner.files.lock().remove(&fh.0);
        self.inner.metrics.observe(Op::Release, start, &Ok::<_, Errno>(()));
        reply.ok();
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let start = Instant::now();
        let inner = self.inner.clone();
        let fh = self.fh();
        self.rt.spawn(async move {
            // The listing is taken once per opendir so that readdir's offsets stay consistent.
            match inner.seen(Op::Opendir, start, inner.ns.dir_entries(ino.0).await) {
                Ok(entries) => {
                    inner.dirs.lock().insert(fh, Arc::new(entries));
                    reply.opened(FileHandle(fh), FopenFlags::empty());
                }
                Err(e) => reply.error(e),
            }
        });
    }

    fn readdir(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        let start = Instant::now();
        let Some(entries) = self.inner.dirs.lock().get(&fh.0).cloned() else {
            return reply.error(self.inner.seen::<()>(Op::Readdir, start, Err(Errno::EBADF)).unwrap_err());
        };
        for (i, e) in entries.iter().enumerate().skip(usize::try_from(offset).unwrap_or(usize::MAX)) {
            if reply.add(INodeNo(e.ino), i as u64 + 1, e.kind, &e.name) {
                break;
            }
        }
        self.inner.metrics.observe(Op::Readdir, start, &Ok::<_, Errno>(()));
        reply.ok();
    }

    fn releasedir(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _flags: OpenFlags, reply: ReplyEmpty) {
        let start = Instant::now();
        self.inner.dirs.lock().remove(&fh.0);
        self.inner.metrics.observe(Op::Releasedir, start, &Ok::<_, Errno>(()));
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        self.inner.metrics.observe(Op::Statfs, Instant::now(), &Ok::<_, Errno>(()));
        reply.statfs(0, 0, 0, 0, 0, crate::meta::BLOCK_SIZE, 255, crate::meta::BLOCK_SIZE);
    }

    fn setattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        _size: Option<u64>,
        _atime: Option<fuser::TimeOrNow>,
        _mtime: Option<fuser::TimeOrNow>,
        _ctime: Option<std::time::SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<std::time::SystemTime>,
        _chgtime: Option<std::time::SystemTime>,
        _bkuptime: Option<std::time::SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        reply.error(self.refuse());
    }

    fn mknod(&self, _r: &Request, _p: INodeNo, _n: &OsStr, _m: u32, _u: u32, _d: u32, reply: ReplyEntry) {
        reply.error(self.refuse());
    }

    fn mkdir(&self, _r: &Request, _p: INodeNo, _n: &OsStr, _m: u32, _u: u32, reply: ReplyEntry) {
        reply.error(self.refuse());
    }

    fn unlink(&self, _r: &Request, _p: INodeNo, _n: &OsStr, reply: ReplyEmpty) {
        reply.error(self.refuse());
    }

    fn rmdir(&self, _r: &Request, _p: INodeNo, _n: &OsStr, reply: ReplyEmpty) {
        reply.error(self.refuse());
    }

    fn symlink(&self, _r: &Request, _p: INodeNo, _n: &OsStr, _t: &Path, reply: ReplyEntry) {
        reply.error(self.refuse());
    }

    fn rename(
        &self,
        _r: &Request,
        _p: INodeNo,
        _n: &OsStr,
        _np: INodeNo,
        _nn: &OsStr,
        _f: fuser::RenameFlags,
        reply: ReplyEmpty,
    ) {
        reply.error(self.refuse());
    }

    fn link(&self, _r: &Request, _i: INodeNo, _np: INodeNo, _nn: &OsStr, reply: ReplyEntry) {
        reply.error(self.refuse());
    }

    fn write(
        &self,
        _r: &Request,
        _i: INodeNo,
        _fh: FileHandle,
        _o: u64,
        _d: &[u8],
        _wf: WriteFlags,
        _f: OpenFlags,
        _l: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        reply.error(self.refuse());
    }

    fn create(&self, _r: &Request, _p: INodeNo, _n: &OsStr, _m: u32, _u: u32, _f: i32, reply: ReplyCreate) {
        reply.error(self.refuse());
    }

    fn fallocate(&self, _r: &Request, _i: INodeNo, _fh: FileHandle, _o: u64, _l: u64, _m: i32, reply: ReplyEmpty) {
        reply.error(self.refuse());
    }

    // No extended attributes: ENOSYS makes the kernel stop asking for the rest of the mount (`ls -l`
    // asks for security labels on every entry).
    fn getxattr(&self, _r: &Request, _i: INodeNo, _n: &OsStr, _s: u32, reply: fuser::ReplyXattr) {
        reply.error(Errno::ENOSYS);
    }

    fn listxattr(&self, _r: &Request, _i: INodeNo, _s: u32, reply: fuser::ReplyXattr) {
        reply.error(Errno::ENOSYS);
    }

    fn setxattr(&self, _r: &Request, _i: INodeNo, _n: &OsStr, _v: &[u8], _f: i32, _p: u32, reply: ReplyEmpty) {
        reply.error(self.refuse());
    }

    fn removexattr(&self, _r: &Request, _i: INodeNo, _n: &OsStr, reply: ReplyEmpty) {
        reply.error(self.refuse());
    }
}
