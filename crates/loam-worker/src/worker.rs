//! A running worker: page store, mount and membership views, the HTTP and S3 APIs, and its registration
//! in the cluster store. `start` brings them up in that order (the API serves before the worker joins the
//! ring, so the first request routed to it finds it listening); `WorkerHandle::shutdown` takes them
//! down in reverse (leave the ring first, then stop serving). The registration is held by the worker's
//! `cluster::drain::Drain`, so a drain and a shutdown leave the ring the same way.

use crate::cluster::drain::Drain;
use crate::cluster::file_report;
use crate::cluster::identity;
use crate::cluster::mount_view::MountView;
use crate::config::WorkerConfig;
use crate::http_api::{self, WorkerState};
use crate::metrics::WorkerMetrics;
use crate::path_ids::PathIds;
use crate::read_through::{ReadThrough, ReadTuning};
use crate::rules::quota::QuotaTracker;
use crate::rules::rule_view::RuleView;
use crate::rules::ttl::TtlScanner;
use crate::s3_api;
use crate::write_through::WriteThrough;
use anyhow::Context;
use loam_client::MembershipView;
use loam_core::WorkerId;
use loam_core::membership::WorkerRecord;
use loam_core::rules::{PriorityRule, QuotaRule, TtlRule};
use loam_listener::Listener;
use loam_page_store::PageStore;
use loam_store::ClusterStore;
use loam_store::membership::register;
use loam_ufs::UfsRegistry;
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A started worker; drop or `shutdown` to stop it.
pub struct WorkerHandle {
    /// The worker's id.
    pub id: WorkerId,
    /// Where its HTTP API listens.
    pub http_addr: SocketAddr,
    /// Where its S3 API listens.
    pub s3_addr: SocketAddr,
    /// `https` when its APIs are served over TLS, else `http`.
    pub scheme: &'static str,
    /// Shared state (page store, mounts, read-through), for tests and `loam local`.
    pub state: Arc<WorkerState>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// Starts a worker over `store` (embedded or etcd) reading the UFS through `ufs`.
pub async fn start(
    cfg: WorkerConfig,
    store: Arc<dyn ClusterStore>,
    ufs: UfsRegistry,
    mut registry: Registry,
) -> anyhow::Result<WorkerHandle> {
    let id = identity::load_or_create(&cfg.data_dir)
        .with_context(|| format!("reading the worker identity in {}", cfg.data_dir.display()))?;
    let metrics = WorkerMetrics::register(&mut registry);
    loam_metrics::process::register(&mut registry);
    let pages =
        PageStore::open(cfg.page_store.clone(), metrics.page_store.clone()).context("opening the page store")?;
    pages.set_mapped_reads(cfg.mapped_reads);
    let (shutdown, rx) = watch::channel(false);
    let (mounts, mount_task) =
        MountView::follow(store.clone(), &cfg.cluster_name, rx.clone()).await.context("loading the mount table")?;
    let (members, member_task) =
        MembershipView::follow_store(store.clone(), &cfg.cluster_name, cfg.virtual_nodes, rx.clone())
            .await
            .context("loading the membership")?;
    let (ttl_rules, ttl_rule_task) = RuleView::<TtlRule>::follow(store.clone(), &cfg.cluster_name, rx.clone())
        .await
        .context("loading the TTL rules")?;
    // Notices cache directories removed, replaced or back, and re-measures their room.
    let dir_check_task = pages.spawn_dir_checks(loam_page_store::DIR_CHECK_INTERVAL, rx.clone());
    let ttl_task = TtlScanner::new(pages.clone(), mounts.clone(), ttl_rules).spawn(cfg.ttl_check_interval, rx.clone());
    let (priority_rules, priority_rule_task) =
        RuleView::<PriorityRule>::follow(store.clone(), &cfg.cluster_name, rx.clone())
            .await
            .context("loading the priority rules")?;
    let priority_task = crate::rules::priority::follow(pages.clone(), priority_rules, mounts.clone(), rx.clone());
    let (quota_rules, quota_rule_task) = RuleView::<QuotaRule>::follow(store.clone(), &cfg.cluster_name, rx.clone())
        .await
        .context("loading the quota rules")?;
    let quota = QuotaTracker::new(pages.clone(), mounts.clone(), quota_rules, store.clone(), &cfg.cluster_name, id);
    pages.set_admission(quota.admission_source());
    let quota_task = quota.spawn(cfg.quota_check_interval, rx.clone());
    let listener = Listener::bind(&cfg.host, cfg.http_port, &cfg.listener)
        .await
        .with_context(|| format!("starting the HTTP API on {}:{}", cfg.host, cfg.http_port))?;
    let http_addr = listener.local_addr()?;
    let s3_listener = Listener::bind(&cfg.host, cfg.s3.port, &cfg.listener)
        .await
        .with_context(|| format!("starting the S3 API on {}:{}", cfg.host, cfg.s3.port))?;
    let s3_addr = s3_listener.local_addr()?;
    let tuning = ReadTuning { max_age: cfg.max_age, ufs_read_size: cfg.ufs_read_size, read_ahead: cfg.read_ahead_size };
    let rt = ReadThrough::new(pages.clone(), ufs, mounts.clone(), tuning, metrics.clone());
    let path_ids = PathIds::new(rt.clone(), crate::path_ids::DEFAULT_CAPACITY);
    let token = cfg.auth.cluster_token.clone();
    let writes = WriteThrough::new(rt.clone(), members.clone(), id, path_ids.clone(), metrics.clone(), token.clone())?;
    let peers = loam_client::PeerClient::build(token.clone()).context("building the client for drains")?;
    let drain = Drain::new(id, pages.clone(), members.clone(), cfg.virtual_nodes, peers);
    let state = Arc::new(WorkerState {
        id,
        pages,
        mounts,
        rt,
        members,
        registry: Arc::new(registry),
        metrics,
        coordinators: coordinators(&cfg.coordinators, loam_auth::Credential::none())?,
        writes,
        path_ids,
        cluster_token: token.clone(),
        registration: std::sync::OnceLock::new(),
        store: store.clone(),
        cluster_name: cfg.cluster_name.clone(),
        drain: drain.clone(),
        start_time_ms: loam_core::time::now_millis(),
        redirect_to_owner: cfg.redirect_to_owner.into(),
    });
    let guard = loam_auth::Guard::new(cfg.auth.authenticator.clone(), http_api::access, cfg.s3.anonymous_read);
    let app = http_api::router(state.clone(), guard);
    // Keeps the Coordinator's global file index current; without a Coordinator URL there is no one to tell.
    let reporter = coordinators(&cfg.coordinators, token)?
        .map(|c| file_report::spawn(id, state.pages.clone(), c, file_report::REPORT_INTERVAL, rx.clone()));
    let mut stop = rx.clone();
    let server = tokio::spawn(async move {
        let done = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        if let Err(e) = listener.serve(app, done).await {
            tracing::error!("worker HTTP server failed: {e}");
        }
    });
    if let Some(why) = cfg.s3.refuses_everything() {
        tracing::warn!("worker {id}: {why}");
    }
    let (s3_service, uploads) = s3_api::service(state.clone(), &cfg.s3, &cfg.data_dir);
    let spool = (cfg.s3.credentials.as_ref())
        .filter(|_| cfg.s3.unsized_puts)
        .map(|c| s3_api::spool::Spool::new(&cfg.data_dir, &c.access_key));
    let s3_server =
        s3_api::spawn(s3_listener, s3_service, &id.to_string(), spool, state.metrics.data.clone(), rx.clone());
    let upload_expiry =
        cfg.s3.multipart_expiry.map(|expiry| s3_api::multipart::expiry::spawn(uploads, expiry, rx.clone()));
    let s3_port = if cfg.s3_port != 0 { cfg.s3_port } else { s3_addr.port() };
    let tls = cfg.listener.tls.is_some();
    let advertised = cfg.advertise_host.as_deref().unwrap_or(&cfg.host);
    let record = WorkerRecord::new(id, advertised, http_addr.port(), s3_port).with_tls(tls);
    let me = loam_client::WorkerEndpoint::from_record(&record).context("the worker's own record")?;
    let membership = register(store, &cfg.cluster_name, record, cfg.lease_ttl).await.context("joining the cluster")?;
    let _ = state.registration.set(membership.liveness());
    drain.registered(membership, me);
    let scheme = cfg.listener.scheme();
    tracing::info!("worker {id} serving on {scheme}://{http_addr}, S3 on {scheme}://{s3_addr}");
    Ok(WorkerHandle {
        id,
        scheme,
        http_addr,
        s3_addr,
        state,
        shutdown,
        tasks: vec![
            mount_task,
            member_task,
            ttl_rule_task,
            ttl_task,
            priority_rule_task,
            priority_task,
            quota_rule_task,
            quota_task,
            server,
            s3_server,
        ]
        .into_iter()
        .chain(reporter)
        .chain(dir_check_task)
        .chain(upload_expiry)
        .collect(),
    })
}

/// The client of the Coordinators at `urls` sending `token` (none configured: `None`).
fn coordinators(urls: &[String], token: loam_auth::Credential) -> anyhow::Result<Option<loam_client::Coordinators>> {
    if urls.is_empty() {
        return Ok(None);
    }
    let http = loam_client::PeerClient::build(token).context("building the client of the Coordinators")?;
    Ok(Some(loam_client::Coordinators::new(urls, http).context("the coordinator setting")?))
}

impl WorkerHandle {
    /// `http://host:port` (`https://` with TLS) of the HTTP API.
    pub fn http_base(&self) -> String {
        format!("{}://{}", self.scheme, self.http_addr)
    }

    /// `http://host:port` (`https://` with TLS) of the S3 API (the `--endpoint-url` of S3 clients).
    pub fn s3_base(&self) -> String {
        format!("{}://{}", self.scheme, self.s3_addr)
    }

    /// Leaves the ring (the liveness record is revoked at once), then stops serving and every task.
    pub async fn shutdown(mut self) {
        self.state.drain.leave().await;
        let _ = self.shutdown.send(true);
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
        // Validation times live in memory between writes; keep them so a restart does not re-stat everything.
        if let Err(e) = self.state.pages.flush_records().await {
            tracing::warn!("could not write file records on shutdown: {e}");
        }
        self.state.pages.close();
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}
