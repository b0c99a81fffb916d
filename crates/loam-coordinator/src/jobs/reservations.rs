//! The bytes that running loads reserve under each quota (`reservedBytes`), in this Coordinator's memory:
//! one entry per running load and quota path. A load's run adds a file's bytes when it plans the file and
//! releases them as each worker answers (`quota::QuotaGuard`); the run's end clears what is left. How
//! reservations count against quotas is `quota`'s header; the submission check is `JobService::reserved`.

use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};

/// Bytes reserved by each running load, by job id and quota path.
#[derive(Debug, Default)]
pub struct Reservations {
    by_job: Mutex<HashMap<String, BTreeMap<String, u64>>>,
}

impl Reservations {
    /// Reserves `bytes` under `quota` for `job`.
    pub fn add(&self, job: &str, quota: &str, bytes: u64) {
        let mut all = self.by_job.lock();
        let mine = all.entry(job.to_string()).or_default();
        *mine.entry(quota.to_string()).or_default() += bytes;
    }

    /// Releases `bytes` of `job`'s reservation under `quota`.
    pub fn release(&self, job: &str, quota: &str, bytes: u64) {
        let mut all = self.by_job.lock();
        let Some(mine) = all.get_mut(job) else { return };
        if let Some(r) = mine.get_mut(quota) {
            *r = r.saturating_sub(bytes);
            if *r == 0 {
                mine.remove(quota);
            }
        }
        if mine.is_empty() {
            all.remove(job);
        }
    }

    /// Drops everything `job` reserved (its run ended).
    pub fn clear(&self, job: &str) {
        self.by_job.lock().remove(job);
    }

    /// The reserved bytes by quota path, over every running load.
    pub fn total(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for mine in self.by_job.lock().values() {
            for (quota, bytes) in mine {
                *out.entry(quota.clone()).or_default() += bytes;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_sum_over_jobs_and_vanish_when_released() {
        let r = Reservations::default();
        r.add("j1", "/d/a", 100);
        r.add("j1", "/d/b", 10);
        r.add("j2", "/d/a", 5);
        assert_eq!(r.total(), BTreeMap::from([("/d/a".into(), 105), ("/d/b".into(), 10)]));
        r.release("j1", "/d/a", 60);
        r.release("j1", "/d/b", 99);
        assert_eq!(r.total(), BTreeMap::from([("/d/a".into(), 45)]));
        r.clear("j1");
        assert_eq!(r.total(), BTreeMap::from([("/d/a".into(), 5)]));
        r.release("j2", "/d/a", 5);
        assert!(r.total().is_empty() && r.by_job.lock().is_empty());
    }
}
