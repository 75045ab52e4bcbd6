//! The pusher: a ClusterSnapshot to the master every interval, heartbeats, backfill after outages.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use atlhyper_model::{Heartbeat, MetricsDataPoint, NodeStatus};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::gzip::gzip;
use crate::master::MasterLink;
use crate::node_table::{NodeTable, PushBatch};
use crate::stats::{AgentStats, inc};

/// The version every agent reports.
pub const AGENT_VERSION: &str = concat!("atlhyper-rs/", env!("CARGO_PKG_VERSION"));

/// The JSON of [`atlhyper_model::ClusterSnapshot`], written from borrowed parts so that node
/// snapshots travel exactly as the nodes sent them. Same field names and omission rules.
#[derive(Serialize)]
struct ClusterSnapshotOut<'a> {
    cluster_id: &'a str,
    timestamp: DateTime<Utc>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    node_metrics: BTreeMap<&'a str, &'a RawValue>,
    #[serde(skip_serializing_if = "is_zero")]
    seq: u64,
    #[serde(skip_serializing_if = "is_empty_str")]
    agent_version: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    node_status: BTreeMap<&'a str, &'a NodeStatus>,
    #[serde(skip_serializing_if = "is_empty_slice")]
    backfill: &'a [MetricsDataPoint],
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn is_empty_str(s: &&str) -> bool {
    s.is_empty()
}

fn is_empty_slice<T>(s: &&[T]) -> bool {
    s.is_empty()
}

/// The ClusterSnapshot JSON of a batch.
pub(crate) fn cluster_snapshot_json(
    cluster_id: &str,
    timestamp: DateTime<Utc>,
    seq: u64,
    batch: &PushBatch,
) -> Vec<u8> {
    let out = ClusterSnapshotOut {
        cluster_id,
        timestamp,
        node_metrics: batch
            .nodes
            .iter()
            .map(|(n, raw, _)| (n.as_str(), &**raw))
            .collect(),
        seq,
        agent_version: AGENT_VERSION,
        node_status: batch
            .nodes
            .iter()
            .map(|(n, _, s)| (n.as_str(), s))
            .collect(),
        backfill: &batch.backfill,
    };
    // Serialising plain data into a Vec cannot fail.
    serde_json::to_vec(&out).unwrap_or_default()
}

/// How the pusher behaves.
#[derive(Debug, Clone)]
pub(crate) struct PushSettings {
    pub interval: Duration,
    pub heartbeat_interval: Duration,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub max_backfill: usize,
}

/// First seq of this process: the Unix time in milliseconds, so that a restarted agent still sends
/// seqs above those of its predecessor (it sends far fewer than one snapshot per millisecond).
pub(crate) fn initial_seq() -> u64 {
    u64::try_from(Utc::now().timestamp_millis())
        .unwrap_or(1)
        .max(1)
}

/// Pushes a snapshot every interval until cancelled; on failure retries with backoff and marks an
/// outage, so the next successful push carries the missed points.
pub(crate) async fn run_pusher(
    table: Arc<NodeTable>,
    link: MasterLink,
    settings: PushSettings,
    stats: Arc<AgentStats>,
    cancel: CancellationToken,
) {
    let mut seq = initial_seq();
    let mut backoff = Backoff::new(settings.backoff_base, settings.backoff_max);
    let mut next = Instant::now();
    loop {
        tokio::select! {
            _ = sleep_until(next) => {}
            _ = cancel.cancelled() => return,
        }
        let started = Instant::now();
        seq += 1;
        let batch = table.push_batch(started, settings.max_backfill);
        let cluster_id = link.cluster_id().to_owned();
        // Serialising and compressing 1000 nodes takes milliseconds: keep it off the reactor.
        let encoded = tokio::task::spawn_blocking(move || {
            let json = cluster_snapshot_json(&cluster_id, Utc::now(), seq, &batch);
            (gzip(&json, 6), batch)
        })
        .await;
        let Ok((body, batch)) = encoded else {
            tracing::error!("encoding the cluster snapshot failed");
            next = Instant::now() + backoff.next_delay();
            continue;
        };
        stats.push_last_seq.store(seq, Ordering::Relaxed);
        let result = tokio::select! {
            r = link.post_snapshot(body) => r,
            _ = cancel.cancelled() => return,
        };
        match result {
            Ok(()) => {
                table.commit_push(&batch);
                inc(&stats.push_ok);
                stats
                    .backfill_points
                    .fetch_add(batch.backfill.len() as u64, Ordering::Relaxed);
                if backoff.attempts() > 0 {
                    tracing::info!(
                        seq,
                        backfill = batch.backfill.len(),
                        "master reachable again"
                    );
                }
                backoff.reset();
                next = if batch.backfill_incomplete {
                    Instant::now()
                } else {
                    started + settings.interval
                };
            }
            Err(e) => {
                table.mark_outage();
                inc(&stats.push_failed);
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, retry_in = ?delay, "snapshot push failed");
                next = Instant::now() + delay;
            }
        }
    }
}

