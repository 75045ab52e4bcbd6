//! The figures a rule can look at: their names, what they belong to (a node, a mount, a disk, an
//! interface, a cluster, or a state), and how to read them from a snapshot.
//!
//! A figure a snapshot does not carry (no PSI on an old kernel, no temperature sensor, inodes on
//! btrfs, rates before the second collection) gives no series at all, never a 0: a rule over it
//! neither fires nor resolves on made-up numbers.

use std::fmt;
use std::str::FromStr;

use atlhyper_model::{ClusterMetricsSummary, DiskMetrics, NetworkMetrics, NodeMetricsSnapshot};

/// What a figure is about, and so which labels its series carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// One series per online node (`cluster`, `node`).
    Node,
    /// One series per mount of an online node (`cluster`, `node`, `device`, `mountpoint`).
    Mount,
    /// One series per block device of an online node (`cluster`, `node`, `device`).
    Disk,
    /// One series per interface of an online node (`cluster`, `node`, `device`).
    Interface,
    /// One series per cluster whose agent is alive (`cluster`).
    Cluster,
    /// 1 for each node that is offline while its agent is alive (`cluster`, `node`).
    NodeDown,
    /// 1 for each cluster whose agent is silent past the staleness window (`cluster`).
    AgentDown,
}

macro_rules! figures {
    ($($variant:ident = $name:literal, $subject:ident, $doc:literal;)*) => {
        /// A figure a rule compares (see the table in the README).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Figure {
            $(#[doc = $doc] $variant,)*
        }

        impl Figure {
            /// Every figure, in the README's order.
            pub const ALL: &[Figure] = &[$(Figure::$variant,)*];

            /// The name rules use.
            pub fn name(self) -> &'static str {
                match self { $(Figure::$variant => $name,)* }
            }

            /// What it is about.
            pub fn subject(self) -> Subject {
                match self { $(Figure::$variant => Subject::$subject,)* }
            }

            /// One line saying what it is, with its unit.
            pub fn doc(self) -> &'static str {
                match self { $(Figure::$variant => $doc,)* }
            }
        }
    };
}

figures! {
    CpuUsage = "cpu.usage_percent", Node, "CPU busy percent (100 - idle - iowait)";
    CpuUser = "cpu.user_percent", Node, "CPU user percent";
    CpuSystem = "cpu.system_percent", Node, "CPU system percent";
    CpuIowait = "cpu.iowait_percent", Node, "CPU iowait percent";
    CpuSteal = "cpu.steal_percent", Node, "CPU steal percent (absent when not reported)";
    Load1PerCore = "load.load1_per_core", Node, "1-minute load average per logical CPU";
    Load5PerCore = "load.load5_per_core", Node, "5-minute load average per logical CPU";
    Load15PerCore = "load.load15_per_core", Node, "15-minute load average per logical CPU";
    MemoryUsage = "memory.usage_percent", Node, "memory used percent (total - available)";
    MemoryAvailable = "memory.available_percent", Node, "MemAvailable percent of MemTotal";
    MemoryAvailableBytes = "memory.available_bytes", Node, "MemAvailable, bytes";
    SwapUsage = "memory.swap_percent", Node, "swap used percent (absent without swap)";
    CpuTemperature = "temperature.cpu_celsius", Node, "CPU temperature, Celsius (absent without a sensor)";
    PsiCpuSome = "psi.cpu_some", Node, "PSI cpu some avg10, percent (absent without PSI)";
    PsiMemorySome = "psi.memory_some", Node, "PSI memory some avg10, percent";
    PsiMemoryFull = "psi.memory_full", Node, "PSI memory full avg10, percent";
    PsiIoSome = "psi.io_some", Node, "PSI io some avg10, percent";
    PsiIoFull = "psi.io_full", Node, "PSI io full avg10, percent";
    DiskUsage = "disk.usage_percent", Mount, "filesystem used percent, as df";
    DiskAvailableBytes = "disk.available_bytes", Mount, "filesystem space available, bytes";
    InodesUsage = "disk.inodes_usage_percent", Mount, "inodes used percent (absent without inodes)";
    DiskIoUtil = "disk.io_util", Disk, "device busy percent (iostat %util)";
    DiskReadRate = "disk.read_rate", Disk, "device read rate, bytes/s";
    DiskWriteRate = "disk.write_rate", Disk, "device write rate, bytes/s";
    DiskReadIops = "disk.read_iops", Disk, "device reads/s";
    DiskWriteIops = "disk.write_iops", Disk, "device writes/s";
    NetworkErrorsRate = "network.errors_rate", Interface, "receive + send errors/s";
    NetworkDropsRate = "network.drops_rate", Interface, "receive + send drops/s";
    NetworkErrorRatio = "network.error_ratio_percent", Interface, "errors per packet, percent (absent without traffic)";
    NetworkRxRate = "network.rx_rate", Interface, "receive rate, bytes/s";
    NetworkTxRate = "network.tx_rate", Interface, "send rate, bytes/s";
    ClusterAvgCpu = "cluster.avg_cpu_usage", Cluster, "mean CPU busy percent of online nodes";
    ClusterAvgMemory = "cluster.avg_memory_usage", Cluster, "mean memory used percent of online nodes";
    ClusterAvgDisk = "cluster.avg_disk_usage", Cluster, "mean primary-disk used percent of online nodes";
    ClusterMaxCpu = "cluster.max_cpu_usage", Cluster, "highest CPU busy percent of an online node";
    ClusterOnlineNodes = "cluster.online_nodes", Cluster, "nodes online";
    ClusterOfflineNodes = "cluster.offline_nodes", Cluster, "nodes offline";
    ClusterOfflinePercent = "cluster.offline_percent", Cluster, "offline nodes percent of all (absent without nodes)";
    NodeDown = "node.down", NodeDown, "state: the node is offline while its agent is alive";
    AgentDown = "agent.down", AgentDown, "state: the cluster's agent is silent";
}

