//! [`ClusterView`]: one accepted snapshot of a cluster and every answer derived from it, built
//! once per snapshot (node list and summary JSON serialized once, large answers gzip-compressed
//! once in the background), and its silent-agent form in which every node reads offline.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use atlhyper_model::{
    ClusterMetricsSummary, ClusterSnapshot, NodeMetricsSnapshot, NodeState, NodeStatus,
};
use axum::body::Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::v3;

/// One accepted snapshot of a cluster, with the answers derived from it.
#[derive(Debug)]
pub struct ClusterView {
    /// The snapshot as accepted (cluster id from the token, node names from the map keys). Its
    /// `node_status` is moved to [`ClusterView::node_status`]; the snapshot is shared with the
    /// view's [`ClusterView::agent_silent`] form.
    pub snapshot: Arc<ClusterSnapshot>,
    /// Liveness of each node as this view counts it: the agent's word (a node it lists without
    /// a status is online, as from a v2 agent), or every node offline in the silent-agent form.
    pub node_status: BTreeMap<String, NodeStatus>,
    /// The cluster summary with real online/offline counts.
    pub summary: ClusterMetricsSummary,
    /// When the master accepted it.
    pub received_at: DateTime<Utc>,
    /// Whether this is the form for a silent agent (every node offline).
    silent: bool,
    /// The form for a silent agent, built on first use.
    silent_form: OnceLock<Arc<ClusterView>>,
    node_metrics_json: Arc<Encoded>,
    observe_summary_json: Bytes,
    observe_nodes_json: OnceLock<Arc<Encoded>>,
    node_overview_json: OnceLock<Arc<Encoded>>,
    observe_summary_v3_json: Bytes,
    observe_nodes_v3_json: OnceLock<Arc<Encoded>>,
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
            let _ = this
                .gzip
                .set(Bytes::from(atlhyper_http::gzip(&this.plain, 1)));
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

/// `GET /api/v2/observe/metrics/nodes`: the envelope with, as an extension, every node's
/// liveness as on the node list.
#[derive(Serialize)]
struct ObserveNodesRef<'a> {
    message: &'static str,
    data: Vec<&'a NodeMetricsSnapshot>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    node_status: &'a BTreeMap<String, NodeStatus>,
}

