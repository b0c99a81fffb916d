//! The S3-compatible API every worker serves on its own port (default 29998), built on `s3s`: a hyper
//! service that parses and signs S3 requests, served by `loam_listener` (TLS, limits) beside the worker HTTP API and stopped by
//! the same shutdown channel.
//!
//! - **Path-style only; a bucket is a mount point.** `/data` mounted from `s3://b/prefix` is bucket
//!   `data`, and key `k` is the UFS URI `s3://b/prefix/k` (`buckets`). Keys that cannot name a UFS path
//!   (`..`, `.`, empty segments) are refused with `InvalidArgument`, a key with a C1 control character
//!   with S3's `InvalidURI`; a key ending in `/` is a directory.
//! - **Reads come from the cache** (`reading`): the worker that owns the object on the hash ring reads it
//!   through its own `ReadThrough`; any other worker fetches it from the owner with the cluster client
//!   (replicas next) and, when every worker failed, from its own read-through, resuming at the byte the
//!   broken stream reached. Bodies stream page by page in both cases.
//! - **Writes go through** `WriteThrough` (UFS first, then every cache that may hold the object is
//!   dropped). Multipart uploads keep their parts under `<data-dir>/s3-multipart` (`multipart`) and
//!   stream the concatenation through the same path on Complete.
//! - **Uploads are checked while they stream** (`verify`): signed payload hash and chunk signatures
//!   (`s3s`), `Content-MD5` and `x-amz-checksum-*`; a mismatch fails the body, so nothing is written.
//! - **Checksums** stored with an object are answered by GET/HEAD with `x-amz-checksum-mode`
//!   (`checksums`) and by GetObjectAttributes (`attributes`, a route of its own: `routes`).
//! - **Auth** (`auth`): SigV4 (and V2) against the configured key pair; unsigned reads only with
//!   `anonymous_read`. No key and no anonymous read: every request is refused, and `start` says so.
//! - **Errors** map to S3 codes in one place (`errors`); every answer carries a request id, and error
//!   documents name the resource and the request (`edge`).
//! - **What Loam does not do is refused, not ignored** (`unsupported`): encryption, object lock, ACLs
//!   other than private, tagging and versions are refused before the operation runs, so nothing is
//!   written.

pub mod attributes;
pub mod auth;
pub mod bucket_config;
pub mod buckets;
pub mod checksums;
pub mod conditions;
pub mod copying;
pub mod edge;
pub mod errors;
pub mod keys;
pub mod listing;
pub mod metadata;
pub mod multipart;
pub mod objects;
pub mod range;
pub mod reading;
pub mod routes;
pub mod spool;
pub mod unsupported;
pub mod verify;

use crate::http_api::WorkerState;
use crate::metrics::data_path::{DataPathMetrics, S3Labels, S3OperationSlot, status_class};
use axum::Router;
use axum::error_handling::HandleError;
use axum::http::StatusCode;
use loam_listener::Listener;
use multipart::object_parts;
use multipart::store::UploadStore;
use s3s::dto::*;
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{S3, S3ErrorCode, S3Request, S3Response, S3Result};
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use unsupported::check_version_id;

/// Default port of the S3 API.
pub const DEFAULT_S3_PORT: u16 = 29998;
/// The directory under the worker's data directory that holds the parts of multipart uploads.
pub const MULTIPART_DIR: &str = "s3-multipart";
/// How long connecting to the owning worker may take before its replicas are tried.
const PEER_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the owning worker's stream may stall before it is resumed on a replica.
const PEER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// An S3 access key pair.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Credentials {
    /// The access key id clients sign with.
    pub access_key: String,
    /// The secret key.
    pub secret_key: String,
}

impl fmt::Debug for S3Credentials {
    // The secret stays out of logs and `{:?}` of the worker's configuration.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Credentials").field("access_key", &self.access_key).field("secret_key", &"<hidden>").finish()
    }
}

