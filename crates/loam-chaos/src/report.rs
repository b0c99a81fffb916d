//! The soak's verdict: every read, job and RSS sample put in the fault window it happened in, a table per
//! fault, and the goal of issue 13 checked:
//!
//! - **0 wrong bytes**: no read returned bytes of no version.
//! - **0 lost jobs**: every submitted job is found finished at the end.
//! - **0 wrongly `SUCCEEDED` loads**: a load that ended `SUCCEEDED` had every file cached on its owner,
//!   unless a fault that rightly drops cache ([`crate::faults::Fault::drops_cache`]) overlapped it; those
//!   are counted as unverified, not passed silently.
//! - **read errors only for clients that address a dead worker directly, for at most the lease TTL**:
//!   the `alluxio` client (it picks the owner from its own ring) and S3 through worker 0 (which forwards to
//!   the owner) may fail while a killed worker is still on the ring; each stretch of errors (first error
//!   to the next success) must end within the lease TTL plus a margin (the margin covers etcd's expiry
//!   check, the ring watch and the alluxio client's 1 s refresh). Every other error is a miss.
//!
//! A window runs from a fault's injection to the end of the settle pause after its heal; reads outside
//! every window are the `none` row.

use crate::jobs::Job;
use crate::readers::{Event, Kind, Outcome};
use std::collections::BTreeMap;
use std::fmt::Write;

/// One fault's run: its name, when it started and when its settle pause ended (soak seconds).
#[derive(Clone, Debug)]
pub struct Window {
    pub fault: &'static str,
    pub start: f64,
    pub end: f64,
    pub detail: String,
    /// The fault could not run here (why in `detail`).
    pub skipped: bool,
    /// It may rightly leave loaded files uncached.
    pub drops_cache: bool,
}

/// A run of failed reads of one reader.
#[derive(Clone, Debug)]
pub struct Stretch {
    pub kind: Kind,
    pub start: f64,
    /// The next success (or the last error, when none followed).
    pub end: f64,
    pub errors: usize,
    pub first_error: String,
}

impl Stretch {
    pub fn secs(&self) -> f64 {
        self.end - self.start
    }
}

/// What one reader did in one fault's windows.
#[derive(Clone, Debug, Default)]
pub struct ReaderRow {
    pub reads: u64,
    pub errors: u64,
    pub wrong: u64,
    /// Reads page by page that got pages of two versions (each page right).
    pub across: u64,
    pub longest_stretch: f64,
}

/// One fault's line of the table (all its runs together).
#[derive(Clone, Debug, Default)]
pub struct Row {
    pub fault: String,
    pub runs: usize,
    pub skipped: usize,
    pub readers: BTreeMap<Kind, ReaderRow>,
    pub jobs: usize,
    pub lost: usize,
    pub wrongly_succeeded: usize,
    pub unverified: usize,
    pub peak_rss: u64,
}

/// The verdict.
pub struct Report {
    pub rows: Vec<Row>,
    pub windows: Vec<Window>,
    pub violations: Vec<String>,
    /// What happened that the goal allows, worth knowing.
    pub notes: Vec<String>,
    pub refused_submissions: u64,
    pub skipped_readers: Vec<(Kind, String)>,
    pub allowed_stretch: f64,
    pub duration: f64,
}

/// Everything the soak recorded.
pub struct Inputs {
    pub windows: Vec<Window>,
    pub events: Vec<Event>,
    pub jobs: Vec<Job>,
    /// (soak seconds, the largest worker RSS in bytes) every second.
    pub rss: Vec<(f64, u64)>,
    pub refused_submissions: u64,
    pub skipped_readers: Vec<(Kind, String)>,
    pub lease_ttl: f64,
    pub margin: f64,
    pub duration: f64,
}

const NONE: &str = "none";

