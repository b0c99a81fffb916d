//! A small per-worker map of object metadata (`loam_ufs::ObjectMetadata`) by UFS URI, each entry for one
//! version tag (`loam_core::version`), so that a GET of a cached object does not ask the UFS for its
//! metadata every time: the page store's file record keeps the bytes' version only.
//!
//! An entry answers only for the tag it was stored with (a file rewritten behind the cache's back has
//! another tag); the write-through layer also drops the entries of whatever it invalidates, on every
//! worker, because a metadata-only rewrite (a CopyObject onto itself with `REPLACE`) keeps the bytes, and on
//! S3 their ETag, the tag. It holds at most [`CAPACITY`] entries; when full it is emptied (a miss costs one
//! UFS stat), which needs no bookkeeping per read.
//!
//! A worker that does not own an object keeps the owner's whole answer about it (`crate::non_owner::meta`:
//! which version, its length and metadata) in a second map of the same bounds, each entry until the time
//! the owner gave (when its own trust in its record ends); [`MetaCache::forget`] drops those too.

use crate::s3_api::reading::ObjectMeta;
use loam_ufs::ObjectMetadata;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// Most entries kept.
pub const CAPACITY: usize = 16 * 1024;

/// Metadata by URI, for one version tag each.
#[derive(Default)]
pub struct MetaCache {
    entries: Mutex<HashMap<String, (String, Arc<ObjectMetadata>)>>,
    /// The owners' answers, on a worker that forwards reads: by URI, with the time they expire.
    owners: Mutex<HashMap<String, (ObjectMeta, Instant)>>,
}

impl MetaCache {
    /// The metadata of version `tag` of `uri`, if known.
    pub fn get(&self, uri: &str, tag: &str) -> Option<Arc<ObjectMetadata>> {
        self.entries.lock().get(uri).filter(|(t, _)| t == tag).map(|(_, m)| m.clone())
    }

    /// Remembers the metadata of version `tag` of `uri`.
    pub fn put(&self, uri: &str, tag: &str, meta: Arc<ObjectMetadata>) {
        let mut entries = self.entries.lock();
        if entries.len() >= CAPACITY && !entries.contains_key(uri) {
            entries.clear();
        }
        entries.insert(uri.to_string(), (tag.to_string(), meta));
    }

    /// The owner's answer about `uri`, while it has not expired.
    pub fn owner_answer(&self, uri: &str) -> Option<ObjectMeta> {
        let now = Instant::now();
        self.owners.lock().get(uri).filter(|(_, until)| *until > now).map(|(m, _)| m.clone())
    }

    /// Remembers the owner's answer about `uri` until `until`.
    pub fn put_owner_answer(&self, uri: &str, meta: ObjectMeta, until: Instant) {
        let mut owners = self.owners.lock();
        if owners.len() >= CAPACITY && !owners.contains_key(uri) {
            owners.clear();
        }
        owners.insert(uri.to_string(), (meta, until));
    }

    /// Forgets `uris` and everything under the directories `prefixes` (no trailing slash), in both maps.
    pub fn forget(&self, uris: &[String], prefixes: &[String]) {
        forget_in(&mut self.entries.lock(), uris, prefixes);
        forget_in(&mut self.owners.lock(), uris, prefixes);
    }
}

fn forget_in<V>(entries: &mut HashMap<String, V>, uris: &[String], prefixes: &[String]) {
    for u in uris {
        entries.remove(u);
    }
    if !prefixes.is_empty() {
        let dirs: Vec<String> = prefixes.iter().map(|p| format!("{}/", p.trim_end_matches('/'))).collect();
        entries.retain(|u, _| !dirs.iter().any(|d| u.starts_with(d.as_str())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_answer_for_their_tag_and_go_when_forgotten() {
        let c = MetaCache::default();
        let m = Arc::new(ObjectMetadata { content_type: Some("text/plain".into()), ..Default::default() });
        c.put("s3://b/d/x", "t1", m.clone());
        assert_eq!(c.get("s3://b/d/x", "t1"), Some(m.clone()));
        assert_eq!(c.get("s3://b/d/x", "t2"), None, "another version");
        c.forget(&[], &["s3://b/d".into()]);
        assert_eq!(c.get("s3://b/d/x", "t1"), None);
        c.put("s3://b/y", "t", m);
        c.forget(&["s3://b/y".into()], &[]);
        assert_eq!(c.get("s3://b/y", "t"), None);
    }

    #[test]
    fn owner_answers_expire_and_go_when_forgotten() {
        let c = MetaCache::default();
        let later = Instant::now() + std::time::Duration::from_secs(3600);
        c.put_owner_answer("s3://b/d/x", ObjectMeta::new(3, Some("e"), None), later);
        assert_eq!(c.owner_answer("s3://b/d/x").map(|m| m.length), Some(3));
        c.forget(&[], &["s3://b/d".into()]);
        assert_eq!(c.owner_answer("s3://b/d/x"), None, "a write under the directory drops it");
        c.put_owner_answer("s3://b/y", ObjectMeta::new(1, Some("e"), None), Instant::now());
        assert_eq!(c.owner_answer("s3://b/y"), None, "expired");
    }
}
