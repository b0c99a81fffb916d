//! ListObjectsV2 (and V1) over a UFS listing.
//!
//! - **What is listed.** The directory that holds the prefix (`a/b/` for prefix `a/b/fi`): one level deep
//!   when the delimiter is `/` (sub-directories become common prefixes), the whole tree otherwise, with
//!   keys grouped at the first delimiter after the prefix for any other delimiter. Empty directories of a
//!   file system list as common prefixes with `/`; S3 has no empty directories.
//! - **Order and pages.** S3 lists in UTF-8 byte order, and a page continues after the last name of the
//!   previous one; a file system lists in no order. So the listing is streamed and only the first
//!   `max-keys + 1` names after the marker are kept (in a `BTreeMap`, O(max-keys) memory whatever the
//!   listing's size). A recursive S3 listing arrives in order already, so it stops once a page is full.
//!   Each page lists the UFS from the start of the directory: the `Ufs` trait has no start-after.
//! - **Tokens.** A continuation token is the hex of the last name returned (a key or common prefix):
//!   opaque to clients, and enough to continue without server-side state.
//! - **`encoding-type=url`** (boto3 asks for it on every listing) percent-encodes names in the answer,
//!   everything but unreserved characters and `/`, in the elements S3 encodes (and the SDKs decode):
//!   keys and common prefixes, and `Delimiter`, `Prefix` and `StartAfter` in V2 but `Delimiter`,
//!   `Marker` and `NextMarker` in V1, whose `Prefix` S3 returns as sent. Without it nothing is encoded.
//! - **An empty delimiter is none**: no grouping, and no `Delimiter` in the answer, as on S3.
//! - **Owners**: V1 lists each object's owner, V2 only with `fetch-owner=true` (`buckets::owner`).

use crate::error::WorkerResult;
use crate::http_api::WorkerState;
use crate::s3_api::buckets;
use crate::s3_api::objects::meta_of;
use futures::StreamExt;
use loam_core::path::UfsUri;
use loam_ufs::{ListOptions, Mount, UfsStatus};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use s3s::dto::*;
use s3s::{S3Result, s3_error};
use std::collections::BTreeMap;

/// Most keys a page holds (S3's limit too).
pub const MAX_KEYS: i32 = 1000;

/// What `encoding-type=url` escapes.
const URL_ENCODED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/');

/// One page of a listing.
#[derive(Debug, Default, PartialEq)]
pub struct Page {
    /// Objects, by key.
    pub objects: Vec<(String, UfsStatus)>,
    /// Common prefixes.
    pub prefixes: Vec<String>,
    /// Whether names follow the last one.
    pub truncated: bool,
    /// The last name of the page (object key or prefix), where the next page continues.
    pub last: Option<String>,
}

/// What to list.
#[derive(Clone, Copy, Debug)]
pub struct Query<'a> {
    /// Only keys that start with this.
    pub prefix: &'a str,
    /// Group keys at the first delimiter after the prefix.
    pub delimiter: Option<&'a str>,
    /// Only names after this one.
    pub after: Option<&'a str>,
    /// At most this many names.
    pub max: usize,
}

/// One page of the listing of `mount` that `q` asks for.
pub async fn page(state: &WorkerState, mount: &Mount, q: Query<'_>) -> WorkerResult<Page> {
    if q.max == 0 {
        return Ok(Page::default());
    }
    let root = mount.ufs_uri();
    let (_, ufs) = state.rt.resolve(&mount.path)?;
    let dir = &q.prefix[..q.prefix.rfind('/').map_or(0, |i| i + 1)];
    let recursive = q.delimiter != Some("/");
    let sorted = recursive && root.scheme == "s3";
    let mut listing =
        ufs.list(&root.join(dir.trim_end_matches('/')).as_string(), ListOptions { recursive, page_size: None });
    let mut found: BTreeMap<String, Option<UfsStatus>> = BTreeMap::new();
    while let Some(st) = listing.next().await {
        let st = st?;
        let Some((name, entry)) = entry_of(&root, q, st) else { continue };
        if q.after.is_some_and(|a| name.as_str() <= a) {
            continue;
        }
        if sorted && found.len() > q.max && found.last_key_value().is_some_and(|(last, _)| name > *last) {
            break; // in order: nothing after this can be among the first max + 1
        }
        found.insert(name, entry);
        if found.len() > q.max + 1 {
            found.pop_last();
        }
    }
    let truncated = found.len() > q.max;
    if truncated {
        found.pop_last();
    }
    let last = found.last_key_value().map(|(k, _)| k.clone());
    let mut page = Page { truncated, last, ..Page::default() };
    for (name, entry) in found {
        match entry {
            Some(st) => page.objects.push((name, st)),
            None => page.prefixes.push(name),
        }
    }
    Ok(page)
}

