//! Which files of a running job are done, and the listing cursor that makes a resume exact.
//!
//! Every listing event (a file, or a path that could not be listed) gets an index in listing order. A
//! file is *open* from when it is planned until every worker it was sent to has answered for good (after
//! retries). The cursor is the lowest open index (or the next index when none is open): everything below
//! it is decided, so the counters of those events form the [`Checkpoint`]. Events at or above the cursor
//! keep their counter deltas here until the cursor passes them; the runner bounds how far the listing may
//! run ahead of the cursor, which bounds this module's memory.

use super::record::{Checkpoint, Counters};
use std::collections::BTreeMap;

/// A file waiting for its workers.
#[derive(Debug)]
struct Open {
    uri: String,
    length: u64,
    remaining: usize,
    error: Option<String>,
    all_skipped: bool,
    bytes: u64,
}

/// How a file ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every worker succeeded.
    Done {
        /// Whether every worker skipped it (already cached / held nothing).
        skipped: bool,
        /// The most bytes any worker reported for it (load: the file's length; free: cached bytes dropped).
        bytes: u64,
    },
    /// Some worker failed, with this error.
    Failed(String),
}

/// The set of open files, the per-event deltas above the cursor, and the checkpoint below it.
#[derive(Debug)]
pub struct Tracker {
    next: u64,
    open: BTreeMap<u64, Open>,
    deltas: BTreeMap<u64, Counters>,
    checkpoint: Checkpoint,
}

impl Tracker {
    /// A tracker resuming at `checkpoint` (the default for a new job).
    pub fn new(checkpoint: Checkpoint) -> Self {
        Self { next: checkpoint.cursor, open: BTreeMap::new(), deltas: BTreeMap::new(), checkpoint }
    }

    /// The next event index.
    #[cfg(test)]
    pub fn next_index(&self) -> u64 {
        self.next
    }

    /// Events listed but not yet behind the cursor.
    pub fn lead(&self) -> u64 {
        self.next - self.checkpoint.cursor
    }

    /// Whether no file is open.
    #[cfg(test)]
    pub fn idle(&self) -> bool {
        self.open.is_empty()
    }

    /// The checkpoint (cursor and its counters).
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// Records a listing event that is decided at once (a filtered-out file, a listing error).
    pub fn decided(&mut self, delta: Counters) {
        let i = self.next;
        self.next += 1;
        self.deltas.insert(i, delta);
        self.advance();
    }

    /// Opens a file that `workers` workers must answer for; returns its index.
    pub fn open(&mut self, uri: &str, length: u64, workers: usize, delta: Counters) -> u64 {
        let i = self.next;
        self.next += 1;
        self.deltas.insert(i, delta);
        let open = Open { uri: uri.to_string(), length, remaining: workers, error: None, all_skipped: true, bytes: 0 };
        self.open.insert(i, open);
        i
    }

    /// One worker's final answer for file `i` (`Ok((skipped, bytes))` or the error). Once every worker
    /// answered: the file's URI, its outcome and what the outcome adds to the counters
    /// (`delta_of(uri, length, outcome)`, also kept for the checkpoint).
    pub fn answer(
        &mut self,
        i: u64,
        result: Result<(bool, u64), String>,
        delta_of: impl FnOnce(&str, u64, &Outcome) -> Counters,
    ) -> Option<(String, Outcome, Counters)> {
        let f = self.open.get_mut(&i)?;
        match result {
            Ok((skipped, bytes)) => {
                f.all_skipped &= skipped;
                f.bytes = f.bytes.max(bytes);
            }
            Err(e) => {
                f.error.get_or_insert(e);
            }
        }
        f.remaining = f.remaining.saturating_sub(1);
        if f.remaining > 0 {
            return None;
        }
        let f = self.open.remove(&i)?;
        let outcome = match f.error {
            Some(e) => Outcome::Failed(e),
            None => Outcome::Done { skipped: f.all_skipped, bytes: f.bytes },
        };
        let delta = delta_of(&f.uri, f.length, &outcome);
        if let Some(d) = self.deltas.get_mut(&i) {
            d.add(&delta);
        }
        self.advance();
        Some((f.uri, outcome, delta))
    }

    fn advance(&mut self) {
        let cursor = self.open.keys().next().copied().unwrap_or(self.next);
        while let Some(entry) = self.deltas.first_entry() {
            if *entry.key() >= cursor {
                break;
            }
            let d = entry.remove();
            self.checkpoint.counters.add(&d);
        }
        self.checkpoint.cursor = cursor;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scanned() -> Counters {
        Counters { scanned_files: 1, ..Default::default() }
    }

    fn failed(_: &str, _: u64, o: &Outcome) -> Counters {
        Counters { failed_files: matches!(o, Outcome::Failed(_)) as u64, ..Default::default() }
    }

    #[test]
    fn the_cursor_stops_at_the_lowest_open_file() {
        let mut t = Tracker::new(Checkpoint::default());
        let a = t.open("a", 1, 2, scanned());
        let b = t.open("b", 1, 1, scanned());
        t.decided(scanned());
        assert_eq!(t.checkpoint().cursor, 0);
        assert_eq!(
            t.answer(b, Err("x".into()), failed),
            Some(("b".into(), Outcome::Failed("x".into()), failed("", 0, &Outcome::Failed("x".into()))))
        );
        assert_eq!(t.checkpoint().cursor, 0, "a is still open");
        assert_eq!(t.answer(a, Ok((true, 1)), failed), None, "one replica is left");
        assert_eq!(
            t.answer(a, Ok((false, 3)), failed),
            Some(("a".into(), Outcome::Done { skipped: false, bytes: 3 }, Counters::default()))
        );
        assert_eq!(t.checkpoint().cursor, 3);
        assert_eq!(t.checkpoint().counters.scanned_files, 3);
        assert_eq!(t.checkpoint().counters.failed_files, 1);
        assert!(t.idle());
        assert_eq!(t.lead(), 0);
    }

    #[test]
    fn a_resumed_tracker_counts_from_its_checkpoint() {
        let cp = Checkpoint { cursor: 10, counters: Counters { scanned_files: 10, ..Default::default() } };
        let mut t = Tracker::new(cp);
        assert_eq!(t.next_index(), 10);
        t.decided(scanned());
        assert_eq!(t.checkpoint().cursor, 11);
        assert_eq!(t.checkpoint().counters.scanned_files, 11);
    }
}
