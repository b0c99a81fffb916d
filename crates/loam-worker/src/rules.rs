//! The cache rules on this worker. The Coordinator stores TTL, priority and quota rules by cluster path
//! (`/loam/<cluster>/rules/<kind>/`); every worker follows them from the cluster store and applies them to
//! its own cache, so neither the data path nor the background scans ever ask the Coordinator.
//!
//! - `rule_view`: the worker's copy of one kind of rule, kept current by a watch; lookups by UFS URI go
//!   through the mount view (`crate::cluster::mount_view`).
//! - `ttl`: the scan that drops files older than their TTL.
//! - `priority`: the page store's eviction priorities, following the priority rules.
//! - `quota`: this worker's usage per quota and the admission that stops caching under a full quota.
//! - `periodic`: the one shape of the rule loops (the TTL scan and the quota pass).
//!
//! Each works on the page store from outside, through its public calls; the store knows no rule.

pub mod periodic;
pub mod priority;
pub mod quota;
pub mod rule_view;
pub mod ttl;
