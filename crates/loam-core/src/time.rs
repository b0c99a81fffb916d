//! Times on the wire: RFC 3339 with milliseconds and the local UTC offset (`2024-11-21T20:58:26.957+08:00`).

use chrono::{DateTime, Local, SecondsFormat};
use std::time::{SystemTime, UNIX_EPOCH};

/// Formats a time as the Coordinator API does.
pub fn rfc3339_millis(t: SystemTime) -> String {
    DateTime::<Local>::from(t).to_rfc3339_opts(SecondsFormat::Millis, false)
}

/// Milliseconds since the Unix epoch (negative before it).
pub fn epoch_millis(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

/// Now, in milliseconds since the epoch.
pub fn now_millis() -> i64 {
    epoch_millis(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_millis_and_offset() {
        let s = rfc3339_millis(UNIX_EPOCH + std::time::Duration::from_millis(1_732_193_906_957));
        assert!(s.contains(".957"), "{s}");
        assert!(s.ends_with('Z') || s[s.len() - 6..].starts_with(['+', '-']), "{s}");
    }
}
