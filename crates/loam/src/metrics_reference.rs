//! The metrics reference: the tables of docs/METRICS.md, rendered from each component's metrics catalog
//! (`loam_worker::metrics::CATALOG` and its `data_path::CATALOG`, `loam_coordinator::metrics::CATALOG`, `loam_metrics::process::CATALOG`)
//! between two markers, so the prose around them stays hand-written. `loam metrics-reference` prints the
//! block; `loam metrics-reference --write docs/METRICS.md` replaces it in place; a test fails when the
//! committed document differs. A component with a catalog of its own adds a [`CatalogSection`].

use loam_metrics::{CatalogSection, render_tables};

/// The line before the generated block.
pub const BEGIN: &str = "<!-- BEGIN GENERATED: `loam metrics-reference --write docs/METRICS.md` writes this block from the metrics catalogs; do not edit by hand -->";
/// The line after it.
pub const END: &str = "<!-- END GENERATED -->";

/// Every component's catalog, in the order the reference lists them.
pub fn sections() -> Vec<CatalogSection> {
    vec![
        CatalogSection {
            title: "Worker",
            served_by: "`GET /metrics` on each worker's HTTP port (`crates/loam-worker/src/metrics.rs`).",
            catalog: loam_worker::metrics::CATALOG,
        },
        CatalogSection {
            title: "Worker data path",
            served_by: "The same `/metrics` of each worker: request latency, UFS calls by mount, hits by mount, peer \
                        fetches and Alluxio's data-access names (`crates/loam-worker/src/metrics/data_path.rs`).",
            catalog: loam_worker::metrics::data_path::CATALOG,
        },
        CatalogSection {
            title: "Coordinator",
            served_by: "`GET /metrics` on the Coordinator's REST port (`crates/loam-coordinator/src/metrics.rs`).",
            catalog: loam_coordinator::metrics::CATALOG,
        },
        CatalogSection {
            title: "FUSE",
            served_by: "`GET /metrics` on `loam fuse --metrics-port` (`crates/loam-fuse/src/metrics.rs`).",
            catalog: loam_fuse::metrics::CATALOG,
        },
        CatalogSection {
            title: "Process (every server)",
            served_by: "The worker's, the Coordinator's and FUSE's `/metrics`, read from `/proc/self` at scrape time \
                        (`crates/loam-metrics/src/process.rs`). In `loam local` every worker and the Coordinator \
                        report the same process.",
            catalog: loam_metrics::process::CATALOG,
        },
    ]
}

/// The generated block, markers included.
pub fn block() -> String {
    format!("{BEGIN}\n\n{}\n{END}\n", render_tables(&sections()))
}

/// `doc` with its generated block replaced by [`block`]; `None` when `doc` lacks the markers.
pub fn replace_block(doc: &str) -> Option<String> {
    let start = doc.find(BEGIN)?;
    let end = doc[start..].find(END)? + start + END.len();
    let rest = doc[end..].strip_prefix('\n').unwrap_or(&doc[end..]);
    Some(format!("{}{}{rest}", &doc[..start], block()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_metrics_reference_is_up_to_date() {
        let committed = include_str!("../../../docs/METRICS.md");
        let fresh = super::replace_block(committed).expect("docs/METRICS.md has the generated block's markers");
        assert!(
            committed == fresh,
            "docs/METRICS.md is out of date; regenerate it:\n  cargo run -q -p loam -- metrics-reference --write docs/METRICS.md"
        );
    }

    #[test]
    fn every_metric_name_is_listed_once() {
        let mut names: Vec<&str> = super::sections().iter().flat_map(|s| s.catalog.iter().map(|m| m.name)).collect();
        let all = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all, "a metric name is in two catalogs");
    }
}
