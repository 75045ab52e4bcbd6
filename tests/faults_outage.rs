//! Fault suite: the master down for the equivalent of 10 minutes. Intervals are compressed 50x
//! (node interval 5 s -> 100 ms, snapshot interval 10 s -> 200 ms, retry delays likewise), so
//! 10 minutes become 12 s. Meanwhile the agent and the daemons keep running with bounded memory
//! and no panic; after the master is back the agent backfills the history from its ring, and
//! the master's history has no gap over the outage.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use atlhyper_testkit::free_port;
use common::{AgentBuilder, Proc, Scratch, bins, scrape, serial, wait_healthy};

const AGENT_TOKEN: &str = "agent-token-outage-00";
const VIEWER: &str = "viewer-token-outage-00";
const NODE_TOKEN: &str = "node-token-outage-000";
const CLUSTER: &str = "outage";
/// The master's history interval in this test (finer than the scaled 6 s, so a gap shows).
const BUCKET_MS: i64 = 500;

fn history_buckets(addr: SocketAddr, node: &str) -> Option<BTreeSet<i64>> {
    let auth = format!("Bearer {VIEWER}");
    let (code, v) = atlhyper_testkit::get_json(
        addr,
        &format!("/api/v2/clusters/{CLUSTER}/node-metrics/{node}/history?hours=1"),
        &[("Authorization", &auth)],
        Duration::from_secs(5),
    )
    .ok()?;
    if code != 200 {
        return None;
    }
    Some(
        v["data"]
            .as_array()?
            .iter()
            .filter_map(|p| p["timestamp"].as_str())
            .filter_map(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp_millis().div_euclid(BUCKET_MS))
            .collect(),
    )
}

