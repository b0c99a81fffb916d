//! The REST API's OpenAPI 3.1 document, generated from the handlers (`#[utoipa::path]`, registered with
//! their routes by `utoipa_axum::routes!`, so a route cannot be served undocumented) and the wire types of
//! `loam_core` (`ToSchema`), and served at [`OPENAPI_PATH`] to everyone.
//!
//! What every operation shares is added here once: what the guard asks for (`loam_auth::openapi`, from
//! the same policy it enforces), the `400` of bad input, the `415` of a JSON body sent as another type,
//! the `413` of a body over the limit and the `503` of an unreachable cluster store.

use serde::Deserialize;
use utoipa::openapi::OpenApi;

/// Where the document is served.
pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";

/// `?offset=&limit=` of every list endpoint (see `extract::Paging`).
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Read by `extract::Paging`; this type only documents the parameters.
pub struct ListQuery {
    /// Items to skip (default 0).
    offset: Option<u64>,
    /// Most items to return (default all).
    limit: Option<u64>,
}

/// `{"path"}`: the body of the `DELETE`s that name a path.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PathBody {
    /// A path in the cluster namespace (`/data/train`).
    pub path: String,
}

/// The document's frame: title, version, description.
pub fn base() -> OpenApi {
    loam_core::openapi::frame(
        "Loam Coordinator REST API",
        "The Alluxio 3.x Coordinator API (`/api/v1`): mount table, nodes, load/free/rebalance jobs, TTL, \
         priority, quota, the global file index and cache operations. Errors are `{\"status\": \"<why>\"}`. \
         See docs/API.md.",
    )
}

/// Adds what every operation shares (see the module header).
pub fn finish(doc: &mut OpenApi, guard: &loam_auth::Guard) {
    loam_core::openapi::add_shared_errors(doc);
    add_unavailable(doc);
    guard.document(doc);
}

/// The `503` of every operation: each one reads or writes the cluster store (`api::error`), except a
/// lookup this Coordinator answers from memory, which then simply never answers it.
fn add_unavailable(doc: &mut OpenApi) {
    // Liveness never asks the store, and readiness documents its own 503.
    let probes = [loam_core::probe_api::COORDINATOR_HEALTH_PATH, loam_core::probe_api::COORDINATOR_READY_PATH];
    for (path, item) in doc.paths.paths.iter_mut() {
        if probes.contains(&path.as_str()) {
            continue;
        }
        for op in [&mut item.get, &mut item.post, &mut item.put, &mut item.delete].into_iter().flatten() {
            op.responses.responses.entry("503".into()).or_insert_with(|| {
                loam_core::openapi::status_response(
                    "The cluster store (etcd) is unreachable (`cluster store unreachable: …`); nothing was \
                     changed, try again",
                )
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use loam_auth::{Authenticator, Guard};

    fn document() -> serde_json::Value {
        let guard = Guard::new(Authenticator::new(Vec::new()), super::super::access, false);
        serde_json::to_value(super::super::document(&guard)).unwrap()
    }

    #[test]
    fn every_family_is_documented_with_what_it_needs() {
        let d = document();
        if let Ok(out) = std::env::var("LOAM_DUMP_OPENAPI") {
            std::fs::write(out, serde_json::to_string_pretty(&d).unwrap()).unwrap();
        }
        assert_eq!(d["openapi"], "3.1.0");
        let paths = d["paths"].as_object().unwrap();
        for p in [
            "/api/v1/mount",
            "/api/v1/nodes",
            "/api/v1/load",
            "/api/v1/free",
            "/api/v1/rebalance",
            "/api/v1/file_index",
            "/api/v1/internal/file_index",
            "/api/v1/cache",
            "/api/v1/ttl",
            "/api/v1/priority",
            "/api/v1/quota",
            "/api/v1/health",
            "/api/v1/ready",
        ] {
            assert!(paths.contains_key(p), "{p} is not documented");
        }
        let load = &d["paths"]["/api/v1/load"];
        assert_eq!(load["get"]["security"], serde_json::json!([{"bearer": []}]));
        assert!(load["post"]["description"].as_str().unwrap().contains("`admin` role"));
        for code in ["200", "400", "401", "403", "409", "415", "503"] {
            assert!(load["post"]["responses"][code].is_object(), "POST /api/v1/load lacks {code}");
        }
        let ready = &d["paths"]["/api/v1/ready"]["get"];
        assert!(ready["responses"]["503"]["description"].as_str().unwrap().starts_with("Not ready"), "{ready}");
        for probe in ["/api/v1/health", "/api/v1/ready"] {
            let security = &d["paths"][probe]["get"]["security"];
            assert!(!security.to_string().contains("bearer"), "{probe} needs no credentials: {security}");
        }
        for (path, item) in paths.iter().filter(|(p, _)| *p != "/api/v1/health") {
            for (method, op) in
                item.as_object().unwrap().iter().filter(|(k, _)| ["get", "post", "put", "delete"].contains(&k.as_str()))
            {
                assert!(op["responses"]["503"].is_object(), "{method} {path} lacks the 503 of an unreachable store");
            }
        }
        let report = &d["paths"]["/api/v1/internal/file_index"]["post"];
        assert!(report["description"].as_str().unwrap().contains("`cluster` role"));
    }
}
