//! Logging to stderr; `RUST_LOG` overrides the level chosen by `-v`.

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Installs the subscriber: warnings by default, `info` with `-v`, `debug` with `-vv`.
pub fn init(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
