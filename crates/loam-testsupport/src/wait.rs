//! Waiting in tests for something that happens in the background (a watch, a lease, a follower), with a
//! cap, so a test that would wait forever fails with what it was waiting for.

use std::time::Duration;

/// Polls `condition` every 20 ms until it holds; panics naming `what` after `cap`.
pub async fn until(what: &str, cap: Duration, mut condition: impl FnMut() -> bool) {
    tokio::time::timeout(cap, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out after {cap:?} waiting until {what}"));
}