impl Figure {
    /// A state figure (`node.down`, `agent.down`): holds or not, no comparator needed.
    pub fn is_state(self) -> bool {
        matches!(self.subject(), Subject::NodeDown | Subject::AgentDown)
    }

    /// The value of a node figure, if the snapshot has it.
    pub fn of_node(self, n: &NodeMetricsSnapshot) -> Option<f64> {
        let cpus = || {
            let t = if n.cpu.threads > 0 {
                n.cpu.threads as usize
            } else {
                n.cpu.per_core.len()
            };
            (t > 0).then_some(t as f64)
        };
        let mem = &n.memory;
        let psi = n.psi.as_ref();
        let v = match self {
            Figure::CpuUsage => n.cpu.usage_percent,
            Figure::CpuUser => n.cpu.user_percent,
            Figure::CpuSystem => n.cpu.system_percent,
            Figure::CpuIowait => n.cpu.iowait_percent,
            Figure::CpuSteal => n.cpu.steal_percent?,
            Figure::Load1PerCore => n.cpu.load_1 / cpus()?,
            Figure::Load5PerCore => n.cpu.load_5 / cpus()?,
            Figure::Load15PerCore => n.cpu.load_15 / cpus()?,
            Figure::MemoryUsage if mem.total > 0 => mem.usage_percent,
            Figure::MemoryAvailable if mem.total > 0 => {
                mem.available as f64 / mem.total as f64 * 100.0
            }
            Figure::MemoryAvailableBytes if mem.total > 0 => mem.available as f64,
            Figure::SwapUsage if mem.swap_total > 0 => mem.swap_percent,
            Figure::CpuTemperature if n.temperature.cpu_temp > 0.0 => n.temperature.cpu_temp,
            Figure::PsiCpuSome => psi?.cpu_some,
            Figure::PsiMemorySome => psi?.memory_some,
            Figure::PsiMemoryFull => psi?.memory_full,
            Figure::PsiIoSome => psi?.io_some,
            Figure::PsiIoFull => psi?.io_full,
            _ => return None,
        };
        v.is_finite().then_some(v)
    }

    /// The value of a mount figure for one disk entry, if it has it.
    pub fn of_mount(self, d: &DiskMetrics) -> Option<f64> {
        let v = match self {
            Figure::DiskUsage if d.total > 0 => d.usage_percent,
            Figure::DiskAvailableBytes if d.total > 0 => d.available as f64,
            Figure::InodesUsage => {
                let total = d.inodes_total.filter(|t| *t > 0)?;
                d.inodes_used? as f64 / total as f64 * 100.0
            }
            Figure::DiskIoUtil => d.io_util,
            Figure::DiskReadRate => d.read_rate,
            Figure::DiskWriteRate => d.write_rate,
            Figure::DiskReadIops => d.read_iops,
            Figure::DiskWriteIops => d.write_iops,
            _ => return None,
        };
        v.is_finite().then_some(v)
    }

