//! What the store holds, per tier and per cache directory, read off its own state (the index, each
//! directory's health, its error counter) for a worker's `GET /v1/stats`. Nothing here is counted twice:
//! the numbers are the ones `publish` sets its gauges from (`capacities`, `dir_usage`), read in one lock.

use super::PageStore;
use super::health::label;
use loam_core::stats_api::{DirStats, TierStats};

impl PageStore {
    /// The memory tier and the disk tier (the sum of the directories).
    pub fn tier_stats(&self) -> (TierStats, TierStats) {
        let idx = self.index.lock();
        let u = idx.usage();
        let (memory_capacity, disk_capacity) = idx.capacities();
        let memory = TierStats { capacity_bytes: memory_capacity, used_bytes: u.memory_bytes, pages: u.memory_pages };
        (memory, TierStats { capacity_bytes: disk_capacity, used_bytes: u.disk_bytes, pages: u.disk_pages })
    }

    /// Each cache directory, in the configured order.
    pub fn dir_stats(&self) -> Vec<DirStats> {
        let usage: Vec<_> = {
            let idx = self.index.lock();
            (0..self.dirs.len()).map(|d| idx.dir_usage(d)).collect()
        };
        self.dirs
            .iter()
            .zip(usage)
            .map(|(dir, (used_bytes, pages, capacity_bytes))| {
                let (healthy, problem) = {
                    let state = dir.state.lock();
                    (state.healthy, state.problem.clone())
                };
                let errors = self.metrics.dir_errors.get_or_create(&label(dir)).get();
                let path = dir.path.display().to_string();
                DirStats { path, healthy, problem, capacity_bytes, used_bytes, pages, errors }
            })
            .collect()
    }
}
