//! Why a configuration cannot be used. Every error is one line that names the key and where its value
//! came from; the `loam` binary exits 2 on any of them, before anything is started.

use loam_core::ErrorKind;
use std::path::PathBuf;

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the config file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML, has an unknown key, or a value of the wrong type.
    #[error("config file {path}{line}: {message}", line = line.map(|l| format!(", line {l}")).unwrap_or_default())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the problem, when known.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// The file declares a format version this build does not read.
    #[error(
        "config file {path}: version {version} is not supported (this build reads version {})",
        crate::CONFIG_VERSION
    )]
    Version {
        /// The file.
        path: PathBuf,
        /// The version it declares.
        version: i64,
    },
    /// A setting is missing, out of range, or at odds with another after merging the sources.
    #[error("{0}")]
    Invalid(String),
}

impl ConfigError {
    /// The error's kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ConfigError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            ConfigError::Io { .. } => ErrorKind::Unavailable,
            ConfigError::Parse { .. } | ConfigError::Version { .. } | ConfigError::Invalid(_) => {
                ErrorKind::InvalidInput
            }
        }
    }
}
