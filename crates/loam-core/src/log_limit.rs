//! Rate-limited warnings: a warning that can repeat per request (a UFS that is down, a peer that does
//! not answer, a failing request at an API edge) is logged at most once per [`INTERVAL`] per call site,
//! with the number of the same warnings suppressed since the last one (`suppressed = N`), so a failing
//! dependency under load writes one line every few seconds instead of one per request.
//!
//! [`warn_limited!`](crate::warn_limited) is the one way to log such a warning; the key is the call site
//! (`file:line`). [`Limiter`] is the bookkeeping, with the clock passed in so that it tests without
//! sleeping. Client errors (4xx) are not warnings at all: the API edges log them at debug.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// At most one warning per call site in this interval.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// Per key: when a warning was last let through and how many were held back since.
#[derive(Debug)]
pub struct Limiter {
    interval: Duration,
    sites: Mutex<HashMap<&'static str, (Instant, u64)>>,
}

impl Limiter {
    /// A limiter letting one warning per key through per `interval`.
    pub fn new(interval: Duration) -> Self {
        Self { interval, sites: Mutex::new(HashMap::new()) }
    }

    /// Whether a warning at `key` may be logged at `now`: `Some(suppressed)` (how many were held back
    /// since the last one) if so, `None` if it is to be held back.
    pub fn admit(&self, key: &'static str, now: Instant) -> Option<u64> {
        let mut sites = self.sites.lock().unwrap_or_else(|p| p.into_inner());
        match sites.get_mut(key) {
            Some((last, held)) if now.saturating_duration_since(*last) < self.interval => {
                *held += 1;
                None
            }
            Some((last, held)) => {
                *last = now;
                Some(std::mem::take(held))
            }
            None => {
                sites.insert(key, (now, 0));
                Some(0)
            }
        }
    }
}

/// The process's limiter.
pub fn global() -> &'static Limiter {
    static GLOBAL: OnceLock<Limiter> = OnceLock::new();
    GLOBAL.get_or_init(|| Limiter::new(INTERVAL))
}

/// `tracing::warn!` at most once per [`INTERVAL`] per call site, with `suppressed = N` (the warnings
/// of this site held back since the last one). Takes what `tracing::warn!` takes.
#[macro_export]
macro_rules! warn_limited {
    ($($arg:tt)+) => {
        if let Some(suppressed) =
            $crate::log_limit::global().admit(concat!(file!(), ":", line!()), ::std::time::Instant::now())
        {
            ::tracing::warn!(suppressed, $($arg)+);
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_warning_per_interval_and_key_with_the_count_held_back() {
        let l = Limiter::new(Duration::from_secs(10));
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(l.admit("a", at(0)), Some(0), "the first one passes");
        assert_eq!(l.admit("a", at(1)), None);
        assert_eq!(l.admit("a", at(9)), None);
        assert_eq!(l.admit("b", at(9)), Some(0), "another site has its own budget");
        assert_eq!(l.admit("a", at(10)), Some(2), "the next one tells how many were held back");
        assert_eq!(l.admit("a", at(11)), None);
        assert_eq!(l.admit("a", at(30)), Some(1));
        assert_eq!(l.admit("a", at(41)), Some(0));
    }

    /// A `Write` into a shared buffer, for capturing what a subscriber prints.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_macro_logs_once_per_call_site_through_tracing() {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish();
        tracing::subscriber::with_default(subscriber, || {
            // Five in a row from one site (microseconds apart, far inside INTERVAL), then another site.
            for i in 0..5 {
                crate::warn_limited!(attempt = i, "upstream down");
            }
            crate::warn_limited!("another site");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].contains("WARN") && lines[0].contains("upstream down"), "{text}");
        assert!(lines[0].contains("suppressed=0") && lines[0].contains("attempt=0"), "the first one: {text}");
        assert!(lines[1].contains("another site"), "{text}");
    }
}
