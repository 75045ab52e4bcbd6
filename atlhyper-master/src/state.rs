//! The master's application state: everything a route, a middleware or a periodic task reads,
//! as named fields. Cheap to clone (every field is shared), as axum's `State` wants.
//!
//! To give a new part of the master (say, alerting) its own state: add a field here, built in
//! [`Master::new`]; its routes and tasks then read it from the `Master` they are handed (see
//! [`crate::routes`] and [`crate::tasks`]).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use atlhyper_model::{ClusterSnapshot, LivenessChanges, NodeState, NodeStatus};
use atlhyper_store::{
    AgentRegistry, AuditLog, CommandQueue, MemoryStore, MetricsStore, SeriesStore, StoreError,
};
use axum::Router;
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::auth::Tokens;
use crate::commands::{ResultWaiters, TransientCommands};
use crate::config::MasterConfig;
use crate::error::{ApiError, MasterError};
use crate::exposition::MasterStats;
use crate::hub::DataHub;
use crate::ingest::IngestReport;
use crate::limits::Limits;
use crate::view::ClusterView;

/// The master: its configuration, tokens, in-memory hub, stores, command channel, limits and
/// counters. Cheap to clone.
///
/// A master serves once: [`run_master`](crate::run_master) stops its long polls and waiting
/// requests at shutdown; build a new one (over the same stores) to serve again.
#[derive(Clone)]
pub struct Master {
    pub(crate) config: Arc<MasterConfig>,
    pub(crate) tokens: Arc<Tokens>,
    /// The latest view of every cluster, answered from memory.
    pub(crate) hub: Arc<DataHub>,
    pub(crate) metrics: Arc<dyn MetricsStore>,
    pub(crate) commands: Arc<dyn CommandQueue>,
    pub(crate) agents: Arc<dyn AgentRegistry>,
    /// Series of every figure (see [`Master::with_series_store`]).
    pub(crate) series: Arc<dyn SeriesStore>,
    /// Each node's open series interval.
    pub(crate) series_open: Arc<atlhyper_store::SeriesAccumulator>,
    /// Where every write through the API is recorded ([`crate::audit`]).
    pub(crate) audit: Arc<dyn AuditLog>,
    /// Requests waiting for a command's result.
    pub(crate) waiters: Arc<ResultWaiters>,
    /// Commands kept in memory only (the observe detail queries).
    pub(crate) transient: Arc<TransientCommands>,
    pub(crate) stats: Arc<MasterStats>,
    pub(crate) limits: Arc<Limits>,
    /// Held while a command is counted against its cluster's cap and queued, so concurrent
    /// creations cannot pass the cap together.
    pub(crate) creating: Arc<tokio::sync::Mutex<()>>,
    /// The last logged state of every node, so each online/offline transition is logged once.
    pub(crate) node_liveness: Arc<parking_lot::Mutex<LivenessChanges<(String, String)>>>,
    /// Alert rules, running alerts and their evaluation.
    pub(crate) alerting: Arc<crate::alerting::Alerting>,
    /// Alert notification, when attached ([`Master::set_notifications`]).
    pub(crate) notifications: Arc<std::sync::OnceLock<crate::alerting::notify::Dispatcher>>,
    /// Its place among masters sharing one database: news, leader, database health.
    pub(crate) fleet: Arc<crate::fleet::Fleet>,
    /// Cancelled at shutdown: long polls answer, waiting requests end, periodic tasks stop.
    pub(crate) shutdown: CancellationToken,
}

impl std::fmt::Debug for Master {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Master")
            .field("config", &self.config)
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

impl Master {
    /// A master over these stores (often one engine behind all three), with alert state in
    /// memory and no notification ([`Alerting::in_memory`](crate::alerting::Alerting::in_memory)).
    pub fn new(
        config: MasterConfig,
        metrics: Arc<dyn MetricsStore>,
        commands: Arc<dyn CommandQueue>,
        agents: Arc<dyn AgentRegistry>,
    ) -> Self {
        Self::with_alerting(
            config,
            metrics,
            commands,
            agents,
            crate::alerting::Alerting::in_memory(),
        )
    }

