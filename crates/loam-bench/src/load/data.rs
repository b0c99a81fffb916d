//! The load benchmark's data sets in the S3 bucket, and the baseline that copies them: a plain parallel
//! reader over the same client library Loam uses ([`OpendalUfs`], OpenDAL's S3 service).
//!
//! The baseline does what a copy tool does and what the job must do too: it lists the prefix and reads
//! every object, `concurrency` requests in flight, discarding the bytes. Objects larger than
//! `range_size` are read in ranges of that size (the worker's UFS read size), so both sides send the
//! server the same requests and large objects are spread over many connections.

use futures::{StreamExt, TryStreamExt};
use loam_ufs::{ListOptions, OpendalUfs, Ufs};
use std::time::{Duration, Instant};

/// One data set: `count` objects of `size` bytes under `prefix/` of the bucket.
#[derive(Clone, Debug)]
pub struct DataSet {
    /// Its name in the report (`small`, `large`).
    pub name: &'static str,
    /// Key prefix in the bucket, without slashes.
    pub prefix: &'static str,
    /// Objects.
    pub count: u64,
    /// Bytes per object.
    pub size: u64,
}

impl DataSet {
    /// Bytes of all objects.
    pub fn bytes(&self) -> u64 {
        self.count * self.size
    }

    /// The full URI of object `i` under `root` (`s3://bucket`).
    fn uri(&self, root: &str, i: u64) -> String {
        format!("{root}/{}/f{i:06}", self.prefix)
    }
}

/// `len` pseudo-random bytes, distinct per `seed` (incompressible, so no layer can shortcut them).
fn content(seed: u64, len: u64) -> bytes::Bytes {
    let mut out = Vec::with_capacity(len as usize);
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    while (out.len() as u64) < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let take = (len as usize - out.len()).min(8);
        out.extend_from_slice(&x.to_le_bytes()[..take]);
    }
    out.into()
}

/// Uploads the data set, `parallel` objects at a time; the time it took.
pub async fn upload(ufs: &OpendalUfs, root: &str, set: &DataSet, parallel: usize) -> anyhow::Result<Duration> {
    let t0 = Instant::now();
    futures::stream::iter(0..set.count)
        .map(|i| async move {
            let (uri, size, seed) = (set.uri(root, i), set.size, i + set.size);
            // Generating 1 GiB takes a while: off the async threads.
            let data = tokio::task::spawn_blocking(move || content(seed, size)).await?;
            ufs.write(&uri, data).await.map_err(|e| anyhow::anyhow!("uploading {uri}: {e}"))
        })
        .buffer_unordered(parallel)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(t0.elapsed())
}

/// What one copy read.
#[derive(Clone, Copy, Debug, Default)]
pub struct Copied {
    /// Objects read.
    pub files: u64,
    /// Bytes read.
    pub bytes: u64,
}

/// The baseline: lists `root/prefix/` and reads every object (in `range_size` ranges), `concurrency`
/// reads in flight, discarding the bytes.
pub async fn copy(
    ufs: &OpendalUfs,
    root: &str,
    set: &DataSet,
    concurrency: usize,
    range_size: u64,
) -> anyhow::Result<Copied> {
    let dir = format!("{root}/{}", set.prefix);
    let listing = ufs.list(&dir, ListOptions { recursive: true, page_size: None });
    let ranges = listing
        .map_err(|e| anyhow::anyhow!("listing {dir}: {e}"))
        .map_ok(|st| {
            let parts = st.length.div_ceil(range_size).max(1);
            futures::stream::iter((0..parts).map(move |p| anyhow::Ok((st.uri.clone(), p * range_size, p == 0))))
        })
        .try_flatten();
    let (files, bytes) = ranges
        .map_ok(|(uri, offset, first)| async move {
            let b =
                ufs.read_range(&uri, offset, range_size).await.map_err(|e| anyhow::anyhow!("reading {uri}: {e}"))?;
            anyhow::Ok((u64::from(first), b.len() as u64))
        })
        .try_buffer_unordered(concurrency)
        .try_fold((0u64, 0u64), |(f, n), (df, dn)| async move { Ok((f + df, n + dn)) })
        .await?;
    Ok(Copied { files, bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_has_the_length_asked_and_differs_per_seed() {
        assert_eq!(content(1, 4099).len(), 4099);
        assert!(content(1, 0).is_empty());
        assert_ne!(content(1, 64), content(2, 64));
        assert_eq!(content(7, 64), content(7, 64));
    }

    #[test]
    fn object_uris_sort_in_upload_order_under_the_prefix() {
        let set = DataSet { name: "small", prefix: "small", count: 2, size: 1 };
        assert_eq!(set.uri("s3://b", 7), "s3://b/small/f000007");
        assert!(set.uri("s3://b", 9) < set.uri("s3://b", 10));
        assert_eq!(set.bytes(), 2);
    }
}
