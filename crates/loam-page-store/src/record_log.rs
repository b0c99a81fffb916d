//! The record log: the records of one cache directory's files, kept as an append-only log
//! (`records.log` in the layout root) instead of a file per record, so caching a small file creates
//! one inode (its page) rather than three (see `disk.rs`).
//!
//! Format: a first line `LOAM-RECORD-LOG <version>` ([`LOG_FORMAT_VERSION`]), then one entry per line:
//! the CRC32 of the entry's JSON as 8 hex digits, a space, and the JSON of a [`LogEntry`] —
//! `{"put": <record with its generation>}` or `{"remove": "<file id>"}`. For each file id the last entry
//! wins. A line failing its checksum or its parse (an append torn by a crash, a damaged block) is
//! skipped: at worst a record reverts to an older state. That is safe because a removal deletes the page
//! files *before* it appends its `remove`, and every page header carries its version's generation, so a
//! reverted record finds no pages of another version to serve.
//!
//! Appends are one `write` of whole lines under a mutex, with no fsync (this is a cache). The log is
//! rewritten with only the live records (temp file, then rename) at every start and whenever it has grown
//! to [`COMPACT_FACTOR`] times what it held after the last rewrite; the rewrite holds the append mutex and
//! takes its snapshot of the live records under it, so no append is lost to it.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::disk;
use super::record::{self, StoredRecord};

/// Version of the record log format.
pub(super) const LOG_FORMAT_VERSION: u32 = 1;
const MAGIC: &str = "LOAM-RECORD-LOG";
/// The log is rewritten when it holds this many times the lines it held after the last rewrite.
const COMPACT_FACTOR: u64 = 2;
/// ...but never while it is shorter than this many lines, so a small cache is not rewritten constantly.
const COMPACT_MIN_LINES: u64 = 65_536;

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum LogEntry {
    /// The file's record is now this.
    Put(StoredRecord),
    /// The file has no record any more.
    Remove(String),
}

/// What replaying a log found.
#[derive(Debug, Default)]
pub(super) struct Replayed {
    /// The surviving record of each file id.
    pub(super) records: HashMap<String, StoredRecord>,
    /// Lines that were skipped as unusable.
    pub(super) skipped: u64,
}

/// An open record log.
#[derive(Debug)]
pub(super) struct RecordLog {
    path: PathBuf,
    state: parking_lot::Mutex<LogState>,
}

#[derive(Debug)]
struct LogState {
    /// `None` while the log is closed (its directory failed).
    file: Option<File>,
    /// Entry lines in the file now.
    lines: u64,
    /// Entry lines the last rewrite left.
    compacted: u64,
}

impl RecordLog {
    /// Reads the log at `path` (a missing log is empty). A log of another format version is not
    /// understood: it yields no records and counts one skipped line.
    pub(super) fn replay(path: &Path) -> io::Result<Replayed> {
        let bytes = match fs::read(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Replayed::default()),
            other => other?,
        };
        let mut out = Replayed::default();
        let mut lines = bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty());
        let header = lines.next().map(String::from_utf8_lossy).unwrap_or_default();
        if header != format!("{MAGIC} {LOG_FORMAT_VERSION}") {
            tracing::warn!(path = %path.display(), header = %header, "record log of an unknown format ignored");
            out.skipped = 1;
            return Ok(out);
        }
        for line in lines {
            match decode_line(line) {
                Ok(LogEntry::Put(stored)) => {
                    out.records.insert(stored.record.file_id.clone(), stored);
                }
                Ok(LogEntry::Remove(id)) => {
                    out.records.remove(&id);
                }
                Err(why) => {
                    tracing::warn!(path = %path.display(), why, "unusable record log line skipped");
                    out.skipped += 1;
                }
            }
        }
        Ok(out)
    }

    /// Writes a fresh log at `path` holding exactly `records`, and opens it for appending.
    pub(super) fn create<'a>(path: &Path, records: impl IntoIterator<Item = &'a StoredRecord>) -> io::Result<Self> {
        let (file, lines) = rewrite(path, records)?;
        let state = LogState { file: Some(file), lines, compacted: lines };
        Ok(Self { path: path.to_owned(), state: parking_lot::Mutex::new(state) })
    }

    /// A closed log at `path` (its directory could not be opened): appends fail until [`RecordLog::reset`].
    pub(super) fn closed(path: &Path) -> Self {
        let state = LogState { file: None, lines: 0, compacted: 0 };
        Self { path: path.to_owned(), state: parking_lot::Mutex::new(state) }
    }

    /// Writes a fresh log holding exactly `records` in place of this one (whose file may have been removed
    /// with its directory), and appends there from now on.
    pub(super) fn reset<'a>(&self, records: impl IntoIterator<Item = &'a StoredRecord>) -> io::Result<()> {
        let mut state = self.state.lock();
        let (file, lines) = rewrite(&self.path, records)?;
        *state = LogState { file: Some(file), lines, compacted: lines };
        Ok(())
    }

    /// The log's path.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `entries` with one write. When the log has grown enough, rewrites it from `live` (the
    /// records this log should hold now), which is called with the append lock held.
    pub(super) fn append(&self, entries: &[LogEntry], live: impl FnOnce() -> Vec<StoredRecord>) -> io::Result<()> {
        let mut buf = Vec::with_capacity(entries.len() * 320);
        for entry in entries {
            encode_line(entry, &mut buf)?;
        }
        let mut state = self.state.lock();
        let file = state.file.as_mut().ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "record log closed"))?;
        file.write_all(&buf)?;
        state.lines += entries.len() as u64;
        if state.lines >= COMPACT_MIN_LINES && state.lines >= COMPACT_FACTOR * state.compacted.max(1) {
            let records = live();
            match rewrite(&self.path, &records) {
                Ok((file, lines)) => *state = LogState { file: Some(file), lines, compacted: lines },
                // The appends went to the old log, which is still in place: nothing is lost.
                Err(e) => tracing::warn!(path = %self.path.display(), error = %e, "record log not compacted"),
            }
        }
        Ok(())
    }
}

