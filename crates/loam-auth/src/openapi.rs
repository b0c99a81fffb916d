//! The guard's part of a surface's OpenAPI document: what each operation needs, said by the same
//! [`Policy`] that the [`Guard`] enforces, so the document cannot claim another rule than the one applied.
//!
//! For every operation: a public one gets an empty security requirement; one that needs a role gets the
//! `bearer` scheme (and, for a read under `--anonymous-read`, the empty requirement too), a sentence naming
//! the role, and the `401` and `403` refusals with their `{"status"}` body.

use crate::Role;
use crate::http::{Access, Guard, Policy};
use axum::http::Method;
use loam_core::openapi::status_response;
use utoipa::openapi::OpenApi;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};

/// The name of the bearer scheme in the document's components.
pub const BEARER_SCHEME: &str = "bearer";

impl Guard {
    /// Writes this guard's rules into `doc` (see the module header).
    pub fn document(&self, doc: &mut OpenApi) {
        document(doc, self.policy, self.anonymous_read);
    }
}

/// Writes `policy` into `doc`; with `anonymous_read`, reads need no credentials.
pub fn document(doc: &mut OpenApi, policy: Policy, anonymous_read: bool) {
    let mut scheme = Http::new(HttpAuthScheme::Bearer);
    scheme.description = Some(
        "`Authorization: Bearer <token>`: a token of the token file or a JWT checked against the JWKS file \
         (see docs/SECURITY.md)."
            .into(),
    );
    doc.components
        .get_or_insert_with(Default::default)
        .add_security_scheme(BEARER_SCHEME, SecurityScheme::Http(scheme));
    for (path, item) in doc.paths.paths.iter_mut() {
        let ops = [
            (Method::GET, &mut item.get),
            (Method::PUT, &mut item.put),
            (Method::POST, &mut item.post),
            (Method::DELETE, &mut item.delete),
            (Method::HEAD, &mut item.head),
            (Method::PATCH, &mut item.patch),
        ];
        for (method, op) in ops {
            if let Some(op) = op {
                describe(op, policy(&method, path), anonymous_read);
            }
        }
    }
}

fn describe(op: &mut Operation, access: Access, anonymous_read: bool) {
    let role = match access {
        Access::Public => {
            op.security = Some(vec![SecurityRequirement::default()]);
            append(op, "Open to every caller: no credentials needed.");
            return;
        }
        Access::Need(role) => (role, format!("the `{}` role", role.name())),
        Access::Either(a, b) => (a, format!("the `{}` or the `{}` role", a.name(), b.name())),
    };
    let (role, needs) = role;
    let mut security = vec![SecurityRequirement::new(BEARER_SCHEME, Vec::<String>::new())];
    if role == Role::Read && anonymous_read {
        security.push(SecurityRequirement::default());
    }
    op.security = Some(security);
    append(op, &format!("Needs {needs}."));
    let responses = &mut op.responses.responses;
    responses.insert("401".into(), status_response("Missing or bad credentials (with `WWW-Authenticate: Bearer`)."));
    responses.insert("403".into(), status_response(&format!("The credentials lack {needs}.")));
}

fn append(op: &mut Operation, sentence: &str) {
    op.description = Some(match op.description.take() {
        Some(d) if !d.is_empty() => format!("{d}\n\n{sentence}"),
        _ => sentence.to_string(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::openapi::path::{HttpMethod, PathItem, Paths};

    fn policy(method: &Method, path: &str) -> Access {
        match (method, path) {
            (_, "/health") => Access::Public,
            (&Method::GET, _) => Access::Need(Role::Read),
            _ => Access::Need(Role::Admin),
        }
    }

    fn doc() -> OpenApi {
        let mut paths = Paths::new();
        paths.paths.insert("/health".into(), PathItem::new(HttpMethod::Get, Operation::new()));
        paths.paths.insert("/x".into(), PathItem::new(HttpMethod::Get, Operation::new()));
        paths.add_path_operation("/x", vec![HttpMethod::Post], Operation::new());
        let mut doc = OpenApi::default();
        doc.paths = paths;
        doc
    }

    #[test]
    fn the_document_says_what_the_policy_enforces() {
        let mut d = doc();
        document(&mut d, policy, false);
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["paths"]["/health"]["get"]["security"], serde_json::json!([{}]));
        assert!(v["paths"]["/health"]["get"]["responses"].get("401").is_none());
        assert_eq!(v["paths"]["/x"]["get"]["security"], serde_json::json!([{"bearer": []}]));
        assert!(v["paths"]["/x"]["post"]["description"].as_str().unwrap().contains("`admin` role"));
        assert!(v["paths"]["/x"]["post"]["responses"]["403"].is_object());
        assert_eq!(v["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
        let mut open = doc();
        document(&mut open, policy, true);
        let v = serde_json::to_value(&open).unwrap();
        assert_eq!(v["paths"]["/x"]["get"]["security"], serde_json::json!([{"bearer": []}, {}]));
        assert_eq!(v["paths"]["/x"]["post"]["security"], serde_json::json!([{"bearer": []}]));
    }
}