impl Report {
    pub fn build(i: Inputs) -> Self {
        let allowed = i.lease_ttl + i.margin;
        let window_of = |t: f64| i.windows.iter().find(|w| w.start <= t && t < w.end);
        let name_at = |t: f64| window_of(t).map_or(NONE, |w| w.fault);
        let mut rows: BTreeMap<&'static str, Row> = BTreeMap::new();
        let mut violations = Vec::new();
        let mut notes = Vec::new();
        for w in &i.windows {
            let r = row(&mut rows, w.fault);
            r.runs += 1;
            r.skipped += usize::from(w.skipped);
        }
        for e in &i.events {
            let r = row(&mut rows, name_at(e.t)).readers.entry(e.kind).or_default();
            r.reads += 1;
            match &e.outcome {
                Outcome::Right => {}
                Outcome::AcrossRequests(why) => {
                    r.across += 1;
                    notes.push(format!("{} read f{:02} at {:.1}s across versions: {why}", e.kind.name(), e.file, e.t));
                }
                Outcome::Failed(_) => r.errors += 1,
                Outcome::Wrong(why) => {
                    r.wrong += 1;
                    violations.push(format!(
                        "wrong bytes: {} read f{:02} at {:.1}s: {why}",
                        e.kind.name(),
                        e.file,
                        e.t
                    ));
                }
            }
        }
        for s in stretches(&i.events) {
            let at = name_at(s.start);
            let r = row(&mut rows, at).readers.entry(s.kind).or_default();
            r.longest_stretch = r.longest_stretch.max(s.secs());
            let addresses_owner = matches!(s.kind, Kind::S3 | Kind::Alluxio);
            let dead_owner = addresses_owner && at == crate::faults::Fault::WorkerKill.name() && s.secs() <= allowed;
            let version_cut =
                at == crate::faults::Fault::UfsRewrite.name() && cut_by_a_new_version(s.kind, &s.first_error);
            if version_cut {
                notes.push(format!("{} cut off by a new version at {:.1}s: {}", s.kind.name(), s.start, s.first_error));
            }
            if !(dead_owner || version_cut) {
                violations.push(format!(
                    "read errors: {} failed {} times for {:.1}s from {:.1}s (during {at}; allowed: alluxio and s3 while a \
                     killed worker is on the ring, up to {allowed:.1}s): {}",
                    s.kind.name(),
                    s.errors,
                    s.secs(),
                    s.start,
                    s.first_error
                ));
            }
        }
        for j in &i.jobs {
            let r = row(&mut rows, name_at(j.submitted));
            r.jobs += 1;
            if j.lost() {
                r.lost += 1;
                violations
                    .push(format!("lost job: {} {} submitted at {:.1}s: {}", j.kind, j.id, j.submitted, j.final_state));
            }
            if j.uncached.is_empty() {
                continue;
            }
            let explained = i.windows.iter().any(|w| w.drops_cache && w.start < j.ended && j.submitted < w.end);
            if explained {
                r.unverified += 1;
            } else {
                r.wrongly_succeeded += 1;
                violations.push(format!(
                    "wrongly SUCCEEDED: load {} ({:.1}s–{:.1}s): {}",
                    j.id,
                    j.submitted,
                    j.ended,
                    j.uncached.join("; ")
                ));
            }
        }
        for (t, rss) in &i.rss {
            let r = row(&mut rows, name_at(*t));
            r.peak_rss = r.peak_rss.max(*rss);
        }
        for (kind, why) in &i.skipped_readers {
            violations.push(format!("reader {} did not run: {why}", kind.name()));
        }
        for w in i.windows.iter().filter(|w| w.skipped) {
            violations.push(format!("fault {} did not run: {}", w.fault, w.detail));
        }
        let mut rows: Vec<Row> = rows.into_values().collect();
        let order = |r: &Row| crate::faults::Fault::ALL.iter().position(|f| f.name() == r.fault).map_or(0, |p| p + 1);
        rows.sort_by_key(order);
        Self {
            rows,
            windows: i.windows,
            violations,
            notes,
            refused_submissions: i.refused_submissions,
            skipped_readers: i.skipped_readers,
            allowed_stretch: allowed,
            duration: i.duration,
        }
    }

