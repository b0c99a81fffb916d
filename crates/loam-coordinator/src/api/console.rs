//! The web console: `GET /` (and `/console/`) redirects to `/console`, which serves a small single-page app (plain HTML, CSS
//! and JavaScript under `crates/loam-coordinator/console/`, no framework, no build step).
//!
//! The assets are compiled into the binary (`include_bytes!`), so a Coordinator serves its own console
//! and the page loads nothing from anywhere else. They are public, like the OpenAPI document: they hold no
//! secret and no data. Everything the page shows it asks of the public REST API (`/api/v1/...`, `/metrics`)
//! with the token the user types in, so every call is authenticated exactly as from any other client.
//!
//! Every asset is answered with a strict Content-Security-Policy (`default-src 'self'`: no inline script,
//! no inline style, nothing from another origin, no framing), `X-Content-Type-Options: nosniff`, and an
//! `ETag` (the SHA-256 of its bytes) with `Cache-Control: no-cache`: a browser revalidates each load and
//! gets `304` while the binary is the same, so an upgraded Coordinator never runs a stale script.

use super::AppState;
use axum::Router;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, LOCATION, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// Where the console lives; `/` redirects here.
pub const CONSOLE_PATH: &str = "/console";
/// The paths that redirect to the console (`/console/` too: a typed URL often has the slash).
const REDIRECTS: [&str; 2] = ["/", "/console/"];

/// The policy every console answer carries: only this origin, no inline code, no framing, forms post here.
pub const CSP: &str = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// One embedded file: where it is served and as what.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// Every file of the console, by the path it is served at.
const ASSETS: &[Asset] = &[
    Asset { path: CONSOLE_PATH, content_type: HTML, body: include_bytes!("../../console/index.html") },
    Asset { path: "/console/console.css", content_type: CSS, body: include_bytes!("../../console/console.css") },
    Asset { path: "/console/favicon.svg", content_type: SVG, body: include_bytes!("../../console/favicon.svg") },
    Asset { path: "/console/api.js", content_type: JS, body: include_bytes!("../../console/api.js") },
    Asset { path: "/console/view.js", content_type: JS, body: include_bytes!("../../console/view.js") },
    Asset { path: "/console/pages.js", content_type: JS, body: include_bytes!("../../console/pages.js") },
    Asset { path: "/console/jobs.js", content_type: JS, body: include_bytes!("../../console/jobs.js") },
    Asset { path: "/console/app.js", content_type: JS, body: include_bytes!("../../console/app.js") },
];

/// The strong ETag of each asset, in the order of [`ASSETS`], computed once.
static ETAGS: LazyLock<Vec<String>> =
    LazyLock::new(|| ASSETS.iter().map(|a| format!("\"{}\"", hex(&Sha256::digest(a.body)[..16]))).collect());

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `path` is the console's (public: no credentials needed, whatever the method).
pub fn is_console_path(path: &str) -> bool {
    REDIRECTS.contains(&path) || ASSETS.iter().any(|a| a.path == path)
}

/// `/` and the console's files; not in the OpenAPI document (they are not API).
pub fn routes() -> Router<AppState> {
    let mut router = Router::new();
    for path in REDIRECTS {
        router = router.route(path, get(redirect));
    }
    for (i, asset) in ASSETS.iter().enumerate() {
        router = router.route(asset.path, get(move |headers: HeaderMap| async move { serve(i, &headers) }));
    }
    router
}

async fn redirect() -> Response {
    (StatusCode::FOUND, [(LOCATION, CONSOLE_PATH)]).into_response()
}

/// Asset `i`, or `304` when the browser's copy (`If-None-Match`) is this one.
fn serve(i: usize, headers: &HeaderMap) -> Response {
    let (asset, etag) = (&ASSETS[i], ETAGS[i].as_str());
    let fresh = headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == etag || tag.trim() == "*");
    let common = [
        (ETAG, HeaderValue::from_str(etag).expect("hex etag")),
        (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)),
        (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (common, [(CONTENT_TYPE, asset.content_type)], asset.body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_referenced_by_the_page_and_has_no_inline_code() {
        let html = std::str::from_utf8(ASSETS[0].body).unwrap();
        for a in &ASSETS[1..] {
            assert!(html.contains(&format!("\"{}\"", a.path)), "index.html does not load {}", a.path);
        }
        // CSP forbids inline code; the page must not depend on it.
        assert!(!html.contains("<script>") && !has_event_attribute(html) && !html.contains("style="), "inline code");
        assert!(!html.contains("http://") && !html.contains("https://"), "index.html names another origin");
        for a in ASSETS {
            let text = std::str::from_utf8(a.body).unwrap();
            assert!(text.lines().count() <= 400, "{} is longer than 400 lines", a.path);
            assert!(!text.contains("innerHTML"), "{} writes HTML from strings", a.path);
        }
    }

    /// Whether `html` has an inline event handler attribute (` onclick=`, ` onload=`, ...).
    fn has_event_attribute(html: &str) -> bool {
        html.match_indices(" on").any(|(i, _)| {
            let rest = &html[i + 3..];
            let name_len = rest.chars().take_while(|c| c.is_ascii_alphabetic()).count();
            name_len > 0 && rest[name_len..].starts_with('=')
        })
    }

    #[test]
    fn only_the_root_and_the_assets_are_console_paths() {
        assert!(is_console_path("/") && is_console_path("/console/") && is_console_path("/console/app.js"));
        assert!(
            !is_console_path("/console/nope.js") && !is_console_path("/consolex") && !is_console_path("/api/v1/nodes")
        );
    }

    #[test]
    fn a_matching_if_none_match_is_answered_304_without_a_body() {
        let i = ASSETS.iter().position(|a| a.path == "/console/app.js").unwrap();
        let mut h = HeaderMap::new();
        h.insert(IF_NONE_MATCH, HeaderValue::from_str(&format!("\"x\", {}", ETAGS[i])).unwrap());
        assert_eq!(serve(i, &h).status(), StatusCode::NOT_MODIFIED);
        let r = serve(i, &HeaderMap::new());
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[CONTENT_TYPE], JS);
        assert_eq!(r.headers()[CONTENT_SECURITY_POLICY], CSP);
        assert_eq!(r.headers()[ETAG], ETAGS[i].as_str());
        h.insert(IF_NONE_MATCH, HeaderValue::from_static("\"other\""));
        assert_eq!(serve(i, &h).status(), StatusCode::OK, "another version's tag gets the body");
    }
}
