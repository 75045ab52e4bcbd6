//! The fleet load generator: stands in for the agents of many clusters. Each cluster is a
//! [`SimulatedCluster`] pushed by the agent's own client ([`MasterLink`]: gzip body, bearer
//! token, `X-Cluster-ID`, failover across the listed masters) every interval, with a heartbeat
//! as the agent sends one. Clusters start spread evenly over the first interval, as agents
//! started at different moments would, and each begins its master list at a different entry
//! (round-robin per cluster).
//!
//! Also compiled into `tests/fleet_load.rs` (the smoke test against a real master).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atlhyper::agent::{AGENT_VERSION, MasterError, MasterLink, gzip};
use atlhyper::model::Heartbeat;
use atlhyper_testkit::{SimulatedCluster, percentile};
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

/// What to generate.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Master base URLs, comma-separated (as `AGENT_MASTER_URL`).
    pub masters: String,
    /// Clusters (one simulated agent each).
    pub clusters: usize,
    /// Nodes per cluster.
    pub nodes: usize,
    /// Time between two snapshots of one cluster.
    pub interval: Duration,
    /// How long to push; the pushes in flight at the end are waited for.
    pub duration: Duration,
    /// Time between two heartbeats of one cluster (the agent's default is 15 s).
    pub heartbeat_interval: Duration,
    /// Per-request timeout of the push client.
    pub request_timeout: Duration,
    /// Cluster ids are this prefix and a three-digit number (`fleet-000`, ...).
    pub cluster_prefix: String,
    /// Each cluster's bearer token is this prefix and its cluster id; no token when `None`.
    pub token_prefix: Option<String>,
    /// Seed of the simulated figures.
    pub seed: u64,
    /// How often a progress line goes to stderr (`None`: never).
    pub progress_every: Option<Duration>,
}

/// What a run came to.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadReport {
    /// Clusters and nodes per cluster.
    pub clusters: usize,
    /// Nodes per cluster.
    pub nodes_per_cluster: usize,
    /// Snapshot interval, seconds.
    pub interval_s: f64,
    /// Time from the first push to the last answer, seconds.
    pub elapsed_s: f64,
    /// Pushes the master acknowledged (2xx).
    pub pushes_acked: u64,
    /// Pushes that got an error from every master tried, or no answer.
    pub pushes_failed: u64,
    /// Failed pushes by kind (`transport`, `status 503`, ...).
    pub errors: BTreeMap<String, u64>,
    /// Node snapshots the master refused alone inside acknowledged pushes.
    pub nodes_refused: u64,
    /// Node snapshots in acknowledged pushes.
    pub node_snapshots_acked: u64,
    /// Ticks skipped because the push before was still running at the next one.
    pub ticks_skipped: u64,
    /// Heartbeats acknowledged and failed.
    pub heartbeats_acked: u64,
    /// Heartbeats that failed.
    pub heartbeats_failed: u64,
    /// Push latency (request sent to answer read, encoding excluded), milliseconds.
    pub latency_ms_p50: f64,
    /// 99th percentile.
    pub latency_ms_p99: f64,
    /// Slowest push.
    pub latency_ms_max: f64,
    /// Mean JSON size of one node snapshot, bytes.
    pub node_json_bytes: u64,
    /// Mean gzip body of one cluster snapshot, bytes.
    pub push_body_bytes: u64,
    /// Acknowledged pushes per master that answered.
    pub acked_by_master: BTreeMap<String, u64>,
    /// Per cluster, the timestamp of its last acknowledged snapshot (every node of it carries
    /// that timestamp).
    pub last_acked: BTreeMap<String, DateTime<Utc>>,
}

/// Counters the cluster tasks share.
#[derive(Debug, Default)]
struct Tally {
    report: LoadReport,
    /// Latencies, microseconds.
    latencies_us: Vec<u64>,
    json_bytes: u64,
    body_bytes: u64,
    /// Latencies since the last progress line.
    window_us: Vec<u64>,
}

