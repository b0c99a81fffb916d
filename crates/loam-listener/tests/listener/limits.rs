//! Header-read timeout, idle timeout, connection cap and graceful shutdown, against raw TCP clients.

use crate::{BOUND, SLOW, TestServer};
use loam_listener::{Limits, ListenerConfig};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

fn config(header_read_timeout: Duration, idle_timeout: Duration, max_connections: usize) -> ListenerConfig {
    ListenerConfig { tls: None, limits: Limits { header_read_timeout, idle_timeout, max_connections } }
}

const REQUEST: &[u8] = b"GET /hello HTTP/1.1\r\nHost: test\r\n\r\n";

/// One request on `s` (kept alive); the response once its body `hello` has arrived.
async fn hello_on(s: &mut TcpStream) -> String {
    s.write_all(REQUEST).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.ends_with(b"hello") {
        let n = s.read(&mut buf).await.expect("read the response");
        assert!(n > 0, "the server closed the connection before answering: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// `/hello` on a new connection.
async fn hello(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    hello_on(&mut s).await
}

/// Waits until the server closes `s` (EOF or reset); panics after [`BOUND`].
async fn closed_by_server(s: &mut TcpStream, why: &str) {
    let mut buf = [0u8; 64];
    loop {
        match timeout(BOUND, s.read(&mut buf)).await {
            Err(_) => panic!("{why}: the server has not closed the connection after {BOUND:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_and_half_headers_neither_keep_clients_out_nor_stay_open() {
    let srv = TestServer::start(config(Duration::from_secs(2), Duration::from_secs(60), 10_000)).await;
    let mut idle = Vec::new();
    for _ in 0..2000 {
        idle.push(TcpStream::connect(srv.addr).await.expect("connect an idle client"));
    }
    let mut half = Vec::new();
    for _ in 0..20 {
        let mut s = TcpStream::connect(srv.addr).await.unwrap();
        s.write_all(b"GET /hello HTTP/1.1\r\nHost: test\r\nX-Slow: ").await.unwrap();
        half.push(s);
    }
    let answer = timeout(BOUND, hello(srv.addr)).await.expect("a legitimate client is served");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    for s in &mut half {
        closed_by_server(s, "half a header, then nothing").await;
    }
    for s in idle.iter_mut().step_by(100) {
        closed_by_server(s, "connected, sent nothing").await;
    }
}

#[tokio::test]
async fn a_kept_alive_connection_is_closed_after_the_idle_timeout_but_not_during_a_long_request() {
    let srv = TestServer::start(config(Duration::from_secs(1), Duration::from_secs(1), 100)).await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    // `/slow` outlasts both timeouts: a request being answered has no clock.
    s.write_all(b"GET /slow HTTP/1.1\r\nHost: test\r\n\r\n").await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.ends_with(b"slow") {
        let n = timeout(BOUND, s.read(&mut buf)).await.expect("the slow answer comes").unwrap();
        assert!(n > 0, "closed during a request that took {SLOW:?}");
        got.extend_from_slice(&buf[..n]);
    }
    let again = hello_on(&mut s).await;
    assert!(again.starts_with("HTTP/1.1 200"), "the connection is kept alive: {again}");
    closed_by_server(&mut s, "kept alive, then idle").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_cap_clients_wait_and_are_served_once_idle_connections_time_out() {
    let srv = TestServer::start(config(Duration::from_secs(1), Duration::from_secs(60), 50)).await;
    let mut kept = TcpStream::connect(srv.addr).await.unwrap();
    hello_on(&mut kept).await;
    // Far more idle clients than slots: the cap fills and the rest wait in the backlog.
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(TcpStream::connect(srv.addr).await.expect("connect an idle client"));
    }
    let served = timeout(BOUND, hello_on(&mut kept)).await.expect("a connection being served keeps its slot");
    assert!(served.starts_with("HTTP/1.1 200"), "{served}");
    let answer = timeout(BOUND, hello(srv.addr)).await.expect("a new client is served once idle slots free");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn shutdown_answers_the_request_in_flight_then_stops_listening() {
    let mut srv = TestServer::start(config(Duration::from_secs(10), Duration::from_secs(60), 100)).await;
    crate::install_provider();
    let url = format!("{}/slow", srv.url);
    let slow = tokio::spawn(async move { reqwest::get(url).await?.text().await });
    timeout(BOUND, srv.slow_started.notified()).await.expect("the request reaches the handler");
    srv.begin_shutdown();
    assert_eq!(timeout(BOUND, slow).await.unwrap().unwrap().unwrap(), "slow");
    let served = srv.task.take().unwrap();
    timeout(BOUND, served).await.expect("serve returns once drained").unwrap().unwrap();
    assert!(TcpStream::connect(srv.addr).await.is_err(), "no longer listening");
}
