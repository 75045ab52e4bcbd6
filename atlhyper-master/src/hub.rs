//! [`DataHub`]: the latest [`ClusterSnapshot`] of every cluster, in memory, with the dashboard's
//! JSON answers serialized once per snapshot, and each agent's liveness.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use atlhyper_model::{
    AgentState, ClusterInfo, ClusterMetricsSummary, ClusterSnapshot, NodeMetricsSnapshot,
    NodeStatus,
};
use axum::body::Bytes;
use chrono::{DateTime, Utc};
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use tokio::sync::Notify;

/// The latest state of every cluster the master has heard of.
#[derive(Debug, Default)]
pub struct DataHub {
    clusters: RwLock<BTreeMap<String, Arc<ClusterEntry>>>,
}

/// One cluster: its published view, its agent's liveness, the command wake-up and the ingest
/// bookkeeping.
#[derive(Debug)]
pub(crate) struct ClusterEntry {
    pub(crate) id: String,
    /// Serializes snapshot ingest of this cluster (seq checks and history buckets).
    pub(crate) ingest: tokio::sync::Mutex<IngestMark>,
    view: RwLock<Option<Arc<ClusterView>>>,
    liveness: Mutex<Liveness>,
    /// Woken whenever a command for this cluster is queued; the agent's long poll waits on it.
    pub(crate) commands_ready: Notify,
}

/// What ingest remembers between snapshots of one cluster.
#[derive(Debug, Default)]
pub(crate) struct IngestMark {
    /// Highest `seq` accepted (0: none or a v2 agent).
    pub(crate) last_seq: u64,
    /// Timestamp of the last accepted snapshot.
    pub(crate) last_timestamp: Option<DateTime<Utc>>,
    /// Per node, the last history bucket (timestamp / history interval) that has a point.
    pub(crate) history_bucket: HashMap<String, i64>,
    /// The nodes the master holds for this cluster (the node cap counts them): seeded from the
    /// restored view at the first snapshot, grown by every admitted node. Whoever deletes a
    /// node's latest snapshot removes it here too ([`ClusterEntry::forget_nodes`]).
    pub(crate) held_nodes: Option<HashSet<String>>,
    /// When a snapshot contact was last written to the agent registry, and with which agent
    /// version and address (the registry is written at most every few seconds per agent).
    pub(crate) registry_written: Option<(DateTime<Utc>, String, String)>,
}

/// When the agent was last heard from.
#[derive(Debug, Default, Clone)]
pub(crate) struct Liveness {
    pub(crate) last_heartbeat: Option<DateTime<Utc>>,
    pub(crate) last_snapshot: Option<DateTime<Utc>>,
}

impl Liveness {
    fn last_seen(&self) -> Option<DateTime<Utc>> {
        self.last_heartbeat.max(self.last_snapshot)
    }
}

/// One accepted snapshot of a cluster, with the answers derived from it.
#[derive(Debug)]
pub struct ClusterView {
    /// The snapshot as accepted (cluster id from the token, node names from the map keys).
    pub snapshot: ClusterSnapshot,
    /// The cluster summary with real online/offline counts.
    pub summary: ClusterMetricsSummary,
    /// When the master accepted it.
    pub received_at: DateTime<Utc>,
    node_metrics_json: Arc<Encoded>,
    observe_summary_json: Bytes,
    observe_nodes_json: OnceLock<Arc<Encoded>>,
    node_overview_json: OnceLock<Arc<Encoded>>,
}

/// Answers at least this large are also offered gzip-compressed, bytes.
pub(crate) const GZIP_MIN_BYTES: usize = 16 * 1024;

/// A serialized answer, and its gzip form once compressed (off the async workers, once).
#[derive(Debug)]
pub(crate) struct Encoded {
    pub(crate) plain: Bytes,
    gzip: OnceLock<Bytes>,
    started: AtomicBool,
}

