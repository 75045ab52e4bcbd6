//! The atlhyper-rs node daemon and cluster agent, as a library.
//!
//! - **Node daemon** (`atlhyper-metrics`, [`run_daemon`]): collects a
//!   [`NodeMetricsSnapshot`](atlhyper_model::NodeMetricsSnapshot) every interval and POSTs it to
//!   the agent (gzip, bearer token, per-request timeout, exponential backoff with jitter, one
//!   request in flight). While the agent is unreachable it keeps the newest snapshot and a bounded
//!   queue of older ones, counting what it had to drop, and delivers them once the agent answers.
//! - **Cluster agent** (`atlhyper-agent`, [`run_agent`]): the receiver ([`receiver_router`]:
//!   `POST /metrics/node`, `GET /health`, `GET /metrics`) feeds a [`NodeTable`] (latest snapshot
//!   per node, offline after 3 silent intervals, dropped after a TTL, a ring of recent points per
//!   node). A pusher sends a gzip ClusterSnapshot with a strictly increasing `seq` to the master
//!   every interval and backfills what the master missed during an outage; a heartbeat says the
//!   agent is alive; a command loop long-polls the master and runs the built-in commands
//!   ([`execute`]) concurrently. A client has [`AgentConfig::header_timeout`] (10 s) to send a
//!   request's headers, or its connection is closed; at most [`AgentConfig::max_connections`]
//!   are served at once.
//!
//! The agent is the first hop that sees a node's snapshot, so it refuses a bad node alone and
//! says why. `POST /metrics/node` answers:
//!
//! | status | when |
//! |---|---|
//! | 200 `{"status":"ok"}` | taken (also a retry of a snapshot already held, or an older one backfilled) |
//! | 400 | not JSON, not a snapshot; `invalid_name: ...` for a name that is not DNS-1123 |
//! | 401 | missing or wrong bearer token (`AGENT_NODE_TOKEN`, or one of `AGENT_NODE_TOKEN_FILE`) |
//! | 403 | a token of the node-token file limited to one node sent another node's name (logged, counted as `code="403"`) |
//! | 408 | the body did not arrive within [`AgentConfig::body_timeout`] |
//! | 413 | body over [`AgentConfig::body_limit`]; `list_too_long: ...` / `string_too_long: ...` for a list or string over its [`SnapshotBounds`](atlhyper_model::SnapshotBounds) cap (lists are counted before they are built) |
//! | 415 | a Content-Encoding other than gzip or identity |
//! | 429 + `Retry-After` | `too_many_nodes: ...`: a new node while [`AgentConfig::max_nodes`] nodes are held; known nodes keep reporting, expired ones free their place |
//!
//! Errors are `{"error": "..."}`; refusals by reason start with the reason and are counted in
//! `atlhyper_agent_nodes_rejected_total{reason}`. Command lines are cut at 4 KiB. A timestamp
//! more than [`AgentConfig::max_clock_ahead`] (5 min) ahead of the agent's clock, or older than
//! 30 days, is replaced by the receive time and the difference kept in `clock_skew_seconds`,
//! which travels to the master. "Latest" follows arrival, not the node's clock (see
//! [`NodeTable::ingest`]). A snapshot is re-encoded only when something was changed; otherwise
//! the node's own bytes travel on.
//!
//! The pusher drops a cluster snapshot the master refuses as invalid (400, 413, 415, 422),
//! counts it (`atlhyper_agent_push_refused_total{status}`) and goes on at the normal interval;
//! nodes the master refuses alone in an accepted snapshot are counted
//! (`atlhyper_agent_push_nodes_refused_total{reason}`) and logged once per node and reason every
//! 10 minutes; 401, 403, 5xx and no answer are retried with backoff, and what was missed is
//! backfilled.
//!
//! The receiver is a plain [`axum::Router`], so it can be driven without a socket:
//!
//! ```
//! use std::sync::Arc;
//! use atlhyper_agent::{NodeTable, NodeTableConfig, ReceiverState, receiver_router};
//! use axum::body::Body;
//! use axum::http::{Request, StatusCode};
//! use tower::ServiceExt;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let table = Arc::new(NodeTable::new(NodeTableConfig::default()));
//! let app = receiver_router(ReceiverState::new(Arc::clone(&table)));
//!
//! let now = chrono::Utc::now().to_rfc3339();
//! let body = format!(r#"{{"node_name":"worker-1","timestamp":"{now}","cpu":{{"usage_percent":12.5}}}}"#);
//! let response = app
//!     .oneshot(Request::post("/metrics/node").body(Body::from(body.clone())).unwrap())
//!     .await
//!     .unwrap();
//! assert_eq!(response.status(), StatusCode::OK);
//!
//! let now = tokio::time::Instant::now();
//! assert_eq!(table.latest("worker-1", now).unwrap().get(), body);
//! assert_eq!(table.series("worker-1", None, None, now).unwrap()[0].cpu_usage, 12.5);
//! # });
//! ```
//!
//! Running the whole agent takes a configuration and a shutdown future:
//!
//! ```no_run
//! use atlhyper_agent::{AgentConfig, run_agent};
//!
//! # async fn run() -> Result<(), atlhyper_agent::AgentError> {
//! let config = AgentConfig {
//!     cluster_id: "prod-eu".into(),
//!     master_url: "http://master.example:8080".into(),
//!     ..AgentConfig::default()
//! };
//! run_agent(config, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

mod agent;
mod backoff;
mod client_token;
mod commands;
mod config;
mod daemon;
mod error;
mod failover;
mod master;
mod node_table;
mod node_tokens;
mod pusher;
mod receiver;
mod stats;
mod tls_client;

pub use agent::{AgentArgs, AgentConfig, run_agent, serve_agent, spawn_sweeper};
pub use backoff::Backoff;
pub use client_token::ClientToken;
pub use commands::{BUILTIN_ACTIONS, execute};
pub use config::{ConfigError, parse_listen_arg, validate_node_name};
pub use daemon::{
    DaemonArgs, DaemonConfig, DaemonStats, NodeSource, SnapshotEncoder, daemon_router, node_router,
    run_daemon, run_daemon_with,
};
pub use error::AgentError;
pub use failover::Endpoints;
pub use master::{MasterError, MasterLink};
pub use node_table::{
    DEFAULT_MAX_NODES, Ingested, NodeCounts, NodeListing, NodeTable, NodeTableConfig, TableFull,
};
pub use node_tokens::{NodeAuth, NodeToken, NodeTokenSet, NodeTokens, parse_node_token_file};
pub use pusher::AGENT_VERSION;
pub use receiver::{
    DEFAULT_BODY_LIMIT, DEFAULT_BODY_TIMEOUT, ReceiveError, ReceiverState, receiver_router,
};
pub use stats::AgentStats;
pub use tls_client::{ClientIdentity, ClientTls};
// The shared server kit, re-exported so the binaries and the facade keep one import path.
pub use atlhyper_http::{
    DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_CONNECTIONS, GunzipError, LogFormat, gunzip_limited, gzip,
    init_logging, run_main, terminated,
};
