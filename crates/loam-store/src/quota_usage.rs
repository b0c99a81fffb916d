//! Cluster-wide quota usage: each worker publishes its cached bytes per quota path as one record; the
//! cluster's usage is the sum over the records of workers still registered (a deregistered worker's
//! stale record must not count). The coordinator (for `usedBytes`) and every worker (for admission)
//! read it the same way, here.

use crate::membership::list_workers;
use crate::{ClusterStore, StoreResult, list_all};
use loam_core::rules::{QuotaUsageRecord, sum_usage};
use loam_core::store_keys::quota_usage_prefix;
use std::collections::{BTreeMap, HashSet};

/// Cached bytes per quota path, cluster-wide, from the records of registered workers.
pub async fn cluster_usage(store: &dyn ClusterStore, cluster: &str) -> StoreResult<BTreeMap<String, u64>> {
    let workers: HashSet<String> = list_workers(store, cluster)
        .await?
        .into_iter()
        .filter_map(|m| m.record.worker_id())
        .map(|id| id.to_string())
        .collect();
    let prefix = quota_usage_prefix(cluster);
    let records: Vec<QuotaUsageRecord> = list_all(store, &prefix)
        .await?
        .into_iter()
        .filter(|kv| workers.contains(&kv.key[prefix.len()..]))
        .filter_map(|kv| match QuotaUsageRecord::decode(&kv.value) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(key = %kv.key, "ignoring a quota usage record: {e}");
                None
            }
        })
        .collect();
    Ok(sum_usage(&records))
}
