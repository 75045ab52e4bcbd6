//! What an agent sends about its cluster, and what the master answers about it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::node::NodeMetricsSnapshot;
use crate::serde_util::{is_zero_u64, null_default};
use crate::summary::{ClusterMetricsSummary, MetricsDataPoint};

/// The agent's periodic report to the master (`POST /agent/snapshot`, gzip).
///
/// AtlHyper v2 sends many Kubernetes lists here as well (`pods`, `nodes`, ...); atlhyper-rs reads
/// only the metrics part and ignores the rest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterSnapshot {
    /// Cluster id. The master trusts the id bound to the bearer token, not this field.
    #[serde(deserialize_with = "null_default")]
    pub cluster_id: String,
    /// When the agent built the snapshot. v2 agents call it `fetched_at`.
    #[serde(alias = "fetched_at")]
    pub timestamp: DateTime<Utc>,
    /// Latest metrics of every node the agent knows, keyed by node name.
    #[serde(
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub node_metrics: BTreeMap<String, NodeMetricsSnapshot>,

    /// Extension: increases by one with every snapshot an agent process sends; the master ignores a
    /// snapshot whose seq is not above the last one it accepted from that agent. 0 = unknown (v2).
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub seq: u64,
    /// Extension: agent version string.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_default"
    )]
    pub agent_version: String,
    /// Extension: per-node liveness as the agent sees it, keyed by node name.
    #[serde(
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_default"
    )]
    pub node_status: BTreeMap<String, NodeStatus>,
    /// Extension: history points the master missed during an outage (from the agent's ring),
    /// oldest first. The master merges them without duplicates.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub backfill: Vec<MetricsDataPoint>,
}

/// Whether a node is reporting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    /// Reported within the last few collection intervals.
    #[default]
    Online,
    /// Silent for longer; its figures are stale.
    Offline,
}

/// A node's liveness as seen by the agent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeStatus {
    /// Online or offline.
    pub state: NodeState,
    /// When the agent last received a snapshot from the node.
    pub last_seen: DateTime<Utc>,
}

impl ClusterSnapshot {
    /// Whether a node counts as online: by the agent's `node_status` when present; a v2 agent
    /// sends no status, and every node it lists counts as online.
    pub fn is_node_online(&self, node_name: &str) -> bool {
        self.node_status
            .get(node_name)
            .is_none_or(|s| s.state == NodeState::Online)
    }

    /// The cluster summary with real online/offline counts.
    pub fn summary(&self) -> ClusterMetricsSummary {
        ClusterMetricsSummary::from_nodes(
            self.node_metrics
                .iter()
                .map(|(name, node)| (node, self.is_node_online(name))),
        )
    }
}

/// `GET /api/v2/clusters/{id}/node-metrics`: the summary cards and the node list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterNodeMetrics {
    /// Cluster summary.
    pub summary: ClusterMetricsSummary,
    /// Latest snapshot of every node, sorted by node name.
    #[serde(deserialize_with = "null_default")]
    pub nodes: Vec<NodeMetricsSnapshot>,
    /// Extension: per-node liveness, keyed by node name.
    #[serde(
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_default"
    )]
    pub node_status: BTreeMap<String, NodeStatus>,
}

/// `GET /api/v2/clusters/{id}/node-metrics/{node}/history`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeHistory {
    /// Node name.
    pub node_name: String,
    /// Start of the requested range.
    pub start: DateTime<Utc>,
    /// End of the requested range.
    pub end: DateTime<Utc>,
    /// Points in time order (downsampled for long ranges).
    #[serde(deserialize_with = "null_default")]
    pub data: Vec<MetricsDataPoint>,
}

/// One entry of the master's cluster list (AtlHyper v2 `ClusterInfo`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterInfo {
    /// Cluster id.
    pub cluster_id: String,
    /// Agent status: online or offline.
    pub status: String,
    /// Last heartbeat or snapshot from the agent.
    pub last_seen: DateTime<Utc>,
    /// Nodes with metrics in the latest snapshot.
    pub node_count: u32,
    /// Pods (AtlHyper v2 field; atlhyper-rs collects no pods and reports 0).
    pub pod_count: u32,
}
