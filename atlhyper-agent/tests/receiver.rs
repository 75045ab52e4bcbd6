//! The receiver router driven with `oneshot`: every status code, gzip, tokens, limits, and the
//! AtlHyper v2 shape coming back unchanged through the built-in commands.

mod common;

use std::sync::Arc;

use std::sync::atomic::Ordering;

use atlhyper_agent::{
    NodeTable, NodeTableConfig, NodeTokens, ReceiverState, execute, gzip, receiver_router,
};
use atlhyper_model::{Command, MetricsDataPoint, NodeMetricsSnapshot};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

fn table() -> Arc<NodeTable> {
    Arc::new(NodeTable::new(NodeTableConfig::default()))
}

fn app(table: &Arc<NodeTable>) -> Router {
    receiver_router(ReceiverState::new(Arc::clone(table)))
}

fn post(body: impl Into<Body>) -> axum::http::request::Builder {
    let _ = body;
    Request::post("/metrics/node").header(header::CONTENT_TYPE, "application/json")
}

async fn send(app: Router, req: Request<Body>) -> (StatusCode, Value) {
    let resp = app.oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, value)
}

fn json_req(body: &str) -> Request<Body> {
    post(()).body(Body::from(body.to_owned())).unwrap()
}

fn command(action: &str, target: &str, params: Value) -> Command {
    Command {
        id: format!("cmd-{action}"),
        action: action.to_owned(),
        target_name: target.to_owned(),
        params: params.as_object().cloned().unwrap_or_default(),
        ..Default::default()
    }
}

#[tokio::test]
async fn accepts_a_snapshot_with_200_ok() {
    let t = table();
    let body =
        atlhyper_testkit::v2_node_json("worker-1", "2024-01-20T19:30:00+09:00", 12.5).to_string();
    let (status, v) = send(app(&t), json_req(&body)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v, json!({"status": "ok"}));
    assert_eq!(t.counts(tokio::time::Instant::now()).online, 1);
}

#[tokio::test]
async fn accepts_gzip() {
    let t = table();
    let body = atlhyper_testkit::v2_node_json("worker-2", &common::recent(60), 1.0).to_string();
    let req = post(())
        .header(header::CONTENT_ENCODING, "gzip")
        .body(Body::from(gzip(body.as_bytes(), 6)))
        .unwrap();
    let (status, _) = send(app(&t), req).await;
    assert_eq!(status, StatusCode::OK);
    let raw = t.latest("worker-2", tokio::time::Instant::now()).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(raw.get()).unwrap(),
        serde_json::from_str::<Value>(&body).unwrap()
    );
}

