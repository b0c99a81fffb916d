//! What every CLI command shares: the HTTP client (`loam_client::peer`'s), the Coordinator URL, the output
//! mode, and the translation of the Coordinator's `{"status": …}` errors into one-line messages.

use anyhow::{Context, anyhow};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The CLI's context.
pub struct Ctx {
    /// HTTP client.
    pub http: reqwest::Client,
    /// Coordinator base URL, without trailing slash.
    pub coordinator: String,
    /// JSON output.
    pub json: bool,
}

impl Ctx {
    /// A context for `coordinator`.
    pub fn new(coordinator: &str, json: bool) -> anyhow::Result<Self> {
        let http = loam_client::peer::http_client(None)?;
        Ok(Self { http, coordinator: coordinator.trim_end_matches('/').to_string(), json })
    }

    /// `GET /api/v1/<path>` decoded as `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str, query: &[(&str, &str)]) -> anyhow::Result<T> {
        let url = format!("{}/api/v1/{path}", self.coordinator);
        let r = self.http.get(&url).query(query).send().await.with_context(|| self.unreachable())?;
        decode(r).await
    }

    /// A request with a JSON body (`POST`/`DELETE`) decoded as `T`.
    pub async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        let url = format!("{}/api/v1/{path}", self.coordinator);
        let r = self.http.request(method, &url).json(body).send().await.with_context(|| self.unreachable())?;
        decode(r).await
    }

    fn unreachable(&self) -> String {
        format!("cannot reach the coordinator at {} (is `loam local` running? set --coordinator)", self.coordinator)
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

/// Decodes a successful body, or turns an error status into its message.
pub async fn decode<T: DeserializeOwned>(r: reqwest::Response) -> anyhow::Result<T> {
    let status = r.status();
    let text = r.text().await.context("reading the response")?;
    if !status.is_success() {
        let msg = loam_client::peer::error_message(&text);
        return Err(anyhow!("{msg} (HTTP {})", status.as_u16()));
    }
    serde_json::from_str(&text).with_context(|| format!("unexpected response: {text}"))
}
