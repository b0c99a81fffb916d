//! Logging to stderr; `RUST_LOG` overrides the level chosen by `-v`.
//!
//! Whatever the level, the `s3s` library (the workers' S3 API) stays silent unless `RUST_LOG` names it:
//! it logs every error it answers at ERROR — a client's unsigned write or unknown bucket included — the
//! bytes of a malformed request body at ERROR, and at debug the signature a refused request should have
//! carried, which would let a reader of the log replay that request. The worker's S3 edge logs its own
//! errors instead (client errors at debug, server errors as rate-limited warnings).
//!
//! The format (`--log-format text|json`, [`LogSettings`]) is a setting of the server processes: a flag or
//! `LOAM_LOG_FORMAT` applies from the first line; a config file's is known once the settings are merged,
//! after logging started, so the line writer is behind a reload handle and [`set_format`] swaps it (the
//! few lines before are text). JSON is tracing-subscriber's formatter, one object
//! per line with the current span and its parents, so a request's `request_id` (the span the listeners'
//! edge opens, `loam_listener::request_id`) is on every line it causes.

use loam_config::{LogFormat, LogSettings};
use std::io::IsTerminal;
use std::sync::OnceLock;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

/// The line writer, under the filter.
type Writer = Box<dyn Layer<tracing_subscriber::layer::Layered<EnvFilter, Registry>> + Send + Sync>;

/// Swaps the line writer of the installed subscriber (none in tests, where the first one wins).
static FORMAT: OnceLock<reload::Handle<Writer, tracing_subscriber::layer::Layered<EnvFilter, Registry>>> =
    OnceLock::new();

/// Libraries that log only when `RUST_LOG` names them: (the name to look for, the directive otherwise).
const QUIET: &[(&str, &str)] = &[("s3s", "s3s=off")];

/// Installs the subscriber: warnings by default, `info` with `-v`, `debug` with `-vv`.
pub fn init(verbose: u8, log: Option<&LogSettings>) {
    let default = default_level(verbose);
    let rust_log = std::env::var("RUST_LOG").ok();
    let filter = EnvFilter::try_new(filter_spec(rust_log.as_deref(), default))
        .unwrap_or_else(|_| EnvFilter::new(filter_spec(None, default)));
    let (writer, handle) = reload::Layer::new(writer(log.map(LogSettings::format).unwrap_or_default()));
    if tracing_subscriber::registry().with(filter).with(writer).try_init().is_ok() {
        let _ = FORMAT.set(handle);
    }
}

/// Writes the lines in the format `settings` name from now on.
pub fn set_format(settings: &LogSettings) {
    if let Some(handle) = FORMAT.get() {
        let _ = handle.reload(writer(settings.format()));
    }
}

fn writer(format: LogFormat) -> Writer {
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    match format {
        LogFormat::Text => fmt.with_ansi(std::io::stderr().is_terminal()).boxed(),
        LogFormat::Json => fmt.json().with_current_span(true).with_span_list(true).boxed(),
    }
}

fn default_level(verbose: u8) -> &'static str {
    match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    }
}

/// `RUST_LOG` (or `default` when it is unset or empty) with the [`QUIET`] directives it does not override.
fn filter_spec(rust_log: Option<&str>, default: &str) -> String {
    let mut spec = rust_log.map(str::trim).filter(|s| !s.is_empty()).unwrap_or(default).to_string();
    for (name, directive) in QUIET {
        if !spec.contains(name) {
            spec.push(',');
            spec.push_str(directive);
        }
    }
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3s_is_off_unless_named() {
        assert_eq!(filter_spec(None, default_level(0)), "warn,s3s=off");
        assert_eq!(filter_spec(Some(" "), default_level(2)), "debug,s3s=off");
        assert_eq!(filter_spec(Some("trace"), "warn"), "trace,s3s=off");
        assert_eq!(filter_spec(Some("info,s3s=debug"), "warn"), "info,s3s=debug", "asked for by name");
        assert!(EnvFilter::try_new(filter_spec(Some("loam=debug"), "warn")).is_ok());
    }
}
