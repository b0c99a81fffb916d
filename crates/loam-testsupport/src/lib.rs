//! Test harness shared by the workspace's tests and its benchmarks (`loam-bench`); nothing here is used
//! by a shipped binary.
//!
//! - Real servers started on 127.0.0.1 for one test each: an S3 test server ([`S3TestServer`]), etcd
//!   ([`EtcdServer`]), `loam` server processes ([`process::Server`]), all under a watchdog that kills them
//!   with the test process, and free ports to run them on; etcd optionally over TLS with client
//!   certificates, from a test CA ([`certs`]).
//! - With the `cluster` feature, in-process clusters on Loam's own crates: workers and a Coordinator on a
//!   real store over a real UFS ([`cluster::Cluster`]), or a Coordinator alone
//!   ([`coordinator::TestCoordinator`]).
//! - Deterministic test bytes ([`data`]) and files of the package under test ([`package_file`]).
//!
//! Servers are real processes or real in-process servers, not mocks: each test starts its own on free
//! ports and the handle stops it on drop, so tests run in parallel without sharing state.

pub mod auth;
pub mod certs;
#[cfg(feature = "cluster")]
pub mod cluster;
#[cfg(feature = "cluster")]
pub mod coordinator;
pub mod data;
pub mod etcd_server;
pub mod http;
pub mod netns;
pub mod ports;
pub mod process;
pub mod s3_server;
pub mod tls;
pub mod wait;
pub mod watchdog;

pub use etcd_server::{EtcdServer, EtcdTls};
pub use ports::free_port;
pub use s3_server::S3TestServer;

/// `rel` under the manifest directory of the package whose test is running, read from the environment at
/// run time (cargo and nextest set `CARGO_MANIFEST_DIR`). A path compiled in with `env!` goes stale when
/// a shared target directory serves checkouts at different paths: cargo does not rebuild a test because
/// its checkout moved.
pub fn package_file(rel: &str) -> std::path::PathBuf {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo test and nextest set CARGO_MANIFEST_DIR");
    std::path::PathBuf::from(dir).join(rel)
}
