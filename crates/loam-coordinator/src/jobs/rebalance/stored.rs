//! A rebalance's plan in the cluster store, so whichever Coordinator leads next resumes the job with the
//! same items under the same cursor (the plan file on the leader's disk is only a cache of it).
//!
//! - **Layout** (format [`STORED_PLAN_VERSION`]): under `store_keys::rebalance_plan_prefix(cluster, id)`,
//!   `v1/chunk/<n>` (n = 000000, 000001, ...) hold the plan file's bytes in order, at most [`CHUNK_BYTES`]
//!   each (etcd takes values up to 1.5 MiB by default), and `v1/header` is a JSON [`Header`]: the job, the
//!   plan's id, the number of chunks, the length and the SHA-256 of the bytes. A later format writes under
//!   its own `v<n>/`, which an older reader simply does not find (it plans again).
//! - **Whole or absent.** [`save`] first deletes whatever an earlier plan of the job left, then writes the
//!   chunks, then the header. A header is therefore written only after every chunk it counts, and [`load`]
//!   checks the count, the length and the checksum: a missing header is "no plan", a missing or changed
//!   chunk is an error, and either way the caller plans again.
//! - **Fenced.** Every write and delete goes through the leader [`Fence`](crate::leader::Fence): a deposed
//!   leader can neither write a plan nor delete the new leader's.
//! - **Bounded.** A plan file over [`MAX_STORED_PLAN_BYTES`] is not stored (see there): it stays only on the
//!   disk of the Coordinator that made it, which is the behaviour before plans were stored — a job resumed
//!   by another Coordinator plans again and counts from zero.
//! - **Deleted** with the job record at retention (`RebalanceRunner::job_prefixes`).

use crate::jobs::ctx::JobsCtx;
use crate::leader::Fence;
use bytes::Bytes;
use loam_core::store_keys::rebalance_plan_prefix;
use loam_store::{ClusterStore, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;

/// Version of the stored plan's layout; its keys are under `v<version>/`.
pub const STORED_PLAN_VERSION: u32 = 1;
/// Most bytes of one chunk: etcd refuses requests over 1.5 MiB (`--max-request-bytes`, default); 1 MiB
/// leaves room for the key and the fencing transaction around it.
pub const CHUNK_BYTES: usize = 1 << 20;
/// Largest plan kept in the store, 64 MiB (about 400,000 items). etcd keeps its whole data set in memory
/// and refuses writes once its backend passes `--quota-backend-bytes` (2 GiB by default), counting old
/// revisions until they are compacted; a few plans of this size stay far below that. A bigger plan is kept
/// only on the disk of the Coordinator that made it.
pub const MAX_STORED_PLAN_BYTES: u64 = 64 << 20;

/// The header of a stored plan.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// [`STORED_PLAN_VERSION`].
    pub version: u32,
    /// The job's id.
    pub job: String,
    /// The plan's id (also in the plan file's first line and the job record's `PlanSummary`).
    pub plan: String,
    /// How many chunks.
    pub chunks: u64,
    /// The plan file's length.
    pub bytes: u64,
    /// SHA-256 of the plan file, lowercase hex.
    pub sha256: String,
}

/// What [`save`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Saved {
    /// The plan is in the store.
    Stored,
    /// Over [`MAX_STORED_PLAN_BYTES`] (its length): only the local file has it.
    TooLarge(u64),
}

/// Why a stored plan cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the stored plan is incomplete or damaged: {0}")]
    Damaged(String),
}

fn version_prefix(cluster: &str, job: &str) -> String {
    format!("{}v{STORED_PLAN_VERSION}/", rebalance_plan_prefix(cluster, job))
}

fn chunk_key(cluster: &str, job: &str, n: u64) -> String {
    format!("{}chunk/{n:06}", version_prefix(cluster, job))
}

