//! `Expect: 100-continue`: a request answered without a `100 Continue` closes its connection.
//!
//! hyper sends `HTTP/1.1 100 Continue` itself, when the service first reads the body of a request that
//! expects it. It sends none when the service answers without reading the body (a refusal), nor when the
//! framing says there is no body (`Content-Length: 0`), as RFC 9110 §10.1.1 allows. Both are correct
//! HTTP, but the botocore the AWS CLI carries (1.43; boto3's newer botocore resets this per request)
//! cannot take them on a kept-alive connection: when a final status arrives in place of the `100`, it
//! pins that status line to the connection, and the next `100-continue` request on it (botocore sends
//! the expectation with every PutObject and UploadPart of a file, empty ones included) takes the old
//! status, reads its own status line where its headers should be, and then its body until the
//! connection closes (`KeyError: 'ETag'` in `aws s3 cp`, or a retry that hides it).
//!
//! **Decision**: such a response carries `Connection: close` and hyper closes the connection after it.
//! RFC 9110 §10.1.1 asks a server that answers before reading the body to say whether it closes the
//! connection or reads on; closing is what every client understands, and it throws away an unread
//! body instead of reading a body nobody wants. A client that sent the body anyway (botocore after
//! waiting 1 s) sees the close, never a second response. Requests that were continued, and those
//! without the expectation, keep their connection.

use axum::body::Body;
use axum::http::header::{CONNECTION, EXPECT};
use axum::http::{HeaderValue, Request, Response};
use bytes::Bytes;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

/// Whether a request's body has been asked for (so hyper has sent `100 Continue`), if it expects one.
#[derive(Clone, Debug, Default)]
pub(crate) struct Expectation(Option<Arc<AtomicBool>>);

impl Expectation {
    /// `req` with its body watched when it carries `Expect: 100-continue`.
    pub(crate) fn watch<B>(req: Request<B>) -> (Request<ReadWatch<B>>, Self)
    where
        B: http_body::Body,
    {
        let expects = req.headers().get(EXPECT).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        let read = expects.then(|| Arc::new(AtomicBool::new(false)));
        // An empty body is never continued (hyper knows from the framing that nothing is to come), so
        // reading it does not count.
        let marks = read.clone().filter(|_| !req.body().is_end_stream());
        let (parts, body) = req.into_parts();
        (Request::from_parts(parts, ReadWatch { body, read: marks }), Self(read))
    }

    /// `resp` with `Connection: close` when the request expected `100 Continue` and got none.
    pub(crate) fn finish(&self, mut resp: Response<Body>) -> Response<Body> {
        if self.0.as_ref().is_some_and(|read| !read.load(Ordering::Acquire)) {
            resp.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
        }
        resp
    }
}

/// A request body that records the first time it is polled.
pub(crate) struct ReadWatch<B> {
    body: B,
    read: Option<Arc<AtomicBool>>,
}

impl<B> http_body::Body for ReadWatch<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, B::Error>>> {
        let me = self.get_mut();
        if let Some(read) = me.read.take() {
            read.store(true, Ordering::Release);
        }
        Pin::new(&mut me.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
