//! This worker as a member of the cluster: what it knows of the rest of the cluster, and what it tells it.
//!
//! - `identity`: its id, kept in its data directory, so a restarted worker takes its old place on the ring
//!   and finds its cache.
//! - `mount_view`: its copy of the mount table, followed from the cluster store, which every path lookup
//!   (data path, rules, S3 buckets) resolves through.
//! - `file_report`: the reports of its cached files to the Coordinator's global file index.
//! - `clear_stale`: the scan that drops the files the current ring no longer gives it.
//! - `drain`: leaving the ring and handing its cached files to their next owners before it exits.
//!
//! Its view of the membership itself is `loam_client::MembershipView`, shared with clients.

pub mod clear_stale;
pub mod drain;
pub mod file_report;
pub mod identity;
pub mod mount_view;
