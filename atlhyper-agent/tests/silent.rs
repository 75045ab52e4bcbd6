//! A peer that accepts TCP and never answers must not stall the agent or the daemon beyond their
//! timeouts.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use atlhyper_agent::{AgentConfig, DaemonConfig, NodeTable, run_daemon_with};
use atlhyper_model::NodeMetricsSnapshot;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Accepts connections and holds them open without ever reading or writing.
async fn silent_peer() -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicU64::new(0));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(socket);
        }
    });
    (addr, accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_keeps_serving_and_stops_promptly_with_a_silent_master() {
    let (master, accepted) = silent_peer().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let agent_addr = listener.local_addr().unwrap();
    let cfg = AgentConfig {
        master_url: format!("http://{master}"),
        snapshot_interval: Duration::from_millis(100),
        heartbeat_interval: Duration::from_millis(100),
        request_timeout: Duration::from_millis(300),
        poll_timeout: Duration::from_millis(500),
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
        ..AgentConfig::default()
    };
    let agent = common::spawn_agent(listener, cfg);

    // Nodes are served promptly while every master request hangs.
    let http = reqwest::Client::new();
    let mut slowest = Duration::ZERO;
    for i in 0..20 {
        let body = atlhyper_testkit::v2_node_json("n1", &format!("2024-01-20T10:00:{i:02}Z"), 1.0);
        let t = Instant::now();
        let status = http
            .post(format!("http://{agent_addr}/metrics/node"))
            .body(body.to_string())
            .send()
            .await
            .unwrap()
            .status();
        slowest = slowest.max(t.elapsed());
        assert_eq!(status, reqwest::StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        slowest < Duration::from_secs(1),
        "a node waited {slowest:?}"
    );
    assert!(
        accepted.load(Ordering::SeqCst) >= 2,
        "the agent never reached the master"
    );

    // Requests time out and are retried: failures are counted on /metrics.
    let text = http
        .get(format!("http://{agent_addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let failures: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("atlhyper_agent_push_failures_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(failures >= 1.0, "{text}");

    // Shutdown is not held up by hanging requests.
    let t = Instant::now();
    tokio::time::timeout(Duration::from_secs(3), agent.stop())
        .await
        .expect("agent stalled on shutdown")
        .unwrap()
        .unwrap();
    assert!(t.elapsed() < Duration::from_secs(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_keeps_collecting_and_stops_promptly_with_a_silent_agent() {
    let (agent, accepted) = silent_peer().await;
    let metrics_port = atlhyper_testkit::free_port();
    let mut cfg = DaemonConfig::new("worker-1");
    cfg.agent_addr = agent.to_string();
    cfg.interval = Duration::from_millis(50);
    cfg.request_timeout = Duration::from_millis(300);
    cfg.backoff_base = Duration::from_millis(20);
    cfg.backoff_max = Duration::from_millis(100);
    cfg.queue_capacity = 5;
    cfg.metrics_listen = Some(SocketAddr::from(([127, 0, 0, 1], metrics_port)));

    let collections = Arc::new(AtomicU64::new(0));
    let count = Arc::clone(&collections);
    let source = move || {
        count.fetch_add(1, Ordering::SeqCst);
        NodeMetricsSnapshot {
            timestamp: chrono::Utc::now(),
            ..Default::default()
        }
    };
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let daemon = tokio::spawn(run_daemon_with(cfg, source, async {
        let _ = stop_rx.await;
    }));

    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Collection kept its 50 ms cadence although every push hangs until its 300 ms timeout.
    let n = collections.load(Ordering::SeqCst);
    assert!(n >= 20, "only {n} collections in 1.5 s");
    // One request in flight at a time: at most one connection per timeout period.
    let conns = accepted.load(Ordering::SeqCst);
    assert!((1..=8).contains(&conns), "{conns} connections");

    // The queue stayed bounded; what did not fit was counted.
    let text = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let metric = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing in {text}"))
    };
    assert!(metric("atlhyper_metrics_queue_length") <= 6.0);
    assert!(metric("atlhyper_metrics_dropped_points_total") >= 10.0);
    assert!(metric("atlhyper_metrics_push_failures_total") >= 2.0);
    assert_eq!(metric("atlhyper_metrics_pushes_total"), 0.0);

    let t = Instant::now();
    let _ = stop_tx.send(());
    tokio::time::timeout(Duration::from_secs(2), daemon)
        .await
        .expect("daemon stalled on shutdown")
        .unwrap()
        .unwrap();
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_stops_sending_its_body_gets_408_and_others_are_served() {
    use atlhyper_agent::{NodeTableConfig, ReceiverState, receiver_router};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let table = Arc::new(NodeTable::new(NodeTableConfig::default()));
    let app = receiver_router(
        ReceiverState::new(Arc::clone(&table)).with_body_timeout(Duration::from_millis(300)),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    // Promise 1000 bytes, send 10, then go quiet.
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(
        b"POST /metrics/node HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"node_nam",
    )
    .await
    .unwrap();

    // Meanwhile a normal node is served.
    let body = atlhyper_testkit::v2_node_json("fast", "2024-01-20T10:00:00Z", 1.0).to_string();
    let status = reqwest::Client::new()
        .post(format!("http://{addr}/metrics/node"))
        .body(body)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, reqwest::StatusCode::OK);

    let t = Instant::now();
    let mut answer = vec![0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(3), slow.read(&mut answer))
        .await
        .expect("no answer to the stalled body")
        .unwrap();
    let text = String::from_utf8_lossy(&answer[..n]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("did not arrive"), "{text}");
    assert!(t.elapsed() < Duration::from_secs(2));
    server.abort();
}
