//! The node daemon: collect every interval, push to the agent, never block, never grow.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use atlhyper_collect::{CollectConfig, Collector, HostRoot};
use atlhyper_model::{CollectorStatus, NodeMetricsSnapshot};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::config::{ConfigError, base_url, parse_duration, validate_node_name};
use crate::error::AgentError;
use crate::gzip::gzip;
use crate::master::error_chain;
use crate::serve::{DEFAULT_HEADER_TIMEOUT, ServeLimits, serve};
use crate::stats::{family, inc};

/// Everything the node daemon needs. [`DaemonArgs`] reads it from flags and the `METRICS_*`
/// environment variables of AtlHyper.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// The agent's address, scheme optional (`METRICS_AGENT_ADDR`, or `AGENT_ADDR`;
    /// http://127.0.0.1:8082).
    pub agent_addr: String,
    /// Collection interval (`METRICS_COLLECT_INTERVAL`, 5 s).
    pub interval: Duration,
    /// Bearer token sent to the agent (`METRICS_TOKEN`).
    pub token: Option<String>,
    /// This node's name (`METRICS_NODE_NAME`, or `NODE_NAME`, else the host name), DNS-1123.
    pub node_name: String,
    /// The host's procfs (`METRICS_PROC_ROOT`, /proc).
    pub proc_root: PathBuf,
    /// The host's sysfs (`METRICS_SYS_ROOT`, /sys).
    pub sys_root: PathBuf,
    /// The host's root filesystem (`METRICS_HOST_ROOT`, /).
    pub host_root: PathBuf,
    /// Processes reported: top N by CPU united with top N by memory (`METRICS_TOP_PROCESSES`, 10).
    pub top_processes: usize,
    /// Bound of one statfs call (`METRICS_STATFS_TIMEOUT`, 2 s).
    pub statfs_timeout: Duration,
    /// Bound of one push (`METRICS_PUSH_TIMEOUT`, 5 s).
    pub request_timeout: Duration,
    /// Older snapshots kept for backfill while the agent is unreachable
    /// (`METRICS_QUEUE_CAPACITY`, 720 = 1 h at 5 s); beyond it the oldest are dropped and counted.
    pub queue_capacity: usize,
    /// Where to serve the daemon's own `/metrics` (`METRICS_LISTEN`); `None` serves nothing.
    pub metrics_listen: Option<SocketAddr>,
    /// First retry delay (`METRICS_BACKOFF_BASE`, 1 s).
    pub backoff_base: Duration,
    /// Longest retry delay (`METRICS_BACKOFF_MAX`, 60 s); never more than `interval`.
    pub backoff_max: Duration,
}

impl DaemonConfig {
    /// The defaults, for node `node_name`.
    pub fn new(node_name: impl Into<String>) -> Self {
        Self {
            agent_addr: "http://127.0.0.1:8082".to_owned(),
            interval: Duration::from_secs(5),
            token: None,
            node_name: node_name.into(),
            proc_root: PathBuf::from("/proc"),
            sys_root: PathBuf::from("/sys"),
            host_root: PathBuf::from("/"),
            top_processes: 10,
            statfs_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            queue_capacity: 720,
            metrics_listen: None,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
        }
    }

    /// Checks the values that would make the daemon misbehave.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_node_name(&self.node_name)
            .map_err(|e| ConfigError::new("METRICS_NODE_NAME", e))?;
        if self.agent_addr.trim().is_empty() {
            return Err(ConfigError::new("METRICS_AGENT_ADDR", "must not be empty"));
        }
        if self.interval < Duration::from_millis(10) {
            return Err(ConfigError::new(
                "METRICS_COLLECT_INTERVAL",
                "must be at least 10ms",
            ));
        }
        if self.request_timeout.is_zero() {
            return Err(ConfigError::new(
                "METRICS_PUSH_TIMEOUT",
                "must be greater than zero",
            ));
        }
        Ok(())
    }

    /// `POST /metrics/node` URL of the agent.
    pub fn push_url(&self) -> String {
        format!("{}/metrics/node", base_url(&self.agent_addr))
    }
}

