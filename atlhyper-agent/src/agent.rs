//! The cluster agent: receiver, node table, pusher, heartbeat and command loop in one task tree.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use atlhyper_model::{ClockPolicy, LivenessChanges, NodeState, SnapshotBounds};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::client_token::{ClientToken, watch_until};
use crate::commands::{CommandSettings, run_command_loop};
use crate::config::{ConfigError, duration_arg, parse_listen_arg};
use crate::error::AgentError;
use crate::master::MasterLink;
use crate::node_table::{DEFAULT_MAX_NODES, NodeTable, NodeTableConfig};
use crate::node_tokens::NodeTokens;
use crate::pusher::{PushSettings, run_heartbeat, run_pusher};
use crate::receiver::{DEFAULT_BODY_LIMIT, DEFAULT_BODY_TIMEOUT, ReceiverState, receiver_router};
use crate::stats::AgentStats;
use crate::tls_client::{ClientIdentity, ClientTls};
use atlhyper_http::serve::{
    DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_CONNECTIONS, ServeLimits, serve_with,
};
use atlhyper_http::tls::{ServerTls, TlsSettings};
use atlhyper_http::watched_file::DEFAULT_WATCH_INTERVAL;

/// Everything the cluster agent needs. [`AgentConfig::default`] gives the documented defaults;
/// [`AgentArgs`] reads them from flags and `AGENT_*` environment variables.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Where nodes POST their snapshots (`AGENT_LISTEN`, 0.0.0.0:8082).
    pub listen: SocketAddr,
    /// This cluster's id (`AGENT_CLUSTER_ID`, "default").
    pub cluster_id: String,
    /// The master's base URL (`AGENT_MASTER_URL`, http://127.0.0.1:8080); several
    /// comma-separated URLs name interchangeable masters, tried in turn when one is down.
    pub master_url: String,
    /// Bearer token the agent sends to the master (`AGENT_TOKEN`).
    pub token: Option<String>,
    /// A file holding the token for the master instead (`AGENT_TOKEN_FILE`, a Secret mount),
    /// re-read when it changes.
    pub token_file: Option<PathBuf>,
    /// Bearer token nodes must send to the agent (`AGENT_NODE_TOKEN`, named `env-node`); with
    /// no token and no token file every node is accepted.
    pub node_token: Option<String>,
    /// Named node tokens, `NAME TOKEN [NODE]` per line (`AGENT_NODE_TOKEN_FILE`), next to
    /// `node_token`, re-read when the file changes; a token with a NODE pushes only that node.
    pub node_token_file: Option<PathBuf>,
    /// Serve the receiver over TLS with this certificate (`AGENT_TLS_CERT`, `AGENT_TLS_KEY`);
    /// `None` serves plain HTTP.
    pub tls: Option<TlsSettings>,
    /// How the link to an `https://` master is trusted (`AGENT_CA_FILE`,
    /// `AGENT_TLS_INSECURE_SKIP_VERIFY`, `AGENT_CLIENT_CERT`, `AGENT_CLIENT_KEY`).
    pub master_tls: ClientTls,
    /// Snapshot push interval (`AGENT_SNAPSHOT_INTERVAL`, 10 s).
    pub snapshot_interval: Duration,
    /// Heartbeat interval (`AGENT_HEARTBEAT_INTERVAL`, 15 s).
    pub heartbeat_interval: Duration,
    /// The nodes' collection interval (`AGENT_NODE_INTERVAL`, 5 s); offline after 3 of them.
    pub node_interval: Duration,
    /// Silent intervals after which a node is offline (`AGENT_OFFLINE_INTERVALS`, 3).
    pub offline_intervals: u32,
    /// Silence after which a node is dropped (`AGENT_NODE_TTL`, 10 min).
    pub node_ttl: Duration,
    /// Ring points per node (`AGENT_RING_CAPACITY`, 720 = 1 h at 5 s).
    pub ring_capacity: usize,
    /// Largest node body, bytes, before and after gzip (`AGENT_BODY_LIMIT`, 1 MiB).
    pub body_limit: usize,
    /// Time a node has to send its whole body, else 408 (`AGENT_BODY_TIMEOUT`, 10 s).
    pub body_timeout: Duration,
    /// Time a client has to send a request's complete headers, else the connection is closed
    /// (`AGENT_HEADER_TIMEOUT`, 10 s). Also how long a kept-alive connection may sit idle: keep
    /// it above the 8 s the daemons keep an idle connection, or a push may now and then meet a
    /// connection the agent is closing.
    pub header_timeout: Duration,
    /// Connections served at once; while this many are open, new ones wait in the backlog
    /// (`AGENT_MAX_CONNECTIONS`, 4096).
    pub max_connections: usize,
    /// Commands run at the same time (`AGENT_COMMAND_CONCURRENCY`, 8).
    pub command_concurrency: usize,
    /// Topic of the command long poll (`AGENT_COMMAND_TOPIC`, "ops", as AtlHyper v2 agents poll).
    pub command_topic: String,
    /// Client-side bound of one long poll (`AGENT_COMMAND_POLL_TIMEOUT`, 40 s).
    pub poll_timeout: Duration,
    /// Pause after an empty poll (`AGENT_COMMAND_POLL_INTERVAL`, 100 ms).
    pub poll_interval: Duration,
    /// Bound of every other request to the master (`AGENT_REQUEST_TIMEOUT`, 10 s).
    pub request_timeout: Duration,
    /// First retry delay (`AGENT_BACKOFF_BASE`, 1 s).
    pub backoff_base: Duration,
    /// Longest retry delay (`AGENT_BACKOFF_MAX`, 60 s).
    pub backoff_max: Duration,
    /// Most backfill points in one push (`AGENT_BACKFILL_MAX_POINTS`, 5000); the rest follows
    /// in immediate further pushes.
    pub backfill_max_points: usize,
    /// Nodes held at once (`AGENT_MAX_NODES`, 10,000, twice what Kubernetes supports in one
    /// cluster); a new node beyond it gets 429 until a silent node has expired.
    pub max_nodes: usize,
    /// A node timestamp further ahead of the agent's clock than this is replaced by the receive
    /// time, the skew kept in `clock_skew_seconds` (`AGENT_MAX_CLOCK_AHEAD`, 5 min). One older
    /// than the history retention (30 days) is replaced too.
    pub max_clock_ahead: Duration,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8082)),
            cluster_id: "default".to_owned(),
            master_url: "http://127.0.0.1:8080".to_owned(),
            token: None,
            token_file: None,
            node_token: None,
            node_token_file: None,
            tls: None,
            master_tls: ClientTls::default(),
            snapshot_interval: Duration::from_secs(10),
            heartbeat_interval: Duration::from_secs(15),
            node_interval: Duration::from_secs(5),
            offline_intervals: 3,
            node_ttl: Duration::from_secs(600),
            ring_capacity: 720,
            body_limit: DEFAULT_BODY_LIMIT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            command_concurrency: 8,
            command_topic: "ops".to_owned(),
            poll_timeout: Duration::from_secs(40),
            poll_interval: Duration::from_millis(100),
            request_timeout: Duration::from_secs(10),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            backfill_max_points: 5000,
            max_nodes: DEFAULT_MAX_NODES,
            max_clock_ahead: ClockPolicy::default().max_ahead,
        }
    }
}

