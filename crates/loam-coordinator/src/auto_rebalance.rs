//! `--auto-rebalance`: a rebalance of target `ALL` once the membership has settled after a change.
//!
//! - **What counts as a change**: the set of ONLINE worker ids (liveness keys). An address change of the
//!   same worker does not move files on the ring, so it does not count.
//! - **Settling** ([`Settle`]): after a change, the set must stay unchanged for `auto-rebalance-delay`; a
//!   change during the wait starts the wait again, so a flapping membership (a crash loop, a rolling
//!   restart) starts nothing until it is quiet. The set the Coordinator finds when it starts is the
//!   baseline: a restart alone starts nothing.
//! - **Submission** goes through `JobService::submit_rebalance`, the path of `POST /api/v1/rebalance`, so
//!   the job is an ordinary rebalance (listed, stoppable) and its twin rule holds: while a rebalance of
//!   `ALL` is unfinished the submission answers that job, and the loop tries again at its next look
//!   until a new job starts (the unfinished one may have planned over the ring before the change).
//! - **Where it runs**: started and stopped with the job runners (`Coordinator::serve`), so it runs
//!   exactly where jobs run. It reads the membership every [`POLL`] (a quarter of the delay when that is
//!   shorter).

use crate::coordinator::Coordinator;
use crate::jobs::record::ALL;
use crate::jobs::workers::live_workers;
use crate::jobs::{JobService, Submitted};
use loam_core::job_api::RebalanceRequest;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Default of `auto-rebalance-delay`.
pub const DEFAULT_AUTO_REBALANCE_DELAY: Duration = Duration::from_secs(30);
/// How often, at most, the membership is read.
pub const POLL: Duration = Duration::from_secs(1);

/// The settling rule, apart from time and I/O: fed each set of ONLINE worker ids seen, it says when a
/// rebalance is due.
#[derive(Debug)]
pub struct Settle {
    delay: Duration,
    seen: Option<BTreeSet<String>>,
    /// When the set last changed, while a rebalance is owed for it.
    owed_since: Option<Instant>,
}

impl Settle {
    /// A rule waiting `delay` after the last change.
    pub fn new(delay: Duration) -> Self {
        Self { delay, seen: None, owed_since: None }
    }

    /// Takes the set seen at `now`; true when a rebalance is due (the set changed, then stayed the same
    /// for the delay). The first set is the baseline.
    pub fn observe(&mut self, set: BTreeSet<String>, now: Instant) -> bool {
        match &self.seen {
            None => self.seen = Some(set),
            Some(old) if *old != set => {
                self.seen = Some(set);
                self.owed_since = Some(now);
            }
            Some(_) => {}
        }
        self.owed_since.is_some_and(|since| now.duration_since(since) >= self.delay)
    }

    /// The owed rebalance was submitted.
    pub fn submitted(&mut self) {
        self.owed_since = None;
    }
}

/// Starts the loop; it ends when `shutdown` turns true (or its sender is dropped).
pub fn spawn(c: Arc<Coordinator>, delay: Duration, mut shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
    let poll = POLL.min(delay / 4).max(Duration::from_millis(10));
    tokio::spawn(async move {
        tracing::info!(delay = ?delay, "auto-rebalance on");
        let mut settle = Settle::new(delay);
        loop {
            match live_workers(c.store().as_ref(), c.cluster_name()).await {
                Ok(live) => {
                    let set = live.iter().map(|w| w.id.to_string()).collect();
                    // Every Coordinator watches; only the leader, which runs the jobs, submits (a follower
                    // that becomes leader submits what is still owed).
                    if settle.observe(set, Instant::now()) && c.leader().get().leading {
                        submit(c.jobs(), &mut settle).await;
                    }
                }
                Err(e) => loam_core::warn_limited!("auto-rebalance cannot read the membership: {e}"),
            }
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => break,
                _ = tokio::time::sleep(poll) => {}
            }
        }
        tracing::debug!("auto-rebalance stopped");
    })
}

async fn submit(jobs: &JobService, settle: &mut Settle) {
    let req = RebalanceRequest { target: ALL.to_string(), options: Default::default() };
    match jobs.submit_rebalance(req).await {
        Ok(Submitted::New(id)) => {
            tracing::info!(job = %id, "the membership changed and settled: rebalance of ALL started");
            settle.submitted();
        }
        // Planned before the change, perhaps: try again once it has ended.
        Ok(Submitted::Existing(id)) => tracing::debug!(job = %id, "a rebalance of ALL is unfinished; waiting"),
        Err(e) => loam_core::warn_limited!("auto-rebalance could not submit a rebalance: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_change_is_rebalanced_once_after_it_settled() {
        let d = Duration::from_secs(30);
        let t0 = Instant::now();
        let mut s = Settle::new(d);
        assert!(!s.observe(set(&["a", "b"]), t0), "the baseline owes nothing");
        assert!(!s.observe(set(&["a", "b"]), t0 + 10 * d), "no change, no rebalance");
        let t1 = t0 + 11 * d;
        assert!(!s.observe(set(&["a", "b", "c"]), t1), "a change waits");
        assert!(!s.observe(set(&["a", "b", "c"]), t1 + d / 2));
        assert!(s.observe(set(&["a", "b", "c"]), t1 + d), "settled for the delay");
        assert!(s.observe(set(&["a", "b", "c"]), t1 + 2 * d), "owed until submitted");
        s.submitted();
        assert!(!s.observe(set(&["a", "b", "c"]), t1 + 3 * d), "submitted once");
    }

    #[test]
    fn a_flapping_membership_starts_nothing_until_it_is_quiet() {
        let d = Duration::from_secs(30);
        let t0 = Instant::now();
        let mut s = Settle::new(d);
        s.observe(set(&["a", "b", "c"]), t0);
        let mut t = t0;
        for i in 0..20 {
            t += d / 2;
            let now = if i % 2 == 0 { set(&["a", "b"]) } else { set(&["a", "b", "c"]) };
            assert!(!s.observe(now, t), "flap {i}");
        }
        // Back where it started, but something changed since the last rebalance: one is owed.
        assert!(!s.observe(set(&["a", "b", "c"]), t + d - Duration::from_millis(1)));
        assert!(s.observe(set(&["a", "b", "c"]), t + d));
    }
}