impl Tally {
    fn acked(&mut self, cluster: &str, master: &str, at: DateTime<Utc>, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latencies_us.push(us);
        self.window_us.push(us);
        self.report.pushes_acked += 1;
        *self
            .report
            .acked_by_master
            .entry(master.to_owned())
            .or_default() += 1;
        self.report.last_acked.insert(cluster.to_owned(), at);
    }

    fn failed(&mut self, error: &MasterError) {
        self.report.pushes_failed += 1;
        let kind = match error {
            MasterError::Transport { .. } => "transport".to_owned(),
            MasterError::Status { status, .. } => format!("status {status}"),
            MasterError::Decode { .. } => "decode".to_owned(),
        };
        *self.report.errors.entry(kind).or_default() += 1;
    }
}

/// Cluster `index`'s master list: the configured one turned to start at entry `index % n`.
fn masters_for(masters: &str, index: usize) -> String {
    let list: Vec<&str> = masters.split(',').map(str::trim).collect();
    let start = index % list.len().max(1);
    list[start..]
        .iter()
        .chain(&list[..start])
        .copied()
        .collect::<Vec<_>>()
        .join(",")
}

/// Runs the load for `config.duration` (or until `stop`), then waits for the pushes in flight.
/// Errors only for a configuration the push client refuses.
pub async fn run(config: LoadConfig, stop: CancellationToken) -> Result<LoadReport, String> {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let started = Instant::now();
    let end = started + config.duration;
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..config.clusters {
        let cluster_id = format!("{}{index:03}", config.cluster_prefix);
        let token = config
            .token_prefix
            .as_ref()
            .map(|prefix| format!("{prefix}{cluster_id}"));
        let link = MasterLink::new(
            &masters_for(&config.masters, index),
            &cluster_id,
            token.as_deref(),
            config.request_timeout,
        )
        .map_err(|e| e.to_string())?;
        let sim = SimulatedCluster::new(
            &cluster_id,
            config.nodes,
            config.seed.wrapping_add(index as u64),
        );
        // Evenly spread over the first interval.
        let first = started
            + config
                .interval
                .mul_f64(index as f64 / config.clusters as f64);
        tasks.spawn(push_loop(
            sim,
            link.clone(),
            first,
            end,
            config.interval,
            Arc::clone(&tally),
            stop.clone(),
        ));
        tasks.spawn(heartbeat_loop(
            link,
            first,
            end,
            config.heartbeat_interval,
            Arc::clone(&tally),
            stop.clone(),
        ));
    }
    let progress = config.progress_every.map(|every| {
        let tally = Arc::clone(&tally);
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut next = started + every;
            loop {
                tokio::select! {
                    _ = sleep_until(next) => {}
                    _ = stop.cancelled() => return,
                }
                next += every;
                print_progress(&tally, started);
            }
        })
    });
    while let Some(joined) = tasks.join_next().await {
        joined.map_err(|e| format!("a cluster task failed: {e}"))?;
    }
    if let Some(progress) = progress {
        progress.abort();
    }
    let mut tally = tally.lock().unwrap_or_else(|e| e.into_inner());
    let tally = &mut *tally;
    tally.latencies_us.sort_unstable();
    let ms = |us: u64| us as f64 / 1000.0;
    let acked = tally.report.pushes_acked.max(1);
    let report = &mut tally.report;
    report.clusters = config.clusters;
    report.nodes_per_cluster = config.nodes;
    report.interval_s = config.interval.as_secs_f64();
    report.elapsed_s = started.elapsed().as_secs_f64();
    report.latency_ms_p50 = ms(percentile(&tally.latencies_us, 50.0));
    report.latency_ms_p99 = ms(percentile(&tally.latencies_us, 99.0));
    report.latency_ms_max = ms(tally.latencies_us.last().copied().unwrap_or(0));
    report.node_json_bytes = tally.json_bytes / (acked * config.nodes.max(1) as u64);
    report.push_body_bytes = tally.body_bytes / acked;
    Ok(report.clone())
}

