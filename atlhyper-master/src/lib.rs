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
//! `GET /api/v2/node-metrics/{node}/history?cluster_id=&hours=`,
//! `POST /api/v2/commands`, `GET /api/v2/commands[/{id}]`; `GET /health`, `GET /metrics`
//! (Prometheus text) and the dashboard at `/`; the operator side also
//! `DELETE /api/v2/clusters/{id}` and `DELETE /api/v2/clusters/{id}/nodes/{node}`, and reads
//! `GET /api/v2/audit?from=&to=&action=&limit=` (the audit log of every write).
//! The observe routes, `GET /api/v2/clusters` and `GET /api/v2/node-metrics/{node}/history`
//! answer in the AtlHyper v3 shapes ([`v3`]) unless asked `?format=v2`.
//!
//! # Staleness: offline is offline everywhere
//! A node is online only while its agent lists it online and the agent itself was heard from
//! within [`MasterConfig::agent_offline_after`] (`MASTER_AGENT_OFFLINE_AFTER`, 60 s). Past that,
//! every view says so at once, decided when it is read (no sweep to wait for): the node list's
//! `summary` and `node_status`, the observe summary, nodes (`nodeStatus` extension, v2
//! `node_status`) and node detail (answered from memory with a `status` extension instead of
//! asking a silent agent;
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
//! cluster id it claims (header, query, body) must agree. Tokens come from the environment
//! (`MASTER_AGENT_TOKENS`, `MASTER_VIEWER_TOKEN`, `MASTER_OPERATOR_TOKEN`) and from a token file
//! (`MASTER_TOKEN_FILE`: `agent NAME TOKEN CLUSTER`, `viewer NAME TOKEN`, `operator NAME TOKEN`
//! lines, `#` comments), re-read every 5 s so a mounted Secret rotates them: list the old and
//! the new token of a role together while clients move over; a file that does not parse (an
//! empty one included: a half-written Secret) keeps the tokens in force, its error naming the
//! file and line (`atlhyper_http::token_file` and `watched_file`, shared with the agent and the
//! daemon). With a token file the master is never open. With `MASTER_TLS_CLIENT_CA` an agent's client certificate identifies it (the
//! claimed cluster id must be one of its DNS names), instead of a token or next to one. Reader tokens (viewer, operator) guard
//! the API and `/metrics`. Tokens are compared in constant time and never logged or printed.
//! `MASTER_TLS_CLIENT_CERT_MODE=agents` asks the certificate of agents only: readers keep their
//! tokens. Every write through the API, refused ones included, is recorded in the audit log
//! (time, token name, client address, action, target, status) through the store.
//! Without agent tokens, or without reader tokens, the master is *open*: [`run_master`] and
//! [`run_from_args`] refuse to serve it on anything but a loopback address, and it answers only
//! requests naming a loopback host (`localhost`, `127.0.0.1`, `[::1]`, any port; else 421, against
//! DNS rebinding) and only JSON writes (`Content-Type: application/json`; else 415, against
//! cross-site forms).
//!
//! # Several masters over one PostgreSQL database
//! With `MASTER_DB_URL` ([`Master::share_database`]) masters are interchangeable. Each tells
//! the others, by `NOTIFY`, which nodes it stored, which agent it heard, which command it queued
//! and what was deleted; each `LISTEN`s on a connection of its own and re-reads the named latest
//! rows, so a snapshot pushed to one is in every master's views within a second and a command
//! created on one wakes the long poll its agent holds on another. After its listening connection
//! drops, a master reconnects and re-reads every latest row. Command expiry, the retention prune
//! and alert evaluation run on the holder of a session advisory lock only; the others retry it
//! every `MASTER_LEADER_INTERVAL`. `/health` (always 200) says `"status": "degraded"` while the
//! database does not answer and `"leader"`; `/metrics` has `atlhyper_master_leader` and
//! `atlhyper_master_database_up`. A master whose database is down at start serves degraded and
//! catches up once it answers.
//!
//! # Limits
//! Every write has a per-client token bucket (429 with `Retry-After` when spent): snapshots
//! (1200/min), heartbeats (300/min) and results (6000/min) per agent, operator writes (600/min)
//! per reader token, or per client address where no token identifies the client. Command `params`
//! are at most 64 KiB (413), a cluster has at most 1000 open commands (429). The heavy readers
//! (history, observe detail and series, the full node list, stored series) serve 64 requests per class at once;
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
mod audit;
mod auth;
mod cli;
mod commands;
mod config;
pub mod dashboard;
mod error;
mod exposition;
mod fleet;
mod footprint;
mod hub;
mod ingest;
mod limits;
#[cfg(feature = "postgres")]
pub mod migrate;
mod open_mode;
mod retire;
mod routes;
mod series;
mod state;
mod tasks;
mod token_file;
pub mod v3;
mod view;

