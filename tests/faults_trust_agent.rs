//! Fault suite, issue 12 at the agent, with the real `atlhyper-agent` and `atlhyper-master` on
//! loopback; the test POSTs node snapshots to the agent as node daemons would:
//!
//! - one node stamped 2300-01-01 among good nodes: every node, that one too (with its receive
//!   time and `clock_skew_seconds`), reaches the master's latest, and the others' history keeps
//!   growing (before, the master refused every push of the cluster and the agent retried it
//!   forever);
//! - a node with 100,000 empty disks is refused at the agent with 413 and the reason, counted,
//!   and the other nodes keep flowing;
//! - a snapshot stamped a year ahead, then a normal one: the agent's latest (read through a
//!   `node_detail` command) and the master's latest show the normal one.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use atlhyper_testkit::{free_port, get_json, http, http_get, node_json, wait_until};
use chrono::{DateTime, Utc};
use common::{AgentBuilder, Proc, RunningAgent, Scratch, bins, scrape, serial};
use serde_json::{Value, json};

const AGENT_TOKEN: &str = "agent-token-trust-0000";
const NODE_TOKEN: &str = "node-token-trust-00000";
const VIEWER: &str = "viewer-token-trust-000";
const OPERATOR: &str = "operator-token-trust-0";
const CLUSTER: &str = "trust";
/// The master's history interval here: fine enough to see history grow within seconds.
const BUCKET_MS: i64 = 300;

/// A master and an agent pushing to it, both with compressed intervals.
struct Cluster {
    master: Proc,
    agent: RunningAgent,
    master_addr: SocketAddr,
    agent_addr: SocketAddr,
    _dir: Scratch,
}

impl Cluster {
    fn start(name: &str) -> Cluster {
        let dir = Scratch::new(name);
        let master_addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let master = Proc::spawn(
            "atlhyper-master",
            &bins().master,
            &[
                ("MASTER_LISTEN_ADDR", master_addr.to_string()),
                (
                    "MASTER_DB_PATH",
                    dir.0.join("atlhyper.db").display().to_string(),
                ),
                ("MASTER_AGENT_TOKEN", AGENT_TOKEN.to_owned()),
                ("MASTER_CLUSTER_ID", CLUSTER.to_owned()),
                ("MASTER_VIEWER_TOKEN", VIEWER.to_owned()),
                ("MASTER_OPERATOR_TOKEN", OPERATOR.to_owned()),
                ("MASTER_HISTORY_INTERVAL", format!("{BUCKET_MS}ms")),
                ("MASTER_LONG_POLL_TIMEOUT", "600ms".to_owned()),
            ],
            &dir.0,
        );
        common::wait_healthy(master_addr, Duration::from_secs(30), &master);
        let agent = AgentBuilder::new("atlhyper-agent", CLUSTER)
            .in_dir(&dir.0)
            .master(master_addr)
            .token(AGENT_TOKEN)
            .node_token(NODE_TOKEN)
            .env("AGENT_NODE_INTERVAL", "1s")
            .env("AGENT_SNAPSHOT_INTERVAL", "200ms")
            .env("AGENT_HEARTBEAT_INTERVAL", "300ms")
            .env("AGENT_REQUEST_TIMEOUT", "2s")
            .env("AGENT_COMMAND_POLL_TIMEOUT", "1s")
            .backoff("20ms", "500ms")
            .start();
        let agent_addr = agent.addr;
        Cluster {
            master,
            agent,
            master_addr,
            agent_addr,
            _dir: dir,
        }
    }

    /// POSTs a node snapshot to the agent; the status and the answer.
    fn post_node(&self, body: &str) -> (u16, Value) {
        let auth = format!("Bearer {NODE_TOKEN}");
        let (code, answer) = http(
            self.agent_addr,
            "POST",
            "/metrics/node",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
            Duration::from_secs(10),
        )
        .expect("the agent answers");
        (code, serde_json::from_slice(&answer).unwrap_or(Value::Null))
    }

    /// The master's latest nodes of the cluster, by name (empty while it has none).
    fn master_nodes(&self) -> Vec<Value> {
        let auth = format!("Bearer {VIEWER}");
        let Ok((200, v)) = get_json(
            self.master_addr,
            &format!("/api/v2/clusters/{CLUSTER}/node-metrics"),
            &[("Authorization", &auth)],
            Duration::from_secs(5),
        ) else {
            return Vec::new();
        };
        v["nodes"].as_array().cloned().unwrap_or_default()
    }

    fn master_node(&self, name: &str) -> Option<Value> {
        self.master_nodes()
            .into_iter()
            .find(|n| n["node_name"] == name)
    }

