//! What each entry of a directory listing's owner holds (`/v1/files`).
//!
//! Any worker may answer a listing, but a file is cached on its owner on the ring (and its replicas), not
//! on the worker that lists it: a listing that showed only what the listing worker holds said 0% for files
//! that `/v1/info` on their owner says are 100% cached. So the listing worker groups its file entries by
//! owner and asks each other owner once, in batches of [`BATCH`], over the internal
//! `POST /v1/internal/cached_percent` (each file with the length and ETag this worker listed, so the owner
//! counts only that version); the owners are asked at the same time. An owner that cannot answer (down,
//! slow, an older release) leaves its entries as this worker sees them, with a rate-limited warning: a
//! listing never fails because an owner is away.

use super::WorkerState;
use crate::error::WorkerError;
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use loam_client::WorkerEndpoint;
use loam_client::peer::worker_name;
use loam_core::cluster_ops_api::{
    CACHED_PERCENT_PATH, CLUSTER_OPS_API_VERSION, CachedPercentQuery, CachedPercents, FileVersion,
};
use loam_core::worker_api::FileInfo;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Most files asked of one owner in one request (a body well under the request size limit).
pub const BATCH: usize = 1000;
/// Requests to owners in flight at once, for one listing.
const IN_FLIGHT: usize = 8;
/// How long one owner may take to answer.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Sets `out[i].m_in_alluxio_percentage` of each `(i, file)` that another worker owns to what that owner
/// holds of the file.
pub async fn fill_from_owners(s: &WorkerState, out: &mut [FileInfo], files: Vec<(usize, FileVersion)>) {
    let ring = s.members.ring();
    let mut by_owner: BTreeMap<String, (WorkerEndpoint, Vec<(usize, FileVersion)>)> = BTreeMap::new();
    for (i, f) in files {
        if let Some((_, w)) = ring.primary(&f.uri).filter(|(_, w)| w.id != s.id) {
            by_owner.entry(w.id.to_string()).or_insert_with(|| (w.clone(), Vec::new())).1.push((i, f));
        }
    }
    let batches = by_owner.into_values().flat_map(|(w, files)| {
        let chunks: Vec<Vec<(usize, FileVersion)>> = files.chunks(BATCH).map(<[_]>::to_vec).collect();
        chunks.into_iter().map(move |c| (w.clone(), c))
    });
    let mut answers = futures::stream::iter(batches)
        .map(|(w, chunk)| async move {
            let query = CachedPercentQuery {
                version: CLUSTER_OPS_API_VERSION,
                files: chunk.iter().map(|(_, f)| f.clone()).collect(),
            };
            (ask(s, &w, &query).await, w, chunk)
        })
        .buffer_unordered(IN_FLIGHT);
    while let Some((answer, w, chunk)) = answers.next().await {
        match answer {
            Ok(percents) => {
                for ((i, _), p) in chunk.iter().zip(percents) {
                    out[*i].m_in_alluxio_percentage = p.min(100);
                }
            }
            Err(e) => loam_core::warn_limited!(
                "listing: cannot ask {} what it holds ({e}); its {} entries show what this worker holds",
                worker_name(&w),
                chunk.len()
            ),
        }
    }
}

async fn ask(s: &WorkerState, w: &WorkerEndpoint, query: &CachedPercentQuery) -> Result<Vec<u32>, String> {
    let url = format!("{}{CACHED_PERCENT_PATH}", w.http_base());
    let a: CachedPercents =
        s.writes.peers().post(&worker_name(w), &url, query, TIMEOUT).await.map_err(|e| e.to_string())?;
    if a.version != CLUSTER_OPS_API_VERSION || a.percents.len() != query.files.len() {
        return Err(format!("an answer of version {} with {} percentages", a.version, a.percents.len()));
    }
    Ok(a.percents)
}

/// How much this worker holds of each file, of the version given (0 for another version).
#[utoipa::path(post, path = CACHED_PERCENT_PATH, tag = "internal", request_body = CachedPercentQuery,
    responses((status = 200, description = "One percentage per file, in order", body = CachedPercents)))]
pub async fn cached_percent(State(s): State<Arc<WorkerState>>, body: Bytes) -> Response {
    let q: CachedPercentQuery = match serde_json::from_slice(&body) {
        Ok(q) => q,
        Err(e) => return WorkerError::InvalidInput(format!("malformed cached-percent query: {e}")).into_response(),
    };
    if q.version != CLUSTER_OPS_API_VERSION {
        let msg =
            format!("query version {} is not supported (this worker speaks {CLUSTER_OPS_API_VERSION})", q.version);
        return WorkerError::InvalidInput(msg).into_response();
    }
    let percents = q.files.iter().map(|f| super::meta::cached_percent(&s, &f.uri, f.length, &f.etag)).collect();
    Json(CachedPercents { version: CLUSTER_OPS_API_VERSION, percents }).into_response()
}
