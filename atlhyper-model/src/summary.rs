//! History points, the cluster summary and the health rule: pure functions over snapshots.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::node::{NetworkMetrics, NodeMetricsSnapshot};
use crate::serde_util::null_default;

/// A node is unhealthy when CPU, memory or any disk is above this percent (AtlHyper v2's rule).
pub const HEALTH_THRESHOLD_PERCENT: f64 = 90.0;

/// One point of a node's trend charts. The master stores one every 5 minutes for 30 days; the agent
/// keeps one per collection in a ring for high-resolution detail queries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MetricsDataPoint {
    /// When the underlying snapshot was collected.
    pub timestamp: DateTime<Utc>,
    /// Node name.
    #[serde(deserialize_with = "null_default")]
    pub node_name: String,
    /// CPU busy percent.
    pub cpu_usage: f64,
    /// Memory used percent.
    pub memory_usage: f64,
    /// Primary disk (mounted at `/`, else the first) used percent.
    pub disk_usage: f64,
    /// Disk read, bytes/s over whole disks.
    pub disk_io_read: f64,
    /// Disk write, bytes/s over whole disks.
    pub disk_io_write: f64,
    /// Network receive, bytes/s over non-virtual interfaces.
    pub network_rx: f64,
    /// Network send, bytes/s over non-virtual interfaces.
    pub network_tx: f64,
    /// CPU temperature, Celsius (0 if the node has no sensor).
    pub cpu_temp: f64,
    /// 1-minute load average.
    pub load_1: f64,

    // Extensions (atlhyper-rs agents from v0.1 on; left out when absent, so the nine figures
    // above are all an AtlHyper v2 reader sees). Absent from points of older agents, and where
    // the node does not report the figure.
    /// Extension: CPU user percent (mpstat `%usr`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_user: Option<f64>,
    /// Extension: CPU system percent (mpstat `%sys`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_system: Option<f64>,
    /// Extension: CPU I/O wait percent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_iowait: Option<f64>,
    /// Extension: 5-minute load average.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_5: Option<f64>,
    /// Extension: 15-minute load average.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_15: Option<f64>,
    /// Extension: swap used percent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap_usage: Option<f64>,
    /// Extension: percent of time some task stalled on CPU (PSI `some avg10`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psi_cpu: Option<f64>,
    /// Extension: percent of time some task stalled on memory (PSI `some avg10`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psi_memory: Option<f64>,
    /// Extension: percent of time some task stalled on IO (PSI `some avg10`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub psi_io: Option<f64>,
    /// Extension: TCP connections in ESTABLISHED or CLOSE-WAIT (a count).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_established: Option<f64>,
    /// Extension: sockets of every kind in use (a count).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sockets_used: Option<f64>,
    /// Extension: primary disk's device busy percent (iostat `%util`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_io_util: Option<f64>,
    /// Extension: packets/s received over the interfaces `network_rx` sums.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_rx_packets: Option<f64>,
    /// Extension: packets/s sent over the interfaces `network_tx` sums.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_tx_packets: Option<f64>,
}

impl MetricsDataPoint {
    /// How many figures a point has besides its timestamp and node name.
    pub const FIGURES: usize = 9;

    /// The figures in field order (cpu_usage, memory_usage, disk_usage, disk_io_read,
    /// disk_io_write, network_rx, network_tx, cpu_temp, load_1): the compact form that rings and
    /// stores keep without a node name.
    pub fn figures(&self) -> [f64; Self::FIGURES] {
        [
            self.cpu_usage,
            self.memory_usage,
            self.disk_usage,
            self.disk_io_read,
            self.disk_io_write,
            self.network_rx,
            self.network_tx,
            self.cpu_temp,
            self.load_1,
        ]
    }

    /// The point of `node_name` at `timestamp` with figures in [`MetricsDataPoint::figures`] order.
    pub fn from_figures(
        timestamp: DateTime<Utc>,
        node_name: String,
        figures: [f64; Self::FIGURES],
    ) -> Self {
        let [
            cpu_usage,
            memory_usage,
            disk_usage,
            disk_io_read,
            disk_io_write,
            network_rx,
            network_tx,
            cpu_temp,
            load_1,
        ] = figures;
        Self {
            timestamp,
            node_name,
            cpu_usage,
            memory_usage,
            disk_usage,
            disk_io_read,
            disk_io_write,
            network_rx,
            network_tx,
            cpu_temp,
            load_1,
            ..Self::default()
        }
    }

    /// How many extension figures a point may carry.
    pub const EXTENSIONS: usize = 14;

    /// The extension figures in field order (cpu_user, cpu_system, cpu_iowait, load_5,
    /// load_15, swap_usage, psi_cpu, psi_memory, psi_io, tcp_established, sockets_used,
    /// disk_io_util, network_rx_packets, network_tx_packets).
    pub fn extensions(&self) -> [Option<f64>; Self::EXTENSIONS] {
        [
            self.cpu_user,
            self.cpu_system,
            self.cpu_iowait,
            self.load_5,
            self.load_15,
            self.swap_usage,
            self.psi_cpu,
            self.psi_memory,
            self.psi_io,
            self.tcp_established,
            self.sockets_used,
            self.disk_io_util,
            self.network_rx_packets,
            self.network_tx_packets,
        ]
    }

