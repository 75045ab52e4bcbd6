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
    /// CPU user percent.
    CpuUser,
    /// CPU system percent.
    CpuSystem,
    /// CPU I/O wait percent.
    CpuIowait,
    /// 5-minute load average.
    CpuLoad5,
    /// 15-minute load average.
    CpuLoad15,
    /// Swap used percent.
    SwapUsage,
    /// PSI CPU `some avg10`, percent.
    PsiCpu,
    /// PSI memory `some avg10`, percent.
    PsiMemory,
    /// PSI IO `some avg10`, percent.
    PsiIo,
    /// TCP connections established (a count).
    TcpEstablished,
    /// Sockets in use (a count).
    SocketsUsed,
    /// Primary disk's device busy percent.
    DiskIoUtil,
    /// Packets received per second over the non-virtual interfaces.
    NetRxPkt,
    /// Packets sent per second over the non-virtual interfaces.
    NetTxPkt,
}

/// Each figure with its v3 names: the name first, then its aliases (v3's order).
const NAMES: [(SeriesMetric, &[&str]); 23] = [
    (SeriesMetric::CpuUsage, &["cpu_usage", "cpu"]),
    (SeriesMetric::CpuUser, &["cpu_user"]),
    (SeriesMetric::CpuSystem, &["cpu_system"]),
    (SeriesMetric::CpuIowait, &["cpu_iowait"]),
    (SeriesMetric::CpuLoad1, &["cpu_load1"]),
    (SeriesMetric::CpuLoad5, &["cpu_load5"]),
    (SeriesMetric::CpuLoad15, &["cpu_load15"]),
    (SeriesMetric::MemoryUsage, &["memory_usage", "memory"]),
    (SeriesMetric::SwapUsage, &["swap_usage"]),
    (SeriesMetric::CpuTemp, &["temperature", "cpu_temp"]),
    (SeriesMetric::PsiCpu, &["psi_cpu"]),
    (SeriesMetric::PsiMemory, &["psi_memory"]),
    (SeriesMetric::PsiIo, &["psi_io"]),
    (SeriesMetric::TcpEstablished, &["tcp_established"]),
    (SeriesMetric::SocketsUsed, &["sockets_used"]),
    (SeriesMetric::DiskUsage, &["disk_usage", "disk"]),
    (SeriesMetric::DiskReadBps, &["disk_read_bps"]),
    (SeriesMetric::DiskWriteBps, &["disk_write_bps"]),
    (SeriesMetric::DiskIoUtil, &["disk_io_util"]),
    (SeriesMetric::NetRxBps, &["net_rx_bps", "net_rx"]),
    (SeriesMetric::NetTxBps, &["net_tx_bps", "net_tx"]),
    (SeriesMetric::NetRxPkt, &["net_rx_pkt"]),
    (SeriesMetric::NetTxPkt, &["net_tx_pkt"]),
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
}

