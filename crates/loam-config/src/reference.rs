//! The configuration reference, written from the settings groups themselves: each key's flag,
//! environment variable, default and meaning come from the group's `clap` definition (its doc comments)
//! and its [`Group::defaults`], so the reference cannot drift from the code. `docs/CONFIGURATION.md`
//! is this output, and a test fails when the committed file differs.

use crate::{Group, render};

/// One section of the reference: a group and the processes that take it.
pub struct Section {
    title: &'static str,
    processes: &'static str,
    rows: Vec<[String; 4]>,
}

impl Section {
    /// The section of group `G`, taken by `processes` (e.g. "`loam worker`, `loam local`").
    pub fn of<G: Group>(processes: &'static str) -> Self {
        let command = G::augment_args(clap::Command::new("settings"));
        let defaults = G::defaults();
        let defaults = toml::Value::try_from(&defaults).ok().and_then(|v| v.as_table().cloned()).unwrap_or_default();
        let default_of = |key: &str| match defaults.get(key) {
            Some(v) => format!("`{}`", render::masked(key, v)),
            None => "none".to_string(),
        };
        let mut rows = Vec::new();
        for arg in command.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            let mut how = vec![format!("`--{long}`")];
            how.extend(arg.get_visible_aliases().unwrap_or_default().into_iter().map(|a| format!("`--{a}`")));
            if let Some(env) = arg.get_env() {
                how.push(format!("`{}`", env.to_string_lossy()));
            }
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            rows.push([format!("`{long}`"), how.join(", "), default_of(long), one_line(&help)]);
        }
        for (key, how, meaning) in G::other_keys() {
            rows.push([format!("`{key}`"), how.to_string(), default_of(key), meaning.to_string()]);
        }
        rows.sort();
        Self { title: G::TITLE, processes, rows }
    }
}

/// The whole reference: `intro` (Markdown), then one table per section.
pub fn markdown(intro: &str, sections: &[Section]) -> String {
    let mut out = String::from(intro.trim_end());
    out.push('\n');
    for s in sections {
        out.push_str(&format!("\n## {}\n\nTaken by {}.\n\n", s.title, s.processes));
        out.push_str("| key | flag, environment | default | meaning |\n| --- | --- | --- | --- |\n");
        for [key, how, default, meaning] in &s.rows {
            out.push_str(&format!("| {key} | {how} | {default} | {} |\n", meaning.replace('|', "\\|")));
        }
    }
    out
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
