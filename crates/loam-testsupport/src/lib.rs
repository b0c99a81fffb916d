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
