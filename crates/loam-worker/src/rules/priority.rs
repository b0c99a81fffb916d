//! Priority eviction on a worker: the page store's file priorities follow the priority rules.
//!
//! The page store asks a [`PrioritySource`] for the level of each file it caches; this module builds that
//! source from the rule view (UFS URI -> cluster path -> most specific rule, `medium` under none) and runs
//! a task that calls `PageStore::reprioritize` after every rule change, so already cached data moves to
//! its new level too. The eviction order itself lives in the page store (`loam-page-store`, `lru.rs`).
//!
//! **Decision:** a rule change re-levels cached files right away (keeping their recency); it does not
//! evict anything by itself, eviction still happens only when room is needed.

use crate::cluster::mount_view::MountView;
use crate::rules::rule_view::RuleView;
use loam_core::rules::PriorityRule;
use loam_page_store::{PageStore, PrioritySource};
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The priority of the data at a UFS URI under `rules`.
pub fn source(rules: RuleView<PriorityRule>, mounts: MountView) -> PrioritySource {
    Arc::new(move |uri: &str| rules.lookup_ufs(&mounts, uri).map(|r| r.priority).unwrap_or_default())
}

/// Makes `pages` take priorities from `rules` and re-levels cached files after every rule change, until
/// `shutdown` flips to true (or its sender is dropped).
pub fn follow(
    pages: Arc<PageStore>,
    rules: RuleView<PriorityRule>,
    mounts: MountView,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let mut changes = rules.subscribe();
    pages.set_priority_source(source(rules, mounts));
    // Files restored from disk at start-up are `medium` until the first pass.
    pages.reprioritize();
    tokio::spawn(async move {
        loop {
            let stopping = *shutdown.borrow();
            if stopping {
                return;
            }
            tokio::select! {
                r = shutdown.changed() => {
                    if r.is_err() {
                        return;
                    }
                }
                r = changes.changed() => {
                    if r.is_err() {
                        return;
                    }
                    let moved = pages.reprioritize();
                    tracing::debug!(moved, "priority rules changed; cached files re-levelled");
                }
            }
        }
    })
}
