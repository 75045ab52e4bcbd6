//! The whole agent on real sockets: several fake nodes, a fake master that records what it got,
//! commands, an outage with backfill, and shutdown.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use atlhyper_agent::{AGENT_VERSION, AgentConfig, gzip};
use atlhyper_model::{MetricsDataPoint, NodeMetricsSnapshot, NodeState};
use serde_json::{Value, json};
use tokio::net::TcpListener;

fn config(master: std::net::SocketAddr) -> AgentConfig {
    AgentConfig {
        cluster_id: "test-cluster".into(),
        master_url: format!("http://{master}"),
        token: Some("agent-token".into()),
        node_token: Some("node-token".into()),
        snapshot_interval: Duration::from_millis(150),
        heartbeat_interval: Duration::from_millis(150),
        poll_interval: Duration::from_millis(10),
        poll_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(2),
        backoff_base: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
        ..AgentConfig::default()
    }
}

async fn post_node(
    http: &reqwest::Client,
    agent: std::net::SocketAddr,
    body: &Value,
    gzipped: bool,
) -> reqwest::StatusCode {
    let json = body.to_string();
    let mut rb = http
        .post(format!("http://{agent}/metrics/node"))
        .header("Authorization", "Bearer node-token")
        .header("Content-Type", "application/json");
    rb = if gzipped {
        rb.header("Content-Encoding", "gzip")
            .body(gzip(json.as_bytes(), 1))
    } else {
        rb.body(json)
    };
    rb.send().await.unwrap().status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_to_agent_to_master_with_commands_outage_and_backfill() {
    let (master_addr, master) = common::start_master().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let agent_addr = listener.local_addr().unwrap();
    let cfg = config(master_addr);
    let agent = common::spawn_agent(listener, cfg);

    // Timestamps from a minute ago on, `secs` after that.
    let base = chrono::Utc::now() - chrono::Duration::minutes(1);
    let at = move |secs: i64| {
        (base + chrono::Duration::seconds(secs)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    // Five nodes report three snapshots each, concurrently, some gzipped.
    let http = reqwest::Client::new();
    let mut nodes = Vec::new();
    for n in 0..5 {
        let http = http.clone();
        nodes.push(tokio::spawn(async move {
            for i in 0..3 {
                let ts = at(i64::from(i) * 5);
                let body = atlhyper_testkit::v2_node_json(
                    &format!("node-{n}"),
                    &ts,
                    f64::from(n * 10 + i),
                );
                let status = post_node(&http, agent_addr, &body, (n + i) % 2 == 0).await;
                assert_eq!(status, reqwest::StatusCode::OK);
            }
        }));
    }
    for n in nodes {
        n.await.unwrap();
    }
    // A node without the token is refused over the socket too.
    let status = http
        .post(format!("http://{agent_addr}/metrics/node"))
        .body(atlhyper_testkit::v2_node_json("intruder", &at(0), 1.0).to_string())
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, reqwest::StatusCode::UNAUTHORIZED);

    // The master gets a snapshot holding all five nodes at their last values (a push can go out
    // while the nodes are still reporting, so wait for one built after the last of them).
    assert!(
        atlhyper_testkit::wait_for(Duration::from_secs(10), || {
            master.recorded.lock().snapshots.last().is_some_and(|s| {
                s.node_metrics.len() == 5
                    && (0..5).all(|n| {
                        s.node_metrics
                            .get(&format!("node-{n}"))
                            .is_some_and(|m| m.cpu.usage_percent == f64::from(n * 10 + 2))
                    })
            })
        })
        .await,
        "master never saw all five nodes at their last values"
    );
    {
        let r = master.recorded.lock();
        let last = r.snapshots.last().unwrap();
        assert_eq!(last.cluster_id, "test-cluster");
        assert_eq!(last.agent_version, AGENT_VERSION);
        assert!(last.node_metrics.contains_key("node-3"));
        assert!(!last.node_metrics.contains_key("intruder"));
        assert_eq!(last.node_status["node-4"].state, NodeState::Online);
        assert_eq!(last.node_metrics["node-2"].cpu.usage_percent, 22.0);
        // Node bodies travel exactly as the nodes sent them (v2 shape, nulls and all).
        let json = r.snapshot_json.last().unwrap();
        assert_eq!(
            json["node_metrics"]["node-1"],
            atlhyper_testkit::v2_node_json("node-1", &at(10), 12.0)
        );
        // seq strictly increases, headers carry the cluster and the token.
        assert!(r.snapshots.windows(2).all(|w| w[0].seq < w[1].seq));
        assert!(r.snapshots.iter().all(|s| s.seq > 0));
        assert!(
            r.snapshot_headers
                .iter()
                .all(|(c, a)| c == "test-cluster" && a == "Bearer agent-token")
        );
        assert!(!r.heartbeats.is_empty());
        assert_eq!(r.heartbeats[0].cluster_id, "test-cluster");
        assert_eq!(r.polls[0], ("test-cluster".to_owned(), "ops".to_owned()));
    }

    // Commands: queued together, answered without waiting a poll interval each.
    master.queue("c-ping", "ping", "", json!({}));
    master.queue("c-list", "list_nodes", "", json!({}));
    master.queue("c-detail", "node_detail", "node-0", json!({}));
    master.queue("c-series", "node_series", "node-0", json!({"since": at(5)}));
    master.queue("c-bad", "reboot", "node-0", json!({}));
    assert!(
        atlhyper_testkit::wait_for(Duration::from_secs(10), || {
            master.recorded.lock().results.len() >= 5
        })
        .await,
        "not every command got a result"
    );
    {
        let r = master.recorded.lock();
        let get = |id: &str| r.results.iter().find(|x| x.command_id == id).unwrap();
        assert_eq!(get("c-ping").output, "pong");
        let list: Vec<Value> = serde_json::from_str(&get("c-list").output).unwrap();
        assert_eq!(list.len(), 5);
        let detail: NodeMetricsSnapshot = serde_json::from_str(&get("c-detail").output).unwrap();
        assert_eq!(detail.node_name, "node-0");
        assert_eq!(detail.cpu.usage_percent, 2.0);
        let series: Vec<MetricsDataPoint> = serde_json::from_str(&get("c-series").output).unwrap();
        assert_eq!(
            series.iter().map(|p| p.cpu_usage).collect::<Vec<_>>(),
            [1.0, 2.0]
        );
        let bad = get("c-bad");
        assert!(!bad.success && bad.error.contains("unknown action"));
        assert!(r.results.iter().all(|x| x.cluster_id == "test-cluster"));
    }

    // Outage: the master refuses 6 snapshots while node-0 keeps reporting.
    let before = master.recorded.lock().snapshots.len();
    master.fail_snapshots.store(6, Ordering::SeqCst);
    for i in 3..8 {
        let ts = at(i64::from(i) * 5);
        let body = atlhyper_testkit::v2_node_json("node-0", &ts, 100.0 + f64::from(i));
        assert_eq!(
            post_node(&http, agent_addr, &body, false).await,
            reqwest::StatusCode::OK
        );
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    assert!(
        atlhyper_testkit::wait_for(Duration::from_secs(10), || {
            let r = master.recorded.lock();
            r.snapshots.len() > before && master.fail_snapshots.load(Ordering::SeqCst) == 0
        })
        .await
    );
    assert!(
        atlhyper_testkit::wait_for(Duration::from_secs(5), || {
            master
                .recorded
                .lock()
                .snapshots
                .iter()
                .skip(before)
                .any(|s| !s.backfill.is_empty())
        })
        .await,
        "no backfill after the outage"
    );
    {
        let r = master.recorded.lock();
        let backfilled: Vec<f64> = r.snapshots[before..]
            .iter()
            .flat_map(|s| s.backfill.iter())
            .filter(|p| p.node_name == "node-0")
            .map(|p| p.cpu_usage)
            .collect();
        for cpu in [103.0, 104.0, 105.0, 106.0, 107.0] {
            assert!(
                backfilled.contains(&cpu),
                "{cpu} missing from backfill {backfilled:?}"
            );
        }
        assert!(r.snapshots.windows(2).all(|w| w[0].seq < w[1].seq));
    }
    // After recovery, later snapshots carry no backfill.
    let n = master.recorded.lock().snapshots.len();
    assert!(
        atlhyper_testkit::wait_for(Duration::from_secs(5), || master
            .recorded
            .lock()
            .snapshots
            .len()
            >= n + 2)
        .await
    );
    {
        let r = master.recorded.lock();
        assert!(
            r.snapshots[n..].iter().all(|s| s.backfill.is_empty()),
            "backfill after the recovery"
        );
        // Backfill is sent once, not with every later snapshot: no point twice since the outage.
        let mut sent: Vec<(String, chrono::DateTime<chrono::Utc>)> = r.snapshots[before..]
            .iter()
            .flat_map(|s| s.backfill.iter())
            .map(|p| (p.node_name.clone(), p.timestamp))
            .collect();
        let total = sent.len();
        sent.sort();
        sent.dedup();
        assert_eq!(sent.len(), total, "a backfilled point was sent twice");
    }

    // Shutdown: the agent stops and returns Ok promptly.
    let stopped = tokio::time::timeout(Duration::from_secs(5), agent.stop()).await;
    stopped.expect("agent did not stop").unwrap().unwrap();
}
