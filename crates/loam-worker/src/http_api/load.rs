//! `/v1/load?path=&opType=submit|progress|stop`: the Alluxio worker API that the Python clients call to
//! drive a distributed load, forwarded to the Coordinator's `/api/v1/load` (the worker runs no job).
//!
//! - `submit` posts `{"paths": [path]}`: `{"success": true, "jobId"}`; when a job for the same path exists
//!   (the Coordinator's `409`, which also resumes a stopped one) `success` is false and `jobId` is that job.
//! - `progress` answers the newest load job whose paths are exactly `[path]`: `{"jobState", "path",
//!   "message"}` with a one-line summary; `404` when there is none.
//! - `stop` stops that job if it is running: `success` says whether it did.
//!
//! **Decision:** both `GET` and `POST` are accepted (the query carries everything). No coordinator URL
//! configured, or no Coordinator reachable, is a `503` saying so; a Coordinator `400` is passed on as
//! a `400` with its message; any other Coordinator failure is a `503` with its status and message.
//!
//! The worker's `coordinator` setting may list several Coordinators (a highly available one): each call
//! goes through [`loam_client::Coordinators`], which tries them in order past dead ones and `503`s.

use super::WorkerState;
use super::query::Query;
use crate::error::WorkerError;
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use loam_core::coordinator_api::Results;
use loam_core::coordinator_api::StatusBody;
use loam_core::job_api::{JobId, LoadProgress, WorkerLoadAnswer, WorkerLoadProgress};
use serde_json::json;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The path of the load API, forwarded to the Coordinator.
pub const LOAD_PATH: &str = "/v1/load";

/// The `/v1/load` route.
pub fn routes() -> OpenApiRouter<Arc<WorkerState>> {
    OpenApiRouter::new().routes(routes!(load))
}

/// `submit` and `stop` answer this; `progress` answers [`WorkerLoadProgress`].
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // The handler builds each answer itself; this type documents their union.
enum LoadAnswer {
    Done(WorkerLoadAnswer),
    Progress(WorkerLoadProgress),
}

/// Drives a distributed load of `path` through the Coordinator, with the caller's credentials.
#[utoipa::path(method(get, post), path = LOAD_PATH, tag = "load",
    params(("path" = String, Query, description = "The UFS URI or cluster path to load"),
        ("opType" = String, Query, description = "`submit`, `progress` or `stop`")),
    responses(
        (status = 200, description = "`{success, jobId, message}` (submit, stop) or `{jobState, path, message}` (progress)",
            body = LoadAnswer),
        (status = 401, description = "The Coordinator refused the caller's credentials", body = StatusBody),
        (status = 403, description = "The caller lacks the `admin` role the Coordinator asks for", body = StatusBody),
        (status = 404, description = "`progress`: no load job for `path`", body = StatusBody),
        (status = 503, description = "No Coordinator configured or reachable", body = StatusBody)))]