/// Whether bucket `bucket` holds no object and no folder (DeleteBucket's question).
pub async fn is_empty(state: &WorkerState, bucket: &str) -> S3Result<bool> {
    let mount = buckets::mount_of(state, bucket)?;
    let q = Query { prefix: "", delimiter: Some("/"), after: None, max: 1 };
    let page = page(state, &mount, q).await?;
    Ok(page.objects.is_empty() && page.prefixes.is_empty())
}

/// The name a listed entry shows as: its key (`Some(status)`), or the common prefix it falls under
/// (`None`); nothing when it is outside the prefix.
fn entry_of(root: &UfsUri, q: Query<'_>, st: UfsStatus) -> Option<(String, Option<UfsStatus>)> {
    let rel = UfsUri::parse(&st.uri).ok()?.strip_prefix(root)?;
    let key = if st.is_dir { format!("{rel}/") } else { rel };
    let rest = key.strip_prefix(q.prefix)?;
    match q.delimiter.filter(|d| !d.is_empty()).and_then(|d| rest.find(d).map(|i| i + d.len())) {
        Some(cut) => Some((key[..q.prefix.len() + cut].to_string(), None)),
        // A directory not cut by the delimiter would be a folder listed as an object; S3 lists none.
        None if st.is_dir => None,
        None => Some((key, Some(st))),
    }
}

/// ListObjectsV2.
pub async fn list_v2(state: &WorkerState, input: ListObjectsV2Input) -> S3Result<ListObjectsV2Output> {
    let mount = buckets::mount_of(state, &input.bucket)?;
    let token = input.continuation_token.as_deref().map(decode_token).transpose()?;
    let after = token.as_deref().or(input.start_after.as_deref());
    let max_keys = input.max_keys.unwrap_or(MAX_KEYS).clamp(0, MAX_KEYS);
    let prefix = input.prefix.clone().unwrap_or_default();
    let delimiter = input.delimiter.filter(|d| !d.is_empty());
    let q = Query { prefix: &prefix, delimiter: delimiter.as_deref(), after, max: max_keys as usize };
    let page = page(state, &mount, q).await?;
    let enc = Encoder::new(input.encoding_type.as_ref());
    let key_count = (page.objects.len() + page.prefixes.len()) as i32;
    let next = page.truncated.then(|| page.last.as_deref().map(hex::encode)).flatten();
    let owner = input.fetch_owner.unwrap_or(false).then(buckets::owner);
    Ok(ListObjectsV2Output {
        name: Some(input.bucket),
        prefix: Some(enc.apply(&prefix)),
        delimiter: delimiter.as_deref().map(|d| enc.apply(d)),
        start_after: input.start_after.as_deref().map(|s| enc.apply(s)),
        max_keys: Some(max_keys),
        key_count: Some(key_count),
        continuation_token: input.continuation_token,
        next_continuation_token: next,
        is_truncated: Some(page.truncated),
        contents: Some(objects(&page, &enc, owner)),
        common_prefixes: Some(prefixes(&page, &enc)),
        encoding_type: input.encoding_type,
        ..Default::default()
    })
}

/// ListObjects (V1): the same pages, continued by `marker` (the last name returned).
pub async fn list_v1(state: &WorkerState, input: ListObjectsInput) -> S3Result<ListObjectsOutput> {
    let mount = buckets::mount_of(state, &input.bucket)?;
    let max_keys = input.max_keys.unwrap_or(MAX_KEYS).clamp(0, MAX_KEYS);
    let prefix = input.prefix.clone().unwrap_or_default();
    let delimiter = input.delimiter.filter(|d| !d.is_empty());
    let q = Query {
        prefix: &prefix,
        delimiter: delimiter.as_deref(),
        after: input.marker.as_deref(),
        max: max_keys as usize,
    };
    let page = page(state, &mount, q).await?;
    let enc = Encoder::new(input.encoding_type.as_ref());
    let next_marker = if page.truncated { page.last.as_deref().map(|m| enc.apply(m)) } else { None };
    Ok(ListObjectsOutput {
        name: Some(input.bucket),
        // Not encoded, even with encoding-type=url: S3 returns V1's prefix as sent (botocore relies on it).
        prefix: Some(prefix),
        delimiter: delimiter.as_deref().map(|d| enc.apply(d)),
        marker: Some(input.marker.as_deref().map(|m| enc.apply(m)).unwrap_or_default()),
        max_keys: Some(max_keys),
        is_truncated: Some(page.truncated),
        next_marker,
        contents: Some(objects(&page, &enc, Some(buckets::owner()))),
        common_prefixes: Some(prefixes(&page, &enc)),
        encoding_type: input.encoding_type,
        ..Default::default()
    })
}