use std::future::Future;
use std::sync::Arc;

use atlhyper_http::serve::{ServeLimits, serve_with};
use atlhyper_http::tls::ServerTls;
use atlhyper_store::SqliteStore;

pub use atlhyper_http::serve::{DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_CONNECTIONS};
pub use cli::{MasterArgs, parse_listen_arg};
pub use config::{
    ClientCertMode, ConfigError, MasterConfig, RateLimit, parse_agent_tokens, parse_rate_limit,
    parse_token_list,
};
pub use error::{ApiError, MasterError};
pub use hub::DataHub;
pub use ingest::{IngestReport, Ingested};
pub use routes::clusters::MAX_HISTORY_HOURS;
pub use routes::commands::MAX_COMMAND_TIMEOUT_SECS;
pub use routes::observe::MAX_SERIES_MINUTES;
pub use state::Master;
pub use view::ClusterView;

/// Serves `master` on `listener` until `shutdown` completes, with its background tasks
/// (command expiry, hourly retention prune, and the fleet's when it shares its database);
/// restores the stored state first (over a shared database that does not answer, the master
/// starts degraded and its fleet listener reads the state once it does). At shutdown long
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
    master.config.validate()?;
    let addr = listener.local_addr().map_err(MasterError::Listen)?;
    if master.config.is_open() && !addr.ip().is_loopback() {
        return Err(MasterError::OpenOnNetwork(addr));
    }
    let tls = master.config.tls.clone().map(ServerTls::load).transpose()?;
    master
        .tokens
        .reload()
        .map_err(|e| ConfigError::new("MASTER_TOKEN_FILE", e.to_string()))?;
    if let Err(e) = master.restore().await {
        // Over a shared database the fleet's listener reads it all once it answers.
        if !master.fleet.is_shared() {
            return Err(e);
        }
        master.fleet.set_database_up(false);
        tracing::warn!(error = %e, "restoring from the database failed; starting from memory");
    }
    let tasks = tasks::spawn_all(&master);
    let token = master.shutdown.clone();
    let limits = ServeLimits {
        header_timeout: master.config.header_timeout,
        max_connections: master.config.max_connections,
    };
    tracing::info!(%addr, tls = tls.is_some(), "master listening");
    // Long polls and waiting requests end at the token, then in-flight requests finish.
    serve_with(listener, master.router(), limits, tls, async move {
        shutdown.await;
        token.cancel();
    })
    .await;
    master.shutdown.cancel();
    if let Some(notifications) = master.notifications.get() {
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
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|source| MasterError::DataDir {
                path: dir.to_path_buf(),
                source,
            })?;
    }
    let path = path.to_path_buf();
    let store = tokio::task::spawn_blocking(move || SqliteStore::open(path))
        .await
        .map_err(|_| MasterError::Task("opening the database"))??;
    Ok(Arc::new(store))
}

/// Connects to the PostgreSQL database at `url` (TLS as its `sslmode` says, checked against
/// `ca_file` when given) and migrates its schema.
#[cfg(feature = "postgres")]
pub async fn open_postgres(
    url: &str,
    ca_file: Option<&std::path::Path>,
) -> Result<Arc<atlhyper_store::PgStore>, MasterError> {
    let options = postgres_options(ca_file);
    Ok(Arc::new(
        atlhyper_store::PgStore::connect_with(url, &options).await?,
    ))
}

#[cfg(feature = "postgres")]
fn postgres_options(ca_file: Option<&std::path::Path>) -> atlhyper_store::PgOptions {
    atlhyper_store::PgOptions {
        ca_file: ca_file.map(std::path::Path::to_path_buf),
        ..atlhyper_store::PgOptions::default()
    }
}

