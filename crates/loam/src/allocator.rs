//! The C allocator's settings for a long-running Loam process.
//!
//! glibc's malloc gives each thread that allocates an arena of its own, up to eight per core, and keeps
//! what is freed in an arena for that arena's next allocations. A worker moves its pages through tokio's
//! worker threads and up to hundreds of blocking threads (disk I/O), so a buffer allocated on one thread
//! is freed on another, and every arena ends up holding its own high-water mark of 1–4 MiB page and run
//! buffers: measured, a worker with a 64 MiB memory tier under sustained reads and loads sat at 250–315 MiB
//! RSS with glibc's default and at 150–200 MiB with two arenas, with the same throughput (BENCHMARKS.md,
//! "Worker memory"). So the processes use two arenas, unless `MALLOC_ARENA_MAX` says otherwise.
//!
//! Two arenas still keep what was freed inside them: page buffers freed in the middle of an arena's heap
//! stay resident until the allocator reuses them. A worker therefore runs a [`Trimmer`]: every
//! [`TRIM_INTERVAL`] it calls `malloc_trim(0)`, which gives the free pages of every arena back to the
//! kernel (`MADV_DONTNEED`), so what the worker holds follows what it uses instead of its peak.
//!
//! (A fixed `M_MMAP_THRESHOLD`, which returns every large buffer to the kernel on free, lowered the peak
//! as much but cost a third of warm-read throughput in page faults, so it is not set.)

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often a [`Trimmer`] gives free memory back.
pub const TRIM_INTERVAL: Duration = Duration::from_secs(1);

/// Arenas of the C allocator for every thread together.
pub const MALLOC_ARENAS: i32 = 2;

/// Applies [`MALLOC_ARENAS`] unless the environment sets `MALLOC_ARENA_MAX` (glibc read it at start).
/// Call before the runtime starts its threads. Other C libraries than glibc: nothing to do.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; called before other threads allocate.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS);
        }
    }
}

/// Gives the allocator's free memory back to the kernel (glibc's `malloc_trim(0)`); elsewhere nothing.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; it takes the allocator's own locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// A background loop that calls [`trim`] every interval, until [`Trimmer::stop`].
pub struct Trimmer {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    trims: Arc<AtomicU64>,
}

impl Trimmer {
    /// Starts the loop on the current runtime (the trim itself runs on the blocking pool: it may take a
    /// few milliseconds on a large heap).
    pub fn spawn(every: Duration) -> Self {
        let (stop, mut stopped) = watch::channel(false);
        let trims = Arc::new(AtomicU64::new(0));
        let counted = trims.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stopped.changed() => return,
                    _ = tick.tick() => {
                        let _ = tokio::task::spawn_blocking(trim).await;
                        counted.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
        Self { stop, task, trims }
    }

    /// Trims done so far.
    pub fn trims(&self) -> u64 {
        self.trims.load(Ordering::Relaxed)
    }

    /// Stops the loop and waits for it to end.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_trimmer_trims_until_stopped_and_then_ends() {
        let t = Trimmer::spawn(Duration::from_millis(10));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while t.trims() < 3 {
            assert!(std::time::Instant::now() < deadline, "no trims");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let trims = Arc::clone(&t.trims);
        tokio::time::timeout(Duration::from_secs(10), t.stop()).await.expect("the loop ends when stopped");
        let after = trims.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(trims.load(Ordering::Relaxed), after, "no trim after stop");
    }
}
