//! The agent side (AtlHyper v2 routes): snapshots, heartbeats, the command long poll and
//! command results; and the ingest of a snapshot into the hub and the stores.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use atlhyper_model::{
    ClockPolicy, ClusterSnapshot, MetricsDataPoint, NodeMetricsSnapshot, RejectedNode,
    SnapshotBounds, StatusBody, truncate_utf8,
};
use atlhyper_store::{AgentSeen, HistoryQuery, SeenVia};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};

use crate::Master;
use crate::admission::{AdmissionRules, admit, settle_time};
use crate::error::ApiError;
use crate::hub::{ClusterEntry, IngestMark};
use crate::view::ClusterView;

/// What happened to a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    /// Stored and published (its nodes that were refused alone are listed in the report).
    Accepted,
    /// Its seq (and timestamp) were not newer than the last accepted one: acknowledged, ignored.
    Duplicate,
}

/// The answer to one snapshot: what happened to it, and the nodes refused alone (the rest was
/// stored), each with its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestReport {
    /// Accepted or a duplicate.
    pub outcome: Ingested,
    /// Nodes refused alone, in name order (at most 10,000 listed; all are counted on
    /// `/metrics`).
    pub rejected: Vec<RejectedNode>,
}

impl IngestReport {
    fn duplicate() -> Self {
        Self {
            outcome: Ingested::Duplicate,
            rejected: Vec::new(),
        }
    }

    /// The `POST /agent/snapshot` answer.
    pub(crate) fn into_status(self) -> StatusBody {
        let mut body = StatusBody::with_status(match self.outcome {
            Ingested::Accepted => "ok",
            Ingested::Duplicate => "duplicate",
        });
        body.rejected = self.rejected;
        body
    }
}

/// Snapshot contacts are written to the agent registry at most this often per agent.
const REGISTRY_EVERY: chrono::Duration = chrono::Duration::seconds(5);

fn bucket_of(ts: DateTime<Utc>, interval_ms: i64) -> i64 {
    ts.timestamp_millis().div_euclid(interval_ms)
}

fn bucket_start(bucket: i64, interval_ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(bucket.saturating_mul(interval_ms)).unwrap_or_default()
}

/// What ingest accepts of one snapshot, from the configuration.
fn admission_rules(master: &Master) -> AdmissionRules {
    let config = &master.config;
    AdmissionRules {
        bounds: SnapshotBounds::default(),
        clock: ClockPolicy {
            max_ahead: config.max_clock_ahead,
            max_age: config.retention,
        },
        max_nodes: config.max_nodes_per_cluster,
        max_backfill_per_node: crate::admission::MAX_BACKFILL_POINTS_PER_NODE,
        backfill_ahead: chrono::Duration::from_std(config.history_interval)
            .unwrap_or(chrono::Duration::MAX),
    }
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
pub(crate) async fn ingest_snapshot(
    master: &Master,
    cluster_id: &str,
    mut snapshot: ClusterSnapshot,
    remote_addr: &str,
) -> Result<IngestReport, ApiError> {
    crate::auth::valid_cluster_id(cluster_id)?;
    snapshot.cluster_id = cluster_id.to_owned();
    let rules = admission_rules(master);
    truncate_utf8(&mut snapshot.agent_version, rules.bounds.max_string_bytes);
    let entry = master.hub.entry(cluster_id);
    let mut mark = entry.ingest.lock().await;
    let now = Utc::now();
    // The agent's own clock far off must not make every later snapshot a "duplicate".
    snapshot.timestamp = settle_time(&rules.clock, snapshot.timestamp, now);
    if is_duplicate(&mark, &snapshot) {
        return Ok(IngestReport::duplicate());
    }
    // Deleted or retired nodes the agent still lists as offline stay out.
    entry.drop_unknown_offline(&mut snapshot);
    let held = mark.held_nodes.get_or_insert_with(|| {
        entry
            .view()
            .map(|v| v.snapshot.node_metrics.keys().cloned().collect())
            .unwrap_or_default()
    });
    let admission = admit(&mut snapshot, held, &rules, now);
    for name in snapshot.node_metrics.keys() {
        if !held.contains(name) {
            held.insert(name.clone());
        }
    }
    master.stats.count_admission(&admission);
    if let Some(first) = admission.rejected.first() {
        tracing::warn!(
            cluster = cluster_id,
            refused = admission.refused.iter().sum::<u64>(),
            first_node = %first.node_name,
            first_reason = %first.reason,
            first_error = %first.error,
            "nodes refused alone"
        );
    }
    let backfill = std::mem::take(&mut snapshot.backfill);
    let persisted = persist(master, &entry, &mut mark, &mut snapshot, &backfill, now).await;
    if persisted.is_ok() {
        crate::series::record(master, cluster_id, &snapshot, &backfill, now).await;
    }

    let view = if snapshot.node_metrics.len() > 200 {
        tokio::task::spawn_blocking(move || ClusterView::new(snapshot, now))
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "building the view failed",
                )
            })?
    } else {
        ClusterView::new(snapshot, now)
    };
    let (seq, timestamp) = (view.snapshot.seq, view.snapshot.timestamp);
    let agent_version = view.snapshot.agent_version.clone();
    // Told only once stored: the other masters read the rows it names.
    let news = (persisted.is_ok() && master.fleet.is_shared())
        .then(|| crate::fleet::News::snapshot(&view, now));
    // The dashboard polls the node list: have its gzip form ready before the next poll.
    view.node_metrics_encoded().compress_in_background();
    entry.publish(Arc::new(view));
    entry.heard(now, true);

    persisted?;
    if let Some(news) = news {
        master.fleet.tell(news);
    }
    // The registry is for restarts and the agent list; the hub has the exact time. Writing it
    // at most every REGISTRY_EVERY saves a store transaction on most snapshots.
    let due = match &mark.registry_written {
        Some((at, version, addr)) => {
            now - *at >= REGISTRY_EVERY || *version != agent_version || addr != remote_addr
        }
        None => true,
    };
    if due {
        let seen = AgentSeen {
            cluster_id: cluster_id.to_owned(),
            agent_version: agent_version.clone(),
            remote_addr: remote_addr.to_owned(),
            at: now,
            via: SeenVia::Snapshot,
        };
        match master.agents.seen(&seen).await {
            Ok(()) => {
                mark.registry_written = Some((now, agent_version, remote_addr.to_owned()));
            }
            Err(e) => master.store_failure("recording the agent", &e),
        }
    }
    mark.last_seq = seq;
    mark.last_timestamp = Some(timestamp);
    Ok(IngestReport {
        outcome: Ingested::Accepted,
        rejected: admission.rejected,
    })
}

