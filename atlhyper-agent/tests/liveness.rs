//! Offline after 3 silent intervals and drop after the TTL, with paused tokio time.

use std::sync::Arc;
use std::time::Duration;

use atlhyper_agent::{
    NodeTable, NodeTableConfig, ReceiverState, execute, receiver_router, spawn_sweeper,
};
use atlhyper_model::{Command, NodeState};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use tokio::time::{Instant, advance};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

async fn post(app: &axum::Router, node: &str, ts: &str) {
    let body = atlhyper_testkit::v2_node_json(node, ts, 5.0).to_string();
    let resp = app
        .clone()
        .oneshot(
            Request::post("/metrics/node")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

fn state_of(table: &NodeTable, node: &str) -> Option<NodeState> {
    table.status(node, Instant::now()).map(|s| s.state)
}

#[tokio::test(start_paused = true)]
async fn silent_node_goes_offline_after_three_intervals_and_is_dropped_after_the_ttl() {
    let table = Arc::new(NodeTable::new(NodeTableConfig {
        node_interval: Duration::from_secs(5),
        offline_intervals: 3,
        ttl: Duration::from_secs(600),
        ring_capacity: 720,
        ..Default::default()
    }));
    let app = receiver_router(ReceiverState::new(Arc::clone(&table)));
    let cancel = CancellationToken::new();
    let sweeper = spawn_sweeper(Arc::clone(&table), Duration::from_secs(5), cancel.clone());

    post(&app, "quiet", "2024-01-20T10:00:00Z").await;
    post(&app, "chatty", "2024-01-20T10:00:00Z").await;
    assert_eq!(state_of(&table, "quiet"), Some(NodeState::Online));

    // "chatty" reports every 5 s, "quiet" stops.
    for i in 1..=3 {
        advance(Duration::from_secs(5)).await;
        post(&app, "chatty", &format!("2024-01-20T10:00:0{}Z", i * 2)).await;
    }
    // 15 s of silence: exactly three intervals, still online.
    assert_eq!(state_of(&table, "quiet"), Some(NodeState::Online));
    advance(Duration::from_millis(1)).await;
    assert_eq!(state_of(&table, "quiet"), Some(NodeState::Offline));
    assert_eq!(state_of(&table, "chatty"), Some(NodeState::Online));

    let counts = table.counts(Instant::now());
    assert_eq!((counts.online, counts.offline), (1, 1));
    let list = execute(
        &table,
        "c1",
        &Command {
            action: "list_nodes".into(),
            ..Default::default()
        },
    );
    let list: serde_json::Value = serde_json::from_str(&list.output).unwrap();
    assert_eq!(list[1]["node_name"], "quiet");
    assert_eq!(list[1]["state"], "offline");

    // It reports again: back online at once.
    post(&app, "quiet", "2024-01-20T10:00:20Z").await;
    assert_eq!(state_of(&table, "quiet"), Some(NodeState::Online));

    // Silent past the TTL: the sweeper drops it (and nothing is left to sweep by hand).
    advance(Duration::from_secs(600)).await;
    advance(Duration::from_secs(6)).await;
    tokio::task::yield_now().await;
    assert_eq!(state_of(&table, "quiet"), None);
    assert!(table.latest("quiet", Instant::now()).is_none());
    assert!(
        table.sweep(Instant::now()).is_empty(),
        "the sweeper should already have dropped both nodes"
    );
    assert_eq!(table.counts(Instant::now()).total, 0);

    cancel.cancel();
    sweeper.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn ttl_drop_forgets_the_ring_too() {
    let table = Arc::new(NodeTable::new(NodeTableConfig {
        ttl: Duration::from_secs(60),
        ..Default::default()
    }));
    let app = receiver_router(ReceiverState::new(Arc::clone(&table)));
    post(&app, "n1", "2024-01-20T10:00:00Z").await;
    post(&app, "n1", "2024-01-20T10:00:05Z").await;
    assert_eq!(table.counts(Instant::now()).ring_points, 2);
    advance(Duration::from_secs(61)).await;
    assert_eq!(table.sweep(Instant::now()), ["n1"]);
    post(&app, "n1", "2024-01-20T10:01:05Z").await;
    assert_eq!(
        table
            .series("n1", None, None, Instant::now())
            .unwrap()
            .len(),
        1
    );
}