    /// A master over these stores with this alerting (its store, publisher and rules file).
    pub fn with_alerting(
        config: MasterConfig,
        metrics: Arc<dyn MetricsStore>,
        commands: Arc<dyn CommandQueue>,
        agents: Arc<dyn AgentRegistry>,
        alerting: crate::alerting::Alerting,
    ) -> Self {
        Self {
            alerting: Arc::new(alerting),
            notifications: Arc::default(),
            tokens: Arc::new(Tokens::from_config(&config)),
            hub: Arc::new(DataHub::with_offline_after(config.agent_offline_after)),
            limits: Arc::new(Limits::from_config(&config)),
            config: Arc::new(config),
            metrics,
            commands,
            agents,
            series: Arc::new(MemoryStore::new()),
            series_open: Arc::default(),
            audit: Arc::new(MemoryStore::new()),
            waiters: Arc::default(),
            transient: Arc::default(),
            stats: Arc::default(),
            creating: Arc::default(),
            node_liveness: Arc::default(),
            fleet: Arc::default(),
            shutdown: CancellationToken::new(),
        }
    }

    /// This master with its series kept in `store` (by default they are kept in memory only,
    /// and lost at exit): call before serving.
    pub fn with_series_store(mut self, store: Arc<dyn SeriesStore>) -> Self {
        self.series = store;
        self
    }

