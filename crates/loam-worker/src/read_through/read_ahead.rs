//! Read-ahead within one worker-wide budget, so that what responses hold in memory does not grow with the
//! number of connections.
//!
//! A range stream reads up to its *depth* of pages ahead of the one it is sending, which keeps the UFS
//! and the disk busy while the client receives: [`READ_AHEAD_PAGES`] at least, more for a mount whose UFS
//! is slow to answer (`pace`: the depth follows that mount's measured latency and bandwidth, also while
//! a stream runs). Each page read ahead takes a page of the worker's
//! [`ReadAheadBudget`] (`--read-ahead-size`) and gives it back when the stream yields that page to the
//! HTTP layer. The page a stream needs next is read without the budget: every response always makes
//! progress, one page at a time when the budget is spent, and a client that stops reading holds at most
//! what it had already taken. Taking is non-blocking (`try_acquire`), so there is no waiting on the
//! budget and nothing to deadlock.
//!
//! So a worker's response buffers are at most the budget plus one page per response being produced (plus,
//! on a miss, the rest of the UFS run that page was read in: see DESIGN.md, "Memory").

use super::pace::Depth;
use bytes::Bytes;
use futures::stream::{FuturesOrdered, Stream, StreamExt};
use prometheus_client::metrics::gauge::Gauge;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How many pages a range stream reads ahead of the one it is sending, at least (when the budget has
/// room): the depth of a mount not measured yet, and of one whose UFS answers at once.
pub const READ_AHEAD_PAGES: usize = 8;

/// Pages that all responses of a worker together may read ahead of what they send.
#[derive(Clone, Debug)]
pub struct ReadAheadBudget {
    pages: Arc<Semaphore>,
    page_size: u64,
    /// Bytes taken now (`loam_worker_read_ahead_bytes`).
    in_use: Gauge,
}

/// A page of the budget, given back on drop.
#[derive(Debug)]
struct Taken {
    _permit: OwnedSemaphorePermit,
    in_use: Gauge,
    bytes: i64,
}

impl Drop for Taken {
    fn drop(&mut self) {
        self.in_use.dec_by(self.bytes);
    }
}

impl ReadAheadBudget {
    /// A budget of `bytes`, counted in pages of `page_size` (rounded down; 0 turns read-ahead off); what is
    /// taken is shown on `in_use`.
    pub fn new(bytes: u64, page_size: u64, in_use: Gauge) -> Self {
        let pages = (bytes / page_size.max(1)).min(Semaphore::MAX_PERMITS as u64) as usize;
        Self { pages: Arc::new(Semaphore::new(pages)), page_size, in_use }
    }

    /// Bytes read ahead now, by every response together.
    pub fn in_use(&self) -> u64 {
        self.in_use.get().max(0) as u64
    }

    fn try_take(&self) -> Option<Taken> {
        let permit = self.pages.clone().try_acquire_owned().ok()?;
        let bytes = i64::try_from(self.page_size).unwrap_or(i64::MAX);
        self.in_use.inc_by(bytes);
        Some(Taken { _permit: permit, in_use: self.in_use.clone(), bytes })
    }
}

/// The pages `first..=last`, read by `read` in order, each yielded as it is needed; up to `depth` (read
/// at each step) in flight while `budget` has room, one otherwise.
pub fn pages<F, Fut, E>(first: u64, last: u64, budget: ReadAheadBudget, depth: Depth, read: F) -> ReadAhead<F, Fut>
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = Result<Bytes, E>>,
{
    ReadAhead { next: first, last, budget, depth, read, queue: FuturesOrdered::new() }
}

/// The stream of [`pages`].
pub struct ReadAhead<F, Fut: Future> {
    next: u64,
    last: u64,
    budget: ReadAheadBudget,
    depth: Depth,
    read: F,
    /// Pages in flight, in order, each with the budget it took (none for the page read as the head).
    queue: FuturesOrdered<Held<Fut>>,
}

/// A page read with the budget it holds; the budget goes back when the output is yielded (dropped).
struct Held<Fut> {
    read: Pin<Box<Fut>>,
    permit: Option<Taken>,
}

impl<Fut: Future> Future for Held<Fut> {
    type Output = (Fut::Output, Option<Taken>);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let out = std::task::ready!(self.read.as_mut().poll(cx));
        Poll::Ready((out, self.permit.take()))
    }
}