async fn load(State(s): State<Arc<WorkerState>>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    // The caller's credentials go with the request: the Coordinator decides whether it may load.
    let authorization = headers.get(AUTHORIZATION).cloned();
    match run(&s, Query::form(q.as_deref()), authorization).await {
        Ok(r) => r,
        Err(Failure::Worker(e)) => e.into_response(),
        // The Coordinator's refusal reaches the caller as it is: the caller's credentials were refused.
        Err(Failure::Refused(status, message)) => {
            let mut r = (status, Json(StatusBody { status: message })).into_response();
            r.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static(r#"Bearer realm="loam""#));
            r
        }
    }
}

/// Why `/v1/load` failed: an error of this worker (or the Coordinator's, mapped), or the Coordinator
/// refusing the caller's credentials (`401`, `403`), which is passed on unchanged.
enum Failure {
    Worker(WorkerError),
    Refused(StatusCode, String),
}

impl From<WorkerError> for Failure {
    fn from(e: WorkerError) -> Self {
        Failure::Worker(e)
    }
}

async fn run(s: &WorkerState, q: Query, authorization: Option<HeaderValue>) -> Result<Response, Failure> {
    let path = q.required("path")?.to_string();
    let op = q.required("opType")?.to_ascii_lowercase();
    if !matches!(op.as_str(), "submit" | "progress" | "stop") {
        return Err(WorkerError::InvalidInput(format!("opType must be submit, progress or stop, got {op:?}")).into());
    }
    let coordinators = s.coordinators.as_ref().ok_or_else(|| {
        WorkerError::Unavailable(
            "this worker has no coordinator URL configured (set --coordinator or LOAM_COORDINATOR); /v1/load needs it"
                .into(),
        )
    })?;
    let c = Coordinator { coordinators, authorization };
    match op.as_str() {
        "submit" => {
            let (status, body) = c.call(reqwest::Method::POST, Some(json!({ "paths": [path] }))).await?;
            let id = body.get("id").and_then(|v| v.as_str()).unwrap_or_default().to_string();
            let (success, message) = match status {
                200 => (true, format!("load job {id} submitted for {path}")),
                409 => (false, format!("a load job ({id}) for {path} already exists; resumed if it was stopped")),
                _ => return Err(coordinator_error(status, &body)),
            };
            Ok(Json(WorkerLoadAnswer { success, job_id: id, message }).into_response())
        }
        "progress" => {
            let job =
                c.find(&path).await?.ok_or_else(|| WorkerError::NotFound(format!("No job found for path: {path}")))?;
            let message = format!(
                "{} files scanned, {} loaded ({} of {} bytes, {} skipped), {} failed",
                job.scanned_files,
                job.loaded_non_empty_files,
                job.loaded_bytes,
                job.total_bytes,
                job.skipped_bytes,
                job.failed_files
            );
            Ok(Json(WorkerLoadProgress { job_state: job.state, path, message }).into_response())
        }
        _ => {
            let Some(job) = c.find(&path).await?.filter(|j| j.state == "RUNNING" || j.state == "VERIFYING") else {
                let message = format!("no running load job for {path}");
                return Ok(Json(WorkerLoadAnswer { success: false, job_id: String::new(), message }).into_response());
            };
            let (status, body) = c.call(reqwest::Method::DELETE, Some(json!(JobId { id: job.id.clone() }))).await?;
            let (success, message) = match status {
                200 => (true, format!("load job {} stopped", job.id)),
                410 => (false, format!("load job {} is not running any more", job.id)),
                _ => return Err(coordinator_error(status, &body)),
            };
            Ok(Json(WorkerLoadAnswer { success, job_id: job.id, message }).into_response())
        }
    }
}

struct Coordinator<'a> {
    coordinators: &'a loam_client::Coordinators,
    authorization: Option<HeaderValue>,
}

impl Coordinator<'_> {
    async fn call(
        &self,
        method: reqwest::Method,
        body: Option<serde_json::Value>,
    ) -> Result<(u16, serde_json::Value), WorkerError> {
        let build = |mut req: reqwest::RequestBuilder| {
            if let Some(a) = &self.authorization {
                req = req.header(AUTHORIZATION, a.clone());
            }
            if let Some(b) = &body {
                req = req.json(b);
            }
            req
        };
        let resp = self
            .coordinators
            .send(method, "/api/v1/load", build)
            .await
            .map_err(|e| WorkerError::Unavailable(format!("cannot reach the coordinator: {e}")))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| WorkerError::Unavailable(format!("coordinator answer lost: {e}")))?;
        Ok((status, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)))
    }

    /// The newest load job whose paths are exactly `[path]`.
    async fn find(&self, path: &str) -> Result<Option<LoadProgress>, Failure> {
        let (status, body) = self.call(reqwest::Method::GET, None).await?;
        if status != 200 {
            return Err(coordinator_error(status, &body));
        }
        let jobs: Results<LoadProgress> = serde_json::from_value(body)
            .map_err(|e| WorkerError::Unavailable(format!("unexpected coordinator answer: {e}")))?;
        Ok(jobs.results.into_iter().find(|j| j.paths.len() == 1 && j.paths[0] == path))
    }
}

fn coordinator_error(status: u16, body: &serde_json::Value) -> Failure {
    let msg = body.get("status").and_then(|v| v.as_str()).unwrap_or("no message").to_string();
    match status {
        400 => Failure::Worker(WorkerError::InvalidInput(msg)),
        401 | 403 => Failure::Refused(StatusCode::from_u16(status).unwrap_or(StatusCode::UNAUTHORIZED), msg),
        _ => Failure::Worker(WorkerError::Unavailable(format!("the coordinator answered {status}: {msg}"))),
    }
}
