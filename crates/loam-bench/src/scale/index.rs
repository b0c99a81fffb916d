//! The file index part of `loam-bench scale`: the Coordinator's global file index
//! (`loam_coordinator::file_index::FileIndex`, through its real API: each worker's report) filled with
//! `--index-entries` entries (default 1 M, ~60-byte URIs as a bucket layout gives) spread over
//! `--workers` workers (default 1,000; each file held by one, as with one replica). Past 64 workers an
//! entry's holders are a boxed slice of slots, not one mask: that is the case this measures.
//!
//! It runs in a process of its own (`loam-bench scale-index`, started by the bench), so that the RSS
//! growth is the index's alone; the bench reads the child's one JSON line.

use clap::Args;
use loam_coordinator::file_index::FileIndex;
use loam_core::WorkerId;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Flags of the hidden `loam-bench scale-index`.
#[derive(Args, Debug, Clone)]
pub struct IndexArgs {
    /// Workers the entries are spread over.
    #[arg(long)]
    pub workers: usize,
    /// Entries.
    #[arg(long)]
    pub entries: u64,
}

/// What the child measured.
#[derive(Debug, Serialize, Deserialize)]
pub struct IndexReport {
    pub workers: usize,
    pub entries: u64,
    /// RSS growth while the index was filled.
    pub rss_growth: u64,
    /// Bytes of the URIs themselves.
    pub uri_bytes: u64,
    pub fill_secs: f64,
}

/// The URI of entry `i`: ~60 bytes.
fn uri(i: u64) -> String {
    format!("s3://datasets-bucket/training/shard-{:05}/part-{i:08}.parquet", i % 1000)
}

/// Resident set size of this process (`VmRSS`).
fn rss() -> anyhow::Result<u64> {
    crate::load::procs::rss(std::process::id())
}

/// The child: fills an index and prints its [`IndexReport`] as one JSON line.
pub fn run_child(args: IndexArgs) -> anyhow::Result<()> {
    let workers: Vec<String> = (0..args.workers.max(1)).map(|_| WorkerId::random().to_string()).collect();
    let index = FileIndex::new(true, usize::MAX);
    let before = rss()?;
    let t0 = Instant::now();
    let mut uri_bytes = 0u64;
    // Each worker reports its files (every `workers.len()`-th entry) in reports of up to 10,000.
    for (k, w) in workers.iter().enumerate() {
        let mut batch = Vec::with_capacity(10_000);
        let mut i = k as u64;
        while i < args.entries {
            let u = uri(i);
            uri_bytes += u.len() as u64;
            batch.push(u);
            if batch.len() == 10_000 {
                index.apply_report(w, &batch, &[])?;
                batch.clear();
            }
            i += workers.len() as u64;
        }
        index.apply_report(w, &batch, &[])?;
    }
    let fill_secs = t0.elapsed().as_secs_f64();
    anyhow::ensure!(index.len() as u64 == args.entries, "the index holds {} entries", index.len());
    let report = IndexReport {
        workers: workers.len(),
        entries: args.entries,
        rss_growth: rss()?.saturating_sub(before),
        uri_bytes,
        fill_secs,
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// Runs the child and reads its report.
pub fn measure(workers: usize, entries: u64) -> anyhow::Result<IndexReport> {
    eprintln!("filling a file index of {entries} entries over {workers} workers (in a child process)…");
    let exe = std::env::current_exe()?;
    let out = std::process::Command::new(exe)
        .args(["scale-index", "--workers", &workers.to_string(), "--entries", &entries.to_string()])
        .stderr(std::process::Stdio::inherit())
        .output()?;
    anyhow::ensure!(out.status.success(), "the file index child failed: {}", out.status);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or_default();
    serde_json::from_str(line).map_err(|e| anyhow::anyhow!("the file index child answered {line:?}: {e}"))
}

/// Prints the part's report.
pub fn print(r: &IndexReport) {
    let per = r.rss_growth as f64 / r.entries.max(1) as f64;
    println!(
        "file index      {} entries over {} workers: RSS +{} MB ({per:.0} bytes/entry, of which URI {:.0}); filled in {:.1}s \
         ({:.0} entries/s)",
        r.entries,
        r.workers,
        r.rss_growth >> 20,
        r.uri_bytes as f64 / r.entries.max(1) as f64,
        r.fill_secs,
        r.entries as f64 / r.fill_secs.max(1e-9)
    );
}
