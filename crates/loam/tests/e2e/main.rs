//! The `loam` binary end to end, one test binary: real `loam` processes (`loam local`, `loam coordinator`,
//! `loam worker`, `loam fuse`, the CLI) with real etcd, moto, FUSE and the unmodified Python clients.
//! nextest runs every test in a process of its own.
//!
//! Shared helpers: `process` (the binary under test, one-shot runs, servers), `http` (a blocking GET),
//! `local_process` (a `loam local` for the CLI tests), `cluster` (etcd, a Coordinator and workers as
//! processes).

mod cluster;
mod http;
mod local_process;
mod process;

mod alluxio_client;
mod alluxiofs;
mod cluster_ops_cli;
mod console;
mod diag_cli;
mod distributed;
mod fuse;
mod ha;
mod ha_clients;
mod job_cli;
mod local_cli;
mod logs;
mod monitoring;
mod openapi;
mod partitions;
mod private_files;
mod processes;
mod rebalance_cli;
mod request_ids;
mod rules_cli;
mod security;
mod security_output;
mod startup;
mod status_cli;
mod tls;
