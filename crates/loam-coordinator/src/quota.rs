//! Quota usage and reservations: what the cluster caches under each quota path, summed from the workers'
//! reports, and what running load jobs have planned there but not loaded yet.
//!
//! Workers apply quotas locally (`loam-worker`'s `quota` module): each one periodically writes its cached
//! bytes per quota path to the cluster store (`store_keys::quota_usage_key`) and reads everyone's to know
//! which quotas are exceeded. The coordinator sums the same records for `GET /api/v1/quota`, so both
//! sides agree without any coordinator-to-worker traffic and a restarted coordinator has usage at once.
//! Reservations (`reservedBytes`) live in the job service's memory (`jobs::reservations`): only the runners of
//! this coordinator know them, and they are gone with the runs that made them.
//!
//! **Decision:** only records of workers still registered in the membership count; a worker removed
//! with `DELETE /api/v1/nodes` takes its usage with it. A registered but offline worker still counts:
//! its cache is still on its disk and comes back with it.
//!
//! **Decision:** a quota is `Exceeded` while `usedBytes + reservedBytes >= quotaBytes` (the spec's rule).
//! A load whose path lies under an `Exceeded` quota is refused at submission (`400`, with the reason in
//! both `status` and `quotaCheckError`); what happens to a load while it runs is `jobs::quota`'s.
//!
//! **Decision:** a quota's path may not contain nor lie inside another quota's path (`400`), so each
//! cached file counts against at most one quota.

use crate::rules::{RuleError, RuleService};
use loam_core::path::PathRules;
use loam_core::rules::{PathRule, QuotaRule, QuotaState, QuotaStatus};
use loam_store::ClusterStore;
pub use loam_store::quota_usage::cluster_usage;
use loam_ufs::MountTable;
use std::collections::BTreeMap;

/// The status of `rule` given the cluster's usage and the running loads' reservations (both by quota path).
pub fn status(
    rule: PathRule<QuotaRule>,
    usage: &BTreeMap<String, u64>,
    reserved: &BTreeMap<String, u64>,
) -> QuotaStatus {
    let used = usage.get(&rule.path).copied().unwrap_or(0);
    let reserved = reserved.get(&rule.path).copied().unwrap_or(0);
    QuotaStatus {
        state: QuotaState::of(rule.rule.quota_bytes, used, reserved),
        path: rule.path,
        quota_bytes: rule.rule.quota_bytes,
        used_bytes: used,
        reserved_bytes: reserved,
    }
}

/// The quotas at one moment: every rule with the cluster's usage and the reservations under it.
#[derive(Clone, Debug, Default)]
pub struct QuotaSnapshot {
    rules: PathRules<u64>,
    usage: BTreeMap<String, u64>,
    reserved: BTreeMap<String, u64>,
}

impl QuotaSnapshot {
    /// A snapshot of `rules` with `usage` and `reserved` bytes by quota path.
    pub fn new(rules: Vec<PathRule<QuotaRule>>, usage: BTreeMap<String, u64>, reserved: BTreeMap<String, u64>) -> Self {
        let mut by_path = PathRules::new();
        for r in rules {
            by_path.insert(r.path, r.rule.quota_bytes);
        }
        Self { rules: by_path, usage, reserved }
    }

    /// Reads the rules of `quotas` and the usage in `store`; `reserved` comes from the job service.
    /// `None` when quotas are disabled.
    pub async fn load(
        quotas: &RuleService<QuotaRule>,
        store: &dyn ClusterStore,
        cluster: &str,
        reserved: BTreeMap<String, u64>,
    ) -> Result<Option<Self>, RuleError> {
        if !quotas.enabled() {
            return Ok(None);
        }
        let rules = quotas.list().await?;
        // Without rules there is nothing to sum: skip the usage records (the common case stays one listing).
        let usage = if rules.is_empty() { BTreeMap::new() } else { cluster_usage(store, cluster).await? };
        Ok(Some(Self::new(rules, usage, reserved)))
    }

    /// Replaces the reservations (after a job moved its own to new rules).
    pub fn set_reserved(&mut self, reserved: BTreeMap<String, u64>) {
        self.reserved = reserved;
    }

    /// Whether `other` has the same rules (usage and reservations aside).
    pub fn same_rules(&self, other: &QuotaSnapshot) -> bool {
        self.rules.iter().eq(other.rules.iter())
    }

