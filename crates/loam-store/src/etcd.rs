//! The etcd cluster store: [`ClusterStore`] on an etcd v3 cluster (`etcd-client`), for a distributed
//! deployment where the coordinator, every worker and the CLI share one etcd.
//!
//! - Connecting does not talk to etcd: the client's channel connects lazily and reconnects by itself, so a
//!   process can start while etcd is down and recovers when etcd comes back. Every request instead carries
//!   [`EtcdOptions::request_timeout`], and a request to an unreachable etcd fails fast (refused connection)
//!   or at that timeout (no answer) with [`StoreError::Unavailable`], never hangs.
//! - The client is a handle on one shared channel, cloned per request (etcd-client's calls take `&mut`).
//!   The channel's worker runs on the Tokio runtime `connect` ran on: use the store on that runtime.
//! - Requests carry etcd's "require leader" flag, so a member cut off from its quorum refuses at once
//!   instead of stalling, and HTTP/2 keepalive pings detect a dead connection under a long-lived watch.
//! - Keys are etcd ranges (`keys`): a prefix is `[prefix, prefix_end)`; listing after a key starts at
//!   `key + "\0"`. Compare-and-set is one transaction; leases are etcd's own (etcd-client's keepalive is a
//!   bidirectional stream: [`ClusterStore::keep_alive`] opens one, renews once and closes it, because the
//!   caller (membership) runs its own loop). Watches (`watch`) map etcd's and end with an error when etcd
//!   cancels or the connection breaks: etcd-client does not resume them.
//! - Values are stored as given: the store adds no format of its own (callers version their values).
//! - TLS and an etcd user ([`EtcdSecurity`], in `security`): with either, connecting checks them at once,
//!   so a wrong password, an untrusted server or a refused client certificate fail the start.

mod convert;
mod election;
mod keys;
mod security;
mod watch;

pub use security::EtcdSecurity;

use crate::{
    CasOutcome, ClusterStore, Expect, KeyValue, LeaseId, ListPage, Revision, StoreError, StoreResult, WatchEvent,
};
use async_trait::async_trait;
use bytes::Bytes;
use convert::{header_revision, key_value, store_error};
use etcd_client::TxnOpResponse;
use etcd_client::{Client, Compare, CompareOp, ConnectOptions, DeleteOptions, GetOptions, PutOptions, Txn, TxnOp};
use futures::stream::BoxStream;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// How often an open connection is pinged to detect a dead etcd under a watch. etcd refuses pings more
/// often than every 5 s (its `--grpc-keepalive-min-time`) by closing the connection.
const KEEPALIVE_PING: Duration = Duration::from_secs(10);

/// How to reach etcd; the defaults suit production.
#[derive(Clone, Debug)]
pub struct EtcdOptions {
    /// How long opening a TCP connection to an endpoint may take.
    pub connect_timeout: Duration,
    /// How long any one request may take (including waiting for a connection) before it is `Unavailable`.
    pub request_timeout: Duration,
    /// TLS and the etcd user.
    pub security: EtcdSecurity,
}

impl Default for EtcdOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(5),
            security: EtcdSecurity::default(),
        }
    }
}

/// The etcd-backed [`ClusterStore`].
pub struct EtcdStore {
    client: Client,
    endpoints: Vec<String>,
    options: EtcdOptions,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore").field("endpoints", &self.endpoints).field("options", &self.options).finish()
    }
}

