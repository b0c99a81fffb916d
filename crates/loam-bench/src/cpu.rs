//! CPU time of the processes and threads a benchmark measures, the one place every `loam-bench`
//! subcommand reads it from: user + system seconds, from fields 14 and 15 (`utime`, `stime`, clock
//! ticks) of `/proc/<pid>/stat` (a whole process, its exited threads included) or
//! `/proc/<pid>/task/<tid>/stat` (one thread), divided by `sysconf(_SC_CLK_TCK)`; and [`children`], the
//! CPU of the children this process has waited for (`getrusage(RUSAGE_CHILDREN)`, for fio).
//!
//! A bench samples before and after each measured round, so set-up is not counted, and reports CPU
//! seconds per GiB moved ([`per_gib`]), summed over its rounds ([`Tally`]): a tick is 10 ms, so one
//! round of a small read may show none, and a median of such rounds would be 0 or one tick.
//!
//! Servers that run in the bench's own process (`read`, `s3`) run on a runtime of their own
//! ([`serve_runtime`], threads named [`SERVE_THREAD`]) while the bench's client runs on the main runtime
//! (threads named [`CLIENT_THREAD`], and the main thread). [`InProcess`] splits this process's CPU
//! into the client's (those threads) and the servers' (everything else: the serving runtime, any
//! thread the servers start, threads that have exited). The runtimes' blocking threads are kept alive
//! for the whole run ([`KEEP_ALIVE`]), so a client thread never exits and takes its CPU with it.

use std::path::Path;
use std::time::Duration;

/// Name of the threads of the bench's (client) runtime.
pub const CLIENT_THREAD: &str = "bench-client";
/// Name of the threads of the runtime the in-process servers run on.
pub const SERVE_THREAD: &str = "loam-serve";
/// How long an idle blocking thread of either runtime lives: longer than any run.
pub const KEEP_ALIVE: Duration = Duration::from_secs(24 * 3600);

/// The runtime in-process servers are started on (`Handle::spawn` of their start), apart from the
/// client's, so that [`InProcess`] can tell their CPU apart.
pub fn serve_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .thread_name(SERVE_THREAD)
        .thread_keep_alive(KEEP_ALIVE)
        .enable_all()
        .build()
}

/// User + system CPU seconds of process `pid` (all its threads, exited ones included).
pub fn process(pid: u32) -> std::io::Result<f64> {
    stat_seconds(&Path::new("/proc").join(pid.to_string()).join("stat"))
}

/// User + system CPU seconds of the live threads of `pid` for which `pick(tid, name)` holds.
pub fn threads(pid: u32, pick: impl Fn(u32, &str) -> bool) -> std::io::Result<f64> {
    let mut total = 0.0;
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let entry = entry?;
        let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse::<u32>().ok()) else { continue };
        // A thread that exits between the listing and the read is skipped (its stat is gone).
        let Ok(text) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        if let Some((name, ticks)) = parse_stat(&text)
            && pick(tid, name)
        {
            total += ticks as f64 / clock_ticks();
        }
    }
    Ok(total)
}

/// User + system CPU seconds of the children of this process that have been waited for.
pub fn children() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_CHILDREN is a valid `who`.
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) } != 0 {
        return 0.0;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// CPU seconds per GiB (2^30 bytes) moved; 0 when nothing moved.
pub fn per_gib(secs: f64, bytes: u64) -> f64 {
    if bytes == 0 { 0.0 } else { secs / (bytes as f64 / (1u64 << 30) as f64) }
}

/// `a / b` as a table shows it (`1.25x`), or `—` where `b` is 0 (a baseline with no measurable CPU).
pub fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 { format!("{:.2}x", a / b) } else { "—".to_string() }
}

/// CPU seconds and the bytes moved meanwhile, summed over a bench's rounds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Tally {
    /// CPU seconds.
    pub secs: f64,
    /// Bytes moved.
    pub bytes: u64,
}

impl Tally {
    /// Adds one round.
    pub fn add(&mut self, secs: f64, bytes: u64) {
        (self.secs, self.bytes) = (self.secs + secs, self.bytes + bytes);
    }

    /// CPU seconds per GiB over every round added.
    pub fn per_gib(&self) -> f64 {
        per_gib(self.secs, self.bytes)
    }
}

/// This process's CPU, split into the client's and the in-process servers'.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct InProcess {
    /// The servers' CPU seconds (the whole process less the client's threads).
    pub server: f64,
    /// The client's CPU seconds (the main thread and the threads named [`CLIENT_THREAD`]).
    pub client: f64,
}

impl InProcess {
    /// Reads both now.
    pub fn sample() -> std::io::Result<Self> {
        let pid = std::process::id();
        let client = threads(pid, |tid, name| tid == pid || name == CLIENT_THREAD)?;
        Ok(Self { server: (process(pid)? - client).max(0.0), client })
    }