    /// Whether the goal was met.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    /// The table per fault, the fault runs, and the misses.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let readers = Kind::ALL.map(|k| format!("{} reads/errors/longest", k.name()));
        let _ = writeln!(
            s,
            "| fault | runs | {} | wrong | across versions | jobs | lost | wrongly SUCCEEDED | unverified | peak worker RSS |",
            readers.join(" | ")
        );
        let _ = writeln!(s, "|{}", " --- |".repeat(13));
        for r in &self.rows {
            let cells = Kind::ALL.map(|k| {
                let x = r.readers.get(&k).cloned().unwrap_or_default();
                format!("{}/{}/{:.1}s", x.reads, x.errors, x.longest_stretch)
            });
            let wrong: u64 = r.readers.values().map(|x| x.wrong).sum();
            let across: u64 = r.readers.values().map(|x| x.across).sum();
            let _ = writeln!(
                s,
                "| {} | {} | {} | {wrong} | {across} | {} | {} | {} | {} | {} MiB |",
                r.fault,
                r.runs,
                cells.join(" | "),
                r.jobs,
                r.lost,
                r.wrongly_succeeded,
                r.unverified,
                r.peak_rss >> 20
            );
        }
        let _ = writeln!(s, "\nfault runs:");
        for w in &self.windows {
            let _ = writeln!(s, "  {:>7.1}s–{:>7.1}s  {:<18} {}", w.start, w.end, w.fault, w.detail);
        }
        let _ = writeln!(
            s,
            "\njob submissions refused or unanswered (Coordinator or etcd down): {}",
            self.refused_submissions
        );
        let _ = writeln!(
            s,
            "error stretches allowed: alluxio and s3 during worker-kill, up to {:.1}s; a FUSE handle or an S3 stream \
             cut off by a new version during ufs-rewrite",
            self.allowed_stretch
        );
        if !self.notes.is_empty() {
            let _ = writeln!(s, "notes ({}):", self.notes.len());
            for n in self.notes.iter().take(20) {
                let _ = writeln!(s, "  - {n}");
            }
        }
        if self.passed() {
            let _ = writeln!(
                s,
                "GOAL MET: 0 wrong bytes, 0 lost or wrongly SUCCEEDED jobs, read errors only where allowed"
            );
        } else {
            let _ = writeln!(s, "GOAL MISSED ({} problems):", self.violations.len());
            for v in self.violations.iter().take(50) {
                let _ = writeln!(s, "  - {v}");
            }
        }
        s
    }

    /// The machine-readable result.
    pub fn json(&self) -> serde_json::Value {
        let rows: Vec<_> = self
            .rows
            .iter()
            .map(|r| {
                let readers: serde_json::Map<String, serde_json::Value> = r
                    .readers
                    .iter()
                    .map(|(k, x)| {
                        let v = serde_json::json!({"reads": x.reads, "errors": x.errors, "wrong": x.wrong, "acrossVersions": x.across, "longestErrorSecs": x.longest_stretch});
                        (k.name().to_string(), v)
                    })
                    .collect();
                serde_json::json!({
                    "fault": r.fault, "runs": r.runs, "skipped": r.skipped, "readers": readers, "jobs": r.jobs,
                    "lost": r.lost, "wronglySucceeded": r.wrongly_succeeded, "unverified": r.unverified,
                    "peakWorkerRssBytes": r.peak_rss,
                })
            })
            .collect();
        let windows: Vec<_> = self
            .windows
            .iter()
            .map(|w| serde_json::json!({"fault": w.fault, "start": w.start, "end": w.end, "detail": w.detail, "skipped": w.skipped}))
            .collect();
        serde_json::json!({
            "passed": self.passed(), "durationSecs": self.duration, "allowedErrorSecs": self.allowed_stretch,
            "refusedSubmissions": self.refused_submissions, "faults": rows, "runs": windows,
            "violations": self.violations, "notes": self.notes,
            "skippedReaders": self.skipped_readers.iter().map(|(k, w)| serde_json::json!({"reader": k.name(), "why": w})).collect::<Vec<_>>(),
        })
    }
}

/// Whether an error is a read cut off because its file was replaced, which one version per response allows
/// (issue 13 item 1): a FUSE handle opened on the old version fails with ESTALE, an S3 body stops short.
fn cut_by_a_new_version(kind: Kind, error: &str) -> bool {
    match kind {
        Kind::Fuse => error.contains("os error 116"),
        Kind::S3 => error.contains("IncompleteRead") || error.contains("ResponseStreamingError"),
        Kind::Alluxio | Kind::FsCat => false,
    }
}