impl EtcdStore {
    /// A store on the etcd cluster at `endpoints` (`http://host:port`, `https://host:port` or `host:port`).
    /// Without TLS or a user it succeeds while etcd is down (requests then fail with `Unavailable` until it
    /// is back) and fails only on unusable endpoints. With TLS it makes one request, failing on a TLS
    /// error but not on an etcd that is down; with a user it authenticates, so etcd must be up.
    pub async fn connect(endpoints: Vec<String>, options: EtcdOptions) -> StoreResult<Arc<Self>> {
        if endpoints.is_empty() {
            return Err(StoreError::Other("no etcd endpoints given".into()));
        }
        let joined = endpoints.join(",");
        let connect = ConnectOptions::new()
            .with_connect_timeout(options.connect_timeout)
            .with_keep_alive(KEEPALIVE_PING, options.request_timeout)
            .with_require_leader(true);
        let connect = options.security.apply(&endpoints, connect)?;
        let user = options.security.user.clone();
        let client = tokio::time::timeout(options.request_timeout, Client::connect(&endpoints, Some(connect)))
            .await
            .map_err(|_| {
                StoreError::Unavailable(format!("etcd at {joined} did not answer within {:?}", options.request_timeout))
            })?
            .map_err(|e| match &user {
                // Authenticating needs etcd up: one that is down is unreachable, not a refusal.
                Some(_) if security::is_unreachable(&e) => {
                    StoreError::Unavailable(format!("etcd at {joined} is unreachable: {}", security::describe(&e)))
                }
                Some(user) => StoreError::Other(format!(
                    "cannot authenticate to etcd at {joined} as user {user}: {}{}",
                    security::describe(&e),
                    security::hint(&options.security, &endpoints)
                )),
                None => StoreError::Other(format!("cannot use etcd endpoints {joined}: {}", security::describe(&e))),
            })?;
        let store = Self { client, endpoints, options };
        if user.is_none() && store.options.security.tls_enabled(&store.endpoints) {
            store.probe().await?;
        }
        tracing::debug!(endpoints = %joined, "etcd store ready");
        Ok(Arc::new(store))
    }

    /// One request over TLS at start: a TLS failure is an error, an etcd that is down is not (the client
    /// reconnects by itself). etcd answers `Status` without a user, so this checks only the connection.
    async fn probe(&self) -> StoreResult<()> {
        let mut maintenance = self.client.maintenance_client();
        match tokio::time::timeout(self.options.request_timeout, maintenance.status()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) if !security::is_unreachable(&e) => Err(StoreError::Other(format!(
                "cannot use etcd at {} over TLS: {}{}",
                self.endpoints.join(","),
                security::describe(&e),
                security::hint(&self.options.security, &self.endpoints)
            ))),
            Ok(Err(e)) => {
                tracing::warn!(endpoints = %self.endpoints.join(","), error = %security::describe(&e), "etcd is not reachable yet; connecting when it is");
                Ok(())
            }
            Err(_) => Ok(()),
        }
    }

    /// The endpoints this store connects to.
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// Runs one request under the request timeout, mapping its error (`lease`: the lease it names).
    async fn request<T>(
        &self,
        lease: Option<LeaseId>,
        call: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> StoreResult<T> {
        let timeout = self.options.request_timeout;
        match tokio::time::timeout(timeout, call).await {
            Ok(result) => result.map_err(|e| store_error(e, lease, None)),
            Err(_) => Err(StoreError::Unavailable(format!("etcd did not answer within {timeout:?}"))),
        }
    }

    fn kv(&self) -> etcd_client::KvClient {
        self.client.kv_client()
    }

    fn lease_client(&self) -> etcd_client::LeaseClient {
        self.client.lease_client()
    }
}

/// The options of a put on `lease` (none: the key leaves any lease it had).
fn put_options(lease: Option<LeaseId>) -> PutOptions {
    match lease {
        Some(lease) => PutOptions::new().with_lease(lease),
        None => PutOptions::new(),
    }
}

/// A TTL in whole seconds, rounded up (etcd's unit), at least 1.
fn ttl_secs(ttl: Duration) -> i64 {
    let secs = ttl.as_secs().saturating_add(u64::from(ttl.subsec_nanos() > 0)).max(1);
    i64::try_from(secs).unwrap_or(i64::MAX)
}

#[async_trait]
impl ClusterStore for EtcdStore {
    async fn get(&self, key: &str) -> StoreResult<Option<KeyValue>> {
        let resp = self.request(None, self.kv().get(key, None)).await?;
        resp.kvs().first().map(key_value).transpose()
    }

    async fn put(&self, key: &str, value: Bytes, lease: Option<LeaseId>) -> StoreResult<Revision> {
        let resp = self.request(lease, self.kv().put(key, value.to_vec(), Some(put_options(lease)))).await?;
        header_revision(resp.header())
    }

    async fn delete(&self, key: &str) -> StoreResult<bool> {
        let resp = self.request(None, self.kv().delete(key, None)).await?;
        Ok(resp.deleted() > 0)
    }

