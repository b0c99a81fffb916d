//! The owner's answer about an object, so that a worker forwarding an S3 read does not stat the UFS.
//!
//! - **The owner** answers `GET /v1/internal/object?path=<UFS URI>` (the `cluster` role) with an
//!   [`OwnerObject`]: it opens the object as its own GET would (`reading::open_here`: its record, trusted
//!   for `max_age`, and the metadata cache, so no UFS stat while both are fresh) and says for how much
//!   longer it trusts that record (`freshMs`).
//! - **A forwarding worker** ([`lookup`]) keeps the answer in `MetaCache` until then, and no longer: it
//!   never serves a version longer than the owner itself would without asking the UFS, so "bounded
//!   staleness" stays `max_age` after the owner's last validation. A write through any worker drops the
//!   entry with the rest of the object's cache (`WriteThrough::invalidate_local`); a forwarded stream that
//!   fails drops it too ([`forget`]: the owner no longer serves that version), so the retry asks again.
//! - **When the owner cannot answer** (down, busy past [`TIMEOUT`], an older release, or the object is
//!   missing), [`lookup`] answers `None` and the caller stats the UFS as before: the owner is an
//!   optimisation of the metadata path, never a dependency of it.

use crate::error::WorkerResult;
use crate::http_api::WorkerState;
use crate::http_api::query::Query;
use crate::s3_api::reading::{self, ObjectMeta};
use axum::Json;
use axum::extract::{RawQuery, State};
use loam_client::peer::worker_name;
use loam_client::reader::encode_query;
use loam_ufs::ObjectMetadata;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Where the owner answers.
pub const OBJECT_PATH: &str = "/v1/internal/object";
/// How long a forwarding worker waits for the owner's answer before it stats the UFS itself.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// What the owner says of an object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OwnerObject {
    /// Length in bytes.
    pub length: u64,
    /// The version tag (`loam_core::version`) the owner serves, which forwarded reads pin (`If-Match`).
    pub tag: String,
    /// The ETag S3 clients see (the stored S3 ETag of this version when there is one, else the tag).
    pub etag: String,
    /// Last modification time, ms since the epoch, when the UFS knows it.
    pub modified_ms: Option<i64>,
    /// What is stored with this version besides its bytes.
    #[schema(value_type = Object)]
    pub stored: ObjectMetadata,
    /// For how much longer (ms) the owner serves this version without asking the UFS; 0: not at all.
    pub fresh_ms: u64,
}

impl OwnerObject {
    /// The answer for `meta`, whose record was validated at `validated_ms` and is trusted for `max_age`.
    fn of(meta: &ObjectMeta, validated_ms: i64, max_age: Duration) -> Self {
        let now = loam_core::time::now_millis();
        let trusted_until = validated_ms.saturating_add(i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX));
        Self {
            length: meta.length,
            tag: meta.tag.clone(),
            etag: meta.etag.clone(),
            modified_ms: meta
                .modified
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .and_then(|d| i64::try_from(d.as_millis()).ok()),
            stored: (*meta.stored).clone(),
            fresh_ms: u64::try_from(trusted_until.saturating_sub(now)).unwrap_or(0),
        }
    }

    /// The metadata the response headers take from it.
    fn meta(self) -> ObjectMeta {
        let modified =
            self.modified_ms.and_then(|ms| u64::try_from(ms).ok()).map(|ms| UNIX_EPOCH + Duration::from_millis(ms));
        ObjectMeta { length: self.length, tag: self.tag, etag: self.etag, modified, stored: Arc::new(self.stored) }
    }
}

/// The owner's route.
pub fn routes() -> OpenApiRouter<Arc<WorkerState>> {
    OpenApiRouter::new().routes(routes!(object))
}

/// The object at UFS URI `path` as this worker serves it (asked by a worker that forwards its reads here).
#[utoipa::path(get, path = OBJECT_PATH, tag = "internal",
    params(("path" = String, Query, description = "The object's UFS URI")),
    responses(
        (status = 200, description = "The version served here, its metadata, and how long it is trusted", body = OwnerObject),
        (status = 404, description = "No such object (or a directory)", body = loam_core::coordinator_api::StatusBody)))]
pub async fn object(State(s): State<Arc<WorkerState>>, RawQuery(q): RawQuery) -> WorkerResult<Json<OwnerObject>> {
    let q = Query::raw(q.as_deref(), &["path"]);
    let path = q.required("path")?;
    let opened = reading::open_here(&s, path).await?;
    let validated = opened.validated_ms().unwrap_or(0);
    Ok(Json(OwnerObject::of(&opened.meta, validated, s.rt.max_age())))
}

/// The owner's answer about `uri` (resolved), from this worker's cache while it holds, else asked of the
/// owner; `None` when there is no other owner or it cannot answer (the caller stats the UFS).
pub async fn lookup(state: &WorkerState, uri: &str) -> Option<ObjectMeta> {
    let cache = state.writes.meta_cache();
    if let Some(meta) = cache.owner_answer(uri) {
        return Some(meta);
    }
    let owner = state.members.ring().primary(uri).map(|(_, w)| w.clone()).filter(|w| w.id != state.id)?;
    let url = format!("{}{OBJECT_PATH}?path={}", owner.http_base(), encode_query(uri));
    let asked = Instant::now();
    match state.writes.peers().get::<OwnerObject>(&worker_name(&owner), &url, TIMEOUT).await {
        Ok(answer) => {
            // Counted from when it was asked: the owner's clock ran from before its answer was sent.
            let until = asked + Duration::from_millis(answer.fresh_ms);
            let meta = answer.meta();
            if until > Instant::now() {
                cache.put_owner_answer(uri, meta.clone(), until);
            }
            Some(meta)
        }
        Err(e) => {
            tracing::debug!("asking the owner of {uri} for its metadata failed, asking the UFS: {e}");
            None
        }
    }
}

/// Forgets the owner's answer about `uri` (a forwarded read of it failed).
pub fn forget(state: &WorkerState, uri: &str) {
    state.writes.meta_cache().forget(&[uri.to_string()], &[]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_round_trips_and_counts_down_its_trust() {
        let stored = Arc::new(ObjectMetadata { content_type: Some("text/csv".into()), ..Default::default() });
        let meta = ObjectMeta::new(7, Some("abc"), Some(1_700_000_000_123)).with_stored(stored);
        let now = loam_core::time::now_millis();
        let a = OwnerObject::of(&meta, now - 10_000, Duration::from_secs(60));
        assert!(a.fresh_ms > 45_000 && a.fresh_ms <= 50_000, "{}", a.fresh_ms);
        let json = serde_json::to_string(&a).unwrap();
        let back: OwnerObject = serde_json::from_str(&json).unwrap();
        assert_eq!(back.clone().meta(), meta);
        assert_eq!(OwnerObject::of(&meta, now - 61_000, Duration::from_secs(60)).fresh_ms, 0, "past its max-age");
        assert_eq!(OwnerObject::of(&meta, now, Duration::ZERO).fresh_ms, 0, "max-age 0 trusts nothing");
    }
}
