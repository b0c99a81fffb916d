//! Loam's FUSE mount: the cluster namespace as a read-only file system. The root lists one directory
//! per mount point; below them, directories and files are what the workers list and stat, and file
//! bytes are read through [`loam_client::Client`] (the owning worker by the ring, then its replicas,
//! then the UFS), never through the Coordinator.
//!
//! Design, by module:
//! - `mount`: making the mount with fuser (pure Rust, no libfuse) and taking it down on drop;
//! - `fs`: fuser's callbacks, which answer from tasks on a tokio runtime so no slow read blocks the
//!   session threads;
//! - `namespace`: lookups, attributes and listings, cached for a short TTL;
//! - `inodes`: stable inode numbers (a hash of the path, and of a file's version: one inode per
//!   version, so the size the kernel clamps reads to is the version's that a handle reads) in a table
//!   as large as the kernel's cache;
//! - `files` and `readahead`: reads, with client read-ahead for sequential streams;
//! - `short_circuit`: reads of a local worker's page files, checked as the worker checks them, before HTTP;
//! - `metrics`: operation latency, errors, bytes read and read-ahead hits, and their `/metrics` listener;
//! - `meta`, `config`, `settings`, `error`: attributes, settings (and their flags and keys), errors (ENOENT for missing paths, EIO for failures,
//!   EROFS for writes).

pub mod config;
pub mod error;
pub mod files;
pub mod fs;
pub mod inodes;
pub mod meta;
pub mod metrics;
pub mod mount;
pub mod namespace;
pub mod readahead;
pub mod settings;
pub mod short_circuit;

pub use config::FuseConfig;
pub use error::FuseError;
pub use metrics::FuseMetrics;
pub use mount::{MountedFs, is_mounted, mount};
pub use namespace::MountSource;
pub use readahead::ReadAheadConfig;
pub use settings::FuseSettings;
