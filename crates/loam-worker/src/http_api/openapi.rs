//! The worker HTTP API's OpenAPI 3.1 document, generated from the handlers (`#[utoipa::path]`, registered
//! with their routes by `utoipa_axum::routes!`) and served at [`OPENAPI_PATH`] to everyone. What all
//! operations share comes from `loam_core::openapi` and the guard (`loam_auth::openapi`).

use loam_core::coordinator_api::StatusBody;
use utoipa::openapi::OpenApi;

/// Where the document is served.
pub const OPENAPI_PATH: &str = "/v1/openapi.json";

/// The document's frame.
pub fn base() -> OpenApi {
    loam_core::openapi::frame(
        "Loam worker HTTP API",
        "Alluxio's worker API (port 28080) as its Python clients call it: file info and listings, pages, \
         ranges and whole files by file id (the SHA-256 of the UFS URI), writes through to the UFS, `/v1/load`; \
         and the internal endpoints the Coordinator and the other workers call. Errors are \
         `{\"status\": \"<why>\"}`. See docs/API.md.",
    )
}

/// A file id (64 lowercase hex digits: the SHA-256 of the UFS URI) and the optional `ufsFullPath`.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[allow(dead_code)] // Read by `query::Query`; this type only documents the parameters.
pub struct FileQuery {
    /// The file's UFS URI, whose SHA-256 is the id (a raw value: `+` is a plus). Without it the worker
    /// resolves the id from what it has cached or been asked about.
    ufs_full_path: Option<String>,
}

/// `ufsFullPath`, required: the file a write acts on.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[allow(dead_code)] // Read by `query::Query`; this type only documents the parameters.
pub struct TargetQuery {
    /// The UFS URI, whose SHA-256 must be the id of the URL (a raw value: `+` is a plus).
    ufs_full_path: String,
}

/// `srcPath` and `dstPath` of `mv` and `copy`.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[allow(dead_code)] // Read by `query::Query`; this type only documents the parameters.
pub struct SrcDstQuery {
    /// The source UFS URI.
    src_path: String,
    /// The destination UFS URI.
    dst_path: String,
}

/// The errors of a read by file id (`/v1/file/…/page/…`, `range`, `chunk`, `head`, `tail`).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // Only documents the answers `http_api::error` gives these endpoints.
pub enum ReadErrors {
    /// Not found: no such file, under no mount, or an id this worker cannot resolve.
    #[response(status = 404)]
    NotFound(StatusBody),
    /// The file is no longer the version `If-Match` names.
    #[response(status = 412)]
    Changed(StatusBody),
}

/// The errors of a write through to the UFS (`chunk`, `mkdir`, `touch`, `rm`, `mv`, `copy`).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // Only documents the answers `http_api::error` gives these endpoints.
pub enum WriteErrors {
    /// Under no mount, or (rm, mv, copy) no such file.
    #[response(status = 404)]
    NotFound(StatusBody),
    /// A file where a directory is needed, or the other way round.
    #[response(status = 409)]
    Conflict(StatusBody),
}

/// The errors of `/v1/info` and `/v1/files`.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // Only documents the answers these endpoints give.
pub enum InfoErrors {
    /// Under no mount.
    #[response(status = 404)]
    NotFound(StatusBody),
    /// `File does not exist: <uri>`, which Alluxio's clients read as not found (the spec keeps it).
    #[response(status = 500)]
    DoesNotExist(StatusBody),
}
