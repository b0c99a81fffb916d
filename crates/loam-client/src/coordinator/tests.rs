//! The order, the stickiness and the `503` rule, against small HTTP servers on loopback.

use super::*;
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use loam_auth::Credential;
use std::sync::atomic::AtomicUsize;

/// A Coordinator stand-in: answers every request with `status` and `{"status": "<name>: <body>"}`,
/// closing each connection (so once stopped, it is gone for the client too); counts its requests.
struct Server {
    url: String,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(name: &'static str, status: u16) -> Self {
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        let app = Router::new().fallback(move |body: String| {
            let h = h.clone();
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                let mut r = (
                    StatusCode::from_u16(status).unwrap(),
                    axum::Json(serde_json::json!({ "status": format!("{name}: {body}") })),
                )
                    .into_response();
                r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
                r
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, hits, task }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Stops accepting connections: the port refuses them from now on.
    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// A URL where nothing listens.
async fn dead() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    format!("http://{}", l.local_addr().unwrap())
}

/// A server that accepts connections and never answers.
async fn silent() -> (String, tokio::task::JoinHandle<()>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    (url, task)
}

fn client(urls: &[&str]) -> Coordinators {
    let urls: Vec<String> = urls.iter().map(|u| u.to_string()).collect();
    Coordinators::new(&urls, PeerClient::build(Credential::none()).unwrap()).unwrap()
}

/// `POST /api/v1/x` with `body`: the answer's status and `status` message.
async fn post(c: &Coordinators, body: &str) -> Result<(u16, String), PeerError> {
    let body = body.to_string();
    let r = c.send(reqwest::Method::POST, "/api/v1/x", |req| req.body(body.clone())).await?;
    let status = r.status().as_u16();
    let v: serde_json::Value = r.json().await.unwrap();
    Ok((status, v["status"].as_str().unwrap_or_default().to_string()))
}

#[tokio::test]
async fn a_request_goes_past_dead_and_503_coordinators_in_order_and_carries_its_body_each_time() {
    let (no_leader, a, b) =
        (Server::start("no-leader", 503).await, Server::start("a", 200).await, Server::start("b", 200).await);
    let c = client(&[&dead().await, &no_leader.url, &a.url, &b.url]);
    assert_eq!(post(&c, "one").await.unwrap(), (200, "a: one".to_string()));
    assert_eq!((no_leader.hits(), a.hits(), b.hits()), (1, 1, 0), "in list order, stopping at the first answer");
    assert_eq!(c.current(), a.url);
}

#[tokio::test]
async fn the_coordinator_that_answered_is_tried_first_until_it_fails_and_clones_share_it() {
    let (no_leader, a, b) =
        (Server::start("no-leader", 503).await, Server::start("a", 200).await, Server::start("b", 200).await);
    let c = client(&[&no_leader.url, &a.url, &b.url]);
    post(&c, "1").await.unwrap();
    let clone = c.clone();
    assert_eq!(post(&clone, "2").await.unwrap().1, "a: 2");
    assert_eq!((no_leader.hits(), a.hits()), (1, 2), "the 503 one is not asked again");
    a.stop().await;
    assert_eq!(post(&c, "3").await.unwrap().1, "b: 3", "the next in the list after the sticky one");
    assert_eq!(post(&c, "4").await.unwrap().1, "b: 4");
    assert_eq!((no_leader.hits(), b.hits(), c.current()), (1, 2, b.url.as_str()));
    let b_url = b.url.clone();
    b.stop().await;
    // From the sticky `b`, wrapping around: the 503 one, then the dead `a`: the 503 is the answer.
    assert_eq!(post(&c, "5").await.unwrap(), (503, "no-leader: 5".to_string()));
    assert_eq!(c.current(), b_url, "a 503 does not move the stickiness");
}

#[tokio::test]
async fn an_error_status_other_than_503_is_the_answer() {
    let (refused, a) = (Server::start("refused", 403).await, Server::start("a", 200).await);
    let c = client(&[&refused.url, &a.url]);
    assert_eq!(post(&c, "x").await.unwrap(), (403, "refused: x".to_string()));
    let (bug, a2) = (Server::start("bug", 500).await, Server::start("a2", 200).await);
    let c = client(&[&bug.url, &a2.url]);
    assert_eq!(post(&c, "y").await.unwrap().0, 500);
    assert_eq!((a.hits(), a2.hits()), (0, 0));
}

#[tokio::test]
async fn a_timeout_moves_on_and_nobody_answering_names_every_url() {
    let (silent, _task) = silent().await;
    let a = Server::start("a", 200).await;
    let c = client(&[&silent, &a.url]);
    let timed = |req: reqwest::RequestBuilder| req.timeout(std::time::Duration::from_millis(300));
    let r = c.send(reqwest::Method::GET, "/api/v1/x", timed).await.unwrap();
    assert_eq!((r.status().as_u16(), c.current()), (200, a.url.as_str()));
    let (d1, d2) = (dead().await, dead().await);
    let c = client(&[&d1, &silent, &d2]);
    let e = c.send(reqwest::Method::GET, "/api/v1/x", timed).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    let m = e.to_string();
    assert!(m.starts_with("no Coordinator could be reached"), "{m}");
    assert!(m.contains(&format!("{d1} unreachable")) && m.contains(&format!("{d2} unreachable")), "{m}");
    assert!(m.contains(&format!("{silent} timed out")), "{m}");
}

#[test]
fn lists_are_checked_entry_by_entry() {
    let list = |s: &str| parse_list(&s.split(',').map(str::to_string).collect::<Vec<_>>());
    assert_eq!(list("http://a:1/, https://b").unwrap(), ["http://a:1", "https://b"]);
    assert_eq!(list("http://a,,http://b"), Err(UrlListError::EmptyEntry(2)));
    assert_eq!(list("http://a,"), Err(UrlListError::EmptyEntry(2)));
    assert_eq!(list(""), Err(UrlListError::EmptyEntry(1)));
    assert_eq!(parse_list(&[]), Err(UrlListError::Empty));
    assert!(matches!(list("http://a,ftp://b"), Err(UrlListError::Scheme { index: 2, .. })));
    assert!(matches!(list("a:19999"), Err(UrlListError::Scheme { index: 1, .. })), "no scheme: `a` is one");
    assert!(matches!(list("127.0.0.1:19999"), Err(UrlListError::NotAUrl { index: 1, .. })));
    assert!(matches!(list("http://"), Err(UrlListError::NotAUrl { index: 1, .. })));
    let e = list("http://a, file:///x").unwrap_err().to_string();
    assert_eq!(e, r#"entry 2 ("file:///x") must be an http:// or https:// URL with a host"#);
}
