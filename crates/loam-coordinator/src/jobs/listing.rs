//! The files of a job, as one stream in a stable order: each path in turn (a file, or a directory's
//! listing as the UFS streams it), or each line of an index file, read in chunks. Nothing here holds more
//! than one UFS listing page or one index chunk, so a job over millions of files lists in constant memory.
//!
//! A path that cannot be resolved, stat'ed or listed becomes one [`Listed::Error`] event (the job counts
//! it as a failed file) instead of ending the stream. A rebalance does not list the UFS: its events are
//! the items of its plan, already assigned to a worker ([`Listed::Assigned`], made by `rebalance::plan`).

use futures::stream::{self, BoxStream, StreamExt};
use loam_client::WorkerEndpoint;
use loam_ufs::{ListOptions, MountTable, Ufs, UfsError, UfsRegistry};
use std::sync::Arc;

/// Longest line of an index file: a path (`PATH_MAX` is 4 KiB, an S3 key 1 KiB) with room to spare. A longer
/// line stops the listing with an error: without the cap a file without newlines would be held whole.
pub const MAX_INDEX_LINE: usize = 16 << 10;
/// Bytes of an index file read per UFS request.
const INDEX_CHUNK: u64 = 1 << 20;

/// What a listing says of a file besides its URI and length.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileMeta {
    /// The ETag, when the UFS has one.
    pub etag: Option<String>,
    /// Modification time in ms since the epoch, when known.
    pub modified_ms: Option<i64>,
    /// Rebalance: a peer (`http://host:port`) holding the file, to copy it from instead of the UFS.
    pub source: Option<String>,
    /// Rebalance: the target held the file when the plan was made (a complete copy counts as preserved).
    pub held: bool,
}

impl Listed {
    /// The event of a listed file.
    pub fn file(st: loam_ufs::UfsStatus) -> Self {
        let meta = FileMeta {
            etag: st.etag,
            modified_ms: st.modified.map(loam_core::time::epoch_millis),
            ..FileMeta::default()
        };
        Listed::File { uri: st.uri, length: st.length, meta }
    }
}

/// One listing event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listed {
    /// A file and its length.
    File {
        /// Full UFS URI.
        uri: String,
        /// Bytes.
        length: u64,
        /// The listing's ETag and modification time, handed to workers so they need not stat the file again.
        meta: FileMeta,
    },
    /// A file a plan assigned to one worker (rebalance).
    Assigned {
        /// Full UFS URI.
        uri: String,
        /// The worker's id, `worker-<uuid>`.
        worker: String,
        /// Where it serves; `None` when it is not live (its item then fails).
        endpoint: Option<WorkerEndpoint>,
        /// Where to copy from, and whether it held the file.
        meta: FileMeta,
    },
    /// A path that could not be listed.
    Error {
        /// The path.
        path: String,
        /// Why.
        error: String,
    },
}

/// What to list.
#[derive(Clone, Debug)]
pub enum Source {
    /// Paths (UFS URIs or cluster paths).
    Paths(Vec<String>),
    /// An index file: one path per line; blank lines and `#` comments are ignored.
    Index(String),
}

/// Where listings resolve paths and find their UFS.
#[derive(Clone)]
pub struct Lister {
    table: Arc<MountTable>,
    ufs: UfsRegistry,
    recursive: bool,
}

impl Lister {
    /// A lister over a snapshot of the mount table; `recursive` walks directory trees.
    pub fn new(table: MountTable, ufs: UfsRegistry, recursive: bool) -> Self {
        Self { table: Arc::new(table), ufs, recursive }
    }

    /// The mount table snapshot the listing resolves paths with.
    pub fn table(&self) -> Arc<MountTable> {
        self.table.clone()
    }

    /// Resolves `path` to its UFS URI and UFS.
    pub fn resolve(&self, path: &str) -> Result<(String, Arc<dyn Ufs>), String> {
        let r = self.table.resolve(path).map_err(|e| e.to_string())?;
        let ufs = self.ufs.for_mount(&r.mount).map_err(|e| e.to_string())?;
        Ok((r.ufs_uri, ufs))
    }

