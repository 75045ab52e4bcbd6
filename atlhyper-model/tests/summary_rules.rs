//! The pure functions: history point, cluster summary, health rule.

use atlhyper_model::*;
use proptest::prelude::*;

fn node(name: &str, cpu: f64, mem: f64, disk: f64, temp: f64) -> NodeMetricsSnapshot {
    NodeMetricsSnapshot {
        node_name: name.into(),
        cpu: CpuMetrics {
            usage_percent: cpu,
            ..Default::default()
        },
        memory: MemoryMetrics {
            total: 100,
            used: mem as u64,
            usage_percent: mem,
            ..Default::default()
        },
        disks: vec![
            DiskMetrics {
                device: "sda1".into(),
                mount_point: "/boot".into(),
                usage_percent: 5.0,
                total: 10,
                used: 1,
                ..Default::default()
            },
            DiskMetrics {
                device: "sda2".into(),
                mount_point: "/".into(),
                usage_percent: disk,
                total: 100,
                used: disk as u64,
                ..Default::default()
            },
            // A bind mount of the same device must not be counted twice.
            DiskMetrics {
                device: "sda2".into(),
                mount_point: "/var/lib/kubelet".into(),
                usage_percent: disk,
                total: 100,
                used: disk as u64,
                ..Default::default()
            },
        ],
        temperature: TemperatureMetrics {
            cpu_temp: temp,
            ..Default::default()
        },
        totals: Some(NodeTotals {
            network_rx_rate: 1000.0,
            network_tx_rate: 10.0,
            disk_read_rate: 7.0,
            ..Default::default()
        }),
        networks: vec![NetworkMetrics {
            interface: "eth0".into(),
            rx_rate: 1.0,
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn data_point_uses_totals_and_root_disk() {
    let p = MetricsDataPoint::from_snapshot(&node("a", 10.0, 20.0, 30.0, 40.0));
    assert_eq!(
        (p.cpu_usage, p.memory_usage, p.disk_usage, p.cpu_temp),
        (10.0, 20.0, 30.0, 40.0)
    );
    assert_eq!(
        (p.network_rx, p.network_tx, p.disk_io_read),
        (1000.0, 10.0, 7.0)
    );
}

#[test]
fn summary_counts_offline_and_averages_online_only() {
    let a = node("a", 10.0, 20.0, 30.0, 50.0);
    let b = node("b", 30.0, 40.0, 50.0, 0.0);
    let c = node("c", 99.0, 99.0, 99.0, 99.0);
    let s = ClusterMetricsSummary::from_nodes([(&a, true), (&b, true), (&c, false)]);
    assert_eq!((s.total_nodes, s.online_nodes, s.offline_nodes), (3, 2, 1));
    assert_eq!(s.avg_cpu_usage, 20.0);
    assert_eq!(s.max_cpu_usage, 30.0);
    assert_eq!(s.avg_memory_usage, 30.0);
    assert_eq!(s.avg_disk_usage, 40.0);
    // Only node a has a sensor: b's 0 is "no reading", not a cold CPU.
    assert_eq!((s.avg_cpu_temp, s.max_cpu_temp), (50.0, 50.0));
    assert_eq!(s.total_memory, 200);
    assert_eq!(s.total_disk, 2 * 110);
    assert_eq!(s.used_disk, 1 + 30 + 1 + 50);
    assert_eq!(s.total_network_rx, 2000);
    let empty = ClusterMetricsSummary::from_nodes(std::iter::empty());
    assert_eq!(empty, ClusterMetricsSummary::default());
}

#[test]
fn health_rule() {
    assert!(node("a", 90.0, 90.0, 90.0, 0.0).is_healthy());
    assert!(!node("a", 90.1, 10.0, 10.0, 0.0).is_healthy());
    assert!(!node("a", 10.0, 95.0, 10.0, 0.0).is_healthy());
    assert!(!node("a", 10.0, 10.0, 91.0, 0.0).is_healthy());
}

proptest! {
    #[test]
    fn summary_is_finite_and_bounded(cpus in proptest::collection::vec((0.0f64..=100.0, any::<bool>()), 0..20)) {
        let nodes: Vec<_> = cpus.iter().enumerate().map(|(i, (c, _))| node(&i.to_string(), *c, *c, *c, *c)).collect();
        let s = ClusterMetricsSummary::from_nodes(nodes.iter().zip(cpus.iter().map(|(_, on)| *on)));
        prop_assert_eq!(s.online_nodes + s.offline_nodes, s.total_nodes);
        prop_assert!(s.avg_cpu_usage.is_finite() && (0.0..=100.0).contains(&s.avg_cpu_usage));
        prop_assert!(s.avg_cpu_usage <= s.max_cpu_usage + 1e-9);
    }
}

#[test]
fn figures_round_trip_in_field_order() {
    let p = MetricsDataPoint::from_snapshot(&node("a", 10.0, 20.0, 30.0, 40.0));
    let f = p.figures();
    assert_eq!(f[0], p.cpu_usage);
    assert_eq!(f[7], p.cpu_temp);
    assert_eq!(f[8], p.load_1);
    let e = p.extensions();
    assert_eq!(e[0], p.cpu_user);
    assert_eq!(e[13], p.network_tx_packets);
    assert_eq!(
        MetricsDataPoint::from_figures(p.timestamp, p.node_name.clone(), f).with_extensions(e),
        p
    );
    assert_eq!(
        MetricsDataPoint::from_figures(p.timestamp, p.node_name.clone(), f),
        p.without_extensions()
    );
}