fn duration_arg(s: &str) -> Result<Duration, String> {
    parse_duration(s)
}

/// Flags of the `atlhyper-metrics` binary; each also reads the `METRICS_*` variable it names.
#[derive(Debug, Clone, clap::Args)]
pub struct DaemonArgs {
    /// The agent's address [env: METRICS_AGENT_ADDR, or AGENT_ADDR] (default http://127.0.0.1:8082).
    #[arg(long, env = "METRICS_AGENT_ADDR")]
    pub agent_addr: Option<String>,
    /// Collection interval.
    #[arg(long, env = "METRICS_COLLECT_INTERVAL", default_value = "5s", value_parser = duration_arg)]
    pub interval: Duration,
    /// This node's name [env: METRICS_NODE_NAME, or NODE_NAME] (default: the host name).
    #[arg(long, env = "METRICS_NODE_NAME")]
    pub node_name: Option<String>,
    /// The host's procfs.
    #[arg(long, env = "METRICS_PROC_ROOT", default_value = "/proc")]
    pub proc_root: PathBuf,
    /// The host's sysfs.
    #[arg(long, env = "METRICS_SYS_ROOT", default_value = "/sys")]
    pub sys_root: PathBuf,
    /// The host's root filesystem.
    #[arg(long, env = "METRICS_HOST_ROOT", default_value = "/")]
    pub host_root: PathBuf,
    /// Top N processes by CPU and by memory.
    #[arg(long, env = "METRICS_TOP_PROCESSES", default_value_t = 10)]
    pub top_processes: usize,
    /// Bound of one statfs call.
    #[arg(long, env = "METRICS_STATFS_TIMEOUT", default_value = "2s", value_parser = duration_arg)]
    pub statfs_timeout: Duration,
    /// Bound of one push to the agent.
    #[arg(long, env = "METRICS_PUSH_TIMEOUT", default_value = "5s", value_parser = duration_arg)]
    pub push_timeout: Duration,
    /// Bearer token for the agent.
    #[arg(long, env = "METRICS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Snapshots kept for backfill while the agent is unreachable.
    #[arg(long, env = "METRICS_QUEUE_CAPACITY", default_value_t = 720)]
    pub queue_capacity: usize,
    /// Serve the daemon's own /metrics on this address.
    #[arg(long, env = "METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// First retry delay.
    #[arg(long, env = "METRICS_BACKOFF_BASE", default_value = "1s", value_parser = duration_arg)]
    pub backoff_base: Duration,
    /// Longest retry delay.
    #[arg(long, env = "METRICS_BACKOFF_MAX", default_value = "60s", value_parser = duration_arg)]
    pub backoff_max: Duration,
}

impl DaemonArgs {
    /// The configuration, with `AGENT_ADDR` and `NODE_NAME` as fallbacks read from the process
    /// environment, and the host name (from the host's procfs) as the last resort for the name.
    pub fn into_config(self) -> Result<DaemonConfig, ConfigError> {
        self.into_config_with(|name| std::env::var(name).ok())
    }

