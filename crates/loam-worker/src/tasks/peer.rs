//! Copying a file from a peer worker instead of reading the UFS (a rebalance moving cache to a new owner).
//!
//! - **Same version.** The copier first reads the peer's record of the file (`GET /v1/internal/file/<id>`)
//!   and opens the file with it: a file it does not hold (or holds past `max_age`) takes the peer's length,
//!   ETag and modification time — and the peer's validation time, so the copy is no staler than the
//!   original — while a fresh record of its own must name the same version, or the copy is refused. After
//!   the pages are copied the peer's record is read again; if it changed meanwhile (the peer re-validated
//!   and dropped that version), the copied pages are dropped and the copy fails.
//! - **Pages** come from the peer's page API (`GET /v1/file/<id>/page/<n>?ufsFullPath=`), only the ones
//!   missing here, several at once, each checked to be exactly the page's length before it is stored.
//!   Workers of different page sizes do not copy (their page `n` is not the same bytes).
//! - **Failure** of any step is an `Err`; the caller then loads the file from the UFS. A record this copy
//!   created is dropped first, so that the UFS load stats the file afresh.

use super::TaskRunner;
use super::bandwidth::TokenBucket;
use crate::read_through::OpenFile;
use futures::StreamExt;
use loam_client::PeerClient;
use loam_core::job_api::{LoadTaskFile, PEER_FILE_PATH, PeerFile, TASK_API_VERSION};
use loam_ufs::UfsStatus;
use std::time::{Duration, UNIX_EPOCH};

/// How long one request to a peer may take.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(60);
/// Pages of one file fetched from a peer at once.
pub const PEER_PAGES_IN_PARALLEL: usize = 8;

impl TaskRunner {
    /// Copies the pages of `f` this worker lacks from `peer` (`http://host:port`); `(length, skipped)`.
    pub(super) async fn copy_from_peer(
        &self,
        f: &LoadTaskFile,
        peer: &str,
        bucket: Option<&TokenBucket>,
    ) -> Result<(u64, bool), String> {
        let http = self.peers.as_ref().ok_or("no HTTP client")?;
        let pages = self.rt.pages();
        let (resolved, _) = self.rt.resolve(&f.ufs_uri).map_err(|e| e.to_string())?;
        let uri = resolved.ufs_uri;
        let id = loam_core::file_id(&uri);
        let before = peer_file(http, peer, &id).await?;
        if before.uri != uri || before.page_size != pages.page_size() {
            return Err(format!(
                "the peer holds {} with pages of {} bytes; this worker wants {uri} with pages of {}",
                before.uri,
                before.page_size,
                pages.page_size()
            ));
        }
        let status = UfsStatus {
            uri: uri.clone(),
            is_dir: false,
            length: before.length,
            etag: before.etag.clone(),
            modified: before
                .modified_ms
                .and_then(|ms| u64::try_from(ms).ok())
                .map(|ms| UNIX_EPOCH + Duration::from_millis(ms)),
            meta: None,
        };
        let had = pages.file(&id).is_some();
        let file = self.rt.open_with(&uri, Some(status)).await.map_err(|e| e.to_string())?;
        // Only a file held before counts as already there (an empty one is "fully cached" once opened).
        let skip = f.skip_if_exists && had;
        let copied = self.copy_pages(http, skip, peer, &file, &before, bucket).await;
        if copied.is_err() && !had {
            // The record came from the peer; the UFS load that follows must not trust it.
            if let Err(e) = pages.remove_file(&id).await {
                loam_core::warn_limited!("cannot drop the record of {uri} after a failed copy: {e}");
            }
        }
        copied
    }

    async fn copy_pages(
        &self,
        http: &PeerClient,
        skip_if_whole: bool,
        peer: &str,
        file: &OpenFile,
        before: &PeerFile,
        bucket: Option<&TokenBucket>,
    ) -> Result<(u64, bool), String> {
        let pages = self.rt.pages();
        let (r, id, uri) = (&file.record, file.file_id(), file.record.ufs_uri.as_str());
        if (r.length, &r.etag, r.modified_ms) != (before.length, &before.etag, before.modified_ms) {
            return Err("this worker caches another version of the file than the peer".into());
        }
        if r.validated_ms > before.validated_ms {
            pages.set_validated(id, before.validated_ms);
        }
        let length = r.length;
        if skip_if_whole && self.fully_cached(file) {
            return Ok((length, true));
        }
        let ps = pages.page_size();
        let generation = file.generation;
        // Every page from the peer's copy of this very version (`If-Match`), stored only under it.
        let tag = loam_core::version::quoted(&file.tag());
        let tag = tag.as_str();
        let missing: Vec<u64> =
            (0..self.rt.page_count(length)).filter(|i| !pages.has_page_of(id, generation, *i)).collect();
        futures::stream::iter(missing)
            .map(|i| async move {
                let want = (length - i * ps).min(ps);
                if let Some(b) = bucket {
                    b.take(want).await;
                }
                let url = format!("{peer}/v1/file/{id}/page/{i}");
                let req = http
                    .request(reqwest::Method::GET, &url)
                    .query(&[("ufsFullPath", uri)])
                    .header(reqwest::header::IF_MATCH, tag);
                let resp = http.send(peer, req).await.map_err(|e| format!("page {i}: {e}"))?;
                let body = resp.bytes().await.map_err(|e| format!("page {i}: {e}"))?;
                if body.len() as u64 != want {
                    return Err(format!("page {i}: the peer answered {} bytes ({want} expected)", body.len()));
                }
                let data = &self.rt.metrics().data;
                data.peer_pages.inc();
                data.peer_bytes.inc_by(want);
                pages.put_pages_of(id, generation, vec![(i, body)]).await.map(|_| ()).map_err(|e| e.to_string())
            })
            .buffer_unordered(PEER_PAGES_IN_PARALLEL)
            .collect::<Vec<Result<(), String>>>()
            .await
            .into_iter()
            .collect::<Result<(), String>>()?;
        let after = peer_file(http, peer, id).await?;
        if (after.length, &after.etag, after.modified_ms) != (before.length, &before.etag, before.modified_ms) {
            pages.remove_file(id).await.map_err(|e| e.to_string())?;
            return Err("the peer's copy changed while it was copied".into());
        }
        Ok((length, false))
    }
}

/// The peer's record of file `id`.
async fn peer_file(http: &PeerClient, peer: &str, id: &str) -> Result<PeerFile, String> {
    let url = format!("{peer}{PEER_FILE_PATH}/{id}");
    let rec: PeerFile = http.get(peer, &url, PEER_TIMEOUT).await.map_err(|e| format!("the file's record: {e}"))?;
    if rec.version != TASK_API_VERSION {
        return Err(format!("the peer speaks version {} (this worker {TASK_API_VERSION})", rec.version));
    }
    Ok(rec)
}
