//! Fault suite, trust in the master's ingest, against the real `atlhyper-master` binary on
//! loopback: one node stamped 2300-01-01 or with junk among good nodes costs nothing to the
//! others (200, every good node's history keeps growing, the junk listed in `rejected` and
//! counted on /metrics); "latest" follows arrival, not a clock a year ahead, also after a
//! restart; bodies of empty list entries (`{}`) cost bounded memory, and the worst snapshot the
//! master accepts costs a measured, bounded multiple of the decompressed limit.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use atlhyper_model::{NodeHistory, NodeMetricsSnapshot, StatusBody};
use atlhyper_testkit::{gzip, http, node_json};
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use common::{RunningMaster, serial};

const AGENT_TOKEN: &str = "agent-token-trust-000000";
const VIEWER: &str = "viewer-token-trust-000000";
const CLUSTER: &str = "trust-cluster";

type Master = RunningMaster;

fn master(extra: &[(&str, String)]) -> Master {
    let mut env = vec![
        ("MASTER_AGENT_TOKEN", AGENT_TOKEN.to_owned()),
        ("MASTER_CLUSTER_ID", CLUSTER.to_owned()),
        ("MASTER_VIEWER_TOKEN", VIEWER.to_owned()),
    ];
    env.extend(extra.iter().cloned());
    RunningMaster::start("trust-ingest", &env)
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A cluster snapshot body (JSON) with `nodes` as `(name, node JSON)`.
fn snapshot_json(seq: u64, nodes: &[(String, String)]) -> String {
    let nodes: Vec<String> = nodes
        .iter()
        .map(|(name, node)| format!("{}:{node}", serde_json::Value::from(name.as_str())))
        .collect();
    format!(
        r#"{{"cluster_id":"{CLUSTER}","timestamp":"{}","seq":{seq},"node_metrics":{{{}}}}}"#,
        rfc3339(Utc::now()),
        nodes.join(",")
    )
}

/// Pushes a gzip snapshot body; the status and the answer's text.
fn push(addr: SocketAddr, json: &str) -> (u16, String) {
    let auth = format!("Bearer {AGENT_TOKEN}");
    let headers = [
        ("Content-Type", "application/json"),
        ("Content-Encoding", "gzip"),
        ("X-Cluster-ID", CLUSTER),
        ("Authorization", auth.as_str()),
    ];
    let body = gzip(json.as_bytes());
    let (code, text) = http(
        addr,
        "POST",
        "/agent/snapshot",
        &headers,
        &body,
        Duration::from_secs(60),
    )
    .expect("master answers");
    (code, String::from_utf8_lossy(&text).into_owned())
}

fn view<T: serde::de::DeserializeOwned>(addr: SocketAddr, path: &str) -> T {
    let auth = format!("Bearer {VIEWER}");
    let (code, body) = http(
        addr,
        "GET",
        path,
        &[("Authorization", auth.as_str())],
        b"",
        Duration::from_secs(10),
    )
    .expect("master answers");
    assert_eq!(code, 200, "{path}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn history_len(addr: SocketAddr, node: &str) -> usize {
    let h: NodeHistory = view(
        addr,
        &format!("/api/v2/clusters/{CLUSTER}/node-metrics/{node}/history?hours=1"),
    );
    h.data.len()
}

fn metrics(addr: SocketAddr) -> std::collections::BTreeMap<String, f64> {
    common::scrape_with(addr, &[("Authorization", &format!("Bearer {VIEWER}"))])
        .expect("/metrics answers")
}

/// `n` empty entries of a JSON list: `{},{},...`.
fn empties(n: usize) -> String {
    vec!["{}"; n].join(",")
}

/// A node whose every list is at its cap with empty entries (the most memory per JSON byte the
/// caps allow): 1024 disks, 4096 networks, 1024 processes, 8192 per-core figures, 1024
/// sensors, 64 collectors.
fn node_at_caps(name: &str, at: DateTime<Utc>) -> String {
    format!(
        r#"{{"node_name":"{name}","timestamp":"{}","disks":[{}],"networks":[{}],"processes":[{}],"cpu":{{"per_core":[{}]}},"temperature":{{"sensors":[{}]}},"collectors":[{}]}}"#,
        rfc3339(at),
        empties(1024),
        empties(4096),
        empties(1024),
        vec!["0"; 8192].join(","),
        empties(1024),
        empties(64),
    )
}

#[test]
fn a_node_stamped_2300_or_junk_among_good_nodes_costs_the_others_nothing() {
    let _serial = serial();
    let m = master(&[("MASTER_HISTORY_INTERVAL", "1s".to_owned())]);
    let year_2300 = Utc.with_ymd_and_hms(2300, 1, 1, 0, 0, 0).unwrap();
    let good = ["worker-1", "worker-2"];
    let mut pushes = 0u64;
    let mut mid = None;
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(4500) {
        pushes += 1;
        let now = Utc::now();
        let mut nodes: Vec<(String, String)> = good
            .iter()
            .map(|n| ((*n).to_owned(), node_json(n, now, 10.0)))
            .collect();
        nodes.push((
            "clock-2300".to_owned(),
            node_json("clock-2300", year_2300, 20.0),
        ));
        nodes.push(("Bad_Name".to_owned(), node_json("Bad_Name", now, 30.0)));
        nodes.push((
            "fat".to_owned(),
            format!(
                r#"{{"node_name":"fat","timestamp":"{}","disks":[{}]}}"#,
                rfc3339(now),
                empties(2000)
            ),
        ));
        let (code, text) = push(m.addr, &snapshot_json(pushes, &nodes));
        assert_eq!(code, 200, "push {pushes}: {text}");
        let answer: StatusBody = serde_json::from_str(&text).expect("status body");
        let refused: Vec<(&str, &str)> = answer
            .rejected
            .iter()
            .map(|r| (r.node_name.as_str(), r.reason.as_str()))
            .collect();
        assert_eq!(
            refused,
            [("Bad_Name", "invalid_name"), ("fat", "list_too_long")],
            "push {pushes}: {text}"
        );
        if mid.is_none() && started.elapsed() > Duration::from_secs(2) {
            mid = Some(["worker-1", "worker-2", "clock-2300"].map(|n| (n, history_len(m.addr, n))));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    // Every stored node's history kept growing, the one stamped 2300 included (it is stored at
    // the receive time).
    for (node, before) in mid.expect("a mid-run look") {
        let after = history_len(m.addr, node);
        eprintln!("history of {node}: {before} points at 2 s, {after} at the end");
        assert!(after > before, "{node}: history stopped at {before}");
        assert!(
            after >= 3,
            "{node}: {after} points in 4.5 s at a 1 s interval"
        );
    }
    let clock: NodeMetricsSnapshot = view(
        m.addr,
        &format!("/api/v2/clusters/{CLUSTER}/node-metrics/clock-2300"),
    );
    assert!(
        (Utc::now() - clock.timestamp).num_seconds().abs() < 60,
        "stored at the receive time: {}",
        clock.timestamp
    );
    let skew = clock.clock_skew_seconds.expect("skew kept");
    assert!(skew > 270.0 * 365.0 * 86_400.0, "skew {skew}");
    let (code, _) = http(
        m.addr,
        "GET",
        &format!("/api/v2/clusters/{CLUSTER}/node-metrics/Bad_Name"),
        &[("Authorization", &format!("Bearer {VIEWER}"))],
        b"",
        Duration::from_secs(5),
    )
    .expect("answer");
    assert_eq!(code, 404, "a refused node is not stored");

    let exported = metrics(m.addr);
    let get = |series: &str| {
        *exported
            .get(series)
            .unwrap_or_else(|| panic!("{series} not exported"))
    };
    let by_reason = |r: &str| {
        get(&format!(
            "atlhyper_master_nodes_rejected_total{{reason=\"{r}\"}}"
        ))
    };
    assert_eq!(by_reason("invalid_name"), pushes as f64);
    assert_eq!(by_reason("list_too_long"), pushes as f64);
    assert_eq!(by_reason("string_too_long"), 0.0);
    assert_eq!(by_reason("too_many_nodes"), 0.0);
    assert_eq!(
        get("atlhyper_master_node_clocks_replaced_total"),
        pushes as f64
    );
    assert_eq!(
        get("atlhyper_master_snapshots_total{result=\"accepted\"}"),
        pushes as f64
    );
    m.proc.assert_no_panic();
}

#[test]
fn latest_follows_arrival_not_a_clock_a_year_ahead_also_after_a_restart() {
    let _serial = serial();
    // Clocks up to 400 days ahead are kept as stamped here, so the store's own ordering decides.
    let mut m = master(&[("MASTER_MAX_CLOCK_AHEAD", "400d".to_owned())]);
    let now = Utc::now();
    let node = |at: DateTime<Utc>, uptime: u64| {
        let mut v: serde_json::Value =
            serde_json::from_str(&node_json("n1", at, 5.0)).expect("node");
        v["uptime"] = serde_json::json!(uptime);
        v.to_string()
    };
    let ahead = snapshot_json(
        1,
        &[("n1".to_owned(), node(now + chrono::Duration::days(365), 1))],
    );
    let (code, text) = push(m.addr, &ahead);
    assert_eq!(code, 200, "{text}");
    let normal = snapshot_json(2, &[("n1".to_owned(), node(Utc::now(), 2))]);
    let (code, text) = push(m.addr, &normal);
    assert_eq!(code, 200, "{text}");
    let path = format!("/api/v2/clusters/{CLUSTER}/node-metrics/n1");
    let latest: NodeMetricsSnapshot = view(m.addr, &path);
    assert_eq!(latest.uptime, 2, "the hub shows the last arrival");
    m.restart();
    let latest: NodeMetricsSnapshot = view(m.addr, &path);
    assert_eq!(
        latest.uptime, 2,
        "after a restart the stored latest is the last arrival, not the year-ahead one ({})",
        latest.timestamp
    );
    m.proc.assert_no_panic();
}

/// Sends `json` `times` times; the answers' status codes (0: no answer), and the RSS (KiB)
/// before, the peak, and after.
fn rss_over_pushes(m: &Master, json: &str, times: usize) -> (Vec<u16>, u64, u64, u64) {
    let before = m.proc.rss_kib();
    let mut peak = before;
    let mut codes = Vec::new();
    let body = gzip(json.as_bytes());
    let auth = format!("Bearer {AGENT_TOKEN}");
    let headers = [
        ("Content-Type", "application/json"),
        ("Content-Encoding", "gzip"),
        ("X-Cluster-ID", CLUSTER),
        ("Authorization", auth.as_str()),
    ];
    for _ in 0..times {
        let sent = std::thread::scope(|s| {
            let pusher = s.spawn(|| {
                http(
                    m.addr,
                    "POST",
                    "/agent/snapshot",
                    &headers,
                    &body,
                    Duration::from_secs(120),
                )
            });
            while !pusher.is_finished() {
                peak = peak.max(common::rss_kib(m.proc.pid()).unwrap_or(0));
                std::thread::sleep(Duration::from_millis(5));
            }
            pusher.join().expect("pusher")
        });
        codes.push(sent.map_or(0, |(code, _)| code));
    }
    std::thread::sleep(Duration::from_millis(200));
    let after = common::rss_kib(m.proc.pid()).unwrap_or(0);
    (codes, before, peak.max(after), after)
}

#[test]
fn empty_disk_bodies_cost_bounded_memory() {
    let _serial = serial();
    let m = master(&[]);
    for seq in 1..=5 {
        let nodes = [("warm".to_owned(), node_json("warm", Utc::now(), 1.0))];
        assert_eq!(push(m.addr, &snapshot_json(seq, &nodes)).0, 200);
    }
    // 100,000 empty disks in one node: ~400 KB of JSON, some 19 MB once parsed.
    let one = snapshot_json(
        100,
        &[(
            "disks-100k".to_owned(),
            format!(
                r#"{{"node_name":"disks-100k","timestamp":"{}","disks":[{}]}}"#,
                rfc3339(Utc::now()),
                empties(100_000)
            ),
        )],
    );
    // Old timestamps and seqs: each push after the first is not a duplicate only by seq, so
    // rebuild with rising seqs.
    let bodies: Vec<String> = (0..10)
        .map(|i| one.replace("\"seq\":100", &format!("\"seq\":{}", 100 + i)))
        .collect();
    let before = m.proc.rss_kib();
    let mut peak = before;
    let mut answers = Vec::new();
    for body in &bodies {
        answers.push(push(m.addr, body));
        peak = peak.max(m.proc.rss_kib());
    }
    let after = m.proc.rss_kib();
    eprintln!(
        "10 x one node of 100,000 empty disks ({} KiB JSON, {} KiB gzip): master RSS {before} -> \
         peak {peak} -> {after} KiB (+{} KiB)",
        one.len() / 1024,
        gzip(one.as_bytes()).len() / 1024,
        after.saturating_sub(before)
    );
    for (i, (code, text)) in answers.iter().enumerate() {
        assert_eq!(*code, 200, "push {i}: {}", common::tail(text, 500));
        let answer: StatusBody = serde_json::from_str(text).expect("status body");
        assert_eq!(answer.rejected.len(), 1, "{text}");
        assert_eq!(answer.rejected[0].reason, "list_too_long");
    }
    // Refused after parsing (19 MB, freed): never stored, never serialized. The old master
    // stored and serialized every one of them: +160 MiB over these 10 pushes.
    assert!(
        peak.saturating_sub(before) < 64 * 1024,
        "RSS {before} -> peak {peak} KiB for refused bodies"
    );

    // The same 100,000 empty disks spread over 98 nodes at the disk cap (1024 each): accepted.
    // Each snapshot replaces the last; what grows is SQLite's page caches (64 MiB for the
    // writer, 16 MiB for each of 2 readers: a fixed 96 MiB), filling as the rows are rewritten.
    let spread: Vec<(String, String)> = (0..98)
        .map(|i| {
            let name = format!("spread-{i:02}");
            let node = format!(
                r#"{{"node_name":"{name}","timestamp":"{}","disks":[{}]}}"#,
                rfc3339(Utc::now()),
                empties(1024)
            );
            (name, node)
        })
        .collect();
    let mut growth = Vec::new();
    let base = m.proc.rss_kib();
    for round in 0..3u64 {
        let json = snapshot_json(1000 + round * 100, &spread);
        let bodies: Vec<String> = (0..5)
            .map(|i| {
                json.replacen(
                    &format!("\"seq\":{}", 1000 + round * 100),
                    &format!("\"seq\":{}", 1000 + round * 100 + i),
                    1,
                )
            })
            .collect();
        let b = m.proc.rss_kib();
        let mut peak = b;
        for body in &bodies {
            let (code, text) = push(m.addr, body);
            assert_eq!(code, 200, "{}", common::tail(&text, 300));
            let answer: StatusBody = serde_json::from_str(&text).expect("status body");
            assert!(answer.rejected.is_empty(), "{text}");
            peak = peak.max(m.proc.rss_kib());
        }
        growth.push((b, peak, m.proc.rss_kib()));
    }
    eprintln!(
        "98 nodes x 1024 empty disks ({} KiB JSON), 3 rounds of 5 pushes: RSS from {base} KiB, \
         (before, peak, after) per round {growth:?}",
        snapshot_json(0, &spread).len() / 1024
    );
    // The parsed snapshot (~20 MiB of disks), its serialized view (~21 MiB), the store's JSON
    // of it (~21 MiB) and the last snapshot until replaced: 4 x 20 MiB, plus the caches.
    let last = growth.last().expect("rounds").2;
    assert!(
        last.saturating_sub(base) < (96 + 4 * 20) * 1024,
        "15 accepted pushes: RSS {base} -> {last} KiB ({growth:?})"
    );
    m.proc.assert_no_panic();
}

#[test]
fn the_worst_accepted_snapshot_costs_a_bounded_multiple_of_the_decompressed_limit() {
    let _serial = serial();
    // The decompressed limit lowered (as an operator may) so the worst case is cheap to build:
    // 8 MiB, so a parsed snapshot may take 32 MiB.
    let limit: usize = 8 << 20;
    let m = master(&[
        ("MASTER_SNAPSHOT_BODY_LIMIT", limit.to_string()),
        ("MASTER_SNAPSHOT_DECOMPRESSED_LIMIT", limit.to_string()),
    ]);
    let now = Utc::now();
    // Nodes at every list cap with empty entries, as many as fit in the decompressed limit.
    let one = node_at_caps("caps-000", now).len();
    let fit = limit / (one + 16);
    let full: Vec<(String, String)> = (0..fit)
        .map(|i| {
            let name = format!("caps-{i:03}");
            let node = node_at_caps(&name, now);
            (name, node)
        })
        .collect();
    let json = snapshot_json(1, &full);
    assert!(json.len() <= limit, "{} > {limit}", json.len());
    let (codes, before, peak, after) = rss_over_pushes(&m, &json, 3);
    eprintln!(
        "{fit} nodes at every cap ({} KiB JSON, {} KiB per node): answers {codes:?}, RSS {before} \
         -> peak {peak} -> {after} KiB",
        json.len() / 1024,
        one / 1024
    );
    assert_eq!(codes, [413; 3], "refused whole: over the memory budget");
    // Read and walked, never parsed: the decompressed body and a little more.
    assert!(
        peak.saturating_sub(before) < 3 * (limit as u64 / 1024),
        "refused before parsing: RSS {before} -> peak {peak} KiB"
    );

    // The largest such snapshot accepted: nodes at caps while the parsed form fits 4 x limit.
    let mut accepted = fit;
    let mut body = String::new();
    while accepted > 0 {
        body = snapshot_json(2, &full[..accepted]);
        let (code, _) = push(m.addr, &body);
        if code == 200 {
            break;
        }
        assert_eq!(code, 413);
        accepted = accepted * 9 / 10;
    }
    assert!(accepted > 0, "some nodes at caps are accepted");
    let bodies: Vec<String> = (0..5)
        .map(|i| body.replacen("\"seq\":2", &format!("\"seq\":{}", 10 + i), 1))
        .collect();
    let before = m.proc.rss_kib();
    let mut peak = before;
    for b in &bodies {
        let (code, text) = push(m.addr, b);
        assert_eq!(code, 200, "{}", common::tail(&text, 300));
        peak = peak.max(m.proc.rss_kib());
        // Readers ask for every serialized form the view keeps.
        let _: serde_json::Value = view(
            m.addr,
            &format!("/api/v2/observe/metrics/nodes?cluster_id={CLUSTER}"),
        );
        let _: serde_json::Value = view(
            m.addr,
            &format!("/api/v2/clusters/{CLUSTER}/node-metrics?view=overview"),
        );
        peak = peak.max(m.proc.rss_kib());
    }
    let after = m.proc.rss_kib();
    let growth_kib = peak
        .saturating_sub(before)
        .max(after.saturating_sub(before));
    let decompressed = body.len() as f64;
    eprintln!(
        "worst accepted: {accepted} nodes at every cap, {} KiB decompressed, x5 with every view \
         read: RSS {before} -> peak {peak} -> {after} KiB; growth {:.0}x the decompressed bytes, \
         {:.2}x the decompressed limit",
        body.len() / 1024,
        growth_kib as f64 * 1024.0 / decompressed,
        growth_kib as f64 * 1024.0 / limit as f64
    );
    // Bound: the parsed form <= 4 x limit (the budget), each serialized form of it (node list,
    // observe list, overview, the store's JSON) about as large again minus the struct padding:
    // at most 16 x the decompressed limit, plus SQLite's page caches (a fixed 96 MiB).
    assert!(
        growth_kib < 16 * (limit as u64 / 1024) + 96 * 1024,
        "worst accepted snapshot: RSS {before} -> peak {peak} KiB"
    );
    m.proc.assert_no_panic();
}
