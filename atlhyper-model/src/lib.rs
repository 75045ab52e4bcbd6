//! Wire types of atlhyper-rs.
//!
//! Every type here serialises to the JSON shape of AtlHyper `model_v2` (snake_case names, bytes,
//! bytes/s, percent 0-100, Celsius, MHz, seconds), so AtlHyper v2 collectors, agents and web front
//! ends can talk to atlhyper-rs and the other way round. Fields that v2 does not have are additive
//! extensions: they are `Option` or empty by default and are left out of the JSON when absent, so a
//! v2 peer never sees them. Unknown fields from newer peers are ignored, and a Go `null` where v2
//! sends an empty list is read as an empty list.
//!
//! This crate does no I/O and has no runtime: it is serde types plus the pure functions every
//! consumer needs (a history point from a snapshot, a cluster summary from a set of snapshots, the
//! health rule), and the rules every binary reads its settings by (the duration grammar, listen
//! addresses, [`ConfigError`]).
//!
//! ```
//! use atlhyper_model::{MetricsDataPoint, NodeMetricsSnapshot};
//!
//! let json = r#"{"node_name":"worker-1","timestamp":"2024-01-20T10:30:00Z",
//!                "cpu":{"usage_percent":42.5},"memory":{"usage_percent":61.0},
//!                "disks":null,"networks":[],"processes":null}"#;
//! let snapshot: NodeMetricsSnapshot = serde_json::from_str(json).unwrap();
//! assert_eq!(snapshot.node_name, "worker-1");
//! assert!(snapshot.is_healthy());
//!
//! let point = MetricsDataPoint::from_snapshot(&snapshot);
//! assert_eq!(point.cpu_usage, 42.5);
//! ```

mod agent;
mod alert;
mod bounds;
mod cluster;
mod command;
mod config_error;
mod duration;
mod error;
mod exposition;
mod list_lengths;
mod listen;
mod liveness_changes;
mod node;
mod serde_util;
mod summary;

pub use agent::{AgentState, AgentStatus, Heartbeat, RejectedNode, StatusBody};
pub use alert::{Alert, AlertState, Labels, Severity, fingerprint};
pub use bounds::{
    BoundedList, ClockPolicy, MAX_CMDLINE_BYTES, MAX_NODE_NAME_BYTES, RejectReason, Rejection,
    SnapshotBounds, truncate_utf8, validate_node_name,
};
pub use cluster::{
    ClusterInfo, ClusterNodeMetrics, ClusterSnapshot, NodeHistory, NodeState, NodeStatus,
};
pub use command::{
    Command, CommandCreated, CommandPoll, CommandRecord, CommandResult, CommandStatus,
    CreateCommand,
};
pub use config_error::{ConfigError, MIN_TOKEN_CHARS, check_token};
pub use duration::{DurationError, parse_duration, parse_positive_duration};
pub use error::ErrorBody;
pub use exposition::{
    Exposition, ExpositionFormat, Family, MetricKind, escape_label_value, write_value,
};
pub use list_lengths::NodeListLengths;
pub use listen::{ListenAddrError, parse_listen_addr};
pub use liveness_changes::{LivenessChange, LivenessChanges};
pub use node::{
    CollectorStatus, CpuMetrics, DiskMetrics, MemoryMetrics, NetworkMetrics, NodeMetricsSnapshot,
    NodeTotals, ProcessMetrics, PsiMetrics, SensorReading, SoftnetMetrics, SystemMetrics,
    TcpMetrics, TemperatureMetrics, VmstatMetrics,
};
pub use summary::{ClusterMetricsSummary, HEALTH_THRESHOLD_PERCENT, MetricsDataPoint};
