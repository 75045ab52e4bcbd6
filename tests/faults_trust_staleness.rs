//! Fault suite, issue #12 items 3 and 5, real master and agent on loopback:
//!
//! - Staleness: kill -9 of the agent turns every node of its cluster offline in every view
//!   (node list summary and `node_status`, overview, observe summary, nodes and node detail,
//!   cluster list, `/metrics` with `atlhyper_node_up 0`, `atlhyper_cluster_up 0` and no current
//!   figure) once MASTER_AGENT_OFFLINE_AFTER has passed, and so it stays across a master restart;
//!   the agent back, the nodes are back online.
//! - Retirement: a node and a cluster deleted through the API are gone from every view and stay
//!   gone across a master restart unless they report again; a silent node retires on its own
//!   after MASTER_NODE_RETIRE_AFTER.
//!
//! Intervals are compressed: agent offline after 3 s (default 60 s), agent snapshot every
//! 500 ms (10 s), heartbeat every 1 s (15 s), node interval 1 s (5 s).

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use atlhyper_testkit::{free_port, get_json, http, node_json};
use common::{AgentBuilder, Proc, RunningAgent, Scratch, bins, serial, wait_healthy};
use serde_json::Value;

const CLUSTER: &str = "stale-cluster";
const AGENT_TOKEN: &str = "agent-token-staleness-0000";
const NODE_TOKEN: &str = "node-token-staleness-0000";
const VIEWER: &str = "viewer-token-staleness-0000";
const OPERATOR: &str = "operator-token-staleness-0000";
const OFFLINE_AFTER: Duration = Duration::from_secs(3);
const NODES: [&str; 3] = ["stale-0", "stale-1", "stale-2"];

/// A master and an agent for [`CLUSTER`], and node reports pushed to the agent.
struct Rig {
    dir: Scratch,
    master: Proc,
    master_addr: SocketAddr,
    agent: RunningAgent,
    agent_addr: SocketAddr,
}