    /// This point with the extension figures in [`MetricsDataPoint::extensions`] order.
    pub fn with_extensions(self, extensions: [Option<f64>; Self::EXTENSIONS]) -> Self {
        let [
            cpu_user,
            cpu_system,
            cpu_iowait,
            load_5,
            load_15,
            swap_usage,
            psi_cpu,
            psi_memory,
            psi_io,
            tcp_established,
            sockets_used,
            disk_io_util,
            network_rx_packets,
            network_tx_packets,
        ] = extensions;
        Self {
            cpu_user,
            cpu_system,
            cpu_iowait,
            load_5,
            load_15,
            swap_usage,
            psi_cpu,
            psi_memory,
            psi_io,
            tcp_established,
            sockets_used,
            disk_io_util,
            network_rx_packets,
            network_tx_packets,
            ..self
        }
    }

    /// This point as AtlHyper v2 knows it: the nine figures, no extension.
    pub fn without_extensions(&self) -> Self {
        Self::from_figures(self.timestamp, self.node_name.clone(), self.figures())
    }

    /// The history point of a snapshot.
    ///
    /// Disk and network figures (packets too) come from the snapshot's `totals` (whole disks,
    /// non-virtual interfaces). A snapshot from an AtlHyper v2 collector has no `totals`; then disk
    /// IO is summed over distinct devices and network over every reported interface except `lo`
    /// (v2 collectors already leave out virtual interfaces), never taken from "the first
    /// interface". Extension figures the snapshot lacks (PSI, TCP, packet rates, a disk) are
    /// `None`.
    pub fn from_snapshot(s: &NodeMetricsSnapshot) -> Self {
        let (network_rx_packets, network_tx_packets) = match &s.totals {
            Some(t) => (t.network_rx_packets_rate, t.network_tx_packets_rate),
            None => {
                let packets = |rate: fn(&NetworkMetrics) -> Option<f64>| {
                    s.networks
                        .iter()
                        .filter(|n| n.interface != "lo")
                        .filter_map(rate)
                        .fold(None, |sum: Option<f64>, r| {
                            Some(sum.unwrap_or(0.0) + finite(r))
                        })
                };
                (
                    packets(|n| n.rx_packets_rate),
                    packets(|n| n.tx_packets_rate),
                )
            }
        };
        let (disk_io_read, disk_io_write, network_rx, network_tx) = match &s.totals {
            Some(t) => (
                t.disk_read_rate,
                t.disk_write_rate,
                t.network_rx_rate,
                t.network_tx_rate,
            ),
            None => {
                let mut seen = HashSet::new();
                let (mut read, mut write) = (0.0, 0.0);
                for d in &s.disks {
                    if seen.insert(d.device.as_str()) {
                        read += finite(d.read_rate);
                        write += finite(d.write_rate);
                    }
                }
                let (mut rx, mut tx) = (0.0, 0.0);
                for n in s.networks.iter().filter(|n| n.interface != "lo") {
                    rx += finite(n.rx_rate);
                    tx += finite(n.tx_rate);
                }
                (read, write, rx, tx)
            }
        };
        Self {
            timestamp: s.timestamp,
            node_name: s.node_name.clone(),
            cpu_usage: s.cpu.usage_percent,
            memory_usage: s.memory.usage_percent,
            disk_usage: s.primary_disk().map_or(0.0, |d| d.usage_percent),
            disk_io_read,
            disk_io_write,
            network_rx,
            network_tx,
            cpu_temp: s.temperature.cpu_temp,
            load_1: s.cpu.load_1,
            cpu_user: Some(s.cpu.user_percent),
            cpu_system: Some(s.cpu.system_percent),
            cpu_iowait: Some(s.cpu.iowait_percent),
            load_5: Some(s.cpu.load_5),
            load_15: Some(s.cpu.load_15),
            swap_usage: Some(s.memory.swap_percent),
            psi_cpu: s.psi.as_ref().map(|p| p.cpu_some),
            psi_memory: s.psi.as_ref().map(|p| p.memory_some),
            psi_io: s.psi.as_ref().map(|p| p.io_some),
            // Counts far below 2^53: exact as f64.
            tcp_established: s.tcp.as_ref().map(|t| t.curr_estab as f64),
            sockets_used: s.tcp.as_ref().map(|t| t.sockets_used as f64),
            disk_io_util: s.primary_disk().map(|d| d.io_util),
            network_rx_packets,
            network_tx_packets,
        }
    }
}

