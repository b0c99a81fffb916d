//! A ranged read whose pieces are handed on as they fill (`Ufs::stream_pieces_of` on S3).
//!
//! The response is read by the same loop as every other read (`read_until_eof`: If-Match, a file that
//! ends inside the range, the retry layer's flag) into a sink that cuts the chunks into piece-sized
//! buffers — the one copy out of the network buffers — and sends each full piece down a channel. The
//! read runs as the stream is polled (the two are joined, no task is spawned), so dropping the stream
//! cancels the request. The channel is unbounded: what it can hold is bounded by the range asked for,
//! which the caller sizes (a run of pages, counted against its budget before it reads).

use super::{Sink, map_error, read_until_eof, transient};
use crate::UfsResult;
use bytes::{Bytes, BytesMut};
use futures::channel::mpsc::{UnboundedSender, unbounded};
use futures::stream::{self, BoxStream, StreamExt};
use opendal::Operator;

/// Pieces of `[offset, end)` of `rel`, each yielded as it fills; only from the object whose ETag is
/// `if_match` (quoted).
pub(super) fn stream<'a>(
    op: Operator,
    rel: String,
    uri: &'a str,
    offset: u64,
    end: u64,
    if_match: String,
    piece: u64,
) -> BoxStream<'a, UfsResult<Bytes>> {
    let (tx, rx) = unbounded();
    let errors = tx.clone();
    let read = async move {
        let sink = Sender { piece: piece.clamp(1, 64 << 20) as usize, current: BytesMut::new(), tx };
        let (result, transient) =
            transient::observe(read_until_eof(&op, &rel, offset, end, Some(&if_match), sink)).await;
        match result {
            Ok(sink) => sink.finish(),
            Err(e) => {
                let _ = errors.unbounded_send(Err(map_error(e, uri, transient)));
            }
        }
    };
    // The read yields nothing itself; the stream ends when the read is done and its pieces are taken.
    stream::select(rx, stream::once(read).filter_map(|()| async { None })).boxed()
}

/// Cuts a response into pieces of `piece` bytes and sends each one when it is full.
struct Sender {
    piece: usize,
    current: BytesMut,
    tx: UnboundedSender<UfsResult<Bytes>>,
}

impl Sender {
    /// Sends the last, shorter piece, if any.
    fn finish(mut self) {
        if !self.current.is_empty() {
            let _ = self.tx.unbounded_send(Ok(std::mem::take(&mut self.current).freeze()));
        }
    }
}

impl Sink for Sender {
    fn push(&mut self, chunk: Bytes) {
        let mut rest = &chunk[..];
        while !rest.is_empty() {
            if self.current.capacity() == 0 {
                self.current = BytesMut::with_capacity(self.piece);
            }
            let n = (self.piece - self.current.len()).min(rest.len());
            self.current.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            if self.current.len() == self.piece {
                // A stream that was dropped takes no more pieces; the read is cancelled with it.
                let _ = self.tx.unbounded_send(Ok(std::mem::take(&mut self.current).freeze()));
            }
        }
    }
}
