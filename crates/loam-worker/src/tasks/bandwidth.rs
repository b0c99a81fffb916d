//! A token bucket limiting UFS bytes per second. Tokens refill continuously at `rate` up to one second's
//! worth; a take larger than the bucket waits until the debt is paid, so any read size works and the
//! long-run rate holds. Takers are served in order (an async mutex), so a large read cannot starve.

use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Bytes per second, shared by the reads of one rate.
pub struct TokenBucket {
    rate: u64,
    state: Mutex<State>,
}

struct State {
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    /// A full bucket of `rate` bytes per second (`rate` > 0).
    pub fn new(rate: u64) -> Self {
        let rate = rate.max(1);
        Self { rate, state: Mutex::new(State { tokens: rate as f64, at: Instant::now() }) }
    }

    /// Waits until `bytes` may be read.
    pub async fn take(&self, bytes: u64) {
        let mut s = self.state.lock().await;
        let now = Instant::now();
        let rate = self.rate as f64;
        s.tokens = (s.tokens + now.duration_since(s.at).as_secs_f64() * rate).min(rate);
        s.at = now;
        s.tokens -= bytes as f64;
        if s.tokens < 0.0 {
            // Holding the lock while sleeping keeps later takers behind this one.
            tokio::time::sleep(Duration::from_secs_f64(-s.tokens / rate)).await;
            s.tokens = 0.0;
            s.at = Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn takes_beyond_the_rate_wait() {
        let b = TokenBucket::new(100_000);
        b.take(100_000).await; // the initial burst is free
        let start = Instant::now();
        b.take(20_000).await;
        // A lower bound only: the bucket must have made this take wait for its bytes.
        assert!(start.elapsed() >= Duration::from_millis(190), "{:?}", start.elapsed());
    }
}