/// Writes the latest snapshots and the new history points; advances the history buckets
/// only when the write worked.
async fn persist(
    master: &Master,
    entry: &ClusterEntry,
    mark: &mut IngestMark,
    snapshot: &mut ClusterSnapshot,
    backfill: &[MetricsDataPoint],
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let store = &master.metrics;
    let cluster_id = entry.id.as_str();
    let interval_ms = i64::try_from(master.config.history_interval.as_millis())
        .unwrap_or(i64::MAX)
        .max(1);
    let newest_ok = now + chrono::Duration::milliseconds(interval_ms);
    let oldest_ok =
        now - chrono::Duration::from_std(master.config.retention).unwrap_or(chrono::Duration::MAX);

    // History: one point per node per bucket.
    let mut due: Vec<(&String, i64)> = Vec::new();
    let mut current_bucket = BTreeMap::new();
    for (name, node) in &snapshot.node_metrics {
        if !snapshot.is_node_online(name)
            || node.timestamp > newest_ok
            || node.timestamp < oldest_ok
        {
            continue;
        }
        let bucket = bucket_of(node.timestamp, interval_ms);
        current_bucket.insert(name.clone(), bucket);
        due.push((name, bucket));
    }
    // Nodes this process has not seen yet may have points from before a restart or from another
    // master: asked about together, in one store call.
    let unseen: Vec<(&str, i64)> = due
        .iter()
        .filter(|(name, _)| !mark.history_bucket.contains_key(*name))
        .map(|(name, bucket)| (name.as_str(), *bucket))
        .collect();
    let stored = stored_buckets(master, cluster_id, &unseen, interval_ms, now).await?;
    let mut points = Vec::new();
    let mut new_buckets = Vec::new();
    for (name, bucket) in due {
        let last = mark
            .history_bucket
            .get(name)
            .copied()
            .or_else(|| stored.get(name.as_str()).copied());
        if last.is_none_or(|last| bucket > last) {
            points.push(MetricsDataPoint::from_snapshot(
                &snapshot.node_metrics[name],
            ));
            new_buckets.push((name.clone(), bucket));
        } else if let Some(last) = last {
            mark.history_bucket.insert(name.clone(), last);
        }
    }

    // Backfill: the first point of every bucket the store does not have yet, before the
    // node's current bucket.
    let mut by_node: BTreeMap<&str, Vec<&MetricsDataPoint>> = BTreeMap::new();
    for p in backfill {
        if !p.node_name.is_empty() && p.timestamp <= newest_ok && p.timestamp >= oldest_ok {
            by_node.entry(p.node_name.as_str()).or_default().push(p);
        }
    }
    for (name, mut list) in by_node {
        list.sort_by_key(|p| p.timestamp);
        let upper = current_bucket.get(name).copied().unwrap_or(i64::MAX);
        list.retain(|p| bucket_of(p.timestamp, interval_ms) < upper);
        let (Some(first), Some(last)) = (list.first(), list.last()) else {
            continue;
        };
        let query = HistoryQuery {
            cluster_id: cluster_id.to_owned(),
            node_name: name.to_owned(),
            from: bucket_start(bucket_of(first.timestamp, interval_ms), interval_ms),
            to: bucket_start(bucket_of(last.timestamp, interval_ms) + 1, interval_ms),
            max_points: None,
        };
        let stored = store
            .history(&query)
            .await
            .map_err(master.store_failed("reading history"))?;
        let mut have: HashSet<i64> = stored
            .iter()
            .map(|p| bucket_of(p.timestamp, interval_ms))
            .collect();
        for p in list {
            if have.insert(bucket_of(p.timestamp, interval_ms)) {
                points.push(p.clone());
            }
        }
    }

    // Latest: move the nodes out for the batch and back afterwards (no copy).
    let nodes: Vec<NodeMetricsSnapshot> = std::mem::take(&mut snapshot.node_metrics)
        .into_values()
        .collect();
    let upserted = store.upsert_latest(cluster_id, &nodes).await;
    snapshot.node_metrics = nodes
        .into_iter()
        .map(|n| (n.node_name.clone(), n))
        .collect();
    upserted.map_err(master.store_failed("storing the latest snapshots"))?;

    if !points.is_empty() {
        let written = store
            .append_history(cluster_id, &points)
            .await
            .map_err(master.store_failed("storing history"))?;
        master
            .stats
            .history_points
            .fetch_add(written as u64, Ordering::Relaxed);
    }
    for (name, bucket) in new_buckets {
        mark.history_bucket.insert(name, bucket);
    }
    Ok(())
}

