//! The worker's copy of one kind of path rule (TTL, priority, quota), kept current from the cluster store
//! by a watch, like `cluster::mount_view`: the coordinator writes rules, every worker applies them
//! locally, and the data path and the background scans never ask the coordinator.
//!
//! Rules are keyed by cluster path; data is cached by UFS URI, so a lookup first resolves the URI through
//! the mount table ([`RuleView::lookup_ufs`]). A record of an unknown version is ignored with a warning
//! (a newer coordinator's rule must not be misread).

use crate::cluster::mount_view::MountView;
use loam_core::path::PathRules;
use loam_core::rules::{RuleKind, StoredRule};
use loam_core::store_keys::rules_prefix;
use loam_store::follow::{PrefixView, follow_prefix};
use loam_store::{ClusterStore, KeyValue, StoreResult, WatchEvent};
use parking_lot::RwLock;
use std::sync::Arc;
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
        shutdown: watch::Receiver<bool>,
    ) -> StoreResult<(Self, JoinHandle<()>)> {
        let prefix = rules_prefix(cluster, T::KIND);
        let view = Self::default();
        let follower = Arc::new(RuleFollower { view: view.clone(), prefix: prefix.clone() });
        let task = follow_prefix(store, prefix, follower, shutdown).await?;
        Ok((view, task))
    }
}

/// Applies the store's rule records to a [`RuleView`].
struct RuleFollower<T> {
    view: RuleView<T>,
    prefix: String,
}

impl<T: RuleKind> PrefixView for RuleFollower<T> {
    fn reset(&self, kvs: Vec<KeyValue>) {
        let mut rules = PathRules::new();
        for kv in kvs {
            if let Some(r) = decode::<T>(&kv.key, &kv.value) {
                rules.insert(r.path, r.rule);
            }
        }
        *self.view.rules.write() = rules;
        self.view.changed();
    }

    fn apply(&self, event: WatchEvent) {
        match event {
            WatchEvent::Put(kv) => {
                if let Some(r) = decode::<T>(&kv.key, &kv.value) {
                    self.view.rules.write().insert(r.path, r.rule);
                    self.view.changed();
                }
            }
            WatchEvent::Delete { key, .. } => {
                // The key is the prefix plus the path without its leading slash (`store_keys::rule_key`).
                let path = format!("/{}", key.strip_prefix(&self.prefix).unwrap_or(&key));
                self.view.rules.write().remove(&path);
                self.view.changed();
            }
        }
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