/// How a worker serves its S3 API.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct S3Config {
    /// Port to bind (0 = a free one).
    pub port: u16,
    /// The key pair signed requests must use; `None` refuses every signed request.
    pub credentials: Option<S3Credentials>,
    /// Whether unsigned reads (GET/HEAD of objects and buckets, listings) are served.
    pub anonymous_read: bool,
    /// How long a multipart upload may stay unfinished (and a completed one keep its result); `None`:
    /// forever (the settings always give one, default 24 h).
    pub multipart_expiry: Option<Duration>,
    /// Whether a PutObject sent with `Transfer-Encoding: chunked` and no length is spooled and stored
    /// (`spool`) rather than answered `411 MissingContentLength` as AWS answers it.
    pub unsized_puts: bool,
}

impl S3Config {
    /// Why this configuration refuses every request, if it does.
    pub fn refuses_everything(&self) -> Option<&'static str> {
        (self.credentials.is_none() && !self.anonymous_read).then_some(
            "no S3 access key is configured and anonymous read is off, so the S3 API answers every request \
             with 403 AccessDenied (set an access key and secret key, or turn anonymous read on)",
        )
    }
}

/// The S3 operations of one worker (cheap to clone: the route for ignored ranges shares it).
#[derive(Clone)]
pub struct LoamS3 {
    state: Arc<WorkerState>,
    client: loam_client::Client,
    uploads: Arc<UploadStore>,
    started: SystemTime,
}

impl LoamS3 {
    /// The S3 API of the worker whose state is `state`, keeping multipart parts under `data_dir`.
    pub fn new(state: Arc<WorkerState>, data_dir: &Path) -> Self {
        // A worker that does not answer is skipped for the next one rather than waited for.
        let b =
            loam_client::peer::client_builder().connect_timeout(PEER_CONNECT_TIMEOUT).read_timeout(PEER_READ_TIMEOUT);
        let http =
            loam_client::PeerClient::new(loam_client::peer::build(b).unwrap_or_default(), state.cluster_token.clone());
        // No UFS fallback in the client: when every worker failed, this worker reads through its own cache.
        let client = loam_client::Client::new(http, state.members.clone(), None);
        let uploads = Arc::new(UploadStore::new(data_dir.join(MULTIPART_DIR)));
        Self { state, client, uploads, started: SystemTime::now() }
    }
}

impl LoamS3 {
    /// `307` to the owner for an unsigned read of an object another worker owns, when the worker
    /// redirects (`crate::non_owner::redirect`); `Ok` to serve it here (a bad bucket or key included: the
    /// operation refuses it).
    fn redirect(&self, bucket: &str, key: &str, signed: bool, uri: &axum::http::Uri) -> S3Result<()> {
        // Checked before the key is resolved: with redirects off (the default) a GET pays one atomic load.
        if signed || !self.state.redirect_to_owner.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(());
        }
        match buckets::object(&self.state, bucket, key) {
            Ok(t) if !t.is_dir => crate::non_owner::redirect::s3(&self.state, &t.uri, signed, uri),
            _ => Ok(()),
        }
    }
}

/// The `s3s` service of a worker (its operations, its keys and its access policy), and its multipart
/// uploads (for the expiry loop, `multipart::expiry`).
pub fn service(state: Arc<WorkerState>, cfg: &S3Config, data_dir: &Path) -> (S3Service, Arc<UploadStore>) {
    let s3 = LoamS3::new(state, data_dir);
    let uploads = s3.uploads.clone();
    let policy = auth::Policy { anonymous_read: cfg.anonymous_read };
    let mut builder = S3ServiceBuilder::new(s3.clone());
    builder.set_auth(auth::KeyAuth::new(cfg.credentials.as_ref()));
    builder.set_access(unsupported::Gate { policy });
    let ranges = range::IgnoredRangeRoute { s3: s3.clone(), policy };
    builder.set_route(routes::Routes { ranges, attributes: attributes::AttributesRoute { s3, policy } });
    builder.set_validation(buckets::MountNames);
    (builder.build(), uploads)
}

