//! loam-fuse's integration tests, one binary: the mount against real in-process workers
//! (`loam_testsupport::cluster`) and the kernel's FUSE. The `loam fuse` binary is tested end to end in
//! `crates/loam/tests/e2e/fuse.rs`.

mod cache;
mod metrics;
mod mount;
mod short_circuit;
mod versions;
