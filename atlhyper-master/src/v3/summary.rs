//! [`Summary`] (v3 `metrics.Summary`), from the cluster summary every view shares.

use atlhyper_model::ClusterMetricsSummary;
use serde::{Deserialize, Serialize};

/// A cluster's node figures at a glance, as v3 `metrics.Summary`. Averages and maxima are over
/// the online nodes (a stale node's figures count nowhere), as on every atlhyper-rs view.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Summary {
    /// Nodes known, online or not.
    pub total_nodes: u32,
    /// Nodes online under the read-time staleness rule.
    pub online_nodes: u32,
    /// Mean CPU busy percent.
    pub avg_cpu_pct: f64,
    /// Mean memory used percent.
    pub avg_mem_pct: f64,
    /// Highest CPU busy percent.
    pub max_cpu_pct: f64,
    /// Highest memory used percent.
    pub max_mem_pct: f64,
    /// Highest CPU temperature, Celsius (the original master puts the mean here).
    pub max_cpu_temp: f64,
}

impl From<&ClusterMetricsSummary> for Summary {
    fn from(s: &ClusterMetricsSummary) -> Self {
        Self {
            total_nodes: s.total_nodes,
            online_nodes: s.online_nodes,
            avg_cpu_pct: s.avg_cpu_usage,
            avg_mem_pct: s.avg_memory_usage,
            max_cpu_pct: s.max_cpu_usage,
            max_mem_pct: s.max_memory_usage,
            max_cpu_temp: s.max_cpu_temp,
        }
    }
}
