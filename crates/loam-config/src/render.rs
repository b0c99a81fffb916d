//! `--print-config`: the effective settings as TOML (so the output can be pasted into a config file),
//! each key followed by where its value came from, and every secret masked by the one rule
//! (`loam_core::secrets`), also inside tables such as a static mount's options.

use crate::{Layered, Source};

pub use loam_core::secrets::{MASK, is_secret_key};

/// `value` with the values of secret keys (at any depth) replaced by [`MASK`].
pub fn masked(key: &str, value: &toml::Value) -> toml::Value {
    if is_secret_key(key) && !matches!(value, toml::Value::Table(_) | toml::Value::Array(_)) {
        return toml::Value::String(MASK.into());
    }
    match value {
        toml::Value::Table(t) => toml::Value::Table(t.iter().map(|(k, v)| (k.clone(), masked(k, v))).collect()),
        toml::Value::Array(a) => toml::Value::Array(a.iter().map(|v| masked(key, v)).collect()),
        other => other.clone(),
    }
}

/// One process's settings: a heading comment, then `key = value  # source` per key of each group.
pub struct Printout {
    lines: Vec<(String, String)>,
    title: String,
}

impl Printout {
    /// A printout headed `# <title>`.
    pub fn new(title: impl Into<String>) -> Self {
        Self { lines: Vec::new(), title: title.into() }
    }

    /// Adds the keys of one group.
    pub fn group<G>(mut self, layered: &Layered<G>) -> Self {
        for (key, value, source) in layered.entries() {
            let shown = masked(key, value);
            let source = source.map_or_else(|| Source::Default.to_string(), ToString::to_string);
            self.lines.push((format!("{key} = {}", inline(&shown)), source));
        }
        self
    }
}

impl std::fmt::Display for Printout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "# {} (each value's source after `#`: default, file, environment or flag)", self.title)?;
        let width = self.lines.iter().map(|(l, _)| l.len()).max().unwrap_or(0).min(60);
        for (line, source) in &self.lines {
            writeln!(f, "{line:width$}  # {source}")?;
        }
        Ok(())
    }
}

/// A value on one line (arrays of tables as inline tables).
fn inline(value: &toml::Value) -> String {
    match value {
        toml::Value::Table(t) => {
            let items: Vec<String> = t.iter().map(|(k, v)| format!("{} = {}", key_text(k), inline(v))).collect();
            format!("{{ {} }}", items.join(", "))
        }
        toml::Value::Array(a) => format!("[{}]", a.iter().map(inline).collect::<Vec<_>>().join(", ")),
        other => other.to_string(),
    }
}

/// A key as TOML writes it: bare when it can be, quoted otherwise (`"s3a.accessKeyId"`).
fn key_text(k: &str) -> String {
    if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        k.to_string()
    } else {
        toml::Value::String(k.to_string()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_at_any_depth() {
        let v: toml::Value = toml::from_str::<toml::Table>(
            "m = [{ path = \"/d\", options = { \"s3a.secretKey\" = \"S\", \"s3.endpoint\" = \"http://e\" } }]",
        )
        .unwrap()["m"]
            .clone();
        let text = inline(&masked("mount", &v));
        assert!(!text.contains("\"S\""), "{text}");
        assert!(text.contains("\"s3a.secretKey\" = \"******\"") && text.contains("http://e"), "{text}");
        assert_eq!(inline(&masked("s3-secret-key", &toml::Value::String("x".into()))), "\"******\"");
    }
}
