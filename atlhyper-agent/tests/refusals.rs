//! The receiver at the first hop, driven with `oneshot`: a node breaking the bounds is refused
//! alone with the reason (and counted), command lines are cut, a clock far off is replaced by
//! the receive time with the skew kept, "latest" follows arrival, and new nodes beyond the cap
//! get 429 with Retry-After (paused time for the TTL).

mod common;

use std::sync::Arc;
use std::time::Duration;

use atlhyper_agent::{NodeTable, NodeTableConfig, ReceiverState, receiver_router};
use atlhyper_model::{ClockPolicy, NodeMetricsSnapshot};
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use chrono::{DateTime, Utc};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio::time::Instant;
use tower::ServiceExt;

fn table(config: NodeTableConfig) -> Arc<NodeTable> {
    Arc::new(NodeTable::new(config))
}

async fn post(app: &Router, body: String) -> (StatusCode, HeaderMap, Value) {
    let resp = app
        .clone()
        .oneshot(
            Request::post("/metrics/node")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, serde_json::from_slice(&bytes).unwrap())
}

async fn metrics(app: &Router) -> String {
    let resp = app
        .clone()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn latest(t: &NodeTable, node: &str) -> NodeMetricsSnapshot {
    serde_json::from_str(t.latest(node, Instant::now()).unwrap().get()).unwrap()
}

#[tokio::test]
async fn a_node_over_the_bounds_is_refused_alone_with_the_reason() {
    let t = table(NodeTableConfig::default());
    let app = receiver_router(ReceiverState::new(Arc::clone(&t)));
    // 100,000 empty disks: 400 KB of JSON, under the body limit.
    let disks = vec![json!({}); 100_000];
    let body = json!({"node_name": "x", "timestamp": common::recent(1), "disks": disks});
    let (status, _, v) = post(&app, body.to_string()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        v["error"],
        "list_too_long: disks has 100000 entries; at most 1024 are accepted"
    );
    // A string over its cap.
    let mut long = atlhyper_testkit::v2_node_json("y", &common::recent(1), 1.0);
    long["hostname"] = Value::String("h".repeat(5000));
    let (status, _, v) = post(&app, long.to_string()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("string_too_long: hostname is 5000 bytes"),
        "{v}"
    );
    let (status, _, v) = post(
        &app,
        atlhyper_testkit::v2_node_json("Bad_Name", &common::recent(1), 1.0).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        v["error"].as_str().unwrap().starts_with("invalid_name: "),
        "{v}"
    );
    // None of them is stored; a good node in between is.
    let (status, _, _) = post(
        &app,
        atlhyper_testkit::v2_node_json("good", &common::recent(1), 1.0).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<String> = t
        .list(Instant::now())
        .into_iter()
        .map(|l| l.node_name)
        .collect();
    assert_eq!(names, ["good"]);
    let text = metrics(&app).await;
    for line in [
        "atlhyper_agent_nodes_rejected_total{reason=\"invalid_name\"} 1",
        "atlhyper_agent_nodes_rejected_total{reason=\"list_too_long\"} 1",
        "atlhyper_agent_nodes_rejected_total{reason=\"string_too_long\"} 1",
        "atlhyper_agent_nodes_rejected_total{reason=\"too_many_nodes\"} 0",
        "atlhyper_agent_snapshots_rejected_total{code=\"413\"} 2",
        "atlhyper_agent_snapshots_rejected_total{code=\"400\"} 1",
        "atlhyper_agent_snapshots_rejected_total{code=\"429\"} 0",
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
}

#[tokio::test]
async fn long_command_lines_are_cut_and_a_good_snapshot_keeps_its_bytes() {
    let t = table(NodeTableConfig::default());
    let app = receiver_router(ReceiverState::new(Arc::clone(&t)));
    let mut body = atlhyper_testkit::v2_node_json("n1", &common::recent(1), 1.0);
    body["processes"] = json!([{"pid": 7, "name": "java", "cmdline": "x".repeat(10_000)}]);
    let (status, _, _) = post(&app, body.to_string()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(latest(&t, "n1").processes[0].cmdline.len(), 4096);

    // Nothing to change: the node's own bytes are what the table holds.
    let good = atlhyper_testkit::v2_node_json("n2", &common::recent(1), 1.0).to_string();
    post(&app, good.clone()).await;
    assert_eq!(t.latest("n2", Instant::now()).unwrap().get(), good);
}

#[tokio::test]
async fn a_clock_far_off_is_replaced_by_the_receive_time_and_the_skew_kept() {
    let t = table(NodeTableConfig::default());
    let app = receiver_router(ReceiverState::new(Arc::clone(&t)));
    let year_2300 = DateTime::parse_from_rfc3339("2300-01-01T00:00:00Z")
        .unwrap()
        .to_utc();
    let before = Utc::now();
    let (status, _, _) = post(&app, atlhyper_testkit::node_json("future", year_2300, 1.0)).await;
    let after = Utc::now();
    assert_eq!(status, StatusCode::OK);
    let l = latest(&t, "future");
    assert!(
        l.timestamp >= before && l.timestamp <= after,
        "{}",
        l.timestamp
    );
    let skew = l.clock_skew_seconds.expect("the skew is kept");
    let expected = (year_2300 - before).num_seconds() as f64;
    assert!((skew - expected).abs() < 5.0, "{skew} vs {expected}");

    // Older than the 30-day retention: the same, with a negative skew.
    let old = Utc::now() - chrono::Duration::days(400);
    post(&app, atlhyper_testkit::node_json("past", old, 1.0)).await;
    let l = latest(&t, "past");
    assert!(l.timestamp >= before);
    assert!(l.clock_skew_seconds.unwrap() < -399.0 * 86400.0);

    // Within bounds nothing changes, and a skew the node claims itself is not kept.
    let mut claims = atlhyper_testkit::v2_node_json("claims", &common::recent(1), 1.0);
    claims["clock_skew_seconds"] = json!(12345.0);
    post(&app, claims.to_string()).await;
    assert_eq!(latest(&t, "claims").clock_skew_seconds, None);
}

#[tokio::test]
async fn the_clock_bound_is_configurable() {
    let t = table(NodeTableConfig::default());
    let policy = ClockPolicy {
        max_ahead: Duration::from_secs(3600),
        ..ClockPolicy::default()
    };
    let app = receiver_router(ReceiverState::new(Arc::clone(&t)).with_clock_policy(policy));
    let ahead = Utc::now() + chrono::Duration::minutes(10);
    post(&app, atlhyper_testkit::node_json("n1", ahead, 1.0)).await;
    let l = latest(&t, "n1");
    assert_eq!(l.clock_skew_seconds, None, "10 min ahead is within 1 h");
    assert_eq!(
        l.timestamp.timestamp_millis(),
        ahead.timestamp_millis(),
        "kept as sent"
    );
}

#[tokio::test]
async fn latest_follows_arrival_after_a_snapshot_a_year_ahead() {
    let t = table(NodeTableConfig::default());
    let app = receiver_router(ReceiverState::new(Arc::clone(&t)));
    let year_ahead = Utc::now() + chrono::Duration::days(365);
    post(&app, atlhyper_testkit::node_json("n1", year_ahead, 99.0)).await;
    // The clock is fixed; the next snapshot is taken an interval later.
    let next = Utc::now() + chrono::Duration::seconds(5);
    post(&app, atlhyper_testkit::node_json("n1", next, 7.0)).await;
    let l = latest(&t, "n1");
    assert_eq!(l.cpu.usage_percent, 7.0);
    assert_eq!(l.clock_skew_seconds, None);
}

#[tokio::test(start_paused = true)]
async fn new_nodes_beyond_the_cap_get_429_until_a_silent_one_expires() {
    let t = table(NodeTableConfig {
        max_nodes: 2,
        ttl: Duration::from_secs(600),
        ..NodeTableConfig::default()
    });
    let app = receiver_router(ReceiverState::new(Arc::clone(&t)));
    let node =
        |name: &str| atlhyper_testkit::v2_node_json(name, &common::recent(1), 1.0).to_string();
    assert_eq!(post(&app, node("a")).await.0, StatusCode::OK);
    assert_eq!(post(&app, node("b")).await.0, StatusCode::OK);
    let (status, headers, v) = post(&app, node("c")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers[header::RETRY_AFTER], "600");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("too_many_nodes: the agent already holds 2 nodes"),
        "{v}"
    );
    // Known nodes keep reporting; "a" falls silent.
    tokio::time::advance(Duration::from_secs(300)).await;
    assert_eq!(post(&app, node("b")).await.0, StatusCode::OK);
    let (status, headers, _) = post(&app, node("c")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers[header::RETRY_AFTER], "300");
    // "a" expires: "c" takes its place.
    tokio::time::advance(Duration::from_secs(301)).await;
    assert_eq!(post(&app, node("c")).await.0, StatusCode::OK);
    let text = metrics(&app).await;
    for line in [
        "atlhyper_agent_nodes_rejected_total{reason=\"too_many_nodes\"} 2",
        "atlhyper_agent_snapshots_rejected_total{code=\"429\"} 2",
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
}
