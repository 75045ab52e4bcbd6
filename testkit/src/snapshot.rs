//! Node and cluster snapshots for tests, benchmarks and examples: typed, and as the JSON an
//! AtlHyper v2 collector sends.

use atlhyper_model::{
    ClusterSnapshot, CpuMetrics, DiskMetrics, MemoryMetrics, NetworkMetrics, NodeMetricsSnapshot,
    NodeTotals, ProcessMetrics, SensorReading, TemperatureMetrics,
};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

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
            ..Default::default()
        }),
        tcp: None,
        system: None,
        vmstat: None,
        softnet: None,
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

/// A snapshot exactly as an AtlHyper v2 collector writes it: v2 fields only, Go nulls, integer
/// numbers where Go wrote whole floats, a local-offset timestamp.
pub fn v2_node_json(node: &str, ts: &str, cpu: f64) -> Value {
    json!({
      "node_name": node,
      "timestamp": ts,
      "hostname": node,
      "os": "Ubuntu 22.04.3 LTS",
      "kernel": "5.15.0-1044-raspi",
      "uptime": 123456,
      "cpu": {"usage_percent": cpu, "user_percent": 8, "system_percent": 4.5, "idle_percent": 87,
              "iowait_percent": 0.5, "per_core": [10, 15.5, 12, 13], "load_1": 0.3, "load_5": 0.25,
              "load_15": 0.2, "model": "Cortex-A72", "cores": 4, "threads": 4, "frequency": 1500},
      "memory": {"total": 8000000000u64, "used": 2000000000u64, "available": 6000000000u64,
                 "free": 4000000000u64, "usage_percent": 25, "cached": 1500000000u64,
                 "buffers": 100000000, "swap_total": 0, "swap_used": 0, "swap_free": 0,
                 "swap_percent": 0},
      "disks": [{"device": "mmcblk0p2", "mount_point": "/", "fs_type": "ext4",
                 "total": 64000000000u64, "used": 16000000000u64, "available": 45000000000u64,
                 "usage_percent": 26.2, "read_bytes": 1000, "write_bytes": 2000, "read_rate": 10.5,
                 "write_rate": 20.5, "read_iops": 1, "write_iops": 2, "io_util": 0.5}],
      "networks": [{"interface": "eth0", "ip_address": "192.168.1.10",
                    "mac_address": "dc:a6:32:00:00:01", "status": "up", "speed": 1000, "mtu": 1500,
                    "rx_bytes": 1, "tx_bytes": 2, "rx_packets": 3, "tx_packets": 4, "rx_rate": 100,
                    "tx_rate": 200, "rx_errors": 0, "tx_errors": 0, "rx_dropped": 0,
                    "tx_dropped": 0}],
      "temperature": {"cpu_temp": 48.3, "cpu_temp_max": 0, "sensors": null},
      "processes": null
    })
}

/// [`v2_node_json`] at `at` (RFC 3339, UTC, milliseconds) as request body text.
pub fn node_json(node: &str, at: DateTime<Utc>, cpu: f64) -> String {
    let ts = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    v2_node_json(node, &ts, cpu).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_moves_the_figures_within_their_ranges() {
        let at = Utc::now();
        let idle = node("n", at, 0.0);
        let busy = node("n", at, 1.0);
        assert_eq!(idle.cpu.usage_percent, 0.0);
        assert_eq!(busy.cpu.usage_percent, 100.0);
        assert!(busy.memory.used > idle.memory.used);
        assert_eq!(busy.processes.len(), 10);
    }

    #[test]
    fn cluster_nodes_are_named_and_stamped() {
        let at = Utc::now();
        let c = cluster("c1", 12, 7, at);
        assert_eq!(c.cluster_id, "c1");
        assert_eq!(c.seq, 7);
        assert_eq!(c.node_metrics.len(), 12);
        assert_eq!(c.node_metrics["node-011"].timestamp, at);
    }

    #[test]
    fn v2_json_decodes_as_a_snapshot() {
        let at = Utc::now();
        let text = node_json("worker-1", at, 42.5);
        let s: NodeMetricsSnapshot = serde_json::from_str(&text).unwrap();
        assert_eq!(s.node_name, "worker-1");
        assert_eq!(s.cpu.usage_percent, 42.5);
        assert_eq!(s.timestamp.timestamp_millis(), at.timestamp_millis());
        assert!(s.processes.is_empty(), "Go null read as an empty list");
    }
}
