//! The Coordinator's integration tests, one binary: a real Coordinator over real HTTP on a free port, alone
//! (`loam_testsupport::coordinator`, over an embedded store or a real etcd) or with real workers on one store
//! reading one `FaultyUfs` (`loam_testsupport::cluster`): every endpoint's status codes and bodies, jobs end
//! to end, rules reaching workers, the file index. nextest runs every test in a process of its own (which
//! `file_index_memory`, reading the process RSS, needs).

mod auth_api;
mod clear_stale_api;
mod drain;
mod edge;
mod file_index_api;
mod file_index_memory;
mod jobs_api;
mod jobs_churn;
mod jobs_load;
mod jobs_options;
mod jobs_quota;
mod jobs_s3;
mod jobs_shutdown;
mod metrics_api;
mod mount_api;
mod mount_confinement;
mod mount_s3;
mod mount_secret_refs;
mod node_stats_api;
mod nodes_api;
mod probes_api;
mod quota_api;
mod rebalance_api;
mod rebalance_jobs;
mod rules_reach_workers;
mod ttl_priority_api;

use loam_testsupport::cluster::{Cluster, Options};
use std::time::Duration;

/// Page size of the workers of the job tests.
const PAGE: u64 = 16 * 1024;
/// How often those workers report quota usage and scan for TTLs, and the Coordinator checks a load's quotas.
const POLICY_INTERVAL: Duration = Duration::from_millis(100);

/// The job tests' cluster: `n` workers with 16 KiB pages (64 in memory, 1024 on disk) and a Coordinator,
/// `/data` on a local directory behind `FaultyUfs`, policies checked every [`POLICY_INTERVAL`].
fn jobs(n: usize) -> Options {
    Options {
        workers: n,
        page_size: PAGE,
        memory_size: 64 * PAGE,
        cache_size: 1024 * PAGE,
        ufs_read_size: 4 * PAGE,
        policy_interval: Some(POLICY_INTERVAL),
        coordinator: true,
        ..Options::default()
    }
}

/// [`jobs`] started.
async fn cluster(n: usize) -> Cluster {
    Cluster::start(jobs(n)).await
}