#[tokio::test]
async fn bad_json_is_400_with_a_reason() {
    let t = table();
    for body in [
        "{not json",
        "",
        "[1,2,3]",
        r#"{"node_name": 5}"#,
        r#"{"cpu": "high"}"#,
    ] {
        let (status, v) = send(app(&t), json_req(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body:?}");
        let reason = v["error"].as_str().unwrap();
        assert!(
            reason.contains("JSON") || reason.contains("snapshot") || reason.contains("empty"),
            "{body:?}: {reason}"
        );
    }
    assert_eq!(t.counts(tokio::time::Instant::now()).total, 0);
}

#[tokio::test]
async fn empty_node_name_is_400() {
    let t = table();
    for body in [
        r#"{"node_name": "", "timestamp": "2024-01-20T10:30:00Z"}"#,
        r#"{"node_name": null}"#,
        r#"{"timestamp": "2024-01-20T10:30:00Z"}"#,
    ] {
        let (status, v) = send(app(&t), json_req(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(v, json!({"error": "invalid_name: node_name is empty"}));
    }
}

#[tokio::test]
async fn non_dns_1123_node_names_are_400() {
    let t = table();
    for name in [
        "Worker_1",
        "-x",
        "a..b",
        "UPPER",
        "with space",
        &"a".repeat(254),
    ] {
        let body = json!({"node_name": name, "timestamp": "2024-01-20T10:30:00Z"}).to_string();
        let (status, v) = send(app(&t), json_req(&body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}");
        assert!(v["error"].as_str().unwrap().contains("DNS-1123"), "{v}");
    }
    assert_eq!(t.counts(tokio::time::Instant::now()).total, 0);
}

#[tokio::test]
async fn broken_gzip_is_400() {
    let t = table();
    let req = post(())
        .header(header::CONTENT_ENCODING, "gzip")
        .body(Body::from("plainly not gzip"))
        .unwrap();
    let (status, v) = send(app(&t), req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("gzip"));
}

#[tokio::test]
async fn node_token_gives_401_when_missing_or_wrong() {
    let t = table();
    let app = receiver_router(ReceiverState::new(Arc::clone(&t)).with_node_token(Some("s3cret")));
    let body = json!({"node_name": "n1", "timestamp": "2024-01-20T10:30:00Z"}).to_string();
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("Basic s3cret"),
        Some("Bearer s3cre"),
    ] {
        let mut b = post(());
        if let Some(a) = auth {
            b = b.header(header::AUTHORIZATION, a);
        }
        let resp = app
            .clone()
            .oneshot(b.body(Body::from(body.clone())).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(resp.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }
    let req = post(())
        .header(header::AUTHORIZATION, "Bearer s3cret")
        .body(Body::from(body))
        .unwrap();
    let (status, _) = send(app, req).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_per_node_token_pushes_only_its_node_and_is_refused_with_403_otherwise() {
    let t = table();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node-tokens");
    std::fs::write(
        &path,
        "# NAME TOKEN [NODE]\nfleet aaaaaaaaaaaaaaaa\nw1 bbbbbbbbbbbbbbbb n1\n",
    )
    .unwrap();
    let tokens = NodeTokens::with_file(None, path).unwrap();
    let state = ReceiverState::new(Arc::clone(&t)).with_node_tokens(tokens);
    let stats = Arc::clone(&state.stats);
    let app = receiver_router(state);
    let push = |token: &str, node: &str| {
        let body = json!({"node_name": node, "timestamp": "2024-01-20T10:30:00Z"}).to_string();
        post(())
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::from(body))
            .unwrap()
    };
    let (status, _) = send(app.clone(), push("bbbbbbbbbbbbbbbb", "n1")).await;
    assert_eq!(status, StatusCode::OK, "its own node");
    let (status, v) = send(app.clone(), push("bbbbbbbbbbbbbbbb", "n2")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    let why = v["error"].as_str().unwrap();
    assert!(why.contains("\"n1\"") && why.contains("\"n2\""), "{why}");
    let now = tokio::time::Instant::now();
    assert!(
        t.latest("n2", now).is_none(),
        "the other node's snapshot was stored"
    );
    let (status, _) = send(app.clone(), push("aaaaaaaaaaaaaaaa", "n2")).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a token without a node pushes any node"
    );
    let (status, _) = send(app.clone(), push("cccccccccccccccc", "n1")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(stats.rejected_wrong_node.load(Ordering::Relaxed), 1);
    let req = Request::get("/metrics").body(Body::empty()).unwrap();
    let (_, text) = send(app, req).await;
    let text = text.as_str().unwrap();
    assert!(
        text.contains("atlhyper_agent_snapshots_rejected_total{code=\"403\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let t = table();
    let app = receiver_router(ReceiverState::new(Arc::clone(&t)).with_body_limit(4096));
    let mut big = json!({"node_name": "n1", "timestamp": "2024-01-20T10:30:00Z"});
    big["hostname"] = Value::String("x".repeat(5000));
    let big = big.to_string();

    // Declared length over the limit: refused before reading.
    let req = post(())
        .header(header::CONTENT_LENGTH, big.len())
        .body(Body::from(big.clone()))
        .unwrap();
    let (status, v) = send(app.clone(), req).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(v["error"].as_str().unwrap().contains("4096"));

    // No declared length: the limit applies while reading.
    let (status, _) = send(app.clone(), json_req(&big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    // Small when compressed, over the limit once decompressed.
    let z = gzip(big.as_bytes(), 9);
    assert!(z.len() < 4096);
    let req = post(())
        .header(header::CONTENT_ENCODING, "gzip")
        .body(Body::from(z))
        .unwrap();
    let (status, _) = send(app, req).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(t.counts(tokio::time::Instant::now()).total, 0);
}

#[tokio::test]
async fn unsupported_encoding_is_415() {
    let t = table();
    let req = post(())
        .header(header::CONTENT_ENCODING, "br")
        .body(Body::from("{}"))
        .unwrap();
    let (status, v) = send(app(&t), req).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(v["error"].as_str().unwrap().contains("br"));
}

#[tokio::test]
async fn health_and_metrics() {
    let t = table();
    let app = app(&t);
    let body = json!({"node_name": "n1", "timestamp": "2024-01-20T10:30:00Z"}).to_string();
    send(app.clone(), json_req(&body)).await;
    send(app.clone(), json_req("{bad")).await;
    let (status, v) = send(
        app.clone(),
        Request::get("/health").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["status"], "ok");
    assert_eq!(v["nodes"], 1);
    let resp = app
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    assert!(text.contains("atlhyper_agent_snapshots_received_total{outcome=\"latest\"} 1"));
    assert!(text.contains("atlhyper_agent_snapshots_rejected_total{code=\"400\"} 1"));
    assert!(text.contains("atlhyper_agent_nodes{state=\"online\"} 1"));
}

#[tokio::test]
async fn wrong_method_is_405() {
    let t = table();
    let resp = app(&t)
        .oneshot(Request::get("/metrics/node").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn v2_snapshot_comes_back_unchanged() {
    let t = table();
    let app = app(&t);
    // A local offset and nanoseconds, as a v2 collector in Tokyo writes them, a minute ago.
    let tokyo = chrono::FixedOffset::east_opt(9 * 3600).unwrap();
    let ts = (chrono::Utc::now() - chrono::Duration::seconds(60))
        .with_timezone(&tokyo)
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, false);
    let sent = atlhyper_testkit::v2_node_json("raspi-01", &ts, 12.5);
    let (status, _) = send(app, json_req(&sent.to_string())).await;
    assert_eq!(status, StatusCode::OK);

    let r = execute(&t, "c1", &command("node_detail", "raspi-01", json!({})));
    assert!(r.success, "{}", r.error);
    assert_eq!(r.command_id, "cmd-node_detail");
    assert_eq!(r.cluster_id, "c1");
    let back: Value = serde_json::from_str(&r.output).unwrap();
    assert_eq!(back, sent, "the v2 snapshot must come back exactly as sent");
    // And it is still a readable snapshot.
    let parsed: NodeMetricsSnapshot = serde_json::from_value(back).unwrap();
    assert!(parsed.processes.is_empty());
}

#[tokio::test]
async fn built_in_commands() {
    let t = table();
    let app = app(&t);
    // Three snapshots a minute apart, an hour ago.
    let base = chrono::Utc::now() - chrono::Duration::hours(1);
    let at = |minutes: i64| {
        (base + chrono::Duration::minutes(minutes))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    for (i, cpu) in [10.0, 20.0, 30.0].into_iter().enumerate() {
        let body = atlhyper_testkit::v2_node_json("worker-1", &at(i as i64), cpu).to_string();
        assert_eq!(send(app.clone(), json_req(&body)).await.0, StatusCode::OK);
    }

    let r = execute(&t, "c1", &command("node_series", "worker-1", json!({})));
    let points: Vec<MetricsDataPoint> = serde_json::from_str(&r.output).unwrap();
    assert_eq!(
        points.iter().map(|p| p.cpu_usage).collect::<Vec<_>>(),
        [10.0, 20.0, 30.0]
    );
    assert_eq!(points[0].network_rx, 100.0);

    let r = execute(
        &t,
        "c1",
        &command(
            "node_series",
            "worker-1",
            json!({"since": at(1), "until": at(2)}),
        ),
    );
    let points: Vec<MetricsDataPoint> = serde_json::from_str(&r.output).unwrap();
    assert_eq!(points.len(), 2);

    // Points are an hour old: the last 5 minutes hold none of them.
    let r = execute(
        &t,
        "c1",
        &command("node_series", "worker-1", json!({"minutes": 5})),
    );
    assert!(r.success);
    assert_eq!(r.output, "[]");

    let r = execute(&t, "c1", &command("list_nodes", "", json!({})));
    let list: Value = serde_json::from_str(&r.output).unwrap();
    assert_eq!(list[0]["node_name"], "worker-1");
    assert_eq!(list[0]["state"], "online");
    assert!(list[0]["last_seen"].is_string());

    for (cmd, needle) in [
        (command("node_detail", "ghost", json!({})), "not known"),
        (command("node_detail", "", json!({})), "target_name"),
        (
            command("node_series", "worker-1", json!({"since": "noon"})),
            "RFC 3339",
        ),
        (command("reboot", "worker-1", json!({})), "unknown action"),
    ] {
        let r = execute(&t, "c1", &cmd);
        assert!(!r.success, "{} succeeded", cmd.action);
        assert!(r.output.is_empty());
        assert!(r.error.contains(needle), "{}: {}", cmd.action, r.error);
    }
}
