//! Cross-crate benchmarks: the path one node snapshot takes from the collector to the master's
//! dashboard answer.
//!
//! - `collect_fixture_pair`: one collection over the captured fixture pair (atlhyper-collect),
//! - `encode_node_json` / `decode_node_json`: the snapshot as it travels node -> agent,
//! - `cluster_snapshot_gzip_1000`: the agent's gzip body for 1000 nodes,
//! - `summary_1000` / `data_points_1000`: the master's per-snapshot work (atlhyper-model).
//!
//! `cargo bench --bench pipeline -- --warm-up-time 1 --measurement-time 3`

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use atlhyper::collect::{CollectConfig, Collector, HostRoot};
use atlhyper::model::{
    ClusterMetricsSummary, ClusterSnapshot, MetricsDataPoint, NodeMetricsSnapshot,
};
use criterion::{Criterion, criterion_group, criterion_main};

fn fixture(name: &str) -> HostRoot {
    HostRoot::under(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("atlhyper-collect/tests/fixtures/vm")
            .join(name),
    )
}

/// A full snapshot with rates: the collector over the captured pair t0 -> t1.
fn fixture_snapshot() -> NodeMetricsSnapshot {
    let mut c = Collector::new(fixture("t0"), CollectConfig::default());
    c.collect_over(Some(Duration::from_secs(5)));
    c.sampler_mut().set_root(fixture("t1"));
    c.collect_over(Some(Duration::from_secs(5)))
}

fn bench(c: &mut Criterion) {
    c.bench_function("collect_fixture_pair", |b| {
        b.iter(|| black_box(fixture_snapshot()))
    });

    let snapshot = fixture_snapshot();
    let json = serde_json::to_vec(&snapshot).expect("a snapshot serialises");
    c.bench_function("encode_node_json", |b| {
        b.iter(|| serde_json::to_vec(black_box(&snapshot)).map(|v| v.len()))
    });
    c.bench_function("decode_node_json", |b| {
        b.iter(|| serde_json::from_slice::<NodeMetricsSnapshot>(black_box(&json)).map(|s| s.uptime))
    });

    let nodes: BTreeMap<String, NodeMetricsSnapshot> = (0..1000)
        .map(|i| {
            let mut s = snapshot.clone();
            s.node_name = format!("node-{i:04}");
            s.cpu.usage_percent = f64::from(i % 100);
            (s.node_name.clone(), s)
        })
        .collect();
    let cluster = ClusterSnapshot {
        cluster_id: "bench".into(),
        timestamp: snapshot.timestamp,
        node_metrics: nodes,
        seq: 1,
        ..Default::default()
    };
    c.bench_function("cluster_snapshot_gzip_1000", |b| {
        b.iter(|| {
            let body = serde_json::to_vec(black_box(&cluster)).expect("serialises");
            atlhyper_testkit::gzip(&body).len()
        })
    });
    c.bench_function("summary_1000", |b| {
        b.iter(|| {
            ClusterMetricsSummary::from_nodes(
                black_box(&cluster).node_metrics.values().map(|n| (n, true)),
            )
        })
    });
    c.bench_function("data_points_1000", |b| {
        b.iter(|| {
            black_box(&cluster)
                .node_metrics
                .values()
                .map(MetricsDataPoint::from_snapshot)
                .count()
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
