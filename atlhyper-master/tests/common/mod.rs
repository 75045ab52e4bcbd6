//! Shared by the master's tests and load generators: realistic node snapshots, gzip, and a
//! request helper for oneshot router tests.
#![allow(dead_code)]

use std::io::Write as _;

use atlhyper_model::{
    ClusterSnapshot, CpuMetrics, DiskMetrics, MemoryMetrics, NetworkMetrics, NodeMetricsSnapshot,
    NodeTotals, ProcessMetrics, SensorReading, TemperatureMetrics,
};
use chrono::{DateTime, Utc};

/// A node snapshot shaped like a real one: 4-core CPU, 2 disks, 2 interfaces, 3 sensors,
/// 10 processes. `load` (0..1) moves the figures so tests can tell snapshots apart.
pub fn node(name: &str, at: DateTime<Utc>, load: f64) -> NodeMetricsSnapshot {
    let gib = 1u64 << 30;
    let cpu = (load * 100.0).clamp(0.0, 100.0);
    NodeMetricsSnapshot {
        node_name: name.to_owned(),
        timestamp: at,
        hostname: name.to_owned(),
        os: "Debian GNU/Linux 12 (bookworm)".to_owned(),
        kernel: "6.1.0-18-amd64".to_owned(),
        uptime: 86_400,
        cpu: CpuMetrics {
            usage_percent: cpu,
            user_percent: cpu * 0.7,
            system_percent: cpu * 0.3,
            idle_percent: 100.0 - cpu,
            iowait_percent: 0.5,
            per_core: vec![cpu; 4],
            load_1: load * 4.0,
            load_5: load * 3.0,
            load_15: load * 2.0,
            model: "Intel(R) Xeon(R) CPU @ 2.20GHz".to_owned(),
            cores: 4,
            threads: 4,
            frequency: 2200.0,
            steal_percent: Some(0.1),
            ..Default::default()
        },
        memory: MemoryMetrics {
            total: 16 * gib,
            used: (16.0 * gib as f64 * load) as u64,
            available: (16.0 * gib as f64 * (1.0 - load)) as u64,
            free: 2 * gib,
            usage_percent: load * 100.0,
            cached: 4 * gib,
            buffers: gib / 4,
            swap_total: 0,
            swap_used: 0,
            swap_free: 0,
            swap_percent: 0.0,
        },
        disks: ["/", "/var/lib/kubelet"]
            .iter()
            .enumerate()
            .map(|(i, mount)| DiskMetrics {
                device: format!("sda{}", i + 1),
                mount_point: (*mount).to_owned(),
                fs_type: "ext4".to_owned(),
                total: 100 * gib,
                used: 40 * gib,
                available: 60 * gib,
                usage_percent: 40.0,
                read_bytes: 123_456_789,
                write_bytes: 987_654_321,
                read_rate: 1000.0 * load,
                write_rate: 2000.0 * load,
                read_iops: 10.0,
                write_iops: 20.0,
                io_util: 5.0,
                inodes_total: Some(6_553_600),
                inodes_used: Some(100_000),
            })
            .collect(),
        networks: ["eth0", "eth1"]
            .iter()
            .map(|iface| NetworkMetrics {
                interface: (*iface).to_owned(),
                ip_address: "10.0.0.10".to_owned(),
                mac_address: "02:42:ac:11:00:02".to_owned(),
                status: "up".to_owned(),
                speed: 10_000,
                mtu: 1500,
                rx_bytes: 1 << 40,
                tx_bytes: 1 << 39,
                rx_packets: 1 << 30,
                tx_packets: 1 << 29,
                rx_rate: 125_000.0 * load,
                tx_rate: 62_500.0 * load,
                ..Default::default()
            })
            .collect(),
        temperature: TemperatureMetrics {
            cpu_temp: 40.0 + 30.0 * load,
            cpu_temp_max: 100.0,
            sensors: (0..3)
                .map(|i| SensorReading {
                    name: "coretemp".to_owned(),
                    label: format!("Core {i}"),
                    current: 40.0 + f64::from(i),
                    max: 90.0,
                    critical: 100.0,
                })
                .collect(),
        },
        processes: (0..10u32)
            .map(|i| ProcessMetrics {
                pid: 1000 + i,
                name: format!("proc-{i}"),
                cmdline: format!("/usr/bin/proc-{i} --flag"),
                user: "root".to_owned(),
                status: "S".to_owned(),
                cpu_percent: f64::from(i),
                mem_percent: 1.0,
                mem_rss: 100 << 20,
                threads: 4,
                start_time: 1_700_000_000,
            })
            .collect(),
        psi: None,
        totals: Some(NodeTotals {
            disk_read_rate: 1000.0 * load,
            disk_write_rate: 2000.0 * load,
            disk_read_iops: 10.0,
            disk_write_iops: 20.0,
            network_rx_rate: 250_000.0 * load,
            network_tx_rate: 125_000.0 * load,
        }),
        collectors: Vec::new(),
        clock_skew_seconds: None,
    }
}

/// A cluster snapshot of `nodes` nodes named `node-000`...
pub fn cluster(cluster_id: &str, nodes: usize, seq: u64, at: DateTime<Utc>) -> ClusterSnapshot {
    let mut s = ClusterSnapshot {
        cluster_id: cluster_id.to_owned(),
        timestamp: at,
        seq,
        agent_version: "test".to_owned(),
        ..Default::default()
    };
    for i in 0..nodes {
        let name = format!("node-{i:03}");
        let load = ((i * 7 + seq as usize) % 100) as f64 / 100.0;
        s.node_metrics.insert(name.clone(), node(&name, at, load));
    }
    s
}

/// Gzip of some bytes.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("gzip to memory");
    e.finish().expect("gzip to memory")
}

/// Percentile (0..=100) of sorted microsecond samples.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}
