//! `loam ttl|priority|quota add|list|remove`: the three path-rule endpoints (`/api/v1/ttl`,
//! `/api/v1/priority`, `/api/v1/quota`) share one command shape; only the rule's value differs.

use super::http::Ctx;
use anyhow::Context;
use clap::Subcommand;
use loam_core::coordinator_api::StatusBody;
use reqwest::Method;
use serde_json::{Value, json};

/// Which rule endpoint a command talks to.
#[derive(Clone, Copy, Debug)]
pub enum RuleKind {
    /// `/api/v1/ttl`, value: seconds.
    Ttl,
    /// `/api/v1/priority`, value: high, medium or low.
    Priority,
    /// `/api/v1/quota`, value: bytes (`10GiB`).
    Quota,
}

/// Rule commands.
#[derive(Subcommand, Debug)]
pub enum RuleCommand {
    /// Add or replace the rule at a path: a TTL in seconds, a priority (high|medium|low), or a quota size
    /// (e.g. 10GiB).
    Add {
        /// Cluster path or UFS URI.
        path: String,
        /// The rule's value.
        value: String,
    },
    /// List rules, or show the one at `--path`.
    List {
        /// Only the rule at this path.
        #[arg(long)]
        path: Option<String>,
    },
    /// Remove the rule at a path.
    Remove {
        /// Cluster path or UFS URI.
        path: String,
    },
}

impl RuleKind {
    fn endpoint(self) -> &'static str {
        match self {
            RuleKind::Ttl => "ttl",
            RuleKind::Priority => "priority",
            RuleKind::Quota => "quota",
        }
    }

    /// The POST body for `path` and the user's `value`.
    fn body(self, path: &str, value: &str) -> anyhow::Result<Value> {
        Ok(match self {
            RuleKind::Ttl => {
                let secs: u64 = value.parse().with_context(|| format!("TTL {value:?} is not a number of seconds"))?;
                json!({"path": path, "ttlSeconds": secs})
            }
            RuleKind::Priority => json!({"path": path, "priority": value}),
            RuleKind::Quota => {
                let bytes = loam_core::size::parse_size(value).map_err(anyhow::Error::msg)?;
                json!({"path": path, "quotaBytes": bytes})
            }
        })
    }

    /// One rule as a line of text.
    fn line(self, v: &Value) -> String {
        let path = v["path"].as_str().unwrap_or_default();
        match self {
            RuleKind::Ttl => format!("{path:<40} {}s", v["ttlSeconds"]),
            RuleKind::Priority => format!("{path:<40} {}", v["priority"].as_str().unwrap_or_default()),
            RuleKind::Quota => format!(
                "{path:<40} {:<10} quota {} used {} reserved {}",
                v["state"].as_str().unwrap_or_default(),
                v["quotaBytes"],
                v["usedBytes"],
                v["reservedBytes"]
            ),
        }
    }
}

/// Runs a rule command against its endpoint.
pub async fn run(ctx: &Ctx, kind: RuleKind, c: RuleCommand) -> anyhow::Result<()> {
    let ep = kind.endpoint();
    match c {
        RuleCommand::Add { path, value } => {
            let r: StatusBody = ctx.send(Method::POST, ep, &kind.body(&path, &value)?).await?;
            ctx.print(&r, || format!("{ep} rule set on {path}"))
        }
        RuleCommand::List { path: Some(path) } => {
            let v: Value = ctx.get(ep, &[("path", path.as_str())]).await?;
            ctx.print(&v, || kind.line(&v))
        }
        RuleCommand::List { path: None } => {
            let v: Value = ctx.get(ep, &[]).await?;
            let rules = v["results"].as_array().cloned().unwrap_or_default();
            ctx.print(&v, || rules.iter().map(|r| kind.line(r)).collect::<Vec<_>>().join("\n"))
        }
        RuleCommand::Remove { path } => {
            let r: StatusBody = ctx.send(Method::DELETE, ep, &json!({ "path": path })).await?;
            ctx.print(&r, || format!("{ep} rule removed from {path}"))
        }
    }
}
