//! The worker record stored in the membership store, in Alluxio's etcd JSON layout, and the keys under
//! which it lives (`/DHT/<cluster>/AUTHORIZED/<id>` permanently, `/ServiceDiscovery/<cluster>/<id>` on a lease).

use crate::id::{WorkerId, WorkerIdentity};
use serde::{Deserialize, Serialize};

/// The default cluster name (Alluxio's).
pub const DEFAULT_CLUSTER_NAME: &str = "DefaultAlluxioCluster";

/// How long a worker's liveness record outlives its last lease renewal, by default (`--lease-ttl`): a
/// worker that stops renewing leaves the ring this long after. The Coordinator's jobs retry a worker's
/// files for longer than this before they give up on it (`--job-retry-window`).
pub const DEFAULT_LEASE_TTL: std::time::Duration = std::time::Duration::from_secs(15);

/// The prefix of permanent registrations.
pub fn authorized_prefix(cluster: &str) -> String {
    format!("/DHT/{cluster}/AUTHORIZED/")
}

/// The prefix of liveness records.
pub fn liveness_prefix(cluster: &str) -> String {
    format!("/ServiceDiscovery/{cluster}/")
}

/// A worker's network addresses (`WorkerNetAddress`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WorkerNetAddress {
    /// Host name or IP clients connect to.
    pub host: String,
    /// Host of the container, empty outside containers.
    #[serde(default)]
    pub container_host: String,
    /// Internal RPC port (Loam: the HTTP port serves it).
    #[serde(default)]
    pub rpc_port: u16,
    /// Data port (Alluxio's gRPC data port; informational).
    #[serde(default)]
    pub data_port: u16,
    /// Secure RPC port (unused, 0).
    #[serde(default)]
    pub secure_rpc_port: u16,
    /// Netty data port (informational).
    #[serde(default)]
    pub netty_data_port: u16,
    /// Port of `/metrics` (Loam: the HTTP port).
    #[serde(default)]
    pub web_port: u16,
    /// Domain socket path (unused).
    #[serde(default)]
    pub domain_socket_path: String,
    /// The worker HTTP API port the clients use.
    pub http_server_port: u16,
    /// The S3 API port (Loam's addition; Alluxio's clients ignore unknown fields).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub s3_port: u16,
    /// Whether the worker's HTTP and S3 APIs are served over TLS (Loam's addition, absent when false, so a
    /// record of an older release reads as plain HTTP; Alluxio's clients ignore it).
    #[serde(default, skip_serializing_if = "is_false")]
    pub tls: bool,
}

fn is_zero(p: &u16) -> bool {
    *p == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The JSON value of both membership keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WorkerRecord {
    /// `worker-<uuid>`.
    pub service_entity_name: String,
    /// The ring identity.
    pub identity: WorkerIdentity,
    /// Where the worker serves.
    pub worker_net_address: WorkerNetAddress,
    /// `AUTHORIZED`.
    pub state: String,
    /// Alluxio writes -1.
    pub generation_number: i64,
}

impl WorkerRecord {
    /// The record of worker `id` serving HTTP on `host:http_port` and S3 on `s3_port`.
    pub fn new(id: WorkerId, host: &str, http_port: u16, s3_port: u16) -> Self {
        Self {
            service_entity_name: id.to_string(),
            identity: id.identity(),
            worker_net_address: WorkerNetAddress {
                host: host.to_string(),
                container_host: String::new(),
                rpc_port: http_port,
                data_port: 29997,
                secure_rpc_port: 0,
                netty_data_port: 29997,
                web_port: http_port,
                domain_socket_path: String::new(),
                http_server_port: http_port,
                s3_port,
                tls: false,
            },
            state: "AUTHORIZED".into(),
            generation_number: -1,
        }
    }

    /// The record with its APIs served over TLS (`https`) or not.
    pub fn with_tls(mut self, tls: bool) -> Self {
        self.worker_net_address.tls = tls;
        self
    }

    /// The worker id, from the entity name or else the identity.
    pub fn worker_id(&self) -> Option<WorkerId> {
        self.service_entity_name.parse().ok().or_else(|| self.identity.worker_id())
    }

    /// `host:http_port`.
    pub fn http_address(&self) -> String {
        format!("{}:{}", self.worker_net_address.host, self.worker_net_address.http_server_port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alluxio_json_layout() {
        let id: WorkerId = "worker-587899dd-0d2b-4a8e-9f58-0a1b2c3d4e5f".parse().unwrap();
        let v = serde_json::to_value(WorkerRecord::new(id, "10.0.0.5", 28080, 0)).unwrap();
        assert_eq!(v["ServiceEntityName"], "worker-587899dd-0d2b-4a8e-9f58-0a1b2c3d4e5f");
        assert_eq!(v["Identity"]["identifier"], "587899dd0d2b4a8e9f580a1b2c3d4e5f");
        assert_eq!(v["Identity"]["version"], 1);
        assert_eq!(v["WorkerNetAddress"]["Host"], "10.0.0.5");
        assert_eq!(v["WorkerNetAddress"]["HttpServerPort"], 28080);
        assert_eq!(v["State"], "AUTHORIZED");
        assert_eq!(v["GenerationNumber"], -1);
        assert!(v["WorkerNetAddress"].get("S3Port").is_none());
        assert!(v["WorkerNetAddress"].get("Tls").is_none(), "absent when plain, as older releases wrote it");
        let tls = serde_json::to_value(WorkerRecord::new(id, "10.0.0.5", 28080, 0).with_tls(true)).unwrap();
        assert_eq!(tls["WorkerNetAddress"]["Tls"], true);
    }
}
