//! The [`Coordinator`]: the services of one coordinator process, shared by every request handler.
//!
//! Its background loops are the job runners (`jobs`), run only while this Coordinator leads (`leader`), and,
//! with `--auto-rebalance`, the loop that starts rebalances (`auto_rebalance`, which submits only while this
//! Coordinator leads): `serve` starts the election, whose winner resumes the stored running jobs; when
//! shutdown begins it stops them (they persist their progress and resume on the next leader) and gives
//! leadership up. `serve` runs the HTTP server until the caller's shutdown future
//! resolves, then stops accepting connections and waits for the requests in flight (graceful shutdown).
//! The TTL and priority rule services are fields here too; each service has its own API module.

use crate::api;
use crate::auto_rebalance;
use crate::clear_stale;
use crate::file_index::{self, FileIndex};
use crate::jobs::{DEFAULT_JOB_RETENTION, DEFAULT_QUOTA_CHECK_INTERVAL, JobService, JobsConfig};
use crate::leader::{Elector, Fence, LeaderState};
use crate::metrics::CoordinatorMetrics;
use crate::mounts::MountService;
use crate::rules::RuleService;
use loam_core::membership::DEFAULT_CLUSTER_NAME;
use loam_core::probe_api::Readiness;
use loam_core::rules::{PriorityRule, QuotaRule, TtlRule};
use loam_core::store_keys::coordinator_leader_election;
use loam_store::{ClusterStore, Election, SoleLeader, StoreResult};
use loam_ufs::{Mount, UfsPolicy, UfsRegistry};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How long the readiness check waits for the cluster store: under the kubelet's probe timeout, which
/// should then be at least 3 s (`deploy/k8s`).
pub const READY_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// How a coordinator is set up.
#[derive(Clone, Debug)]
pub struct CoordinatorConfig {
    /// The cluster name in membership and Loam keys (`DefaultAlluxioCluster` by default).
    pub cluster_name: String,
    /// A fixed mount table (from a file given at start-up); `None` manages mounts through the API.
    pub static_mounts: Option<Vec<Mount>>,
    /// The coordinator's own files (failed-file lists of jobs under `jobs/`).
    pub data_dir: PathBuf,
    /// How long finished jobs are kept.
    pub job_retention: Duration,
    /// Whether `/api/v1/ttl` is served (`501 TTL not enabled` otherwise).
    pub ttl_enabled: bool,
    /// Whether `/api/v1/priority` is served (`501 Priority eviction not enabled` otherwise).
    pub priority_enabled: bool,
    /// Whether `/api/v1/quota` is served (`501 Quota not enabled` otherwise).
    pub quota_enabled: bool,
    /// How often a running load job checks the quotas it loads under.
    pub quota_check_interval: Duration,
    /// How long jobs retry the files of a worker they cannot reach (`--job-retry-window`).
    pub job_retry_window: Duration,
    /// Whether the global file index is kept (`--disable-file-index` turns it off).
    pub file_index: bool,
    /// Who may call the API, and the token it sends to workers.
    pub auth: loam_auth::NodeAuth,
    /// Most entries the file index holds (`--file-index-max-entries`).
    pub file_index_max_entries: usize,
    /// Which UFSs may be mounted (default: no `file://` root, any S3 endpoint).
    pub ufs_policy: UfsPolicy,
    /// `--auto-rebalance`: a rebalance of `ALL` once the membership changed and then stayed the same this
    /// long (`--auto-rebalance-delay`); `None`: off.
    pub auto_rebalance: Option<Duration>,
    /// The leader election (`leader`); `None`: this Coordinator always leads (the embedded store).
    pub election: Option<Arc<dyn Election>>,
    /// TTL of the leader's lease (`--leader-lease-ttl`).
    pub leader_lease_ttl: Duration,
    /// The URL other Coordinators forward writes to and clients are told; `None`: the listener's URL.
    pub advertise_url: Option<String>,
    /// How long `GET /api/v1/nodes/stats` waits for each worker (`--worker-stats-timeout`).
    pub worker_stats_timeout: Duration,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        Self {
            cluster_name: DEFAULT_CLUSTER_NAME.to_string(),
            static_mounts: None,
            data_dir: std::env::temp_dir().join("loam-coordinator"),
            job_retention: DEFAULT_JOB_RETENTION,
            ttl_enabled: true,
            priority_enabled: true,
            quota_enabled: true,
            quota_check_interval: DEFAULT_QUOTA_CHECK_INTERVAL,
            job_retry_window: crate::jobs::DEFAULT_JOB_RETRY_WINDOW,
            file_index: true,
            auth: loam_auth::NodeAuth::default(),
            file_index_max_entries: crate::file_index::DEFAULT_MAX_ENTRIES as usize,
            ufs_policy: UfsPolicy::default(),
            auto_rebalance: None,
            election: None,
            leader_lease_ttl: crate::leader::DEFAULT_LEADER_LEASE_TTL,
            advertise_url: None,
            worker_stats_timeout: crate::api::node_stats::DEFAULT_WORKER_STATS_TIMEOUT,
        }
    }
}

