//! The probes of every server process, which Kubernetes' kubelet (and any load balancer) asks without
//! credentials: liveness (`200` while the process serves HTTP) and readiness (`200` when it can do its
//! work, `503` with the reason otherwise). Their paths live here, the one place both the real routers and
//! the startup server of `loam coordinator` / `loam worker` (which answers while the process waits for
//! etcd or a secret file) take them from. The bodies reveal no secret and no path beyond what the
//! reason names (a setting and the file it names, an etcd endpoint).

use serde::{Deserialize, Serialize};

/// The Coordinator's liveness probe.
pub const COORDINATOR_HEALTH_PATH: &str = "/api/v1/health";
/// The Coordinator's readiness probe.
pub const COORDINATOR_READY_PATH: &str = "/api/v1/ready";
/// The worker's liveness probe (on its HTTP port).
pub const WORKER_HEALTH_PATH: &str = "/v1/health";
/// The worker's readiness probe (on its HTTP port).
pub const WORKER_READY_PATH: &str = "/v1/ready";

/// The body of a readiness probe: `{"ready":true}` (200) or `{"ready":false,"reason":"…"}` (503).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Readiness {
    /// Whether the process is ready.
    pub ready: bool,
    /// Why not, when not ready: what it waits for (etcd unreachable at an endpoint, a missing file and
    /// the setting that names it, not registered in the membership).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Readiness {
    /// Ready.
    pub fn ready() -> Self {
        Self { ready: true, reason: None }
    }

    /// Not ready, because of `reason`.
    pub fn not_ready(reason: impl Into<String>) -> Self {
        Self { ready: false, reason: Some(reason.into()) }
    }

    /// The HTTP status that answers it: 200 when ready, 503 when not.
    pub fn status(&self) -> u16 {
        if self.ready { 200 } else { 503 }
    }
}