    /// Like [`DaemonArgs::into_config`] with the fallback variables read through `env`.
    pub fn into_config_with(
        self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<DaemonConfig, ConfigError> {
        let set = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
        let node_name = match set(self.node_name).or_else(|| set(env("NODE_NAME"))) {
            Some(n) => n.trim().to_owned(),
            None => host_name(&self.proc_root).ok_or_else(|| {
                ConfigError::new(
                    "METRICS_NODE_NAME",
                    "not set, NODE_NAME not set, and the host name is unreadable",
                )
            })?,
        };
        let mut config = DaemonConfig::new(node_name);
        if let Some(addr) = set(self.agent_addr).or_else(|| set(env("AGENT_ADDR"))) {
            config.agent_addr = addr.trim().to_owned();
        }
        config.interval = self.interval;
        config.token = set(self.token);
        config.proc_root = self.proc_root;
        config.sys_root = self.sys_root;
        config.host_root = self.host_root;
        config.top_processes = self.top_processes;
        config.statfs_timeout = self.statfs_timeout;
        config.request_timeout = self.push_timeout;
        config.queue_capacity = self.queue_capacity;
        config.metrics_listen = self.metrics_listen;
        config.backoff_base = self.backoff_base;
        config.backoff_max = self.backoff_max;
        config.validate()?;
        Ok(config)
    }
}

/// The host name from `<proc>/sys/kernel/hostname`, lowercased (Kubernetes node names are).
fn host_name(proc_root: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(proc_root.join("sys/kernel/hostname")).ok()?;
    let name = text.trim().to_ascii_lowercase();
    (!name.is_empty()).then_some(name)
}

/// Snapshots waiting to be delivered: the newest, and a bounded queue of older ones for backfill.
#[derive(Debug)]
pub(crate) struct Outbox {
    latest: Option<Pending>,
    history: VecDeque<Pending>,
    capacity: usize,
    next_id: u64,
    dropped: u64,
}

#[derive(Debug, Clone)]
struct Pending {
    id: u64,
    body: Bytes,
}

impl Outbox {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            latest: None,
            history: VecDeque::with_capacity(capacity.min(1024)),
            capacity,
            next_id: 0,
            dropped: 0,
        }
    }

    /// Adds the newest snapshot; an undelivered previous one moves to the history queue, whose
    /// oldest entry is dropped (and counted) when it is full.
    pub(crate) fn push(&mut self, body: Bytes) {
        self.next_id += 1;
        let new = Pending {
            id: self.next_id,
            body,
        };
        if let Some(old) = self.latest.replace(new) {
            if self.capacity == 0 {
                self.dropped += 1;
                return;
            }
            if self.history.len() >= self.capacity {
                self.history.pop_front();
                self.dropped += 1;
            }
            self.history.push_back(old);
        }
    }

    /// What to send next: the newest first, then the history oldest first.
    pub(crate) fn next(&self) -> Option<(u64, Bytes)> {
        self.latest
            .as_ref()
            .or_else(|| self.history.front())
            .map(|p| (p.id, p.body.clone()))
    }

    /// Entry `id` was delivered (or refused for good): forget it wherever it is now.
    pub(crate) fn ack(&mut self, id: u64) {
        if self.latest.as_ref().is_some_and(|p| p.id == id) {
            self.latest = None;
        } else if let Some(pos) = self.history.iter().position(|p| p.id == id) {
            self.history.remove(pos);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.history.len() + usize::from(self.latest.is_some())
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// The daemon's own counters, served on `/metrics` when `metrics_listen` is set.
#[derive(Debug, Default)]
pub struct DaemonStats {
    /// Collections run.
    pub cycles: AtomicU64,
    /// Wall time of the last collection, microseconds.
    pub last_cycle_us: AtomicU64,
    /// Snapshots the agent accepted.
    pub pushes: AtomicU64,
    /// Pushes that failed and will be retried.
    pub push_failures: AtomicU64,
    /// Snapshots the agent refused for good (4xx other than 401/403/408/429); not retried.
    pub rejected: AtomicU64,
    /// Snapshots dropped from the full backfill queue.
    pub dropped: AtomicU64,
    /// Snapshots waiting to be delivered.
    pub queued: AtomicU64,
    parts: Mutex<Vec<CollectorStatus>>,
}

impl DaemonStats {
    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = String::with_capacity(2048);
        let _ = writeln!(
            out,
            "# HELP atlhyper_metrics_part_duration_seconds Time the last collection spent per part."
        );
        let _ = writeln!(out, "# TYPE atlhyper_metrics_part_duration_seconds gauge");
        let parts = self.parts.lock().clone();
        for p in &parts {
            let _ = writeln!(
                out,
                "atlhyper_metrics_part_duration_seconds{{part=\"{}\"}} {}",
                p.name.escape_default(),
                p.duration_us as f64 / 1e6
            );
        }
        let _ = writeln!(
            out,
            "# HELP atlhyper_metrics_part_ok Whether the part worked in the last collection."
        );
        let _ = writeln!(out, "# TYPE atlhyper_metrics_part_ok gauge");
        for p in &parts {
            let _ = writeln!(
                out,
                "atlhyper_metrics_part_ok{{part=\"{}\"}} {}",
                p.name.escape_default(),
                u8::from(p.ok)
            );
        }
        family(
            &mut out,
            "atlhyper_metrics_cycle_duration_seconds",
            "gauge",
            "Wall time of the last collection.",
            get(&self.last_cycle_us) as f64 / 1e6,
        );
        for (name, kind, help, v) in [
            (
                "atlhyper_metrics_cycles_total",
                "counter",
                "Collections run.",
                &self.cycles,
            ),
            (
                "atlhyper_metrics_pushes_total",
                "counter",
                "Snapshots the agent accepted.",
                &self.pushes,
            ),
            (
                "atlhyper_metrics_push_failures_total",
                "counter",
                "Pushes that failed and were retried.",
                &self.push_failures,
            ),
            (
                "atlhyper_metrics_rejected_total",
                "counter",
                "Snapshots the agent refused for good.",
                &self.rejected,
            ),
            (
                "atlhyper_metrics_dropped_points_total",
                "counter",
                "Snapshots dropped from the full backfill queue.",
                &self.dropped,
            ),
            (
                "atlhyper_metrics_queue_length",
                "gauge",
                "Snapshots waiting for delivery.",
                &self.queued,
            ),
        ] {
            family(&mut out, name, kind, help, get(v) as f64);
        }
        out
    }
}

/// Why one delivery failed.
#[derive(Debug)]
pub(crate) enum DeliverError {
    /// Worth retrying later (transport error, timeout, 5xx, 401, 403, 408, 429).
    Retry(String),
    /// The agent will never take this body (other 4xx): drop it.
    Refused(String),
}

/// Delivers one gzipped snapshot body. The seam between the sender loop and HTTP.
pub(crate) trait Deliver: Send + 'static {
    fn deliver(&mut self, body: Bytes) -> impl Future<Output = Result<(), DeliverError>> + Send;
}

