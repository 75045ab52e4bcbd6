//! The AtlHyper v3 shapes (`model_v3/metrics`, and the cluster list and node history its web
//! reads), and their conversion from what atlhyper-rs collects.
//!
//! The observe routes, `GET /api/v2/clusters` and `GET /api/v2/node-metrics/{name}/history`
//! answer in these shapes by default; `?format=v2` keeps the AtlHyper v2 (snake_case) answers.
//! Names and JSON tags are v3's, irregular ones included (`nodeIP`, `iowaitPct`, `readIOPS`);
//! units are v3's: bytes, bytes per second, Hz, Celsius, percent 0-100, per-second rates.
//! What a node does not report reads 0 (or an empty list), as v3 answers it.
//!
//! ```
//! use atlhyper_master::v3::NodeMetrics;
//! use atlhyper_model::NodeMetricsSnapshot;
//!
//! let mut snapshot = NodeMetricsSnapshot { node_name: "worker-1".into(), ..Default::default() };
//! snapshot.cpu.frequency = 2200.0; // MHz
//! let v3 = NodeMetrics::from_snapshot(&snapshot);
//! assert_eq!(v3.cpu.freq_hz, vec![2.2e9]);
//! let json = serde_json::to_value(&v3).unwrap();
//! assert_eq!(json["nodeName"], "worker-1");
//! assert_eq!(json["tcp"]["currEstab"], 0); // no TCP figures: zero, as v3 answers
//! ```

mod cluster;
mod history;
mod node;
mod series;
mod summary;

pub use cluster::{ClusterInfo, ClusterList};
pub use history::{HistoryData, HistoryPoint, NodeHistory};
pub use node::{
    NodeCpu, NodeDisk, NodeLiveness, NodeMemory, NodeMetrics, NodeNetwork, NodePsi, NodeSoftnet,
    NodeSystem, NodeTcp, NodeTemperature, NodeVmstat, TempSensor,
};
pub use series::{Point, Series, SeriesMetric, UnservedMetric};
pub use summary::Summary;
