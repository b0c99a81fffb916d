//! Quotas in load jobs: the bytes running loads reserve, and the check that stops a load whose quota is
//! full (spec "Quota", load progress `quota` / `quotaCheckError`).
//!
//! - **Reservation, per file.** When the runner plans a file it resolves the file's UFS URI to its cluster
//!   path and the quota above it, and reserves the file's length once per worker it is sent to (usage
//!   counts every replica, so reservations do too); each worker's final answer (loaded, skipped as cached,
//!   or failed) releases its share. `reservedBytes` of a quota is the sum over this coordinator's running
//!   loads (`reservations::Reservations`): matched bytes planned so far minus those decided. Accounting per file, not
//!   per job path, is what lets a job on `/data` that spans the quotas `/data/a` and `/data/b` charge each
//!   one exactly. A run's reservations end with the run (finished, stopped, failed, or the coordinator
//!   shutting down); a resumed job reserves again as it re-plans. While a worker is loading a file its
//!   pages may show in `usedBytes` before the file's reservation is released: both count it for up to one
//!   usage report.
//! - **The stop rule.** A running load checks the quotas it falls under (those above its paths, and those
//!   above each file it plans: that is how an index-file load, whose paths are only known as the listing
//!   reads them, is checked) when it starts, every `quota_check_interval`, and at once when a file brings
//!   it under a quota it had not met yet. **Decision:** the job is stopped only when a quota is exceeded
//!   by *actual usage* (`usedBytes >= quotaBytes`); reservations (its own and other jobs') never stop a
//!   running job, they only refuse new submissions. Otherwise a job whose plan is bigger than its quota
//!   would stop itself before loading anything. The check happens before any batch of a newly met quota's
//!   files is sent.
//! - **Decision:** a load stopped for quota ends `FAILED` (not `STOPPED`) with `quotaCheckError` naming
//!   the quota. `STOPPED` is what a user's `DELETE` gives and a resubmission resumes; a job the cluster
//!   refused to continue has failed, and submitting it again starts a new job that is checked afresh.
//!   Batches already sent are abandoned as on a user stop (the workers finish them; their admission
//!   already refuses pages under the full quota).
//! - **Progress.** `quota` shows the quota, among those the job falls under, with the least room left at
//!   the last check: `totalBytes` its `quotaBytes`, `remaining` `quotaBytes - usedBytes - reservedBytes`
//!   floored at 0. It stays `{0, 0}` when quotas are disabled or the job falls under none.
//! - **Decision:** a metadata-only load caches no pages, so quotas neither refuse nor stop it.

use super::ctx::JobsCtx;
use super::job::Job;
use crate::quota::QuotaSnapshot;
use loam_core::job_api::QuotaInfo;
use loam_ufs::MountTable;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use tokio::time::Instant;

/// A planned, undecided file: where it is, the quota it is reserved under (if any), its bytes per
/// worker and the workers yet to answer.
#[derive(Debug)]
struct Held {
    uri: String,
    quota: Option<String>,
    length: u64,
    left: usize,
}

/// One load run's view of its quotas: what it reserved, which quotas it falls under, and whether one of
/// them is full. Dropping it releases the run's reservations.
pub(super) struct QuotaGuard<'a> {
    ctx: &'a JobsCtx,
    job: &'a Job,
    id: String,
    table: Arc<MountTable>,
    /// The cluster paths of the job's paths (none for an index-file load).
    job_paths: Vec<String>,
    snapshot: QuotaSnapshot,
    files: HashMap<u64, Held>,
    met: BTreeSet<String>,
    violation: Option<String>,
    next_check: Instant,
}

impl<'a> QuotaGuard<'a> {
    /// A guard for `job`, whose files resolve through `table`; `None` when quotas are disabled.
    pub fn new(ctx: &'a JobsCtx, job: &'a Job, table: Arc<MountTable>) -> Option<Self> {
        if !ctx.quota.enabled() {
            return None;
        }
        let rec = job.snapshot();
        let job_paths = rec.paths.iter().filter_map(|p| table.resolve(p).ok()).map(|r| r.cluster_path).collect();
        Some(Self {
            ctx,
            job,
            id: rec.id,
            table,
            job_paths,
            snapshot: QuotaSnapshot::default(),
            files: HashMap::new(),
            met: BTreeSet::new(),
            violation: None,
            next_check: Instant::now(),
        })
    }

    /// When the next check is due.
    pub fn next_check(&self) -> Instant {
        self.next_check
    }

    /// Why the job must stop, once one of its quotas is full.
    pub fn violation(&self) -> Option<&str> {
        self.violation.as_deref()
    }

