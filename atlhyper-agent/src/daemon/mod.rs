//! The node daemon: collect every interval, push to the agent, never block, never grow.
//!
//! The run loop lives here; its parts are one module each: [`config`] (flags and values),
//! [`encode`] (the snapshot as a gzip JSON body), [`outbox`] (what waits for delivery, bounded),
//! [`delivery`] (the push and its retries) and [`self_metrics`] (the daemon's own `/metrics`).

mod config;
mod delivery;
mod encode;
mod node_exposition;
mod outbox;
mod self_metrics;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use atlhyper_collect::{CollectConfig, Collector, HostRoot};
use atlhyper_model::NodeMetricsSnapshot;
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use config::{DaemonArgs, DaemonConfig};
pub use encode::SnapshotEncoder;
pub use node_exposition::NodeSource;
pub use self_metrics::{DaemonStats, daemon_router, node_router};

use crate::error::AgentError;
use crate::stats::inc;
use atlhyper_http::serve::{DEFAULT_HEADER_TIMEOUT, ServeLimits, serve_with};
use atlhyper_http::tls::ServerTls;
use delivery::{HttpDeliver, retry_backoff, run_sender};
use outbox::Outbox;

/// Where a collection runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CollectOn {
    /// On the runtime's own thread: the real collector, whose cycle is a millisecond or two of
    /// reads that never wait on anything but the kernel (statfs of a mount that can hang runs on
    /// its own worker with a timeout, refused at once while still blocked). Handing each cycle
    /// to the blocking pool and back doubled the daemon's context switches (6 per cycle against
    /// 3, counted on the real binary at a 1 s interval). The first collection
    /// only primes the collector (it has no previous sample, so no rates) and the first pushed
    /// one follows `prime` later.
    RuntimeThread { prime: Duration },
    /// On the blocking pool: a source given by the caller, which may block for long.
    BlockingPool,
}

/// Runs `source` every interval and queues its snapshot, until cancelled.
async fn run_collector<F>(
    mut source: F,
    on: CollectOn,
    config: Arc<DaemonConfig>,
    outbox: Arc<Mutex<Outbox>>,
    notify: Arc<Notify>,
    stats: Arc<DaemonStats>,
    cancel: CancellationToken,
) -> Result<(), AgentError>
where
    F: FnMut() -> NodeMetricsSnapshot + Send + 'static,
{
    if let CollectOn::RuntimeThread { prime } = on {
        let _ = source();
        tokio::select! {
            _ = tokio::time::sleep(prime) => {}
            _ = cancel.cancelled() => return Ok(()),
        }
    }
    let mut ticker = tokio::time::interval(config.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Moved into each cycle and back, with the source: its buffers live across cycles.
    let mut encoder = SnapshotEncoder::new();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = cancel.cancelled() => return Ok(()),
        }
        let started = std::time::Instant::now();
        let node_name = config.node_name.clone();
        let cycle = move |mut source: F, mut encoder: SnapshotEncoder| {
            let mut snapshot = source();
            snapshot.node_name = node_name;
            let body = encoder.encode(&snapshot);
            (source, encoder, body, snapshot.collectors)
        };
        let (returned, returned_encoder, body, parts) = match on {
            CollectOn::RuntimeThread { .. } => cycle(source, encoder),
            CollectOn::BlockingPool => {
                let job = tokio::task::spawn_blocking(move || cycle(source, encoder));
                let joined = tokio::select! {
                    j = job => j,
                    _ = cancel.cancelled() => return Ok(()),
                };
                joined.map_err(|e| AgentError::Task {
                    name: "collector",
                    reason: e.to_string(),
                })?
            }
        };
        source = returned;
        encoder = returned_encoder;
        // Serialising a plain struct into memory does not fail; should it ever, the cycle is
        // skipped and said so, never a panic.
        let body = match body {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "encoding the snapshot failed; cycle skipped");
                continue;
            }
        };
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
        stats.set_parts(parts);
    }
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
    // One kept descriptor per process (see atlhyper_collect::sampler); a soft limit of 1024
    // would send most of a large node's processes through open, read and close every cycle.
    match atlhyper_collect::sampler::raise_open_files_limit() {
        Ok(limit) => tracing::debug!(limit, "open files limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open files limit"),
    }
    let root = HostRoot::new(&config.proc_root, &config.sys_root, &config.host_root);
    let mut collect = CollectConfig {
        node_name: config.node_name.clone(),
        top_processes: config.top_processes,
        statfs_timeout: config.statfs_timeout,
        ..CollectConfig::default()
    };
    if config.node_exporter_filters {
        collect = collect.with_node_exporter_filters();
    }
    let node = Arc::new(NodeSource::new(
        Collector::new(root, collect),
        config.interval,
    ));
    let collector = Arc::clone(&node);
    // The first collection has no previous sample and so no rates (CPU 0 %, IO 0 B/s); pushed
    // as is it would draw a false dip at the start of every chart. Prime the collector and
    // measure the first pushed snapshot over a short window instead. The window is at most half
    // an interval: the next tick then comes at least half an interval after the primed
    // collection, never right behind it with an elapsed time shorter than one clock tick.
    let prime = (config.interval / 2).min(Duration::from_secs(1));
    let source = move || collector.collect();
    run(
        config,
        source,
        CollectOn::RuntimeThread { prime },
        Some(node),
        shutdown,
    )
    .await
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
    run(config, source, CollectOn::BlockingPool, None, shutdown).await
}

