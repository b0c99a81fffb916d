//! Loam's worker: caches pages of UFS files in memory and on disk, reads through to the UFS on a miss
//! (once per page however many requests wait), keeps cached files fresh, and serves the Alluxio-compatible
//! worker HTTP API and an S3-compatible API (`s3_api`). Several workers can run in one process
//! (`loam local`, tests): nothing is global.
//!
//! **The data path** is the top level of this crate. A read arrives through `http_api` (Alluxio's worker
//! API) or `s3_api`; a page read that names only a file id finds its URI through `path_ids`; `read_through`
//! serves it from the page store (the `loam-page-store` crate), reading the UFS once per missing run of
//! pages. A write goes through `write_through` to the UFS, then drops the old version from every worker's
//! cache. The Coordinator's job batches arrive as `tasks` (load, free, verify, peer copy) and read through
//! the same way. `worker` starts and stops it all; `config` and `settings` configure it; `metrics` and
//! `error` serve every part.
//!
//! Around the data path, two groups, each of which only reads or adjusts the page store from outside:
//!
//! - `rules`: the cache rules the Coordinator stores and every worker follows on its own cache (TTL,
//!   priority, quota), through its view of the rules in the cluster store.
//! - `cluster`: this worker as a member of the cluster: its identity on the ring, its view of the mount
//!   table, its reports to the Coordinator's file index, and the clear-stale scan that drops what the ring
//!   no longer gives it.

pub mod cluster;
pub mod config;
pub mod error;
pub mod http_api;
pub mod meta_cache;
pub mod metrics;
pub mod non_owner;
pub mod path_ids;
pub mod read_through;
pub mod rules;
pub mod s3_api;
pub mod settings;
pub mod tasks;
pub mod worker;
pub mod write_through;

pub use config::WorkerConfig;
pub use settings::WorkerSettings;
pub use worker::{WorkerHandle, start};