/// Sends a heartbeat every interval until cancelled, backing off on failure.
pub(crate) async fn run_heartbeat(
    link: MasterLink,
    settings: PushSettings,
    stats: Arc<AgentStats>,
    cancel: CancellationToken,
) {
    let mut backoff = Backoff::new(settings.backoff_base, settings.backoff_max);
    let mut next = Instant::now();
    loop {
        tokio::select! {
            _ = sleep_until(next) => {}
            _ = cancel.cancelled() => return,
        }
        let started = Instant::now();
        let hb = Heartbeat {
            cluster_id: link.cluster_id().to_owned(),
            timestamp: Utc::now(),
            agent_version: AGENT_VERSION.to_owned(),
        };
        let result = tokio::select! {
            r = link.heartbeat(&hb) => r,
            _ = cancel.cancelled() => return,
        };
        match result {
            Ok(()) => {
                inc(&stats.heartbeat_ok);
                backoff.reset();
                next = started + settings.heartbeat_interval;
            }
            Err(e) => {
                inc(&stats.heartbeat_failed);
                let delay = backoff.next_delay().min(settings.heartbeat_interval);
                tracing::debug!(error = %e, "heartbeat failed");
                next = Instant::now() + delay;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_table::NodeTableConfig;
    use atlhyper_model::{ClusterSnapshot, NodeMetricsSnapshot, NodeState};

    #[test]
    fn borrowed_json_is_a_cluster_snapshot() {
        let table = NodeTable::new(NodeTableConfig::default());
        let now = Instant::now();
        let wall = Utc::now();
        for name in ["b-node", "a-node"] {
            let s = NodeMetricsSnapshot {
                node_name: name.to_owned(),
                timestamp: wall,
                hostname: format!("host-{name}"),
                ..Default::default()
            };
            table.ingest(&s, serde_json::value::to_raw_value(&s).unwrap(), now, wall);
        }
        table.mark_outage();
        let batch = table.push_batch(now, 100);
        let json = cluster_snapshot_json("c1", wall, 42, &batch);
        let parsed: ClusterSnapshot = serde_json::from_slice(&json).unwrap();
        assert_eq!(parsed.cluster_id, "c1");
        assert_eq!(parsed.seq, 42);
        assert_eq!(parsed.agent_version, AGENT_VERSION);
        assert_eq!(parsed.node_metrics.len(), 2);
        assert_eq!(parsed.node_metrics["a-node"].hostname, "host-a-node");
        assert_eq!(parsed.node_status["b-node"].state, NodeState::Online);
        assert_eq!(parsed.backfill.len(), 2);
        // Re-serialising the parsed snapshot gives the same JSON value.
        let again = serde_json::to_value(&parsed).unwrap();
        let ours: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(again, ours);
    }

    #[test]
    fn empty_parts_are_left_out() {
        let table = NodeTable::new(NodeTableConfig::default());
        let batch = table.push_batch(Instant::now(), 100);
        let json = cluster_snapshot_json("c1", Utc::now(), 1, &batch);
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["agent_version", "cluster_id", "seq", "timestamp"]);
    }
}