impl Encoded {
    fn new(plain: Bytes) -> Arc<Self> {
        Arc::new(Self {
            plain,
            gzip: OnceLock::new(),
            started: AtomicBool::new(false),
        })
    }

    /// The gzip form if it is ready; otherwise starts compressing it in the background (once)
    /// when the answer is large enough to be worth it.
    pub(crate) fn gzip(self: &Arc<Self>) -> Option<Bytes> {
        if let Some(g) = self.gzip.get() {
            return Some(g.clone());
        }
        self.compress_in_background();
        None
    }

    /// Starts compressing (once) on the blocking pool, if large enough and a runtime is there.
    pub(crate) fn compress_in_background(self: &Arc<Self>) {
        if self.plain.len() < GZIP_MIN_BYTES || self.started.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let this = Arc::clone(self);
        runtime.spawn_blocking(move || {
            let mut e = flate2::write::GzEncoder::new(
                Vec::with_capacity(this.plain.len() / 6),
                flate2::Compression::fast(),
            );
            let done = e.write_all(&this.plain).and_then(|()| e.finish());
            if let Ok(g) = done {
                let _ = this.gzip.set(Bytes::from(g));
            }
        });
    }
}

/// `GET /api/v2/clusters/{id}/node-metrics` without cloning the nodes: same JSON as
/// [`atlhyper_model::ClusterNodeMetrics`].
#[derive(Serialize)]
struct NodeMetricsRef<'a> {
    summary: &'a ClusterMetricsSummary,
    nodes: Vec<&'a NodeMetricsSnapshot>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    node_status: &'a BTreeMap<String, NodeStatus>,
}

/// The observe endpoints' envelope: `{"message": "ok", "data": ...}`.
#[derive(Serialize)]
pub(crate) struct Envelope<T> {
    pub(crate) message: &'static str,
    pub(crate) data: T,
}

impl<T> Envelope<T> {
    pub(crate) fn ok(data: T) -> Self {
        Self {
            message: "ok",
            data,
        }
    }
}

fn to_bytes<T: Serialize>(value: &T) -> Bytes {
    // Serializing these types cannot fail: string keys only, and serde_json writes NaN as null.
    Bytes::from(serde_json::to_vec(value).unwrap_or_else(|e| {
        tracing::error!(error = %e, "serializing a dashboard answer failed");
        b"{}".to_vec()
    }))
}

impl ClusterView {
    /// Builds the view and serializes the dashboard answers.
    pub fn new(snapshot: ClusterSnapshot, received_at: DateTime<Utc>) -> Self {
        let summary = snapshot.summary();
        let node_metrics_json = Encoded::new(to_bytes(&NodeMetricsRef {
            summary: &summary,
            nodes: snapshot.node_metrics.values().collect(),
            node_status: &snapshot.node_status,
        }));
        let observe_summary_json = to_bytes(&Envelope::ok(&summary));
        Self {
            snapshot,
            summary,
            received_at,
            node_metrics_json,
            observe_summary_json,
            observe_nodes_json: OnceLock::new(),
            node_overview_json: OnceLock::new(),
        }
    }

    /// `GET /api/v2/clusters/{id}/node-metrics` JSON.
    pub fn node_metrics_json(&self) -> Bytes {
        self.node_metrics_json.plain.clone()
    }

    pub(crate) fn node_metrics_encoded(&self) -> &Arc<Encoded> {
        &self.node_metrics_json
    }

    /// `GET /api/v2/clusters/{id}/node-metrics?view=overview` JSON: the same shape with every node
    /// in its [`NodeMetricsSnapshot::overview`] form (serialized on first use).
    pub fn node_overview_json(&self) -> Bytes {
        self.node_overview_encoded().plain.clone()
    }

