//! The one shape of the worker's periodic loops (TTL scan, quota pass): run a pass every interval until
//! the shutdown signal flips to true or its sender is dropped, never starting a pass after that. It sits
//! with the rules because they are its only users (the file reporter, `cluster::file_report`, sleeps a
//! whole interval after each report instead of ticking, so it keeps its own loop).

use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Runs `pass` every `interval` (the first at once; missed ticks are delayed, not bunched) until `shutdown`.
pub fn every<F, Fut>(interval: Duration, mut shutdown: watch::Receiver<bool>, mut pass: F) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if *shutdown.borrow() {
                return;
            }
            tokio::select! {
                r = shutdown.changed() => if r.is_err() { return },
                _ = ticks.tick() => pass().await,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn runs_until_shutdown_then_stops() {
        let (tx, rx) = watch::channel(false);
        let n = Arc::new(AtomicU32::new(0));
        let counter = n.clone();
        let task = every(Duration::from_secs(1), rx, move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(n.load(Ordering::SeqCst), 3, "passes at 0 s, 1 s and 2 s");
        tx.send(true).unwrap();
        task.await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(n.load(Ordering::SeqCst), 3, "no pass after shutdown");
    }

    #[tokio::test]
    async fn a_dropped_sender_stops_the_loop() {
        let (tx, rx) = watch::channel(false);
        let task = every(Duration::from_secs(3600), rx, || async {});
        drop(tx);
        task.await.unwrap();
    }
}
