//! The logs' settings, a group of every server process (`loam coordinator`, `loam worker`, `loam local`,
//! `loam fuse`): `loam fuse` takes no node settings, so the format is a group of its own rather than a key
//! of [`crate::NodeSettings`].

use crate::Group;

/// How a log line is written.
#[derive(clap::ValueEnum, serde::Serialize, serde::Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `fields`, `target`, `span`, `spans`), for a log
    /// collector.
    Json,
}

/// Settings of the process's log (stderr; `loam fuse` in the background: its `log-file`).
#[derive(clap::Args, serde::Serialize, serde::Deserialize, Debug, Clone, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct LogSettings {
    /// Log line format: `text`, or `json` (one object per line, each request's lines carrying its
    /// `request_id`).
    #[arg(long, env = "LOAM_LOG_FORMAT", value_name = "FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
}

impl Group for LogSettings {
    const TITLE: &'static str = "Logs";

    fn defaults() -> Self {
        Self { log_format: Some(LogFormat::default()) }
    }
}

impl LogSettings {
    /// The format to write (the default when unset).
    pub fn format(&self) -> LogFormat {
        self.log_format.unwrap_or_default()
    }
}