    pub(crate) fn node_overview_encoded(&self) -> &Arc<Encoded> {
        self.node_overview_json.get_or_init(|| {
            let nodes: Vec<NodeMetricsSnapshot> = self
                .snapshot
                .node_metrics
                .values()
                .map(NodeMetricsSnapshot::overview)
                .collect();
            Encoded::new(to_bytes(&NodeMetricsRef {
                summary: &self.summary,
                nodes: nodes.iter().collect(),
                node_status: &self.snapshot.node_status,
            }))
        })
    }

    /// `GET /api/v2/observe/metrics/summary` JSON.
    pub fn observe_summary_json(&self) -> Bytes {
        self.observe_summary_json.clone()
    }

    /// `GET /api/v2/observe/metrics/nodes` JSON (serialized on first use).
    pub fn observe_nodes_json(&self) -> Bytes {
        self.observe_nodes_encoded().plain.clone()
    }

    pub(crate) fn observe_nodes_encoded(&self) -> &Arc<Encoded> {
        self.observe_nodes_json.get_or_init(|| {
            Encoded::new(to_bytes(&Envelope::ok(
                self.snapshot.node_metrics.values().collect::<Vec<_>>(),
            )))
        })
    }

    /// One node's latest snapshot.
    pub fn node(&self, name: &str) -> Option<&NodeMetricsSnapshot> {
        self.snapshot.node_metrics.get(name)
    }
}

impl ClusterEntry {
    fn new(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            ingest: tokio::sync::Mutex::new(IngestMark::default()),
            view: RwLock::new(None),
            liveness: Mutex::new(Liveness::default()),
            commands_ready: Notify::new(),
        }
    }

    pub(crate) fn view(&self) -> Option<Arc<ClusterView>> {
        self.view.read().clone()
    }

    pub(crate) fn publish(&self, view: Arc<ClusterView>) {
        *self.view.write() = Some(view);
    }

    pub(crate) fn heard(&self, at: DateTime<Utc>, snapshot: bool) {
        let mut l = self.liveness.lock();
        let slot = if snapshot {
            &mut l.last_snapshot
        } else {
            &mut l.last_heartbeat
        };
        *slot = (*slot).max(Some(at));
    }

    pub(crate) fn liveness(&self) -> Liveness {
        self.liveness.lock().clone()
    }

    /// Nodes whose latest snapshot was deleted no longer count against the node cap.
    #[allow(dead_code)] // for the node retirement and DELETE routes
    pub(crate) async fn forget_nodes(&self, names: &[&str]) {
        if let Some(held) = &mut self.ingest.lock().await.held_nodes {
            for name in names {
                held.remove(*name);
            }
        }
    }
}

impl DataHub {
    /// An empty hub.
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn get(&self, cluster_id: &str) -> Option<Arc<ClusterEntry>> {
        self.clusters.read().get(cluster_id).cloned()
    }

    pub(crate) fn entry(&self, cluster_id: &str) -> Arc<ClusterEntry> {
        if let Some(e) = self.get(cluster_id) {
            return e;
        }
        self.clusters
            .write()
            .entry(cluster_id.to_owned())
            .or_insert_with(|| Arc::new(ClusterEntry::new(cluster_id)))
            .clone()
    }

    /// The latest view of a cluster, if it has sent a snapshot.
    pub fn view(&self, cluster_id: &str) -> Option<Arc<ClusterView>> {
        self.get(cluster_id)?.view()
    }

    /// When a cluster's agent was last heard from, as this process saw it.
    pub(crate) fn liveness(&self, cluster_id: &str) -> Option<Liveness> {
        Some(self.get(cluster_id)?.liveness())
    }

    /// Whether the master knows the cluster (a snapshot, heartbeat or restored state).
    pub fn contains(&self, cluster_id: &str) -> bool {
        self.clusters.read().contains_key(cluster_id)
    }

