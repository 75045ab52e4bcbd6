//! Fault suite on PostgreSQL: the real `atlhyper-master` with `MASTER_DB_URL` pointing at a
//! throwaway PostgreSQL server (atlhyper_testkit::TestPostgres). A master SIGKILLed after ingest
//! and another master process started on the same database serves every acknowledged point and
//! the last acknowledged latest snapshot; nothing was written to SQLite.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use atlhyper_testkit::{TestPostgres, http, http_get};
use common::{MasterBuilder, Scratch, numbered_snapshot, serial, stored_numbers};

const AGENT_TOKEN: &str = "agent-token-pg-00000000";
const VIEWER: &str = "viewer-token-pg-00000000";
const CLUSTER: &str = "pg-cluster";
const NODE: &str = "pg-node";

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
    let master = |name: &str| {
        MasterBuilder::new(name)
            .in_dir(&dir.0)
            .db_url(&url)
            // Set, to show it is not used when a database URL is.
            .env("MASTER_DB_PATH", sqlite.display().to_string())
            .agent_token(AGENT_TOKEN, CLUSTER)
            .viewer_token(VIEWER)
            .env("MASTER_HISTORY_INTERVAL", "1s")
            .start()
    };
    let mut first = master("master-a");
    let addr = first.addr;

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
            &numbered_snapshot(CLUSTER, NODE, k, base),
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

    let second = master("master-b");
    let addr = second.addr;
    let stored = stored_numbers(addr, VIEWER, CLUSTER, NODE, base);
    let want: BTreeSet<i64> = (1..=PUSHES as i64).collect();
    assert_eq!(stored, want, "every acknowledged point, from PostgreSQL");
    let latest = get_json(
        addr,
        &format!("/api/v2/clusters/{CLUSTER}/node-metrics/{NODE}"),
    );
    assert_eq!(latest["uptime"], serde_json::json!(PUSHES), "{latest}");
    second.proc.assert_no_panic();
    assert!(!sqlite.exists());
}
