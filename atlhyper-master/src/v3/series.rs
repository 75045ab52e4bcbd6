//! One node figure over time, as v3 `metrics.Series`, and the metric names v3 asks for it by.

use atlhyper_model::MetricsDataPoint;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `GET /api/v2/observe/metrics/nodes/{name}/series`: one figure of one node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Series {
    /// The metric name as asked (an alias stays an alias, as v3 echoes it).
    pub metric: String,
    /// In time order.
    pub points: Vec<Point>,
}

/// One value at one time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Point {
    /// When the underlying collection ran.
    pub timestamp: DateTime<Utc>,
    /// The figure, in the metric's unit.
    pub value: f64,
}

/// A figure the agents keep a series of, by its v3 metric name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeriesMetric {
    /// CPU busy percent.
    CpuUsage,
    /// Memory used percent.
    MemoryUsage,
    /// Primary disk used percent.
    DiskUsage,
    /// Disk read, bytes/s (whole disks; v3 reads the primary disk's device).
    DiskReadBps,
    /// Disk write, bytes/s (as `DiskReadBps`).
    DiskWriteBps,
    /// Network receive, bytes/s over the non-virtual interfaces.
    NetRxBps,
    /// Network send, bytes/s over the non-virtual interfaces.
    NetTxBps,
    /// CPU temperature, Celsius.
    CpuTemp,
    /// 1-minute load average.
    CpuLoad1,
}

/// Each figure with its v3 names: the name first, then its aliases.
const NAMES: [(SeriesMetric, &[&str]); 9] = [
    (SeriesMetric::CpuUsage, &["cpu_usage", "cpu"]),
    (SeriesMetric::MemoryUsage, &["memory_usage", "memory"]),
    (SeriesMetric::DiskUsage, &["disk_usage", "disk"]),
    (SeriesMetric::DiskReadBps, &["disk_read_bps"]),
    (SeriesMetric::DiskWriteBps, &["disk_write_bps"]),
    (SeriesMetric::NetRxBps, &["net_rx_bps", "net_rx"]),
    (SeriesMetric::NetTxBps, &["net_tx_bps", "net_tx"]),
    (SeriesMetric::CpuTemp, &["temperature", "cpu_temp"]),
    (SeriesMetric::CpuLoad1, &["cpu_load1"]),
];

/// v3 metric names of figures the agents' series do not carry (their ring keeps the nine
/// figures of a history point).
const NOT_KEPT: [&str; 14] = [
    "cpu_user",
    "cpu_system",
    "cpu_iowait",
    "cpu_load5",
    "cpu_load15",
    "swap_usage",
    "psi_cpu",
    "psi_memory",
    "psi_io",
    "tcp_established",
    "sockets_used",
    "disk_io_util",
    "net_rx_pkt",
    "net_tx_pkt",
];

/// Why a series cannot be answered for a metric name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnservedMetric {
    /// No `metric` was given.
    #[error("metric is required; accepted: {}", SeriesMetric::accepted())]
    Missing,
    /// Not a v3 metric name.
    #[error("unknown metric {0:?}; accepted: {accepted}", accepted = SeriesMetric::accepted())]
    Unknown(String),
    /// A v3 metric name whose figure no series here carries.
    #[error(
        "no series of {0} is kept: the agents' series carry {accepted}",
        accepted = SeriesMetric::accepted()
    )]
    NotKept(String),
}

impl SeriesMetric {
    /// The figure a v3 metric name (or alias) asks for.
    pub fn parse(name: Option<&str>) -> Result<Self, UnservedMetric> {
        let name = name.ok_or(UnservedMetric::Missing)?;
        if let Some((metric, _)) = NAMES.iter().find(|(_, names)| names.contains(&name)) {
            return Ok(*metric);
        }
        if NOT_KEPT.contains(&name) {
            return Err(UnservedMetric::NotKept(name.to_owned()));
        }
        Err(UnservedMetric::Unknown(name.to_owned()))
    }

    /// Every accepted name, aliases in parentheses: `cpu_usage (cpu), memory_usage (memory), ...`.
    pub fn accepted() -> String {
        NAMES
            .iter()
            .map(|(_, names)| match names {
                [name, aliases @ ..] if !aliases.is_empty() => {
                    format!("{name} ({})", aliases.join(", "))
                }
                _ => names.join(", "),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// This figure of a point.
    pub fn value(self, p: &MetricsDataPoint) -> f64 {
        match self {
            Self::CpuUsage => p.cpu_usage,
            Self::MemoryUsage => p.memory_usage,
            Self::DiskUsage => p.disk_usage,
            Self::DiskReadBps => p.disk_io_read,
            Self::DiskWriteBps => p.disk_io_write,
            Self::NetRxBps => p.network_rx,
            Self::NetTxBps => p.network_tx,
            Self::CpuTemp => p.cpu_temp,
            Self::CpuLoad1 => p.load_1,
        }
    }
}

impl Series {
    /// The series of `metric` (asked for as `name`) over points in time order.
    pub fn of(name: &str, metric: SeriesMetric, points: &[MetricsDataPoint]) -> Self {
        Self {
            metric: name.to_owned(),
            points: points
                .iter()
                .map(|p| Point {
                    timestamp: p.timestamp,
                    value: metric.value(p),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases_pick_their_figure() {
        let p = MetricsDataPoint {
            cpu_usage: 1.0,
            memory_usage: 2.0,
            disk_usage: 3.0,
            disk_io_read: 4.0,
            disk_io_write: 5.0,
            network_rx: 6.0,
            network_tx: 7.0,
            cpu_temp: 8.0,
            load_1: 9.0,
            ..Default::default()
        };
        let cases = [
            ("cpu_usage", 1.0),
            ("cpu", 1.0),
            ("memory_usage", 2.0),
            ("memory", 2.0),
            ("disk_usage", 3.0),
            ("disk", 3.0),
            ("disk_read_bps", 4.0),
            ("disk_write_bps", 5.0),
            ("net_rx_bps", 6.0),
            ("net_rx", 6.0),
            ("net_tx_bps", 7.0),
            ("net_tx", 7.0),
            ("temperature", 8.0),
            ("cpu_temp", 8.0),
            ("cpu_load1", 9.0),
        ];
        for (name, want) in cases {
            let metric = SeriesMetric::parse(Some(name)).unwrap();
            let series = Series::of(name, metric, std::slice::from_ref(&p));
            assert_eq!(series.metric, name);
            assert_eq!(series.points[0].value, want, "{name}");
        }
    }

    #[test]
    fn unknown_names_are_refused_with_the_accepted_ones() {
        let accepted = SeriesMetric::accepted();
        assert!(accepted.starts_with("cpu_usage (cpu), memory_usage (memory), "));
        assert!(
            accepted.ends_with("temperature (cpu_temp), cpu_load1"),
            "{accepted}"
        );
        for bad in ["", "CPU", "cpu_usage ", "load1", "bogus"] {
            let e = SeriesMetric::parse(Some(bad)).unwrap_err();
            assert_eq!(e, UnservedMetric::Unknown(bad.to_owned()));
            assert!(e.to_string().contains(&accepted), "{e}");
        }
        assert_eq!(SeriesMetric::parse(None), Err(UnservedMetric::Missing));
        for kept_elsewhere in NOT_KEPT {
            assert_eq!(
                SeriesMetric::parse(Some(kept_elsewhere)),
                Err(UnservedMetric::NotKept(kept_elsewhere.to_owned()))
            );
        }
    }
}