    /// Every known cluster, sorted by id, with its agent online when heard from within
    /// `offline_after` of `now`.
    pub fn clusters(&self, now: DateTime<Utc>, offline_after: Duration) -> Vec<ClusterInfo> {
        let entries: Vec<Arc<ClusterEntry>> = self.clusters.read().values().cloned().collect();
        entries
            .iter()
            .map(|e| {
                let live = e.liveness();
                let state = agent_state(live.last_seen(), now, offline_after);
                let view = e.view();
                ClusterInfo {
                    cluster_id: e.id.clone(),
                    status: match state {
                        AgentState::Online => "online",
                        AgentState::Offline => "offline",
                    }
                    .to_owned(),
                    last_seen: live.last_seen().unwrap_or_default(),
                    node_count: view.map_or(0, |v| {
                        u32::try_from(v.snapshot.node_metrics.len()).unwrap_or(u32::MAX)
                    }),
                    pod_count: 0,
                }
            })
            .collect()
    }

    /// Every cluster's latest view (clusters without a snapshot left out), sorted by id.
    pub fn views(&self) -> Vec<Arc<ClusterView>> {
        let entries: Vec<Arc<ClusterEntry>> = self.clusters.read().values().cloned().collect();
        entries.iter().filter_map(|e| e.view()).collect()
    }

    /// How many agents were heard from within `offline_after`.
    pub fn agents_online(&self, now: DateTime<Utc>, offline_after: Duration) -> usize {
        let entries: Vec<Arc<ClusterEntry>> = self.clusters.read().values().cloned().collect();
        entries
            .iter()
            .filter(|e| {
                agent_state(e.liveness().last_seen(), now, offline_after) == AgentState::Online
            })
            .count()
    }
}

/// Online when `last_seen` is within `offline_after` of `now`.
pub(crate) fn agent_state(
    last_seen: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    offline_after: Duration,
) -> AgentState {
    match last_seen {
        Some(at) if chrono::Duration::from_std(offline_after).is_ok_and(|d| now - at <= d) => {
            AgentState::Online
        }
        _ => AgentState::Offline,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atlhyper_model::ClusterNodeMetrics;

    fn node(name: &str, cpu: f64) -> NodeMetricsSnapshot {
        let mut n = NodeMetricsSnapshot {
            node_name: name.into(),
            ..Default::default()
        };
        n.cpu.usage_percent = cpu;
        n
    }

    #[test]
    fn view_json_matches_the_model_type() {
        let mut snapshot = ClusterSnapshot {
            cluster_id: "c".into(),
            ..Default::default()
        };
        snapshot.node_metrics.insert("b".into(), node("b", 20.0));
        snapshot.node_metrics.insert("a".into(), node("a", 10.0));
        let view = ClusterView::new(snapshot, Utc::now());
        let parsed: ClusterNodeMetrics = serde_json::from_slice(&view.node_metrics_json()).unwrap();
        assert_eq!(parsed.nodes.len(), 2);
        assert_eq!(parsed.nodes[0].node_name, "a");
        assert_eq!(parsed.summary.total_nodes, 2);
        assert_eq!(parsed.summary.max_cpu_usage, 20.0);
        let v: serde_json::Value = serde_json::from_slice(&view.observe_nodes_json()).unwrap();
        assert_eq!(v["data"][1]["node_name"], "b");
        let v: serde_json::Value = serde_json::from_slice(&view.observe_summary_json()).unwrap();
        assert_eq!(v["data"]["avg_cpu_usage"], 15.0);
    }

    #[test]
    fn liveness_decides_online() {
        let hub = DataHub::new();
        let now = Utc::now();
        hub.entry("a")
            .heard(now - chrono::Duration::seconds(10), false);
        hub.entry("b")
            .heard(now - chrono::Duration::seconds(100), true);
        let list = hub.clusters(now, Duration::from_secs(60));
        assert_eq!(list[0].status, "online");
        assert_eq!(list[1].status, "offline");
        assert_eq!(hub.agents_online(now, Duration::from_secs(60)), 1);
    }
}
