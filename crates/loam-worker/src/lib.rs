//! Loam's worker: caches pages of UFS files in memory and on disk, reads through to the UFS on a miss
//! (once per page however many requests wait), keeps cached files fresh, and serves the Alluxio-compatible
//! worker HTTP API and an S3-compatible API (`s3_api`). Several workers can run in one process
//! (`loam local`, tests): nothing is global.

pub mod clear_stale;
pub mod config;
pub mod error;
pub mod file_report;
pub mod http_api;
pub mod identity;
pub mod metrics;
pub mod mount_view;
pub mod path_ids;
pub mod periodic;
pub mod priority;
pub mod quota;
pub mod read_through;
pub mod rule_view;
pub mod s3_api;
pub mod settings;
pub mod tasks;
pub mod ttl;
pub mod worker;
pub mod write_through;

pub use config::WorkerConfig;
pub use settings::WorkerSettings;
pub use worker::{WorkerHandle, start};