/// The row of fault `name` (made on first use).
fn row<'a>(rows: &'a mut BTreeMap<&'static str, Row>, name: &str) -> &'a mut Row {
    let known = std::iter::once(NONE).chain(crate::faults::Fault::ALL.iter().map(|f| f.name()));
    let key = known.into_iter().find(|n| *n == name).unwrap_or(NONE);
    rows.entry(key).or_insert_with(|| Row { fault: key.to_string(), ..Row::default() })
}

/// Each reader's stretches of failed reads: from a first error to the next success.
pub fn stretches(events: &[Event]) -> Vec<Stretch> {
    let mut open: BTreeMap<Kind, Stretch> = BTreeMap::new();
    let mut out = Vec::new();
    for e in events {
        match &e.outcome {
            Outcome::Failed(err) => {
                let s = open.entry(e.kind).or_insert_with(|| Stretch {
                    kind: e.kind,
                    start: e.t,
                    end: e.t,
                    errors: 0,
                    first_error: err.clone(),
                });
                s.errors += 1;
                s.end = e.t;
            }
            _ => {
                if let Some(mut s) = open.remove(&e.kind) {
                    s.end = e.t;
                    out.push(s);
                }
            }
        }
    }
    out.extend(open.into_values());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: Kind, t: f64, ok: bool) -> Event {
        let outcome = if ok { Outcome::Right } else { Outcome::Failed("refused".into()) };
        Event { kind, t, file: 0, outcome }
    }

    fn window(fault: crate::faults::Fault, start: f64, end: f64) -> Window {
        Window {
            fault: fault.name(),
            start,
            end,
            detail: String::new(),
            skipped: false,
            drops_cache: fault.drops_cache(),
        }
    }

    fn inputs(events: Vec<Event>, windows: Vec<Window>) -> Inputs {
        Inputs {
            windows,
            events,
            jobs: vec![],
            rss: vec![],
            refused_submissions: 0,
            skipped_readers: vec![],
            lease_ttl: 3.0,
            margin: 2.0,
            duration: 100.0,
        }
    }

    #[test]
    fn a_stretch_runs_from_the_first_error_to_the_next_success() {
        let e = [
            ev(Kind::S3, 1.0, true),
            ev(Kind::S3, 2.0, false),
            ev(Kind::Fuse, 2.5, true),
            ev(Kind::S3, 3.0, false),
            ev(Kind::S3, 4.5, true),
        ];
        let s = stretches(&e);
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].start, s[0].end, s[0].errors), (2.0, 4.5, 2));
    }

    #[test]
    fn only_short_errors_of_owner_addressing_readers_during_a_worker_kill_pass() {
        use crate::faults::Fault;
        let kill = || vec![window(Fault::WorkerKill, 10.0, 30.0)];
        let ok = Report::build(inputs(vec![ev(Kind::Alluxio, 11.0, false), ev(Kind::Alluxio, 14.0, true)], kill()));
        assert!(ok.passed(), "{:?}", ok.violations);
        let long = Report::build(inputs(vec![ev(Kind::Alluxio, 11.0, false), ev(Kind::Alluxio, 17.0, true)], kill()));
        assert!(!long.passed(), "6 s > TTL 3 s + margin 2 s");
        let failover = Report::build(inputs(vec![ev(Kind::FsCat, 11.0, false), ev(Kind::FsCat, 11.5, true)], kill()));
        assert!(!failover.passed(), "fs cat fails over: no error is allowed");
        let other = vec![window(Fault::EtcdKill, 10.0, 30.0)];
        let etcd = Report::build(inputs(vec![ev(Kind::S3, 11.0, false), ev(Kind::S3, 11.5, true)], other));
        assert!(!etcd.passed(), "no worker is dead during an etcd kill");
        let mut wrong = vec![ev(Kind::Fuse, 1.0, true)];
        wrong[0].outcome = Outcome::Wrong("mixed".into());
        assert!(!Report::build(inputs(wrong, vec![])).passed());
    }
}
