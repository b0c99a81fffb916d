//! Test harness shared by the workspace's tests: free ports, and real servers started on 127.0.0.1 for
//! one test each (an S3 test server, etcd). Nothing here is used outside tests.
//!
//! Servers are real processes, not mocks: each test starts its own on a free port and the handle kills
//! it on drop, so tests run in parallel without sharing state.

pub mod etcd_server;
pub mod ports;
pub mod s3_server;
pub mod watchdog;

pub use etcd_server::EtcdServer;
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
