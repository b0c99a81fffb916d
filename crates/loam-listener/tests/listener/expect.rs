//! `Expect: 100-continue` against a raw TCP client that checks every byte the server sends, in order: at
//! most one `100 Continue`, and only before the body is sent; then exactly one final response; and a
//! request answered without a `100` (refused unread, or with no body) closes its connection.

use crate::{BOUND, TestServer};
use loam_listener::ListenerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// A client connection and the bytes read from it but not yet parsed.
struct Client {
    s: TcpStream,
    buf: Vec<u8>,
}

/// One response: its status line, its header lines (lower-cased) and its body.
#[derive(Debug)]
struct Answer {
    status: String,
    headers: Vec<String>,
    body: String,
}

impl Answer {
    fn closes(&self) -> bool {
        self.headers.iter().any(|h| h == "connection: close")
    }
}

impl Client {
    async fn connect(srv: &TestServer) -> Self {
        Self { s: TcpStream::connect(srv.addr).await.unwrap(), buf: Vec::new() }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).await.unwrap();
    }

    /// Reads more bytes; false at EOF or reset.
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        match timeout(BOUND, self.s.read(&mut chunk)).await.expect("the server answers within BOUND") {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// The next response (a `100 Continue` is one, without a body).
    async fn answer(&mut self) -> Answer {
        let end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            assert!(self.fill().await, "closed before a whole response head: {:?}", String::from_utf8_lossy(&self.buf));
        };
        let head = String::from_utf8(self.buf.drain(..end + 4).collect()).unwrap();
        let mut lines = head.trim_end().split("\r\n");
        let status = lines.next().unwrap().to_string();
        let headers: Vec<String> = lines.map(|l| l.to_ascii_lowercase()).collect();
        let len = headers.iter().find_map(|h| h.strip_prefix("content-length: ")).map_or(0, |n| n.parse().unwrap());
        while self.buf.len() < len {
            assert!(self.fill().await, "closed in the body of {status}");
        }
        let body = String::from_utf8(self.buf.drain(..len).collect()).unwrap();
        Answer { status, headers, body }
    }

    /// Asserts the server closes the connection with nothing more sent.
    async fn closed(&mut self, why: &str) {
        while self.fill().await {}
        assert!(
            self.buf.is_empty(),
            "{why}: sent more than one final response: {:?}",
            String::from_utf8_lossy(&self.buf)
        );
    }

    /// Asserts the connection is still served: `/hello` is answered, and nothing came before its answer.
    async fn still_open(&mut self) {
        self.send(b"GET /hello HTTP/1.1\r\nHost: test\r\n\r\n").await;
        let a = self.answer().await;
        assert_eq!((a.status.as_str(), a.body.as_str()), ("HTTP/1.1 200 OK", "hello"), "the next request's answer");
    }
}

fn put(path: &str, len: usize) -> Vec<u8> {
    format!("PUT {path} HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\nContent-Length: {len}\r\n\r\n").into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_continued_upload_gets_one_100_before_its_body_then_one_answer_and_keeps_its_connection() {
    let srv = TestServer::start(ListenerConfig::default()).await;
    let mut c = Client::connect(&srv).await;
    c.send(&put("/echo", 5)).await;
    let first = c.answer().await;
    assert_eq!(first.status, "HTTP/1.1 100 Continue", "{first:?}");
    c.send(b"hello").await;
    let last = c.answer().await;
    assert_eq!((last.status.as_str(), last.body.as_str()), ("HTTP/1.1 200 OK", "got 5"));
    assert!(!last.closes(), "{last:?}");
    c.still_open().await;

    // A client that sends the body without waiting (botocore after 1 s) may get the `100` late, once.
    c.send(&[put("/echo", 5), b"hello".to_vec()].concat()).await;
    let mut a = c.answer().await;
    if a.status == "HTTP/1.1 100 Continue" {
        a = c.answer().await;
    }
    assert_eq!((a.status.as_str(), a.body.as_str()), ("HTTP/1.1 200 OK", "got 5"));
    c.still_open().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expecting_request_answered_without_100_continue_closes_its_connection() {
    let srv = TestServer::start(ListenerConfig::default()).await;

    // No body: hyper sends no `100` (RFC 9110 allows it); botocore would pin this status to the connection.
    let mut c = Client::connect(&srv).await;
    c.send(&put("/echo", 0)).await;
    let a = c.answer().await;
    assert_eq!((a.status.as_str(), a.body.as_str()), ("HTTP/1.1 200 OK", "got 0"));
    assert!(a.closes(), "an empty upload that expected 100-continue: {a:?}");
    c.closed("an empty upload").await;

    // Refused before the body is read: the final answer instead of a `100`, then the close.
    let mut c = Client::connect(&srv).await;
    c.send(&put("/refuse", 5)).await;
    let a = c.answer().await;
    assert_eq!((a.status.as_str(), a.body.as_str()), ("HTTP/1.1 403 Forbidden", "refused"));
    assert!(a.closes(), "{a:?}");
    c.send(b"hello").await; // as botocore does when the answer comes after its 1 s wait
    c.closed("a refused upload").await;

    // Refused with the body sent at once: still one answer, no `100`, and the close.
    let mut c = Client::connect(&srv).await;
    c.send(&[put("/refuse", 5), b"hello".to_vec()].concat()).await;
    let a = c.answer().await;
    assert_eq!(a.status, "HTTP/1.1 403 Forbidden", "{a:?}");
    assert!(a.closes(), "{a:?}");
    c.closed("a refused upload sent whole").await;

    // Without the expectation an empty upload keeps its connection.
    let mut c = Client::connect(&srv).await;
    c.send(b"PUT /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\n\r\n").await;
    let a = c.answer().await;
    assert!(!a.closes() && a.body == "got 0", "{a:?}");
    c.still_open().await;
}
