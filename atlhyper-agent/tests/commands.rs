//! The command loop drains the master's queue without sleeping between commands and runs them
//! concurrently, bounded.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use atlhyper_agent::AgentConfig;
use serde_json::json;
use tokio::net::TcpListener;

async fn run(concurrency: usize, commands: usize) -> (Duration, u64) {
    let (master_addr, master) = common::start_master().await;
    master.no_hold.store(true, Ordering::SeqCst);
    master.result_delay_ms.store(400, Ordering::SeqCst);
    let cfg = AgentConfig {
        master_url: format!("http://{master_addr}"),
        // A long pause after an empty poll: sleeping between commands would cost 2 s each.
        poll_interval: Duration::from_secs(2),
        command_concurrency: concurrency,
        snapshot_interval: Duration::from_secs(60),
        heartbeat_interval: Duration::from_secs(60),
        ..AgentConfig::default()
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let agent = common::spawn_agent(listener, cfg);
    // Let the first (empty) poll happen, so the agent is in its 2 s pause when commands arrive.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 0..commands {
        master.queue(&format!("c{i}"), "ping", "", json!({}));
    }
    let start = Instant::now();
    assert!(
        atlhyper_testkit::wait_for(Duration::from_secs(30), || {
            master.recorded.lock().results.len() >= commands
        })
        .await
    );
    let took = start.elapsed();
    agent.stop().await.unwrap().unwrap();
    let r = master.recorded.lock();
    assert!(r.results.iter().all(|x| x.success && x.output == "pong"));
    (took, master.results_max_in_flight.load(Ordering::SeqCst))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_is_drained_concurrently_and_bounded() {
    // 8 commands, 4 at a time, each result taking 400 ms to post: two waves after the agent's
    // idle pause (< 2 s), about 2.8 s; one at a time with a pause between them would take
    // 8 x (0.4 + 2) s.
    let (took, max) = run(4, 8).await;
    assert!(took < Duration::from_millis(4500), "took {took:?}");
    assert_eq!(max, 4, "concurrency must reach but never exceed the bound");

    // With a bound of 1 the same commands run one after the other.
    let (took_serial, max) = run(1, 4).await;
    assert_eq!(max, 1);
    assert!(
        took_serial >= Duration::from_millis(1600),
        "took {took_serial:?}"
    );
}