/// `GET /api/v2/observe/metrics/nodes` in the v3 shape: the envelope with, as an extension,
/// every node's liveness (`nodeStatus`).
#[derive(Serialize)]
struct ObserveNodesV3<'a> {
    message: &'static str,
    data: Vec<v3::NodeMetrics>,
    #[serde(rename = "nodeStatus", skip_serializing_if = "BTreeMap::is_empty")]
    node_status: BTreeMap<&'a str, v3::NodeLiveness>,
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
    /// Builds the view and serializes the dashboard answers; the nodes' liveness is the
    /// snapshot's `node_status`.
    pub fn new(mut snapshot: ClusterSnapshot, received_at: DateTime<Utc>) -> Self {
        let node_status = std::mem::take(&mut snapshot.node_status);
        Self::build(Arc::new(snapshot), node_status, received_at, false)
    }

    fn build(
        snapshot: Arc<ClusterSnapshot>,
        node_status: BTreeMap<String, NodeStatus>,
        received_at: DateTime<Utc>,
        silent: bool,
    ) -> Self {
        let summary = ClusterMetricsSummary::from_nodes(
            snapshot
                .node_metrics
                .iter()
                .map(|(name, node)| (node, is_online(&node_status, name))),
        );
        let node_metrics_json = Encoded::new(to_bytes(&NodeMetricsRef {
            summary: &summary,
            nodes: snapshot.node_metrics.values().collect(),
            node_status: &node_status,
        }));
        let observe_summary_json = to_bytes(&Envelope::ok(&summary));
        let observe_summary_v3_json = to_bytes(&Envelope::ok(v3::Summary::from(&summary)));
        Self {
            snapshot,
            node_status,
            summary,
            received_at,
            silent,
            silent_form: OnceLock::new(),
            node_metrics_json,
            observe_summary_json,
            observe_nodes_json: OnceLock::new(),
            node_overview_json: OnceLock::new(),
            observe_summary_v3_json,
            observe_nodes_v3_json: OnceLock::new(),
        }
    }

    /// This view as it reads while the cluster's agent is silent: every node offline, last seen
    /// when the agent last had a report from it (or at its snapshot's timestamp). Built once.
    pub fn agent_silent(self: &Arc<Self>) -> Arc<ClusterView> {
        if self.silent {
            return Arc::clone(self);
        }
        Arc::clone(self.silent_form.get_or_init(|| {
            let offline = self
                .snapshot
                .node_metrics
                .iter()
                .map(|(name, node)| {
                    let last_seen = self
                        .node_status
                        .get(name)
                        .map_or(node.timestamp, |s| s.last_seen);
                    let status = NodeStatus {
                        state: NodeState::Offline,
                        last_seen,
                    };
                    (name.clone(), status)
                })
                .collect();
            Arc::new(Self::build(
                Arc::clone(&self.snapshot),
                offline,
                self.received_at,
                true,
            ))
        }))
    }

    /// Whether this is the form for a silent agent (every node offline).
    pub fn is_agent_silent(&self) -> bool {
        self.silent
    }

    /// Whether a node of this view counts as online (a node it does not have does not).
    pub fn is_node_online(&self, node_name: &str) -> bool {
        self.snapshot.node_metrics.contains_key(node_name)
            && is_online(&self.node_status, node_name)
    }

    /// The same view without some nodes (retired or deleted), or `None` when it has none of
    /// them. Costs a copy of the snapshot: for operator actions and the periodic retirement.
    pub(crate) fn without_nodes(&self, names: &[&str]) -> Option<ClusterView> {
        if !names
            .iter()
            .any(|n| self.snapshot.node_metrics.contains_key(*n))
        {
            return None;
        }
        let mut snapshot = ClusterSnapshot::clone(&self.snapshot);
        let mut node_status = self.node_status.clone();
        for name in names {
            snapshot.node_metrics.remove(*name);
            node_status.remove(*name);
        }
        Some(Self::build(
            Arc::new(snapshot),
            node_status,
            self.received_at,
            self.silent,
        ))
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
                node_status: &self.node_status,
            }))
        })
    }

    /// `GET /api/v2/observe/metrics/summary` JSON.
    pub fn observe_summary_json(&self) -> Bytes {
        self.observe_summary_json.clone()
    }

    /// `GET /api/v2/observe/metrics/nodes` JSON (serialized on first use), with the nodes'
    /// liveness as an extension (`node_status`, as on the node list).
    pub fn observe_nodes_json(&self) -> Bytes {
        self.observe_nodes_encoded().plain.clone()
    }

    pub(crate) fn observe_nodes_encoded(&self) -> &Arc<Encoded> {
        self.observe_nodes_json.get_or_init(|| {
            Encoded::new(to_bytes(&ObserveNodesRef {
                message: "ok",
                data: self.snapshot.node_metrics.values().collect(),
                node_status: &self.node_status,
            }))
        })
    }

    /// `GET /api/v2/observe/metrics/summary` JSON in the v3 shape.
    pub fn observe_summary_v3_json(&self) -> Bytes {
        self.observe_summary_v3_json.clone()
    }

    /// `GET /api/v2/observe/metrics/nodes` JSON in the v3 shape (converted and serialized on
    /// first use), with the nodes' liveness as an extension (`nodeStatus`).
    pub fn observe_nodes_v3_json(&self) -> Bytes {
        self.observe_nodes_v3_encoded().plain.clone()
    }

    pub(crate) fn observe_nodes_v3_encoded(&self) -> &Arc<Encoded> {
        self.observe_nodes_v3_json.get_or_init(|| {
            Encoded::new(to_bytes(&ObserveNodesV3 {
                message: "ok",
                data: self
                    .snapshot
                    .node_metrics
                    .values()
                    .map(v3::NodeMetrics::from_snapshot)
                    .collect(),
                node_status: self
                    .node_status
                    .iter()
                    .map(|(name, status)| (name.as_str(), v3::NodeLiveness::from(status)))
                    .collect(),
            }))
        })
    }

    /// One node's latest snapshot.
    pub fn node(&self, name: &str) -> Option<&NodeMetricsSnapshot> {
        self.snapshot.node_metrics.get(name)
    }

    /// One node's liveness as this view counts it (`None`: no such node).
    pub fn status_of(&self, name: &str) -> Option<NodeStatus> {
        let node = self.node(name)?;
        Some(self.node_status.get(name).cloned().unwrap_or(NodeStatus {
            state: NodeState::Online,
            last_seen: node.timestamp,
        }))
    }
}

/// Online unless the status says offline (a node without a status is online, as from v2 agents).
fn is_online(node_status: &BTreeMap<String, NodeStatus>, name: &str) -> bool {
    node_status
        .get(name)
        .is_none_or(|s| s.state == NodeState::Online)
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
}
