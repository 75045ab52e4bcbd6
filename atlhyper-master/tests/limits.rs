//! Router tests of the limits and the open-mode guards, driven with `oneshot`: write budgets per
//! client with paused time for the refill, the params and pending-command caps at their
//! defaults, the heavy-read bound, and the Host and Content-Type checks of an open master.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use atlhyper_master::{Master, MasterConfig, RateLimit};
use atlhyper_model::{ClusterSnapshot, CommandPoll, CommandResult};
use atlhyper_store::MemoryStore;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::response::Response;
use chrono::Utc;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

const AGENT_A: &str = "agent-token-a";
const AGENT_B: &str = "agent-token-b";
const VIEWER: &str = "viewer-token";
const OPERATOR: &str = "operator-token-1";
const OPERATOR_2: &str = "operator-token-2";

fn master(config: MasterConfig) -> Master {
    let store = Arc::new(MemoryStore::new());
    Master::new(config, store.clone(), store.clone(), store)
}

/// Every kind of token: nothing is open.
fn with_tokens(config: MasterConfig) -> MasterConfig {
    MasterConfig {
        agent_tokens: [
            (AGENT_A.to_owned(), "a".to_owned()),
            (AGENT_B.to_owned(), "b".to_owned()),
        ]
        .into(),
        viewer_tokens: vec![VIEWER.into()],
        operator_tokens: vec![OPERATOR.into(), OPERATOR_2.into()],
        ..config
    }
}

/// A request: method, path, headers, body, and the client address the server would see.
struct Call {
    request: Request<Body>,
}

impl Call {
    fn new(method: &str, path: &str, body: impl Into<Body>) -> Self {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .body(body.into())
            .unwrap();
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
        Self { request }
    }
    fn get(path: &str) -> Self {
        Self::new("GET", path, Body::empty())
    }
    fn post_json(path: &str, body: impl Into<Body>) -> Self {
        Self::new("POST", path, body).header("content-type", "application/json")
    }
    fn header(mut self, k: &'static str, v: &str) -> Self {
        self.request
            .headers_mut()
            .insert(k, v.parse().expect("header value"));
        self
    }
    fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }
    fn client_addr(mut self, addr: [u8; 4]) -> Self {
        self.request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from((addr, 40000))));
        self
    }
}

async fn respond(m: &Master, call: Call) -> Response {
    m.router().oneshot(call.request).await.unwrap()
}

async fn send(m: &Master, call: Call) -> (StatusCode, HeaderMap, Bytes) {
    let response = respond(m, call).await;
    let (parts, body) = response.into_parts();
    (
        parts.status,
        parts.headers,
        body.collect().await.unwrap().to_bytes(),
    )
}

fn error_of(body: &Bytes) -> String {
    let v: Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)));
    v["error"].as_str().expect("an error message").to_owned()
}

fn snapshot(cluster: &str, seq: u64) -> ClusterSnapshot {
    atlhyper_testkit::cluster(
        cluster,
        2,
        seq,
        Utc::now() + chrono::Duration::milliseconds(seq as i64),
    )
}

fn snapshot_call(s: &ClusterSnapshot) -> Call {
    Call::post_json(
        "/agent/snapshot",
        atlhyper_testkit::gzip(&serde_json::to_vec(s).unwrap()),
    )
    .header("content-encoding", "gzip")
    .header("x-cluster-id", &s.cluster_id)
}

fn command_call(cluster: &str, params: Value) -> Call {
    Call::post_json(
        "/api/v2/commands",
        serde_json::to_vec(&json!({"cluster_id": cluster, "action": "ping", "params": params}))
            .unwrap(),
    )
}

fn retry_after(headers: &HeaderMap) -> u64 {
    headers
        .get(header::RETRY_AFTER)
        .expect("a Retry-After header")
        .to_str()
        .unwrap()
        .parse()
        .expect("whole seconds")
}

async fn metric(m: &Master, token: Option<&str>, series: &str) -> f64 {
    let mut call = Call::get("/metrics");
    if let Some(t) = token {
        call = call.bearer(t);
    }
    let (status, _, body) = send(m, call).await;
    assert_eq!(status, 200);
    let text = String::from_utf8(body.to_vec()).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{series} not in /metrics"))
}

