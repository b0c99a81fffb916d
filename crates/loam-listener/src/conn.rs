//! One connection: its TLS handshake, its HTTP/1.1 exchange with the router, and the clock that closes it.
//!
//! A connection is always in one [`Phase`]:
//! - `Head` from the accept (or from the first byte after an idle spell) until a request's head is parsed:
//!   closed when that takes longer than the header-read timeout. From the accept this includes the TLS
//!   handshake, so a client that connects and sends nothing, or half a header, holds its slot that long.
//! - `Busy` while a request is being answered, until its response body has been sent (or dropped): no
//!   clock, so long requests (a `sync` job, a large read) are never cut.
//! - `Idle` after the last response, until a byte arrives: closed after the idle (keep-alive) timeout.
//!
//! hyper's own `header_read_timeout` is left off: it also starts when a kept-alive connection goes idle,
//! so it would be the idle timeout too. The phase moves when the [`Tracked`] stream reads bytes and when
//! the service starts and finishes a request ([`RequestGuard`], carried by the response body).

use crate::Limits;
use crate::expect::{Expectation, ReadWatch};
use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

#[derive(Clone, Copy, Debug)]
enum Phase {
    Head { since: Instant },
    Busy { requests: usize },
    Idle { since: Instant },
}

/// The phase of one connection, and a wake-up for its clock when the phase moves.
struct Activity {
    phase: Mutex<Phase>,
    moved: Notify,
}

impl Activity {
    fn new() -> Self {
        Self { phase: Mutex::new(Phase::Head { since: Instant::now() }), moved: Notify::new() }
    }

    fn deadline(&self, limits: &Limits) -> Option<Instant> {
        match *self.phase.lock() {
            Phase::Head { since } => Some(since + limits.header_read_timeout),
            Phase::Idle { since } => Some(since + limits.idle_timeout),
            Phase::Busy { .. } => None,
        }
    }

    fn bytes_read(&self) {
        let mut p = self.phase.lock();
        if let Phase::Idle { .. } = *p {
            *p = Phase::Head { since: Instant::now() };
            self.moved.notify_one();
        }
    }

    fn request_started(&self) {
        let mut p = self.phase.lock();
        *p = match *p {
            Phase::Busy { requests } => Phase::Busy { requests: requests + 1 },
            _ => Phase::Busy { requests: 1 },
        };
        self.moved.notify_one();
    }

    fn request_ended(&self) {
        let mut p = self.phase.lock();
        if let Phase::Busy { requests } = *p {
            *p = if requests > 1 {
                Phase::Busy { requests: requests - 1 }
            } else {
                Phase::Idle { since: Instant::now() }
            };
            self.moved.notify_one();
        }
    }
}

/// The plain or TLS stream of a connection.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// A stream that tells its [`Activity`] when bytes arrive.
struct Tracked {
    inner: Stream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        let before = buf.filled().len();
        let r = match &mut me.inner {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        };
        if buf.filled().len() > before {
            me.activity.bytes_read();
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().inner {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, data),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, data),
        }
    }

    // Without these two, hyper sees a stream that cannot write vectored and "flattens": it copies every
    // body byte into its own write buffer before the socket's copy (29 % of the worker's CPU on warm
    // reads, 9 % on cold ones, by a profile). With them it hands the head and the body's `Bytes` to one
    // `writev`.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().inner {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.inner {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().inner {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().inner {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A request being answered: ends its part of `Busy` when dropped (with the response body, or with the
/// handler's future when the client goes away first).
struct RequestGuard(Arc<Activity>);

impl RequestGuard {
    fn new(activity: Arc<Activity>) -> Self {
        activity.request_started();
        Self(activity)
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

/// A response body that holds its request's guard until it is sent.
pub(crate) struct GuardedBody {
    body: Body,
    _guard: RequestGuard,
}

impl http_body::Body for GuardedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The router as a hyper service of one connection; a request that expected `100 Continue` and was
/// answered without one closes the connection (`expect`).
#[derive(Clone)]
struct Service {
    app: Router,
    activity: Arc<Activity>,
}

impl hyper::service::Service<Request<Incoming>> for Service {
    type Response = Response<GuardedBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let guard = RequestGuard::new(self.activity.clone());
        let mut app = self.app.clone();
        Box::pin(async move {
            use tower_service::Service as _;
            type Watched = Request<ReadWatch<Incoming>>;
            std::future::poll_fn(|cx| <Router as tower_service::Service<Watched>>::poll_ready(&mut app, cx)).await?;
            let (req, expectation) = Expectation::watch(req);
            let resp = expectation.finish(app.call(req).await?);
            Ok(resp.map(|body| GuardedBody { body, _guard: guard }))
        })
    }
}

/// Serves one accepted connection until it ends, its clock runs out, or shutdown drains it.
pub(crate) async fn serve(
    tcp: TcpStream,
    tls: Option<tokio_rustls::TlsAcceptor>,
    app: Router,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::new());
    let stream = match tls {
        None => Stream::Plain(tcp),
        Some(acceptor) => {
            let deadline = activity.deadline(&limits).unwrap_or_else(Instant::now);
            tokio::select! {
                r = tokio::time::timeout_at(deadline, acceptor.accept(tcp)) => match r {
                    Ok(Ok(s)) => Stream::Tls(Box::new(s)),
                    Ok(Err(e)) => return tracing::debug!("TLS handshake failed: {e}"),
                    Err(_) => return tracing::debug!("TLS handshake took longer than the header-read timeout"),
                },
                _ = shutdown.wait_for(|s| *s) => return,
            }
        }
    };
    let io = TokioIo::new(Tracked { inner: stream, activity: activity.clone() });
    let service = Service { app, activity: activity.clone() };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.header_read_timeout(None);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut draining = false;
    loop {
        let deadline = activity.deadline(&limits);
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!("connection ended: {e}");
                }
                return;
            }
            _ = shutdown.wait_for(|s| *s), if !draining => {
                // Closes at once when idle; otherwise after the response in flight.
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = activity.moved.notified() => {}
            _ = sleep_until(deadline) => {
                if activity.deadline(&limits).is_some_and(|d| d <= Instant::now()) {
                    return tracing::debug!("closing a connection past its header-read or idle timeout");
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// hyper copies each response body into its own buffer when the stream cannot write vectored: the
    /// connection's stream must say it can where the socket can.
    #[tokio::test]
    async fn the_connection_stream_writes_vectored() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (tcp, _) = listener.accept().await.unwrap();
        let activity = Arc::new(Activity::new());
        let mut io = Tracked { inner: Stream::Plain(tcp), activity };
        assert!(io.is_write_vectored());
        let bufs = [io::IoSlice::new(b"head "), io::IoSlice::new(b"body")];
        let n = std::future::poll_fn(|cx| Pin::new(&mut io).poll_write_vectored(cx, &bufs)).await.unwrap();
        assert_eq!(n, 9, "both slices in one write");
        let mut got = [0u8; 9];
        client.readable().await.unwrap();
        assert_eq!(client.try_read(&mut got).unwrap(), 9);
        assert_eq!(&got, b"head body");
    }
}