/// The daemon: pushes `source`'s snapshots (unless pull-only) and serves `/metrics` with the
/// node's figures from `node` when given.
async fn run<F>(
    config: DaemonConfig,
    source: F,
    on: CollectOn,
    node: Option<Arc<NodeSource>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError>
where
    F: FnMut() -> NodeMetricsSnapshot + Send + 'static,
{
    config.validate()?;
    let sink = HttpDeliver::new(&config)?;
    let tls = config.tls.clone().map(ServerTls::load).transpose()?;
    let config = Arc::new(config);
    let stats = Arc::new(DaemonStats::default());
    if !config.pull_only {
        let capacity = u64::try_from(config.queue_capacity).unwrap_or(u64::MAX);
        stats.queue_capacity.store(capacity, Ordering::Relaxed);
    }
    let outbox = Arc::new(Mutex::new(Outbox::new(config.queue_capacity)));
    let notify = Arc::new(Notify::new());
    let cancel = CancellationToken::new();
    let files = sink.watch_files(cancel.clone());

    let server = match config.metrics_listen {
        Some(addr) => {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| AgentError::Bind {
                    addr: addr.to_string(),
                    source,
                })?;
            let c = cancel.clone();
            let app = node_router(Arc::clone(&stats), node);
            // A scrape endpoint: a handful of connections is plenty.
            let limits = ServeLimits {
                header_timeout: DEFAULT_HEADER_TIMEOUT,
                max_connections: 64,
            };
            Some(tokio::spawn(async move {
                serve_with(
                    listener,
                    app,
                    limits,
                    tls,
                    async move { c.cancelled().await },
                )
                .await
            }))
        }
        None => None,
    };
    let trigger = cancel.clone();
    let watcher = tokio::spawn(async move {
        shutdown.await;
        trigger.cancel();
    });
    let mut result = Ok(());
    if config.pull_only {
        tracing::info!(
            node = %config.node_name,
            "atlhyper-metrics running pull-only: collecting when /metrics is scraped"
        );
        cancel.cancelled().await;
    } else {
        tracing::info!(
            node = %config.node_name,
            agent = %config.agents().map(|a| a.joined()).unwrap_or_default(),
            interval = ?config.interval,
            "atlhyper-metrics running"
        );
        let sender = tokio::spawn(run_sender(
            sink,
            Arc::clone(&outbox),
            Arc::clone(&notify),
            retry_backoff(&config),
            Arc::clone(&stats),
            cancel.clone(),
        ));
        let collector = tokio::spawn(run_collector(
            source,
            on,
            Arc::clone(&config),
            outbox,
            notify,
            stats,
            cancel.clone(),
        ));
        let collected = collector.await;
        cancel.cancel();
        result = match collected {
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
    }
    watcher.abort();
    cancel.cancel();
    let _ = files.await;
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
