//! A job's failed-file list: every path that failed, one per line, appended to
//! `<data_dir>/jobs/<id>.failed` on the Coordinator's disk as paths fail, and rewritten sorted and without
//! duplicates when the job ends (a resumed run may fail a file again). The first
//! [`MAX_ERROR_MESSAGES`](super::record::MAX_ERROR_MESSAGES) of them, with why, also go to the record's
//! `errorMessage`. Verify reads the list to skip files that already failed. The list is deleted with the
//! job at retention (`JobService::drop_expired`).
//!
//! **Decision:** the list is on the disk of the Coordinator that ran the pass, not in the cluster store
//! (unbounded, and only an operator reads it). After a failover, `failedFileListPath` names the file on the
//! Coordinator that finished the job, which lists the failures of its own runs; failures of the runs
//! before the failover are in the former leader's file at the same path, and the first 100 of them in
//! `errorMessage`, which is in the record. `failedFiles` counts them all.

use super::ctx::JobsCtx;
use super::job::Job;
use super::record::Counters;
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

/// `<data_dir>/jobs/<id>.failed`.
pub fn path(ctx: &JobsCtx, id: &str) -> PathBuf {
    ctx.data_dir.join("jobs").join(format!("{id}.failed"))
}

/// Records a failed path: `errorMessage`, the failed-file list, and `delta` in the live counters.
pub fn fail_path(ctx: &JobsCtx, job: &Job, path: &str, error: &str, delta: &Counters) {
    let id = job.update(|r| {
        r.note_error(path, error);
        r.id.clone()
    });
    ctx.count(job, delta);
    let file = self::path(ctx, &id);
    let written = file
        .parent()
        .map(loam_core::private_fs::create_dir_all)
        .transpose()
        .and_then(|_| loam_core::private_fs::open_options().create(true).append(true).open(&file))
        .and_then(|mut f| writeln!(f, "{path}"));
    if let Err(e) = written {
        tracing::warn!(job = %id, "cannot append to {}: {e}", file.display());
    }
}

/// The paths in the list at `path` (none when it does not exist).
/// Fails file `uri` of `length` bytes with `error` unless `failed` (the job's failed files so far) has it:
/// what a check after the pass (verify, repair) does with each file it finds wrong.
pub fn fail_once(ctx: &JobsCtx, job: &Job, failed: &mut HashSet<String>, uri: &str, length: u64, error: &str) {
    if failed.insert(uri.to_string()) {
        let delta = Counters { failed_files: 1, failed_bytes: length, ..Default::default() };
        fail_path(ctx, job, uri, error, &delta);
    }
}

pub fn read(path: &Path) -> HashSet<String> {
    std::fs::read_to_string(path).map(|t| t.lines().map(str::to_string).collect()).unwrap_or_default()
}

/// Rewrites the failed-file list sorted and without duplicates (a resumed run may fail a file again).
pub fn dedupe(path: &Path) -> std::io::Result<PathBuf> {
    let text = std::fs::read_to_string(path)?;
    let mut lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    lines.sort_unstable();
    lines.dedup();
    let mut out = lines.join("\n");
    out.push('\n');
    loam_core::private_fs::write(path, out)?;
    Ok(path.to_path_buf())
}
