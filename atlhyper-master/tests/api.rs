//! Router tests: every endpoint and status code, driven with `oneshot` over a MemoryStore.

use std::sync::Arc;
use std::time::Duration;

use atlhyper_master::{Master, MasterConfig};
use atlhyper_model::{
    AgentStatus, ClusterInfo, ClusterNodeMetrics, ClusterSnapshot, CommandCreated, CommandPoll,
    CommandRecord, CommandResult, CommandStatus, MetricsDataPoint, NodeHistory,
    NodeMetricsSnapshot, StatusBody,
};
use atlhyper_store::{HistoryQuery, MemoryStore, MetricsStore};
use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use chrono::{DateTime, Utc};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

fn setup(config: MasterConfig) -> (Master, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new());
    let master = Master::new(config, store.clone(), store.clone(), store.clone());
    (master, store)
}

struct Req {
    method: &'static str,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn get(path: &str) -> Req {
    Req {
        method: "GET",
        path: path.to_owned(),
        headers: Vec::new(),
        body: Vec::new(),
    }
}

fn post(path: &str, body: impl Into<Vec<u8>>) -> Req {
    Req {
        method: "POST",
        path: path.to_owned(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.into(),
    }
}

impl Req {
    fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.to_owned(), v.to_owned()));
        self
    }
    fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }
    fn cluster(self, id: &str) -> Self {
        self.header("x-cluster-id", id)
    }
}

async fn send(master: &Master, req: Req) -> (StatusCode, Bytes) {
    let mut builder = Request::builder().method(req.method).uri(&req.path);
    for (k, v) in &req.headers {
        builder = builder.header(k, v);
    }
    let response = master
        .router()
        .oneshot(builder.body(Body::from(req.body)).unwrap())
        .await
        .unwrap();
    let status = response.status();
    (
        status,
        response.into_body().collect().await.unwrap().to_bytes(),
    )
}

fn json<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> T {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(bytes)))
}

async fn body_of(master: &Master, path: &str) -> Bytes {
    let (status, body) = send(master, get(path)).await;
    assert_eq!(status, 200, "{path}");
    body
}

fn error_of(bytes: &Bytes) -> String {
    json::<Value>(bytes)["error"].as_str().unwrap().to_owned()
}

fn snapshot_req(snapshot: &ClusterSnapshot) -> Req {
    post(
        "/agent/snapshot",
        atlhyper_testkit::gzip(&serde_json::to_vec(snapshot).unwrap()),
    )
    .header("content-encoding", "gzip")
    .cluster(&snapshot.cluster_id)
}

async fn push(master: &Master, snapshot: &ClusterSnapshot) -> String {
    let (status, body) = send(master, snapshot_req(snapshot)).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    json::<StatusBody>(&body).status
}

fn tokens_config() -> MasterConfig {
    MasterConfig {
        agent_tokens: [
            ("agent-a".to_owned(), "a".to_owned()),
            ("agent-b".to_owned(), "b".to_owned()),
        ]
        .into(),
        viewer_tokens: vec!["viewer".into()],
        operator_tokens: vec!["operator".into()],
        ..MasterConfig::default()
    }
}