/// Serves `service` on `listener` until `shutdown` turns true (then drains the requests in flight);
/// `host_id` (the worker's id) is S3's host id in every answer (`edge`); `spool` takes chunked PutObject
/// bodies without a length (`spool`).
pub fn spawn(
    listener: Listener,
    service: S3Service,
    host_id: &str,
    spool: Option<spool::Spool>,
    metrics: DataPathMetrics,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let edge = edge::Edge { host_id: host_id.into(), spool: spool.map(Arc::new) };
    let app = Router::new()
        .fallback_service(HandleError::new(service, |e: s3s::HttpError| async move {
            loam_core::warn_limited!("S3 request failed below the S3 layer: {e:?}");
            StatusCode::INTERNAL_SERVER_ERROR
        }))
        .layer(axum::middleware::from_fn_with_state(edge, edge::stamp))
        // Outermost: refusals at the edge are timed too. (The state is cloned per request: an `Arc`, not
        // the struct of a dozen metric families, whose clone and drop were 2 % of an S3 GET's CPU.)
        .layer(axum::middleware::from_fn_with_state(Arc::new(metrics), time_request));
    tokio::spawn(async move {
        let done = async move {
            let _ = shutdown.wait_for(|s| *s).await;
        };
        if let Err(e) = listener.serve(app, done).await {
            tracing::error!("worker S3 server failed: {e}");
        }
    })
}

/// Observes each request's latency by S3 operation (named by the access check, through the
/// [`S3OperationSlot`] this puts in the request) and status class.
async fn time_request(
    axum::extract::State(m): axum::extract::State<Arc<DataPathMetrics>>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let slot = S3OperationSlot::default();
    req.extensions_mut().insert(slot.clone());
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    let labels = S3Labels { operation: slot.operation(), status: status_class(response.status().as_u16()) };
    m.s3.get_or_create(&labels).observe(started.elapsed().as_secs_f64());
    response
}

#[async_trait::async_trait]
impl S3 for LoamS3 {
    async fn list_buckets(&self, req: S3Request<ListBucketsInput>) -> S3Result<S3Response<ListBucketsOutput>> {
        Ok(S3Response::new(buckets::list(&self.state, self.started, req.input)?))
    }

    async fn create_bucket(&self, req: S3Request<CreateBucketInput>) -> S3Result<S3Response<CreateBucketOutput>> {
        Ok(S3Response::new(buckets::create(&self.state, &req.input)?))
    }

    async fn delete_bucket(&self, req: S3Request<DeleteBucketInput>) -> S3Result<S3Response<DeleteBucketOutput>> {
        buckets::mount_of(&self.state, &req.input.bucket)?;
        let empty = listing::is_empty(&self.state, &req.input.bucket).await?;
        Err(buckets::delete_refused(&req.input.bucket, empty))
    }

    async fn get_bucket_acl(&self, req: S3Request<GetBucketAclInput>) -> S3Result<S3Response<GetBucketAclOutput>> {
        Ok(S3Response::new(bucket_config::bucket_acl(&self.state, &req.input.bucket)?))
    }

    async fn get_object_acl(&self, req: S3Request<GetObjectAclInput>) -> S3Result<S3Response<GetObjectAclOutput>> {
        check_version_id(req.input.version_id.as_deref())?;
        Ok(S3Response::new(bucket_config::object_acl(&self.state, &req.input.bucket, &req.input.key).await?))
    }

    async fn get_object_tagging(
        &self,
        req: S3Request<GetObjectTaggingInput>,
    ) -> S3Result<S3Response<GetObjectTaggingOutput>> {
        check_version_id(req.input.version_id.as_deref())?;
        Ok(S3Response::new(bucket_config::object_tagging(&self.state, &req.input.bucket, &req.input.key).await?))
    }

