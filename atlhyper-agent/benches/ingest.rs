//! Cost of the agent's hot paths: one snapshot through the receiver router (parse, validate,
//! table update), and one cluster snapshot of 1000 nodes encoded for the master.

use std::sync::Arc;

use atlhyper_agent::{NodeTable, NodeTableConfig, ReceiverState, execute, receiver_router};
use atlhyper_model::{Command, MetricsDataPoint};
use axum::body::Body;
use axum::http::Request;
use criterion::{Criterion, criterion_group, criterion_main};
use tower::ServiceExt;

fn body(node: usize, round: usize) -> String {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/load/snapshot.json"))
        .expect("run load/make_snapshot.py first");
    // From a day ago: recent, so the receiver keeps the node's bytes (a timestamp older than
    // 30 days is replaced by the receive time and the snapshot re-encoded).
    let day_ago = chrono::Utc::now().timestamp() - 86_400;
    let ts = chrono::DateTime::from_timestamp(day_ago + 5 * round as i64, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    text.replace("load-node-1", &format!("bench-node-{node}"))
        .replace("2024-01-20T10:30:00Z", &ts)
}

fn receiver(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let table = Arc::new(NodeTable::new(NodeTableConfig::default()));
    let app = receiver_router(ReceiverState::new(Arc::clone(&table)));
    // 100 nodes x 50 rounds of distinct bodies, so each request replaces a latest snapshot.
    let bodies: Vec<String> = (0..50)
        .flat_map(|r| (0..100).map(move |n| body(n, r)))
        .collect();
    let mut i = 0usize;
    c.bench_function("receiver: POST /metrics/node (5 KB snapshot)", |b| {
        b.iter(|| {
            let req = Request::post("/metrics/node")
                .body(Body::from(bodies[i % bodies.len()].clone()))
                .unwrap();
            i += 1;
            let resp = rt.block_on(app.clone().oneshot(req)).unwrap();
            assert!(resp.status().is_success());
        })
    });

    let series = Command {
        id: "c".into(),
        action: "node_series".into(),
        target_name: "bench-node-7".into(),
        ..Default::default()
    };
    c.bench_function("command: node_series over a 50-point ring", |b| {
        b.iter(|| execute(&table, "c1", &series))
    });

    // What the 14 extension figures cost a series answer: the same 720 points (a full default
    // ring) encoded with every figure and with v2's nine, measured in one run.
    let start = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    let full: Vec<MetricsDataPoint> = (0..720)
        .map(|i| {
            let v = f64::from(i) * 0.37;
            MetricsDataPoint {
                timestamp: start + chrono::Duration::seconds(5 * i64::from(i)),
                node_name: "bench-node-7".into(),
                cpu_usage: 10.0 + v,
                memory_usage: 40.0 + v / 3.0,
                disk_usage: 24.6,
                disk_io_read: 1024.0 * v,
                disk_io_write: 4096.5 + v,
                network_rx: 123_456.7 + v,
                network_tx: 65_432.1,
                cpu_temp: 48.5,
                load_1: v / 50.0,
                ..Default::default()
            }
            .with_extensions(std::array::from_fn(|k| Some(k as f64 * 1.25 + v)))
        })
        .collect();
    let nine: Vec<MetricsDataPoint> = full
        .iter()
        .map(MetricsDataPoint::without_extensions)
        .collect();
    let bytes = |points: &[MetricsDataPoint]| serde_json::to_vec(points).unwrap().len() / 720;
    eprintln!(
        "JSON bytes per point: {} with every figure, {} with v2's nine; MetricsDataPoint in \
         memory: {} bytes",
        bytes(&full),
        bytes(&nine),
        std::mem::size_of::<MetricsDataPoint>()
    );
    c.bench_function("series JSON: 720 points, 23 figures", |b| {
        b.iter(|| serde_json::to_vec(std::hint::black_box(&full)).unwrap())
    });
    c.bench_function("series JSON: 720 points, v2's 9 figures", |b| {
        b.iter(|| serde_json::to_vec(std::hint::black_box(&nine)).unwrap())
    });
}

criterion_group!(benches, receiver);
criterion_main!(benches);
