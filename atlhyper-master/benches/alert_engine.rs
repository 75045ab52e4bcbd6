//! One evaluation of 100 rules (the 10 built-in ones and 90 threshold rules over node, mount,
//! disk, interface and cluster figures, some scoped by pattern) over 10,000 nodes (two clusters
//! of 5,000; each node with three mounts and two interfaces; 1 % of nodes hot, so some alerts
//! are running). Target: under 20 ms.

use std::hint::black_box;
use std::sync::Arc;

use atlhyper_master::ClusterView;
use atlhyper_master::alerting::builtin::builtin_rules;
use atlhyper_master::alerting::engine::Engine;
use atlhyper_master::alerting::rules::{Rule, RuleSpec, from_json};
use atlhyper_model::{
    ClusterSnapshot, DiskMetrics, NetworkMetrics, NodeMetricsSnapshot, PsiMetrics,
};
use chrono::{TimeDelta, Utc};
use criterion::{Criterion, criterion_group, criterion_main};

fn node(i: usize) -> NodeMetricsSnapshot {
    let hot = i.is_multiple_of(100);
    let mut n = NodeMetricsSnapshot {
        node_name: format!("worker-{i:05}"),
        timestamp: Utc::now(),
        ..NodeMetricsSnapshot::default()
    };
    n.cpu.usage_percent = if hot { 97.0 } else { 20.0 + (i % 50) as f64 };
    n.cpu.user_percent = 10.0;
    n.cpu.system_percent = 5.0;
    n.cpu.iowait_percent = 1.0;
    n.cpu.threads = 16;
    n.cpu.load_1 = 4.0;
    n.cpu.load_5 = 3.0;
    n.cpu.load_15 = 2.0;
    n.memory.total = 64 << 30;
    n.memory.available = if hot { 2 << 30 } else { 32 << 30 };
    n.memory.usage_percent = 100.0 - n.memory.available as f64 / n.memory.total as f64 * 100.0;
    n.temperature.cpu_temp = 55.0;
    n.psi = Some(PsiMetrics {
        memory_full: if hot { 20.0 } else { 0.1 },
        ..PsiMetrics::default()
    });
    for (d, mount) in ["/", "/var/lib/kubelet", "/data"].iter().enumerate() {
        n.disks.push(DiskMetrics {
            device: format!("nvme0n1p{d}"),
            mount_point: (*mount).to_owned(),
            total: 500 << 30,
            used: 200 << 30,
            available: 300 << 30,
            usage_percent: if hot && d == 2 { 95.0 } else { 40.0 },
            io_util: 12.0,
            inodes_total: Some(1 << 24),
            inodes_used: Some(1 << 20),
            ..DiskMetrics::default()
        });
    }
    for (k, name) in ["eth0", "eth1"].iter().enumerate() {
        n.networks.push(NetworkMetrics {
            interface: (*name).to_owned(),
            rx_rate: 1e6 * (k + 1) as f64,
            tx_rate: 1e6,
            rx_packets_rate: Some(1000.0),
            tx_packets_rate: Some(1000.0),
            rx_errors_rate: Some(if hot { 50.0 } else { 0.0 }),
            tx_errors_rate: Some(0.0),
            rx_dropped_rate: Some(0.0),
            tx_dropped_rate: Some(0.0),
            ..NetworkMetrics::default()
        });
    }
    n
}

fn cluster(id: &str, nodes: std::ops::Range<usize>) -> Arc<ClusterView> {
    let mut s = ClusterSnapshot {
        cluster_id: id.to_owned(),
        timestamp: Utc::now(),
        ..ClusterSnapshot::default()
    };
    for i in nodes {
        let n = node(i);
        s.node_metrics.insert(n.node_name.clone(), n);
    }
    Arc::new(ClusterView::new(s, Utc::now()))
}

fn rules() -> Vec<Arc<Rule>> {
    let figures = [
        ("cpu.usage_percent", ">", 95.0),
        ("cpu.iowait_percent", ">", 30.0),
        ("load.load1_per_core", ">", 2.0),
        ("memory.usage_percent", ">", 95.0),
        ("memory.swap_percent", ">", 50.0),
        ("disk.usage_percent", ">", 85.0),
        ("disk.io_util", ">", 90.0),
        ("network.errors_rate", ">", 10.0),
        ("network.drops_rate", ">", 10.0),
        ("psi.io_full", ">", 20.0),
        ("cluster.avg_cpu_usage", ">", 80.0),
    ];
    let mut specs: Vec<RuleSpec> = builtin_rules();
    for i in 0..90 {
        let (figure, op, threshold) = figures[i % figures.len()];
        let scope = match i % 3 {
            0 if !figure.starts_with("cluster.") => r#","scope":{"nodes":"worker-0.*"}"#,
            1 => r#","scope":{"clusters":"prod-.*"}"#,
            _ => "",
        };
        let json = format!(
            r#"{{"name":"Rule{i}","figure":"{figure}","op":"{op}","threshold":{threshold},"for":"5m",
                "annotations":{{"summary":"{{{{node}}}} {{{{value}}}}"}}{scope}}}"#
        );
        specs.push(from_json(json.as_bytes()).unwrap());
    }
    assert_eq!(specs.len(), 100);
    specs
        .into_iter()
        .map(|s| Arc::new(Rule::compile(s).unwrap()))
        .collect()
}

fn evaluation(c: &mut Criterion) {
    let views = vec![
        cluster("prod-eu", 0..5000),
        cluster("prod-us", 5000..10_000),
    ];
    let mut engine = Engine::new();
    engine.set_rules(rules());
    let mut now = Utc::now();
    // Warm: the alerts of the hot nodes are running, predicted series exist.
    let first = engine.evaluate(now, &views);
    assert!(!first.published.is_empty() || !first.changes.upsert.is_empty());
    c.bench_function("evaluate 100 rules x 10000 nodes", |b| {
        b.iter(|| {
            now += TimeDelta::seconds(15);
            black_box(engine.evaluate(now, black_box(&views)))
        })
    });
    // In the master an agent pushes every 10 s, so nearly every evaluation sees new views: the
    // same evaluation over two sets of equal views built apart, in turn, so nothing the engine
    // keeps between evaluations can lean on a view being the one it saw last time.
    let other = vec![
        cluster("prod-eu", 0..5000),
        cluster("prod-us", 5000..10_000),
    ];
    let mut turn = false;
    c.bench_function(
        "evaluate 100 rules x 10000 nodes, new views every evaluation",
        |b| {
            b.iter(|| {
                now += TimeDelta::seconds(15);
                turn = !turn;
                let views = if turn { &other } else { &views };
                black_box(engine.evaluate(now, black_box(views)))
            })
        },
    );
}

criterion_group!(benches, evaluation);
criterion_main!(benches);
