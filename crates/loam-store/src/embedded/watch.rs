//! Watches of the embedded store: every committed transaction's events go into a bounded in-memory
//! history and onto a `tokio::sync::broadcast` channel. A watch takes its replay from the history and
//! subscribes to the channel under one lock, the same one publication takes, so no event falls between
//! replay and live delivery and none is delivered twice. A receiver that falls behind the channel's
//! buffer gets an error and its stream ends: the caller re-watches from the last revision it saw (served
//! from the history, or `Compacted` when even that is gone), so no event is ever skipped silently.

use crate::{Revision, StoreError, StoreResult, WatchEvent};
use futures::StreamExt;
use futures::stream::BoxStream;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::broadcast;

/// The events of one committed transaction, all at one revision.
#[derive(Debug)]
pub(super) struct Batch {
    revision: Revision,
    events: Vec<WatchEvent>,
}

/// The revision of an event.
pub(super) fn event_revision(event: &WatchEvent) -> Revision {
    match event {
        WatchEvent::Put(kv) => kv.mod_revision,
        WatchEvent::Delete { revision, .. } => *revision,
    }
}

/// The key of an event.
fn event_key(event: &WatchEvent) -> &str {
    match event {
        WatchEvent::Put(kv) => &kv.key,
        WatchEvent::Delete { key, .. } => key,
    }
}

/// Recent history and the live channel.
pub(super) struct Events {
    history: VecDeque<WatchEvent>,
    /// Every event with a revision at or above this one is in `history`.
    first_kept: Revision,
    capacity: usize,
    /// `None` once the store is shut down, which ends every watch.
    sender: Option<broadcast::Sender<Arc<Batch>>>,
}

impl Events {
    /// Empty history starting after `revision`, keeping at most `capacity` events; the channel buffers
    /// `buffer` transactions per receiver.
    pub(super) fn new(revision: Revision, capacity: usize, buffer: usize) -> Self {
        let (sender, _) = broadcast::channel(buffer.max(1));
        Self { history: VecDeque::new(), first_kept: revision + 1, capacity: capacity.max(1), sender: Some(sender) }
    }

    /// Records and sends the events of the transaction committed at `revision`.
    pub(super) fn publish(&mut self, revision: Revision, events: Vec<WatchEvent>) {
        self.history.extend(events.iter().cloned());
        while self.history.len() > self.capacity {
            if let Some(dropped) = self.history.pop_front() {
                self.first_kept = event_revision(&dropped) + 1;
            }
        }
        // A transaction is replayed whole or not at all: drop what is left of a partly trimmed one.
        while self.history.front().is_some_and(|e| event_revision(e) < self.first_kept) {
            self.history.pop_front();
        }
        if let Some(sender) = &self.sender {
            // An error only means nobody is watching right now.
            let _ = sender.send(Arc::new(Batch { revision, events }));
        }
    }

    /// Ends every watch stream (with an error) and refuses new ones.
    pub(super) fn close(&mut self) {
        self.sender = None;
    }

    /// A stream of the events under `prefix` after revision `after` (0 = from now on).
    pub(super) fn watch(
        &self,
        prefix: &str,
        after: Revision,
    ) -> StoreResult<BoxStream<'static, StoreResult<WatchEvent>>> {
        let sender = self.sender.as_ref().ok_or_else(closed)?;
        let mut replay = VecDeque::new();
        if after > 0 {
            if after + 1 < self.first_kept {
                return Err(StoreError::Compacted(after + 1));
            }
            let start = self.history.partition_point(|e| event_revision(e) <= after);
            replay.extend(self.history.range(start..).filter(|e| event_key(e).starts_with(prefix)).cloned());
        }
        let state = WatchState { pending: replay, rx: Some(sender.subscribe()), prefix: prefix.to_string(), after };
        Ok(futures::stream::unfold(state, next_event).boxed())
    }
}

/// The error a watch ends with when the store shuts down.
fn closed() -> StoreError {
    StoreError::Unavailable("the embedded store has been shut down".into())
}

/// A watch stream's state.
struct WatchState {
    pending: VecDeque<WatchEvent>,
    /// `None` once the stream has reported its terminal error.
    rx: Option<broadcast::Receiver<Arc<Batch>>>,
    prefix: String,
    after: Revision,
}

async fn next_event(mut s: WatchState) -> Option<(StoreResult<WatchEvent>, WatchState)> {
    loop {
        if let Some(event) = s.pending.pop_front() {
            return Some((Ok(event), s));
        }
        let rx = s.rx.as_mut()?;
        match rx.recv().await {
            Ok(batch) => {
                // Only a watch from a future revision has anything to skip here.
                if batch.revision > s.after {
                    s.pending.extend(batch.events.iter().filter(|e| event_key(e).starts_with(&s.prefix)).cloned());
                }
            }
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                s.rx = None;
                let err = StoreError::Unavailable(format!(
                    "watch fell {missed} transactions behind and was dropped; re-watch from the last revision seen"
                ));
                return Some((Err(err), s));
            }
            Err(broadcast::error::RecvError::Closed) => {
                s.rx = None;
                return Some((Err(closed()), s));
            }
        }
    }
}