/// One coordinator: the cluster store, the mount table, the jobs, the rules and the file index.
pub struct Coordinator {
    store: Arc<dyn ClusterStore>,
    cluster_name: String,
    mounts: MountService,
    jobs: JobService,
    ttl: RuleService<TtlRule>,
    priority: RuleService<PriorityRule>,
    quota: RuleService<QuotaRule>,
    file_index: Arc<FileIndex>,
    peers: loam_client::PeerClient,
    guard: loam_auth::Guard,
    auto_rebalance: Option<Duration>,
    election: Arc<dyn Election>,
    fence: Arc<Fence>,
    leader: LeaderState,
    leader_lease_ttl: Duration,
    advertise_url: std::sync::OnceLock<String>,
    metrics: Arc<CoordinatorMetrics>,
    worker_stats_timeout: Duration,
}

impl Coordinator {
    /// A coordinator over `store`, reaching UFSs through `ufs`.
    ///
    /// Panics only if no HTTP client can be built (no TLS provider), which is a broken installation.
    pub fn new(store: Arc<dyn ClusterStore>, ufs: UfsRegistry, cfg: CoordinatorConfig) -> Arc<Self> {
        let metrics = CoordinatorMetrics::new();
        // Every store call of this Coordinator goes through one timing seam (the election's own etcd
        // session is not a ClusterStore call and is not counted).
        let store = loam_store::timed::TimedStore::wrap(store, metrics.clone());
        let mounts = MountService::new(
            store.clone(),
            cfg.cluster_name.clone(),
            ufs.clone(),
            cfg.static_mounts.clone(),
            cfg.ufs_policy.clone(),
        );
        let ttl = RuleService::new(store.clone(), cfg.cluster_name.clone(), cfg.ttl_enabled);
        let priority = RuleService::new(store.clone(), cfg.cluster_name.clone(), cfg.priority_enabled);
        let quota = RuleService::new(store.clone(), cfg.cluster_name.clone(), cfg.quota_enabled);
        let file_index = Arc::new(FileIndex::new(cfg.file_index, cfg.file_index_max_entries));
        let peers = loam_client::PeerClient::build(cfg.auth.cluster_token.clone())
            .expect("building the coordinator's HTTP client");
        let guard = loam_auth::Guard::new(cfg.auth.authenticator.clone(), api::access, false);
        let election = cfg.election.clone().unwrap_or_else(|| SoleLeader::new(store.clone()));
        let fence = Arc::new(Fence::new(election.clone()));
        let jobs_cfg = JobsConfig {
            data_dir: cfg.data_dir,
            retention: cfg.job_retention,
            quota_enabled: cfg.quota_enabled,
            quota_check_interval: cfg.quota_check_interval,
            retry_window: cfg.job_retry_window,
            fence: fence.clone(),
            counters: metrics.jobs.clone(),
        };
        let index = Some(file_index.clone());
        let leader = LeaderState::new(&coordinator_leader_election(&cfg.cluster_name));
        let jobs = JobService::new(
            store.clone(),
            cfg.cluster_name.clone(),
            ufs,
            cfg.static_mounts,
            jobs_cfg,
            index,
            peers.clone(),
        )
        .expect("building the job service");
        let (cluster_name, auto_rebalance) = (cfg.cluster_name, cfg.auto_rebalance);
        let (leader_lease_ttl, worker_stats_timeout) = (cfg.leader_lease_ttl, cfg.worker_stats_timeout);
        let advertise_url = std::sync::OnceLock::new();
        if let Some(url) = cfg.advertise_url {
            let _ = advertise_url.set(url);
        }
        Arc::new(Self {
            store,
            cluster_name,
            mounts,
            jobs,
            ttl,
            priority,
            quota,
            file_index,
            peers,
            guard,
            auto_rebalance,
            election,
            fence,
            leader,
            leader_lease_ttl,
            advertise_url,
            metrics,
            worker_stats_timeout,
        })
    }