#[test]
fn master_down_10_minutes_equivalent_memory_bounded_history_backfilled() {
    let _serial = serial();
    let dir = Scratch::new("outage");
    let master_addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let master_env = vec![
        ("MASTER_LISTEN_ADDR", master_addr.to_string()),
        (
            "MASTER_DB_PATH",
            dir.0.join("atlhyper.db").display().to_string(),
        ),
        ("MASTER_AGENT_TOKEN", AGENT_TOKEN.to_owned()),
        ("MASTER_CLUSTER_ID", CLUSTER.to_owned()),
        ("MASTER_VIEWER_TOKEN", VIEWER.to_owned()),
        ("MASTER_HISTORY_INTERVAL", format!("{BUCKET_MS}ms")),
        ("MASTER_LONG_POLL_TIMEOUT", "600ms".to_owned()),
        ("MASTER_AGENT_OFFLINE_AFTER", "2s".to_owned()),
    ];
    let mut master = Proc::spawn("atlhyper-master", &bins().master, &master_env, &dir.0);
    wait_healthy(master_addr, Duration::from_secs(30), &master);
    let agent = AgentBuilder::new("atlhyper-agent", CLUSTER)
        .in_dir(&dir.0)
        .master(master_addr)
        .token(AGENT_TOKEN)
        .node_token(NODE_TOKEN)
        .env("AGENT_NODE_INTERVAL", "100ms")
        .env("AGENT_SNAPSHOT_INTERVAL", "200ms")
        .env("AGENT_HEARTBEAT_INTERVAL", "300ms")
        .env("AGENT_REQUEST_TIMEOUT", "500ms")
        .env("AGENT_COMMAND_POLL_TIMEOUT", "1s")
        .backoff("20ms", "1200ms")
        .start();
    let agent_addr = agent.addr;
    let nodes = ["outage-node-0", "outage-node-1"];
    let mut daemons = Vec::new();
    for node in nodes {
        let listen: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let d = Proc::spawn(
            node,
            &bins().metrics,
            &[
                ("METRICS_AGENT_ADDR", format!("http://{agent_addr}")),
                ("METRICS_COLLECT_INTERVAL", "100ms".to_owned()),
                ("METRICS_NODE_NAME", node.to_owned()),
                ("METRICS_TOKEN", NODE_TOKEN.to_owned()),
                ("METRICS_PUSH_TIMEOUT", "500ms".to_owned()),
                ("METRICS_BACKOFF_BASE", "20ms".to_owned()),
                ("METRICS_BACKOFF_MAX", "1200ms".to_owned()),
                ("METRICS_LISTEN", listen.to_string()),
            ],
            &dir.0,
        );
        wait_healthy(listen, Duration::from_secs(20), &d);
        daemons.push((d, listen));
    }

    // Warm-up with the master up: history flows.
    let warm = Instant::now();
    while nodes
        .iter()
        .any(|n| history_buckets(master_addr, n).is_none_or(|b| b.len() < 4))
    {
        assert!(
            warm.elapsed() < Duration::from_secs(20),
            "history reaches the master before the outage"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));

    // Outage: 12 s = 10 minutes at 50x.
    let rss_agent_before = agent.proc.rss_kib();
    let rss_daemons_before: Vec<u64> = daemons.iter().map(|(d, _)| d.rss_kib()).collect();
    let fds_agent_before = agent.proc.fds();
    master.kill9();
    let down_at = chrono::Utc::now();
    let t_down = Instant::now();
    let mut agent_rss = Vec::new();
    let mut daemon_rss_max = rss_daemons_before.clone();
    while t_down.elapsed() < Duration::from_secs(12) {
        agent_rss.push(agent.proc.rss_kib());
        for (i, (d, _)) in daemons.iter().enumerate() {
            daemon_rss_max[i] = daemon_rss_max[i].max(d.rss_kib());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let fds_agent_during = agent.proc.fds();
    let agent_stats = scrape(agent_addr).expect("agent /metrics during the outage");
    let rss_agent_mid = agent_rss[agent_rss.len() / 2];
    let rss_agent_max = agent_rss.iter().copied().max().unwrap_or(0);
    let rss_agent_end = *agent_rss.last().expect("samples");

    // Recovery.
    master = Proc::spawn("atlhyper-master", &bins().master, &master_env, &dir.0);
    wait_healthy(master_addr, Duration::from_secs(30), &master);
    let up_at = chrono::Utc::now();
    let t_up = Instant::now();
    let first_missing = down_at.timestamp_millis().div_euclid(BUCKET_MS) + 1;
    let last_missing = up_at.timestamp_millis().div_euclid(BUCKET_MS) - 1;
    let outage_buckets: BTreeSet<i64> = (first_missing..=last_missing).collect();
    let mut gaps: Vec<(String, usize)> = Vec::new();
    let backfilled_in = loop {
        gaps.clear();
        for n in nodes {
            let have = history_buckets(master_addr, n).unwrap_or_default();
            let missing = outage_buckets.difference(&have).count();
            if missing > 0 {
                gaps.push((n.to_owned(), missing));
            }
        }
        if gaps.is_empty() {
            break t_up.elapsed();
        }
        assert!(
            t_up.elapsed() < Duration::from_secs(30),
            "history not backfilled 30 s after the master came back; missing buckets {gaps:?} of {}",
            outage_buckets.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let backfill_points = scrape(agent_addr)
        .and_then(|m| m.get("atlhyper_agent_backfill_points_total").copied())
        .unwrap_or(0.0);
    // The whole run, not only the outage: no gap anywhere between the first and last point.
    let mut whole_gaps = Vec::new();
    for n in nodes {
        let have = history_buckets(master_addr, n).unwrap_or_default();
        if let (Some(first), Some(last)) = (have.first(), have.last()) {
            let missing = (*first..=*last).filter(|b| !have.contains(b)).count();
            whole_gaps.push(missing);
        }
    }
    eprintln!(
        "master down 12 s (= 10 min at 50x): agent RSS {rss_agent_before} KiB before, \
         {rss_agent_mid} mid-outage, {rss_agent_end} at the end, max {rss_agent_max}; agent fds \
         {fds_agent_before} -> {fds_agent_during}; push failures during outage {:?}; daemon RSS \
         before {rss_daemons_before:?} max {daemon_rss_max:?} KiB; {} buckets of {BUCKET_MS} ms \
         backfilled for each of {} nodes in {backfilled_in:?} after the master was healthy \
         ({backfill_points} backfill points sent); missing buckets over the whole run per node \
         {whole_gaps:?}",
        agent_stats.get("atlhyper_agent_push_failures_total"),
        outage_buckets.len(),
        nodes.len()
    );
    assert!(
        rss_agent_max.saturating_sub(rss_agent_before) < 16 * 1024,
        "agent memory bounded during the outage"
    );
    assert!(
        rss_agent_end.saturating_sub(rss_agent_mid) < 8 * 1024,
        "agent memory flat in the second half of the outage ({rss_agent_mid} -> {rss_agent_end})"
    );
    for (i, max) in daemon_rss_max.iter().enumerate() {
        assert!(
            max.saturating_sub(rss_daemons_before[i]) < 8 * 1024,
            "daemon {i} memory bounded"
        );
    }
    assert!(
        fds_agent_during <= fds_agent_before + 8,
        "no descriptor leak while retrying"
    );
    assert!(
        whole_gaps.iter().all(|g| *g == 0),
        "no gap anywhere in the history: {whole_gaps:?}"
    );
    agent.proc.assert_no_panic();
    master.assert_no_panic();
    for (d, _) in &daemons {
        d.assert_no_panic();
    }
}
