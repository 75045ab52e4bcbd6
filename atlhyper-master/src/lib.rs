//! atlhyper-master: multi-cluster ingest, persistence, REST API, commands and dashboard.
//!
//! One [`Master`] takes the agents' snapshots (`POST /agent/snapshot`, gzip, identity from the
//! bearer token), keeps the latest `ClusterSnapshot` of every
//! cluster in its [`DataHub`], persists the latest figures of every node and one history point
//! per node per interval through the store traits, and answers the dashboard from memory. Detail
//! queries only an agent can answer travel as commands: queued, the agent's long poll wakes at
//! once, the answer comes back in milliseconds.
//!
//! ```
//! use std::sync::Arc;
//!
//! use atlhyper_master::{Master, MasterConfig, run_master};
//! use atlhyper_store::MemoryStore;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let store = Arc::new(MemoryStore::new());
//! let master = Master::new(MasterConfig::default(), store.clone(), store.clone(), store);
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let addr = listener.local_addr().unwrap();
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let server = tokio::spawn(run_master(master, listener, async move {
//!     let _ = stopped.await;
//! }));
//!
//! // Any HTTP client works; here a raw request over the socket.
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
//! s.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
//! let mut answer = String::new();
//! s.read_to_string(&mut answer).await.unwrap();
//! assert!(answer.starts_with("HTTP/1.1 200"));
//!
//! stop.send(()).unwrap();
//! server.await.unwrap().unwrap();
//! # });
//! ```
//!
//! Routes (AtlHyper v2 compatible): the agent side `POST /agent/snapshot`,
//! `POST /agent/heartbeat`, `GET /agent/commands` (long poll), `POST /agent/result`; the reader
//! side `GET /api/v2/clusters`, `GET /api/v2/agents`, `GET /api/v2/clusters/{id}/node-metrics[?view=overview]`,
//! `.../node-metrics/{node}`, `.../node-metrics/{node}/history?hours=1..=720`,
//! `GET /api/v2/observe/metrics/{summary,nodes,nodes/{name},nodes/{name}/series}?cluster_id=`,
//! `POST /api/v2/commands`, `GET /api/v2/commands[/{id}]`; `GET /health`, `GET /metrics`
//! (Prometheus text) and the dashboard at `/`; the operator side also
//! `DELETE /api/v2/clusters/{id}` and `DELETE /api/v2/clusters/{id}/nodes/{node}`.
//!
//! # Staleness: offline is offline everywhere
//! A node is online only while its agent lists it online and the agent itself was heard from
//! within [`MasterConfig::agent_offline_after`] (`MASTER_AGENT_OFFLINE_AFTER`, 60 s). Past that,
//! every view says so at once, decided when it is read (no sweep to wait for): the node list's
//! `summary` and `node_status`, the observe summary, nodes (`node_status` extension) and node
//! detail (answered from memory with a `status` extension instead of asking a silent agent;
//! the series answers 503 at once), the dashboard, and `/metrics`, where the node's
//! `atlhyper_node_up` is 0, its cluster's `atlhyper_cluster_up` is 0, and none of its current
//! figures (CPU, memory, disk, filesystem, network, temperature, load, uptime) is exported:
//! absent, so Prometheus marks the series stale, never frozen at the last value. Only
//! `atlhyper_node_snapshot_timestamp_seconds` stays, the time of its last report. After a
//! restart the nodes restored from the store are offline until their agent's next snapshot.
//!
//! # Retirement
//! `DELETE /api/v2/clusters/{id}` (operator) answers 204 No Content and removes the cluster's
//! hub entry, the latest snapshots of its nodes and its agent registry entry;
//! `DELETE /api/v2/clusters/{id}/nodes/{node}` (operator) answers 204 and removes the node from
//! its cluster's view and its latest snapshot. Both answer 404 for what the master does not
//! know, 403 without an operator token. History stays until the retention prune; a restart does
//! not bring them back. Like a Prometheus target, a deleted cluster whose agent keeps pushing
//! is back at its next contact, and a deleted node is back when it reports again (its agent
//! lists it online); a node its agent still lists as offline stays out. Nodes whose latest
//! snapshot is older than [`MasterConfig::node_retire_after`] (`MASTER_NODE_RETIRE_AFTER`,
//! 7 days) leave the same way on their own, at each retention prune and at start.
//!
//! # How it stays fast
//! - Every accepted snapshot is turned once into the dashboard's answers (node list and summary
//!   JSON, serialized once; large ones also gzip-compressed once, in the background), so a
//!   dashboard request clones bytes and never touches the store.
//! - History is sampled by the points' own timestamps: one point per node per
//!   [`MasterConfig::history_interval`] bucket, whatever the push rate.
//! - The observe detail queries (`node_detail`, `node_series`) are transient commands kept in
//!   memory while the request waits, so a round trip costs no store write; commands created
//!   through `POST /api/v2/commands` are persisted and survive a restart.
//! - A queued command wakes its cluster's long polls through a per-cluster `Notify`.
//!
//! # Trust in what is shown
//! One bad node never costs its cluster the push: every node of a snapshot is admitted alone
//! (DNS-1123 name, caps on every list and string, command lines cut at 4 KiB, at most
//! [`MasterConfig::max_nodes_per_cluster`] nodes held per cluster); refused nodes are listed with their reason in the
//! answer's `rejected` and counted on `/metrics` (`atlhyper_master_nodes_rejected_total`). A
//! node timestamp more than [`MasterConfig::max_clock_ahead`] (`MASTER_MAX_CLOCK_AHEAD`, 5 min)
//! ahead or older than the retention is replaced by the receive time, the skew kept in
//! `clock_skew_seconds`; "latest" is the last snapshot that arrived, never the largest
//! timestamp. Only what makes the whole push unreadable or unauthorised (bad gzip or JSON, a
//! body over the limits, the token) refuses it whole; one of the limits is the memory the body
//! would take once parsed ([`MasterConfig::snapshot_memory_budget`]), estimated before parsing.
//!
//! # Security
//! Agent tokens map to cluster ids: an agent's identity is its token, never the body, and every
//! cluster id it claims (header, query, body) must agree. Reader tokens (viewer, operator) guard
//! the API and `/metrics`. Tokens are compared in constant time and never logged or printed.
//! Without agent tokens, or without reader tokens, the master is *open*: [`run_master`] and
//! [`run_from_args`] refuse to serve it on anything but a loopback address, and it answers only
//! requests naming a loopback host (`localhost`, `127.0.0.1`, `[::1]`, any port; else 421, against
//! DNS rebinding) and only JSON writes (`Content-Type: application/json`; else 415, against
//! cross-site forms).
//!
//! # Limits
//! Every write has a per-client token bucket (429 with `Retry-After` when spent): snapshots
//! (1200/min), heartbeats (300/min) and results (6000/min) per agent, operator writes (600/min)
//! per reader token, or per client address where no token identifies the client. Command `params`
//! are at most 64 KiB (413), a cluster has at most 1000 open commands (429). The heavy readers
//! (history, observe detail and series, the full node list) serve 64 requests per class at once;
//! more wait up to 1 s, then get 503 with `Retry-After`. `/metrics` counts the refusals
//! (`atlhyper_master_too_many_requests_total{class,reason}`,
//! `atlhyper_master_heavy_reads_refused_total{class}`). Each is a [`MasterConfig`] field, a flag
//! and a `MASTER_*` variable.
//!
//! A client has [`MasterConfig::header_timeout`] (10 s) to send a request's headers, or its
//! connection is closed, so connections dribbling header bytes (slowloris) do not pile up; at
//! most [`MasterConfig::max_connections`] are served at once, the rest wait in the backlog.

mod admission;
pub mod alerting;
mod api;
mod auth;
mod cli;
mod commands;
mod config;
pub mod dashboard;
mod error;
mod exposition;
mod footprint;
mod hub;
mod ingest;
mod limits;
mod open_mode;
mod retire;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use atlhyper_agent::serve::{ServeLimits, serve};
use atlhyper_model::{ClusterSnapshot, NodeState, NodeStatus};
use atlhyper_store::{AgentRegistry, CommandQueue, MetricsStore, SqliteStore};
use axum::Router;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{delete, get, post};
use chrono::Utc;
use tokio_util::sync::CancellationToken;

pub use api::{MAX_COMMAND_TIMEOUT_SECS, MAX_HISTORY_HOURS, MAX_SERIES_MINUTES};
pub use atlhyper_agent::serve::{DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_CONNECTIONS};
pub use cli::MasterArgs;
pub use config::{
    ConfigError, MasterConfig, RateLimit, parse_agent_tokens, parse_duration, parse_rate_limit,
    parse_token_list,
};
pub use error::{ApiError, MasterError};
pub use hub::{ClusterView, DataHub};
pub use ingest::{IngestReport, Ingested};

use auth::Tokens;
use commands::{ResultWaiters, TransientCommands};
use exposition::MasterStats;
use limits::Limits;

/// The master: hub, stores, command channel and metrics. Cheap to clone (one `Arc` inside).
///
/// A master serves once: [`run_master`] stops its long polls and waiting requests at shutdown;
/// build a new one (over the same stores) to serve again.
#[derive(Clone)]
pub struct Master {
    inner: Arc<Inner>,
}

struct Inner {
    config: MasterConfig,
    tokens: Tokens,
    hub: DataHub,
    metrics: Arc<dyn MetricsStore>,
    commands: Arc<dyn CommandQueue>,
    agents: Arc<dyn AgentRegistry>,
    waiters: ResultWaiters,
    transient: TransientCommands,
    stats: MasterStats,
    limits: Limits,
    /// Held while a command is counted against its cluster's cap and queued, so concurrent
    /// creations cannot pass the cap together.
    creating: tokio::sync::Mutex<()>,
    shutdown: CancellationToken,
    /// Alert notification, when attached ([`Master::set_notifications`]).
    notifications: std::sync::OnceLock<alerting::notify::Dispatcher>,
}

impl Inner {
    fn count_store_error(&self) {
        self.stats.store_errors.fetch_add(1, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for Master {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Master")
            .field("config", &self.inner.config)
            .field("tokens", &self.inner.tokens)
            .finish_non_exhaustive()
    }
}

impl Master {
    /// A master over these stores (often one engine behind all three).
    pub fn new(
        config: MasterConfig,
        metrics: Arc<dyn MetricsStore>,
        commands: Arc<dyn CommandQueue>,
        agents: Arc<dyn AgentRegistry>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                tokens: Tokens::from_config(&config),
                hub: DataHub::with_offline_after(config.agent_offline_after),
                limits: Limits::from_config(&config),
                config,
                metrics,
                commands,
                agents,
                waiters: ResultWaiters::default(),
                transient: TransientCommands::default(),
                stats: MasterStats::default(),
                creating: tokio::sync::Mutex::new(()),
                shutdown: CancellationToken::new(),
                notifications: std::sync::OnceLock::new(),
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &MasterConfig {
        &self.inner.config
    }

    /// Attaches alert notification (silences API, `/metrics` figures; stopped with the master).
    /// Only the first call counts; returns whether it did.
    pub fn set_notifications(&self, dispatcher: alerting::notify::Dispatcher) -> bool {
        let stats = dispatcher.stats();
        let set = self.inner.notifications.set(dispatcher).is_ok();
        if set {
            let _ = self.inner.stats.notifications.set(stats);
        }
        set
    }

    /// Alert notification, when attached.
    pub fn notifications(&self) -> Option<&alerting::notify::Dispatcher> {
        self.inner.notifications.get()
    }

    /// The in-memory state of every cluster.
    pub fn hub(&self) -> &DataHub {
        &self.inner.hub
    }

    /// Every route: agent side, API, `/health`, `/metrics` and the dashboard.
    ///
    /// Every route added before the `route_layer` sits under the limits: write routes (agent
    /// POSTs, any non-GET under `/api/`) are rate limited, heavy readers bounded. An open master
    /// also checks every request's Host and the content type of writes.
    pub fn router(&self) -> Router {
        let router = Router::new()
            .route("/agent/snapshot", post(ingest::post_snapshot))
            .route("/agent/heartbeat", post(ingest::post_heartbeat))
            .route("/agent/commands", get(ingest::get_commands))
            .route("/agent/result", post(ingest::post_result))
            .route("/health", get(api::health))
            .route("/metrics", get(api::metrics))
            .route("/api/v2/clusters", get(api::clusters))
            .route("/api/v2/agents", get(api::agents))
            .route("/api/v2/clusters/{id}", delete(retire::delete_cluster))
            .route(
                "/api/v2/clusters/{id}/nodes/{node}",
                delete(retire::delete_node),
            )
            .route("/api/v2/clusters/{id}/node-metrics", get(api::node_metrics))
            .route(
                "/api/v2/clusters/{id}/node-metrics/{node}",
                get(api::node_detail),
            )
            .route(
                "/api/v2/clusters/{id}/node-metrics/{node}/history",
                get(api::node_history),
            )
            .route("/api/v2/observe/metrics/summary", get(api::observe_summary))
            .route("/api/v2/observe/metrics/nodes", get(api::observe_nodes))
            .route(
                "/api/v2/observe/metrics/nodes/{name}",
                get(api::observe_node),
            )
            .route(
                "/api/v2/observe/metrics/nodes/{name}/series",
                get(api::observe_series),
            )
            .route(
                "/api/v2/commands",
                post(api::create_command).get(api::list_commands),
            )
            .route("/api/v2/commands/{id}", get(api::get_command))
            .merge(alerting::notify::api::routes())
            // Add routes above this line: the limits cover the routes added before them.
            .route_layer(from_fn_with_state(self.clone(), limits::limit))
            .with_state(self.clone())
            .merge(dashboard::router());
        if self.inner.config.is_open() {
            router.layer(from_fn(open_mode::guard))
        } else {
            router
        }
    }

    /// Loads the stored state into the hub, after retiring nodes silent past
    /// `node_retire_after`: every cluster's latest node snapshots, every node offline until its
    /// agent's next snapshot (the master has not heard the nodes since it started), and every
    /// agent's last contact. Called by [`run_master`] before it serves.
    pub async fn restore(&self) -> Result<(), MasterError> {
        self.retire_silent_nodes().await;
        let inner = &self.inner;
        let now = Utc::now();
        for cluster_id in inner.metrics.list_clusters().await? {
            let nodes = inner.metrics.list_latest(&cluster_id).await?;
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
            let entry = inner.hub.entry(&cluster_id);
            if entry.view().is_none() {
                entry.publish(Arc::new(ClusterView::new(snapshot, now)));
            }
        }
        for agent in inner
            .agents
            .list(now, inner.config.agent_offline_after)
            .await?
        {
            let entry = inner.hub.entry(&agent.cluster_id);
            let never = chrono::DateTime::<Utc>::default();
            if agent.last_heartbeat > never {
                entry.heard(agent.last_heartbeat, false);
            }
            if agent.last_snapshot > never {
                entry.heard(agent.last_snapshot, true);
            }
        }
        Ok(())
    }

    /// Marks commands past their deadline as `timeout` and wakes whoever waits for them.
    async fn expire_commands(&self) {
        let inner = &self.inner;
        match inner.commands.expire(Utc::now()).await {
            Ok(expired) => {
                inner
                    .stats
                    .commands_expired
                    .fetch_add(expired.len() as u64, Ordering::Relaxed);
                for record in &expired {
                    inner.waiters.wake(record);
                }
            }
            Err(e) => {
                inner.count_store_error();
                tracing::warn!(error = %e, "expiring commands failed");
            }
        }
    }

    /// Deletes history, and commands finished, before the retention; retires nodes silent past
    /// `node_retire_after`.
    async fn prune(&self) {
        self.retire_silent_nodes().await;
        let inner = &self.inner;
        let before = Utc::now()
            - chrono::Duration::from_std(inner.config.retention).unwrap_or(chrono::Duration::MAX);
        match inner.metrics.prune_history(before).await {
            Ok(n) => {
                inner.stats.history_pruned.fetch_add(n, Ordering::Relaxed);
                if n > 0 {
                    tracing::info!(deleted = n, %before, "pruned history");
                }
            }
            Err(e) => {
                inner.count_store_error();
                tracing::warn!(error = %e, "pruning history failed");
            }
        }
        // Finished commands share the history's retention; open ones are never deleted.
        match inner.commands.prune_commands(before).await {
            Ok(n) => {
                inner.stats.commands_pruned.fetch_add(n, Ordering::Relaxed);
                if n > 0 {
                    tracing::info!(deleted = n, %before, "pruned finished commands");
                }
            }
            Err(e) => {
                inner.count_store_error();
                tracing::warn!(error = %e, "pruning commands failed");
            }
        }
    }
}

/// How often the rate limits forget clients whose budget has refilled.
const FORGET_IDLE_CLIENTS_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs a background loop every `period` until the master shuts down.
fn every(
    master: &Master,
    period: std::time::Duration,
    name: &'static str,
) -> tokio::task::JoinHandle<()> {
    let master = master.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = master.inner.shutdown.cancelled() => return,
            }
            match name {
                "prune" => master.prune().await,
                "limits" => master.inner.limits.forget_idle(),
                _ => master.expire_commands().await,
            }
        }
    })
}

/// Serves `master` on `listener` until `shutdown` completes, with its background tasks
/// (command expiry, hourly retention prune); restores the stored state first. At shutdown long
/// polls answer empty, waiting requests answer 503, in-flight requests finish, and the
/// background tasks are joined.
///
/// Refuses ([`MasterError::OpenOnNetwork`]) to serve an open master (no agent tokens, or no
/// reader tokens) on anything but a loopback address.
pub async fn run_master(
    master: Master,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), MasterError> {
    master.inner.config.validate()?;
    let addr = listener.local_addr()?;
    if master.inner.config.is_open() && !addr.ip().is_loopback() {
        return Err(MasterError::OpenOnNetwork(addr));
    }
    master.restore().await?;
    let tasks = [
        (
            "expiry",
            every(&master, master.inner.config.expiry_interval, "expiry"),
        ),
        (
            "prune",
            every(&master, master.inner.config.prune_interval, "prune"),
        ),
        (
            "limits",
            every(&master, FORGET_IDLE_CLIENTS_EVERY, "limits"),
        ),
    ];
    let token = master.inner.shutdown.clone();
    let limits = ServeLimits {
        header_timeout: master.inner.config.header_timeout,
        max_connections: master.inner.config.max_connections,
    };
    tracing::info!(%addr, "master listening");
    // Long polls and waiting requests end at the token, then in-flight requests finish.
    serve(listener, master.router(), limits, async move {
        shutdown.await;
        token.cancel();
    })
    .await;
    master.inner.shutdown.cancel();
    if let Some(notifications) = master.inner.notifications.get() {
        notifications.stop().await;
    }
    let mut failed = None;
    for (name, task) in tasks {
        if task.await.is_err() {
            failed = Some(name);
        }
    }
    match failed {
        Some(name) => Err(MasterError::Task(name)),
        None => Ok(()),
    }
}

/// Opens (creating it and its directory if needed) the SQLite database at `path` off the async
/// workers.
pub async fn open_sqlite(path: &std::path::Path) -> Result<Arc<SqliteStore>, MasterError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(dir).await?;
    }
    let path = path.to_path_buf();
    let store = tokio::task::spawn_blocking(move || SqliteStore::open(path))
        .await
        .map_err(|_| MasterError::Task("opening the database"))??;
    Ok(Arc::new(store))
}

/// What the `atlhyper-master` binary runs: the configuration from `args`, SQLite at
/// `args.db_path`, bound to `args.listen`, until `shutdown` completes.
///
/// Refuses ([`MasterError::OpenOnNetwork`]), before touching the database or the network, an
/// open configuration (see [`MasterConfig::is_open`]) on a non-loopback address, as
/// `atlhyper up` does: quietly serving somewhere else than asked would hide the mistake.
pub async fn run_from_args(
    args: &MasterArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), MasterError> {
    let config = args.to_config()?;
    let notify = args.notify_config()?;
    if config.is_open() && !config.listen.ip().is_loopback() {
        return Err(MasterError::OpenOnNetwork(config.listen));
    }
    let store = open_sqlite(&args.db_path).await?;
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let master = Master::new(config, store.clone(), store.clone(), store.clone());
    master.set_notifications(alerting::notify::Dispatcher::start(notify, store).await?);
    run_master(master, listener, shutdown).await
}
