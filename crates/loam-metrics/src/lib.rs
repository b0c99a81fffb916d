//! What every Loam process's `/metrics` shares: the metrics catalog and the process metrics.
//!
//! - **The catalog.** Each crate that registers metrics lists them in a `pub const CATALOG: &[MetricDoc]`
//!   next to its name constants (one entry per family: name, type, labels, help), registers each family
//!   with the entry's help text, and tests that its registry and its catalog agree. `loam
//!   metrics-reference` renders the catalogs as the tables of docs/METRICS.md ([`render_tables`]), and a
//!   test keeps the document equal to what it prints, so a metric is documented by adding its entry.
//! - **Process metrics** ([`process`]): resident memory, open fds, CPU seconds and start time, read from
//!   `/proc/self` when scraped.
//!
//! Names in the catalog are family names as registered: prometheus-client appends `_total` to counter
//! samples (and `_bucket`, `_sum`, `_count` to histograms'); [`MetricDoc::scraped`] gives the sample name.

pub mod process;

use std::fmt::Write;

/// A metric's type, as `# TYPE` says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    /// A monotonic counter (samples `<name>_total`).
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// A histogram (samples `<name>_bucket`, `_sum`, `_count`).
    Histogram,
}

impl MetricKind {
    /// The name `# TYPE` gives.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}

/// One exported metric family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricDoc {
    /// The family name, as registered (no `_total`).
    pub name: &'static str,
    /// Its type.
    pub kind: MetricKind,
    /// Its label names (empty: none).
    pub labels: &'static [&'static str],
    /// Its help text, as registered (the scrape adds a final `.`).
    pub help: &'static str,
}

impl MetricDoc {
    /// A counter.
    pub const fn counter(name: &'static str, labels: &'static [&'static str], help: &'static str) -> Self {
        Self { name, kind: MetricKind::Counter, labels, help }
    }

    /// A gauge.
    pub const fn gauge(name: &'static str, labels: &'static [&'static str], help: &'static str) -> Self {
        Self { name, kind: MetricKind::Gauge, labels, help }
    }

    /// A histogram.
    pub const fn histogram(name: &'static str, labels: &'static [&'static str], help: &'static str) -> Self {
        Self { name, kind: MetricKind::Histogram, labels, help }
    }

    /// How the reference names it: the sample name (`_total` for counters), a histogram's family name
    /// with its sample suffixes.
    pub fn scraped(&self) -> String {
        match self.kind {
            MetricKind::Counter => format!("`{}_total`", self.name),
            MetricKind::Gauge => format!("`{}`", self.name),
            MetricKind::Histogram => format!("`{}` (`_bucket`, `_sum`, `_count`)", self.name),
        }
    }

    /// Every sample name a query may use for this family.
    pub fn sample_names(&self) -> Vec<String> {
        match self.kind {
            MetricKind::Counter => vec![format!("{}_total", self.name)],
            MetricKind::Gauge => vec![self.name.to_string()],
            MetricKind::Histogram => {
                ["_bucket", "_sum", "_count"].iter().map(|s| format!("{}{s}", self.name)).collect()
            }
        }
    }
}

/// One component's section of the reference: a heading, the process that serves it, and its catalog.
pub struct CatalogSection {
    /// The heading (`Worker`, `Coordinator`, …).
    pub title: &'static str,
    /// Which `/metrics` serves it, in a sentence.
    pub served_by: &'static str,
    /// Its metrics.
    pub catalog: &'static [MetricDoc],
}

/// The generated tables of docs/METRICS.md: one per section, a row per metric.
pub fn render_tables(sections: &[CatalogSection]) -> String {
    let mut out = String::new();
    for (i, s) in sections.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "### {}\n\n{}\n", s.title, s.served_by);
        out.push_str("| Scraped name | Type | Labels | Help text |\n| --- | --- | --- | --- |\n");
        for m in s.catalog {
            let labels = match m.labels {
                [] => "—".to_string(),
                l => l.iter().map(|l| format!("`{l}`")).collect::<Vec<_>>().join(", "),
            };
            let _ = writeln!(out, "| {} | {} | {} | {}. |", m.scraped(), m.kind.as_str(), labels, m.help);
        }
    }
    out
}

/// The families an OpenMetrics text declares (`# TYPE <name> <type>`), in order: for a crate's test that
/// its registry and its catalog agree.
pub fn declared_families(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect()
}

/// The help texts an OpenMetrics text declares, by family name (without the `.` prometheus-client adds).
pub fn declared_help(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# HELP "))
        .filter_map(|l| l.split_once(' '))
        .map(|(n, h)| (n.to_string(), h.strip_suffix('.').unwrap_or(h).to_string()))
        .collect()
}

/// Checks that `text` (a fresh registry's OpenMetrics text) declares exactly the families of `catalog`,
/// with their types and help texts; returns every difference.
pub fn check_catalog(text: &str, catalog: &[MetricDoc]) -> Vec<String> {
    let mut problems = Vec::new();
    let declared = declared_families(text);
    let help = declared_help(text);
    for m in catalog {
        match declared.iter().find(|(n, _)| n == m.name) {
            None => problems.push(format!("{} is in the catalog but not registered", m.name)),
            Some((_, t)) if t != m.kind.as_str() => {
                problems.push(format!("{} is registered as a {t}, catalogued as a {}", m.name, m.kind.as_str()))
            }
            Some(_) => {}
        }
        if let Some((_, h)) = help.iter().find(|(n, _)| n == m.name)
            && h != m.help
        {
            problems.push(format!("{}: registered help {h:?}, catalogued {:?}", m.name, m.help));
        }
    }
    for (n, _) in &declared {
        if !catalog.iter().any(|m| m.name == n) {
            problems.push(format!("{n} is registered but not in the catalog"));
        }
    }
    problems
}