    /// This master with its audit log in `log` (the constructors keep it in memory; the
    /// binaries pass their store, so the log survives a restart).
    pub fn with_audit_log(mut self, log: Arc<dyn AuditLog>) -> Self {
        self.audit = log;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &MasterConfig {
        &self.config
    }

    /// The in-memory state of every cluster.
    pub fn hub(&self) -> &DataHub {
        &self.hub
    }

    /// Attaches alert notification (silences API, `silenced_by` in the alerts API, `/metrics`
    /// figures; stopped with the master). Only the first call counts; returns whether it did.
    /// The engine publishes to whatever publisher its [`Alerting`](crate::alerting::Alerting)
    /// was built with: pass the same dispatcher there (as [`crate::run_from_args`] does).
    pub fn set_notifications(&self, dispatcher: crate::alerting::notify::Dispatcher) -> bool {
        let stats = dispatcher.stats();
        let lookup = Arc::new(dispatcher.clone());
        let set = self.notifications.set(dispatcher).is_ok();
        if set {
            let _ = self.stats.notifications.set(stats);
            self.alerting.set_silence_lookup(lookup);
        }
        set
    }

    /// Alert notification, when attached.
    pub fn notifications(&self) -> Option<&crate::alerting::notify::Dispatcher> {
        self.notifications.get()
    }

    /// The alerting state: rules and running alerts.
    pub fn alerting(&self) -> &crate::alerting::Alerting {
        &self.alerting
    }

    /// Runs one alert evaluation now (the periodic task runs one every
    /// `MASTER_ALERT_EVAL_INTERVAL`).
    pub async fn evaluate_alerts(&self) {
        self.evaluate_alerts_at(Utc::now()).await;
    }

    /// One evaluation stamped `at` (the periodic task passes its scheduled time, so `for`
    /// durations count whole intervals whatever the timer's jitter).
    pub(crate) async fn evaluate_alerts_at(&self, at: DateTime<Utc>) {
        self.alerting.evaluate(&self.hub, &*self.metrics, at).await;
    }

    /// Every route: agent side, API, `/health`, `/metrics` and the dashboard (the list is in the
    /// crate docs).
    pub fn router(&self) -> Router {
        crate::routes::router(self.clone())
    }

    /// Ingests one snapshot of `cluster_id` (the authenticated identity): settles the
    /// snapshot's time, checks its seq, admits every node alone (bounds, node cap, memory
    /// budget, clock: see the `admission` rules; refused nodes are listed in the report),
    /// upserts every admitted node's latest snapshot, adds history points (one per node per
    /// history interval, by the points' timestamps), merges the agent's backfill without
    /// duplicates, records the agent as seen and publishes the new view.
    ///
    /// On a store failure the view is still published (readers see fresh figures) but the seq
    /// is not recorded, so the agent's retry is stored; the error is a 503. Numbers must be
    /// finite (JSON carries no others); a snapshot built in code with a NaN is refused whole.
    pub async fn ingest_snapshot(
        &self,
        cluster_id: &str,
        snapshot: ClusterSnapshot,
        remote_addr: &str,
    ) -> Result<IngestReport, ApiError> {
        crate::ingest::ingest_snapshot(self, cluster_id, snapshot, remote_addr).await
    }

    /// Deletes a cluster: its hub entry, the latest snapshots of its nodes and its agent registry
    /// entry (history stays until the retention). Returns whether the master knew it.
    pub async fn delete_cluster(&self, cluster_id: &str) -> Result<bool, ApiError> {
        crate::retire::delete_cluster(self, cluster_id).await
    }

    /// Deletes a node: its place in the cluster's view and its latest snapshot (history stays
    /// until the retention). Returns whether the master knew it.
    pub async fn delete_node(&self, cluster_id: &str, node_name: &str) -> Result<bool, ApiError> {
        crate::retire::delete_node(self, cluster_id, node_name).await
    }

    /// Loads the stored state into the hub, after retiring nodes silent past
    /// `node_retire_after`: every cluster's latest node snapshots, every node offline until its
    /// agent's next snapshot (the master has not heard the nodes since it started), and every
    /// agent's last contact. Called by [`run_master`](crate::run_master) before it serves.
    pub async fn restore(&self) -> Result<(), MasterError> {
        crate::retire::retire_silent_nodes(self).await;
        let now = Utc::now();
        for cluster_id in self.metrics.list_clusters().await? {
            let nodes = self.metrics.list_latest(&cluster_id).await?;
            if nodes.is_empty() {
                continue;
            }
            let mut snapshot = ClusterSnapshot {
                cluster_id: cluster_id.clone(),
                timestamp: nodes.iter().map(|n| n.timestamp).max().unwrap_or(now),
                ..ClusterSnapshot::default()
            };
            for node in nodes {
                snapshot.node_status.insert(
                    node.node_name.clone(),
                    NodeStatus {
                        state: NodeState::Offline,
                        last_seen: node.timestamp,
                    },
                );
                snapshot.node_metrics.insert(node.node_name.clone(), node);
            }
            let entry = self.hub.entry(&cluster_id);
            if entry.view().is_none() {
                entry.publish(Arc::new(ClusterView::new(snapshot, now)));
            }
        }
        for agent in self
            .agents
            .list(now, self.config.agent_offline_after)
            .await?
        {
            let entry = self.hub.entry(&agent.cluster_id);
            let never = chrono::DateTime::<Utc>::default();
            if agent.last_heartbeat > never {
                entry.heard(agent.last_heartbeat, false);
            }
            if agent.last_snapshot > never {
                entry.heard(agent.last_snapshot, true);
            }
        }
        self.alerting.load().await?;
        Ok(())
    }

    /// The cluster's view, 404 when the master has none.
    pub(crate) fn cluster_view(&self, cluster_id: &str) -> Result<Arc<ClusterView>, ApiError> {
        self.hub
            .view(cluster_id)
            .ok_or_else(|| ApiError::not_found(format!("cluster {cluster_id} not found")))
    }

    /// The one place a store failure is counted (`atlhyper_master_store_errors_total`) and
    /// logged with its detail; `what` names the work that failed ("storing history").
    pub(crate) fn store_failure(&self, what: &str, error: &StoreError) {
        self.stats.store_errors.fetch_add(1, Ordering::Relaxed);
        tracing::error!(%error, "{what} failed");
    }

    /// [`Self::store_failure`], then the answer a client gets for it (without the detail). Use as
    /// `.map_err(master.store_failed("what"))`.
    pub(crate) fn store_failed(
        &self,
        what: &'static str,
    ) -> impl Fn(StoreError) -> ApiError + Copy + '_ {
        move |e| {
            self.store_failure(what, &e);
            ApiError::store(what, &e)
        }
    }
}