#[tokio::test]
async fn health_and_dashboard_are_mounted() {
    let (m, _) = setup(MasterConfig::default());
    let (status, body) = send(&m, get("/health")).await;
    assert_eq!(status, 200);
    assert_eq!(json::<StatusBody>(&body).status, "ok");
    let (status, body) = send(&m, get("/")).await;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("<html"));
    let (status, _) = send(&m, get("/no/such/route")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn snapshot_then_dashboard_endpoints() {
    let (m, store) = setup(MasterConfig::default());
    let now = Utc::now();
    assert_eq!(
        push(&m, &atlhyper_testkit::cluster("c1", 3, 1, now)).await,
        "ok"
    );

    let (status, body) = send(&m, get("/api/v2/clusters/c1/node-metrics")).await;
    assert_eq!(status, 200);
    let metrics: ClusterNodeMetrics = json(&body);
    assert_eq!(metrics.nodes.len(), 3);
    assert_eq!(metrics.summary.total_nodes, 3);
    assert_eq!(metrics.summary.online_nodes, 3);
    assert_eq!(metrics.nodes[0].node_name, "node-000");

    let (status, body) = send(&m, get("/api/v2/clusters/c1/node-metrics/node-001")).await;
    assert_eq!(status, 200);
    let node: NodeMetricsSnapshot = json(&body);
    assert_eq!(node.node_name, "node-001");
    assert_eq!(node.processes.len(), 10);

    // The overview view: same shape and summary, every node in its overview form.
    let full_body = body_of(&m, "/api/v2/clusters/c1/node-metrics?view=full").await;
    assert_eq!(
        full_body,
        body_of(&m, "/api/v2/clusters/c1/node-metrics").await
    );
    let (status, body) = send(&m, get("/api/v2/clusters/c1/node-metrics?view=overview")).await;
    assert_eq!(status, 200);
    let overview: ClusterNodeMetrics = json(&body);
    assert_eq!(overview.summary, metrics.summary);
    let expected: Vec<NodeMetricsSnapshot> = metrics
        .nodes
        .iter()
        .map(NodeMetricsSnapshot::overview)
        .collect();
    assert_eq!(overview.nodes, expected);
    assert!(overview.nodes.iter().all(|n| n.processes.is_empty()));
    assert!(
        body.len() < full_body.len(),
        "{} >= {}",
        body.len(),
        full_body.len()
    );
    for bad in ["?view=summary", "?view=", "?view=FULL"] {
        let (status, body) = send(&m, get(&format!("/api/v2/clusters/c1/node-metrics{bad}"))).await;
        assert_eq!(status, 400, "{bad}");
        assert!(
            error_of(&body).contains("view must be full or overview"),
            "{bad}"
        );
    }

    let (status, body) = send(&m, get("/api/v2/clusters/c1/node-metrics/nope")).await;
    assert_eq!(status, 404);
    assert!(error_of(&body).contains("nope"));
    let (status, _) = send(&m, get("/api/v2/clusters/zz/node-metrics")).await;
    assert_eq!(status, 404);
    let (status, _) = send(&m, get("/api/v2/clusters/zz/node-metrics/node-001")).await;
    assert_eq!(status, 404);

    let (status, body) = send(&m, get("/api/v2/clusters?format=v2")).await;
    assert_eq!(status, 200);
    let clusters: Vec<ClusterInfo> = json(&body);
    assert_eq!(clusters.len(), 1);
    assert_eq!(clusters[0].cluster_id, "c1");
    assert_eq!(clusters[0].node_count, 3);
    assert_eq!(clusters[0].status, "online");

    // Persisted: latest of every node and one history point each.
    assert_eq!(store.list_latest("c1").await.unwrap().len(), 3);
    let agents: Vec<AgentStatus> = json(&send(&m, get("/api/v2/agents")).await.1);
    assert_eq!(agents.len(), 1);
    assert_eq!(agents[0].agent_version, "test");
}

#[tokio::test]
async fn observe_summary_and_nodes_come_from_memory() {
    let (m, _) = setup(MasterConfig::default());
    push(&m, &atlhyper_testkit::cluster("c1", 2, 1, Utc::now())).await;
    let (status, body) = send(
        &m,
        get("/api/v2/observe/metrics/summary?cluster_id=c1&format=v2"),
    )
    .await;
    assert_eq!(status, 200);
    let v: Value = json(&body);
    assert_eq!(v["data"]["total_nodes"], 2);
    let (status, body) = send(
        &m,
        get("/api/v2/observe/metrics/nodes?cluster_id=c1&format=v2"),
    )
    .await;
    assert_eq!(status, 200);
    let v: Value = json(&body);
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    let (status, body) = send(&m, get("/api/v2/observe/metrics/summary")).await;
    assert_eq!(status, 400);
    assert!(error_of(&body).contains("cluster_id"));
    let (status, _) = send(
        &m,
        get("/api/v2/observe/metrics/nodes?cluster_id=other&format=v2"),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn duplicate_and_older_seq_are_acknowledged_and_ignored() {
    let (m, _) = setup(MasterConfig::default());
    let t0 = Utc::now();
    assert_eq!(
        push(&m, &atlhyper_testkit::cluster("c1", 2, 5, t0)).await,
        "ok"
    );
    assert_eq!(
        push(&m, &atlhyper_testkit::cluster("c1", 2, 5, t0)).await,
        "duplicate"
    );
    let older = atlhyper_testkit::cluster("c1", 1, 4, t0 - chrono::Duration::seconds(10));
    assert_eq!(push(&m, &older).await, "duplicate");
    let metrics: ClusterNodeMetrics =
        json(&send(&m, get("/api/v2/clusters/c1/node-metrics")).await.1);
    assert_eq!(metrics.nodes.len(), 2, "the older snapshot changed nothing");
    let newer = atlhyper_testkit::cluster("c1", 1, 6, t0 + chrono::Duration::seconds(10));
    assert_eq!(push(&m, &newer).await, "ok");
    let metrics: ClusterNodeMetrics =
        json(&send(&m, get("/api/v2/clusters/c1/node-metrics")).await.1);
    assert_eq!(metrics.nodes.len(), 1);
}

#[tokio::test]
async fn bad_snapshots_get_clear_errors() {
    let config = MasterConfig {
        snapshot_body_limit: 8192,
        snapshot_decompressed_limit: 64 * 1024,
        ..MasterConfig::default()
    };
    let (m, _) = setup(config);
    // Compressed body over the limit.
    let big: Vec<u8> = (0..10_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let (status, body) = send(
        &m,
        post("/agent/snapshot", atlhyper_testkit::gzip(&big)).cluster("c1"),
    )
    .await;
    assert_eq!(status, 413, "{}", error_of(&body));
    // Small compressed body that inflates past the decompressed limit.
    let bomb = atlhyper_testkit::gzip(&vec![b' '; 256 << 10]);
    assert!(bomb.len() < 8192);
    let (status, body) = send(&m, post("/agent/snapshot", bomb).cluster("c1")).await;
    assert_eq!(status, 413);
    assert!(error_of(&body).contains("decompress"));
    // Bad gzip, bad JSON, no cluster id, empty node name.
    let (status, _) = send(
        &m,
        post("/agent/snapshot", b"\x1f\x8b garbage".to_vec()).cluster("c1"),
    )
    .await;
    assert_eq!(status, 400);
    let (status, body) = send(
        &m,
        post("/agent/snapshot", b"{not json".to_vec()).cluster("c1"),
    )
    .await;
    assert_eq!(status, 400);
    assert!(error_of(&body).starts_with("snapshot:"));
    let (status, _) = send(&m, post("/agent/snapshot", b"{}".to_vec())).await;
    assert_eq!(status, 400);
    // The body may not claim another cluster than the header.
    let mut s = atlhyper_testkit::cluster("c1", 1, 1, Utc::now());
    s.cluster_id = "c2".into();
    let (status, _) = send(
        &m,
        post("/agent/snapshot", serde_json::to_vec(&s).unwrap()).cluster("c1"),
    )
    .await;
    assert_eq!(status, 403);
    // Nothing of it was kept.
    let (status, _) = send(&m, get("/api/v2/clusters/c1/node-metrics")).await;
    assert_eq!(status, 404);
    // An empty node name is that node's problem alone: refused with its reason, the push is
    // answered 200.
    let mut s = atlhyper_testkit::cluster("c1", 2, 1, Utc::now());
    let n = s.node_metrics.remove("node-000").unwrap();
    s.node_metrics.insert(String::new(), n);
    let (status, body) = send(&m, snapshot_req(&s)).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let answer: StatusBody = json(&body);
    assert_eq!(answer.rejected.len(), 1, "{answer:?}");
    assert_eq!(answer.rejected[0].node_name, "");
    assert_eq!(answer.rejected[0].reason, "invalid_name");
    let list: ClusterNodeMetrics = json(&body_of(&m, "/api/v2/clusters/c1/node-metrics").await);
    let names: Vec<&str> = list.nodes.iter().map(|n| n.node_name.as_str()).collect();
    assert_eq!(names, ["node-001"]);
    // A plain (not gzip) snapshot is fine.
    let s = atlhyper_testkit::cluster("c1", 1, 1, Utc::now());
    let (status, _) = send(
        &m,
        post("/agent/snapshot", serde_json::to_vec(&s).unwrap()).cluster("c1"),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn agent_tokens_decide_identity() {
    let (m, _) = setup(tokens_config());
    let s = atlhyper_testkit::cluster("a", 1, 1, Utc::now());
    let (status, _) = send(&m, snapshot_req(&s)).await;
    assert_eq!(status, 401, "no token");
    let (status, _) = send(&m, snapshot_req(&s).bearer("nope")).await;
    assert_eq!(status, 401, "unknown token");
    let (status, _) = send(&m, snapshot_req(&s).bearer("agent-b")).await;
    assert_eq!(status, 403, "token of b, header of a");
    let (status, _) = send(&m, snapshot_req(&s).bearer("viewer")).await;
    assert_eq!(status, 401, "a reader token is not an agent token");
    let (status, _) = send(&m, snapshot_req(&s).bearer("agent-a")).await;
    assert_eq!(status, 200);
    // Without X-Cluster-ID the token alone names the cluster.
    let body = atlhyper_testkit::gzip(
        &serde_json::to_vec(&atlhyper_testkit::cluster("", 2, 2, Utc::now())).unwrap(),
    );
    let (status, _) = send(&m, post("/agent/snapshot", body).bearer("agent-b")).await;
    assert_eq!(status, 200);
    let clusters: Vec<ClusterInfo> = json(
        &send(&m, get("/api/v2/clusters?format=v2").bearer("viewer"))
            .await
            .1,
    );
    let ids: Vec<&str> = clusters.iter().map(|c| c.cluster_id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
    // Heartbeats: same rules.
    let hb = serde_json::to_vec(&json!({"cluster_id": "a", "timestamp": Utc::now()})).unwrap();
    let (status, _) = send(&m, post("/agent/heartbeat", hb.clone()).bearer("agent-b")).await;
    assert_eq!(status, 403);
    let (status, _) = send(&m, post("/agent/heartbeat", hb.clone())).await;
    assert_eq!(status, 401);
    let (status, _) = send(&m, post("/agent/heartbeat", hb).bearer("agent-a")).await;
    assert_eq!(status, 200);
    // Long poll of another cluster.
    let (status, _) = send(&m, get("/agent/commands?cluster_id=a").bearer("agent-b")).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn reader_tokens_guard_the_api() {
    let (m, _) = setup(tokens_config());
    send(
        &m,
        snapshot_req(&atlhyper_testkit::cluster("a", 1, 1, Utc::now())).bearer("agent-a"),
    )
    .await;
    for path in [
        "/api/v2/clusters",
        "/api/v2/clusters?format=v2",
        "/api/v2/agents",
        "/api/v2/clusters/a/node-metrics",
        "/api/v2/clusters/a/node-metrics/node-000",
        "/api/v2/clusters/a/node-metrics/node-000/history?hours=1",
        "/api/v2/node-metrics/node-000/history?cluster_id=a&hours=1",
        "/api/v2/observe/metrics/summary?cluster_id=a",
        "/api/v2/observe/metrics/nodes?cluster_id=a",
        "/api/v2/observe/metrics/summary?cluster_id=a&format=v2",
        "/api/v2/observe/metrics/nodes?cluster_id=a&format=v2",
        "/api/v2/commands",
        "/metrics",
    ] {
        assert_eq!(send(&m, get(path)).await.0, 401, "{path} without token");
        assert_eq!(send(&m, get(path).bearer("wrong")).await.0, 401, "{path}");
        assert_eq!(send(&m, get(path).bearer("agent-a")).await.0, 401, "{path}");
        assert_eq!(send(&m, get(path).bearer("viewer")).await.0, 200, "{path}");
        assert_eq!(
            send(&m, get(path).bearer("operator")).await.0,
            200,
            "{path}"
        );
    }
    assert_eq!(send(&m, get("/health")).await.0, 200);
    let create = serde_json::to_vec(&json!({"cluster_id": "a", "action": "ping"})).unwrap();
    let (status, body) = send(
        &m,
        post("/api/v2/commands", create.clone()).bearer("viewer"),
    )
    .await;
    assert_eq!(status, 403);
    assert!(error_of(&body).contains("operator"));
    assert_eq!(
        send(&m, post("/api/v2/commands", create.clone())).await.0,
        401
    );
    assert_eq!(
        send(&m, post("/api/v2/commands", create).bearer("operator"))
            .await
            .0,
        201
    );
}

#[tokio::test]
async fn history_parameters_and_sampling() {
    let (m, store) = setup(MasterConfig::default());
    // Snapshots every 10 s for 12 minutes, ending now: buckets of 5 minutes decide.
    let end = Utc::now();
    let start = end - chrono::Duration::seconds(720);
    let mut at = start;
    let mut seq = 1;
    while at <= end {
        push(&m, &atlhyper_testkit::cluster("c1", 2, seq, at)).await;
        at += chrono::Duration::seconds(10);
        seq += 1;
    }
    let points = store
        .history(&HistoryQuery {
            cluster_id: "c1".into(),
            node_name: "node-000".into(),
            from: start - chrono::Duration::hours(1),
            to: end,
            max_points: None,
        })
        .await
        .unwrap();
    let bucket = |t: DateTime<Utc>| t.timestamp().div_euclid(300);
    let expected = bucket(end) - bucket(start) + 1;
    assert_eq!(
        points.len() as i64,
        expected,
        "one point per 5-minute bucket"
    );
    assert_eq!(
        points[0].timestamp, start,
        "the first snapshot of a bucket is kept"
    );

    let (status, body) = send(
        &m,
        get("/api/v2/clusters/c1/node-metrics/node-000/history?hours=1"),
    )
    .await;
    assert_eq!(status, 200);
    let history: NodeHistory = json(&body);
    assert_eq!(history.node_name, "node-000");
    assert_eq!(history.data.len() as i64, expected);
    assert!(history.end - history.start == chrono::Duration::hours(1));

    for bad in ["abc", "100000", "0", "721", "-3", "1.5"] {
        let (status, body) = send(
            &m,
            get(&format!(
                "/api/v2/clusters/c1/node-metrics/node-000/history?hours={bad}"
            )),
        )
        .await;
        assert_eq!(status, 400, "hours={bad}");
        assert!(error_of(&body).contains("hours"));
    }
    let (status, _) = send(&m, get("/api/v2/clusters/c1/node-metrics/node-000/history")).await;
    assert_eq!(status, 200, "hours defaults to 24");

    // A zoomed chart asks for a window: only the points inside it.
    let (from, to) = (
        start + chrono::Duration::seconds(200),
        end - chrono::Duration::seconds(200),
    );
    let (status, body) = send(
        &m,
        get(&format!(
            "/api/v2/clusters/c1/node-metrics/node-000/history?from={}&to={}",
            from.timestamp_millis(),
            to.timestamp_millis()
        )),
    )
    .await;
    assert_eq!(status, 200);
    let window: NodeHistory = json(&body);
    assert_eq!(window.start.timestamp_millis(), from.timestamp_millis());
    assert_eq!(window.end.timestamp_millis(), to.timestamp_millis());
    assert!(!window.data.is_empty());
    assert!(
        (window.data.len() as i64) < expected,
        "fewer points than the whole history"
    );
    assert!(
        window
            .data
            .iter()
            .all(|p| p.timestamp >= from && p.timestamp <= to),
        "every point inside the window"
    );
    let ms = |t: DateTime<Utc>| t.timestamp_millis();
    for (bad, names) in [
        (format!("from={}", ms(from)), "from and to"),
        (format!("to={}", ms(to)), "from and to"),
        (format!("from={}&to={}", ms(to), ms(from)), "before"),
        (format!("from=x&to={}", ms(to)), "from"),
        (format!("from={}&to=1e3", ms(from)), "to"),
        (format!("from={}&to={}&hours=1", ms(from), ms(to)), "hours"),
        (
            format!(
                "from={}&to={}",
                ms(end - chrono::Duration::hours(721)),
                ms(end)
            ),
            "720",
        ),
        (format!("from={}&to=99999999999999999999", ms(from)), "to"),
    ] {
        let (status, body) = send(
            &m,
            get(&format!(
                "/api/v2/clusters/c1/node-metrics/node-000/history?{bad}"
            )),
        )
        .await;
        assert_eq!(status, 400, "{bad}");
        assert!(
            error_of(&body).contains(names),
            "{bad}: {}",
            error_of(&body)
        );
    }
    let (status, body) = send(
        &m,
        get("/api/v2/clusters/zz/node-metrics/node-000/history?hours=1"),
    )
    .await;
    assert_eq!(status, 404);
    assert!(error_of(&body).contains("cluster"));
    let (status, body) = send(
        &m,
        get("/api/v2/clusters/c1/node-metrics/zz/history?hours=1"),
    )
    .await;
    assert_eq!(status, 404);
    assert!(error_of(&body).contains("node"));
}

#[tokio::test]
async fn history_is_downsampled_for_long_ranges() {
    let config = MasterConfig {
        history_max_points: 50,
        ..MasterConfig::default()
    };
    let (m, store) = setup(config);
    push(&m, &atlhyper_testkit::cluster("c1", 1, 1, Utc::now())).await;
    // 10 days of 5-minute points: 2880.
    let now = Utc::now();
    let points: Vec<MetricsDataPoint> = (1..=2880)
        .map(|i| MetricsDataPoint {
            timestamp: now - chrono::Duration::minutes(5 * i),
            node_name: "node-000".into(),
            cpu_usage: 50.0,
            ..Default::default()
        })
        .collect();
    store.append_history("c1", &points).await.unwrap();
    let history: NodeHistory = json(
        &send(
            &m,
            get("/api/v2/clusters/c1/node-metrics/node-000/history?hours=720"),
        )
        .await
        .1,
    );
    assert!(
        history.data.len() <= 50 && history.data.len() > 10,
        "{}",
        history.data.len()
    );
    assert!(
        history
            .data
            .iter()
            .all(|p| (p.cpu_usage - 50.0).abs() < 1e-9 || p.cpu_usage > 0.0)
    );
}

#[tokio::test]
async fn backfill_is_merged_without_duplicates() {
    let (m, store) = setup(MasterConfig::default());
    let now = Utc::now();
    let bucket_start = |t: DateTime<Utc>| {
        DateTime::from_timestamp(t.timestamp().div_euclid(300) * 300, 0).unwrap()
    };
    let current = bucket_start(now);
    // Three earlier buckets, four points each (every 75 s), as an agent's ring holds them.
    let backfill: Vec<MetricsDataPoint> = (1..=3)
        .flat_map(|b| {
            (0..4).map(move |k| MetricsDataPoint {
                timestamp: current - chrono::Duration::seconds(300 * b)
                    + chrono::Duration::seconds(75 * k),
                node_name: "node-000".into(),
                cpu_usage: (b * 10 + k) as f64,
                ..Default::default()
            })
        })
        .collect();
    // One of those buckets is already stored.
    store
        .append_history(
            "c1",
            &[MetricsDataPoint {
                timestamp: current - chrono::Duration::seconds(600) + chrono::Duration::seconds(30),
                node_name: "node-000".into(),
                cpu_usage: 99.0,
                ..Default::default()
            }],
        )
        .await
        .unwrap();
    let mut s = atlhyper_testkit::cluster("c1", 1, 1, now);
    s.backfill = backfill.clone();
    push(&m, &s).await;
    let query = HistoryQuery {
        cluster_id: "c1".into(),
        node_name: "node-000".into(),
        from: now - chrono::Duration::hours(1),
        to: now + chrono::Duration::minutes(1),
        max_points: None,
    };
    let points = store.history(&query).await.unwrap();
    // 3 backfilled buckets (one of them the stored point) + the current snapshot.
    assert_eq!(points.len(), 4, "{points:#?}");
    assert_eq!(
        points[0].cpu_usage, 30.0,
        "first point of the oldest bucket"
    );
    assert_eq!(
        points[1].cpu_usage, 99.0,
        "the stored point stays, no second one"
    );
    assert_eq!(points[2].cpu_usage, 10.0);
    // The same backfill again (a retry after a lost answer) adds nothing.
    let mut s = atlhyper_testkit::cluster("c1", 1, 2, now + chrono::Duration::seconds(1));
    s.backfill = backfill;
    push(&m, &s).await;
    assert_eq!(store.history(&query).await.unwrap().len(), 4);
}

async fn create_command(m: &Master, cluster: &str, action: &str) -> String {
    let body = serde_json::to_vec(&json!({"cluster_id": cluster, "action": action,
        "target_kind": "Node", "target_name": "node-000"}))
    .unwrap();
    let (status, body) = send(m, post("/api/v2/commands", body)).await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let created: CommandCreated = json(&body);
    assert_eq!(created.status, CommandStatus::Pending);
    created.command_id
}

#[tokio::test]
async fn commands_create_get_list() {
    let (m, _) = setup(MasterConfig::default());
    push(&m, &atlhyper_testkit::cluster("c1", 1, 1, Utc::now())).await;
    let id = create_command(&m, "c1", "ping").await;
    let (status, body) = send(&m, get(&format!("/api/v2/commands/{id}"))).await;
    assert_eq!(status, 200);
    let record: CommandRecord = json(&body);
    assert_eq!(record.status, CommandStatus::Pending);
    assert_eq!(record.cluster_id, "c1");
    assert_eq!(record.target_name, "node-000");
    assert!(record.deadline > record.created_at);

    let list: Vec<CommandRecord> = json(
        &send(&m, get("/api/v2/commands?cluster_id=c1&status=pending"))
            .await
            .1,
    );
    assert_eq!(list.len(), 1);
    let list: Vec<CommandRecord> = json(&send(&m, get("/api/v2/commands?status=success")).await.1);
    assert!(list.is_empty());

    assert_eq!(send(&m, get("/api/v2/commands/nope")).await.0, 404);
    assert_eq!(send(&m, get("/api/v2/commands?status=weird")).await.0, 400);
    assert_eq!(send(&m, get("/api/v2/commands?limit=abc")).await.0, 400);
    assert_eq!(send(&m, get("/api/v2/commands?limit=100000")).await.0, 400);
    let bad = |v: Value| post("/api/v2/commands", serde_json::to_vec(&v).unwrap());
    assert_eq!(
        send(&m, bad(json!({"cluster_id": "zz", "action": "ping"})))
            .await
            .0,
        404
    );
    assert_eq!(
        send(&m, bad(json!({"cluster_id": "c1", "action": ""})))
            .await
            .0,
        400
    );
    assert_eq!(
        send(&m, bad(json!({"cluster_id": "", "action": "ping"})))
            .await
            .0,
        400
    );
    assert_eq!(
        send(
            &m,
            bad(json!({"cluster_id": "c1", "action": "ping", "timeout_secs": 0}))
        )
        .await
        .0,
        400
    );
    assert_eq!(
        send(&m, post("/api/v2/commands", b"{".to_vec())).await.0,
        400
    );
}

#[tokio::test]
async fn json_bodies_have_a_size_limit() {
    let config = MasterConfig {
        json_body_limit: 1024,
        ..MasterConfig::default()
    };
    let (m, _) = setup(config);
    let big = serde_json::to_vec(&json!({"cluster_id": "c1", "action": "ping",
        "params": {"x": "y".repeat(4096)}}))
    .unwrap();
    assert_eq!(send(&m, post("/api/v2/commands", big.clone())).await.0, 413);
    assert_eq!(
        send(&m, post("/agent/result", big.clone()).cluster("c1"))
            .await
            .0,
        413
    );
    assert_eq!(
        send(&m, post("/agent/heartbeat", big).cluster("c1"))
            .await
            .0,
        413
    );
}

#[tokio::test(start_paused = true)]
async fn long_poll_wakes_at_once_and_times_out_empty() {
    let (m, _) = setup(MasterConfig::default());
    push(&m, &atlhyper_testkit::cluster("c1", 1, 1, Utc::now())).await;

    // Nothing queued: the poll waits the whole (paused, auto-advanced) 30 s and answers empty.
    let before = tokio::time::Instant::now();
    let (status, body) = send(&m, get("/agent/commands?cluster_id=c1&topic=ops")).await;
    assert_eq!(status, 200);
    assert!(!json::<CommandPoll>(&body).has_command);
    assert!(before.elapsed() >= Duration::from_secs(30));

    // A poll in flight is woken by the queueing, long before its timeout.
    let poller = {
        let m = m.clone();
        tokio::spawn(async move { send(&m, get("/agent/commands?cluster_id=c1")).await })
    };
    tokio::time::sleep(Duration::from_secs(5)).await;
    let started = tokio::time::Instant::now();
    let id = create_command(&m, "c1", "ping").await;
    let (status, body) = poller.await.unwrap();
    assert_eq!(status, 200);
    let poll: CommandPoll = json(&body);
    let command = poll.command.expect("the queued command");
    assert_eq!(command.id, id);
    assert_eq!(command.action, "ping");
    assert_eq!(command.cluster_id, "c1");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "woken, not timed out"
    );

    // Taken commands are running and not offered again while leased.
    let record: CommandRecord = json(&send(&m, get(&format!("/api/v2/commands/{id}"))).await.1);
    assert_eq!(record.status, CommandStatus::Running);
}

#[tokio::test(start_paused = true)]
async fn commands_never_cross_clusters() {
    let (m, _) = setup(MasterConfig::default());
    push(&m, &atlhyper_testkit::cluster("a", 1, 1, Utc::now())).await;
    push(&m, &atlhyper_testkit::cluster("b", 1, 1, Utc::now())).await;
    let id = create_command(&m, "a", "ping").await;

    // b's poll never gets a's command.
    let (_, body) = send(&m, get("/agent/commands?cluster_id=b")).await;
    assert!(!json::<CommandPoll>(&body).has_command);
    // b cannot answer a's command: 404 and nothing changes.
    let result = CommandResult {
        cluster_id: "b".into(),
        command_id: id.clone(),
        success: true,
        output: "pong".into(),
        ..Default::default()
    };
    let (status, _) = send(
        &m,
        post("/agent/result", serde_json::to_vec(&result).unwrap()).cluster("b"),
    )
    .await;
    assert_eq!(status, 404);
    let record: CommandRecord = json(&send(&m, get(&format!("/api/v2/commands/{id}"))).await.1);
    assert_eq!(record.status, CommandStatus::Pending);
    assert!(record.result.is_none());
    // Claiming to be a in the body while the header says b is refused.
    let mut as_a = result.clone();
    as_a.cluster_id = "a".into();
    let (status, _) = send(
        &m,
        post("/agent/result", serde_json::to_vec(&as_a).unwrap()).cluster("b"),
    )
    .await;
    assert_eq!(status, 403);

    // a gets it and answers it.
    let (_, body) = send(&m, get("/agent/commands?cluster_id=a")).await;
    assert_eq!(json::<CommandPoll>(&body).command.unwrap().id, id);
    let (status, _) = send(
        &m,
        post("/agent/result", serde_json::to_vec(&as_a).unwrap()).cluster("a"),
    )
    .await;
    assert_eq!(status, 200);
    let record: CommandRecord = json(&send(&m, get(&format!("/api/v2/commands/{id}"))).await.1);
    assert_eq!(record.status, CommandStatus::Success);
    assert_eq!(record.result.unwrap().output, "pong");
    // An unknown command id.
    let mut unknown = as_a;
    unknown.command_id = "nope".into();
    let (status, _) = send(
        &m,
        post("/agent/result", serde_json::to_vec(&unknown).unwrap()).cluster("a"),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = send(&m, post("/agent/result", b"{}".to_vec()).cluster("a")).await;
    assert_eq!(status, 400, "command_id is required");
}

/// A fake agent inside the test: polls through the router and answers built-in queries from a
/// snapshot, the way the real agent answers from its NodeTable.
fn spawn_answering_agent(
    m: &Master,
    cluster: &'static str,
    fail: bool,
) -> tokio::task::JoinHandle<()> {
    let m = m.clone();
    tokio::spawn(async move {
        for _ in 0..4 {
            let (_, body) = send(&m, get(&format!("/agent/commands?cluster_id={cluster}"))).await;
            let Some(command) = json::<CommandPoll>(&body).command else {
                continue;
            };
            let at = Utc::now();
            let output = match command.action.as_str() {
                "node_detail" => {
                    serde_json::to_string(&atlhyper_testkit::node(&command.target_name, at, 0.5))
                        .unwrap()
                }
                "node_series" => {
                    assert_eq!(command.params["minutes"], 15);
                    let points: Vec<MetricsDataPoint> = (0..3)
                        .map(|i| MetricsDataPoint {
                            timestamp: at - chrono::Duration::seconds(5 * i),
                            node_name: command.target_name.clone(),
                            cpu_usage: 12.5,
                            ..Default::default()
                        })
                        .collect();
                    serde_json::to_string(&points).unwrap()
                }
                _ => "pong".to_owned(),
            };
            let result = CommandResult {
                cluster_id: cluster.into(),
                command_id: command.id,
                success: !fail,
                output: if fail { String::new() } else { output },
                error: if fail {
                    "disk on fire".into()
                } else {
                    String::new()
                },
                exec_time_ms: 1,
            };
            let (status, _) = send(
                &m,
                post("/agent/result", serde_json::to_vec(&result).unwrap()).cluster(cluster),
            )
            .await;
            assert_eq!(status, 200);
        }
    })
}

#[tokio::test]
async fn observe_detail_goes_through_the_agent() {
    let (m, _) = setup(MasterConfig::default());
    push(&m, &atlhyper_testkit::cluster("c1", 2, 1, Utc::now())).await;
    let agent = spawn_answering_agent(&m, "c1", false);
    let (status, body) = send(
        &m,
        get("/api/v2/observe/metrics/nodes/node-001?cluster_id=c1&format=v2"),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let v: Value = json(&body);
    assert_eq!(v["data"]["node_name"], "node-001");
    assert_eq!(v["data"]["cpu"]["usage_percent"], 50.0);
    let (status, body) = send(
        &m,
        get("/api/v2/observe/metrics/nodes/node-001/series?cluster_id=c1&format=v2&minutes=15"),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let v: Value = json(&body);
    assert_eq!(v["data"].as_array().unwrap().len(), 3);
    assert_eq!(v["data"][0]["cpu_usage"], 12.5);
    agent.abort();

    // Unknown node or cluster: 404 without bothering the agent; bad range: 400.
    let (status, _) = send(
        &m,
        get("/api/v2/observe/metrics/nodes/zz?cluster_id=c1&format=v2"),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = send(
        &m,
        get("/api/v2/observe/metrics/nodes/node-001?cluster_id=zz&format=v2"),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = send(&m, get("/api/v2/observe/metrics/nodes/node-001")).await;
    assert_eq!(status, 400);
    let (status, _) = send(
        &m,
        get("/api/v2/observe/metrics/nodes/node-001/series?cluster_id=c1&format=v2&minutes=abc"),
    )
    .await;
    assert_eq!(status, 400);
    let pending: Vec<CommandRecord> =
        json(&send(&m, get("/api/v2/commands?status=pending")).await.1);
    assert!(pending.is_empty(), "rejected requests queued nothing");
}

#[tokio::test]
async fn observe_detail_failure_is_502() {
    let (m, _) = setup(MasterConfig::default());
    push(&m, &atlhyper_testkit::cluster("c1", 1, 1, Utc::now())).await;
    let agent = spawn_answering_agent(&m, "c1", true);
    let (status, body) = send(
        &m,
        get("/api/v2/observe/metrics/nodes/node-000?cluster_id=c1&format=v2"),
    )
    .await;
    assert_eq!(status, 502);
    assert!(error_of(&body).contains("disk on fire"));
    agent.abort();
}

#[tokio::test(start_paused = true)]
async fn observe_detail_times_out_with_504() {
    let config = MasterConfig {
        detail_timeout: Duration::from_secs(3),
        ..MasterConfig::default()
    };
    let (m, _) = setup(config);
    push(&m, &atlhyper_testkit::cluster("c1", 1, 1, Utc::now())).await;
    let before = tokio::time::Instant::now();
    let (status, body) = send(
        &m,
        get("/api/v2/observe/metrics/nodes/node-000?cluster_id=c1&format=v2"),
    )
    .await;
    assert_eq!(status, 504);
    assert!(error_of(&body).contains("did not answer"));
    let waited = before.elapsed();
    assert!(
        waited >= Duration::from_secs(3) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    let (status, _) = send(
        &m,
        get("/api/v2/observe/metrics/nodes/node-000/series?cluster_id=c1&format=v2"),
    )
    .await;
    assert_eq!(status, 504);
}

#[tokio::test]
async fn heartbeat_marks_the_agent_online() {
    let (m, _) = setup(MasterConfig::default());
    let hb = serde_json::to_vec(&json!({"cluster_id": "c9", "timestamp": Utc::now(),
        "agent_version": "1.2.3"}))
    .unwrap();
    let (status, body) = send(&m, post("/agent/heartbeat", hb)).await;
    assert_eq!(status, 200);
    assert_eq!(json::<StatusBody>(&body).status, "ok");
    let clusters: Vec<ClusterInfo> = json(&send(&m, get("/api/v2/clusters?format=v2")).await.1);
    assert_eq!(clusters[0].cluster_id, "c9");
    assert_eq!(clusters[0].status, "online");
    assert_eq!(clusters[0].node_count, 0);
    let agents: Vec<AgentStatus> = json(&send(&m, get("/api/v2/agents")).await.1);
    assert_eq!(agents[0].agent_version, "1.2.3");
    assert_eq!(
        send(
            &m,
            post("/agent/heartbeat", b"\"x\"".to_vec()).cluster("c9")
        )
        .await
        .0,
        400
    );
    assert_eq!(
        send(&m, post("/agent/heartbeat", b"{}".to_vec())).await.0,
        400
    );
}

#[tokio::test]
async fn prometheus_exposition_parses() {
    let (m, _) = setup(MasterConfig::default());
    push(&m, &atlhyper_testkit::cluster("c1", 2, 1, Utc::now())).await;
    let mut odd = atlhyper_testkit::cluster("we\"ird", 1, 1, Utc::now());
    odd.cluster_id = "we.ird-1".into();
    push(&m, &odd).await;
    let (status, body) = send(&m, get("/metrics")).await;
    assert_eq!(status, 200);
    let text = String::from_utf8(body.to_vec()).unwrap();
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid exposition");
    let find = |name: &str, cluster: &str, node: &str| {
        scrape
            .samples
            .iter()
            .find(|s| {
                s.metric == name
                    && s.labels.get("cluster") == Some(cluster)
                    && s.labels.get("node") == Some(node)
            })
            .map(|s| match s.value {
                prometheus_parse::Value::Gauge(v) => v,
                ref other => panic!("{name} is not a gauge: {other:?}"),
            })
    };
    let node: ClusterNodeMetrics = json(&send(&m, get("/api/v2/clusters/c1/node-metrics")).await.1);
    let n1 = &node.nodes[1];
    assert_eq!(
        find("atlhyper_node_cpu_usage_percent", "c1", "node-001"),
        Some(n1.cpu.usage_percent)
    );
    assert_eq!(
        find("atlhyper_node_memory_used_bytes", "c1", "node-001"),
        Some(n1.memory.used as f64)
    );
    assert_eq!(
        find("atlhyper_node_disk_usage_percent", "c1", "node-001"),
        Some(40.0)
    );
    assert_eq!(
        find(
            "atlhyper_node_network_receive_bytes_per_second",
            "c1",
            "node-001"
        ),
        Some(n1.totals.as_ref().unwrap().network_rx_rate)
    );
    assert_eq!(
        find("atlhyper_node_cpu_temperature_celsius", "c1", "node-001"),
        Some(n1.temperature.cpu_temp)
    );
    assert_eq!(find("atlhyper_node_up", "we.ird-1", "node-000"), Some(1.0));
    let fs = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "atlhyper_node_filesystem_usage_percent")
        .count();
    assert_eq!(fs, 3 * 2, "two filesystems per node");
    let accepted = scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == "atlhyper_master_snapshots_total"
                && s.labels.get("result") == Some("accepted")
        })
        .expect("ingest counter");
    assert!(matches!(accepted.value, prometheus_parse::Value::Counter(v) if v == 2.0));
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "atlhyper_master_snapshot_ingest_seconds")
    );
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "atlhyper_master_store_errors_total")
    );
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "atlhyper_master_snapshot_bytes_total"
                && s.labels.get("kind") == Some("decompressed")),
    );
}

#[tokio::test]
async fn observe_queries_never_cross_clusters() {
    let config = MasterConfig {
        long_poll_timeout: Duration::from_millis(200),
        ..MasterConfig::default()
    };
    let (m, _) = setup(config);
    push(&m, &atlhyper_testkit::cluster("a", 1, 1, Utc::now())).await;
    push(&m, &atlhyper_testkit::cluster("b", 1, 1, Utc::now())).await;
    let request = {
        let m = m.clone();
        tokio::spawn(async move {
            send(
                &m,
                get("/api/v2/observe/metrics/nodes/node-000?cluster_id=a&format=v2"),
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    // b's poll answers empty: a's query is not offered to b.
    let (_, body) = send(&m, get("/agent/commands?cluster_id=b")).await;
    assert!(!json::<CommandPoll>(&body).has_command);
    let (_, body) = send(&m, get("/agent/commands?cluster_id=a")).await;
    let command = json::<CommandPoll>(&body).command.expect("a's query");
    assert_eq!(command.action, "node_detail");
    assert_eq!(command.target_name, "node-000");
    let answer = |cluster: &str| {
        let result = CommandResult {
            cluster_id: cluster.into(),
            command_id: command.id.clone(),
            success: true,
            output: serde_json::to_string(&atlhyper_testkit::node("node-000", Utc::now(), 0.75))
                .unwrap(),
            ..Default::default()
        };
        post("/agent/result", serde_json::to_vec(&result).unwrap()).cluster(cluster)
    };
    // b cannot answer it: 404, and the request keeps waiting for a.
    assert_eq!(send(&m, answer("b")).await.0, 404);
    assert!(!request.is_finished());
    assert_eq!(send(&m, answer("a")).await.0, 200);
    let (status, body) = request.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(json::<Value>(&body)["data"]["cpu"]["usage_percent"], 75.0);
    // Answered once: a second answer is unknown.
    assert_eq!(send(&m, answer("a")).await.0, 404);
}

#[tokio::test]
async fn large_answers_are_offered_gzip() {
    let (m, _) = setup(MasterConfig::default());
    push(&m, &atlhyper_testkit::cluster("c1", 20, 1, Utc::now())).await;
    let plain = send(&m, get("/api/v2/clusters/c1/node-metrics")).await.1;
    assert!(plain.len() > 16 * 1024);
    let mut gz = None;
    for _ in 0..100 {
        let mut builder = Request::builder().uri("/api/v2/clusters/c1/node-metrics");
        builder = builder.header("accept-encoding", "br, gzip");
        let r = m
            .router()
            .oneshot(builder.body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["vary"], "accept-encoding");
        let gzip = r
            .headers()
            .get("content-encoding")
            .is_some_and(|v| v == "gzip");
        let body = r.into_body().collect().await.unwrap().to_bytes();
        if gzip {
            gz = Some(body);
            break;
        }
        assert_eq!(body, plain, "until compressed, the plain answer");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let gz = gz.expect("compressed within 2 s");
    assert!(
        gz.len() * 4 < plain.len(),
        "{} vs {}",
        gz.len(),
        plain.len()
    );
    let mut inflated = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut inflated).unwrap();
    assert_eq!(inflated, plain);
    // A client that refuses gzip gets plain JSON.
    let r = m
        .router()
        .oneshot(
            Request::builder()
                .uri("/api/v2/clusters/c1/node-metrics")
                .header("accept-encoding", "gzip;q=0")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(r.headers().get("content-encoding").is_none());
}

#[tokio::test]
async fn agent_list_shows_the_latest_contact() {
    let (m, store) = setup(MasterConfig::default());
    push(&m, &atlhyper_testkit::cluster("c1", 1, 1, Utc::now())).await;
    let first: Vec<AgentStatus> = json(&send(&m, get("/api/v2/agents")).await.1);
    tokio::time::sleep(Duration::from_millis(20)).await;
    push(&m, &atlhyper_testkit::cluster("c1", 1, 2, Utc::now())).await;
    let second: Vec<AgentStatus> = json(&send(&m, get("/api/v2/agents")).await.1);
    assert!(second[0].last_snapshot > first[0].last_snapshot);
    assert_eq!(second[0].status, atlhyper_model::AgentState::Online);
    // The registry itself was written once (throttled), with the first contact.
    let stored = atlhyper_store::AgentRegistry::list(&*store, Utc::now(), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(stored[0].last_snapshot, first[0].last_snapshot);
}

/// The samples of one series name in an exposition, as `(labels, value)`.
fn samples(text: &str, name: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, labels) = series.split_once('{').unwrap_or((series, ""));
            let labels = labels.trim_end_matches('}').to_owned();
            (metric == name).then(|| (labels, value.parse().expect("a number")))
        })
        .collect()
}

/// Every series of a node in an exposition (`metric{labels}` lines naming it).
fn node_series(text: &str, cluster: &str, node: &str) -> Vec<String> {
    let labels = format!("cluster=\"{cluster}\",node=\"{node}\"");
    text.lines()
        .filter(|l| !l.starts_with('#') && l.contains(&labels))
        .map(|l| l.split(['{', ' ']).next().unwrap().to_owned())
        .collect()
}

async fn exposition(m: &Master) -> String {
    String::from_utf8(body_of(m, "/metrics").await.to_vec()).unwrap()
}

fn offline_after_config(offline_after: Duration) -> MasterConfig {
    MasterConfig {
        agent_offline_after: offline_after,
        ..MasterConfig::default()
    }
}

/// Issue #12 item 3: past MASTER_AGENT_OFFLINE_AFTER of agent silence, every view counts every
/// node of the cluster offline, and /metrics exports none of their figures.
#[tokio::test(start_paused = true)]
async fn a_silent_agent_makes_every_node_offline_in_every_view() {
    let (m, _) = setup(offline_after_config(Duration::from_secs(30)));
    push(&m, &atlhyper_testkit::cluster("c1", 3, 1, Utc::now())).await;
    push(&m, &atlhyper_testkit::cluster("c2", 1, 1, Utc::now())).await;
    let metrics: ClusterNodeMetrics = json(&body_of(&m, "/api/v2/clusters/c1/node-metrics").await);
    assert_eq!(metrics.summary.online_nodes, 3);
    let text = exposition(&m).await;
    assert_eq!(
        samples(&text, "atlhyper_cluster_up"),
        [
            ("cluster=\"c1\"".to_owned(), 1.0),
            ("cluster=\"c2\"".to_owned(), 1.0)
        ]
    );
    assert!(
        node_series(&text, "c1", "node-001")
            .contains(&"atlhyper_node_cpu_usage_percent".to_owned())
    );

    tokio::time::advance(Duration::from_secs(20)).await;
    // c2's agent keeps heartbeating; c1's goes silent.
    let hb = serde_json::to_vec(&json!({"cluster_id": "c2", "timestamp": Utc::now()})).unwrap();
    assert_eq!(
        send(&m, post("/agent/heartbeat", hb).cluster("c2")).await.0,
        200
    );
    tokio::time::advance(Duration::from_secs(11)).await;

    // The node list: summary and node_status.
    for path in [
        "/api/v2/clusters/c1/node-metrics",
        "/api/v2/clusters/c1/node-metrics?view=overview",
    ] {
        let metrics: ClusterNodeMetrics = json(&body_of(&m, path).await);
        assert_eq!(metrics.summary.online_nodes, 0, "{path}");
        assert_eq!(metrics.summary.offline_nodes, 3, "{path}");
        assert_eq!(metrics.summary.max_cpu_usage, 0.0, "{path}");
        assert_eq!(metrics.nodes.len(), 3, "the last figures stay readable");
        assert_eq!(metrics.node_status.len(), 3, "{path}");
        for (name, st) in &metrics.node_status {
            assert_eq!(
                st.state,
                atlhyper_model::NodeState::Offline,
                "{path} {name}"
            );
            assert_eq!(st.last_seen, metrics.nodes[0].timestamp);
        }
    }
    let c2: ClusterNodeMetrics = json(&body_of(&m, "/api/v2/clusters/c2/node-metrics").await);
    assert_eq!(
        c2.summary.online_nodes, 1,
        "a heartbeating agent keeps its nodes"
    );

    // The observe endpoints.
    let v: Value = json(
        &body_of(
            &m,
            "/api/v2/observe/metrics/summary?cluster_id=c1&format=v2",
        )
        .await,
    );
    assert_eq!(v["data"]["online_nodes"], 0);
    assert_eq!(v["data"]["offline_nodes"], 3);
    let v: Value =
        json(&body_of(&m, "/api/v2/observe/metrics/nodes?cluster_id=c1&format=v2").await);
    assert_eq!(v["data"].as_array().unwrap().len(), 3);
    assert_eq!(v["node_status"]["node-002"]["state"], "offline");
    // Node detail: answered from memory at once (no agent to ask), marked offline.
    let (status, body) = send(
        &m,
        get("/api/v2/observe/metrics/nodes/node-001?cluster_id=c1&format=v2"),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let v: Value = json(&body);
    assert_eq!(v["data"]["node_name"], "node-001");
    assert_eq!(v["status"]["state"], "offline");
    let (status, body) = send(
        &m,
        get("/api/v2/observe/metrics/nodes/node-001/series?cluster_id=c1&format=v2"),
    )
    .await;
    assert_eq!(status, 503);
    assert!(error_of(&body).contains("offline"), "{}", error_of(&body));

    // The cluster list and /metrics.
    let clusters: Vec<ClusterInfo> = json(&body_of(&m, "/api/v2/clusters?format=v2").await);
    assert_eq!(clusters[0].status, "offline");
    assert_eq!(clusters[1].status, "online");
    let agents: Vec<AgentStatus> = json(&body_of(&m, "/api/v2/agents").await);
    assert_eq!(agents[0].status, atlhyper_model::AgentState::Offline);
    let text = exposition(&m).await;
    assert_eq!(
        samples(&text, "atlhyper_cluster_up"),
        [
            ("cluster=\"c1\"".to_owned(), 0.0),
            ("cluster=\"c2\"".to_owned(), 1.0)
        ]
    );
    for node in ["node-000", "node-001", "node-002"] {
        assert_eq!(
            node_series(&text, "c1", node),
            [
                "atlhyper_node_up",
                "atlhyper_node_snapshot_timestamp_seconds"
            ],
            "{node}: no current figure"
        );
    }
    let up = samples(&text, "atlhyper_node_up");
    assert!(up.contains(&("cluster=\"c1\",node=\"node-000\"".to_owned(), 0.0)));
    assert!(up.contains(&("cluster=\"c2\",node=\"node-000\"".to_owned(), 1.0)));
    assert!(node_series(&text, "c2", "node-000").len() > 10);
    assert_eq!(samples(&text, "atlhyper_master_agents_online")[0].1, 1.0);

    // Heard again: online again.
    let hb = serde_json::to_vec(&json!({"cluster_id": "c1", "timestamp": Utc::now()})).unwrap();
    assert_eq!(
        send(&m, post("/agent/heartbeat", hb).cluster("c1")).await.0,
        200
    );
    let metrics: ClusterNodeMetrics = json(&body_of(&m, "/api/v2/clusters/c1/node-metrics").await);
    assert_eq!(metrics.summary.online_nodes, 3);
    assert!(node_series(&exposition(&m).await, "c1", "node-000").len() > 10);
}

/// A node its (live) agent reports offline exports `atlhyper_node_up 0` and no figure.
#[tokio::test]
async fn metrics_export_no_figure_of_a_node_its_agent_reports_offline() {
    let (m, _) = setup(MasterConfig::default());
    let now = Utc::now();
    let mut snapshot = atlhyper_testkit::cluster("c1", 2, 1, now);
    snapshot.node_status.insert(
        "node-001".into(),
        atlhyper_model::NodeStatus {
            state: atlhyper_model::NodeState::Offline,
            last_seen: now - chrono::Duration::seconds(30),
        },
    );
    push(&m, &snapshot).await;
    let text = exposition(&m).await;
    assert_eq!(
        node_series(&text, "c1", "node-001"),
        [
            "atlhyper_node_up",
            "atlhyper_node_snapshot_timestamp_seconds"
        ]
    );
    assert!(
        samples(&text, "atlhyper_node_up")
            .contains(&("cluster=\"c1\",node=\"node-001\"".to_owned(), 0.0))
    );
    assert!(
        node_series(&text, "c1", "node-000")
            .iter()
            .any(|s| s == "atlhyper_node_cpu_usage_percent")
    );
    assert!(
        !samples(&text, "atlhyper_node_filesystem_usage_percent")
            .iter()
            .any(|(l, _)| l.contains("node-001"))
    );
    let v: Value =
        json(&body_of(&m, "/api/v2/observe/metrics/nodes?cluster_id=c1&format=v2").await);
    assert_eq!(v["node_status"]["node-001"]["state"], "offline");
}

/// After a restart, the nodes restored from the store are offline (no figures) until their
/// agent's next snapshot, even when their last report is recent.
#[tokio::test]
async fn restored_nodes_are_offline_until_their_agent_reports() {
    let store = Arc::new(MemoryStore::new());
    let first = Master::new(
        MasterConfig::default(),
        store.clone(),
        store.clone(),
        store.clone(),
    );
    push(&first, &atlhyper_testkit::cluster("c1", 2, 1, Utc::now())).await;
    drop(first);

    let m = Master::new(
        MasterConfig::default(),
        store.clone(),
        store.clone(),
        store.clone(),
    );
    m.restore().await.unwrap();
    let metrics: ClusterNodeMetrics = json(&body_of(&m, "/api/v2/clusters/c1/node-metrics").await);
    assert_eq!(metrics.nodes.len(), 2);
    assert_eq!(metrics.summary.online_nodes, 0);
    assert_eq!(metrics.summary.offline_nodes, 2);
    let text = exposition(&m).await;
    assert_eq!(
        node_series(&text, "c1", "node-000"),
        [
            "atlhyper_node_up",
            "atlhyper_node_snapshot_timestamp_seconds"
        ]
    );
    push(&m, &atlhyper_testkit::cluster("c1", 2, 2, Utc::now())).await;
    let metrics: ClusterNodeMetrics = json(&body_of(&m, "/api/v2/clusters/c1/node-metrics").await);
    assert_eq!(metrics.summary.online_nodes, 2);
}

fn delete(path: &str) -> Req {
    Req {
        method: "DELETE",
        path: path.to_owned(),
        headers: Vec::new(),
        body: Vec::new(),
    }
}

/// Issue #12 item 5: DELETE a node and a cluster (operator): gone from every view and from the
/// latest state, history kept, not back after a restart, back when they report again.
#[tokio::test]
async fn delete_node_and_cluster() {
    let (m, store) = setup(tokens_config());
    let now = Utc::now();
    let snapshot_a = atlhyper_testkit::cluster("a", 3, 1, now);
    let send_a = |s: &ClusterSnapshot| snapshot_req(s).bearer("agent-a");
    assert_eq!(send(&m, send_a(&snapshot_a)).await.0, 200);
    assert_eq!(
        send(
            &m,
            snapshot_req(&atlhyper_testkit::cluster("b", 1, 1, now)).bearer("agent-b")
        )
        .await
        .0,
        200
    );

    // Operator only; unknown is 404; a bad id is 400.
    let (status, _) = send(&m, delete("/api/v2/clusters/a/nodes/node-001")).await;
    assert_eq!(status, 401);
    let (status, _) = send(
        &m,
        delete("/api/v2/clusters/a/nodes/node-001").bearer("viewer"),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = send(&m, delete("/api/v2/clusters/a").bearer("viewer")).await;
    assert_eq!(status, 403);
    let (status, body) = send(
        &m,
        delete("/api/v2/clusters/a/nodes/nope").bearer("operator"),
    )
    .await;
    assert_eq!(status, 404);
    assert!(error_of(&body).contains("nope"));
    let (status, _) = send(&m, delete("/api/v2/clusters/zz").bearer("operator")).await;
    assert_eq!(status, 404);
    let (status, _) = send(
        &m,
        delete("/api/v2/clusters/zz/nodes/node-001").bearer("operator"),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = send(&m, delete("/api/v2/clusters/a%20b").bearer("operator")).await;
    assert_eq!(status, 400);

    // The node.
    let (status, body) = send(
        &m,
        delete("/api/v2/clusters/a/nodes/node-001").bearer("operator"),
    )
    .await;
    assert_eq!(status, 204);
    assert!(body.is_empty());
    let view = |m: &Master| {
        let m = m.clone();
        async move {
            let (status, body) =
                send(&m, get("/api/v2/clusters/a/node-metrics").bearer("viewer")).await;
            (status, body)
        }
    };
    let (_, body) = view(&m).await;
    let metrics: ClusterNodeMetrics = json(&body);
    let names: Vec<&str> = metrics.nodes.iter().map(|n| n.node_name.as_str()).collect();
    assert_eq!(names, ["node-000", "node-002"]);
    assert_eq!(metrics.summary.total_nodes, 2);
    assert_eq!(
        send(
            &m,
            get("/api/v2/clusters/a/node-metrics/node-001").bearer("viewer")
        )
        .await
        .0,
        404
    );
    assert!(
        !exposition_with(&m, "viewer")
            .await
            .contains("node=\"node-001\"")
    );
    assert_eq!(store.get_latest("a", "node-001").await.unwrap(), None);
    let (status, body) = send(
        &m,
        get("/api/v2/clusters/a/node-metrics/node-001/history?hours=1").bearer("viewer"),
    )
    .await;
    assert_eq!(status, 200, "history stays");
    assert_eq!(json::<NodeHistory>(&body).data.len(), 1);
    let (status, _) = send(
        &m,
        delete("/api/v2/clusters/a/nodes/node-001").bearer("operator"),
    )
    .await;
    assert_eq!(status, 404, "already gone");

    // The agent still lists it, offline: it stays out. Reporting again (online) brings it back.
    let mut again = atlhyper_testkit::cluster("a", 3, 2, now + chrono::Duration::seconds(1));
    again.node_status.insert(
        "node-001".into(),
        atlhyper_model::NodeStatus {
            state: atlhyper_model::NodeState::Offline,
            last_seen: now,
        },
    );
    assert_eq!(send(&m, send_a(&again)).await.0, 200);
    let metrics: ClusterNodeMetrics = json(&view(&m).await.1);
    assert_eq!(metrics.nodes.len(), 2, "an offline node does not come back");
    assert_eq!(store.get_latest("a", "node-001").await.unwrap(), None);
    again.seq = 3;
    again.node_status.clear();
    assert_eq!(send(&m, send_a(&again)).await.0, 200);
    let metrics: ClusterNodeMetrics = json(&view(&m).await.1);
    assert_eq!(metrics.nodes.len(), 3, "reporting again, it is back");
    assert!(store.get_latest("a", "node-001").await.unwrap().is_some());

    // The cluster.
    let (status, body) = send(&m, delete("/api/v2/clusters/a").bearer("operator")).await;
    assert_eq!(status, 204);
    assert!(body.is_empty());
    let clusters: Vec<ClusterInfo> = json(
        &send(&m, get("/api/v2/clusters?format=v2").bearer("viewer"))
            .await
            .1,
    );
    let ids: Vec<&str> = clusters.iter().map(|c| c.cluster_id.as_str()).collect();
    assert_eq!(ids, ["b"]);
    assert_eq!(view(&m).await.0, 404);
    let agents: Vec<AgentStatus> = json(&send(&m, get("/api/v2/agents").bearer("viewer")).await.1);
    assert_eq!(agents.len(), 1);
    assert!(store.list_latest("a").await.unwrap().is_empty());
    let text = exposition_with(&m, "viewer").await;
    assert!(!text.contains("cluster=\"a\""), "{text}");
    let (status, _) = send(
        &m,
        get("/api/v2/clusters/a/node-metrics/node-000/history?hours=1").bearer("viewer"),
    )
    .await;
    assert_eq!(status, 200, "history stays");
    let (status, _) = send(&m, delete("/api/v2/clusters/a").bearer("operator")).await;
    assert_eq!(status, 404, "already gone");

    // A restart does not bring it back.
    let restarted = Master::new(tokens_config(), store.clone(), store.clone(), store.clone());
    restarted.restore().await.unwrap();
    let clusters: Vec<ClusterInfo> = json(
        &send(
            &restarted,
            get("/api/v2/clusters?format=v2").bearer("viewer"),
        )
        .await
        .1,
    );
    assert_eq!(clusters.len(), 1);
    assert_eq!(clusters[0].cluster_id, "b");

    // Its agent pushing again brings it back, as a Prometheus target would be.
    again.seq = 4;
    assert_eq!(send(&restarted, send_a(&again)).await.0, 200);
    let clusters: Vec<ClusterInfo> = json(
        &send(
            &restarted,
            get("/api/v2/clusters?format=v2").bearer("viewer"),
        )
        .await
        .1,
    );
    assert_eq!(clusters.len(), 2);
}

async fn exposition_with(m: &Master, token: &str) -> String {
    let (status, body) = send(m, get("/metrics").bearer(token)).await;
    assert_eq!(status, 200);
    String::from_utf8(body.to_vec()).unwrap()
}

/// Nodes whose latest snapshot is older than MASTER_NODE_RETIRE_AFTER leave the latest state at
/// start (and at each prune); the others stay, history too.
#[tokio::test]
async fn silent_nodes_retire_from_the_latest_state() {
    let store = Arc::new(MemoryStore::new());
    let config = MasterConfig {
        node_retire_after: Duration::from_secs(3600),
        ..MasterConfig::default()
    };
    let now = Utc::now();
    let first = Master::new(config.clone(), store.clone(), store.clone(), store.clone());
    let mut snapshot = atlhyper_testkit::cluster("c1", 2, 1, now);
    let old = snapshot.node_metrics.get_mut("node-001").unwrap();
    old.timestamp = now - chrono::Duration::hours(2);
    push(&first, &snapshot).await;
    assert_eq!(store.list_latest("c1").await.unwrap().len(), 2);

    let m = Master::new(config, store.clone(), store.clone(), store.clone());
    m.restore().await.unwrap();
    let names: Vec<String> = store
        .list_latest("c1")
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.node_name)
        .collect();
    assert_eq!(names, ["node-000"]);
    let metrics: ClusterNodeMetrics = json(&body_of(&m, "/api/v2/clusters/c1/node-metrics").await);
    assert_eq!(metrics.nodes.len(), 1);
    assert_eq!(metrics.nodes[0].node_name, "node-000");
    assert_eq!(
        store.list_nodes("c1").await.unwrap(),
        ["node-000", "node-001"],
        "history stays"
    );
    assert_eq!(
        samples(&exposition(&m).await, "atlhyper_master_nodes_retired_total")[0].1,
        1.0
    );
}

/// The value of the series `name{labels}` in an exposition (read by [`samples`]).
fn sample(text: &str, name: &str, labels: &str) -> Option<f64> {
    samples(text, name)
        .into_iter()
        .find_map(|(l, v)| (l == labels).then_some(v))
}

#[tokio::test]
async fn nodes_refused_alone_are_counted_per_reason_from_the_start() {
    let config = MasterConfig {
        max_nodes_per_cluster: 2,
        ..MasterConfig::default()
    };
    let (m, store) = setup(config);
    let text = String::from_utf8(body_of(&m, "/metrics").await.to_vec()).unwrap();
    for reason in atlhyper_model::RejectReason::ALL {
        let labels = format!("reason=\"{}\"", reason.as_str());
        assert_eq!(
            sample(&text, "atlhyper_master_nodes_rejected_total", &labels),
            Some(0.0),
            "{labels}"
        );
    }
    // Three good nodes against a cap of two, one bad name, one node with too long a host name.
    let mut s = atlhyper_testkit::cluster("c1", 3, 1, Utc::now());
    let mut bad = s.node_metrics["node-000"].clone();
    bad.hostname = "h".repeat(5000);
    s.node_metrics.insert("node-000a".into(), bad);
    let junk = s.node_metrics["node-000"].clone();
    s.node_metrics.insert("Node_X".into(), junk);
    let (status, body) = send(&m, snapshot_req(&s)).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let answer: StatusBody = json(&body);
    let refused: Vec<(&str, &str)> = answer
        .rejected
        .iter()
        .map(|r| (r.node_name.as_str(), r.reason.as_str()))
        .collect();
    assert_eq!(
        refused,
        [
            ("Node_X", "invalid_name"),
            ("node-000a", "string_too_long"),
            ("node-002", "too_many_nodes"),
        ]
    );
    let stored: Vec<String> = store
        .list_latest("c1")
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.node_name)
        .collect();
    assert_eq!(stored, ["node-000", "node-001"]);
    // The held nodes keep being accepted at the cap; the new one still is not.
    let (_, body) = send(
        &m,
        snapshot_req(&atlhyper_testkit::cluster("c1", 3, 2, Utc::now())),
    )
    .await;
    let answer: StatusBody = json(&body);
    assert_eq!(answer.rejected.len(), 1);
    assert_eq!(answer.rejected[0].node_name, "node-002");
    let text = String::from_utf8(body_of(&m, "/metrics").await.to_vec()).unwrap();
    let count = |r: &str| {
        sample(
            &text,
            "atlhyper_master_nodes_rejected_total",
            &format!("reason=\"{r}\""),
        )
    };
    assert_eq!(count("invalid_name"), Some(1.0));
    assert_eq!(count("string_too_long"), Some(1.0));
    assert_eq!(count("too_many_nodes"), Some(2.0));
    assert_eq!(count("list_too_long"), Some(0.0));
}

#[tokio::test]
async fn a_body_that_would_not_fit_in_memory_is_refused_before_parsing() {
    // Budget: 4 x 64 KiB = 256 KiB once parsed.
    let config = MasterConfig {
        snapshot_decompressed_limit: 64 * 1024,
        ..MasterConfig::default()
    };
    let (m, _) = setup(config);
    // 20,000 empty networks: 60 KB of JSON, 5.7 MB once parsed.
    let networks = vec!["{}"; 20_000].join(",");
    let body = format!(
        r#"{{"cluster_id":"c1","node_metrics":{{"n1":{{"node_name":"n1","networks":[{networks}]}}}}}}"#
    );
    assert!(body.len() < 64 * 1024);
    let (status, answer) = send(
        &m,
        post("/agent/snapshot", atlhyper_testkit::gzip(body.as_bytes()))
            .header("content-encoding", "gzip")
            .cluster("c1"),
    )
    .await;
    assert_eq!(status, 413, "{}", String::from_utf8_lossy(&answer));
    assert!(
        error_of(&answer).contains("memory"),
        "{}",
        error_of(&answer)
    );
    // The same node with 600 networks (170 KiB once parsed) fits and is stored.
    let networks = vec!["{}"; 600].join(",");
    let body = format!(
        r#"{{"cluster_id":"c1","node_metrics":{{"n1":{{"node_name":"n1","networks":[{networks}]}}}}}}"#
    );
    let (status, _) = send(&m, post("/agent/snapshot", body).cluster("c1")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn an_agent_clock_far_ahead_does_not_make_later_snapshots_duplicates() {
    let (m, store) = setup(MasterConfig::default());
    // A v2 agent (no seq) whose clock once said 2300.
    let mut s = atlhyper_testkit::cluster("c1", 1, 0, Utc::now());
    s.timestamp = chrono::TimeZone::with_ymd_and_hms(&Utc, 2300, 1, 1, 0, 0, 0).unwrap();
    assert_eq!(push(&m, &s).await, "ok");
    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut later = atlhyper_testkit::cluster("c1", 1, 0, Utc::now());
    later.node_metrics.get_mut("node-000").unwrap().uptime = 777;
    assert_eq!(
        push(&m, &later).await,
        "ok",
        "not a duplicate of the 2300 one"
    );
    let latest = store.get_latest("c1", "node-000").await.unwrap().unwrap();
    assert_eq!(latest.uptime, 777);
}
