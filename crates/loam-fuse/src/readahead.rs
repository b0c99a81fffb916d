//! Client read-ahead for one open file: detect a sequential stream and keep the next windows of the
//! file in flight, so that `cat`/`dd` see bytes already in memory instead of one worker round trip
//! per kernel request.
//!
//! The kernel sends reads of at most 1 MiB (128 KiB unless its own read-ahead was raised), several at
//! once (`FUSE_ASYNC_READ`), so they may arrive slightly out of order. A read counts as sequential
//! when it starts within `slack` of where the previous one ended, or lies inside the prefetched span;
//! prefetching starts after [`TRIGGER`] sequential reads in a row, so random reads (fio `randread`)
//! practically never start it: two reads in a row landing near each other by chance is rare, and
//! when it happens the cost is one window's worth of wasted reads.
//!
//! The windows form one contiguous span ahead of the reader. Windows wholly behind the reader are
//! dropped, at most `windows` windows are kept ahead of it, and a random read outside the span drops
//! them all, so the buffer per open file is bounded by `(windows + 1) * window` bytes.
//!
//! This module decides; the payload `W` of a window (the fetch in flight, in `files.rs`) is opaque
//! here, which keeps the decisions testable without a cluster.

use std::collections::VecDeque;
use std::ops::Range;

/// Sequential reads in a row (after the first) before windows are prefetched.
pub const TRIGGER: u32 = 2;

/// Read-ahead settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadAheadConfig {
    /// Bytes per window.
    pub window: u64,
    /// Windows kept ahead of the reader (0 turns read-ahead off).
    pub windows: usize,
    /// How far from the previous read's end a read may start and still count as sequential.
    pub slack: u64,
}

/// Default bytes per read-ahead window.
pub const DEFAULT_WINDOW: u64 = 4 << 20;
/// Default windows kept ahead of the reader.
pub const DEFAULT_WINDOWS: usize = 2;

impl Default for ReadAheadConfig {
    fn default() -> Self {
        Self { window: DEFAULT_WINDOW, windows: DEFAULT_WINDOWS, slack: 4 << 20 }
    }
}

/// The read-ahead state of one open file; `W` is what a window holds (its fetch).
pub struct ReadAhead<W> {
    cfg: ReadAheadConfig,
    /// File size at open: no window starts at or past it.
    size: u64,
    last_end: Option<u64>,
    streak: u32,
    /// Contiguous, ascending windows.
    windows: VecDeque<(Range<u64>, W)>,
}

impl<W: Clone> ReadAhead<W> {
    /// Read-ahead for a file of `size` bytes.
    pub fn new(cfg: ReadAheadConfig, size: u64) -> Self {
        Self { cfg, size, last_end: None, streak: 0, windows: VecDeque::new() }
    }

    /// Whether read-ahead is on (any windows may be kept).
    pub fn enabled(&self) -> bool {
        self.cfg.windows > 0
    }

    /// The ranges of the windows held now (for tests and logs).
    pub fn spans(&self) -> Vec<Range<u64>> {
        self.windows.iter().map(|(r, _)| r.clone()).collect()
    }

    fn span(&self) -> Option<Range<u64>> {
        Some(self.windows.front()?.0.start..self.windows.back()?.0.end)
    }

    /// Records a read of `[off, off + len)`, starts windows through `start` when the stream is
    /// sequential, and returns the windows that hold the read's bytes, or `None` when the read must
    /// go to the cluster itself.
    pub fn on_read(
        &mut self,
        off: u64,
        len: u64,
        mut start: impl FnMut(Range<u64>) -> W,
    ) -> Option<Vec<(Range<u64>, W)>> {
        let end = off.saturating_add(len).min(self.size);
        if self.cfg.windows == 0 || off >= end {
            return None;
        }
        let span = self.span();
        let covered = span.as_ref().is_some_and(|s| s.start <= off && end <= s.end);
        let seq = covered || self.last_end.is_some_and(|e| off.abs_diff(e) <= self.cfg.slack);
        self.streak = if seq { self.streak.saturating_add(1) } else { 0 };
        self.last_end = Some(match self.last_end {
            Some(e) if seq => e.max(end),
            _ => end,
        });
        if !seq {
            self.windows.clear();
            return None;
        }
        while self.windows.front().is_some_and(|(r, _)| r.end <= off) {
            self.windows.pop_front();
        }
        if self.streak >= TRIGGER {
            self.extend(off, end, &mut start);
        }
        if !covered {
            return None;
        }
        Some(self.windows.iter().filter(|(r, _)| r.start < end && off < r.end).cloned().collect())
    }

