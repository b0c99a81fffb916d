//! Loam's shared vocabulary: worker and file ids, the consistent hash ring, path rules, the wire types
//! of the Coordinator and worker APIs, and error kinds. This crate does no I/O.

pub mod cluster_ops_api;
pub mod coordinator_api;
pub mod error;
pub mod hash_ring;
pub mod id;
pub mod job_api;
pub mod log_limit;
pub mod membership;
pub mod murmur3;
pub mod openapi;
pub mod path;
pub mod private_fs;
pub mod probe_api;
pub mod read_at;
pub mod request_id;
pub mod rules;
pub mod secrets;
pub mod size;
pub mod stats_api;
pub mod store_keys;
pub mod time;
pub mod version;
pub mod worker_api;

pub use error::ErrorKind;
pub use hash_ring::HashRing;
pub use id::{WorkerId, WorkerIdentity, file_id};
