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

/// Prefix of the jobs of one kind (`load`, `free`): one key per job, `/loam/<cluster>/jobs/<kind>/<id>`.
pub fn jobs_prefix(cluster: &str, kind: &str) -> String {
    format!("/loam/{cluster}/jobs/{kind}/")
}