    async fn get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        Ok(S3Response::new(bucket_config::versioning(&self.state, &req.input.bucket)?))
    }

    async fn list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        Ok(S3Response::new(bucket_config::list_versions(&self.state, req.input).await?))
    }

    async fn get_bucket_tagging(
        &self,
        req: S3Request<GetBucketTaggingInput>,
    ) -> S3Result<S3Response<GetBucketTaggingOutput>> {
        Err(bucket_config::not_configured(&self.state, &req.input.bucket, S3ErrorCode::NoSuchTagSet, "tag set"))
    }

    async fn get_bucket_policy(
        &self,
        req: S3Request<GetBucketPolicyInput>,
    ) -> S3Result<S3Response<GetBucketPolicyOutput>> {
        Err(bucket_config::not_configured(&self.state, &req.input.bucket, S3ErrorCode::NoSuchBucketPolicy, "policy"))
    }

    async fn get_bucket_lifecycle_configuration(
        &self,
        req: S3Request<GetBucketLifecycleConfigurationInput>,
    ) -> S3Result<S3Response<GetBucketLifecycleConfigurationOutput>> {
        let code = S3ErrorCode::NoSuchLifecycleConfiguration;
        Err(bucket_config::not_configured(&self.state, &req.input.bucket, code, "lifecycle configuration"))
    }

    async fn get_bucket_cors(&self, req: S3Request<GetBucketCorsInput>) -> S3Result<S3Response<GetBucketCorsOutput>> {
        let code = S3ErrorCode::NoSuchCORSConfiguration;
        Err(bucket_config::not_configured(&self.state, &req.input.bucket, code, "CORS configuration"))
    }

    async fn get_object_lock_configuration(
        &self,
        req: S3Request<GetObjectLockConfigurationInput>,
    ) -> S3Result<S3Response<GetObjectLockConfigurationOutput>> {
        let code = S3ErrorCode::ObjectLockConfigurationNotFoundError;
        Err(bucket_config::not_configured(&self.state, &req.input.bucket, code, "object lock configuration"))
    }

    async fn get_bucket_encryption(
        &self,
        req: S3Request<GetBucketEncryptionInput>,
    ) -> S3Result<S3Response<GetBucketEncryptionOutput>> {
        let code = S3ErrorCode::ServerSideEncryptionConfigurationNotFoundError;
        Err(bucket_config::not_configured(&self.state, &req.input.bucket, code, "encryption configuration"))
    }

    async fn head_bucket(&self, req: S3Request<HeadBucketInput>) -> S3Result<S3Response<HeadBucketOutput>> {
        buckets::mount_of(&self.state, &req.input.bucket)?;
        Ok(S3Response::new(HeadBucketOutput::default()))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        buckets::mount_of(&self.state, &req.input.bucket)?;
        Ok(S3Response::new(GetBucketLocationOutput::default()))
    }

    async fn list_objects_v2(&self, req: S3Request<ListObjectsV2Input>) -> S3Result<S3Response<ListObjectsV2Output>> {
        Ok(S3Response::new(listing::list_v2(&self.state, req.input).await?))
    }

    async fn list_objects(&self, req: S3Request<ListObjectsInput>) -> S3Result<S3Response<ListObjectsOutput>> {
        Ok(S3Response::new(listing::list_v1(&self.state, req.input).await?))
    }

    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
        self.redirect(&req.input.bucket, &req.input.key, req.credentials.is_some(), &req.uri)?;
        let Some(n) = req.input.part_number else { return objects::head(&self.state, req.input).await };
        let (bucket, key) = (&req.input.bucket, &req.input.key);
        let part = object_parts::select(&self.state, &self.uploads, bucket, key, n, req.input.range.is_some()).await?;
        let checksums = checksums::enabled(req.input.checksum_mode.as_ref());
        let mut resp = objects::head(&self.state, req.input).await?;
        if part.count.is_some() {
            resp.output.content_length = Some(i64::try_from(part.size).unwrap_or(i64::MAX));
            resp.output.parts_count = part.count;
            if checksums {
                checksums::set_head(&mut resp.output, part.checksum.as_ref());
            }
        }
        Ok(resp)
    }

    async fn get_object(&self, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
        self.redirect(&req.input.bucket, &req.input.key, req.credentials.is_some(), &req.uri)?;
        let mut input = req.input;
        let Some(n) = input.part_number else { return objects::get(&self.state, &self.client, input).await };
        let part =
            object_parts::select(&self.state, &self.uploads, &input.bucket, &input.key, n, input.range.is_some())
                .await?;
        input.range = part.range;
        let checksums = checksums::enabled(input.checksum_mode.as_ref());
        let mut resp = objects::get(&self.state, &self.client, input).await?;
        resp.output.parts_count = part.count;
        if checksums && part.count.is_some() {
            checksums::set_get(&mut resp.output, part.checksum.as_ref());
        }
        Ok(resp)
    }

    async fn put_object(&self, req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
        if req.input.content_length.is_some_and(|n| n > multipart::MAX_PART_SIZE as i64) {
            return Err(s3s::s3_error!(EntityTooLarge, "Your proposed upload exceeds the maximum allowed size"));
        }
        let expected = verify::Expected::from_request(&req.headers, req.trailing_headers.clone())?;
        Ok(S3Response::new(objects::put(&self.state, req.input, expected).await?))
    }

    async fn delete_object(&self, req: S3Request<DeleteObjectInput>) -> S3Result<S3Response<DeleteObjectOutput>> {
        match req.input.if_match {
            Some(c) => objects::delete_if_match(&self.state, &req.input.bucket, &req.input.key, c).await?,
            None => objects::delete(&self.state, &req.input.bucket, &req.input.key).await?,
        }
        Ok(S3Response::new(DeleteObjectOutput::default()))
    }

    async fn delete_objects(&self, req: S3Request<DeleteObjectsInput>) -> S3Result<S3Response<DeleteObjectsOutput>> {
        Ok(S3Response::new(objects::delete_many(&self.state, req.input).await?))
    }

    async fn copy_object(&self, req: S3Request<CopyObjectInput>) -> S3Result<S3Response<CopyObjectOutput>> {
        // s3s 0.14 does not carry a destination condition on CopyObject: refused rather than ignored.
        if req.headers.contains_key(axum::http::header::IF_MATCH)
            || req.headers.contains_key(axum::http::header::IF_NONE_MATCH)
        {
            return Err(s3s::s3_error!(
                NotImplemented,
                "A header you provided implies functionality that is not implemented: If-Match/If-None-Match on CopyObject"
            ));
        }
        Ok(S3Response::new(copying::copy(&self.state, req.input).await?))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        Ok(S3Response::new(multipart::create(&self.state, &self.uploads, req.input).await?))
    }

    async fn upload_part(&self, req: S3Request<UploadPartInput>) -> S3Result<S3Response<UploadPartOutput>> {
        let expected = verify::Expected::from_request(&req.headers, req.trailing_headers.clone())?;
        Ok(S3Response::new(multipart::upload_part(&self.uploads, req.input, expected).await?))
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        let out = multipart::copy::upload_part_copy(&self.state, &self.client, &self.uploads, req.input).await?;
        Ok(S3Response::new(out))
    }

    async fn list_parts(&self, req: S3Request<ListPartsInput>) -> S3Result<S3Response<ListPartsOutput>> {
        Ok(S3Response::new(multipart::listing::list_parts(&self.uploads, req.input).await?))
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        Ok(S3Response::new(multipart::listing::list_uploads(&self.state, &self.uploads, req.input).await?))
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        Ok(S3Response::new(multipart::complete(&self.state, &self.uploads, req.input).await?))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        multipart::abort(&self.uploads, req.input).await?;
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }
}
