//! Watches on etcd. One gRPC watch stream per store watch: `open` sends the create request and waits
//! (within the request timeout) for etcd's "created" answer, so a change made after `watch` returns is
//! always seen, even for a watch "from now". The stream then turns etcd's responses into events.
//!
//! etcd creates a watch from a compacted revision and cancels it a moment later. To refuse it up front, as
//! the embedded store does, `open` first reads at the start revision: etcd fails that read exactly when the
//! watch would be compacted (and with "future revision" when it starts past the current one, which is fine).
//! A compaction between the read and the watch still ends the stream with `Compacted`.
//!
//! etcd-client does not resume a watch: when the connection breaks, etcd cancels the watch (compaction,
//! lost leader) or the stream ends, the store's stream yields one error and ends, and the caller re-watches
//! from the last revision it saw. The request half of the gRPC stream stays inside the stream state:
//! dropping it would half-close the call.

use super::convert::{store_error, watch_event};
use crate::{Revision, StoreError, StoreResult, WatchEvent};
use etcd_client::{Client, GetOptions, WatchOptions, WatchResponse, WatchStream};
use futures::StreamExt;
use futures::stream::BoxStream;
use std::collections::VecDeque;
use std::time::Duration;

/// A watch being read: the gRPC stream, events of the last response not yet handed out, and whether the
/// stream has ended (after its final error).
struct State {
    stream: WatchStream,
    pending: VecDeque<StoreResult<WatchEvent>>,
    ended: bool,
}

/// Opens a watch of the keys in `[start, end)` from revision `after + 1` (0: from now on).
pub(super) async fn open(
    client: &Client,
    start: Vec<u8>,
    end: Vec<u8>,
    after: Revision,
    timeout: Duration,
) -> StoreResult<BoxStream<'static, StoreResult<WatchEvent>>> {
    let from = if after > 0 { after + 1 } else { 0 };
    let options = WatchOptions::new().with_range(end).with_start_revision(from);
    let created = async {
        if from > 0 {
            check_not_compacted(client, &start, from).await?;
        }
        let mut stream =
            client.watch_client().watch(start, Some(options)).await.map_err(|e| store_error(e, None, Some(from)))?;
        // The first response confirms the watch (or refuses it, e.g. for a compacted start revision).
        match stream.message().await.map_err(|e| store_error(e, None, Some(from)))? {
            Some(resp) if resp.created() && !resp.canceled() => Ok((stream, resp)),
            Some(resp) => Err(cancel_error(&resp, from)),
            None => Err(StoreError::Unavailable("etcd closed the watch before creating it".into())),
        }
    };
    let (stream, first) = tokio::time::timeout(timeout, created)
        .await
        .map_err(|_| StoreError::Unavailable(format!("etcd did not create the watch within {timeout:?}")))??;
    let mut state = State { stream, pending: VecDeque::new(), ended: false };
    state.take(&first, from);
    Ok(futures::stream::unfold(state, move |state| state.next(from)).boxed())
}

/// Fails with `Compacted` when etcd no longer has revision `from`.
async fn check_not_compacted(client: &Client, key: &[u8], from: Revision) -> StoreResult<()> {
    // The watched key itself: an etcd user allowed to watch it may read it (any key would do otherwise).
    let options = GetOptions::new().with_revision(from).with_count_only();
    match client.kv_client().get(key, Some(options)).await {
        Ok(_) => Ok(()),
        Err(etcd_client::Error::GRpcStatus(s)) if s.message().contains("future revision") => Ok(()),
        Err(e) => Err(store_error(e, None, Some(from))),
    }
}

impl State {
    /// The next item, reading responses until one carries an event or ends the watch.
    async fn next(mut self, from: Revision) -> Option<(StoreResult<WatchEvent>, Self)> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some((item, self));
            }
            if self.ended {
                return None;
            }
            match self.stream.message().await {
                Ok(Some(resp)) => self.take(&resp, from),
                Ok(None) => self.end(StoreError::Unavailable("etcd closed the watch stream".into())),
                Err(e) => self.end(store_error(e, None, Some(from))),
            }
        }
    }

    /// Queues a response's events, or its cancellation. Progress notifications carry no events.
    fn take(&mut self, resp: &WatchResponse, from: Revision) {
        if resp.canceled() || resp.compact_revision() > 0 {
            self.end(cancel_error(resp, from));
            return;
        }
        for event in resp.events() {
            match watch_event(event) {
                Ok(event) => self.pending.push_back(Ok(event)),
                Err(e) => {
                    self.end(e);
                    return;
                }
            }
        }
    }

    /// Queues the final error; nothing follows it.
    fn end(&mut self, error: StoreError) {
        self.pending.push_back(Err(error));
        self.ended = true;
    }
}

/// Why etcd cancelled (or refused) a watch.
fn cancel_error(resp: &WatchResponse, from: Revision) -> StoreError {
    if resp.compact_revision() > 0 {
        // Like the embedded store, report the first revision asked for that is gone.
        tracing::debug!(from, compacted = resp.compact_revision(), "etcd watch start revision compacted");
        return StoreError::Compacted(from);
    }
    let reason = resp.cancel_reason();
    let reason = if reason.is_empty() { "no reason given" } else { reason };
    StoreError::Unavailable(format!("etcd cancelled the watch: {reason}"))
}