/// `POST /metrics/node` over HTTP.
#[derive(Debug)]
struct HttpDeliver {
    http: reqwest::Client,
    url: String,
    auth: Option<HeaderValue>,
}

impl HttpDeliver {
    fn new(config: &DaemonConfig) -> Result<Self, AgentError> {
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout)
            .pool_max_idle_per_host(1)
            .pool_idle_timeout(crate::serve::CLIENT_IDLE_TIMEOUT)
            .user_agent(concat!("atlhyper-metrics/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| AgentError::Http(e.to_string()))?;
        let auth = match config.token.as_deref().filter(|t| !t.is_empty()) {
            Some(t) => Some(HeaderValue::from_str(&format!("Bearer {t}")).map_err(|_| {
                AgentError::config(
                    "METRICS_TOKEN",
                    "contains characters not allowed in a header",
                )
            })?),
            None => None,
        };
        Ok(Self {
            http,
            url: config.push_url(),
            auth,
        })
    }
}

impl Deliver for HttpDeliver {
    async fn deliver(&mut self, body: Bytes) -> Result<(), DeliverError> {
        let mut rb = self
            .http
            .post(&self.url)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_ENCODING, "gzip")
            .body(body);
        if let Some(auth) = &self.auth {
            rb = rb.header(header::AUTHORIZATION, auth.clone());
        }
        let resp = rb
            .send()
            .await
            .map_err(|e| DeliverError::Retry(error_chain(&e)))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let text = resp.text().await.unwrap_or_default();
        let why = format!(
            "{} answered {status}: {}",
            self.url,
            text.chars().take(200).collect::<String>()
        );
        match status.as_u16() {
            401 | 403 | 408 | 429 => Err(DeliverError::Retry(why)),
            400..=499 => Err(DeliverError::Refused(why)),
            _ => Err(DeliverError::Retry(why)),
        }
    }
}

