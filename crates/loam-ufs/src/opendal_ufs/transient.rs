//! Remembering, per operation, whether OpenDAL judged any attempt temporary.
//!
//! Surprise: OpenDAL's retry layer marks *every* error it returns "persistent" — a `NotFound` as well as
//! a connection refused after the last retry — so once an error has come through the layer,
//! `is_temporary()` is always false and a dead S3 endpoint looks like any other `Unexpected` error.
//! The layer does call an interceptor before each retry, in the task that runs the operation; so the
//! interceptor sets a task-local flag and [`observe`] scopes a fresh flag around each operation. An
//! error is then retryable when an attempt of its operation was (see `error_mapping`).

use opendal::layers::{RetryEvent, RetryInterceptor};
use std::cell::Cell;
use std::future::Future;

tokio::task_local! {
    static SAW_TEMPORARY: Cell<bool>;
}

/// The retry layer's interceptor: logs the retry and flags the running operation.
pub struct MarkTemporary;

impl RetryInterceptor for MarkTemporary {
    fn intercept(&self, event: RetryEvent<'_>) {
        tracing::debug!(op = ?event.op, attempt = event.attempt, error = %event.err, "retrying UFS operation");
        // Outside `observe` (an operation run by OpenDAL itself) there is nothing to flag.
        let _ = SAW_TEMPORARY.try_with(|flag| flag.set(true));
    }
}

/// Runs `fut` and says whether any of its attempts failed with a temporary error.
pub async fn observe<F: Future>(fut: F) -> (F::Output, bool) {
    SAW_TEMPORARY
        .scope(Cell::new(false), async move {
            let out = fut.await;
            (out, SAW_TEMPORARY.with(Cell::get))
        })
        .await
}
