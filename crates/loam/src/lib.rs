//! The `loam` command: `loam local` (coordinator and workers in one process on the embedded store),
//! `loam coordinator` and `loam worker` (the processes of a distributed cluster on etcd), and the CLI
//! that talks to a running cluster (`loam mount …`, `loam nodes`, `loam fs …`).

pub mod allocator;
pub mod assembly;
pub mod cli;
pub mod cluster_store;
pub mod coordinator_cmd;
pub mod fuse_cmd;
pub mod local;
pub mod logging;
pub mod metrics_reference;
pub mod settings;
pub mod startup;
pub mod worker_cmd;
pub mod worker_drain;
