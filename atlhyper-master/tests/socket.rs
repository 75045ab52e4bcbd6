//! Real sockets on 127.0.0.1 port 0: the master with a fake agent, the whole chain
//! collector -> agent -> master -> API with the real atlhyper-agent, the restart test over SQLite,
//! and the loopback rule.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use atlhyper_agent::{AgentConfig, DaemonConfig, NodeTable, run_daemon, serve_agent};
use atlhyper_master::{Master, MasterConfig, MasterError, run_master};
use atlhyper_model::{
    ClusterNodeMetrics, CommandPoll, CommandRecord, CommandResult, CommandStatus, NodeHistory,
};
use atlhyper_store::{MemoryStore, SqliteStore};
use chrono::Utc;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), MasterError>>,
}

impl Running {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the master stops within 10 s")
            .expect("no panic")
            .expect("clean shutdown");
    }
}

async fn start(master: Master) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(run_master(master, listener, async move {
        let _ = stopped.await;
    }));
    Running {
        addr,
        stop: Some(stop),
        task,
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(40))
        .build()
        .unwrap()
}

async fn post_snapshot(http: &reqwest::Client, m: &Running, s: &atlhyper_model::ClusterSnapshot) {
    let r = http
        .post(m.url("/agent/snapshot"))
        .header("x-cluster-id", &s.cluster_id)
        // As the agent sends it; an open master refuses writes that do not say JSON (415).
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(atlhyper_testkit::gzip(&serde_json::to_vec(s).unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Polls and answers `count` commands over HTTP, like an agent's command loop.
fn fake_agent(
    http: reqwest::Client,
    base: String,
    cluster: &'static str,
    count: usize,
) -> JoinHandle<usize> {
    tokio::spawn(async move {
        let mut answered = 0;
        for _ in 0..count * 4 {
            if answered == count {
                break;
            }
            let r = http
                .get(format!(
                    "{base}/agent/commands?cluster_id={cluster}&topic=metrics"
                ))
                .send()
                .await
                .unwrap();
            let poll: CommandPoll = r.json().await.unwrap();
            let Some(c) = poll.command else { continue };
            let output = match c.action.as_str() {
                "node_detail" => {
                    serde_json::to_string(&atlhyper_testkit::node(&c.target_name, Utc::now(), 0.25))
                        .unwrap()
                }
                _ => "pong".to_owned(),
            };
            let result = CommandResult {
                cluster_id: cluster.to_owned(),
                command_id: c.id,
                success: true,
                output,
                error: String::new(),
                exec_time_ms: 0,
            };
            let r = http
                .post(format!("{base}/agent/result"))
                .header("x-cluster-id", cluster)
                .json(&result)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            answered += 1;
        }
        answered
    })
}

#[tokio::test]
async fn fake_agent_over_sockets_and_graceful_shutdown() {
    let store = Arc::new(MemoryStore::new());
    let master = Master::new(MasterConfig::default(), store.clone(), store.clone(), store);
    let m = start(master).await;
    let http = client();
    post_snapshot(
        &http,
        &m,
        &atlhyper_testkit::cluster("c1", 3, 1, Utc::now()),
    )
    .await;
    let agent = fake_agent(http.clone(), m.url(""), "c1", 3);
    for node in ["node-000", "node-001", "node-002"] {
        let r = http
            .get(m.url(&format!(
                "/api/v2/observe/metrics/nodes/{node}?cluster_id=c1"
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["data"]["nodeName"], node);
    }
    assert_eq!(agent.await.unwrap(), 3);
    let metrics: ClusterNodeMetrics = http
        .get(m.url("/api/v2/clusters/c1/node-metrics"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metrics.nodes.len(), 3);

    // A long poll in flight does not hold the shutdown for its 30 s.
    let poll = tokio::spawn({
        let http = http.clone();
        let url = m.url("/agent/commands?cluster_id=c1");
        async move { http.get(url).send().await.map(|r| r.status()) }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    m.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let status = poll.await.unwrap().expect("the poll got an answer");
    assert_eq!(status, 200);
}

#[tokio::test]
async fn open_master_refuses_a_network_address() {
    let store = Arc::new(MemoryStore::new());
    let master = Master::new(MasterConfig::default(), store.clone(), store.clone(), store);
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let err = run_master(master, listener, async {}).await.unwrap_err();
    assert!(matches!(err, MasterError::OpenOnNetwork(_)), "{err}");
}

/// collector of this host -> real agent -> master -> API, all over loopback sockets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_agent_master_api() {
    let store = Arc::new(MemoryStore::new());
    let m = start(Master::new(
        MasterConfig::default(),
        store.clone(),
        store.clone(),
        store,
    ))
    .await;

    let agent_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let agent_addr = agent_listener.local_addr().unwrap();
    let agent_config = AgentConfig {
        listen: agent_addr,
        cluster_id: "local".into(),
        master_url: m.url(""),
        snapshot_interval: Duration::from_millis(300),
        heartbeat_interval: Duration::from_millis(500),
        node_interval: Duration::from_millis(200),
        ..AgentConfig::default()
    };
    let (agent_stop, agent_stopped) = oneshot::channel::<()>();
    let agent = tokio::spawn(serve_agent(
        agent_listener,
        agent_config.clone(),
        Arc::new(NodeTable::new(agent_config.table_config())),
        async move {
            let _ = agent_stopped.await;
        },
    ));
    let mut daemon_config = DaemonConfig::new("this-host");
    daemon_config.agent_addr = format!("http://{agent_addr}");
    daemon_config.interval = Duration::from_millis(200);
    let (daemon_stop, daemon_stopped) = oneshot::channel::<()>();
    let daemon = tokio::spawn(run_daemon(daemon_config, async move {
        let _ = daemon_stopped.await;
    }));

    let http = client();
    let mut found = None;
    for _ in 0..100 {
        let r = http
            .get(m.url("/api/v2/clusters/local/node-metrics/this-host"))
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            let node: atlhyper_model::NodeMetricsSnapshot = r.json().await.unwrap();
            if node.cpu.usage_percent > 0.0 || !node.cpu.per_core.is_empty() {
                found = Some(node);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let node = found.expect("this host's snapshot reached the master within 10 s");
    assert_eq!(node.node_name, "this-host");
    assert!(node.memory.total > 0);
    assert!(node.uptime > 0);

    // Detail and series travel as commands to the real agent.
    let r = http
        .get(m.url("/api/v2/observe/metrics/nodes/this-host?cluster_id=local"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"]["nodeName"], "this-host");
    assert!(v["data"]["memory"]["totalBytes"].as_u64().unwrap() > 0);
    let r = http
        .get(m.url(
            "/api/v2/observe/metrics/nodes/this-host/series?cluster_id=local&minutes=5&metric=memory",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"]["metric"], "memory");
    let points = v["data"]["points"].as_array().unwrap();
    assert!(!points.is_empty());
    assert!(points.iter().all(|p| p["value"].as_f64().unwrap() > 0.0));
    let r = http
        .get(m.url(
            "/api/v2/observe/metrics/nodes/this-host/series?cluster_id=local&minutes=5&format=v2",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert!(!v["data"].as_array().unwrap().is_empty());

    // A generic command through the public API: created, run by the agent, answered.
    let created: Value = http
        .post(m.url("/api/v2/commands"))
        .json(&json!({"cluster_id": "local", "action": "ping"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["command_id"].as_str().unwrap().to_owned();
    let mut record = None;
    for _ in 0..50 {
        let r: CommandRecord = http
            .get(m.url(&format!("/api/v2/commands/{id}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if r.status.is_final() {
            record = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let record = record.expect("ping answered within 2.5 s");
    assert_eq!(record.status, CommandStatus::Success);
    assert_eq!(record.result.unwrap().output, "pong");

    let _ = daemon_stop.send(());
    let _ = agent_stop.send(());
    daemon.await.unwrap().unwrap();
    agent.await.unwrap().unwrap();
    m.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_history_latest_and_pending_commands() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("atlhyper.db");
    let config = MasterConfig {
        history_interval: Duration::from_secs(60),
        ..MasterConfig::default()
    };
    let http = client();
    let t0 = Utc::now() - chrono::Duration::minutes(5);
    let command_id;
    {
        let store = Arc::new(SqliteStore::open(&path).unwrap());
        let m = start(Master::new(
            config.clone(),
            store.clone(),
            store.clone(),
            store,
        ))
        .await;
        // Five minutes of snapshots, one per 30 s: one history point per minute.
        for i in 0..=10 {
            let s = atlhyper_testkit::cluster(
                "c1",
                2,
                i + 1,
                t0 + chrono::Duration::seconds(30 * i as i64),
            );
            post_snapshot(&http, &m, &s).await;
        }
        let created: Value = http
            .post(m.url("/api/v2/commands"))
            .json(&json!({"cluster_id": "c1", "action": "ping", "timeout_secs": 600}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        command_id = created["command_id"].as_str().unwrap().to_owned();
        m.stop().await;
    }
    // The store is closed (every Arc dropped with the master); open it again.
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let m = start(Master::new(config, store.clone(), store.clone(), store)).await;

    let metrics: ClusterNodeMetrics = http
        .get(m.url("/api/v2/clusters/c1/node-metrics"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let expected = atlhyper_testkit::cluster("c1", 2, 11, t0 + chrono::Duration::seconds(300));
    assert_eq!(metrics.nodes.len(), 2);
    assert_eq!(
        metrics.nodes[1], expected.node_metrics["node-001"],
        "latest values kept"
    );

    let history: NodeHistory = http
        .get(m.url("/api/v2/clusters/c1/node-metrics/node-001/history?hours=1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let minutes = |t: chrono::DateTime<Utc>| t.timestamp().div_euclid(60);
    let buckets = minutes(t0 + chrono::Duration::seconds(300)) - minutes(t0) + 1;
    assert_eq!(history.data.len() as i64, buckets, "history kept");

    // A snapshot after the restart in an already sampled minute adds no second point.
    let s = atlhyper_testkit::cluster("c1", 2, 1, t0 + chrono::Duration::seconds(301));
    post_snapshot(&http, &m, &s).await;
    let again: NodeHistory = http
        .get(m.url("/api/v2/clusters/c1/node-metrics/node-001/history?hours=1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again.data.len(), history.data.len());

    let record: CommandRecord = http
        .get(m.url(&format!("/api/v2/commands/{command_id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        record.status,
        CommandStatus::Pending,
        "pending command kept"
    );
    let poll: CommandPoll = http
        .get(m.url("/agent/commands?cluster_id=c1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        poll.command.unwrap().id,
        command_id,
        "and delivered after the restart"
    );
    m.stop().await;
}

#[tokio::test]
async fn background_tasks_prune_history_and_expire_commands() {
    use atlhyper_model::MetricsDataPoint;
    use atlhyper_store::{CommandQueue, HistoryQuery, MetricsStore};

    let store = Arc::new(MemoryStore::new());
    let now = Utc::now();
    let point = |age_hours: i64| MetricsDataPoint {
        timestamp: now - chrono::Duration::hours(age_hours),
        node_name: "node-000".into(),
        cpu_usage: 1.0,
        ..Default::default()
    };
    store
        .append_history("c1", &[point(3), point(2), point(0)])
        .await
        .unwrap();
    let config = MasterConfig {
        retention: Duration::from_secs(3600),
        prune_interval: Duration::from_millis(50),
        expiry_interval: Duration::from_millis(50),
        ..MasterConfig::default()
    };
    let m = start(Master::new(
        config,
        store.clone(),
        store.clone(),
        store.clone(),
    ))
    .await;
    let http = client();
    post_snapshot(&http, &m, &atlhyper_testkit::cluster("c1", 1, 1, now)).await;
    let created: Value = http
        .post(m.url("/api/v2/commands"))
        .json(&json!({"cluster_id": "c1", "action": "ping", "timeout_secs": 1}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["command_id"].as_str().unwrap().to_owned();
    // A command that finished 2 h ago (beyond the 1 h retention) and one still pending from 3 h
    // ago: the prune deletes the first only.
    let old_command = |cid: &str| CommandRecord {
        command_id: cid.to_owned(),
        cluster_id: "c1".into(),
        action: "ping".into(),
        created_at: now - chrono::Duration::hours(3),
        deadline: now + chrono::Duration::hours(1),
        ..Default::default()
    };
    store.enqueue(&old_command("old-done")).await.unwrap();
    let three_h_ago = now - chrono::Duration::hours(3);
    let taken = store
        .take("c1", 1, Duration::from_secs(60), three_h_ago)
        .await
        .unwrap();
    assert_eq!(taken[0].command_id, "old-done");
    store
        .complete(
            &atlhyper_model::CommandResult {
                cluster_id: "c1".into(),
                command_id: "old-done".into(),
                success: true,
                ..Default::default()
            },
            now - chrono::Duration::hours(2),
        )
        .await
        .unwrap();
    store.enqueue(&old_command("old-open")).await.unwrap();

    let query = HistoryQuery {
        cluster_id: "c1".into(),
        node_name: "node-000".into(),
        from: now - chrono::Duration::hours(10),
        to: now + chrono::Duration::hours(1),
        max_points: None,
    };
    let mut pruned = false;
    let mut expired = false;
    for _ in 0..60 {
        if !pruned {
            let points = store.history(&query).await.unwrap();
            pruned = points.len() == 1 && points[0].timestamp == now;
        }
        if !expired {
            let r: CommandRecord = http
                .get(m.url(&format!("/api/v2/commands/{id}")))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            expired = r.status == CommandStatus::Timeout;
        }
        if pruned && expired && store.get("old-done").await.unwrap().is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(pruned, "points older than the retention pruned within 6 s");
    assert!(
        expired,
        "a command past its deadline marked timeout within 6 s"
    );
    assert!(
        store.get("old-done").await.unwrap().is_none(),
        "a command finished before the retention deleted"
    );
    assert_eq!(
        store.get("old-open").await.unwrap().unwrap().status,
        CommandStatus::Pending,
        "an open command stays however old"
    );
    let metrics = http
        .get(m.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("atlhyper_master_commands_pruned_total 1"),
        "{metrics}"
    );
    m.stop().await;
}