    /// The REST API (`/api/v1/...`) as an axum router.
    pub fn router(self: &Arc<Self>) -> axum::Router {
        api::router(self.clone(), self.guard.clone())
    }

    /// Serves the REST API on `listener` (its TLS and limits: `loam_listener`) until `shutdown` resolves,
    /// then drains requests in flight.
    pub async fn serve(
        self: Arc<Self>,
        listener: loam_listener::Listener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let addr = listener.url()?;
        // Before any request: workers follow the table in the store, and jobs resolve paths against it.
        if let Err(e) = self.mounts.publish_static().await {
            tracing::error!("cannot publish the static mount table: {e}");
        }
        // The jobs run only on the leader: the elector resumes them when this Coordinator leads.
        let (stop_elector, stop_rx) = tokio::sync::watch::channel(false);
        let me = self.clone();
        let url = self.advertise_url.get_or_init(|| addr.to_string()).clone();
        let elector = tokio::spawn(async move {
            let elector = Elector {
                store: me.store.clone(),
                election: me.election.clone(),
                fence: me.fence.clone(),
                state: me.leader.clone(),
                name: coordinator_leader_election(&me.cluster_name),
                ttl: me.leader_lease_ttl,
            };
            elector.run(url, &me.jobs, stop_rx).await;
        });
        // Runs on every Coordinator; it submits only while this one leads.
        let (stop_auto, stopped) = tokio::sync::watch::channel(false);
        let auto = self.auto_rebalance.map(|delay| auto_rebalance::spawn(self.clone(), delay, stopped));
        // Serve once the election has an outcome (this one leads, or another is known), so a Coordinator
        // that is elected at once (always the embedded store's) answers its first write itself; at most
        // one lease TTL, so an unreachable etcd does not keep the API (and its readiness probe) down.
        let mut view = self.leader.subscribe();
        let _ = tokio::time::timeout(self.leader_lease_ttl, view.wait_for(|l| l.leader.is_some())).await;
        // The file index lives in the leader's memory (followers forward its reads and the workers'
        // reports): it is rebuilt from the workers each time this Coordinator comes to lead, so one that
        // followed for a while does not answer with the index of its start. In the background, so an
        // unreachable worker does not hold the API back.
        let me = self.clone();
        let mut leadership = self.leader.subscribe();
        let rebuild = tokio::spawn(async move {
            while leadership.wait_for(|l| l.leading).await.is_ok() {
                file_index::rebuild(&me.file_index, me.store.as_ref(), &me.cluster_name, &me.peers).await;
                if leadership.wait_for(|l| !l.leading).await.is_err() {
                    return;
                }
            }
        });
        tracing::info!(%addr, cluster = %self.cluster_name, "coordinator serving");
        let me = self.clone();
        // Runners stop as soon as shutdown begins, so `sync` requests in flight return and the drain ends.
        let shutdown = async move {
            shutdown.await;
            stop_auto.send_replace(true);
            me.jobs.begin_shutdown();
            let _ = stop_elector.send(true);
        };
        let served = listener.serve(self.router(), shutdown).await;
        if let Some(auto) = auto {
            let _ = auto.await;
        }
        let _ = elector.await;
        self.jobs.shutdown().await;
        rebuild.abort();
        let _ = rebuild.await;
        served?;
        tracing::info!(%addr, "coordinator stopped");
        Ok(())
    }