    /// The value of an interface figure, if the interface has it.
    pub fn of_interface(self, i: &NetworkMetrics) -> Option<f64> {
        let v = match self {
            Figure::NetworkErrorsRate => i.rx_errors_rate? + i.tx_errors_rate?,
            Figure::NetworkDropsRate => i.rx_dropped_rate? + i.tx_dropped_rate?,
            Figure::NetworkErrorRatio => {
                let packets = i.rx_packets_rate? + i.tx_packets_rate?;
                if packets <= 0.0 {
                    return None;
                }
                (i.rx_errors_rate? + i.tx_errors_rate?) / packets * 100.0
            }
            Figure::NetworkRxRate => i.rx_rate,
            Figure::NetworkTxRate => i.tx_rate,
            _ => return None,
        };
        v.is_finite().then_some(v)
    }

    /// The value of a cluster figure.
    pub fn of_cluster(self, s: &ClusterMetricsSummary) -> Option<f64> {
        let v = match self {
            Figure::ClusterAvgCpu => s.avg_cpu_usage,
            Figure::ClusterAvgMemory => s.avg_memory_usage,
            Figure::ClusterAvgDisk => s.avg_disk_usage,
            Figure::ClusterMaxCpu => s.max_cpu_usage,
            Figure::ClusterOnlineNodes => f64::from(s.online_nodes),
            Figure::ClusterOfflineNodes => f64::from(s.offline_nodes),
            Figure::ClusterOfflinePercent if s.total_nodes > 0 => {
                f64::from(s.offline_nodes) / f64::from(s.total_nodes) * 100.0
            }
            _ => return None,
        };
        v.is_finite().then_some(v)
    }

    /// The stored history column that keeps this figure, for the node's primary mount where it
    /// is a mount figure: index into [`atlhyper_model::MetricsDataPoint::figures`].
    pub fn history_column(self) -> Option<usize> {
        match self {
            Figure::CpuUsage => Some(0),
            Figure::MemoryUsage => Some(1),
            Figure::DiskUsage => Some(2),
            Figure::CpuTemperature => Some(7),
            _ => None,
        }
    }
}

impl fmt::Display for Figure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Figure {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Figure::ALL
            .iter()
            .copied()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Figure::ALL.iter().map(|f| f.name()).collect();
                format!("unknown figure {s:?}; known: {}", names.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atlhyper_model::PsiMetrics;

    #[test]
    fn names_round_trip_and_unknown_lists_the_known() {
        for f in Figure::ALL {
            assert_eq!(f.name().parse::<Figure>(), Ok(*f));
        }
        let err = "cpu.nope".parse::<Figure>().unwrap_err();
        assert!(
            err.contains("cpu.nope") && err.contains("cpu.usage_percent"),
            "{err}"
        );
    }

    #[test]
    fn missing_parts_give_no_value_never_zero() {
        let mut n = NodeMetricsSnapshot::default();
        assert_eq!(Figure::PsiMemoryFull.of_node(&n), None);
        assert_eq!(Figure::CpuTemperature.of_node(&n), None);
        assert_eq!(Figure::MemoryAvailable.of_node(&n), None, "no MemTotal");
        assert_eq!(Figure::Load1PerCore.of_node(&n), None, "no CPU count");
        n.psi = Some(PsiMetrics {
            memory_full: 12.5,
            ..PsiMetrics::default()
        });
        n.memory.total = 1000;
        n.memory.available = 50;
        n.cpu.threads = 4;
        n.cpu.load_1 = 6.0;
        assert_eq!(Figure::PsiMemoryFull.of_node(&n), Some(12.5));
        assert_eq!(Figure::MemoryAvailable.of_node(&n), Some(5.0));
        assert_eq!(Figure::Load1PerCore.of_node(&n), Some(1.5));
        let d = DiskMetrics {
            total: 10,
            inodes_total: Some(0),
            inodes_used: Some(0),
            ..DiskMetrics::default()
        };
        assert_eq!(Figure::InodesUsage.of_mount(&d), None, "btrfs reports 0");
        let i = NetworkMetrics::default();
        assert_eq!(Figure::NetworkErrorsRate.of_interface(&i), None);
        let i = NetworkMetrics {
            rx_errors_rate: Some(1.0),
            tx_errors_rate: Some(1.0),
            rx_packets_rate: Some(100.0),
            tx_packets_rate: Some(100.0),
            ..NetworkMetrics::default()
        };
        assert_eq!(Figure::NetworkErrorRatio.of_interface(&i), Some(1.0));
    }
}
