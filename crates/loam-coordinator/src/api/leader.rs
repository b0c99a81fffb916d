//! The HTTP edge of a highly available Coordinator (`crate::leader`): forwarding to the leader, and
//! `GET /api/v1/coordinators`, which says who leads.
//!
//! - **Followers serve reads themselves** from the cluster store, except the two answers that live in the
//!   leader's memory: the global file index (`/api/v1/file_index`) and the reserved bytes of the quotas
//!   (`/api/v1/quota`).
//! - **Writes go to the leader.** Every other method under `/api/v1` (and those two reads) received by a
//!   Coordinator that does not lead is sent to the leader's advertised URL with the same method, path,
//!   query, body, `Content-Type` and `Authorization` header; the client gets the leader's answer (status,
//!   `Content-Type`, `Retry-After`, body). The leader checks the credentials, so a follower needs none of
//!   its own and a `401`/`403` is the leader's. This layer sits outside the auth guard for that reason.
//! - **No leader** (none elected yet, or the one known cannot be reached): `503` in the API's error format
//!   (`{"status": "no Coordinator leader: …"}`) with `Retry-After`, so a client retries, on this or another
//!   Coordinator. A forwarded request carries [`FORWARDED_HEADER`]; a Coordinator that receives one while
//!   not leading answers that `503` instead of forwarding again, so two Coordinators with stale views never
//!   bounce a request between them.

use super::AppState;
use super::error::ApiError;
use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderName, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::OnceLock;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Marks a request a Coordinator forwarded to the leader.
pub const FORWARDED_HEADER: HeaderName = HeaderName::from_static("x-loam-forwarded-by");
/// The path of the Coordinators' election view.
pub const COORDINATORS_PATH: &str = "/api/v1/coordinators";
/// Most bytes of a request body forwarded (the API's bodies are small JSON documents).
const MAX_FORWARDED_BODY: usize = 16 * 1024 * 1024;
/// Reads answered from the leader's memory, so served by the leader only.
const LEADER_READS: [&str; 2] = ["/api/v1/file_index", "/api/v1/quota"];

/// The coordinators routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_coordinators))
}

/// Who leads, as the Coordinator asked knows it.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct CoordinatorsAnswer {
    /// The leader's advertised URL; absent while none is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    leader: Option<String>,
    /// The Coordinator that answered: its advertised URL.
    this: String,
    /// Whether the Coordinator that answered leads.
    leading: bool,
}

/// Which Coordinator leads (role `read`).
#[utoipa::path(get, path = COORDINATORS_PATH, tag = "coordinators",
    responses((status = 200, description = "The leader and the Coordinator that answered", body = CoordinatorsAnswer)))]
async fn get_coordinators(State(c): State<AppState>) -> Json<CoordinatorsAnswer> {
    let l = c.leader().get();
    Json(CoordinatorsAnswer {
        leader: l.leader,
        this: c.advertise_url().unwrap_or_default().to_string(),
        leading: l.leading,
    })
}

/// Whether `method` on `path` must be answered by the leader.
fn leader_only(method: &Method, path: &str) -> bool {
    if !path.starts_with("/api/v1/") {
        return false;
    }
    match *method {
        Method::GET | Method::HEAD => LEADER_READS.iter().any(|p| path == *p || path.starts_with(&format!("{p}/"))),
        Method::OPTIONS => false,
        _ => true,
    }
}

/// The middleware: passes the request on when this Coordinator may answer it, else forwards it.
pub async fn forward_to_leader(State(c): State<AppState>, req: Request, next: Next) -> Response {
    if !leader_only(req.method(), req.uri().path()) {
        return next.run(req).await;
    }
    let view = c.leader().get();
    if view.leading {
        return next.run(req).await;
    }
    if req.headers().contains_key(&FORWARDED_HEADER) {
        return ApiError::NoLeader("this Coordinator was sent a request as the leader but does not lead".into())
            .into_response();
    }
    let Some(leader) = view.leader.filter(|l| Some(l.as_str()) != c.advertise_url()) else {
        return ApiError::NoLeader("none is elected yet; retry".into()).into_response();
    };
    match forward(&leader, c.advertise_url().unwrap_or_default(), req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

fn http() -> Result<&'static reqwest::Client, ApiError> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    if let Some(c) = CLIENT.get() {
        return Ok(c);
    }
    let c = loam_client::peer::http_client(None).map_err(|e| ApiError::Internal(format!("HTTP client: {e}")))?;
    Ok(CLIENT.get_or_init(|| c))
}

async fn forward(leader: &str, me: &str, req: Request) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, MAX_FORWARDED_BODY)
        .await
        .map_err(|e| ApiError::BodyTooLarge(format!("cannot read the body to forward it to the leader: {e}")))?;
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let url = format!("{}{path}", leader.trim_end_matches('/'));
    let mut out = http()?.request(parts.method.clone(), &url).header(FORWARDED_HEADER, me).body(body);
    // The request id too (the edge set it), so the leader's lines for the request carry it.
    for name in [AUTHORIZATION, CONTENT_TYPE, axum::http::HeaderName::from_static(loam_core::request_id::HEADER)] {
        if let Some(v) = parts.headers.get(&name) {
            out = out.header(name, v);
        }
    }
    let answer = out.send().await.map_err(|e| {
        ApiError::NoLeader(format!("the leader at {leader} cannot be reached ({e}); retry once another leads"))
    })?;
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response = Response::builder().status(status);
    for name in [CONTENT_TYPE, RETRY_AFTER] {
        if let Some(v) = answer.headers().get(&name) {
            response = response.header(name, v);
        }
    }
    let bytes = answer
        .bytes()
        .await
        .map_err(|e| ApiError::NoLeader(format!("the leader at {leader} broke off its answer ({e}); retry")))?;
    response.body(Body::from(bytes)).map_err(|e| ApiError::Internal(format!("forwarded answer: {e}")))
}
