//! Wire types of the Coordinator REST API (`/api/v1`), documented in `docs/API.md`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Whether a `Content-Type` names JSON (`application/json`, `…+json`, parameters ignored). The JSON APIs
/// refuse bodies in any other type with `415`: a browser sends a cross-origin request without a preflight
/// only in the form and text types, so a page cannot make a state change with one.
pub fn is_json_media_type(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json")
}

/// Every error body: `{"status": "<message>"}`; also the `{"status": "ok"}` of successful writes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StatusBody {
    /// The message.
    pub status: String,
}

impl StatusBody {
    /// `{"status": "ok"}`.
    pub fn ok() -> Self {
        Self { status: "ok".into() }
    }
}

/// A mount point as listed by `GET /api/v1/mount`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MountPoint {
    /// The cluster path, with a trailing slash (`/data/`).
    pub path: String,
    /// The UFS URI, with a trailing slash (`s3://bucket/`).
    pub ufs: String,
    /// Mount options (secrets masked when listed; omitted when empty).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

/// `{"results": [...]}` list envelope.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Results<T> {
    /// The items.
    pub results: Vec<T>,
}

/// The answer of a list endpoint that also looks one item up (`GET /api/v1/load?id=`, `?path=`): the item
/// alone, or a page of all of them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrAll<T> {
    /// The item asked for.
    One(T),
    /// Every item (a page of them).
    All(Results<T>),
}

// By hand: the derive would say `oneOf`, which an item with no required field (a job's progress) breaks,
// since a page then validates as an item too.
impl<T: utoipa::ToSchema> utoipa::__dev::ComposeSchema for OneOrAll<T> {
    fn compose(
        generics: Vec<utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>>,
    ) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AnyOfBuilder, ArrayBuilder, ObjectBuilder};
        let item = generics.into_iter().next().unwrap_or_else(T::schema);
        let page =
            ObjectBuilder::new().property("results", ArrayBuilder::new().items(item.clone())).required("results");
        AnyOfBuilder::new().item(item).item(page).into()
    }
}

impl<T: utoipa::ToSchema> utoipa::ToSchema for OneOrAll<T> {
    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        T::schemas(schemas);
    }
}

/// A worker in `GET /api/v1/nodes`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NodeInfo {
    /// `worker-<uuid>`.
    pub identity: String,
    /// `host:port` of the worker's HTTP API.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub address: String,
    /// `ONLINE` or `OFFLINE`.
    pub status: String,
    /// Whether the worker serves over TLS (`https`); absent when not.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tls: bool,
}

/// `GET /api/v1/nodes`: note the singular `result`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NodeList {
    /// The workers.
    pub result: Vec<NodeInfo>,
}

/// Worker states in the nodes API.
pub const NODE_ONLINE: &str = "ONLINE";
/// A registered worker without a liveness record.
pub const NODE_OFFLINE: &str = "OFFLINE";

/// Masks mount option values whose key names a secret (the one rule: `crate::secrets`).
pub use crate::secrets::mask_secrets;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_address_is_skipped_when_empty() {
        let v = serde_json::to_value(NodeInfo {
            identity: "w".into(),
            address: String::new(),
            status: "ONLINE".into(),
            tls: false,
        });
        assert_eq!(v.unwrap(), serde_json::json!({"identity": "w", "status": "ONLINE"}));
    }
}
