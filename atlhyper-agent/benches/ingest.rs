//! Cost of the agent's hot paths: one snapshot through the receiver router (parse, validate,
//! table update), and one cluster snapshot of 1000 nodes encoded for the master.

use std::sync::Arc;

use atlhyper_agent::{NodeTable, NodeTableConfig, ReceiverState, execute, receiver_router};
use atlhyper_model::Command;
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
}

criterion_group!(benches, receiver);
criterion_main!(benches);
