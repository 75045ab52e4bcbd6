//! Fault suite: several masters and several agents behind one setting. An agent lists two
//! masters (`AGENT_MASTER_URL=http://a,http://b`) and a daemon lists a dead agent before two
//! live ones (`METRICS_AGENT_ADDR`). kill -9 of the master the agent talks to: the agent pushes
//! to the other within two snapshot intervals, and the stored history has no hole wider than
//! the switch. kill -9 of the agent the daemon talks to: the daemon pushes to the next agent
//! within two collection intervals.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use atlhyper_testkit::{free_port, http_get, wait_until};
use common::{
    AgentBuilder, Proc, RunningAgent, RunningMaster, Scratch, bins, scrape, serial, wait_healthy,
};

const AGENT_TOKEN: &str = "agent-token-failover-000";
const VIEWER: &str = "viewer-token-failover-00";
const NODE_TOKEN: &str = "node-token-failover-0000";
const CLUSTER: &str = "failover";
const NODE: &str = "failover-node";
/// Nothing listens on port 1 of loopback: connections are refused at once.
const DEAD_AGENT: &str = "http://127.0.0.1:1";

fn master_env() -> Vec<(&'static str, String)> {
    vec![
        ("MASTER_AGENT_TOKEN", AGENT_TOKEN.to_owned()),
        ("MASTER_CLUSTER_ID", CLUSTER.to_owned()),
        ("MASTER_VIEWER_TOKEN", VIEWER.to_owned()),
        ("MASTER_HISTORY_INTERVAL", "1s".to_owned()),
    ]
}

fn start_agent(dir: &Scratch, name: &str, masters: &str) -> RunningAgent {
    AgentBuilder::new(name, CLUSTER)
        .in_dir(&dir.0)
        .masters(masters)
        .token(AGENT_TOKEN)
        .node_token(NODE_TOKEN)
        .env("AGENT_NODE_INTERVAL", "250ms")
        .env("AGENT_SNAPSHOT_INTERVAL", "1s")
        .env("AGENT_HEARTBEAT_INTERVAL", "1s")
        .backoff("100ms", "1s")
        .start()
}

fn start_daemon(dir: &Scratch, agents: &str) -> (Proc, SocketAddr) {
    let listen: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let daemon = Proc::spawn(
        "atlhyper-metrics",
        &bins().metrics,
        &[
            ("METRICS_AGENT_ADDR", agents.to_owned()),
            ("METRICS_COLLECT_INTERVAL", "250ms".to_owned()),
            ("METRICS_NODE_NAME", NODE.to_owned()),
            ("METRICS_TOKEN", NODE_TOKEN.to_owned()),
            ("METRICS_PUSH_TIMEOUT", "1s".to_owned()),
            ("METRICS_BACKOFF_BASE", "50ms".to_owned()),
            ("METRICS_BACKOFF_MAX", "250ms".to_owned()),
            ("METRICS_LISTEN", listen.to_string()),
        ],
        &dir.0,
    );
    wait_healthy(listen, Duration::from_secs(30), &daemon);
    (daemon, listen)
}

/// The node's latest snapshot timestamp at `master`, when it has one.
fn latest_at(master: SocketAddr) -> Option<chrono::DateTime<chrono::Utc>> {
    let auth = format!("Bearer {VIEWER}");
    let (code, body) = http_get(
        master,
        &format!("/api/v2/clusters/{CLUSTER}/node-metrics/{NODE}?format=v2"),
        &[("Authorization", &auth)],
        Duration::from_secs(5),
    )
    .ok()?;
    if code != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
    let ts = v["timestamp"]
        .as_str()
        .or(v["data"]["timestamp"].as_str())?;
    chrono::DateTime::parse_from_rfc3339(ts)
        .ok()
        .map(|t| t.to_utc())
}