fn print_progress(tally: &Mutex<Tally>, started: Instant) {
    let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
    let mut window = std::mem::take(&mut t.window_us);
    window.sort_unstable();
    eprintln!(
        "fleet_load t={:.0}s acked={} failed={} skipped={} last window: pushes={} p50={:.1}ms p99={:.1}ms",
        started.elapsed().as_secs_f64(),
        t.report.pushes_acked,
        t.report.pushes_failed,
        t.report.ticks_skipped,
        window.len(),
        percentile(&window, 50.0) as f64 / 1000.0,
        percentile(&window, 99.0) as f64 / 1000.0,
    );
}

/// One cluster's pushes: a snapshot every `interval` from `first` until `end`.
async fn push_loop(
    mut sim: SimulatedCluster,
    link: MasterLink,
    first: Instant,
    end: Instant,
    interval: Duration,
    tally: Arc<Mutex<Tally>>,
    stop: CancellationToken,
) {
    let mut next = first;
    while next < end {
        tokio::select! {
            _ = sleep_until(next) => {}
            _ = stop.cancelled() => return,
        }
        let at = Utc::now();
        // Sampling, JSON and gzip of 100 nodes take milliseconds: off the reactor, as the
        // agent does.
        let encoded = tokio::task::spawn_blocking(move || {
            let snapshot = sim.snapshot(at);
            let json = serde_json::to_vec(&snapshot).unwrap_or_default();
            let body = gzip(&json, 6);
            (sim, json.len(), body)
        })
        .await;
        let Ok((back, json_len, body)) = encoded else {
            return;
        };
        sim = back;
        let body_len = body.len();
        let sent = Instant::now();
        let result = link.post_snapshot(body).await;
        let latency = sent.elapsed();
        {
            let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
            match result {
                Ok(answer) => {
                    t.acked(sim.cluster_id(), link.current_master(), at, latency);
                    t.report.nodes_refused += answer.rejected.len() as u64;
                    t.report.node_snapshots_acked +=
                        (sim.len() - answer.rejected.len().min(sim.len())) as u64;
                    t.json_bytes += json_len as u64;
                    t.body_bytes += body_len as u64;
                }
                Err(e) => t.failed(&e),
            }
        }
        next += interval;
        let now = Instant::now();
        while next <= now {
            next += interval;
            tally
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .report
                .ticks_skipped += 1;
        }
    }
}

/// One cluster's heartbeats, every `every` from `first` until `end`.
async fn heartbeat_loop(
    link: MasterLink,
    first: Instant,
    end: Instant,
    every: Duration,
    tally: Arc<Mutex<Tally>>,
    stop: CancellationToken,
) {
    let mut next = first;
    while next < end {
        tokio::select! {
            _ = sleep_until(next) => {}
            _ = stop.cancelled() => return,
        }
        let heartbeat = Heartbeat {
            cluster_id: link.cluster_id().to_owned(),
            timestamp: Utc::now(),
            agent_version: AGENT_VERSION.to_owned(),
        };
        let ok = link.heartbeat(&heartbeat).await.is_ok();
        let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
        if ok {
            t.report.heartbeats_acked += 1;
        } else {
            t.report.heartbeats_failed += 1;
        }
        next += every;
    }
}

#[cfg(test)]
mod tests {
    use super::masters_for;

    #[test]
    fn clusters_start_at_masters_in_turn() {
        assert_eq!(masters_for("a,b,c", 0), "a,b,c");
        assert_eq!(masters_for("a,b,c", 1), "b,c,a");
        assert_eq!(masters_for("a,b,c", 5), "c,a,b");
        assert_eq!(masters_for("a", 7), "a");
    }
}