impl<F, Fut: Future> Unpin for ReadAhead<F, Fut> {}

impl<F, Fut, E> Stream for ReadAhead<F, Fut>
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = Result<Bytes, E>>,
{
    type Item = Result<Bytes, E>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        while this.next <= this.last {
            let permit = if this.queue.is_empty() {
                None
            } else if this.queue.len() < this.depth.load(Ordering::Relaxed)
                && let Some(p) = this.budget.try_take()
            {
                Some(p)
            } else {
                break;
            };
            this.queue.push_back(Held { read: Box::pin((this.read)(this.next)), permit });
            this.next += 1;
        }
        match std::task::ready!(this.queue.poll_next_unpin(cx)) {
            // The permit is dropped here: the page leaves the read-ahead for the HTTP layer.
            Some((page, _permit)) => Poll::Ready(Some(page)),
            None => Poll::Ready(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;
    use std::sync::atomic::AtomicUsize;

    fn depth(pages: usize) -> Depth {
        Arc::new(AtomicUsize::new(pages))
    }

    fn read_counting(started: &Arc<AtomicUsize>) -> impl FnMut(u64) -> futures::future::Ready<Result<Bytes, ()>> {
        let started = started.clone();
        move |i| {
            started.fetch_add(1, Ordering::SeqCst);
            futures::future::ready(Ok(Bytes::from(vec![i as u8; 4])))
        }
    }

    #[tokio::test]
    async fn pages_come_in_order_with_or_without_budget() {
        for budget_pages in [0, 1, 3, 100] {
            let budget = ReadAheadBudget::new(budget_pages * 4, 4, Gauge::default());
            let started = Arc::new(AtomicUsize::new(0));
            let got: Vec<Bytes> = pages(2, 20, budget.clone(), depth(READ_AHEAD_PAGES), read_counting(&started))
                .try_collect()
                .await
                .unwrap();
            let want: Vec<Bytes> = (2..=20u8).map(|i| Bytes::from(vec![i; 4])).collect();
            assert_eq!(got, want, "budget {budget_pages}");
            assert_eq!(budget.in_use(), 0, "every page given back");
        }
    }

    #[tokio::test]
    async fn read_ahead_takes_from_the_shared_budget_and_never_more() {
        // Three streams share a budget of 5 pages; none is consumed, so each reads ahead what it can get.
        let budget = ReadAheadBudget::new(5 * 4, 4, Gauge::default());
        let started = Arc::new(AtomicUsize::new(0));
        let mut streams: Vec<_> =
            (0..3).map(|_| pages(0, 99, budget.clone(), depth(READ_AHEAD_PAGES), read_counting(&started))).collect();
        for s in &mut streams {
            // The first poll yields the head and fills the queue behind it.
            assert!(s.next().await.is_some());
        }
        assert_eq!(budget.in_use(), 5 * 4, "the whole budget, and not a page more");
        // Pages read: each stream's head (outside the budget) and the 5 pages the first stream read ahead.
        assert_eq!(started.load(Ordering::SeqCst), 3 + 5);
        drop(streams);
        assert_eq!(budget.in_use(), 0, "a dropped stream gives its budget back");
    }

    #[tokio::test]
    async fn a_spent_budget_still_serves_every_stream_one_page_at_a_time() {
        let budget = ReadAheadBudget::new(4, 4, Gauge::default());
        let hog = budget.try_take().unwrap();
        let started = Arc::new(AtomicUsize::new(0));
        let n = pages(0, 9, budget.clone(), depth(READ_AHEAD_PAGES), read_counting(&started))
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .len();
        assert_eq!(n, 10);
        drop(hog);
    }

    #[tokio::test]
    async fn a_deeper_depth_reads_further_ahead_and_follows_changes() {
        let budget = ReadAheadBudget::new(100 * 4, 4, Gauge::default());
        let started = Arc::new(AtomicUsize::new(0));
        let d = depth(20);
        let mut s = pages(0, 99, budget.clone(), d.clone(), read_counting(&started));
        assert!(s.next().await.is_some());
        // The head and 19 pages behind it: 20 in flight, the head yielded.
        assert_eq!(started.load(Ordering::SeqCst), 20);
        d.store(30, Ordering::Relaxed);
        assert!(s.next().await.is_some());
        assert_eq!(started.load(Ordering::SeqCst), 31, "the queue grew to the new depth");
    }
}
