//! Quota usage: what the cluster caches under each quota path, summed from the workers' reports.
//!
//! Workers apply quotas locally (`loam-worker`'s `quota` module): each one periodically writes its cached
//! bytes per quota path to the cluster store (`store_keys::quota_usage_key`) and reads everyone's to know
//! which quotas are exceeded. The coordinator sums the same records for `GET /api/v1/quota`, so both
//! sides agree without any coordinator-to-worker traffic and a restarted coordinator has usage at once.
//!
//! **Decision:** only records of workers still registered in the membership count; a worker removed
//! with `DELETE /api/v1/nodes` takes its usage with it. A registered but offline worker still counts:
//! its cache is still on its disk and comes back with it.
//!
//! **Decision:** a load job whose path lies under an `Exceeded` quota is refused at submission (`400`,
//! naming the quota); a job under a quota that fills up while it runs goes on, and the workers simply
//! stop caching under it. Jobs given an index file are not checked (their paths are only read later).
//!
//! **Decision:** a quota's path may not contain nor lie inside another quota's path (`400`), so each
//! cached file counts against at most one quota.

use crate::coordinator::Coordinator;
use crate::rules::RuleError;
use loam_core::path::PathRules;
use loam_core::rules::{PathRule, QuotaRule, QuotaState, QuotaStatus};
pub use loam_store::quota_usage::cluster_usage;
use std::collections::BTreeMap;

/// The status of `rule` given the cluster's usage.
pub fn status(rule: PathRule<QuotaRule>, usage: &BTreeMap<String, u64>) -> QuotaStatus {
    let used = usage.get(&rule.path).copied().unwrap_or(0);
    // Load jobs do not reserve quota yet: nothing is planned-but-unloaded as far as quotas know.
    let reserved = 0;
    QuotaStatus {
        state: QuotaState::of(rule.rule.quota_bytes, used, reserved),
        path: rule.path,
        quota_bytes: rule.rule.quota_bytes,
        used_bytes: used,
        reserved_bytes: reserved,
    }
}

/// Refuses a load of `paths` (cluster paths or UFS URIs) when one of them lies under an exceeded quota.
pub async fn check_load(c: &Coordinator, paths: &[String]) -> Result<(), RuleError> {
    let rules = c.quota().list().await?;
    if rules.is_empty() || paths.is_empty() {
        return Ok(());
    }
    let table = c.mounts().table().await.map_err(|e| RuleError::Invalid(e.to_string()))?;
    let usage = cluster_usage(c.store().as_ref(), c.cluster_name()).await?;
    let mut by_path = PathRules::new();
    for r in rules {
        by_path.insert(r.path.clone(), r);
    }
    for p in paths {
        // Paths under no mount are the job service's to refuse, with its own message.
        let Ok(resolved) = table.resolve(p) else { continue };
        let Some((_, rule)) = by_path.lookup(&resolved.cluster_path) else { continue };
        let s = status(rule.clone(), &usage);
        if s.state == QuotaState::Exceeded {
            return Err(RuleError::Invalid(format!(
                "quota exceeded: {} is under the quota at {} ({} of {} bytes used)",
                p, s.path, s.used_bytes, s.quota_bytes
            )));
        }
    }
    Ok(())
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

    fn rule(path: &str) -> PathRule<QuotaRule> {
        PathRule { path: path.into(), rule: QuotaRule { quota_bytes: 1 } }
    }

    #[test]
    fn nesting_is_by_whole_components() {
        let others = [rule("/d/a")];
        assert!(check_not_nested("/d/a/b", &others).is_err());
        assert!(check_not_nested("/d", &others).is_err());
        assert!(check_not_nested("/d/ab", &others).is_ok());
        assert!(check_not_nested("/d/b", &others).is_ok());
    }
}
