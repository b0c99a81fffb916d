//! [`Election`] on etcd: etcd's election service (`campaign`, `leader`, `resign`) and fenced writes as
//! one transaction guarded by the leader key's create revision (see `crate::election`).

use super::EtcdStore;
use super::convert::store_error;
use crate::election::{Election, Fenced, Term, value_text};
use crate::{LeaseId, StoreError, StoreResult};
use async_trait::async_trait;
use bytes::Bytes;
use etcd_client::{Compare, CompareOp, DeleteOptions, LeaderKey, ResignOptions, Txn, TxnOp};

/// gRPC `NotFound`, which some etcd releases answer when nobody leads.
const NOT_FOUND: i32 = 5;
/// etcd's message when nobody leads.
const NO_LEADER: &str = "election: no leader";

impl EtcdStore {
    async fn fenced(&self, term: &Term, op: TxnOp) -> StoreResult<Fenced> {
        let guard = Compare::create_revision(term.key.as_str(), CompareOp::Equal, term.revision);
        let txn = Txn::new().when(vec![guard]).and_then(vec![op]);
        let resp = self.request(None, self.kv().txn(txn)).await?;
        Ok(if resp.succeeded() { Fenced::Done } else { Fenced::Deposed })
    }
}

#[async_trait]
impl Election for EtcdStore {
    async fn campaign(&self, name: &str, value: &str, lease: LeaseId) -> StoreResult<Term> {
        // No request timeout: campaigning waits, by design, for as long as another candidate leads.
        let mut client = self.client.election_client();
        let resp = client.campaign(name, value, lease).await.map_err(|e| store_error(e, Some(lease), None))?;
        let key = resp.leader().ok_or_else(|| StoreError::Other("etcd's campaign answer names no leader".into()))?;
        let text = key.key_str().map_err(|_| StoreError::Corrupt("the leader key is not UTF-8".into()))?;
        Ok(Term { name: name.to_string(), key: text.to_string(), revision: key.rev(), lease: key.lease() })
    }

    async fn leader(&self, name: &str) -> StoreResult<Option<String>> {
        let mut client = self.client.election_client();
        let timeout = self.options.request_timeout;
        match tokio::time::timeout(timeout, client.leader(name)).await {
            Err(_) => Err(StoreError::Unavailable(format!("etcd did not answer within {timeout:?}"))),
            // etcd answers "election: no leader" with code Unknown (older releases: NotFound).
            Ok(Err(etcd_client::Error::GRpcStatus(s)))
                if i32::from(s.code()) == NOT_FOUND || s.message().contains(NO_LEADER) =>
            {
                Ok(None)
            }
            Ok(Err(e)) => Err(store_error(e, None, None)),
            Ok(Ok(resp)) => resp.kv().map(|kv| value_text(kv.value())).transpose(),
        }
    }

    async fn resign(&self, term: &Term) -> StoreResult<()> {
        let key = LeaderKey::new().with_name(term.name.as_str()).with_key(term.key.as_str());
        let key = key.with_rev(term.revision).with_lease(term.lease);
        let mut client = self.client.election_client();
        self.request(None, client.resign(Some(ResignOptions::new().with_leader(key)))).await.map(drop)
    }

    async fn put_fenced(&self, term: &Term, key: &str, value: Bytes) -> StoreResult<Fenced> {
        self.fenced(term, TxnOp::put(key, value.to_vec(), None)).await
    }

    async fn delete_fenced(&self, term: &Term, key: &str) -> StoreResult<Fenced> {
        self.fenced(term, TxnOp::delete(key, None)).await
    }

    async fn delete_prefix_fenced(&self, term: &Term, prefix: &str) -> StoreResult<Fenced> {
        self.fenced(term, TxnOp::delete(prefix, Some(DeleteOptions::new().with_prefix()))).await
    }
}
