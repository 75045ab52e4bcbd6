//! Fault suite on PostgreSQL: the real `atlhyper-master` with `MASTER_DB_URL` pointing at a
//! throwaway PostgreSQL server (atlhyper_testkit::TestPostgres). A master SIGKILLed after ingest
//! and another master process started on the same database serves every acknowledged point and
//! the last acknowledged latest snapshot; nothing was written to SQLite.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use atlhyper_testkit::{TestPostgres, gzip, http, http_get, node_json};
use common::{Proc, Scratch, bins, serial, tail, wait_healthy};

const AGENT_TOKEN: &str = "agent-token-pg-00000000";
const VIEWER: &str = "viewer-token-pg-00000000";
const CLUSTER: &str = "pg-cluster";
const NODE: &str = "pg-node";

/// Snapshot `k` of the one node: timestamp `base + k` s (one history bucket each at a 1 s
/// history interval), uptime `k` (the marker of the latest).
fn snapshot(k: u64, base: chrono::DateTime<chrono::Utc>) -> Vec<u8> {
    let ts = base + chrono::Duration::seconds(i64::try_from(k).expect("small k"));
    let mut node: serde_json::Value =
        serde_json::from_str(&node_json(NODE, ts, (k % 100) as f64)).expect("node json");
    node["uptime"] = serde_json::json!(k);
    let body = serde_json::json!({
        "cluster_id": CLUSTER,
        "timestamp": ts.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "seq": k,
        "node_metrics": { NODE: node },
    });
    gzip(body.to_string().as_bytes())
}

/// Starts a master on 127.0.0.1 port 0 (the kernel picks a free one) and reads the address it
/// logs; waits until it is healthy.
fn start_master(name: &str, env: &[(&str, String)], dir: &Path) -> (Proc, SocketAddr) {
    let mut all = vec![
        ("MASTER_LISTEN_ADDR", "127.0.0.1:0".to_owned()),
        // The harness logs warnings only; the address is an info line.
        ("RUST_LOG", "warn,atlhyper_master=info".to_owned()),
    ];
    all.extend(env.iter().cloned());
    let proc = Proc::spawn(name, &bins().master, &all, dir);
    let deadline = Instant::now() + Duration::from_secs(60);
    let addr = loop {
        let log = proc.log_text();
        let found = log
            .lines()
            .filter(|l| l.contains("master listening"))
            .find_map(|l| {
                let after = &l[l.find("addr=")? + 5..];
                let end = after
                    .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ':'))
                    .unwrap_or(after.len());
                after[..end].parse::<SocketAddr>().ok()
            });
        if let Some(addr) = found {
            break addr;
        }
        assert!(
            Instant::now() < deadline,
            "{name} did not log its address:\n{}",
            tail(&log, 4000)
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    wait_healthy(addr, Duration::from_secs(30), &proc);
    (proc, addr)
}

fn get_json(addr: SocketAddr, path: &str) -> serde_json::Value {
    let auth = format!("Bearer {VIEWER}");
    let (code, body) = http_get(
        addr,
        path,
        &[("Authorization", &auth)],
        Duration::from_secs(10),
    )
    .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    assert_eq!(code, 200, "GET {path}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).expect("JSON")
}

#[test]
fn a_master_on_postgres_keeps_every_acknowledged_point_for_the_next_master() {
    let _serial = serial();
    let Some(server) = TestPostgres::start(false) else {
        return;
    };
    let url = server.fresh_database();
    let dir = Scratch::new("master-postgres");
    let sqlite = dir.0.join("atlhyper.db");
    let env = vec![
        ("MASTER_DB_URL", url.clone()),
        // Set, to show it is not used when a database URL is.
        ("MASTER_DB_PATH", sqlite.display().to_string()),
        ("MASTER_AGENT_TOKEN", AGENT_TOKEN.to_owned()),
        ("MASTER_CLUSTER_ID", CLUSTER.to_owned()),
        ("MASTER_VIEWER_TOKEN", VIEWER.to_owned()),
        ("MASTER_HISTORY_INTERVAL", "1s".to_owned()),
    ];
    let (mut first, addr) = start_master("master-a", &env, &dir.0);

    let base = chrono::Utc::now() - chrono::Duration::minutes(10);
    let auth = format!("Bearer {AGENT_TOKEN}");
    let headers = [
        ("Content-Encoding", "gzip"),
        ("X-Cluster-ID", CLUSTER),
        ("Authorization", auth.as_str()),
    ];
    const PUSHES: u64 = 40;
    for k in 1..=PUSHES {
        let (code, body) = http(
            addr,
            "POST",
            "/agent/snapshot",
            &headers,
            &snapshot(k, base),
            Duration::from_secs(10),
        )
        .expect("push");
        assert_eq!(
            code,
            200,
            "snapshot {k}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    // Acknowledged means committed: kill -9 at once, no chance to flush anything.
    first.kill9();
    assert!(!sqlite.exists(), "no SQLite file when MASTER_DB_URL is set");

    let (second, addr) = start_master("master-b", &env, &dir.0);
    let history = get_json(
        addr,
        &format!("/api/v2/clusters/{CLUSTER}/node-metrics/{NODE}/history?hours=1"),
    );
    let stored: BTreeSet<i64> = history["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|p| p["timestamp"].as_str())
        .filter_map(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp() - base.timestamp())
        .collect();
    let want: BTreeSet<i64> = (1..=PUSHES as i64).collect();
    assert_eq!(stored, want, "every acknowledged point, from PostgreSQL");
    let latest = get_json(
        addr,
        &format!("/api/v2/clusters/{CLUSTER}/node-metrics/{NODE}"),
    );
    assert_eq!(latest["uptime"], serde_json::json!(PUSHES), "{latest}");
    second.assert_no_panic();
    assert!(!sqlite.exists());
}
