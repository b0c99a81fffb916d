//! The settings of one mount, with defaults that suit streaming reads of large files (the defaults'
//! one place is here; `settings` gives them to `loam fuse`'s flags and config file).

use crate::readahead::ReadAheadConfig;
use std::path::PathBuf;
use std::time::Duration;

/// Default time the kernel and the mount may reuse an entry, attributes or a listing.
pub const DEFAULT_ATTR_TTL: Duration = Duration::from_secs(1);
/// Default kernel read-ahead of the mount.
pub const DEFAULT_KERNEL_READAHEAD: u32 = 4 << 20;
/// Default threads reading requests from the kernel. They only read a request and hand it to a task
/// (the reply is written by the task), a few microseconds each, so two keep up with the kernel's queue;
/// more help only when the runtime's tasks are starved of them.
pub const DEFAULT_THREADS: usize = 2;
/// Default requests the kernel may have outstanding in the background: its read-ahead and, with
/// `FUSE_ASYNC_DIO`, direct and asynchronous reads (fio `libaio`). Above it the kernel makes readers
/// wait, so it caps the queue depth the mount sees over all files: 64 covers 4 jobs at depth 16.
pub const DEFAULT_MAX_BACKGROUND: u16 = 64;

/// Whether short-circuit reads are on unless told: yes (they are used only where a local worker is found).
pub const DEFAULT_SHORT_CIRCUIT: bool = true;

/// How a mount behaves.
#[derive(Clone, Debug)]
pub struct FuseConfig {
    /// Where the cluster namespace appears.
    pub mount_point: PathBuf,
    /// How long the kernel and the mount may reuse an entry, attributes or a directory listing.
    pub attr_ttl: Duration,
    /// Client read-ahead per open file.
    pub readahead: ReadAheadConfig,
    /// The kernel's read-ahead for the mount in bytes (raised through sysfs where allowed).
    pub kernel_readahead: u32,
    /// Threads reading requests from the kernel (replies come from the async runtime).
    pub threads: usize,
    /// Background requests the kernel may have outstanding (`max_background` in the FUSE handshake; its
    /// congestion threshold is the kernel's default, three quarters of it).
    pub max_background: u16,
    /// Let other users than the mounting one use the mount (`allow_other`; non-root mounts need
    /// `user_allow_other` in /etc/fuse.conf).
    pub allow_other: bool,
    /// Read a local worker's page files directly when one holds the file (`short_circuit.rs`).
    pub short_circuit: bool,
}

impl FuseConfig {
    /// Defaults for a mount at `mount_point`: a 1 s TTL, 2 read-ahead windows of 4 MiB, 4 MiB kernel read-ahead.
    pub fn new(mount_point: impl Into<PathBuf>) -> Self {
        Self {
            mount_point: mount_point.into(),
            attr_ttl: DEFAULT_ATTR_TTL,
            readahead: ReadAheadConfig::default(),
            kernel_readahead: DEFAULT_KERNEL_READAHEAD,
            threads: DEFAULT_THREADS,
            max_background: DEFAULT_MAX_BACKGROUND,
            allow_other: false,
            short_circuit: DEFAULT_SHORT_CIRCUIT,
        }
    }
}