impl AgentConfig {
    /// The node table settings of this configuration.
    pub fn table_config(&self) -> NodeTableConfig {
        NodeTableConfig {
            node_interval: self.node_interval,
            offline_intervals: self.offline_intervals,
            ttl: self.node_ttl,
            ring_capacity: self.ring_capacity,
            max_nodes: self.max_nodes,
        }
    }

    /// The clock policy of this configuration: [`AgentConfig::max_clock_ahead`], and the
    /// default 30 days (the master's history retention) as the oldest timestamp kept.
    pub fn clock_policy(&self) -> ClockPolicy {
        ClockPolicy {
            max_ahead: self.max_clock_ahead,
            ..ClockPolicy::default()
        }
    }

    /// Checks the values that would make the agent misbehave.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.cluster_id.trim().is_empty() {
            return Err(ConfigError::new("AGENT_CLUSTER_ID", "must not be empty"));
        }
        crate::failover::Endpoints::parse(&self.master_url, "AGENT_MASTER_URL")?;
        for (name, d) in [
            ("AGENT_SNAPSHOT_INTERVAL", self.snapshot_interval),
            ("AGENT_HEARTBEAT_INTERVAL", self.heartbeat_interval),
            ("AGENT_NODE_INTERVAL", self.node_interval),
            ("AGENT_REQUEST_TIMEOUT", self.request_timeout),
            ("AGENT_COMMAND_POLL_TIMEOUT", self.poll_timeout),
        ] {
            if d.is_zero() {
                return Err(ConfigError::new(name, "must be greater than zero"));
            }
        }
        if self.offline_intervals == 0 {
            return Err(ConfigError::new(
                "AGENT_OFFLINE_INTERVALS",
                "must be at least 1",
            ));
        }
        if self.node_ttl < self.node_interval.saturating_mul(self.offline_intervals) {
            return Err(ConfigError::new(
                "AGENT_NODE_TTL",
                "must be at least AGENT_NODE_INTERVAL * AGENT_OFFLINE_INTERVALS",
            ));
        }
        if self.body_limit < 1024 {
            return Err(ConfigError::new(
                "AGENT_BODY_LIMIT",
                "must be at least 1024 bytes",
            ));
        }
        if self.body_timeout.is_zero() {
            return Err(ConfigError::new(
                "AGENT_BODY_TIMEOUT",
                "must be greater than zero",
            ));
        }
        if self.header_timeout.is_zero() {
            return Err(ConfigError::new(
                "AGENT_HEADER_TIMEOUT",
                "must be greater than zero",
            ));
        }
        if self.max_connections == 0 {
            return Err(ConfigError::new(
                "AGENT_MAX_CONNECTIONS",
                "must be at least 1",
            ));
        }
        if self.max_nodes == 0 {
            return Err(ConfigError::new("AGENT_MAX_NODES", "must be at least 1"));
        }
        if self.command_concurrency == 0 {
            return Err(ConfigError::new(
                "AGENT_COMMAND_CONCURRENCY",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// Flags of the `atlhyper-agent` binary; each also reads the environment variable it names.
#[derive(Debug, Clone, clap::Args)]
pub struct AgentArgs {
    /// Address nodes POST their snapshots to (`HOST:PORT`; a host name is looked up once).
    #[arg(long, env = "AGENT_LISTEN", default_value = "0.0.0.0:8082", value_parser = parse_listen_arg)]
    pub listen: SocketAddr,
    /// This cluster's id.
    #[arg(long, env = "AGENT_CLUSTER_ID", default_value = "default")]
    pub cluster_id: String,
    /// The master's base URL; several comma-separated URLs name interchangeable masters (one
    /// PostgreSQL behind them), tried in turn when one is down.
    #[arg(
        long,
        env = "AGENT_MASTER_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub master_url: String,
    /// Bearer token for the master.
    #[arg(long, env = "AGENT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// File holding the bearer token for the master (instead of --token); re-read when it
    /// changes, so a rotated Secret is sent without a restart.
    #[arg(long, env = "AGENT_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Bearer token nodes must send (unset, and no --node-token-file: any node is accepted).
    #[arg(long, env = "AGENT_NODE_TOKEN", hide_env_values = true)]
    pub node_token: Option<String>,
    /// File of named node tokens, `NAME TOKEN [NODE]` per line, several valid at once; a token
    /// with a NODE may push only that node's name. Re-read when it changes.
    #[arg(long, env = "AGENT_NODE_TOKEN_FILE")]
    pub node_token_file: Option<PathBuf>,
    /// Serve the receiver over TLS with this PEM certificate chain (needs --tls-key); re-read
    /// when it changes.
    #[arg(long, env = "AGENT_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "AGENT_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA bundle an https:// master's certificate must chain to (instead of the system
    /// roots).
    #[arg(long, env = "AGENT_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Do not verify the master's certificate (testing only; logged as a warning).
    #[arg(long, env = "AGENT_TLS_INSECURE_SKIP_VERIFY")]
    pub tls_insecure_skip_verify: bool,
    /// PEM client certificate presented to a master that requires one (needs --client-key).
    #[arg(long, env = "AGENT_CLIENT_CERT")]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of --client-cert.
    #[arg(long, env = "AGENT_CLIENT_KEY")]
    pub client_key: Option<PathBuf>,
    /// Snapshot push interval (e.g. 10s).
    #[arg(long, env = "AGENT_SNAPSHOT_INTERVAL", default_value = "10s", value_parser = duration_arg)]
    pub snapshot_interval: Duration,
    /// Heartbeat interval.
    #[arg(long, env = "AGENT_HEARTBEAT_INTERVAL", default_value = "15s", value_parser = duration_arg)]
    pub heartbeat_interval: Duration,
    /// The nodes' collection interval.
    #[arg(long, env = "AGENT_NODE_INTERVAL", default_value = "5s", value_parser = duration_arg)]
    pub node_interval: Duration,
    /// Silent intervals after which a node is offline.
    #[arg(long, env = "AGENT_OFFLINE_INTERVALS", default_value_t = 3)]
    pub offline_intervals: u32,
    /// Silence after which a node is forgotten.
    #[arg(long, env = "AGENT_NODE_TTL", default_value = "10m", value_parser = duration_arg)]
    pub node_ttl: Duration,
    /// History points kept per node.
    #[arg(long, env = "AGENT_RING_CAPACITY", default_value_t = 720)]
    pub ring_capacity: usize,
    /// Largest node request body in bytes (before and after gzip).
    #[arg(long, env = "AGENT_BODY_LIMIT", default_value_t = DEFAULT_BODY_LIMIT)]
    pub body_limit: usize,
    /// Time a node has to send its whole body.
    #[arg(long, env = "AGENT_BODY_TIMEOUT", default_value = "10s", value_parser = duration_arg)]
    pub body_timeout: Duration,
    /// Time a client has to send a request's complete headers (and longest idle keep-alive).
    #[arg(long, env = "AGENT_HEADER_TIMEOUT", default_value = "10s", value_parser = duration_arg)]
    pub header_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog.
    #[arg(long, env = "AGENT_MAX_CONNECTIONS", default_value_t = DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Commands run at the same time.
    #[arg(long, env = "AGENT_COMMAND_CONCURRENCY", default_value_t = 8)]
    pub command_concurrency: usize,
    /// Topic of the command long poll.
    #[arg(long, env = "AGENT_COMMAND_TOPIC", default_value = "ops")]
    pub command_topic: String,
    /// Client-side bound of one command long poll.
    #[arg(long, env = "AGENT_COMMAND_POLL_TIMEOUT", default_value = "40s", value_parser = duration_arg)]
    pub poll_timeout: Duration,
    /// Pause after an empty command poll.
    #[arg(long, env = "AGENT_COMMAND_POLL_INTERVAL", default_value = "100ms", value_parser = duration_arg)]
    pub poll_interval: Duration,
    /// Bound of every other request to the master.
    #[arg(long, env = "AGENT_REQUEST_TIMEOUT", default_value = "10s", value_parser = duration_arg)]
    pub request_timeout: Duration,
    /// First retry delay.
    #[arg(long, env = "AGENT_BACKOFF_BASE", default_value = "1s", value_parser = duration_arg)]
    pub backoff_base: Duration,
    /// Longest retry delay.
    #[arg(long, env = "AGENT_BACKOFF_MAX", default_value = "60s", value_parser = duration_arg)]
    pub backoff_max: Duration,
    /// Most backfill points in one push.
    #[arg(long, env = "AGENT_BACKFILL_MAX_POINTS", default_value_t = 5000)]
    pub backfill_max_points: usize,
    /// Nodes held at once; a new node beyond it gets 429 until a silent one has expired.
    #[arg(long, env = "AGENT_MAX_NODES", default_value_t = DEFAULT_MAX_NODES)]
    pub max_nodes: usize,
    /// A node timestamp further ahead than this is replaced by the receive time.
    #[arg(long, env = "AGENT_MAX_CLOCK_AHEAD", default_value = "5m", value_parser = duration_arg)]
    pub max_clock_ahead: Duration,
    /// Log filter (tracing EnvFilter syntax; RUST_LOG wins when set). Here rather than in the
    /// binary so `atlhyper agent` and `atlhyper-agent` read the same variable.
    #[arg(long, env = "AGENT_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
    /// Log line format: `text` (one readable line per event) or `json` (one object per line).
    #[arg(long, env = "AGENT_LOG_FORMAT", value_enum, default_value_t = atlhyper_http::LogFormat::Text)]
    pub log_format: atlhyper_http::LogFormat,
}

impl AgentArgs {
    /// The configuration these flags describe, validated.
    pub fn into_config(self) -> Result<AgentConfig, ConfigError> {
        let non_empty = |t: Option<String>| t.filter(|t| !t.is_empty());
        let tls = TlsSettings::from_flags(self.tls_cert, self.tls_key, None)
            .map_err(|e| ConfigError::new("AGENT_TLS_CERT", e.to_string()))?;
        let given = |p: Option<PathBuf>| p.filter(|p| !p.as_os_str().is_empty());
        let identity = match (given(self.client_cert), given(self.client_key)) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some(ClientIdentity { cert, key }),
            _ => {
                return Err(ConfigError::new(
                    "AGENT_CLIENT_CERT",
                    "--client-cert and --client-key go together: give both or neither",
                ));
            }
        };
        let master_tls = ClientTls {
            ca_file: given(self.ca_file),
            insecure_skip_verify: self.tls_insecure_skip_verify,
            identity,
        };
        let config = AgentConfig {
            listen: self.listen,
            cluster_id: self.cluster_id,
            master_url: self.master_url,
            token: non_empty(self.token),
            token_file: given(self.token_file),
            node_token: non_empty(self.node_token),
            node_token_file: given(self.node_token_file),
            tls,
            master_tls,
            snapshot_interval: self.snapshot_interval,
            heartbeat_interval: self.heartbeat_interval,
            node_interval: self.node_interval,
            offline_intervals: self.offline_intervals,
            node_ttl: self.node_ttl,
            ring_capacity: self.ring_capacity,
            body_limit: self.body_limit,
            body_timeout: self.body_timeout,
            header_timeout: self.header_timeout,
            max_connections: self.max_connections,
            command_concurrency: self.command_concurrency,
            command_topic: self.command_topic,
            poll_timeout: self.poll_timeout,
            poll_interval: self.poll_interval,
            request_timeout: self.request_timeout,
            backoff_base: self.backoff_base,
            backoff_max: self.backoff_max,
            backfill_max_points: self.backfill_max_points,
            max_nodes: self.max_nodes,
            max_clock_ahead: self.max_clock_ahead,
        };
        for (setting, token) in [
            ("AGENT_TOKEN", &config.token),
            ("AGENT_NODE_TOKEN", &config.node_token),
        ] {
            if let Some(token) = token {
                atlhyper_model::check_token(setting, token)?;
            }
        }
        config.validate()?;
        Ok(config)
    }
}

/// Binds `config.listen` and runs the agent until `shutdown` completes.
pub async fn run_agent(
    config: AgentConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError> {
    // Unreadable certificate files are a start error, before the port is taken.
    let tls = config.tls.clone().map(ServerTls::load).transpose()?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| AgentError::Bind {
            addr: config.listen.to_string(),
            source,
        })?;
    let table = Arc::new(NodeTable::new(config.table_config()));
    serve_agent_with(listener, config, table, tls, shutdown).await
}

/// Runs the agent on an already bound listener with a given table (so an embedding program, or a
/// test, can read the table and knows the port): receiver, TTL sweeper, pusher, heartbeat and
/// command loop. When `shutdown` completes the server stops accepting, in-flight requests finish,
/// and every task is stopped and joined.
pub async fn serve_agent(
    listener: TcpListener,
    config: AgentConfig,
    table: Arc<NodeTable>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError> {
    let tls = config.tls.clone().map(ServerTls::load).transpose()?;
    serve_agent_with(listener, config, table, tls, shutdown).await
}

async fn serve_agent_with(
    listener: TcpListener,
    config: AgentConfig,
    table: Arc<NodeTable>,
    tls: Option<ServerTls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError> {
    config.validate()?;
    let stats = Arc::new(AgentStats::default());
    let token = ClientToken::new(
        config.token.as_deref(),
        "AGENT_TOKEN",
        config.token_file.clone(),
        "AGENT_TOKEN_FILE",
    )?;
    let link = MasterLink::with_tls(
        &config.master_url,
        &config.cluster_id,
        None,
        config.request_timeout,
        &config.master_tls,
    )?
    .with_token(token);
    let node_tokens = match &config.node_token_file {
        Some(file) => NodeTokens::with_file(config.node_token.as_deref(), file.clone())
            .map_err(|e| AgentError::config("AGENT_NODE_TOKEN_FILE", &e.to_string()))?,
        None => NodeTokens::single(config.node_token.as_deref()),
    };
    let cancel = CancellationToken::new();
    let files = watch_files(&link, &node_tokens, cancel.clone());
    let state = ReceiverState {
        table: Arc::clone(&table),
        node_tokens,
        body_limit: config.body_limit,
        stats: Arc::clone(&stats),
        body_timeout: config.body_timeout,
        bounds: SnapshotBounds::default(),
        clock: config.clock_policy(),
    };
    let push = PushSettings {
        interval: config.snapshot_interval,
        heartbeat_interval: config.heartbeat_interval,
        backoff_base: config.backoff_base,
        backoff_max: config.backoff_max,
        max_backfill: config.backfill_max_points,
    };
    let commands = CommandSettings {
        topic: config.command_topic.clone(),
        concurrency: config.command_concurrency,
        poll_timeout: config.poll_timeout,
        idle_interval: config.poll_interval,
        backoff_base: config.backoff_base,
        backoff_max: config.backoff_max,
        result_attempts: 5,
        shutdown_grace: Duration::from_secs(5),
    };
    // Read back, not taken from the config: with port 0 the kernel picks the port, and this
    // line is how a supervisor (or the fault suite) learns it.
    let addr = listener.local_addr().map_err(AgentError::Listen)?;
    tracing::info!(
        %addr,
        cluster_id = %config.cluster_id,
        master = %config.master_url,
        tls = tls.is_some(),
        "agent listening"
    );

    let tasks: Vec<(&'static str, JoinHandle<()>)> = vec![
        ("files", files),
        (
            "pusher",
            tokio::spawn(run_pusher(
                Arc::clone(&table),
                link.clone(),
                push.clone(),
                Arc::clone(&stats),
                cancel.clone(),
            )),
        ),
        (
            "heartbeat",
            tokio::spawn(run_heartbeat(
                link.clone(),
                push,
                Arc::clone(&stats),
                cancel.clone(),
            )),
        ),
        (
            "commands",
            tokio::spawn(run_command_loop(
                Arc::clone(&table),
                link,
                commands,
                Arc::clone(&stats),
                cancel.clone(),
            )),
        ),
        (
            "sweeper",
            tokio::spawn(run_sweeper(
                Arc::clone(&table),
                config.node_interval,
                cancel.clone(),
            )),
        ),
    ];

    let server_cancel = cancel.clone();
    let limits = ServeLimits {
        header_timeout: config.header_timeout,
        max_connections: config.max_connections,
    };
    let server = serve_with(listener, receiver_router(state), limits, tls, async move {
        server_cancel.cancelled().await
    });
    let trigger = cancel.clone();
    let watcher = tokio::spawn(async move {
        shutdown.await;
        trigger.cancel();
    });
    server.await;
    cancel.cancel();
    watcher.abort();
    let mut first_error = None;
    for (name, task) in tasks {
        if let Err(e) = task.await
            && first_error.is_none()
        {
            first_error = Some(AgentError::Task {
                name,
                reason: e.to_string(),
            });
        }
    }
    tracing::info!("atlhyper-agent stopped");
    first_error.map_or(Ok(()), Err)
}

/// Watches the agent's files until `cancel`: the node-token file, the token file for the
/// master, and the CA bundle and client certificate of the link to the master.
fn watch_files(link: &MasterLink, nodes: &NodeTokens, cancel: CancellationToken) -> JoinHandle<()> {
    let token = link.token().clone();
    let client = link.client_files();
    let nodes = nodes.file().cloned();
    let every = DEFAULT_WATCH_INTERVAL;
    tokio::spawn(async move {
        let nodes = async {
            if let Some(file) = nodes {
                watch_until(file, every, "AGENT_NODE_TOKEN_FILE", cancel.clone()).await;
            }
        };
        let client = async {
            // "client certificate" covers the CA bundle too: one message to look for.
            if !client.paths().is_empty() {
                watch_until(client, every, "client certificate", cancel.clone()).await;
            }
        };
        tokio::join!(
            token.watch(every, "AGENT_TOKEN_FILE", cancel.clone()),
            nodes,
            client
        );
    })
}

/// Drops nodes past their TTL every `every` until cancelled, and logs each node that went
/// offline or came back once (liveness is decided when read, so this is where the moment is
/// noticed).
pub(crate) async fn run_sweeper(table: Arc<NodeTable>, every: Duration, cancel: CancellationToken) {
    let mut liveness = LivenessChanges::default();
    let mut ticker = tokio::time::interval(every.max(Duration::from_millis(10)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = cancel.cancelled() => return,
        }
        let now = Instant::now();
        let dropped = table.sweep(now);
        if !dropped.is_empty() {
            tracing::info!(nodes = ?dropped, "nodes silent past the TTL dropped");
        }
        let listed = table.list(now).into_iter().map(|n| (n.node_name, n.state));
        for change in liveness.update(listed) {
            match change.state {
                NodeState::Online => tracing::info!(node = %change.node, "node online"),
                NodeState::Offline => tracing::warn!(node = %change.node, "node offline"),
            }
        }
    }
}

/// Spawns the TTL sweeper for a table outside [`serve_agent`] (e.g. a receiver embedded in another
/// program); it stops when `cancel` is cancelled.
pub fn spawn_sweeper(
    table: Arc<NodeTable>,
    every: Duration,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(run_sweeper(table, every, cancel))
}