impl NodeMetricsSnapshot {
    /// The health rule: unhealthy when CPU, memory or any disk is above
    /// [`HEALTH_THRESHOLD_PERCENT`].
    pub fn is_healthy(&self) -> bool {
        self.cpu.usage_percent <= HEALTH_THRESHOLD_PERCENT
            && self.memory.usage_percent <= HEALTH_THRESHOLD_PERCENT
            && self
                .disks
                .iter()
                .all(|d| d.usage_percent <= HEALTH_THRESHOLD_PERCENT)
    }
}

/// Cluster-wide figures for the overview cards (AtlHyper v2 `ClusterMetricsSummary`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterMetricsSummary {
    /// Nodes known to the agent, online or not.
    pub total_nodes: u32,
    /// Nodes that reported within the staleness window.
    pub online_nodes: u32,
    /// Nodes that stopped reporting.
    pub offline_nodes: u32,
    /// Mean CPU busy percent over online nodes.
    pub avg_cpu_usage: f64,
    /// Mean memory used percent over online nodes.
    pub avg_memory_usage: f64,
    /// Mean primary-disk used percent over online nodes.
    pub avg_disk_usage: f64,
    /// Highest CPU busy percent of an online node.
    pub max_cpu_usage: f64,
    /// Highest memory used percent of an online node.
    pub max_memory_usage: f64,
    /// Highest primary-disk used percent of an online node.
    pub max_disk_usage: f64,
    /// Mean CPU temperature over online nodes that have a sensor, Celsius.
    pub avg_cpu_temp: f64,
    /// Highest CPU temperature, Celsius.
    pub max_cpu_temp: f64,
    /// Sum of MemTotal over online nodes, bytes.
    pub total_memory: u64,
    /// Sum of used memory over online nodes, bytes.
    pub used_memory: u64,
    /// Sum of filesystem sizes over online nodes (each device once per node), bytes.
    pub total_disk: u64,
    /// Sum of used filesystem space over online nodes (each device once per node), bytes.
    pub used_disk: u64,
    /// Sum of network receive rates, bytes/s.
    pub total_network_rx: u64,
    /// Sum of network send rates, bytes/s.
    pub total_network_tx: u64,
}

impl ClusterMetricsSummary {
    /// Summarises a set of nodes, each with whether it is online. Offline nodes are counted but
    /// contribute nothing to averages, maxima or sums (their figures are stale).
    pub fn from_nodes<'a, I>(nodes: I) -> Self
    where
        I: IntoIterator<Item = (&'a NodeMetricsSnapshot, bool)>,
    {
        let mut s = Self::default();
        let (mut cpu_sum, mut mem_sum, mut disk_sum, mut temp_sum) = (0.0, 0.0, 0.0, 0.0);
        let mut temp_count = 0u32;
        let (mut rx, mut tx) = (0.0, 0.0);
        for (node, online) in nodes {
            s.total_nodes += 1;
            if !online {
                s.offline_nodes += 1;
                continue;
            }
            s.online_nodes += 1;
            let point = MetricsDataPoint::from_snapshot(node);
            cpu_sum += point.cpu_usage;
            mem_sum += point.memory_usage;
            disk_sum += point.disk_usage;
            s.max_cpu_usage = s.max_cpu_usage.max(point.cpu_usage);
            s.max_memory_usage = s.max_memory_usage.max(point.memory_usage);
            s.max_disk_usage = s.max_disk_usage.max(point.disk_usage);
            if node.temperature.cpu_temp > 0.0 {
                temp_sum += node.temperature.cpu_temp;
                temp_count += 1;
                s.max_cpu_temp = s.max_cpu_temp.max(node.temperature.cpu_temp);
            }
            s.total_memory = s.total_memory.saturating_add(node.memory.total);
            s.used_memory = s.used_memory.saturating_add(node.memory.used);
            let mut seen = HashSet::new();
            for d in node.disks.iter().filter(|d| seen.insert(d.device.as_str())) {
                s.total_disk = s.total_disk.saturating_add(d.total);
                s.used_disk = s.used_disk.saturating_add(d.used);
            }
            rx += point.network_rx;
            tx += point.network_tx;
        }
        if s.online_nodes > 0 {
            let n = f64::from(s.online_nodes);
            s.avg_cpu_usage = cpu_sum / n;
            s.avg_memory_usage = mem_sum / n;
            s.avg_disk_usage = disk_sum / n;
        }
        if temp_count > 0 {
            s.avg_cpu_temp = temp_sum / f64::from(temp_count);
        }
        s.total_network_rx = rate_to_u64(rx);
        s.total_network_tx = rate_to_u64(tx);
        s
    }
}

fn finite(v: f64) -> f64 {
    if v.is_finite() && v > 0.0 { v } else { 0.0 }
}

/// Rounds a non-negative rate for the v2 integer fields; NaN and negatives become 0.
fn rate_to_u64(v: f64) -> u64 {
    if v.is_finite() && v > 0.0 {
        // `as` saturates at u64::MAX, which is what an absurd sum should become.
        v.round() as u64
    } else {
        0
    }
}