#[tokio::test(start_paused = true)]
async fn operator_writes_have_a_budget_per_token_that_refills() {
    let m = master(with_tokens(MasterConfig {
        operator_write_rate_limit: Some(RateLimit::new(5, Duration::from_secs(10))),
        ..MasterConfig::default()
    }));
    let (status, _, _) = send(&m, snapshot_call(&snapshot("a", 1)).bearer(AGENT_A)).await;
    assert_eq!(status, 200);
    for i in 0..5 {
        let (status, _, body) = send(&m, command_call("a", json!({})).bearer(OPERATOR)).await;
        assert_eq!(status, 201, "#{i}: {}", String::from_utf8_lossy(&body));
    }
    let (status, headers, body) = send(&m, command_call("a", json!({})).bearer(OPERATOR)).await;
    assert_eq!(status, 429);
    assert_eq!(retry_after(&headers), 2, "one request back every 10 s / 5");
    assert!(
        error_of(&body).contains("MASTER_OPERATOR_WRITE_RATE_LIMIT"),
        "{}",
        error_of(&body)
    );
    // Another operator token has its own budget.
    let (status, _, _) = send(&m, command_call("a", json!({})).bearer(OPERATOR_2)).await;
    assert_eq!(status, 201);
    // Refill: after Retry-After one more goes through, then the bucket is empty again.
    tokio::time::advance(Duration::from_secs(2)).await;
    let (status, _, _) = send(&m, command_call("a", json!({})).bearer(OPERATOR)).await;
    assert_eq!(status, 201);
    let (status, _, _) = send(&m, command_call("a", json!({})).bearer(OPERATOR)).await;
    assert_eq!(status, 429);
    // Reads are not writes.
    let (status, _, _) = send(&m, Call::get("/api/v2/commands").bearer(OPERATOR)).await;
    assert_eq!(status, 200);
    let limited =
        r#"atlhyper_master_too_many_requests_total{class="operator_write",reason="rate"}"#;
    assert_eq!(metric(&m, Some(VIEWER), limited).await, 2.0);
}

