//! Process metrics with their standard names (as the Prometheus client libraries export them), read from
//! `/proc/self` at scrape time by a [`ProcessCollector`]: no background thread, nothing kept between
//! scrapes. A process registers it on its registry with [`register`].
//!
//! - `process_resident_memory_bytes`: field 24 (`rss`, pages) of `/proc/self/stat` × the page size.
//! - `process_open_fds`: the entries of `/proc/self/fd`.
//! - `process_cpu_seconds_total`: fields 14 and 15 (`utime`, `stime`, clock ticks) / `_SC_CLK_TCK`.
//! - `process_start_time_seconds`: field 22 (`starttime`, ticks after boot) / `_SC_CLK_TCK` + `btime` of
//!   `/proc/stat` (the boot time, Unix seconds).
//!
//! Where `/proc` cannot be read (not Linux, a restricted sandbox) the metrics it cannot read are left
//! out of the scrape, never reported as 0.

use crate::MetricDoc;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

/// Resident memory.
pub const RESIDENT_MEMORY: MetricDoc =
    MetricDoc::gauge("process_resident_memory_bytes", &[], "Resident memory size in bytes");
/// Open file descriptors.
pub const OPEN_FDS: MetricDoc = MetricDoc::gauge("process_open_fds", &[], "Number of open file descriptors");
/// CPU time.
pub const CPU_SECONDS: MetricDoc =
    MetricDoc::counter("process_cpu_seconds", &[], "Total user and system CPU time spent in seconds");
/// Start time.
pub const START_TIME: MetricDoc =
    MetricDoc::gauge("process_start_time_seconds", &[], "Start time of the process since unix epoch in seconds");

/// Every process metric.
pub const CATALOG: &[MetricDoc] = &[RESIDENT_MEMORY, OPEN_FDS, CPU_SECONDS, START_TIME];

/// Registers the process metrics on `registry` (once per registry; each scrape of it reads `/proc`).
pub fn register(registry: &mut Registry) {
    registry.register_collector(Box::new(ProcessCollector));
}

/// Reads `/proc/self` when encoded.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessCollector;

/// What one read of `/proc` found.
#[derive(Debug, Default, PartialEq)]
pub struct Sample {
    /// Resident bytes.
    pub resident_bytes: Option<u64>,
    /// Open descriptors.
    pub open_fds: Option<u64>,
    /// User + system CPU seconds.
    pub cpu_seconds: Option<f64>,
    /// Start time, Unix seconds.
    pub start_time: Option<f64>,
}

impl Sample {
    /// Reads `/proc/self` now.
    pub fn read() -> Self {
        let stat = std::fs::read_to_string("/proc/self/stat").ok();
        let fields = stat.as_deref().map(stat_fields).unwrap_or_default();
        // Field n (1-based in proc(5)) is at fields[n - 3]: fields start after `pid (comm)`.
        let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
        let ticks = sysconf(libc::_SC_CLK_TCK);
        let page = sysconf(libc::_SC_PAGESIZE);
        let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| boot_time(&s));
        let open_fds = std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as u64);
        Self {
            resident_bytes: field(24).zip(page).map(|(pages, size)| pages * size),
            open_fds,
            cpu_seconds: field(14).zip(field(15)).zip(ticks).map(|((u, s), t)| (u + s) as f64 / t as f64),
            start_time: field(22).zip(ticks).zip(boot).map(|((start, t), boot)| boot as f64 + start as f64 / t as f64),
        }
    }
}

/// The fields of `/proc/self/stat` after `pid (comm) ` (comm may hold spaces and parentheses, so the
/// split is at the last `)`).
fn stat_fields(stat: &str) -> Vec<&str> {
    stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default()
}

/// `btime` of `/proc/stat`.
fn boot_time(stat: &str) -> Option<u64> {
    stat.lines().find_map(|l| l.strip_prefix("btime ")).and_then(|v| v.trim().parse().ok())
}

fn sysconf(name: libc::c_int) -> Option<u64> {
    // SAFETY: sysconf reads a configuration value; it has no preconditions.
    let v = unsafe { libc::sysconf(name) };
    u64::try_from(v).ok().filter(|&v| v > 0)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = Sample::read();
        let gauges = [(RESIDENT_MEMORY, s.resident_bytes.map(|v| v as f64)), (OPEN_FDS, s.open_fds.map(|v| v as f64))];
        for (doc, value) in gauges.into_iter().chain([(START_TIME, s.start_time)]) {
            if let Some(v) = value {
                let gauge = ConstGauge::new(v);
                gauge.encode(encoder.encode_descriptor(doc.name, doc.help, None, gauge.metric_type())?)?;
            }
        }
        if let Some(v) = s.cpu_seconds {
            let counter = ConstCounter::new(v);
            counter.encode(encoder.encode_descriptor(
                CPU_SECONDS.name,
                CPU_SECONDS.help,
                None,
                counter.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_split_after_the_command_name() {
        let f = stat_fields("42 (a (b) c) S 1 2 3 4 5 6 7 8 9 10 11 12");
        assert_eq!(f[0], "S", "field 3 comes first");
        assert_eq!(f[14 - 3], "11", "field 14 (utime)");
        assert_eq!(boot_time("cpu 1 2\nbtime 1700000000\n"), Some(1_700_000_000));
    }

    #[test]
    fn a_scrape_reads_this_process() {
        let mut registry = Registry::default();
        register(&mut registry);
        let _held = std::fs::File::open("/proc/self/stat").unwrap();
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(crate::check_catalog(&text, CATALOG).is_empty(), "{:?}\n{text}", crate::check_catalog(&text, CATALOG));
        let value = |name: &str| -> f64 {
            let line =
                text.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("{name}: {text}"));
            line.rsplit(' ').next().unwrap().parse().unwrap()
        };
        assert!(value("process_resident_memory_bytes") > 0.0);
        assert!(value("process_open_fds") >= 1.0, "the file held open is counted");
        assert!(value("process_cpu_seconds_total") >= 0.0);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        let start = value("process_start_time_seconds");
        assert!(start > 1.0e9 && start <= now + 1.0, "start {start} is a Unix time no later than now {now}");
    }
}