/// The newest history bucket the store has for each of `nodes` (name, current bucket) from the
/// earliest of their buckets on; nodes without one are left out.
async fn stored_buckets<'a>(
    master: &Master,
    cluster_id: &str,
    nodes: &[(&'a str, i64)],
    interval_ms: i64,
    now: DateTime<Utc>,
) -> Result<HashMap<&'a str, i64>, ApiError> {
    let Some(first) = nodes.iter().map(|(_, bucket)| *bucket).min() else {
        return Ok(HashMap::new());
    };
    let names: Vec<&str> = nodes.iter().map(|(name, _)| *name).collect();
    let newest = master
        .metrics
        .newest_history(
            cluster_id,
            &names,
            bucket_start(first, interval_ms),
            now + chrono::Duration::milliseconds(interval_ms),
        )
        .await
        .map_err(master.store_failed("reading history"))?;
    Ok(names
        .into_iter()
        .zip(newest)
        .filter_map(|(name, ts)| Some((name, bucket_of(ts?, interval_ms))))
        .collect())
}

/// A snapshot is a duplicate (a retry or a reordered old one) when its seq is not above the last
/// accepted one and it is not newer either. A restarted agent starts its seq again at 1 but
/// sends newer timestamps, so it is accepted.
fn is_duplicate(mark: &IngestMark, snapshot: &ClusterSnapshot) -> bool {
    let Some(last_ts) = mark.last_timestamp else {
        return false;
    };
    snapshot.seq <= mark.last_seq && snapshot.timestamp <= last_ts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates() {
        let t0 = Utc::now();
        let mut mark = IngestMark::default();
        let snap = |seq, ts| ClusterSnapshot {
            seq,
            timestamp: ts,
            ..Default::default()
        };
        assert!(!is_duplicate(&mark, &snap(5, t0)));
        mark.last_seq = 5;
        mark.last_timestamp = Some(t0);
        assert!(is_duplicate(&mark, &snap(5, t0)));
        assert!(is_duplicate(
            &mark,
            &snap(4, t0 - chrono::Duration::seconds(10))
        ));
        assert!(!is_duplicate(
            &mark,
            &snap(6, t0 + chrono::Duration::seconds(10))
        ));
        // A restarted agent: seq starts over, time moves on.
        assert!(!is_duplicate(
            &mark,
            &snap(1, t0 + chrono::Duration::seconds(10))
        ));
        // v2 agents send no seq: a retry has the same timestamp.
        mark.last_seq = 0;
        assert!(is_duplicate(&mark, &snap(0, t0)));
        assert!(!is_duplicate(
            &mark,
            &snap(0, t0 + chrono::Duration::seconds(1))
        ));
    }

    #[test]
    fn buckets() {
        let t = DateTime::from_timestamp(600, 0).unwrap();
        assert_eq!(bucket_of(t, 300_000), 2);
        assert_eq!(bucket_start(2, 300_000), t);
        let before_epoch = DateTime::from_timestamp(-1, 0).unwrap();
        assert_eq!(bucket_of(before_epoch, 300_000), -1);
    }
}