/// Sends what the outbox holds, one request at a time, until cancelled.
pub(crate) async fn run_sender<D: Deliver>(
    mut sink: D,
    outbox: Arc<Mutex<Outbox>>,
    notify: Arc<Notify>,
    mut backoff: Backoff,
    stats: Arc<DaemonStats>,
    cancel: CancellationToken,
) {
    loop {
        let next = outbox.lock().next();
        let Some((id, body)) = next else {
            tokio::select! {
                _ = notify.notified() => continue,
                _ = cancel.cancelled() => return,
            }
        };
        let result = tokio::select! {
            r = sink.deliver(body) => r,
            _ = cancel.cancelled() => return,
        };
        match result {
            Ok(()) => {
                let left = {
                    let mut o = outbox.lock();
                    o.ack(id);
                    o.len()
                };
                stats.queued.store(left as u64, Ordering::Relaxed);
                inc(&stats.pushes);
                if backoff.attempts() > 0 {
                    tracing::info!(backlog = left, "agent reachable again");
                }
                backoff.reset();
            }
            Err(DeliverError::Refused(why)) => {
                outbox.lock().ack(id);
                inc(&stats.rejected);
                tracing::error!(error = %why, "agent refused a snapshot; dropped");
            }
            Err(DeliverError::Retry(why)) => {
                inc(&stats.push_failures);
                let delay = backoff.next_delay();
                tracing::warn!(error = %why, retry_in = ?delay, "push failed");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = cancel.cancelled() => return,
                }
            }
        }
    }
}

/// Runs `source` every interval on the blocking pool and queues its snapshot, until cancelled.
async fn run_collector<F>(
    mut source: F,
    config: Arc<DaemonConfig>,
    outbox: Arc<Mutex<Outbox>>,
    notify: Arc<Notify>,
    stats: Arc<DaemonStats>,
    cancel: CancellationToken,
) -> Result<(), AgentError>
where
    F: FnMut() -> NodeMetricsSnapshot + Send + 'static,
{
    let mut ticker = tokio::time::interval(config.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = cancel.cancelled() => return Ok(()),
        }
        let started = std::time::Instant::now();
        let node_name = config.node_name.clone();
        let job = tokio::task::spawn_blocking(move || {
            let mut snapshot = source();
            snapshot.node_name = node_name;
            // Serialising a plain struct into a Vec cannot fail.
            let json = serde_json::to_vec(&snapshot).unwrap_or_default();
            let body = Bytes::from(gzip(&json, 1));
            (source, body, snapshot.collectors)
        });
        let joined = tokio::select! {
            j = job => j,
            _ = cancel.cancelled() => return Ok(()),
        };
        let (returned, body, parts) = joined.map_err(|e| AgentError::Task {
            name: "collector",
            reason: e.to_string(),
        })?;
        source = returned;
        let (queued, dropped) = {
            let mut o = outbox.lock();
            o.push(body);
            (o.len(), o.dropped())
        };
        notify.notify_one();
        inc(&stats.cycles);
        let took = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        stats.last_cycle_us.store(took, Ordering::Relaxed);
        stats.queued.store(queued as u64, Ordering::Relaxed);
        stats.dropped.store(dropped, Ordering::Relaxed);
        *stats.parts.lock() = parts;
    }
}

async fn daemon_metrics(State(stats): State<Arc<DaemonStats>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        stats.render(),
    )
}

/// The daemon's own routes: `GET /metrics`, `GET /health`.
pub fn daemon_router(stats: Arc<DaemonStats>) -> Router {
    Router::new()
        .route("/metrics", get(daemon_metrics))
        .route(
            "/health",
            get(|| async { axum::Json(atlhyper_model::StatusBody::ok()) }),
        )
        .with_state(stats)
}