/// Writes `records` to a new log file replacing `path`, returning it opened for appending and its lines.
fn rewrite<'a>(path: &Path, records: impl IntoIterator<Item = &'a StoredRecord>) -> io::Result<(File, u64)> {
    let mut buf = format!("{MAGIC} {LOG_FORMAT_VERSION}\n").into_bytes();
    let mut lines = 0;
    for stored in records {
        encode_line(&LogEntry::Put(stored.clone()), &mut buf)?;
        lines += 1;
    }
    disk::write_atomically(path, &[&buf])?;
    let file = OpenOptions::new().append(true).open(path)?;
    Ok((file, lines))
}

fn encode_line(entry: &LogEntry, buf: &mut Vec<u8>) -> io::Result<()> {
    let json = serde_json::to_vec(entry).map_err(io::Error::other)?;
    buf.extend_from_slice(format!("{:08x} ", crc32fast::hash(&json)).as_bytes());
    buf.extend_from_slice(&json);
    buf.push(b'\n');
    Ok(())
}

fn decode_line(line: &[u8]) -> Result<LogEntry, String> {
    let (crc, json) = line.split_at_checked(9).ok_or("truncated line")?;
    let crc = std::str::from_utf8(&crc[..8]).ok().and_then(|h| u32::from_str_radix(h, 16).ok());
    if crc != Some(crc32fast::hash(json)) {
        return Err("checksum mismatch".into());
    }
    let value: serde_json::Value = serde_json::from_slice(json).map_err(|e| e.to_string())?;
    match (value.get("put"), value.get("remove").and_then(serde_json::Value::as_str)) {
        // The record's own version is checked before its fields, as for any stored record.
        (Some(put), None) => record::decode_value(put.clone()).map(LogEntry::Put),
        (None, Some(id)) => Ok(LogEntry::Remove(id.to_owned())),
        _ => Err("neither put nor remove".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FileRecord;

    fn stored(uri: &str, generation: u64) -> StoredRecord {
        StoredRecord { record: FileRecord::new(uri, 10, Some("e".into()), Some(5), 100), generation }
    }

    #[test]
    fn last_entry_wins_and_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(super::disk::RECORD_LOG);
        let (a, b) = (stored("s3://b/a", 1), stored("s3://b/b", 2));
        let log = RecordLog::create(&path, [&a]).unwrap();
        let a2 = StoredRecord { generation: 3, ..a.clone() };
        let entries = [LogEntry::Put(b.clone()), LogEntry::Put(a2.clone()), LogEntry::Remove(b.record.file_id.clone())];
        log.append(&entries, || unreachable!("too small to compact")).unwrap();
        let replayed = RecordLog::replay(&path).unwrap();
        assert_eq!(replayed.records, HashMap::from([(a.record.file_id.clone(), a2)]));
        assert_eq!(replayed.skipped, 0);
    }

    #[test]
    fn torn_and_damaged_lines_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records.log");
        let (a, b) = (stored("s3://b/a", 1), stored("s3://b/b", 2));
        let log = RecordLog::create(&path, [&a, &b]).unwrap();
        log.append(&[LogEntry::Remove(a.record.file_id.clone())], Vec::new).unwrap();
        let mut raw = fs::read(&path).unwrap();
        // Damage the `remove` line, then add a torn append.
        let at = raw.len() - 5;
        raw[at] ^= 0x01;
        raw.extend_from_slice(b"0000abcd {\"put\":{\"vers");
        fs::write(&path, raw).unwrap();
        let replayed = RecordLog::replay(&path).unwrap();
        assert_eq!(replayed.records.len(), 2, "the damaged remove reverted a to its put");
        assert_eq!(replayed.skipped, 2);
    }

    #[test]
    fn unknown_formats_and_versions_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records.log");
        fs::write(&path, "LOAM-RECORD-LOG 2\nwhatever\n").unwrap();
        let replayed = RecordLog::replay(&path).unwrap();
        assert!(replayed.records.is_empty() && replayed.skipped == 1);
        let mut value = serde_json::to_value(LogEntry::Put(stored("s3://b/a", 1))).unwrap();
        value["put"]["version"] = 9.into();
        let json = value.to_string();
        let line = format!("{:08x} {json}", crc32fast::hash(json.as_bytes()));
        let err = decode_line(line.as_bytes()).unwrap_err();
        assert!(err.contains("unknown record version 9"), "{err}");
        assert!(RecordLog::replay(&dir.path().join("missing")).unwrap().records.is_empty());
    }

    #[test]
    fn a_grown_log_is_rewritten_with_the_live_records_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records.log");
        let a = stored("s3://b/a", 1);
        let log = RecordLog::create(&path, []).unwrap();
        let batch: Vec<_> = (0..1024).map(|_| LogEntry::Put(a.clone())).collect();
        let mut compactions = 0;
        for _ in 0..COMPACT_MIN_LINES / 1024 {
            log.append(&batch, || {
                compactions += 1;
                vec![a.clone()]
            })
            .unwrap();
        }
        assert_eq!(compactions, 1);
        let text = fs::read_to_string(log.path()).unwrap();
        assert_eq!(text.lines().count(), 2, "header and the one live record");
        log.append(&[LogEntry::Remove(a.record.file_id.clone())], Vec::new).unwrap();
        assert!(RecordLog::replay(&path).unwrap().records.is_empty());
    }
}