    /// History buckets (of [`BUCKET_MS`]) the master holds for `node`.
    fn history_buckets(&self, node: &str) -> BTreeSet<i64> {
        let auth = format!("Bearer {VIEWER}");
        let Ok((200, v)) = get_json(
            self.master_addr,
            &format!("/api/v2/clusters/{CLUSTER}/node-metrics/{node}/history?hours=1"),
            &[("Authorization", &auth)],
            Duration::from_secs(5),
        ) else {
            return BTreeSet::new();
        };
        v["data"]
            .as_array()
            .map(|points| {
                points
                    .iter()
                    .filter_map(|p| p["timestamp"].as_str())
                    .filter_map(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.timestamp_millis().div_euclid(BUCKET_MS))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The agent's latest snapshot of `node`, asked through the master as a `node_detail`
    /// command (the agent answers from its node table).
    fn agent_latest(&self, node: &str) -> Value {
        let auth = format!("Bearer {OPERATOR}");
        let create = json!({"cluster_id": CLUSTER, "action": "node_detail", "target_name": node});
        let (code, body) = http(
            self.master_addr,
            "POST",
            "/api/v2/commands",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            create.to_string().as_bytes(),
            Duration::from_secs(5),
        )
        .expect("the master answers");
        assert_eq!(code, 201, "{}", String::from_utf8_lossy(&body));
        let created: Value = serde_json::from_slice(&body).expect("JSON");
        let id = created["command_id"]
            .as_str()
            .expect("command_id")
            .to_owned();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (code, body) = http_get(
                self.master_addr,
                &format!("/api/v2/commands/{id}"),
                &[("Authorization", &auth)],
                Duration::from_secs(5),
            )
            .expect("the master answers");
            assert_eq!(code, 200);
            let record: Value = serde_json::from_slice(&body).expect("JSON");
            match record["status"].as_str() {
                Some("success") => {
                    let output = record["result"]["output"].as_str().expect("output");
                    return serde_json::from_str(output).expect("a node snapshot");
                }
                Some("pending" | "running") => {}
                other => panic!("node_detail ended {other:?}: {record}"),
            }
            assert!(
                Instant::now() < deadline,
                "node_detail not answered: {record}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn assert_no_panic(&self) {
        self.master.assert_no_panic();
        self.agent.proc.assert_no_panic();
    }
}

const GOOD: [&str; 3] = ["good-0", "good-1", "good-2"];

/// One round of the good nodes reporting now, with CPU `cpu`.
fn good_round(c: &Cluster, cpu: f64) {
    for node in GOOD {
        let (code, answer) = c.post_node(&node_json(node, Utc::now(), cpu));
        assert_eq!(code, 200, "{node}: {answer}");
    }
}

#[test]
fn a_node_stamped_2300_reaches_the_master_with_its_skew_and_history_keeps_growing() {
    let _serial = serial();
    let c = Cluster::start("trust-2300");
    let started = Utc::now();
    let year_2300: DateTime<Utc> = "2300-01-01T00:00:00Z".parse().expect("a timestamp");
    let mut round = 0.0;
    let mut report = |c: &Cluster| {
        round += 1.0;
        good_round(c, round);
        let (code, answer) = c.post_node(&node_json("clock-2300", year_2300, 50.0));
        assert_eq!(code, 200, "{answer}");
    };
    // Every node, the one from 2300 too, reaches the master's latest.
    let all_there = wait_until(Duration::from_secs(20), || {
        report(&c);
        std::thread::sleep(Duration::from_millis(100));
        let names: BTreeSet<String> = c
            .master_nodes()
            .iter()
            .filter_map(|n| n["node_name"].as_str().map(str::to_owned))
            .collect();
        names.len() == 4 && names.contains("clock-2300")
    })
    .is_some();
    assert!(
        all_there,
        "the master's latest never held all four nodes: {:?}\nagent log:\n{}",
        c.master_nodes()
            .iter()
            .map(|n| n["node_name"].clone())
            .collect::<Vec<_>>(),
        common::tail(&c.agent.proc.log_text(), 3000)
    );
    let future = c.master_node("clock-2300").expect("the 2300 node");
    let ts: DateTime<Utc> = future["timestamp"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("a timestamp");
    assert!(
        ts >= started && ts <= Utc::now(),
        "the 2300 node carries its receive time, not {ts}"
    );
    let skew = future["clock_skew_seconds"]
        .as_f64()
        .expect("the skew is kept");
    assert!(
        skew > 270.0 * 365.0 * 86400.0,
        "clock_skew_seconds {skew} says the node is about 274 years ahead"
    );

    // The good nodes' history keeps growing while the 2300 node keeps reporting.
    let before: Vec<usize> = GOOD.iter().map(|n| c.history_buckets(n).len()).collect();
    let grew = wait_until(Duration::from_secs(20), || {
        report(&c);
        std::thread::sleep(Duration::from_millis(100));
        GOOD.iter()
            .zip(&before)
            .all(|(n, b)| c.history_buckets(n).len() >= b + 3)
    })
    .is_some();
    let after: Vec<usize> = GOOD.iter().map(|n| c.history_buckets(n).len()).collect();
    assert!(
        grew,
        "history stopped growing: {before:?} -> {after:?} buckets"
    );
    let agent = scrape(c.agent_addr).expect("agent /metrics");
    let refused: f64 = ["400", "413", "415", "422"]
        .iter()
        .filter_map(|s| {
            agent.get(&format!(
                "atlhyper_agent_push_refused_total{{status=\"{s}\"}}"
            ))
        })
        .sum();
    eprintln!(
        "2300 node: master shows it at its receive time with clock_skew_seconds {skew:.0}; good \
         nodes' history {before:?} -> {after:?} buckets of {BUCKET_MS} ms; pushes refused by \
         the master: {refused}, failed: {:?}",
        agent.get("atlhyper_agent_push_failures_total")
    );
    assert_eq!(refused, 0.0, "the master refused no push");
    c.assert_no_panic();
}

#[test]
fn a_node_with_100000_empty_disks_is_refused_at_the_agent_and_the_others_keep_flowing() {
    let _serial = serial();
    let c = Cluster::start("trust-disks");
    good_round(&c, 1.0);
    let rss_before = c.agent.proc.rss_kib();
    let disks = vec![json!({}); 100_000];
    let flood = json!({"node_name": "x", "timestamp": Utc::now(), "disks": disks}).to_string();
    for _ in 0..3 {
        let (code, answer) = c.post_node(&flood);
        assert_eq!(code, 413, "{answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(
            error.starts_with("list_too_long: disks has 100000 entries"),
            "{error}"
        );
    }
    let rss_after = c.agent.proc.rss_kib();
    // Refused before the 100,000 entries are built (parsed, they were ~13 MB each time).
    assert!(
        rss_after.saturating_sub(rss_before) < 8 * 1024,
        "agent RSS grew {rss_before} -> {rss_after} KiB for three refused bodies"
    );
    // The other nodes keep flowing to the master at their newest values.
    let flowing = wait_until(Duration::from_secs(20), || {
        good_round(&c, 42.0);
        std::thread::sleep(Duration::from_millis(100));
        GOOD.iter().all(|n| {
            c.master_node(n)
                .is_some_and(|v| v["cpu"]["usage_percent"].as_f64() == Some(42.0))
        })
    })
    .is_some();
    assert!(flowing, "the good nodes did not reach the master");
    assert!(c.master_node("x").is_none(), "the refused node is stored");
    let agent = scrape(c.agent_addr).expect("agent /metrics");
    let count = |reason: &str| {
        agent
            .get(&format!(
                "atlhyper_agent_nodes_rejected_total{{reason=\"{reason}\"}}"
            ))
            .copied()
    };
    assert_eq!(count("list_too_long"), Some(3.0));
    for reason in ["invalid_name", "string_too_long", "too_many_nodes"] {
        assert_eq!(count(reason), Some(0.0), "{reason} exported from the start");
    }
    eprintln!(
        "100,000 empty disks ({} bytes) x3: 413 at the agent; agent RSS {rss_before} -> \
         {rss_after} KiB",
        flood.len()
    );
    c.assert_no_panic();
}

#[test]
fn a_snapshot_a_year_ahead_then_a_normal_one_the_normal_one_is_latest() {
    let _serial = serial();
    let c = Cluster::start("trust-year");
    let year_ahead = Utc::now() + chrono::Duration::days(365);
    let (code, answer) = c.post_node(&node_json("drift", year_ahead, 99.0));
    assert_eq!(code, 200, "{answer}");
    assert!(
        wait_until(Duration::from_secs(20), || c.master_node("drift").is_some()).is_some(),
        "the node never reached the master"
    );
    // The clock is fixed: the node's next snapshot, an interval later.
    std::thread::sleep(Duration::from_millis(500));
    let (code, answer) = c.post_node(&node_json("drift", Utc::now(), 7.0));
    assert_eq!(code, 200, "{answer}");
    let cpu_at_master = || {
        c.master_node("drift")
            .and_then(|v| v["cpu"]["usage_percent"].as_f64())
    };
    let normal = wait_until(Duration::from_secs(20), || cpu_at_master() == Some(7.0)).is_some();
    assert!(
        normal,
        "the master's latest of the node is CPU {:?}, not the normal snapshot's 7",
        cpu_at_master()
    );
    let agent_latest = c.agent_latest("drift");
    assert_eq!(
        agent_latest["cpu"]["usage_percent"].as_f64(),
        Some(7.0),
        "the agent's latest: {agent_latest}"
    );
    assert!(agent_latest.get("clock_skew_seconds").is_none());
    // And it stays so while the node keeps reporting normally.
    for cpu in [8.0, 9.0] {
        std::thread::sleep(Duration::from_millis(300));
        c.post_node(&node_json("drift", Utc::now(), cpu));
    }
    assert!(wait_until(Duration::from_secs(20), || cpu_at_master() == Some(9.0)).is_some());
    c.assert_no_panic();
}