    /// Every file of `source`, in order.
    pub fn list(&self, source: &Source) -> BoxStream<'static, Listed> {
        match source {
            Source::Paths(paths) => {
                let me = self.clone();
                stream::iter(paths.clone()).flat_map(move |p| me.expand(p)).boxed()
            }
            Source::Index(index) => match self.resolve(index) {
                Ok((uri, ufs)) => {
                    let me = self.clone();
                    index_lines(ufs, uri)
                        .flat_map(move |line| match line {
                            Ok(p) => me.expand(p),
                            Err(e) => stream::iter([e]).boxed(),
                        })
                        .boxed()
                }
                Err(error) => stream::iter([Listed::Error { path: index.clone(), error }]).boxed(),
            },
        }
    }

    /// The files of one path.
    fn expand(&self, path: String) -> BoxStream<'static, Listed> {
        let (uri, ufs) = match self.resolve(&path) {
            Ok(x) => x,
            Err(error) => return stream::iter([Listed::Error { path, error }]).boxed(),
        };
        let recursive = self.recursive;
        stream::once(async move {
            match ufs.stat(&uri).await {
                Ok(st) if !st.is_dir => stream::iter([Listed::file(st)]).boxed(),
                Ok(_) => ufs
                    .list(&uri, ListOptions { recursive, page_size: None })
                    .filter_map(move |e| {
                        let uri = uri.clone();
                        async move {
                            match e {
                                Ok(st) if st.is_dir => None,
                                Ok(st) => Some(Listed::file(st)),
                                Err(e) => Some(Listed::Error { path: uri, error: e.to_string() }),
                            }
                        }
                    })
                    .boxed(),
                Err(UfsError::NotFound(_)) => {
                    stream::iter([Listed::Error { path, error: format!("no such file or directory: {uri}") }]).boxed()
                }
                Err(e) => stream::iter([Listed::Error { path, error: e.to_string() }]).boxed(),
            }
        })
        .flatten()
        .boxed()
    }
}

/// The non-blank, non-comment lines of an index file, read `INDEX_CHUNK` bytes at a time.
fn index_lines(ufs: Arc<dyn Ufs>, uri: String) -> BoxStream<'static, Result<String, Listed>> {
    struct State {
        ufs: Arc<dyn Ufs>,
        uri: String,
        offset: u64,
        carry: Vec<u8>,
        /// Lines read so far (for the error that names a long one).
        line: u64,
        done: bool,
    }
    let init = State { ufs, uri, offset: 0, carry: Vec::new(), line: 0, done: false };
    stream::unfold(init, |mut s| async move {
        if s.done {
            return None;
        }
        let chunk = match s.ufs.read_range(&s.uri, s.offset, INDEX_CHUNK).await {
            Ok(c) => c,
            Err(e) => {
                s.done = true;
                let err = Listed::Error { path: s.uri.clone(), error: format!("cannot read the index file: {e}") };
                return Some((vec![Err(err)], s));
            }
        };
        s.offset += chunk.len() as u64;
        s.carry.extend_from_slice(&chunk);
        let mut lines = Vec::new();
        let cut = if chunk.is_empty() {
            s.done = true;
            s.carry.len()
        } else {
            s.carry.iter().rposition(|b| *b == b'\n').map(|p| p + 1).unwrap_or(0)
        };
        let rest = s.carry.split_off(cut);
        for line in String::from_utf8_lossy(&s.carry).lines() {
            s.line += 1;
            if line.len() > MAX_INDEX_LINE {
                s.done = true;
                lines.push(Err(too_long(&s.uri, s.line)));
                return Some((lines, s));
            }
            let l = line.trim();
            if !l.is_empty() && !l.starts_with('#') {
                lines.push(Ok(l.to_string()));
            }
        }
        if rest.len() > MAX_INDEX_LINE {
            s.done = true;
            lines.push(Err(too_long(&s.uri, s.line + 1)));
            return Some((lines, s));
        }
        s.carry = rest;
        Some((lines, s))
    })
    .flat_map(stream::iter)
    .boxed()
}

fn too_long(uri: &str, line: u64) -> Listed {
    Listed::Error {
        path: uri.to_string(),
        error: format!(
            "index file {uri}: line {line} is longer than {MAX_INDEX_LINE} bytes; the rest of the file was not read"
        ),
    }
}
