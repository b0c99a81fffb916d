//! A file read at start and again whenever it changes (its modification time, length or inode), looked at
//! most once per interval, so tokens and keys rotate without a restart. A new version that does not parse
//! is refused: the old one stays in force and the problem is logged once per version.

use parking_lot::Mutex;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// How often the file is looked at.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);

type Parse<T> = fn(&str, &Path) -> Result<T, String>;

/// What identifies a version of the file.
type Stamp = (Option<SystemTime>, u64, u64);

pub(crate) struct Reloading<T> {
    path: PathBuf,
    parse: Parse<T>,
    interval: Duration,
    state: Mutex<State<T>>,
}

struct State<T> {
    value: Arc<T>,
    stamp: Stamp,
    checked: Instant,
}

impl<T> Reloading<T> {
    /// Reads and parses `path`, which must succeed.
    pub(crate) fn open(path: &Path, parse: Parse<T>, interval: Duration) -> Result<Self, String> {
        let (value, stamp) = read(path, parse)?;
        let state = Mutex::new(State { value: Arc::new(value), stamp, checked: Instant::now() });
        Ok(Self { path: path.to_path_buf(), parse, interval, state })
    }

    /// The current version (re-read first when the interval has passed and the file changed).
    pub(crate) fn get(&self) -> Arc<T> {
        let mut s = self.state.lock();
        if s.checked.elapsed() >= self.interval {
            s.checked = Instant::now();
            match stamp(&self.path) {
                Ok(now) if now != s.stamp => {
                    match read(&self.path, self.parse) {
                        Ok((value, stamp)) => {
                            tracing::info!(file = %self.path.display(), "re-read after a change");
                            (s.value, s.stamp) = (Arc::new(value), stamp);
                        }
                        Err(e) => {
                            tracing::warn!("keeping the previous version: {e}");
                            // Not again for this version of the file.
                            s.stamp = now;
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    if s.stamp != (None, 0, 0) {
                        tracing::warn!("keeping the previous version: {e}");
                        s.stamp = (None, 0, 0);
                    }
                }
            }
        }
        s.value.clone()
    }
}

fn stamp(path: &Path) -> Result<Stamp, String> {
    let m = std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok((m.modified().ok(), m.len(), m.ino()))
}

fn read<T>(path: &Path, parse: Parse<T>) -> Result<(T, Stamp), String> {
    let stamp = stamp(path)?;
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok((parse(&text, path)?, stamp))
}