impl SeriesMetric {
    /// The figure a v3 metric name (or alias) asks for.
    pub fn parse(name: Option<&str>) -> Result<Self, UnservedMetric> {
        let name = name.ok_or(UnservedMetric::Missing)?;
        NAMES
            .iter()
            .find(|(_, names)| names.contains(&name))
            .map(|(metric, _)| *metric)
            .ok_or_else(|| UnservedMetric::Unknown(name.to_owned()))
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

    /// This figure of a point; `None` when the point does not carry it (an extension figure
    /// the node or an older agent does not report).
    pub fn value(self, p: &MetricsDataPoint) -> Option<f64> {
        let kept = |v: f64| Some(v);
        match self {
            Self::CpuUsage => kept(p.cpu_usage),
            Self::MemoryUsage => kept(p.memory_usage),
            Self::DiskUsage => kept(p.disk_usage),
            Self::DiskReadBps => kept(p.disk_io_read),
            Self::DiskWriteBps => kept(p.disk_io_write),
            Self::NetRxBps => kept(p.network_rx),
            Self::NetTxBps => kept(p.network_tx),
            Self::CpuTemp => kept(p.cpu_temp),
            Self::CpuLoad1 => kept(p.load_1),
            Self::CpuUser => p.cpu_user,
            Self::CpuSystem => p.cpu_system,
            Self::CpuIowait => p.cpu_iowait,
            Self::CpuLoad5 => p.load_5,
            Self::CpuLoad15 => p.load_15,
            Self::SwapUsage => p.swap_usage,
            Self::PsiCpu => p.psi_cpu,
            Self::PsiMemory => p.psi_memory,
            Self::PsiIo => p.psi_io,
            Self::TcpEstablished => p.tcp_established,
            Self::SocketsUsed => p.sockets_used,
            Self::DiskIoUtil => p.disk_io_util,
            Self::NetRxPkt => p.network_rx_packets,
            Self::NetTxPkt => p.network_tx_packets,
        }
    }
}

impl Series {
    /// The series of `metric` (asked for as `name`) over points in time order; a point that
    /// does not carry the figure is left out (as v3 leaves out a node without the figure).
    pub fn of(name: &str, metric: SeriesMetric, points: &[MetricsDataPoint]) -> Self {
        Self {
            metric: name.to_owned(),
            points: points
                .iter()
                .filter_map(|p| {
                    metric.value(p).map(|value| Point {
                        timestamp: p.timestamp,
                        value,
                    })
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
        }
        .with_extensions(std::array::from_fn(|i| Some(10.0 + i as f64)));
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
            ("cpu_user", 10.0),
            ("cpu_system", 11.0),
            ("cpu_iowait", 12.0),
            ("cpu_load5", 13.0),
            ("cpu_load15", 14.0),
            ("swap_usage", 15.0),
            ("psi_cpu", 16.0),
            ("psi_memory", 17.0),
            ("psi_io", 18.0),
            ("tcp_established", 19.0),
            ("sockets_used", 20.0),
            ("disk_io_util", 21.0),
            ("net_rx_pkt", 22.0),
            ("net_tx_pkt", 23.0),
        ];
        let mut metrics = Vec::new();
        for (name, want) in cases {
            let metric = SeriesMetric::parse(Some(name)).unwrap();
            let series = Series::of(name, metric, std::slice::from_ref(&p));
            assert_eq!(series.metric, name);
            assert_eq!(series.points[0].value, want, "{name}");
            metrics.push(metric);
        }
        metrics.dedup();
        assert_eq!(metrics.len(), NAMES.len(), "every figure has a case");
    }

    #[test]
    fn points_without_an_extension_figure_are_left_out() {
        let at = |s: i64| DateTime::from_timestamp(s, 0).unwrap();
        let old = MetricsDataPoint {
            timestamp: at(0),
            cpu_usage: 5.0,
            ..Default::default()
        };
        let mut new = old.clone();
        new.timestamp = at(5);
        new.psi_cpu = Some(0.25);
        let points = [old, new];
        let psi = Series::of("psi_cpu", SeriesMetric::PsiCpu, &points);
        assert_eq!(
            psi.points,
            [Point {
                timestamp: at(5),
                value: 0.25
            }]
        );
        // The nine figures every point has: every point.
        assert_eq!(
            Series::of("cpu", SeriesMetric::CpuUsage, &points)
                .points
                .len(),
            2
        );
    }

    #[test]
    fn unknown_names_are_refused_with_the_accepted_ones() {
        let accepted = SeriesMetric::accepted();
        assert!(accepted.starts_with("cpu_usage (cpu), cpu_user, cpu_system, "));
        assert!(accepted.ends_with("net_rx_pkt, net_tx_pkt"), "{accepted}");
        for bad in ["", "CPU", "cpu_usage ", "load1", "bogus", "psi"] {
            let e = SeriesMetric::parse(Some(bad)).unwrap_err();
            assert_eq!(e, UnservedMetric::Unknown(bad.to_owned()));
            assert!(e.to_string().contains(&accepted), "{e}");
        }
        assert_eq!(SeriesMetric::parse(None), Err(UnservedMetric::Missing));
    }
}
