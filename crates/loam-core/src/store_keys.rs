//! Keys Loam writes in the cluster store, besides Alluxio's membership keys (see `membership`).
//! Everything Loam-specific lives under `/loam/<cluster>/`, one sub-prefix per concern.

/// Prefix of the mount table: one key per mount, `/loam/<cluster>/mounts/<name>`, value a JSON `Mount`.
pub fn mounts_prefix(cluster: &str) -> String {
    format!("/loam/{cluster}/mounts/")
}

/// The key of the mount at cluster path `/<name>`.
pub fn mount_key(cluster: &str, name: &str) -> String {
    format!("{}{name}", mounts_prefix(cluster))
}

/// Prefix of the jobs of one kind (`load`, `free`, `rebalance`): one key per job, `/loam/<cluster>/jobs/<kind>/<id>`.
pub fn jobs_prefix(cluster: &str, kind: &str) -> String {
    format!("/loam/{cluster}/jobs/{kind}/")
}

/// Prefix of rebalance job `id`'s stored plan: `/loam/<cluster>/jobs/rebalance-plan/<id>/`, under which each
/// format version has its own `v<version>/` with a `header` and `chunk/<n>` keys. Beside the rebalance records
/// (`jobs/rebalance/`), not under them: listing the jobs reads every key under their prefix, values included,
/// and a plan may be many megabytes.
pub fn rebalance_plan_prefix(cluster: &str, id: &str) -> String {
    format!("/loam/{cluster}/jobs/rebalance-plan/{id}/")
}

/// Prefix of the rules of one kind (`ttl`, `priority`, `quota`): `/loam/<cluster>/rules/<kind>/`.
pub fn rules_prefix(cluster: &str, kind: &str) -> String {
    format!("/loam/{cluster}/rules/{kind}/")
}

/// The key of the rule of `kind` at the normalised cluster path `path` (`/data/x` -> `.../rules/ttl/data/x`).
pub fn rule_key(cluster: &str, kind: &str, path: &str) -> String {
    format!("{}{}", rules_prefix(cluster, kind), path.trim_start_matches('/'))
}

/// Prefix of the workers' quota usage records: `/loam/<cluster>/quota-usage/<worker id>`.
pub fn quota_usage_prefix(cluster: &str) -> String {
    format!("/loam/{cluster}/quota-usage/")
}

/// The key of one worker's quota usage record.
pub fn quota_usage_key(cluster: &str, worker: &str) -> String {
    format!("{}{worker}", quota_usage_prefix(cluster))
}

/// The election name of the Coordinators' leader (etcd's election API): `/loam/<cluster>/coordinator-leader`;
/// each candidate's key is under it, and the leader's value is its advertised URL.
pub fn coordinator_leader_election(cluster: &str) -> String {
    format!("/loam/{cluster}/coordinator-leader")
}
