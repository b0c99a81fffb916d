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
//! (A fixed `M_MMAP_THRESHOLD`, which returns every large buffer to the kernel on free, lowered the peak
//! further but cost a third of warm-read throughput in page faults, so it is not set.)

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
