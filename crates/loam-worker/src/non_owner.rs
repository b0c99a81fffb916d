//! The non-owner path: what a worker does with a read of a file that the hash ring gives another worker.
//!
//! - **Proxy** (the default, S3 GetObject/HeadObject: `crate::s3_api::reading`): the object's version,
//!   length and metadata come from the owner ([`meta`]: no UFS stat per request while the owner trusts its
//!   record), and the bytes stream from the owner's `/v1/range`, pinned to that version (`If-Match`), each
//!   piece passed on as it arrives: nothing is buffered beyond the piece in hand, so the client's pace
//!   (TCP backpressure) is the owner's pace.
//! - **Redirect** (`redirect-to-owner`, off by default: [`redirect`]): an anonymous read answers
//!   `307 Temporary Redirect` to the same path and query at the owner, so the bytes never cross this
//!   worker. Requests with credentials are never redirected (a client would send, or drop, them at
//!   another host): they are proxied (S3) or served here (worker HTTP API).
//! - **The worker HTTP API** serves a file it does not own itself, through its own read-through, as
//!   before: it is the cluster's data plane, which clients fail over along (owner, then replicas), so each
//!   candidate must be able to serve what it is asked without sending the client back to a dead owner.

pub mod meta;
pub mod redirect;
