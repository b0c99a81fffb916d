//! `/api/v1/nodes`: the registered workers, their HTTP addresses and whether they are live (spec: "Nodes").
//!
//! The membership store is the only source: a worker is listed while its permanent registration exists,
//! `ONLINE` while its liveness record (on a lease) exists too. Workers are listed by identity, a stable
//! order for paging. The address is `Host:HttpServerPort`, the port clients use.
//!
//! `POST /api/v1/nodes/drain` `{"id"}` asks that worker to drain (`/v1/drain` at the address of its
//! registration, online or not: a worker that already left the ring still serves until it exits) and
//! answers the worker's report when the drain ends. An unknown id is a `404`, an unreachable worker a
//! `503`.
//!
//! **Decision:** a malformed `?id=` (not `worker-<uuid>`) is a `400` naming the expected form, not the
//! `404` of a well-formed id that is not registered: the caller made a typo, not a stale lookup.

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiJson, Paging, QueryParams};
use super::openapi::ListQuery;
use axum::Json;
use axum::extract::State;
use loam_core::WorkerId;
use loam_core::cluster_ops_api::{DRAIN_PATH, DRAIN_TIMEOUT, DrainReport, DrainRequest, NODES_DRAIN_PATH};
use loam_core::coordinator_api::{NODE_OFFLINE, NODE_ONLINE, NodeInfo, NodeList, StatusBody};
use loam_store::membership::{self, MemberInfo};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The nodes routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_nodes, delete_node)).routes(routes!(drain_node))
}

/// The path of the nodes.
pub const NODES_PATH: &str = "/api/v1/nodes";

/// One node (`?id=`) or all of them.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(untagged)]
enum NodesAnswer {
    One(NodeInfo),
    All(NodeList),
}

fn parse_worker_id(raw: &str) -> Result<WorkerId, ApiError> {
    raw.parse().map_err(|e: loam_core::id::InvalidWorkerId| ApiError::InvalidInput(e.to_string()))
}

pub(super) fn node_info(m: &MemberInfo) -> NodeInfo {
    let identity =
        m.record.worker_id().map(|id| id.to_string()).unwrap_or_else(|| m.record.service_entity_name.clone());
    let address = if m.record.worker_net_address.host.is_empty() { String::new() } else { m.record.http_address() };
    let status = if m.online { NODE_ONLINE } else { NODE_OFFLINE };
    NodeInfo { identity, address, status: status.to_string(), tls: m.record.worker_net_address.tls }
}

/// The registered workers, by identity, or one of them.
#[utoipa::path(get, path = NODES_PATH, tag = "nodes", params(ListQuery,
    ("id" = Option<String>, Query, description = "A worker identity, `worker-<uuid>`: answer only it")),
    responses(
        (status = 200, description = "The node, or `{\"result\"}`", body = NodesAnswer),
        (status = 404, description = "No worker `id` is registered", body = StatusBody)))]
async fn get_nodes(State(c): State<AppState>, q: QueryParams) -> Result<Json<NodesAnswer>, ApiError> {
    let wanted = q.optional("id")?.map(parse_worker_id).transpose()?;
    let paging = Paging::from_query(&q)?;
    let members = membership::list_workers(c.store().as_ref(), c.cluster_name()).await?;
    if let Some(id) = wanted {
        let m = members
            .iter()
            .find(|m| m.record.worker_id() == Some(id))
            .ok_or_else(|| ApiError::WorkerNotFound(id.to_string()))?;
        return Ok(Json(NodesAnswer::One(node_info(m))));
    }
    let mut nodes: Vec<NodeInfo> = members.iter().map(node_info).collect();
    nodes.sort_by(|a, b| a.identity.cmp(&b.identity));
    Ok(Json(NodesAnswer::All(NodeList { result: paging.apply(nodes) })))
}

/// Removes a worker's registration.
#[utoipa::path(delete, path = NODES_PATH, tag = "nodes",
    params(("id" = String, Query, description = "The worker identity, `worker-<uuid>`")),
    responses(
        (status = 200, description = "Deregistered", body = StatusBody),
        (status = 404, description = "No worker `id` is registered", body = StatusBody)))]
async fn delete_node(State(c): State<AppState>, q: QueryParams) -> Result<Json<StatusBody>, ApiError> {
    let id = parse_worker_id(q.required("id")?)?;
    if membership::deregister(c.store().as_ref(), c.cluster_name(), &id).await? {
        tracing::info!(worker = %id, "worker deregistered through the API");
        Ok(Json(StatusBody::ok()))
    } else {
        Err(ApiError::WorkerNotFound(id.to_string()))
    }
}

/// Asks a worker to leave the ring and move its cached files to their next owners; answers when done.
#[utoipa::path(post, path = NODES_DRAIN_PATH, tag = "nodes", request_body = DrainRequest,
    responses(
        (status = 200, description = "The drain ended: what moved and what failed", body = DrainReport),
        (status = 404, description = "No worker `id` is registered", body = StatusBody),
        (status = 503, description = "The worker cannot be reached", body = StatusBody)))]
async fn drain_node(
    State(c): State<AppState>,
    ApiJson(req): ApiJson<DrainRequest>,
) -> Result<Json<DrainReport>, ApiError> {
    let id = parse_worker_id(&req.id)?;
    let members = membership::list_workers(c.store().as_ref(), c.cluster_name()).await?;
    let worker = members
        .iter()
        .find(|m| m.record.worker_id() == Some(id))
        .and_then(|m| loam_client::WorkerEndpoint::from_record(&m.record))
        .ok_or_else(|| ApiError::WorkerNotFound(id.to_string()))?;
    tracing::info!(worker = %id, "draining a worker through the API");
    let peer = loam_client::peer::worker_name(&worker);
    let url = format!("{}{DRAIN_PATH}", worker.http_base());
    let report: DrainReport = c.peers().post(&peer, &url, &(), DRAIN_TIMEOUT).await.map_err(ApiError::Worker)?;
    Ok(Json(report))
}