    /// Keeps `windows` windows ahead of a reader at `off..end`, contiguous with the span held.
    fn extend(&mut self, off: u64, end: u64, start: &mut impl FnMut(Range<u64>) -> W) {
        // A late read just behind the span (the kernel's reads overtaking each other) keeps it.
        let mut frontier = match self.span() {
            Some(s) if s.start <= end.saturating_add(self.cfg.slack) && end <= s.end => s.end,
            _ => {
                self.windows.clear();
                end
            }
        };
        let ahead = |w: &VecDeque<(Range<u64>, W)>| w.iter().filter(|(r, _)| r.end > off).count();
        while ahead(&self.windows) < self.cfg.windows && frontier < self.size {
            let next = frontier..frontier.saturating_add(self.cfg.window).min(self.size);
            frontier = next.end;
            let w = start(next.clone());
            self.windows.push_back((next, w));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn ra(size: u64) -> ReadAhead<()> {
        ReadAhead::new(ReadAheadConfig { window: 4 * MIB, windows: 2, slack: MIB }, size)
    }

    /// Reads `len` at `off`, recording the windows started; whether the read was served from windows.
    fn read(r: &mut ReadAhead<()>, off: u64, len: u64, started: &mut Vec<Range<u64>>) -> bool {
        r.on_read(off, len, |w| started.push(w)).is_some()
    }

    #[test]
    fn a_sequential_stream_prefetches_two_windows_and_slides_them() {
        let mut r = ra(100 * MIB);
        let mut started = Vec::new();
        let k = 128 << 10;
        assert!(!read(&mut r, 0, k, &mut started));
        assert!(!read(&mut r, k, k, &mut started));
        assert!(started.is_empty(), "one sequential read is not a stream yet");
        assert!(!read(&mut r, 2 * k, k, &mut started), "the triggering read itself goes to the cluster");
        assert_eq!(started, [3 * k..3 * k + 4 * MIB, 3 * k + 4 * MIB..3 * k + 8 * MIB]);
        started.clear();
        // Reads inside the first window are served from it and start nothing new.
        for i in 3..(3 + 32) {
            assert!(read(&mut r, i * k, k, &mut started), "read {i} served from the windows");
        }
        assert!(started.is_empty());
        // The reader enters the second window: the first is dropped and a third one starts.
        assert!(read(&mut r, 35 * k, k, &mut started));
        assert_eq!(started, vec![3 * k + 8 * MIB..3 * k + 12 * MIB]);
        assert_eq!(r.spans(), [3 * k + 4 * MIB..3 * k + 8 * MIB, 3 * k + 8 * MIB..3 * k + 12 * MIB]);
    }

    #[test]
    fn random_reads_never_prefetch() {
        let mut r = ra(1 << 30);
        let mut started = Vec::new();
        let mut x: u64 = 12345;
        for _ in 0..10_000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let off = (x >> 20) % ((1 << 30) / 4096) * 4096;
            read(&mut r, off, 4096, &mut started);
        }
        assert!(started.len() <= 2 * 2, "at most one accidental trigger: {started:?}");
    }

    #[test]
    fn a_random_read_outside_the_span_drops_the_windows() {
        let mut r = ra(100 * MIB);
        let mut started = Vec::new();
        for i in 0..3 {
            read(&mut r, i * MIB, MIB, &mut started);
        }
        assert_eq!(r.spans().len(), 2);
        assert!(!read(&mut r, 60 * MIB, 4096, &mut started));
        assert!(r.spans().is_empty(), "windows dropped on a jump");
    }

    #[test]
    fn windows_stop_at_the_end_of_the_file_and_reads_past_it_do_nothing() {
        let mut r = ra(5 * MIB + 1);
        let mut started = Vec::new();
        for i in 0..3 {
            read(&mut r, i * 65536, 65536, &mut started);
        }
        assert_eq!(started, [3 * 65536..3 * 65536 + 4 * MIB, 3 * 65536 + 4 * MIB..5 * MIB + 1]);
        assert!(r.on_read(5 * MIB + 1, 4096, |_| panic!("nothing past the end")).is_none());
    }

    #[test]
    fn a_late_read_just_behind_the_span_keeps_it() {
        let mut r = ra(100 * MIB);
        let mut started = Vec::new();
        let k = 256 << 10;
        // The kernel sent reads at 0, k, 2k and 3k at once; 3k overtakes 2k and starts the windows.
        for off in [0, k, 3 * k] {
            read(&mut r, off, k, &mut started);
        }
        assert_eq!(r.spans(), [4 * k..4 * k + 4 * MIB, 4 * k + 4 * MIB..4 * k + 8 * MIB]);
        assert!(!read(&mut r, 2 * k, k, &mut started), "the late read goes to the cluster");
        assert_eq!(r.spans(), [4 * k..4 * k + 4 * MIB, 4 * k + 4 * MIB..4 * k + 8 * MIB], "and keeps the span");
        assert_eq!(started.len(), 2);
    }

    #[test]
    fn a_read_across_two_windows_gets_both() {
        let mut r = ra(100 * MIB);
        for i in 0..3 {
            r.on_read(i * MIB, MIB, |_| ());
        }
        let got = r.on_read(7 * MIB - 10, 20, |_| ()).expect("covered");
        let ranges: Vec<_> = got.into_iter().map(|(r, _)| r).collect();
        assert_eq!(ranges, [3 * MIB..7 * MIB, 7 * MIB..11 * MIB]);
    }

    #[test]
    fn zero_windows_turn_it_off() {
        let mut r: ReadAhead<()> = ReadAhead::new(ReadAheadConfig { windows: 0, ..Default::default() }, 1 << 30);
        for i in 0..10 {
            assert!(r.on_read(i * MIB, MIB, |_| panic!("off")).is_none());
        }
    }
}