    async fn delete_prefix(&self, prefix: &str) -> StoreResult<u64> {
        let options = DeleteOptions::new().with_range(keys::prefix_end(prefix.as_bytes()));
        let resp = self.request(None, self.kv().delete(prefix, Some(options))).await?;
        Ok(u64::try_from(resp.deleted()).unwrap_or(0))
    }

    async fn list(&self, prefix: &str, start_after: Option<&str>, limit: usize) -> StoreResult<ListPage> {
        let start = keys::list_start(prefix, start_after);
        let end = keys::prefix_end(prefix.as_bytes());
        if keys::range_is_empty(&start, &end) {
            return Ok(ListPage::default());
        }
        let options = GetOptions::new().with_range(end).with_limit(i64::try_from(limit).unwrap_or(i64::MAX));
        let resp = self.request(None, self.kv().get(start, Some(options))).await?;
        let kvs = resp.kvs().iter().map(key_value).collect::<StoreResult<Vec<_>>>()?;
        Ok(ListPage { kvs, more: resp.more() })
    }

    async fn compare_and_set(
        &self,
        key: &str,
        expect: Expect,
        value: Bytes,
        lease: Option<LeaseId>,
    ) -> StoreResult<CasOutcome> {
        let compares = match expect {
            Expect::Absent => vec![Compare::version(key, CompareOp::Equal, 0)],
            // A missing key has mod_revision 0, so `ModRevision(0)` would match it without the version check.
            Expect::ModRevision(rev) => {
                vec![Compare::mod_revision(key, CompareOp::Equal, rev), Compare::version(key, CompareOp::Greater, 0)]
            }
        };
        let txn = Txn::new()
            .when(compares)
            .and_then(vec![TxnOp::put(key, value.to_vec(), Some(put_options(lease)))])
            .or_else(vec![TxnOp::get(key, None)]);
        let resp = self.request(lease, self.kv().txn(txn)).await?;
        if resp.succeeded() {
            return Ok(CasOutcome::Written(header_revision(resp.header())?));
        }
        let current = match resp.op_responses().first() {
            Some(TxnOpResponse::Get(get)) => get.kvs().first().map(key_value).transpose()?,
            other => return Err(StoreError::Other(format!("etcd answered a failed compare with {other:?}"))),
        };
        Ok(CasOutcome::Conflict(current))
    }

    async fn grant_lease(&self, ttl: Duration) -> StoreResult<LeaseId> {
        let resp = self.request(None, self.lease_client().grant(ttl_secs(ttl), None)).await?;
        if !resp.error().is_empty() {
            return Err(StoreError::Other(format!("etcd refused a lease: {}", resp.error())));
        }
        Ok(resp.id())
    }

    async fn keep_alive(&self, lease: LeaseId) -> StoreResult<()> {
        // etcd-client's keep_alive sends the first renewal and reads its answer before returning (a TTL of 0,
        // a lease that is gone, is its "lease not found" error); dropping the keeper closes the stream.
        let mut client = self.lease_client();
        self.request(Some(lease), async move { client.keep_alive(lease).await.map(drop) }).await
    }

    async fn revoke_lease(&self, lease: LeaseId) -> StoreResult<()> {
        self.request(Some(lease), self.lease_client().revoke(lease)).await.map(drop)
    }

    async fn watch(&self, prefix: &str, after: Revision) -> StoreResult<BoxStream<'static, StoreResult<WatchEvent>>> {
        let end = keys::prefix_end(prefix.as_bytes());
        watch::open(&self.client, prefix.as_bytes().to_vec(), end, after, self.options.request_timeout).await
    }

    async fn revision(&self) -> StoreResult<Revision> {
        // Any read's header carries the store revision; counting one key reads nothing. The key is "/", inside
        // the prefix every key of the store is under, so an etcd user granted that prefix may read it.
        let resp = self.request(None, self.kv().get("/", Some(GetOptions::new().with_count_only()))).await?;
        header_revision(resp.header())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_round_up_to_whole_seconds() {
        assert_eq!(ttl_secs(Duration::from_secs(15)), 15);
        assert_eq!(ttl_secs(Duration::from_millis(1500)), 2);
        assert_eq!(ttl_secs(Duration::from_millis(1)), 1);
        assert_eq!(ttl_secs(Duration::ZERO), 1, "etcd has no zero TTL");
    }
}
