//! What every CLI command shares: the HTTP client (`loam_client::peer`'s, carrying the user's token), the
//! Coordinators (`--coordinator URL[,URL...]`, tried in order by `loam_client::Coordinators`), the output
//! mode, and the translation of the Coordinator's `{"status": …}` errors into one-line messages.
//!
//! The token comes from `--token-file` (`LOAM_TOKEN_FILE`), else `LOAM_TOKEN`, else the admin token `loam
//! local` keeps in `./loam-data/admin-token`, so the README's walk-through needs no extra step.

use anyhow::{Context, anyhow};
use loam_auth::Credential;
use loam_client::{Coordinators, PeerClient};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The token of `loam local`'s default data directory, found by the CLI by itself.
pub fn default_admin_token_file() -> std::path::PathBuf {
    std::path::Path::new(loam_config::DEFAULT_DATA_DIR).join(loam_auth::local::ADMIN_TOKEN_FILE)
}

/// The token the CLI sends: `--token-file`, else `LOAM_TOKEN`, else `./loam-data/admin-token`, else none.
pub fn token(token_file: Option<&std::path::Path>) -> anyhow::Result<Credential> {
    if let Some(path) = token_file {
        return Credential::from_file(path).map_err(|e| anyhow!("--token-file: {e}"));
    }
    if let Some(t) = std::env::var("LOAM_TOKEN").ok().map(|t| t.trim().to_string()).filter(|t| !t.is_empty()) {
        return Ok(Credential::fixed(t));
    }
    let local = default_admin_token_file();
    Ok(Credential::from_file(&local).unwrap_or_default())
}

/// The Coordinator URLs of `--coordinator` (`flag` names where the value came from: the flag or
/// `LOAM_COORDINATOR`), checked; `loam local`'s when none is given. A bad list is a settings error (exit 2).
pub fn coordinator_urls(given: Option<&str>, flag: &str) -> Result<Vec<String>, loam_config::ConfigError> {
    let items = given.map_or_else(
        || vec![super::DEFAULT_COORDINATOR_URL.to_string()],
        |g| loam_config::values::split_list_with_empties(&[g.to_string()]),
    );
    loam_client::coordinator::parse_list(&items).map_err(|e| loam_config::ConfigError::Invalid(format!("{flag}: {e}")))
}

/// The CLI's context.
#[derive(Clone)]
pub struct Ctx {
    /// HTTP client, for the workers (file commands).
    pub http: PeerClient,
    /// The Coordinators, over the same client.
    pub coordinators: Coordinators,
    /// JSON output.
    pub json: bool,
}

impl Ctx {
    /// A context for the Coordinators at `urls` (checked by [`coordinator_urls`]).
    pub fn new(urls: &[String], json: bool, token: Credential) -> anyhow::Result<Self> {
        let http = PeerClient::build(token)?;
        let coordinators = Coordinators::new(urls, http.clone())?;
        Ok(Self { http, coordinators, json })
    }

    /// `GET /api/v1/<path>` decoded as `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str, query: &[(&str, &str)]) -> anyhow::Result<T> {
        let r = self
            .coordinators
            .send(reqwest::Method::GET, &format!("/api/v1/{path}"), |r| r.query(query))
            .await
            .with_context(|| self.unreachable())?;
        decode(r).await
    }

    /// A request with a JSON body (`POST`/`DELETE`) decoded as `T`.
    pub async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        let r = self
            .coordinators
            .send(method, &format!("/api/v1/{path}"), |r| r.json(body))
            .await
            .with_context(|| self.unreachable())?;
        decode(r).await
    }

    /// The context of an error no Coordinator answered.
    pub fn unreachable(&self) -> String {
        let urls = self.coordinators.describe();
        format!("cannot reach the coordinator at {urls} (is `loam local` running? set --coordinator)")
    }

    /// Prints `value` as JSON, or `text` for humans.
    pub fn print<T: Serialize>(&self, value: &T, text: impl FnOnce() -> String) -> anyhow::Result<()> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(value)?);
        } else {
            let t = text();
            if !t.is_empty() {
                println!("{t}");
            }
        }
        Ok(())
    }
}

/// An error status the Coordinator answered, with its message: a command that expects one status (e.g.
/// `410` of a stop) tells it apart by downcasting.
#[derive(Debug, thiserror::Error)]
#[error("{message} (HTTP {status})")]
pub struct StatusError {
    /// The HTTP status.
    pub status: u16,
    /// The `{"status"}` message (or the body).
    pub message: String,
}

/// Whether `e` is the Coordinator's answer `status`.
pub fn is_status(e: &anyhow::Error, status: u16) -> bool {
    e.downcast_ref::<StatusError>().is_some_and(|s| s.status == status)
}

/// Decodes a successful body, or turns an error status into its message.
pub async fn decode<T: DeserializeOwned>(r: reqwest::Response) -> anyhow::Result<T> {
    let status = r.status();
    let text = r.text().await.context("reading the response")?;
    if !status.is_success() {
        let message = loam_client::peer::error_message(&text);
        return Err(StatusError { status: status.as_u16(), message }.into());
    }
    serde_json::from_str(&text).with_context(|| format!("unexpected response: {text}"))
}
