//! Loam's Coordinator: the REST API under `/api/v1` (`docs/API.md`).
//!
//! The crate is split in two layers. The *services* (`mounts`, `jobs`, `rules` and `quota`, ...) hold the
//! domain logic on top of the cluster store and the UFS registry and know nothing about HTTP. The *edge*
//! (`api`) turns HTTP requests into service calls: one module per endpoint family (`api/mount.rs`,
//! `api/nodes.rs`, ...), one error type ([`ApiError`]) with one status mapping, and extractors that turn
//! every malformed request into a `400` with a `{"status": ...}` body. [`Coordinator`] ties the two
//! together and serves the router with graceful shutdown.

pub mod api;
pub mod auto_rebalance;
pub mod clear_stale;
pub mod coordinator;
pub mod file_index;
pub mod jobs;
pub mod leader;
pub mod metrics;
pub mod mounts;
pub mod quota;
pub mod rules;
pub mod settings;

pub use api::error::ApiError;
pub use coordinator::{Coordinator, CoordinatorConfig};
pub use jobs::{JobError, JobService};
pub use mounts::{MountService, MountServiceError};
pub use rules::{RuleError, RuleService};
pub use settings::CoordinatorSettings;