/// Timestamps of the node's stored history at `master`, oldest first.
fn history_at(master: SocketAddr) -> Vec<chrono::DateTime<chrono::Utc>> {
    let auth = format!("Bearer {VIEWER}");
    let (code, body) = http_get(
        master,
        &format!("/api/v2/clusters/{CLUSTER}/node-metrics/{NODE}/history?hours=1&format=v2"),
        &[("Authorization", &auth)],
        Duration::from_secs(10),
    )
    .expect("history");
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    let v: serde_json::Value = serde_json::from_slice(&body).expect("history JSON");
    let mut out: Vec<_> = v["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|p| p["timestamp"].as_str())
        .filter_map(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.to_utc())
        .collect();
    out.sort();
    out
}

#[test]
fn agent_moves_to_the_next_master_within_two_snapshot_intervals() {
    let _serial = serial();
    let dir = Scratch::new("failover-master");
    let mut a = RunningMaster::start("failover-master-a", &master_env());
    let b = RunningMaster::start("failover-master-b", &master_env());
    let agent = start_agent(
        &dir,
        "atlhyper-agent",
        &format!("http://{},http://{}", a.addr, b.addr),
    );
    // The first agent listed is dead: the daemon's first push already fails over.
    let (daemon, _) = start_daemon(&dir, &format!("{DEAD_AGENT},{}", agent.url()));

    assert!(
        wait_until(Duration::from_secs(30), || latest_at(a.addr).is_some()).is_some(),
        "the node never reached master A through a daemon whose first agent is dead"
    );
    assert!(
        latest_at(b.addr).is_none(),
        "master B got snapshots while A was up"
    );
    // A few seconds of history at A.
    std::thread::sleep(Duration::from_secs(3));

    a.kill9();
    let killed = chrono::Utc::now();
    let switch = wait_until(Duration::from_secs(20), || {
        latest_at(b.addr).is_some_and(|t| t > killed)
    })
    .expect("master B never got a snapshot after A was killed");
    let interval = Duration::from_secs(1);
    eprintln!("master A killed: a snapshot taken after the kill was at master B in {switch:?}");
    assert!(
        switch <= 2 * interval,
        "switch took {switch:?}, over two snapshot intervals"
    );
    std::thread::sleep(Duration::from_secs(3));

    // A again, on its own database: what it acknowledged is kept; B holds the rest. The hole
    // between A's last point and B's first is the switch, never more than two intervals.
    a.restart();
    let at_a = history_at(a.addr);
    let at_b = history_at(b.addr);
    assert!(at_a.len() >= 3, "A's history: {at_a:?}");
    assert!(at_b.len() >= 3, "B's history: {at_b:?}");
    let a_last = *at_a
        .iter()
        .filter(|t| **t <= killed)
        .max()
        .expect("A's points");
    let b_first = *at_b.first().expect("B's points");
    let hole = (b_first - a_last).to_std().unwrap_or_default();
    eprintln!(
        "history: {} points at A up to {a_last}, {} at B from {b_first}; hole {hole:?}",
        at_a.len(),
        at_b.len()
    );
    assert!(
        hole <= 2 * interval + Duration::from_millis(500),
        "history hole of {hole:?} between A's last point and B's first"
    );
    for p in [&a.proc, &b.proc, &agent.proc, &daemon] {
        p.assert_no_panic();
    }
    assert!(
        agent
            .proc
            .log_text()
            .contains("switched to the next one listed"),
        "the agent's log says nothing of the switch"
    );
}

#[test]
fn daemon_moves_to_the_next_agent_within_two_collection_intervals() {
    let _serial = serial();
    let dir = Scratch::new("failover-agent");
    let master = RunningMaster::start("failover-agent-master", &master_env());
    let masters = format!("http://{}", master.addr);
    let mut first = start_agent(&dir, "atlhyper-agent-1", &masters);
    let second = start_agent(&dir, "atlhyper-agent-2", &masters);
    let (first_addr, second_addr) = (first.addr, second.addr);
    let (daemon, daemon_listen) = start_daemon(
        &dir,
        &format!("{DEAD_AGENT},{},{}", first.url(), second.url()),
    );
    let node_at = |agent: SocketAddr| -> f64 {
        scrape(agent)
            .and_then(|m| m.get("atlhyper_agent_nodes{state=\"online\"}").copied())
            .unwrap_or(0.0)
    };
    assert!(
        wait_until(Duration::from_secs(30), || node_at(first_addr) >= 1.0).is_some(),
        "the node never reached the first live agent"
    );
    assert_eq!(node_at(second_addr), 0.0, "the second agent got pushes too");

    first.kill9();
    let pushes = || {
        scrape(daemon_listen)
            .and_then(|m| m.get("atlhyper_metrics_pushes_total").copied())
            .expect("daemon /metrics")
    };
    let before = pushes();
    let switch = wait_until(Duration::from_secs(20), || {
        node_at(second_addr) >= 1.0 && pushes() > before
    })
    .expect("the daemon never pushed to the second agent");
    let interval = Duration::from_millis(250);
    eprintln!("agent killed: the daemon pushed to the next agent in {switch:?}");
    assert!(
        switch <= 2 * interval + Duration::from_millis(500),
        "switch took {switch:?}, over two collection intervals"
    );
    for p in [&master.proc, &second.proc, &daemon] {
        p.assert_no_panic();
    }
    // Dead agent -> first, then first -> second.
    let switches = daemon
        .log_text()
        .matches("switched to the next one listed")
        .count();
    assert!(
        switches >= 2,
        "the daemon's log shows {switches} switches, not 2"
    );
}
