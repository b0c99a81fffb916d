//! Loam's client: the membership view (live workers and the hash ring over them), ring lookup, and reads
//! with failover — the primary worker, then the replicas, then (unless turned off) the UFS itself.
//! The data path never goes through the Coordinator. `peer` is the one client for calls between nodes;
//! `coordinator` the one client of the Coordinator's API, over a list of Coordinators.

pub mod coordinator;
pub mod membership;
pub mod peer;
pub mod reader;
pub mod static_members;
pub mod tls;

pub use coordinator::Coordinators;
pub use membership::{MembershipView, Ring, WorkerEndpoint};
pub use peer::{PeerClient, PeerError};
pub use reader::{Client, ClientError, VersionPin};
