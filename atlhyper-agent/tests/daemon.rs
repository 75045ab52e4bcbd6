//! The daemon against a real agent: delivery, gzip, token, and backfill after the agent was down.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use atlhyper_agent::{AgentConfig, DaemonConfig, run_daemon_with};
use atlhyper_model::{CpuMetrics, NodeMetricsSnapshot};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

fn source() -> (
    impl FnMut() -> NodeMetricsSnapshot + Send + 'static,
    Arc<AtomicU64>,
) {
    let n = Arc::new(AtomicU64::new(0));
    let count = Arc::clone(&n);
    let f = move || {
        let i = count.fetch_add(1, Ordering::SeqCst);
        NodeMetricsSnapshot {
            node_name: "ignored-the-daemon-stamps-its-own".into(),
            timestamp: chrono::Utc::now(),
            cpu: CpuMetrics {
                usage_percent: i as f64,
                ..Default::default()
            },
            ..Default::default()
        }
    };
    (f, n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_backfills_the_agent_after_it_comes_up() {
    // The agent's port is bound but nobody listens yet: connections are refused, and no other
    // test's server can take the port meanwhile.
    let (held, port) = atlhyper_testkit::held_port();
    let (master, _recorded) = common::start_master().await;

    let mut cfg = DaemonConfig::new("worker-7");
    cfg.agent_addr = format!("127.0.0.1:{port}");
    cfg.interval = Duration::from_millis(50);
    cfg.token = Some("node-token".into());
    cfg.request_timeout = Duration::from_millis(500);
    cfg.backoff_base = Duration::from_millis(20);
    cfg.backoff_max = Duration::from_millis(100);
    cfg.queue_capacity = 1000;
    let (src, collections) = source();
    let (stop_daemon, daemon_rx) = oneshot::channel::<()>();
    let daemon = tokio::spawn(run_daemon_with(cfg, src, async {
        let _ = daemon_rx.await;
    }));

    // 600 ms of outage: about a dozen snapshots queue up.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let during_outage = collections.load(Ordering::SeqCst);
    assert!(during_outage >= 5);

    let listener = held.listen(1024).unwrap();
    let agent_cfg = AgentConfig {
        master_url: format!("http://{master}"),
        node_token: Some("node-token".into()),
        ..AgentConfig::default()
    };
    let agent = common::spawn_agent(listener, agent_cfg);
    let table = Arc::clone(&agent.table);

    // Every snapshot collected during the outage reaches the agent's ring.
    let ok = atlhyper_testkit::wait_for(Duration::from_secs(10), || {
        let now = tokio::time::Instant::now();
        table
            .series("worker-7", None, None, now)
            .is_some_and(|s| s.len() as u64 >= during_outage)
    })
    .await;
    assert!(ok, "backlog not delivered");
    let _ = stop_daemon.send(());
    daemon.await.unwrap().unwrap();

    let now = tokio::time::Instant::now();
    let series = table.series("worker-7", None, None, now).unwrap();
    let cpu: Vec<f64> = series.iter().map(|p| p.cpu_usage).collect();
    // In time order, no gaps, no duplicates: 0, 1, 2, ...
    let expected: Vec<f64> = (0..cpu.len()).map(|i| i as f64).collect();
    assert_eq!(cpu, expected);
    let latest: NodeMetricsSnapshot =
        serde_json::from_str(table.latest("worker-7", now).unwrap().get()).unwrap();
    assert_eq!(latest.node_name, "worker-7");
    assert_eq!(latest.cpu.usage_percent, *cpu.last().unwrap());

    agent.stop().await.unwrap().unwrap();
}

#[tokio::test]
async fn bad_configuration_is_refused() {
    let cfg = DaemonConfig::new("Not_A_Node");
    let err = run_daemon_with(cfg, NodeMetricsSnapshot::default, async {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("DNS-1123"), "{err}");
}

/// With the real collector over this host's /proc, the very first snapshot the daemon pushes
/// already carries rates: the collector is primed, so charts never start with a false 0 % dip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_pushed_snapshot_of_the_real_collector_has_rates() {
    let (master, _recorded) = common::start_master().await;
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let agent_cfg = AgentConfig {
        master_url: format!("http://{master}"),
        ..AgentConfig::default()
    };
    let agent = common::spawn_agent(listener, agent_cfg);
    let table = Arc::clone(&agent.table);

    let mut cfg = DaemonConfig::new("primed-node");
    cfg.agent_addr = format!("127.0.0.1:{port}");
    // Primed over 1 s, pushed at once; the next collection is due only at 2 s, so the snapshot
    // the agent holds when the daemon stops is the first one.
    cfg.interval = Duration::from_secs(2);
    let (stop_daemon, daemon_rx) = oneshot::channel::<()>();
    let daemon = tokio::spawn(atlhyper_agent::run_daemon(cfg, async {
        let _ = daemon_rx.await;
    }));

    let ok = atlhyper_testkit::wait_for(Duration::from_secs(20), || {
        table
            .series("primed-node", None, None, tokio::time::Instant::now())
            .is_some_and(|s| !s.is_empty())
    })
    .await;
    assert!(ok, "no snapshot reached the agent");
    let _ = stop_daemon.send(());
    daemon.await.unwrap().unwrap();

    let now = tokio::time::Instant::now();
    let first: NodeMetricsSnapshot =
        serde_json::from_str(table.latest("primed-node", now).unwrap().get()).unwrap();
    // Over a real interval busy + idle + iowait covers the whole CPU; an unprimed first
    // collection reports all three as 0.
    let covered = first.cpu.usage_percent + first.cpu.idle_percent;
    assert!(
        covered > 50.0,
        "first snapshot has no CPU rates: {:?}",
        first.cpu
    );

    agent.stop().await.unwrap().unwrap();
}

/// `/ready` for the kubelet's readiness probe: 503 with the reason once pushes fail and the
/// backlog passes half the queue, 200 again as soon as a push succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_follows_pushes_and_the_backlog() {
    let (master, _recorded) = common::start_master().await;
    let (held, port) = atlhyper_testkit::held_port();
    let metrics = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let metrics_addr = metrics.local_addr().unwrap();
    drop(metrics);

    let mut cfg = DaemonConfig::new("worker-8");
    cfg.agent_addr = format!("127.0.0.1:{port}");
    cfg.interval = Duration::from_millis(50);
    cfg.request_timeout = Duration::from_millis(500);
    cfg.backoff_base = Duration::from_millis(20);
    cfg.backoff_max = Duration::from_millis(50);
    cfg.queue_capacity = 10;
    cfg.metrics_listen = Some(metrics_addr);
    let (src, _collections) = source();
    let (stop_daemon, daemon_rx) = oneshot::channel::<()>();
    let daemon = tokio::spawn(run_daemon_with(cfg, src, async {
        let _ = daemon_rx.await;
    }));
    let ready = move || {
        let got = atlhyper_testkit::http_get(metrics_addr, "/ready", &[], Duration::from_secs(2));
        got.map(|(code, body)| (code, String::from_utf8_lossy(&body).into_owned()))
    };
    let not_ready = atlhyper_testkit::wait_for(
        Duration::from_secs(10),
        || matches!(ready(), Ok((503, ref body)) if body.contains("of 10 snapshots are queued")),
    )
    .await;
    assert!(not_ready, "still ready with the agent down: {:?}", ready());

    let agent = common::spawn_agent(
        held.listen(1024).unwrap(),
        AgentConfig {
            master_url: format!("http://{master}"),
            ..AgentConfig::default()
        },
    );
    let back =
        atlhyper_testkit::wait_for(Duration::from_secs(10), || matches!(ready(), Ok((200, _))))
            .await;
    assert!(back, "not ready with the agent up: {:?}", ready());
    let _ = stop_daemon.send(());
    daemon.await.unwrap().unwrap();
    agent.stop().await.unwrap().unwrap();
}