fn objects(page: &Page, enc: &Encoder, owner: Option<Owner>) -> Vec<Object> {
    page.objects
        .iter()
        .map(|(key, st)| {
            let meta = meta_of(st);
            Object {
                key: Some(enc.apply(key)),
                size: Some(i64::try_from(st.length).unwrap_or(i64::MAX)),
                e_tag: Some(ETag::Strong(meta.etag)),
                last_modified: meta.modified.map(Timestamp::from),
                storage_class: Some(ObjectStorageClass::from_static(ObjectStorageClass::STANDARD)),
                owner: owner.clone(),
                ..Default::default()
            }
        })
        .collect()
}

fn prefixes(page: &Page, enc: &Encoder) -> Vec<CommonPrefix> {
    page.prefixes.iter().map(|p| CommonPrefix { prefix: Some(enc.apply(p)) }).collect()
}

/// The name a continuation token stands for.
fn decode_token(token: &str) -> S3Result<String> {
    hex::decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| s3_error!(InvalidArgument, "The continuation token provided is incorrect"))
}

/// Applies `encoding-type` to names in an answer.
struct Encoder {
    url: bool,
}

impl Encoder {
    fn new(encoding: Option<&EncodingType>) -> Self {
        Self { url: encoding.is_some_and(|e| e.as_str() == EncodingType::URL) }
    }

    fn apply(&self, s: &str) -> String {
        if self.url { utf8_percent_encode(s, URL_ENCODED).to_string() } else { s.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(uri: &str, is_dir: bool) -> UfsStatus {
        UfsStatus { uri: uri.into(), is_dir, length: 1, etag: None, modified: None, meta: None }
    }

    #[test]
    fn entries_are_keys_or_the_prefix_they_fall_under() {
        let root = UfsUri::parse("s3://b/root").unwrap();
        let q = Query { prefix: "a/", delimiter: Some("/"), after: None, max: 10 };
        let name = |st| entry_of(&root, q, st).map(|(n, e)| (n, e.is_some()));
        assert_eq!(name(status("s3://b/root/a/f", false)), Some(("a/f".into(), true)));
        assert_eq!(name(status("s3://b/root/a/d", true)), Some(("a/d/".into(), false)));
        assert_eq!(name(status("s3://b/root/a/d/f", false)), Some(("a/d/".into(), false)));
        assert_eq!(name(status("s3://b/root/b/f", false)), None, "outside the prefix");
        assert_eq!(name(status("s3://other/a/f", false)), None, "outside the mount");
        let q = Query { prefix: "a", delimiter: Some("-"), after: None, max: 10 };
        assert_eq!(entry_of(&root, q, status("s3://b/root/ab-c/d", false)).unwrap().0, "ab-");
        let q = Query { prefix: "", delimiter: None, after: None, max: 10 };
        assert_eq!(entry_of(&root, q, status("s3://b/root/a/b/c", false)).unwrap().0, "a/b/c");
        assert!(entry_of(&root, q, status("s3://b/root/a/b", true)).is_none(), "no folders as objects");
    }

    #[test]
    fn tokens_round_trip_and_bad_ones_are_refused() {
        assert_eq!(decode_token(&hex::encode("a/ü b")).unwrap(), "a/ü b");
        assert_eq!(decode_token("zz").unwrap_err().code(), &s3s::S3ErrorCode::InvalidArgument);
    }

    #[test]
    fn url_encoding_keeps_slashes_and_unreserved_characters() {
        let enc = Encoder { url: true };
        assert_eq!(enc.apply("a/b c+d%e~f_g-h.i"), "a/b%20c%2Bd%25e~f_g-h.i");
        assert_eq!(Encoder { url: false }.apply("a b"), "a b");
    }
}
