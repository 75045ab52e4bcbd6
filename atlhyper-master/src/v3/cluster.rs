//! The cluster list as the AtlHyper web reads it (`ClusterListResponse`, v3 `agent.ClusterInfo`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `GET /api/v2/clusters`: every known cluster and how many.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterList {
    /// Sorted by id.
    pub clusters: Vec<ClusterInfo>,
    /// `clusters.len()`.
    pub total: usize,
}

/// One cluster of the list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClusterInfo {
    /// Cluster id.
    pub cluster_id: String,
    /// The agent's state: `online` or `offline`.
    pub status: String,
    /// Last heartbeat or snapshot from the agent.
    pub last_seen: DateTime<Utc>,
    /// Nodes with figures in the latest snapshot.
    pub node_count: u32,
    /// Pods: atlhyper-rs collects none and says 0.
    pub pod_count: u32,
    /// Whether node figures exist (the web shows its metrics pages only then; v3 says whether
    /// the cluster has OpenTelemetry data, atlhyper-rs whether it has node metrics).
    pub otel_available: bool,
}

impl From<atlhyper_model::ClusterInfo> for ClusterInfo {
    fn from(c: atlhyper_model::ClusterInfo) -> Self {
        Self {
            otel_available: c.node_count > 0,
            cluster_id: c.cluster_id,
            status: c.status,
            last_seen: c.last_seen,
            node_count: c.node_count,
            pod_count: c.pod_count,
        }
    }
}

impl From<Vec<atlhyper_model::ClusterInfo>> for ClusterList {
    fn from(list: Vec<atlhyper_model::ClusterInfo>) -> Self {
        let clusters: Vec<ClusterInfo> = list.into_iter().map(ClusterInfo::from).collect();
        Self {
            total: clusters.len(),
            clusters,
        }
    }
}