#[tokio::test(start_paused = true)]
async fn agent_writes_have_a_budget_per_agent() {
    let m = master(with_tokens(MasterConfig {
        snapshot_rate_limit: Some(RateLimit::new(3, Duration::from_secs(60))),
        heartbeat_rate_limit: Some(RateLimit::new(2, Duration::from_secs(60))),
        result_rate_limit: Some(RateLimit::new(1, Duration::from_secs(60))),
        ..MasterConfig::default()
    }));
    for seq in 1..=3 {
        let (status, _, _) = send(&m, snapshot_call(&snapshot("a", seq)).bearer(AGENT_A)).await;
        assert_eq!(status, 200);
    }
    let (status, headers, body) = send(&m, snapshot_call(&snapshot("a", 4)).bearer(AGENT_A)).await;
    assert_eq!(status, 429);
    assert_eq!(retry_after(&headers), 20);
    assert!(error_of(&body).contains("snapshots from this agent"));
    // Agent b, from the same address, is keyed by its own token.
    let (status, _, _) = send(&m, snapshot_call(&snapshot("b", 1)).bearer(AGENT_B)).await;
    assert_eq!(status, 200);
    tokio::time::advance(Duration::from_secs(20)).await;
    let (status, _, _) = send(&m, snapshot_call(&snapshot("a", 5)).bearer(AGENT_A)).await;
    assert_eq!(status, 200, "refilled");

    let heartbeat = || {
        Call::post_json(
            "/agent/heartbeat",
            serde_json::to_vec(&json!({"cluster_id": "a", "timestamp": Utc::now()})).unwrap(),
        )
        .bearer(AGENT_A)
    };
    assert_eq!(send(&m, heartbeat()).await.0, 200);
    assert_eq!(send(&m, heartbeat()).await.0, 200);
    assert_eq!(send(&m, heartbeat()).await.0, 429);

    let result = || {
        let r = CommandResult {
            cluster_id: "a".into(),
            command_id: "nope".into(),
            success: true,
            ..Default::default()
        };
        Call::post_json("/agent/result", serde_json::to_vec(&r).unwrap()).bearer(AGENT_A)
    };
    assert_eq!(
        send(&m, result()).await.0,
        404,
        "spends the budget, unknown id"
    );
    assert_eq!(send(&m, result()).await.0, 429);

    for (class, n) in [
        ("agent_snapshot", 1.0),
        ("agent_heartbeat", 1.0),
        ("agent_result", 1.0),
    ] {
        let series =
            format!(r#"atlhyper_master_too_many_requests_total{{class="{class}",reason="rate"}}"#);
        assert_eq!(metric(&m, Some(VIEWER), &series).await, n, "{class}");
    }
}

#[tokio::test(start_paused = true)]
async fn open_mode_budgets_are_per_client_address() {
    let m = master(MasterConfig {
        snapshot_rate_limit: Some(RateLimit::new(2, Duration::from_secs(60))),
        ..MasterConfig::default()
    });
    let from = |addr, cluster, seq| snapshot_call(&snapshot(cluster, seq)).client_addr(addr);
    assert_eq!(send(&m, from([127, 0, 0, 1], "a", 1)).await.0, 200);
    assert_eq!(send(&m, from([127, 0, 0, 1], "a", 2)).await.0, 200);
    // Claiming another cluster id does not buy a new budget without tokens.
    assert_eq!(send(&m, from([127, 0, 0, 1], "other", 1)).await.0, 429);
    assert_eq!(send(&m, from([127, 0, 0, 2], "a", 3)).await.0, 200);
}

#[tokio::test]
async fn params_are_capped_at_64_kib_by_default() {
    let m = master(MasterConfig::default());
    let (status, _, _) = send(&m, snapshot_call(&snapshot("a", 1))).await;
    assert_eq!(status, 200);
    // {"x":"..."} is 8 bytes of JSON around the string.
    let fits = json!({"x": "y".repeat((64 << 10) - 8)});
    assert_eq!(serde_json::to_vec(&fits).unwrap().len(), 64 << 10);
    let (status, _, body) = send(&m, command_call("a", fits)).await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let over = json!({"x": "y".repeat((64 << 10) - 7)});
    let (status, _, body) = send(&m, command_call("a", over)).await;
    assert_eq!(status, 413);
    let why = error_of(&body);
    assert!(
        why.contains("65537 bytes") && why.contains("MASTER_MAX_COMMAND_PARAMS"),
        "{why}"
    );
    // 15 MiB (under the 16 MiB JSON body limit): refused before it is all read.
    let huge = json!({"x": "y".repeat(15 << 20)});
    let (status, _, body) = send(&m, command_call("a", huge)).await;
    assert_eq!(status, 413);
    assert!(error_of(&body).contains("params may be at most 65536 bytes"));
}

#[tokio::test]
async fn pending_commands_are_capped_at_1000_per_cluster_by_default() {
    let m = master(MasterConfig {
        // The default budget (600/min) would stop this loop first.
        operator_write_rate_limit: None,
        ..MasterConfig::default()
    });
    for cluster in ["a", "b"] {
        let (status, _, _) = send(&m, snapshot_call(&snapshot(cluster, 1))).await;
        assert_eq!(status, 200);
    }
    for i in 0..1000 {
        let (status, _, body) = send(&m, command_call("a", json!({}))).await;
        assert_eq!(status, 201, "#{i}: {}", String::from_utf8_lossy(&body));
    }
    let (status, headers, body) = send(&m, command_call("a", json!({}))).await;
    assert_eq!(status, 429);
    assert_eq!(retry_after(&headers), 5);
    let why = error_of(&body);
    assert!(
        why.contains("1000 open commands") && why.contains("MASTER_MAX_PENDING_COMMANDS"),
        "{why}"
    );
    // Another cluster's queue is its own.
    assert_eq!(send(&m, command_call("b", json!({}))).await.0, 201);
    // The agent takes one (running still counts) and answers it: one place frees up.
    let (_, _, body) = send(&m, Call::get("/agent/commands?cluster_id=a")).await;
    let taken: CommandPoll = serde_json::from_slice(&body).unwrap();
    let taken = taken.command.expect("a command");
    assert_eq!(send(&m, command_call("a", json!({}))).await.0, 429);
    let result = CommandResult {
        cluster_id: "a".into(),
        command_id: taken.id,
        success: true,
        ..Default::default()
    };
    let (status, _, _) = send(
        &m,
        Call::post_json("/agent/result", serde_json::to_vec(&result).unwrap())
            .header("x-cluster-id", "a"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(send(&m, command_call("a", json!({}))).await.0, 201);
    assert_eq!(send(&m, command_call("a", json!({}))).await.0, 429);
    let full = r#"atlhyper_master_too_many_requests_total{class="operator_write",reason="pending_commands"}"#;
    assert_eq!(metric(&m, None, full).await, 3.0);
}

#[tokio::test(start_paused = true)]
async fn heavy_reads_wait_briefly_then_get_503() {
    let m = master(MasterConfig {
        heavy_read_concurrency: 1,
        heavy_read_wait: Duration::from_secs(1),
        detail_timeout: Duration::from_secs(10),
        ..MasterConfig::default()
    });
    let (status, _, _) = send(&m, snapshot_call(&snapshot("a", 1))).await;
    assert_eq!(status, 200);
    let detail = "/api/v2/observe/metrics/nodes/node-000?cluster_id=a";
    // Nobody answers for the agent: this one holds the only agent-query slot for 10 s.
    let waiting = tokio::spawn({
        let m = m.clone();
        async move { send(&m, Call::get(detail)).await.0 }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = tokio::time::Instant::now();
    let (status, headers, body) = send(&m, Call::get(detail)).await;
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    assert_eq!(before.elapsed(), Duration::from_secs(1), "waited briefly");
    assert_eq!(retry_after(&headers), 1);
    assert!(error_of(&body).contains("MASTER_HEAVY_READ_CONCURRENCY"));
    // Other classes have their own slots.
    let (status, _, _) = send(&m, Call::get("/api/v2/clusters/a/node-metrics")).await;
    assert_eq!(status, 200);
    assert_eq!(waiting.await.unwrap(), 504);
    let (status, _, _) = send(&m, Call::get(detail)).await;
    assert_eq!(status, 504, "the slot is free again");
    let busy = r#"atlhyper_master_heavy_reads_refused_total{class="agent_query"}"#;
    assert_eq!(metric(&m, None, busy).await, 1.0);
}

#[tokio::test(start_paused = true)]
async fn the_node_list_keeps_its_slot_until_the_body_is_sent() {
    let m = master(MasterConfig {
        heavy_read_concurrency: 1,
        ..MasterConfig::default()
    });
    let (status, _, _) = send(&m, snapshot_call(&snapshot("a", 1))).await;
    assert_eq!(status, 200);
    let list = "/api/v2/clusters/a/node-metrics";
    let unread = respond(&m, Call::get(list)).await;
    assert_eq!(unread.status(), 200);
    assert_eq!(send(&m, Call::get(list)).await.0, 503, "body not sent yet");
    let (status, _, _) = send(&m, Call::get(&format!("{list}?view=overview"))).await;
    assert_eq!(status, 200, "the overview is light");
    let body = unread.into_body().collect().await.unwrap().to_bytes();
    assert!(!body.is_empty());
    assert_eq!(send(&m, Call::get(list)).await.0, 200);
}

#[tokio::test]
async fn open_mode_answers_only_loopback_host_names() {
    let m = master(MasterConfig::default());
    for host in [
        "localhost",
        "localhost:8080",
        "127.0.0.1:8080",
        "[::1]:8080",
    ] {
        let (status, _, _) = send(&m, Call::get("/api/v2/clusters").header("host", host)).await;
        assert_eq!(status, 200, "{host}");
    }
    for path in ["/api/v2/clusters", "/health", "/", "/no-such-route"] {
        let (status, _, body) = send(&m, Call::get(path).header("host", "evil.example:8080")).await;
        assert_eq!(status, StatusCode::MISDIRECTED_REQUEST, "{path}");
        assert!(error_of(&body).contains("evil.example"), "{path}");
    }
    // With tokens the master may serve any name (a Service, an ingress).
    let m = master(with_tokens(MasterConfig::default()));
    let (status, _, _) = send(
        &m,
        Call::get("/api/v2/clusters")
            .header("host", "evil.example")
            .bearer(VIEWER),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn open_mode_takes_only_json_writes() {
    let m = master(MasterConfig::default());
    let hb = || serde_json::to_vec(&json!({"cluster_id": "a", "timestamp": Utc::now()})).unwrap();
    // A cross-site form can send text/plain with a JSON body.
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let call = Call::new("POST", "/agent/heartbeat", hb()).header("content-type", content_type);
        let (status, _, body) = send(&m, call).await;
        assert_eq!(status, 415, "{content_type}");
        assert!(error_of(&body).contains("application/json"));
        let call = Call::new("POST", "/api/v2/commands", "{}").header("content-type", content_type);
        assert_eq!(send(&m, call).await.0, 415, "{content_type}");
    }
    let (status, _, _) = send(&m, Call::new("POST", "/agent/heartbeat", hb())).await;
    assert_eq!(status, 415, "no content type");
    let (clusters, _, body) = send(&m, Call::get("/api/v2/clusters")).await;
    assert_eq!(clusters, 200);
    assert_eq!(
        body.as_ref(),
        br#"{"clusters":[],"total":0}"#,
        "nothing was created"
    );
    let call = Call::new("POST", "/agent/heartbeat", hb())
        .header("content-type", "application/json; charset=utf-8");
    assert_eq!(send(&m, call).await.0, 200);
    // What the agent sends with a snapshot: JSON, gzip-encoded.
    assert_eq!(send(&m, snapshot_call(&snapshot("a", 1))).await.0, 200);

    // With tokens, the token is what a form cannot send; the content type is not checked.
    let m = master(with_tokens(MasterConfig::default()));
    let call = Call::new("POST", "/agent/heartbeat", hb())
        .header("content-type", "text/plain")
        .bearer(AGENT_A);
    assert_eq!(send(&m, call).await.0, 200);
}