impl Rig {
    fn start(name: &str, master_extra: &[(&'static str, &str)]) -> Rig {
        let dir = Scratch::new(name);
        let master_addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let mut master_env = vec![
            ("MASTER_LISTEN_ADDR", master_addr.to_string()),
            (
                "MASTER_DB_PATH",
                dir.0.join("atlhyper.db").display().to_string(),
            ),
            ("MASTER_AGENT_TOKEN", AGENT_TOKEN.to_owned()),
            ("MASTER_CLUSTER_ID", CLUSTER.to_owned()),
            ("MASTER_VIEWER_TOKEN", VIEWER.to_owned()),
            ("MASTER_OPERATOR_TOKEN", OPERATOR.to_owned()),
            ("MASTER_AGENT_OFFLINE_AFTER", "3s".to_owned()),
        ];
        master_env.extend(master_extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        let master = Proc::spawn("atlhyper-master", &bins().master, &master_env, &dir.0);
        wait_healthy(master_addr, Duration::from_secs(30), &master);
        let agent = AgentBuilder::new("atlhyper-agent", CLUSTER)
            .in_dir(&dir.0)
            .master(master_addr)
            .token(AGENT_TOKEN)
            .node_token(NODE_TOKEN)
            .env("AGENT_SNAPSHOT_INTERVAL", "500ms")
            .env("AGENT_HEARTBEAT_INTERVAL", "1s")
            .env("AGENT_NODE_INTERVAL", "1s")
            .backoff("100ms", "1s")
            .start();
        let agent_addr = agent.addr;
        Rig {
            dir,
            master,
            master_addr,
            agent,
            agent_addr,
        }
    }

    /// GET with the viewer token: (status, JSON or Null).
    fn get(&self, path: &str) -> (u16, Value) {
        let auth = format!("Bearer {VIEWER}");
        get_json(
            self.master_addr,
            path,
            &[("Authorization", &auth)],
            Duration::from_secs(15),
        )
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// `/metrics` text.
    fn metrics(&self) -> String {
        let auth = format!("Bearer {VIEWER}");
        let (code, body) = http(
            self.master_addr,
            "GET",
            "/metrics",
            &[("Authorization", &auth)],
            b"",
            Duration::from_secs(5),
        )
        .expect("GET /metrics");
        assert_eq!(code, 200);
        String::from_utf8(body).expect("UTF-8 exposition")
    }

    /// DELETE with the operator token: the status.
    fn delete(&self, path: &str) -> u16 {
        let auth = format!("Bearer {OPERATOR}");
        http(
            self.master_addr,
            "DELETE",
            path,
            &[("Authorization", &auth)],
            b"",
            Duration::from_secs(5),
        )
        .expect("DELETE")
        .0
    }

    /// Waits (up to 20 s) until `done` holds; how long it took, or None.
    fn wait(&self, mut done: impl FnMut(&Rig) -> bool) -> Option<Duration> {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(20) {
            if done(self) {
                return Some(t.elapsed());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    fn node_names(&self) -> Vec<String> {
        let (code, v) = self.get(&format!("/api/v2/clusters/{CLUSTER}/node-metrics"));
        if code != 200 {
            return Vec::new();
        }
        v["nodes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|n| n["node_name"].as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Pushes a report for each of `nodes` (CPU 95 %: a `cpu > 90` rule would fire) to the agent every
/// 300 ms until stopped.
struct Reporter {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Reporter {
    fn start(agent: SocketAddr, nodes: &'static [&'static str]) -> Reporter {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let auth = format!("Bearer {NODE_TOKEN}");
            let deadline = Instant::now() + Duration::from_secs(180);
            while !flag.load(Ordering::Relaxed) && Instant::now() < deadline {
                for node in nodes {
                    let body = node_json(node, chrono::Utc::now(), 95.0);
                    let _ = http(
                        agent,
                        "POST",
                        "/metrics/node",
                        &[
                            ("Authorization", &auth),
                            ("Content-Type", "application/json"),
                        ],
                        body.as_bytes(),
                        Duration::from_secs(2),
                    );
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        });
        Reporter {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The series of one node in an exposition (metric names of the lines labelled with it).
fn node_series(text: &str, node: &str) -> Vec<String> {
    let labels = format!("cluster=\"{CLUSTER}\",node=\"{node}\"");
    text.lines()
        .filter(|l| !l.starts_with('#') && l.contains(&labels))
        .map(|l| l.split(['{', ' ']).next().unwrap_or("").to_owned())
        .collect()
}

fn sample(text: &str, series: &str) -> Option<f64> {
    common::prom_value(text, series)
}

/// Every view of the cluster, checked for "every node offline"; the views that do not say so
/// yet. `detail` also asks the observe node detail (which goes to the agent while it is alive).
fn not_yet_offline(rig: &Rig, detail: bool) -> Vec<&'static str> {
    let mut pending = Vec::new();
    let (code, v) = rig.get(&format!("/api/v2/clusters/{CLUSTER}/node-metrics"));
    let statuses_offline = |v: &Value| {
        NODES
            .iter()
            .all(|n| v["node_status"][n]["state"] == "offline")
    };
    if code != 200 || v["summary"]["online_nodes"] != 0 || v["summary"]["offline_nodes"] != 3 {
        pending.push("node-metrics summary");
    }
    if !statuses_offline(&v) {
        pending.push("node-metrics node_status");
    }
    let (_, v) = rig.get(&format!(
        "/api/v2/clusters/{CLUSTER}/node-metrics?view=overview"
    ));
    if v["summary"]["online_nodes"] != 0 || !statuses_offline(&v) {
        pending.push("node-metrics overview");
    }
    let (_, v) = rig.get(&format!(
        "/api/v2/observe/metrics/summary?cluster_id={CLUSTER}&format=v2"
    ));
    if v["data"]["online_nodes"] != 0 || v["data"]["offline_nodes"] != 3 {
        pending.push("observe summary (v2)");
    }
    let (_, v) = rig.get(&format!(
        "/api/v2/observe/metrics/summary?cluster_id={CLUSTER}"
    ));
    if v["data"]["onlineNodes"] != 0 || v["data"]["totalNodes"] != 3 {
        pending.push("observe summary");
    }
    let (_, v) = rig.get(&format!(
        "/api/v2/observe/metrics/nodes?cluster_id={CLUSTER}&format=v2"
    ));
    if !statuses_offline(&v) {
        pending.push("observe nodes (v2)");
    }
    let (_, v) = rig.get(&format!(
        "/api/v2/observe/metrics/nodes?cluster_id={CLUSTER}"
    ));
    if !NODES
        .iter()
        .all(|n| v["nodeStatus"][n]["state"] == "offline")
    {
        pending.push("observe nodes");
    }
    if detail {
        let (code, v) = rig.get(&format!(
            "/api/v2/observe/metrics/nodes/{}?cluster_id={CLUSTER}",
            NODES[0]
        ));
        if code != 200 || v["status"]["state"] != "offline" {
            pending.push("observe node detail");
        }
    }
    let (_, v) = rig.get("/api/v2/clusters");
    if v["clusters"][0]["status"] != "offline" {
        pending.push("cluster list");
    }
    let text = rig.metrics();
    if sample(
        &text,
        &format!("atlhyper_cluster_up{{cluster=\"{CLUSTER}\"}}"),
    ) != Some(0.0)
    {
        pending.push("atlhyper_cluster_up");
    }
    for node in NODES {
        let series = node_series(&text, node);
        if sample(
            &text,
            &format!("atlhyper_node_up{{cluster=\"{CLUSTER}\",node=\"{node}\"}}"),
        ) != Some(0.0)
        {
            pending.push("atlhyper_node_up");
        }
        if series
            != [
                "atlhyper_node_up",
                "atlhyper_node_snapshot_timestamp_seconds",
            ]
        {
            pending.push("/metrics figures");
        }
    }
    pending.dedup();
    pending
}

#[test]
fn agent_kill9_turns_every_node_offline_in_every_view_also_after_a_master_restart() {
    let _serial = serial();
    let mut rig = Rig::start("staleness", &[]);
    let _reporter = Reporter::start(rig.agent_addr, &NODES);

    // All three online, their figures exported.
    let up = rig.wait(|r| {
        let (_, v) = r.get(&format!("/api/v2/clusters/{CLUSTER}/node-metrics"));
        v["summary"]["online_nodes"] == 3
    });
    assert!(up.is_some(), "nodes online:\n{}", rig.master.log_text());
    let text = rig.metrics();
    for node in NODES {
        assert_eq!(
            sample(
                &text,
                &format!(
                    "atlhyper_node_cpu_usage_percent{{cluster=\"{CLUSTER}\",node=\"{node}\"}}"
                )
            ),
            Some(95.0),
            "{text}"
        );
    }
    let (code, v) = rig.get(&format!(
        "/api/v2/observe/metrics/nodes/{}?cluster_id={CLUSTER}",
        NODES[0]
    ));
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"]["state"], "online");

    // kill -9 of the agent; the nodes keep reporting into the void.
    rig.agent.kill9();
    let killed = Instant::now();
    let mut first_offline: Vec<(&str, Duration)> = Vec::new();
    let mut all_at = None;
    while killed.elapsed() < Duration::from_secs(20) {
        let pending = not_yet_offline(&rig, false);
        let now = killed.elapsed();
        for view in [
            "node-metrics summary",
            "node-metrics node_status",
            "node-metrics overview",
            "observe summary",
            "observe nodes",
            "cluster list",
            "atlhyper_cluster_up",
            "atlhyper_node_up",
            "/metrics figures",
        ] {
            if !pending.contains(&view) && !first_offline.iter().any(|(v, _)| *v == view) {
                first_offline.push((view, now));
            }
        }
        if pending.is_empty() {
            all_at = Some(now);
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let all_at = all_at.unwrap_or_else(|| {
        panic!(
            "20 s after kill -9 some views still show nodes online: {:?}",
            not_yet_offline(&rig, false)
        )
    });
    // The node detail no longer waits for the dead agent: it answers from memory, offline.
    let t = Instant::now();
    assert!(not_yet_offline(&rig, true).is_empty());
    let detail_time = t.elapsed();
    eprintln!(
        "staleness: offline in every view {all_at:.2?} after the agent's kill -9 \
         (MASTER_AGENT_OFFLINE_AFTER {OFFLINE_AFTER:?}, agent snapshot every 500 ms, heartbeat \
         every 1 s); first offline per view: {first_offline:?}; all views + node detail \
         re-checked in {detail_time:.2?}"
    );
    // Offline no earlier than the window allows (the last contact was at most ~1 s before the
    // kill) and no later than the window plus the polling and scheduling slack.
    assert!(
        all_at >= OFFLINE_AFTER - Duration::from_millis(1100),
        "offline too early: {all_at:?}"
    );
    assert!(
        all_at <= OFFLINE_AFTER + Duration::from_secs(2),
        "offline late: {all_at:?}"
    );

    // A master restart with the agent still dead: offline from the first answer on.
    rig.master.kill9_and_restart();
    wait_healthy(rig.master_addr, Duration::from_secs(30), &rig.master);
    let pending = not_yet_offline(&rig, true);
    assert!(
        pending.is_empty(),
        "after a master restart, views showing nodes online: {pending:?}"
    );

    // The agent back: the nodes are online again everywhere.
    rig.agent.restart();
    let back = rig.wait(|r| {
        let (_, v) = r.get(&format!("/api/v2/clusters/{CLUSTER}/node-metrics"));
        let text = r.metrics();
        v["summary"]["online_nodes"] == 3
            && sample(
                &text,
                &format!("atlhyper_cluster_up{{cluster=\"{CLUSTER}\"}}"),
            ) == Some(1.0)
            && NODES.iter().all(|n| node_series(&text, n).len() > 10)
    });
    assert!(back.is_some(), "nodes back online after the agent restart");
    eprintln!(
        "staleness: back online {:.2?} after the agent restarted",
        back.unwrap()
    );
    rig.master.assert_no_panic();
    rig.agent.proc.assert_no_panic();
    drop(rig.dir);
}

#[test]
fn deleted_node_and_cluster_stay_deleted_across_a_master_restart() {
    let _serial = serial();
    let mut rig = Rig::start("retire-delete", &[]);
    let reporter = Reporter::start(rig.agent_addr, &NODES);
    assert!(
        rig.wait(|r| r.node_names().len() == 3).is_some(),
        "three nodes listed"
    );
    // stale-2 stops reporting; its agent keeps listing it, offline (AGENT_NODE_TTL is 10 min).
    drop(reporter);
    let _reporter = Reporter::start(rig.agent_addr, &NODES[..2]);
    let offline = rig.wait(|r| {
        let (_, v) = r.get(&format!("/api/v2/clusters/{CLUSTER}/node-metrics"));
        v["node_status"]["stale-2"]["state"] == "offline" && v["summary"]["online_nodes"] == 2
    });
    assert!(offline.is_some(), "stale-2 offline");

    // Delete the node: gone from every view, and it stays gone while the agent still lists it.
    assert_eq!(
        rig.delete(&format!("/api/v2/clusters/{CLUSTER}/nodes/stale-2")),
        204
    );
    assert_eq!(
        rig.delete(&format!("/api/v2/clusters/{CLUSTER}/nodes/stale-2")),
        404
    );
    std::thread::sleep(Duration::from_millis(1500)); // three agent snapshots
    assert_eq!(rig.node_names(), ["stale-0", "stale-1"]);
    assert!(node_series(&rig.metrics(), "stale-2").is_empty());
    let (_, v) = rig.get(&format!(
        "/api/v2/observe/metrics/nodes?cluster_id={CLUSTER}"
    ));
    assert_eq!(v["data"].as_array().map(Vec::len), Some(2));
    let (code, _) = rig.get(&format!(
        "/api/v2/clusters/{CLUSTER}/node-metrics/stale-2/history?hours=1"
    ));
    assert_eq!(code, 200, "history stays");

    // A master restart does not bring it back (the agent still lists it, offline).
    rig.master.kill9_and_restart();
    wait_healthy(rig.master_addr, Duration::from_secs(30), &rig.master);
    assert!(
        rig.wait(|r| {
            let (_, v) = r.get(&format!("/api/v2/clusters/{CLUSTER}/node-metrics"));
            v["summary"]["online_nodes"] == 2
        })
        .is_some(),
        "the live nodes are back online after the restart"
    );
    assert_eq!(rig.node_names(), ["stale-0", "stale-1"]);

    // The cluster: its agent stopped first (a live agent brings it back at once, by design).
    rig.agent.kill9();
    assert_eq!(rig.delete(&format!("/api/v2/clusters/{CLUSTER}")), 204);
    assert_eq!(rig.delete(&format!("/api/v2/clusters/{CLUSTER}")), 404);
    let gone = |r: &Rig| {
        let (_, list) = r.get("/api/v2/clusters");
        let (code, _) = r.get(&format!("/api/v2/clusters/{CLUSTER}/node-metrics"));
        let (_, agents) = r.get("/api/v2/agents");
        list["clusters"].as_array().is_some_and(Vec::is_empty)
            && list["total"] == 0
            && code == 404
            && agents.as_array().is_some_and(Vec::is_empty)
            && !r.metrics().contains(CLUSTER)
    };
    assert!(gone(&rig), "the deleted cluster is in no view");
    rig.master.kill9_and_restart();
    wait_healthy(rig.master_addr, Duration::from_secs(30), &rig.master);
    assert!(
        gone(&rig),
        "a master restart does not bring the cluster back"
    );

    // Its agent back: the cluster reports again and is back, with the nodes that report.
    rig.agent.restart();
    assert!(
        rig.wait(|r| r.node_names() == ["stale-0", "stale-1"])
            .is_some(),
        "the cluster is back when its agent reports: {:?}",
        rig.node_names()
    );
    rig.master.assert_no_panic();
    rig.agent.proc.assert_no_panic();
}

#[test]
fn a_silent_node_retires_on_its_own() {
    let _serial = serial();
    let mut rig = Rig::start(
        "retire-silent",
        &[
            ("MASTER_NODE_RETIRE_AFTER", "4s"),
            ("MASTER_PRUNE_INTERVAL", "1s"),
        ],
    );
    let reporter = Reporter::start(rig.agent_addr, &NODES);
    assert!(rig.wait(|r| r.node_names().len() == 3).is_some());
    drop(reporter);
    let _reporter = Reporter::start(rig.agent_addr, &NODES[..2]);
    let stopped = Instant::now();
    let retired = rig.wait(|r| r.node_names() == ["stale-0", "stale-1"]);
    let retired =
        retired.unwrap_or_else(|| panic!("stale-2 never retired: {:?}", rig.node_names()));
    eprintln!(
        "retirement: stale-2 left the views {:.2?} after its last report (retire after 4 s, \
         prune every 1 s)",
        stopped.elapsed()
    );
    assert!(
        retired >= Duration::from_secs(3),
        "retired too early: {retired:?}"
    );
    let text = rig.metrics();
    assert!(node_series(&text, "stale-2").is_empty());
    assert!(sample(&text, "atlhyper_master_nodes_retired_total") >= Some(1.0));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        rig.node_names(),
        ["stale-0", "stale-1"],
        "the agent still lists it offline: it stays out"
    );
    rig.master.kill9_and_restart();
    wait_healthy(rig.master_addr, Duration::from_secs(30), &rig.master);
    assert!(
        rig.wait(|r| r.node_names() == ["stale-0", "stale-1"])
            .is_some(),
        "not back after a restart: {:?}",
        rig.node_names()
    );
    rig.master.assert_no_panic();
}