    /// What was spent since `earlier`.
    pub fn since(self, earlier: Self) -> Self {
        Self { server: self.server - earlier.server, client: self.client - earlier.client }
    }
}

/// Reads `utime + stime` (ticks) of a stat file, in seconds.
fn stat_seconds(path: &Path) -> std::io::Result<f64> {
    let text = std::fs::read_to_string(path)?;
    let (_, ticks) = parse_stat(&text)
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {text}", path.display())))?;
    Ok(ticks as f64 / clock_ticks())
}

/// `(comm, utime + stime)` of a stat line `pid (comm) state ppid …` (comm may hold spaces and
/// parentheses, so it ends at the last `)`; utime and stime are fields 14 and 15).
fn parse_stat(text: &str) -> Option<(&str, u64)> {
    let (head, rest) = text.rsplit_once(')')?;
    let (_, comm) = head.split_once('(')?;
    // Field n (1-based in proc(5)) is at index n - 3 after the comm.
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((comm, utime + stime))
}

/// Clock ticks per second (`_SC_CLK_TCK`, 100 on Linux wherever it cannot be read).
fn clock_ticks() -> f64 {
    // SAFETY: sysconf reads a configuration value; it has no preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if v > 0 { v as f64 } else { 100.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Polls `read` until it returns more than `above` (CPU time moves in ticks, so the first reads may
    /// see no change; no timing is asserted, the loop only waits for the burn to show).
    fn until_above(above: f64, read: impl Fn() -> f64) -> f64 {
        loop {
            let v = read();
            if v > above {
                return v;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn stat_lines_parse_with_odd_names() {
        let line = "42 (a (b) c) R 1 2 3 4 5 6 7 8 9 10 150 25 0 0 20 0 1 0 100 0 0\n";
        assert_eq!(parse_stat(line), Some(("a (b) c", 175)));
        assert_eq!(parse_stat("42 (x) R 1"), None);
        assert_eq!(per_gib(2.0, 1 << 29), 4.0);
        assert_eq!(per_gib(2.0, 0), 0.0);
        assert_eq!((ratio(3.0, 2.0).as_str(), ratio(3.0, 0.0).as_str()), ("1.50x", "—"));
        let mut t = Tally::default();
        t.add(1.0, 1 << 29);
        t.add(0.5, 1 << 29);
        assert_eq!(t.per_gib(), 1.5);
    }

    #[test]
    fn a_burning_child_process_shows_growing_cpu() {
        let mut child = std::process::Command::new("sh").args(["-c", "while :; do :; done"]).spawn().unwrap();
        let pid = child.id();
        let first = until_above(0.0, || process(pid).unwrap());
        let later = until_above(first, || process(pid).unwrap());
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(first > 0.0 && later > first, "{first} then {later}");
        let before = children();
        assert!(before >= later, "the waited-for child's CPU is in RUSAGE_CHILDREN: {before} < {later}");
    }

    #[test]
    fn a_burning_named_thread_is_counted_as_its_side() {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let burner = std::thread::Builder::new()
            .name(CLIENT_THREAD.into())
            .spawn(move || {
                let mut x = 1u64;
                while !flag.load(Ordering::Relaxed) {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
            })
            .unwrap();
        let pid = std::process::id();
        let named = |tid: u32, name: &str| tid != pid && name == CLIENT_THREAD;
        let first = until_above(0.0, || threads(pid, named).unwrap());
        let later = until_above(first, || threads(pid, named).unwrap());
        let split = InProcess::sample().unwrap();
        stop.store(true, Ordering::Relaxed);
        burner.join().unwrap();
        assert!(later > first && first > 0.0, "{first} then {later}");
        assert!(split.client >= later, "the named thread is the client's: {split:?}");
        assert!(threads(pid, |_, name| name == "no such thread").unwrap() == 0.0);
    }

    #[test]
    fn work_on_the_serving_runtime_is_the_servers() {
        let serve = serve_runtime().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = serve.spawn_blocking(move || {
            let mut x = 1u64;
            while !flag.load(Ordering::Relaxed) {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        });
        let pid = std::process::id();
        let on_serve = |_: u32, name: &str| name == SERVE_THREAD;
        let burnt = until_above(0.0, || threads(pid, on_serve).unwrap());
        let split = InProcess::sample().unwrap();
        let later = until_above(split.server, || InProcess::sample().unwrap().server);
        stop.store(true, Ordering::Relaxed);
        serve.block_on(task).unwrap();
        assert!(split.server >= burnt && later > split.server, "{burnt}, {split:?}, then {later}");
        assert!(split.client < split.server, "the serving thread is not the client's: {split:?}");
    }
}