/// Runs the node daemon with the real collector over the host paths of `config` until
/// `shutdown` completes.
///
/// ```no_run
/// use atlhyper_agent::{DaemonConfig, run_daemon};
///
/// # async fn run() -> Result<(), atlhyper_agent::AgentError> {
/// let mut config = DaemonConfig::new("worker-1");
/// config.agent_addr = "http://atlhyper-agent:8082".into();
/// run_daemon(config, async { let _ = tokio::signal::ctrl_c().await; }).await
/// # }
/// ```
pub async fn run_daemon(
    config: DaemonConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError> {
    config.validate()?;
    let root = HostRoot::new(&config.proc_root, &config.sys_root, &config.host_root);
    let collect = CollectConfig {
        node_name: config.node_name.clone(),
        top_processes: config.top_processes,
        statfs_timeout: config.statfs_timeout,
        ..CollectConfig::default()
    };
    let mut collector = Collector::new(root, collect);
    // The first collection has no previous sample and so no rates (CPU 0 %, IO 0 B/s); pushed
    // as is it would draw a false dip at the start of every chart. Prime the collector and
    // measure the first pushed snapshot over a short window instead. The window is at most half
    // an interval: the next tick then comes at least half an interval after the primed
    // collection, never right behind it with an elapsed time shorter than one clock tick.
    let prime_window = (config.interval / 2).min(Duration::from_secs(1));
    let mut primed = false;
    let source = move || {
        if !primed {
            primed = true;
            let _ = collector.collect();
            std::thread::sleep(prime_window);
        }
        collector.collect()
    };
    run_daemon_with(config, source, shutdown).await
}

/// Runs the daemon with snapshots from `source` (called on the blocking pool every interval)
/// until `shutdown` completes. The daemon stamps `config.node_name` on every snapshot.
pub async fn run_daemon_with<F>(
    config: DaemonConfig,
    source: F,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError>
where
    F: FnMut() -> NodeMetricsSnapshot + Send + 'static,
{
    config.validate()?;
    let sink = HttpDeliver::new(&config)?;
    let config = Arc::new(config);
    let stats = Arc::new(DaemonStats::default());
    let outbox = Arc::new(Mutex::new(Outbox::new(config.queue_capacity)));
    let notify = Arc::new(Notify::new());
    let cancel = CancellationToken::new();

    let server = match config.metrics_listen {
        Some(addr) => {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| AgentError::Bind {
                    addr: addr.to_string(),
                    source,
                })?;
            let c = cancel.clone();
            let app = daemon_router(Arc::clone(&stats));
            // A scrape endpoint: a handful of connections is plenty.
            let limits = ServeLimits {
                header_timeout: DEFAULT_HEADER_TIMEOUT,
                max_connections: 64,
            };
            Some(tokio::spawn(async move {
                serve(listener, app, limits, async move { c.cancelled().await }).await
            }))
        }
        None => None,
    };
    tracing::info!(
        node = %config.node_name,
        agent = %config.push_url(),
        interval = ?config.interval,
        "atlhyper-metrics running"
    );
    let sender = tokio::spawn(run_sender(
        sink,
        Arc::clone(&outbox),
        Arc::clone(&notify),
        // Retries never wait longer than one collection interval, so a daemon is back within
        // about one interval of its agent returning, however long the outage was.
        {
            let base = config.backoff_base.min(config.interval);
            Backoff::new(base, config.backoff_max.min(config.interval).max(base))
        },
        Arc::clone(&stats),
        cancel.clone(),
    ));
    let collector = tokio::spawn(run_collector(
        source,
        Arc::clone(&config),
        outbox,
        notify,
        stats,
        cancel.clone(),
    ));
    let trigger = cancel.clone();
    let watcher = tokio::spawn(async move {
        shutdown.await;
        trigger.cancel();
    });
    let collected = collector.await;
    cancel.cancel();
    watcher.abort();
    let mut result = match collected {
        Ok(r) => r,
        Err(e) => Err(AgentError::Task {
            name: "collector",
            reason: e.to_string(),
        }),
    };
    if let Err(e) = sender.await
        && result.is_ok()
    {
        result = Err(AgentError::Task {
            name: "sender",
            reason: e.to_string(),
        });
    }
    if let Some(server) = server
        && let Err(e) = server.await
        && result.is_ok()
    {
        result = Err(AgentError::Task {
            name: "metrics server",
            reason: e.to_string(),
        });
    }
    tracing::info!("atlhyper-metrics stopped");
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    fn body(n: u8) -> Bytes {
        Bytes::from(vec![n])
    }

    #[test]
    fn outbox_keeps_newest_first_and_bounds_history() {
        let mut o = Outbox::new(3);
        for n in 1..=6 {
            o.push(body(n));
        }
        // Newest is 6; history keeps 3, 4, 5 (1 and 2 dropped).
        assert_eq!(o.len(), 4);
        assert_eq!(o.dropped(), 2);
        let order: Vec<u8> = std::iter::from_fn(|| {
            let (id, b) = o.next()?;
            o.ack(id);
            Some(b[0])
        })
        .collect();
        assert_eq!(order, [6, 3, 4, 5]);
    }

    #[test]
    fn ack_of_a_moved_entry_removes_it_from_history() {
        let mut o = Outbox::new(10);
        o.push(body(1));
        let (id, _) = o.next().unwrap();
        o.push(body(2)); // 1 moves to history while in flight
        o.ack(id);
        assert_eq!(o.len(), 1);
        assert_eq!(o.next().unwrap().1[0], 2);
    }

    #[test]
    fn zero_capacity_keeps_only_the_newest() {
        let mut o = Outbox::new(0);
        o.push(body(1));
        o.push(body(2));
        assert_eq!(o.len(), 1);
        assert_eq!(o.dropped(), 1);
    }

    /// Fails the first `fail` deliveries, recording when each attempt started and how many were
    /// in flight at once.
    struct Flaky {
        fail: usize,
        attempts: Arc<Mutex<Vec<(Instant, u8)>>>,
        in_flight: Arc<AtomicU64>,
        max_in_flight: Arc<AtomicU64>,
    }

    impl Deliver for Flaky {
        async fn deliver(&mut self, body: Bytes) -> Result<(), DeliverError> {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            self.attempts.lock().push((Instant::now(), body[0]));
            tokio::time::sleep(Duration::from_millis(50)).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            if self.fail > 0 {
                self.fail -= 1;
                Err(DeliverError::Retry("agent down".into()))
            } else {
                Ok(())
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn sender_backs_off_exponentially_then_drains_the_backlog() {
        let attempts = Arc::new(Mutex::new(Vec::new()));
        let max_in_flight = Arc::new(AtomicU64::new(0));
        let sink = Flaky {
            fail: 6,
            attempts: Arc::clone(&attempts),
            in_flight: Arc::new(AtomicU64::new(0)),
            max_in_flight: Arc::clone(&max_in_flight),
        };
        let outbox = Arc::new(Mutex::new(Outbox::new(100)));
        let notify = Arc::new(Notify::new());
        let stats = Arc::new(DaemonStats::default());
        let cancel = CancellationToken::new();
        let base = Duration::from_secs(1);
        let max = Duration::from_secs(8);
        let task = tokio::spawn(run_sender(
            sink,
            Arc::clone(&outbox),
            Arc::clone(&notify),
            Backoff::with_seed(base, max, 42),
            Arc::clone(&stats),
            cancel.clone(),
        ));
        let start = Instant::now();
        // A snapshot every 5 s for 60 s while the first six attempts fail.
        for n in 0..12u8 {
            outbox.lock().push(body(n));
            notify.notify_one();
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        cancel.cancel();
        task.await.unwrap();

        let attempts = attempts.lock().clone();
        assert_eq!(
            max_in_flight.load(Ordering::SeqCst),
            1,
            "never two requests at once"
        );
        // Gaps between the failing attempts follow the backoff: each within [c/2, c] of a
        // doubling ceiling capped at 8 s (plus the 50 ms the attempt itself took).
        let mut ceiling = base;
        for pair in attempts[..7].windows(2) {
            let gap = pair[1].0 - pair[0].0 - Duration::from_millis(50);
            assert!(
                gap >= ceiling / 2 && gap <= ceiling,
                "gap {gap:?} vs ceiling {ceiling:?}"
            );
            ceiling = (ceiling * 2).min(max);
        }
        // Afterwards everything queued was delivered: nothing is left, nothing dropped.
        assert_eq!(outbox.lock().len(), 0);
        assert_eq!(stats.push_failures.load(Ordering::SeqCst), 6);
        assert_eq!(stats.pushes.load(Ordering::SeqCst), 12);
        let mut delivered: Vec<u8> = attempts[6..].iter().map(|a| a.1).collect();
        delivered.sort();
        assert_eq!(delivered, (0..12).collect::<Vec<u8>>());
        assert!(Instant::now() - start >= Duration::from_secs(60));
    }
}