fn header_key(cluster: &str, job: &str) -> String {
    format!("{}header", version_prefix(cluster, job))
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Stores plan `plan` of job `job` (the plan file at `path`) through `fence`, replacing any earlier one.
pub async fn save(fence: &Fence, cluster: &str, job: &str, plan: &str, path: &Path) -> Result<Saved, StoreError> {
    // An earlier plan's chunks must not survive into this one (nor its header past a failed write).
    fence.delete_prefix(&rebalance_plan_prefix(cluster, job)).await?;
    let io = |e: std::io::Error| StoreError::Other(format!("cannot read the plan file {}: {e}", path.display()));
    let len = tokio::fs::metadata(path).await.map_err(io)?.len();
    if len > MAX_STORED_PLAN_BYTES {
        return Ok(Saved::TooLarge(len));
    }
    let bytes = tokio::fs::read(path).await.map_err(io)?;
    let mut chunks = 0;
    for chunk in bytes.chunks(CHUNK_BYTES) {
        fence.put(&chunk_key(cluster, job, chunks), Bytes::copy_from_slice(chunk)).await?;
        chunks += 1;
    }
    let header = Header {
        version: STORED_PLAN_VERSION,
        job: job.to_string(),
        plan: plan.to_string(),
        chunks,
        bytes: bytes.len() as u64,
        sha256: sha256_hex(&bytes),
    };
    let value =
        serde_json::to_vec(&header).map_err(|e| StoreError::Other(format!("cannot encode a plan header: {e}")))?;
    fence.put(&header_key(cluster, job), value.into()).await?;
    Ok(Saved::Stored)
}

/// Job `job`'s stored plan: its header and the plan file's bytes; `None` when no header is stored.
pub async fn load(store: &dyn ClusterStore, cluster: &str, job: &str) -> Result<Option<(Header, Vec<u8>)>, LoadError> {
    let Some(kv) = store.get(&header_key(cluster, job)).await? else { return Ok(None) };
    let header: Header =
        serde_json::from_slice(&kv.value).map_err(|e| LoadError::Damaged(format!("unreadable header: {e}")))?;
    if header.version != STORED_PLAN_VERSION || header.job != job {
        return Err(LoadError::Damaged(format!("the header is of another plan: {header:?}")));
    }
    let mut bytes = Vec::with_capacity(header.bytes.min(MAX_STORED_PLAN_BYTES) as usize);
    for n in 0..header.chunks {
        let kv = store
            .get(&chunk_key(cluster, job, n))
            .await?
            .ok_or_else(|| LoadError::Damaged(format!("chunk {n} of {} is missing", header.chunks)))?;
        bytes.extend_from_slice(&kv.value);
    }
    if bytes.len() as u64 != header.bytes || sha256_hex(&bytes) != header.sha256 {
        return Err(LoadError::Damaged(format!(
            "{} bytes whose checksum does not match the header's ({} bytes)",
            bytes.len(),
            header.bytes
        )));
    }
    Ok(Some((header, bytes)))
}

/// The store prefix of job `id`'s plan (every version), deleted with the job.
pub fn prefix(ctx: &JobsCtx, id: &str) -> String {
    rebalance_plan_prefix(&ctx.cluster, id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use loam_store::{Election, EmbeddedStore, EtcdOptions, EtcdStore, SoleLeader, StoreResult};
    use std::sync::Arc;
    use std::time::Duration;

    const CLUSTER: &str = "c";

    /// A plan file of `len` bytes (distinct content, so a chunk out of place changes the checksum).
    fn plan_file(dir: &Path, name: &str, len: usize) -> (std::path::PathBuf, Vec<u8>) {
        let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8 ^ (i / 251) as u8).collect();
        let path = dir.join(name);
        std::fs::write(&path, &bytes).unwrap();
        (path, bytes)
    }

    async fn keys(store: &dyn ClusterStore, job: &str) -> StoreResult<Vec<String>> {
        let all = loam_store::list_all(store, &rebalance_plan_prefix(CLUSTER, job)).await?;
        Ok(all.into_iter().map(|kv| kv.key).collect())
    }

    #[tokio::test]
    async fn a_plan_in_chunks_reads_back_whole_and_a_missing_header_or_chunk_is_no_plan() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ClusterStore> = EmbeddedStore::open(&dir.path().join("s.redb")).unwrap();
        let fence = Fence::new(SoleLeader::new(store.clone()));
        // Two whole chunks and a part of a third.
        let (path, bytes) = plan_file(dir.path(), "p", 2 * CHUNK_BYTES + 12345);
        assert_eq!(save(&fence, CLUSTER, "j", "plan-1", &path).await.unwrap(), Saved::Stored);
        let (header, back) = load(store.as_ref(), CLUSTER, "j").await.unwrap().expect("a stored plan");
        assert_eq!((header.chunks, header.bytes, header.plan.as_str()), (3, bytes.len() as u64, "plan-1"));
        assert!(back == bytes, "the bytes read back are the bytes written");
        let stored = keys(store.as_ref(), "j").await.unwrap();
        assert_eq!(stored.len(), 4, "three chunks and a header: {stored:?}");
        assert!(load(store.as_ref(), CLUSTER, "other").await.unwrap().is_none(), "another job has none");

        // A smaller plan replaces it entirely: no chunk of the first one is left.
        let (small, small_bytes) = plan_file(dir.path(), "q", 100);
        save(&fence, CLUSTER, "j", "plan-2", &small).await.unwrap();
        let (header, back) = load(store.as_ref(), CLUSTER, "j").await.unwrap().unwrap();
        assert_eq!((header.chunks, header.plan.as_str(), back), (1, "plan-2", small_bytes));
        assert_eq!(keys(store.as_ref(), "j").await.unwrap().len(), 2);

        // A missing chunk: not a plan (an error the runner answers by planning again).
        save(&fence, CLUSTER, "j", "plan-1", &path).await.unwrap();
        store.delete(&chunk_key(CLUSTER, "j", 1)).await.unwrap();
        let e = load(store.as_ref(), CLUSTER, "j").await.unwrap_err();
        assert!(e.to_string().contains("chunk 1 of 3 is missing"), "{e}");
        // A chunk changed (a partial rewrite): the checksum tells.
        save(&fence, CLUSTER, "j", "plan-1", &path).await.unwrap();
        store.put(&chunk_key(CLUSTER, "j", 2), Bytes::from_static(b"x"), None).await.unwrap();
        let e = load(store.as_ref(), CLUSTER, "j").await.unwrap_err();
        assert!(e.to_string().contains("checksum"), "{e}");
        // Chunks without a header (a write cut off before its end): no plan.
        save(&fence, CLUSTER, "j", "plan-1", &path).await.unwrap();
        store.delete(&header_key(CLUSTER, "j")).await.unwrap();
        assert!(load(store.as_ref(), CLUSTER, "j").await.unwrap().is_none());

        // Deleted with the job: nothing is left under its prefix.
        fence.delete_prefix(&rebalance_plan_prefix(CLUSTER, "j")).await.unwrap();
        assert!(keys(store.as_ref(), "j").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_plan_over_the_bound_is_not_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ClusterStore> = EmbeddedStore::open(&dir.path().join("s.redb")).unwrap();
        let fence = Fence::new(SoleLeader::new(store.clone()));
        let (path, _) = plan_file(dir.path(), "p", 10);
        save(&fence, CLUSTER, "j", "small", &path).await.unwrap();
        // A sparse file: its length is over the bound without writing 64 MiB.
        let big = dir.path().join("big");
        std::fs::File::create(&big).unwrap().set_len(MAX_STORED_PLAN_BYTES + 1).unwrap();
        let saved = save(&fence, CLUSTER, "j", "big", &big).await.unwrap();
        assert_eq!(saved, Saved::TooLarge(MAX_STORED_PLAN_BYTES + 1));
        assert!(load(store.as_ref(), CLUSTER, "j").await.unwrap().is_none(), "nor is the earlier plan kept");
    }

    /// On a real etcd: a leader whose lease is gone (another Coordinator leads now) can neither write a
    /// plan nor delete the new leader's.
    #[tokio::test]
    async fn a_deposed_leaders_plan_write_is_refused_by_the_fence() {
        let etcd = loam_testsupport::EtcdServer::start();
        let store = EtcdStore::connect(vec![etcd.endpoint()], EtcdOptions::default()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (path, bytes) = plan_file(dir.path(), "p", CHUNK_BYTES + 10);
        let (other, _) = plan_file(dir.path(), "q", 10);
        let election: Arc<dyn Election> = store.clone();
        let name = "/loam/c/coordinator-leader";
        let old_lease = store.grant_lease(Duration::from_secs(60)).await.unwrap();
        let old = Fence::leading(election.clone(), election.campaign(name, "http://old", old_lease).await.unwrap());
        assert_eq!(save(&old, CLUSTER, "j", "old", &other).await.unwrap(), Saved::Stored, "it leads: it writes");
        // Its lease ends (a dead or cut-off leader); another Coordinator leads and stores its plan.
        store.revoke_lease(old_lease).await.unwrap();
        let new_lease = store.grant_lease(Duration::from_secs(60)).await.unwrap();
        let new = Fence::leading(election.clone(), election.campaign(name, "http://new", new_lease).await.unwrap());
        save(&new, CLUSTER, "j", "new", &path).await.unwrap();
        let e = save(&old, CLUSTER, "j", "old", &other).await.unwrap_err();
        assert!(e.to_string().contains("does not lead"), "{e}");
        let e = old.delete_prefix(&rebalance_plan_prefix(CLUSTER, "j")).await.unwrap_err();
        assert!(e.to_string().contains("does not lead"), "{e}");
        let (header, back) = load(store.as_ref(), CLUSTER, "j").await.unwrap().expect("the new leader's plan");
        assert_eq!((header.plan.as_str(), header.chunks), ("new", 2));
        assert!(back == bytes, "untouched by the deposed leader");
    }
}
