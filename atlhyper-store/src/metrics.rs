//! Latest snapshots and history points.

use atlhyper_model::{MetricsDataPoint, NodeMetricsSnapshot};
use chrono::{DateTime, Utc};

use crate::error::StoreResult;

/// A history range query for one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Cluster id.
    pub cluster_id: String,
    /// Node name.
    pub node_name: String,
    /// Inclusive start.
    pub from: DateTime<Utc>,
    /// Inclusive end.
    pub to: DateTime<Utc>,
    /// Downsample to at most this many points (bucket averages over equal time buckets, each
    /// stamped with its bucket's first timestamp); `None` returns every point.
    pub max_points: Option<usize>,
}

/// Latest snapshot per (cluster, node) and per-node history.
#[async_trait::async_trait]
pub trait MetricsStore: Send + Sync + 'static {
    /// Upserts the latest snapshot of each node of one cluster, in one batch (one transaction).
    async fn upsert_latest(&self, cluster_id: &str, snapshots: &[NodeMetricsSnapshot]) -> StoreResult<()>;

    /// The latest snapshot of one node.
    async fn get_latest(&self, cluster_id: &str, node_name: &str) -> StoreResult<Option<NodeMetricsSnapshot>>;

    /// The latest snapshot of every node of a cluster, sorted by node name.
    async fn list_latest(&self, cluster_id: &str) -> StoreResult<Vec<NodeMetricsSnapshot>>;

    /// Appends history points of one cluster in one batch. Idempotent on (cluster, node,
    /// timestamp): a point already stored is skipped. Returns how many were new.
    async fn append_history(&self, cluster_id: &str, points: &[MetricsDataPoint]) -> StoreResult<usize>;

    /// History of one node in `[from, to]`, oldest first, optionally downsampled.
    async fn history(&self, query: &HistoryQuery) -> StoreResult<Vec<MetricsDataPoint>>;

    /// Deletes history points older than `before`. Returns how many were deleted.
    async fn prune_history(&self, before: DateTime<Utc>) -> StoreResult<u64>;

    /// Every cluster with a latest snapshot or history, sorted.
    async fn list_clusters(&self) -> StoreResult<Vec<String>>;

    /// Every node of a cluster with a latest snapshot or history, sorted.
    async fn list_nodes(&self, cluster_id: &str) -> StoreResult<Vec<String>>;
}