    /// Whether this Coordinator can serve the API: the cluster store answers within
    /// [`READY_CHECK_TIMEOUT`] and a leader is known (this one or another, which writes are forwarded to).
    /// The one readiness function of the process (`/api/v1/ready`).
    pub async fn readiness(&self) -> Readiness {
        match tokio::time::timeout(READY_CHECK_TIMEOUT, self.store.revision()).await {
            Ok(Ok(_)) => match self.leader.readiness() {
                Ok(()) => Readiness::ready(),
                Err(why) => Readiness::not_ready(why),
            },
            Ok(Err(e)) => Readiness::not_ready(format!("cluster store unreachable: {e}")),
            Err(_) => Readiness::not_ready(format!(
                "cluster store unreachable: no answer within {}s",
                READY_CHECK_TIMEOUT.as_secs_f32()
            )),
        }
    }

    /// Which Coordinator leads, as this one knows it (forwarding, readiness, `/api/v1/coordinators`).
    pub fn leader(&self) -> &LeaderState {
        &self.leader
    }

    /// The URL this Coordinator announces in the election (`None` until it serves: its listener's URL).
    pub fn advertise_url(&self) -> Option<&str> {
        self.advertise_url.get().map(String::as_str)
    }

    /// The cluster name.
    pub fn cluster_name(&self) -> &str {
        &self.cluster_name
    }

    /// The cluster store.
    pub fn store(&self) -> &Arc<dyn ClusterStore> {
        &self.store
    }

    /// This Coordinator's metrics (`crate::metrics`).
    pub fn metrics(&self) -> &CoordinatorMetrics {
        &self.metrics
    }

    /// The OpenMetrics text of this Coordinator's metrics, the gauges refreshed first (see `crate::metrics`
    /// for why this never waits long).
    pub async fn scrape(&self) -> Result<String, std::fmt::Error> {
        self.metrics.set_jobs(self.jobs.held());
        let members = loam_store::membership::list_workers(self.store.as_ref(), &self.cluster_name);
        if let Ok(Ok(members)) = tokio::time::timeout(crate::metrics::MEMBERSHIP_READ_TIMEOUT, members).await {
            let online = members.iter().filter(|m| m.online).count();
            self.metrics.set_workers(online, members.len() - online);
        }
        self.metrics.encode()
    }

    /// The load, free and rebalance jobs.
    pub fn jobs(&self) -> &JobService {
        &self.jobs
    }

    /// The TTL rules.
    pub fn ttl(&self) -> &RuleService<TtlRule> {
        &self.ttl
    }

    /// The priority eviction rules.
    pub fn priority(&self) -> &RuleService<PriorityRule> {
        &self.priority
    }

    /// The global file index.
    pub fn file_index(&self) -> &FileIndex {
        &self.file_index
    }

    /// Starts (`Some(replicas)`) or stops (`None`) clear-stale on every worker; errors keyed by worker.
    pub async fn clear_stale(&self, replicas: Option<u32>) -> StoreResult<BTreeMap<String, String>> {
        clear_stale::broadcast(self.store.as_ref(), &self.cluster_name, &self.peers, replicas).await
    }

    /// The client that calls workers with the cluster token.
    pub fn peers(&self) -> &loam_client::PeerClient {
        &self.peers
    }

    /// How long `GET /api/v1/nodes/stats` waits for each worker.
    pub fn worker_stats_timeout(&self) -> Duration {
        self.worker_stats_timeout
    }

    /// The quota rules (usage is in `crate::quota`).
    pub fn quota(&self) -> &RuleService<QuotaRule> {
        &self.quota
    }

    /// The mount table service.
    pub fn mounts(&self) -> &MountService {
        &self.mounts
    }
}