    /// Reads the quotas, the usage and the reservations again and checks every quota the job falls under.
    /// A failed read keeps the last snapshot: a store hiccup must not fail a load.
    pub async fn check(&mut self) {
        self.next_check = Instant::now() + self.ctx.quota_check_interval;
        let reserved = self.ctx.reservations.total();
        match QuotaSnapshot::load(&self.ctx.quota, self.ctx.store.as_ref(), &self.ctx.cluster, reserved).await {
            Ok(Some(s)) => {
                let changed = !s.same_rules(&self.snapshot);
                self.snapshot = s;
                if changed {
                    self.remap();
                    self.snapshot.set_reserved(self.ctx.reservations.total());
                }
            }
            Ok(None) => return,
            Err(e) => tracing::warn!(job = %self.id, "cannot read the quotas (kept the last known state): {e}"),
        }
        let above: Vec<String> = self.job_paths.iter().filter_map(|p| self.snapshot.quota_above(p)).collect();
        self.met.extend(above);
        let met: Vec<String> = self.met.iter().cloned().collect();
        for q in &met {
            self.judge(q);
        }
        self.publish();
    }

    /// Reserves file `i` (`length` bytes at `uri`, sent to `workers` workers) under its quota, if any.
    /// Every undecided file is remembered, so a quota set while the job runs gets its share at the next
    /// check (`remap`).
    pub fn reserve(&mut self, i: u64, uri: &str, length: u64, workers: usize) {
        let quota = self.quota_of(uri);
        if let Some(q) = &quota {
            self.ctx.reservations.add(&self.id, q, length.saturating_mul(workers as u64));
            if self.met.insert(q.clone()) {
                self.judge(q);
                self.publish();
            }
        }
        self.files.insert(i, Held { uri: uri.to_string(), quota, length, left: workers });
    }

    /// One worker's final answer for file `i`: its share of the reservation is released.
    pub fn release(&mut self, i: u64) {
        let Some(h) = self.files.get_mut(&i) else { return };
        if let Some(q) = &h.quota {
            self.ctx.reservations.release(&self.id, q, h.length);
        }
        h.left = h.left.saturating_sub(1);
        if h.left == 0 {
            self.files.remove(&i);
        }
    }

    /// The quota above the data at `uri` under the current rules.
    fn quota_of(&self, uri: &str) -> Option<String> {
        if self.snapshot.is_empty() {
            return None;
        }
        let resolved = self.table.resolve(uri).ok()?;
        self.snapshot.quota_above(&resolved.cluster_path)
    }

    /// Moves the reservations of the undecided files to the quotas the new rules put them under.
    fn remap(&mut self) {
        let mut moved = Vec::new();
        for h in self.files.values_mut() {
            let now = if self.snapshot.is_empty() {
                None
            } else {
                self.table.resolve(&h.uri).ok().and_then(|r| self.snapshot.quota_above(&r.cluster_path))
            };
            if now == h.quota {
                continue;
            }
            let bytes = h.length.saturating_mul(h.left as u64);
            if let Some(old) = &h.quota {
                self.ctx.reservations.release(&self.id, old, bytes);
            }
            if let Some(new) = &now {
                self.ctx.reservations.add(&self.id, new, bytes);
                moved.push(new.clone());
            }
            h.quota = now;
        }
        self.met.extend(moved);
    }

    /// Notes a violation when the quota at `quota` is full by actual usage (the stop rule).
    fn judge(&mut self, quota: &str) {
        if self.violation.is_some() {
            return;
        }
        let Some(s) = self.snapshot.status(quota) else { return };
        if s.used_bytes >= s.quota_bytes {
            self.violation = Some(format!(
                "quota exceeded: the quota at {} holds {} bytes of its {} bytes; the load was stopped",
                s.path, s.used_bytes, s.quota_bytes
            ));
        }
    }

    /// Shows the tightest quota the job falls under in its progress.
    fn publish(&self) {
        let tightest = self
            .met
            .iter()
            .filter_map(|q| self.snapshot.status(q))
            .map(|s| QuotaInfo {
                total_bytes: s.quota_bytes,
                remaining: s.quota_bytes.saturating_sub(s.used_bytes.saturating_add(s.reserved_bytes)),
            })
            .min_by_key(|q| q.remaining);
        if let Some(q) = tightest
            && self.job.snapshot().quota != q
        {
            self.job.update(|r| r.quota = q);
        }
    }
}

impl Drop for QuotaGuard<'_> {
    fn drop(&mut self) {
        self.ctx.reservations.clear(&self.id);
    }
}