    /// Whether there is no quota at all.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The path of the quota that data at `cluster_path` counts against, if any.
    pub fn quota_above(&self, cluster_path: &str) -> Option<String> {
        self.rules.lookup(cluster_path).map(|(p, _)| p.to_string())
    }

    /// The status of the quota at exactly `quota_path`.
    pub fn status(&self, quota_path: &str) -> Option<QuotaStatus> {
        let quota_bytes = *self.rules.get(quota_path)?;
        let rule = PathRule { path: quota_path.to_string(), rule: QuotaRule { quota_bytes } };
        Some(status(rule, &self.usage, &self.reserved))
    }

    /// Why a load of `paths` (cluster paths or UFS URIs) is refused: the first one under an `Exceeded`
    /// quota. Paths under no mount are left to the job service, which refuses them with its own message.
    pub fn refusal(&self, table: &MountTable, paths: &[String]) -> Option<String> {
        paths.iter().find_map(|p| {
            let resolved = table.resolve(p).ok()?;
            let s = self.status(&self.quota_above(&resolved.cluster_path)?)?;
            (s.state == QuotaState::Exceeded).then(|| {
                format!(
                    "quota exceeded: {p} is under the quota at {} ({} bytes used and {} reserved by running loads, \
                     of {} bytes)",
                    s.path, s.used_bytes, s.reserved_bytes, s.quota_bytes
                )
            })
        })
    }
}

/// Refuses a quota at `path` that contains or lies inside one of `others`.
pub fn check_not_nested(path: &str, others: &[PathRule<QuotaRule>]) -> Result<(), String> {
    match others.iter().find(|o| is_within(path, &o.path) || is_within(&o.path, path)) {
        Some(o) => {
            Err(format!("quota at {path} would nest with the quota at {}; nested quotas are not allowed", o.path))
        }
        None => Ok(()),
    }
}

/// Whether `path` is `dir` or lies under it (whole components).
fn is_within(path: &str, dir: &str) -> bool {
    path == dir || dir == "/" || path.strip_prefix(dir).is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use loam_ufs::Mount;

    fn rule(path: &str, quota_bytes: u64) -> PathRule<QuotaRule> {
        PathRule { path: path.into(), rule: QuotaRule { quota_bytes } }
    }

    #[test]
    fn nesting_is_by_whole_components() {
        let others = [rule("/d/a", 1)];
        assert!(check_not_nested("/d/a/b", &others).is_err());
        assert!(check_not_nested("/d", &others).is_err());
        assert!(check_not_nested("/d/ab", &others).is_ok());
        assert!(check_not_nested("/d/b", &others).is_ok());
    }

    #[test]
    fn reservations_count_towards_the_state() {
        let usage = BTreeMap::from([("/d/a".to_string(), 60)]);
        let reserved = BTreeMap::from([("/d/a".to_string(), 30)]);
        assert_eq!(status(rule("/d/a", 100), &usage, &reserved).state, QuotaState::Available);
        let reserved = BTreeMap::from([("/d/a".to_string(), 40)]);
        let s = status(rule("/d/a", 100), &usage, &reserved);
        assert_eq!((s.state, s.used_bytes, s.reserved_bytes), (QuotaState::Exceeded, 60, 40));
    }

    #[test]
    fn a_load_is_refused_only_under_an_exceeded_quota() {
        let table = MountTable::from_mounts([Mount::new("/d", "s3://b/p", Default::default()).unwrap()]);
        let usage = BTreeMap::from([("/d/a".to_string(), 10)]);
        let reserved = BTreeMap::from([("/d/a".to_string(), 90)]);
        let snap = QuotaSnapshot::new(vec![rule("/d/a", 100), rule("/d/b", 100)], usage, reserved);
        assert_eq!(snap.quota_above("/d/a/x/y").as_deref(), Some("/d/a"));
        assert_eq!(snap.quota_above("/d/c"), None);
        let why = snap.refusal(&table, &["/d/b/x".into(), "s3://b/p/a/f".into()]).unwrap();
        assert!(why.contains("s3://b/p/a/f") && why.contains("/d/a") && why.contains("90 reserved"), "{why}");
        assert_eq!(snap.refusal(&table, &["/d/b".into(), "/d/c".into(), "/nomount".into()]), None);
    }
}