/// What the `atlhyper-master` binary runs: the configuration from `args`, PostgreSQL at
/// `args.db_url` when set (cargo feature `postgres`; one of a fleet of masters sharing it, see
/// `Master::share_database`; started degraded when the database is unreachable), else SQLite
/// at `args.db_path`, bound to `args.listen`, until `shutdown` completes.
///
/// Refuses ([`MasterError::OpenOnNetwork`]), before touching the database or the network, an
/// open configuration (see [`MasterConfig::is_open`]) on a non-loopback address, as
/// `atlhyper up` does: quietly serving somewhere else than asked would hide the mistake.
pub async fn run_from_args(
    args: &MasterArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), MasterError> {
    let config = args.to_config()?;
    if config.is_open() && !config.listen.ip().is_loopback() {
        return Err(MasterError::OpenOnNetwork(config.listen));
    }
    match args.db_url.as_deref().filter(|u| !u.is_empty()) {
        #[cfg(feature = "postgres")]
        Some(url) => {
            let ca_file = args.db_ca_file.as_deref();
            let store = match open_postgres(url, ca_file).await {
                Ok(store) => store,
                // Serve anyway (degraded); the fleet's listener migrates and catches up once
                // the database answers.
                Err(MasterError::Store(atlhyper_store::StoreError::Backend(e))) => {
                    tracing::warn!(error = %e, "database unreachable at start; serving degraded");
                    Arc::new(atlhyper_store::PgStore::lazy(
                        url,
                        &postgres_options(ca_file),
                    )?)
                }
                Err(e) => return Err(e),
            };
            serve_store(args, config, store.clone(), shutdown, true, |master| {
                master.share_database(store);
            })
            .await
        }
        #[cfg(not(feature = "postgres"))]
        Some(_) => Err(ConfigError::new(
            "MASTER_DB_URL",
            "this build has no PostgreSQL support (cargo feature `postgres` of atlhyper-master)",
        )
        .into()),
        None => {
            let store = open_sqlite(&args.db_path).await?;
            serve_store(args, config, store, shutdown, false, |_| {}).await
        }
    }
}

/// Every store trait of one engine.
trait Store:
    atlhyper_store::MetricsStore
    + atlhyper_store::CommandQueue
    + atlhyper_store::AgentRegistry
    + atlhyper_store::AlertStore
    + atlhyper_store::NotifyStore
    + atlhyper_store::SeriesStore
    + atlhyper_store::AuditLog
{
}

impl<T> Store for T where
    T: atlhyper_store::MetricsStore
        + atlhyper_store::CommandQueue
        + atlhyper_store::AgentRegistry
        + atlhyper_store::AlertStore
        + atlhyper_store::NotifyStore
        + atlhyper_store::SeriesStore
        + atlhyper_store::AuditLog
{
}

/// Binds, starts alerting and notification over `store`, lets `attach` finish the master
/// (joining a fleet) and serves until `shutdown`. `shared`: a database other masters may use,
/// which may not answer yet (notification then starts once it does).
async fn serve_store<S: Store>(
    args: &MasterArgs,
    config: MasterConfig,
    store: Arc<S>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    shared: bool,
    attach: impl FnOnce(&Master),
) -> Result<(), MasterError> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| MasterError::Bind {
            addr: config.listen,
            source,
        })?;
    let notify = args.notify_config()?;
    let settings = args.alerting.to_settings()?;
    let late = Arc::new(alerting::notify::late::LatePublisher::default());
    let dispatcher = match alerting::notify::Dispatcher::start(notify.clone(), store.clone()).await
    {
        Ok(dispatcher) => Some(dispatcher),
        // A shared database that does not answer yet: notification starts once it does.
        Err(alerting::notify::NotifyError::Store(e)) if shared => {
            tracing::warn!(error = %e, "alert notification waits for the database");
            None
        }
        Err(e) => return Err(e.into()),
    };
    let publisher: Arc<dyn alerting::AlertPublisher> = match &dispatcher {
        Some(dispatcher) => Arc::new(dispatcher.clone()),
        None => late.clone(),
    };
    let alerting = alerting::Alerting::new(store.clone(), publisher, settings);
    let master = Master::with_alerting(
        config,
        store.clone(),
        store.clone(),
        store.clone(),
        alerting,
    )
    .with_series_store(store.clone())
    .with_audit_log(store.clone());
    match dispatcher {
        Some(dispatcher) => {
            master.set_notifications(dispatcher);
        }
        None => {
            tokio::spawn(alerting::notify::late::start_when_reachable(
                master.clone(),
                notify,
                store,
                late,
            ));
        }
    }
    attach(&master);
    run_master(master, listener, shutdown).await
}
