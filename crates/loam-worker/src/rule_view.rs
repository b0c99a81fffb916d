//! The worker's copy of one kind of path rule (TTL, priority, quota), kept current from the cluster store
//! by a watch, like `mount_view`: the coordinator writes rules, every worker applies them locally, and
//! the data path and the background scans never ask the coordinator.
//!
//! Rules are keyed by cluster path; data is cached by UFS URI, so a lookup first resolves the URI through
//! the mount table ([`RuleView::lookup_ufs`]). A record of an unknown version is ignored with a warning
//! (a newer coordinator's rule must not be misread).

use crate::mount_view::MountView;
use futures::StreamExt;
use loam_core::path::PathRules;
use loam_core::rules::{RuleKind, StoredRule};
use loam_core::store_keys::rules_prefix;
use loam_store::{ClusterStore, StoreResult, WatchEvent, list_all};
use parking_lot::RwLock;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A shared, live view of the rules of kind `T`.
#[derive(Clone)]
pub struct RuleView<T> {
    rules: Arc<RwLock<PathRules<T>>>,
    /// Counts changes, so consumers that derive state from the rules (page priorities) can follow them.
    changes: Arc<watch::Sender<u64>>,
}

impl<T> Default for RuleView<T> {
    fn default() -> Self {
        Self { rules: Arc::new(RwLock::new(PathRules::new())), changes: Arc::new(watch::channel(0).0) }
    }
}

impl<T: RuleKind> RuleView<T> {
    /// A view of fixed rules (tests).
    pub fn fixed(rules: impl IntoIterator<Item = (String, T)>) -> Self {
        let view = Self::default();
        {
            let mut r = view.rules.write();
            for (path, rule) in rules {
                r.insert(path, rule);
            }
        }
        view
    }

    /// The most specific rule at or above the cluster path `path`.
    pub fn lookup(&self, path: &str) -> Option<T> {
        self.rules.read().lookup(path).map(|(_, r)| r.clone())
    }

    /// The most specific rule at or above the cluster path `path`, with the rule's own path.
    pub fn lookup_with_path(&self, path: &str) -> Option<(String, T)> {
        self.rules.read().lookup(path).map(|(p, r)| (p.to_string(), r.clone()))
    }

    /// The most specific rule above the data at UFS URI `uri`; `None` when no mount holds it.
    pub fn lookup_ufs(&self, mounts: &MountView, uri: &str) -> Option<T> {
        let resolved = mounts.resolve(uri).ok()?;
        self.lookup(&resolved.cluster_path)
    }

    /// A receiver that sees a new value after every change of the rules.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n += 1);
    }

    /// Whether there are no rules (a scan can skip its work).
    pub fn is_empty(&self) -> bool {
        self.rules.read().is_empty()
    }

    /// Every rule, in path order.
    pub fn snapshot(&self) -> Vec<(String, T)> {
        self.rules.read().iter().map(|(p, r)| (p.clone(), r.clone())).collect()
    }

    /// Loads the rules from the store and follows their changes until `shutdown` flips to true.
    pub async fn follow(
        store: Arc<dyn ClusterStore>,
        cluster: &str,
        mut shutdown: watch::Receiver<bool>,
    ) -> StoreResult<(Self, JoinHandle<()>)> {
        let prefix = rules_prefix(cluster, T::KIND);
        let view = Self::default();
        let rev = view.reload(store.as_ref(), &prefix).await?;
        let v = view.clone();
        let task = tokio::spawn(async move {
            let mut rev = rev;
            loop {
                tokio::select! {
                    _ = shutdown.changed() => return,
                    r = v.watch_once(store.as_ref(), &prefix, rev) => match r {
                        Ok(r) => rev = r,
                        Err(e) => {
                            tracing::warn!("{} rule watch ended: {e}; reloading", T::KIND);
                            tokio::select! {
                                _ = shutdown.changed() => return,
                                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                            }
                            if let Ok(r) = v.reload(store.as_ref(), &prefix).await {
                                rev = r;
                            }
                        }
                    },
                }
            }
        });
        Ok((view, task))
    }

    async fn reload(&self, store: &dyn ClusterStore, prefix: &str) -> StoreResult<i64> {
        let rev = store.revision().await?;
        let mut rules = PathRules::new();
        for kv in list_all(store, prefix).await? {
            if let Some(r) = decode::<T>(&kv.key, &kv.value) {
                rules.insert(r.path, r.rule);
            }
        }
        *self.rules.write() = rules;
        self.changed();
        Ok(rev)
    }

    async fn watch_once(&self, store: &dyn ClusterStore, prefix: &str, after: i64) -> StoreResult<i64> {
        let mut events = store.watch(prefix, after).await?;
        let mut rev = after;
        while let Some(ev) = events.next().await {
            match ev? {
                WatchEvent::Put(kv) => {
                    rev = kv.mod_revision;
                    if let Some(r) = decode::<T>(&kv.key, &kv.value) {
                        self.rules.write().insert(r.path, r.rule);
                        self.changed();
                    }
                }
                WatchEvent::Delete { key, revision } => {
                    rev = revision;
                    // The key is the prefix plus the path without its leading slash (`store_keys::rule_key`).
                    let path = format!("/{}", key.strip_prefix(prefix).unwrap_or(&key));
                    self.rules.write().remove(&path);
                    self.changed();
                }
            }
        }
        Ok(rev)
    }
}

fn decode<T: RuleKind>(key: &str, raw: &[u8]) -> Option<loam_core::rules::PathRule<T>> {
    match StoredRule::<T>::decode(raw) {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::warn!(%key, "ignoring a {} rule record: {e}", T::KIND);
            None
        }
    }
}
