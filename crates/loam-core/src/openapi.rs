//! What the OpenAPI documents of the Coordinator (`/api/v1/openapi.json`) and the worker (`/v1/openapi.json`)
//! share: the `{"status"}` error answer, the errors every operation can meet, and the document's frame.
//! Each surface documents its operations beside its handlers (`#[utoipa::path]`); the guard adds its part
//! (`loam_auth::openapi`).

use crate::coordinator_api::StatusBody;
use utoipa::PartialSchema;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::{ContentBuilder, OpenApi, RefOr, Response};

/// A `{"status": "<why>"}` answer: the body of every error and refusal.
pub fn status_response(description: &str) -> RefOr<Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content("application/json", ContentBuilder::new().schema(Some(StatusBody::schema())).build())
            .build(),
    )
}

/// A document titled `title`, at this release's version, described by `description`.
pub fn frame(title: &str, description: &str) -> OpenApi {
    let mut doc = OpenApi::default();
    doc.info.title = title.into();
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    doc.info.description = Some(description.into());
    doc.info.license = None;
    doc
}

/// Adds to every operation of `doc` the errors no handler documents itself: the `400` of bad input
/// (where the operation takes input) and, where it takes a body, the `413` of one over the limit and the
/// `415` of a JSON body sent as another type.
pub fn add_shared_errors(doc: &mut OpenApi) {
    for item in doc.paths.paths.values_mut() {
        for op in [&mut item.get, &mut item.post, &mut item.put, &mut item.delete].into_iter().flatten() {
            let takes_input = op.parameters.as_ref().is_some_and(|p| !p.is_empty()) || op.request_body.is_some();
            let json_body = op.request_body.as_ref().is_some_and(|b| match b {
                RefOr::T(b) => b.content.keys().any(|c| crate::coordinator_api::is_json_media_type(c)),
                RefOr::Ref(_) => true,
            });
            let responses = &mut op.responses.responses;
            let mut add = |code: &str, why: &str| {
                responses.entry(code.into()).or_insert_with(|| status_response(why));
            };
            if takes_input {
                add("400", "Bad input: a missing, malformed or unknown value (the message names it)");
            }
            if op.request_body.is_some() {
                add("413", "The body is over the limit");
            }
            if json_body {
                add("415", "A JSON body sent without `Content-Type: application/json`");
            }
        }
    }
}

/// `doc` as JSON.
pub fn to_json(doc: &OpenApi) -> String {
    doc.to_pretty_json().expect("an OpenAPI document always serializes")
}
