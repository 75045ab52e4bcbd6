//! Fault suite, the master's log, against the real `atlhyper-master` binary: `--log-format json`
//! writes one JSON object per line; a node that goes offline (its agent silent) and comes back is
//! logged once each way; a data directory that cannot be created is named as such.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use atlhyper_testkit::{free_port, http, node_json};
use common::{Proc, Scratch, bins, serial, wait_healthy};

const AGENT_TOKEN: &str = "agent-token-aaaaaaaaaaaa";
const VIEWER: &str = "viewer-token-cccccccccccc";
const CLUSTER: &str = "cluster-a";

fn env(addr: SocketAddr, db: &std::path::Path) -> Vec<(&'static str, String)> {
    vec![
        ("MASTER_LISTEN_ADDR", addr.to_string()),
        ("MASTER_DB_PATH", db.display().to_string()),
        ("MASTER_AGENT_TOKENS", format!("{AGENT_TOKEN}={CLUSTER}")),
        ("MASTER_VIEWER_TOKEN", VIEWER.to_owned()),
        ("RUST_LOG", "info".to_owned()),
    ]
}

fn push(addr: SocketAddr, seq: u64) {
    let now = chrono::Utc::now();
    let node = node_json("worker-1", now, 10.0);
    let body = format!(
        r#"{{"cluster_id":"{CLUSTER}","timestamp":"{}","seq":{seq},"node_metrics":{{"worker-1":{node}}}}}"#,
        now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    );
    let auth = format!("Bearer {AGENT_TOKEN}");
    let headers = [
        ("Content-Type", "application/json"),
        ("Authorization", auth.as_str()),
        ("X-Cluster-ID", CLUSTER),
    ];
    let (code, answer) = http(
        addr,
        "POST",
        "/agent/snapshot",
        &headers,
        body.as_bytes(),
        Duration::from_secs(10),
    )
    .expect("master answers");
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&answer));
}

/// Waits until the log mentions `needle` `times` times; the log at that moment.
fn wait_for(proc: &Proc, needle: &str, times: usize, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let log = proc.log_text();
        if log.matches(needle).count() >= times {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "{needle:?} not logged {times} times within {limit:?}:\n{}",
            common::tail(&log, 4000)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn json_log_format_writes_one_object_per_line() {
    let _serial = serial();
    let dir = Scratch::new("master-log-json");
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let mut env = env(addr, &dir.0.join("atlhyper.db"));
    env.push(("MASTER_LOG_FORMAT", "json".to_owned()));
    let proc = Proc::spawn("atlhyper-master", &bins().master, &env, &dir.0);
    wait_healthy(addr, Duration::from_secs(30), &proc);
    let log = wait_for(&proc, "listening", 1, Duration::from_secs(10));
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let object: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}"));
        assert!(object["level"].is_string(), "{line}");
        assert!(object["fields"].is_object(), "{line}");
    }
}

#[test]
fn node_offline_and_back_are_logged_once_each() {
    let _serial = serial();
    let dir = Scratch::new("master-log-liveness");
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let mut env = env(addr, &dir.0.join("atlhyper.db"));
    // Well above the 2 s liveness check, so a check cannot fall after the window closes and miss
    // the node online, nor a 3 s pause below turn it offline.
    env.push(("MASTER_AGENT_OFFLINE_AFTER", "5s".to_owned()));
    let proc = Proc::spawn("atlhyper-master", &bins().master, &env, &dir.0);
    wait_healthy(addr, Duration::from_secs(30), &proc);

    push(addr, 1);
    wait_for(&proc, "node online", 1, Duration::from_secs(10));
    // The agent goes silent: past 5 s every view says offline, and the log says so once.
    let log = wait_for(&proc, "node offline", 1, Duration::from_secs(20));
    assert!(log.contains("worker-1"), "{log}");
    std::thread::sleep(Duration::from_secs(3));
    let log = proc.log_text();
    assert_eq!(log.matches("node offline").count(), 1, "{log}");
    assert_eq!(log.matches("node online").count(), 1, "{log}");
    // It reports again: online once more, once.
    push(addr, 2);
    wait_for(&proc, "node online", 2, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(500));
    push(addr, 3);
    std::thread::sleep(Duration::from_secs(3));
    let log = proc.log_text();
    assert_eq!(log.matches("node online").count(), 2, "{log}");
    assert_eq!(log.matches("node offline").count(), 1, "{log}");
    proc.assert_no_panic();
}

#[test]
fn a_data_directory_that_cannot_be_made_is_named() {
    let _serial = serial();
    let dir = Scratch::new("master-log-datadir");
    let file = dir.0.join("not-a-directory");
    std::fs::write(&file, b"x").expect("write a file");
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let env = env(addr, &file.join("data").join("atlhyper.db"));
    let mut proc = Proc::spawn("atlhyper-master", &bins().master, &env, &dir.0);
    let deadline = Instant::now() + Duration::from_secs(30);
    while proc.alive() {
        assert!(Instant::now() < deadline, "the master kept running");
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = proc.log_text();
    assert!(log.contains("data directory"), "{log}");
    assert!(log.contains("not-a-directory"), "{log}");
    assert!(!log.contains("http server"), "{log}");
}
