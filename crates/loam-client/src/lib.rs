//! Loam's client: the membership view (live workers and the hash ring over them), ring lookup, and reads
//! with failover — the primary worker, then the replicas, then (unless turned off) the UFS itself.
//! The data path never goes through the Coordinator.

pub mod membership;
pub mod reader;
pub mod static_members;

pub use membership::{MembershipView, Ring, WorkerEndpoint};
pub use reader::{Client, ClientError};
