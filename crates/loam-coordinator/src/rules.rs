//! The path-rule service: TTL, priority and quota rules, kept in the cluster store.
//!
//! One [`RuleService`] per kind. Each rule is a [`StoredRule`] record at `store_keys::rule_key`, so
//! workers follow the rules with a watch and apply them locally (TTL scans, eviction priority, quota
//! admission); the coordinator keeps no copy, like the mount table, so a second process or a restart
//! always sees the stored truth. A kind can be disabled at start-up: then every call answers
//! `RuleError::Disabled` (`501`), and stored rules are left untouched for when it is enabled again.
//!
//! **Decision:** a rule's path must lie under a mount (`400 No mounted UFS found` otherwise), and is
//! normalised (`/data/x/` and `/data//x` are the same rule). Writes of one process are serialised by a
//! mutex so checks against the stored rules (nested quotas) are not interleaved with another write.

use bytes::Bytes;
use loam_core::ErrorKind;
use loam_core::path::{PathError, normalize_cluster_path};
use loam_core::rules::{PathRule, RuleKind, StoredRule};
use loam_core::store_keys::{rule_key, rules_prefix};
use loam_store::{ClusterStore, StoreError, list_all};
use loam_ufs::MountTable;
use std::marker::PhantomData;
use std::sync::Arc;

/// Why a rule operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// The kind is disabled in this coordinator's configuration.
    #[error("{0}")]
    Disabled(&'static str),
    /// `GET ?path=` with no rule at that path (the message is the kind's).
    #[error("{0}")]
    NotFound(String),
    /// `DELETE` of a path with no rule.
    #[error("no {kind} rule at path: {path}")]
    NoRuleAt {
        /// The rule kind.
        kind: &'static str,
        /// The normalised path.
        path: String,
    },
    /// The path lies under no mount.
    #[error("No mounted UFS found")]
    NoMount,
    /// A malformed path.
    #[error("{0}")]
    Path(#[from] PathError),
    /// A value the kind refuses (a zero TTL, a nested quota).
    #[error("{0}")]
    Invalid(String),
    /// The cluster store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A rule could not be encoded.
    #[error("cannot encode the rule: {0}")]
    Encode(String),
}

impl RuleError {
    /// The layer-independent kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RuleError::Disabled(_) => ErrorKind::NotImplemented,
            RuleError::NotFound(_) => ErrorKind::NotFound,
            RuleError::NoRuleAt { .. } | RuleError::NoMount | RuleError::Path(_) | RuleError::Invalid(_) => {
                ErrorKind::InvalidInput
            }
            RuleError::Store(e) => e.kind(),
            RuleError::Encode(_) => ErrorKind::Internal,
        }
    }
}

/// The rules of kind `T` in the cluster store.
pub struct RuleService<T> {
    store: Arc<dyn ClusterStore>,
    cluster: String,
    enabled: bool,
    write_lock: tokio::sync::Mutex<()>,
    kind: PhantomData<fn() -> T>,
}

impl<T: RuleKind> RuleService<T> {
    /// A service over `store`; when not `enabled` every call is refused with `Disabled`.
    pub fn new(store: Arc<dyn ClusterStore>, cluster: String, enabled: bool) -> Self {
        Self { store, cluster, enabled, write_lock: tokio::sync::Mutex::new(()), kind: PhantomData }
    }

    /// Whether the kind is enabled.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    fn check_enabled(&self) -> Result<(), RuleError> {
        if self.enabled { Ok(()) } else { Err(RuleError::Disabled(T::DISABLED)) }
    }

    /// Every rule, in path order.
    pub async fn list(&self) -> Result<Vec<PathRule<T>>, RuleError> {
        self.check_enabled()?;
        self.stored().await
    }

    async fn stored(&self) -> Result<Vec<PathRule<T>>, RuleError> {
        let kvs = list_all(self.store.as_ref(), &rules_prefix(&self.cluster, T::KIND)).await?;
        let mut rules: Vec<PathRule<T>> = kvs
            .iter()
            .filter_map(|kv| match StoredRule::<T>::decode(&kv.value) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!(key = %kv.key, "ignoring an unreadable {} rule: {e}", T::KIND);
                    None
                }
            })
            .collect();
        // Key order is not path order (`/a/b` sorts after `/a-b` as a key but the paths agree); sort by path.
        rules.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(rules)
    }

    /// The rule at exactly `path`.
    pub async fn get(&self, path: &str) -> Result<PathRule<T>, RuleError> {
        self.check_enabled()?;
        let p = normalize_cluster_path(path)?;
        let not_found = || RuleError::NotFound(format!("{}{p}", T::NOT_FOUND));
        let Some(kv) = self.store.get(&rule_key(&self.cluster, T::KIND, &p)).await? else {
            return Err(not_found());
        };
        StoredRule::<T>::decode(&kv.value).map_err(|e| {
            tracing::warn!(path = %p, "unreadable {} rule: {e}", T::KIND);
            not_found()
        })
    }

    /// Adds or replaces the rule at `path`, which must lie under a mount of `mounts`; `check` sees the
    /// other stored rules and may refuse the new one (nested quotas).
    pub async fn set(
        &self,
        mounts: &MountTable,
        path: &str,
        rule: T,
        check: impl FnOnce(&str, &[PathRule<T>]) -> Result<(), String>,
    ) -> Result<(), RuleError> {
        self.check_enabled()?;
        let p = normalize_cluster_path(path)?;
        rule.validate().map_err(RuleError::Invalid)?;
        if mounts.resolve_cluster_path(&p).is_err() {
            return Err(RuleError::NoMount);
        }
        let _guard = self.write_lock.lock().await;
        let others: Vec<PathRule<T>> = self.stored().await?.into_iter().filter(|r| r.path != p).collect();
        check(&p, &others).map_err(RuleError::Invalid)?;
        let value =
            serde_json::to_vec(&StoredRule::new(p.clone(), rule)).map_err(|e| RuleError::Encode(e.to_string()))?;
        self.store.put(&rule_key(&self.cluster, T::KIND, &p), Bytes::from(value), None).await?;
        tracing::info!(path = %p, "{} rule set", T::KIND);
        Ok(())
    }

    /// Removes the rule at `path`; `Ok(false)` when there was none.
    pub async fn remove(&self, path: &str) -> Result<bool, RuleError> {
        self.check_enabled()?;
        let p = normalize_cluster_path(path)?;
        let _guard = self.write_lock.lock().await;
        Ok(self.store.delete(&rule_key(&self.cluster, T::KIND, &p)).await?)
    }

    /// Removes the rule at `path`; `NoRuleAt` when there was none.
    pub async fn remove_existing(&self, path: &str) -> Result<(), RuleError> {
        if self.remove(path).await? {
            Ok(())
        } else {
            Err(RuleError::NoRuleAt { kind: T::KIND, path: normalize_cluster_path(path)? })
        }
    }
}
