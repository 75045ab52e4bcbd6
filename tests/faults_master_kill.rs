//! Fault suite: the master SIGKILLed 20 times during ingest. Afterwards SQLite's
//! `PRAGMA integrity_check` says ok, and every snapshot the master acknowledged (200) is there:
//! its history point, and the latest snapshot is the last one acknowledged.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use atlhyper_testkit::http;
use common::{MasterBuilder, Scratch, numbered_snapshot, serial, stored_numbers};

const AGENT_TOKEN: &str = "agent-token-kill-0000";
const VIEWER: &str = "viewer-token-kill-0000";
const CLUSTER: &str = "kill-cluster";
const NODE: &str = "kill-node";

#[test]
fn master_sigkilled_20_times_during_ingest_loses_no_acknowledged_snapshot() {
    let _serial = serial();
    let dir = Scratch::new("master-kill");
    let db = dir.0.join("atlhyper.db");
    let master = MasterBuilder::new("atlhyper-master")
        .in_dir(&dir.0)
        .sqlite(&db)
        .agent_token(AGENT_TOKEN, CLUSTER)
        .viewer_token(VIEWER)
        .env("MASTER_HISTORY_INTERVAL", "1s")
        .start();
    let addr = master.addr;
    let master = Arc::new(Mutex::new(master));

    // The pusher: like an agent, it retries a snapshot until the master acknowledges it, then
    // moves on. At most 450 snapshots so the history answer is never downsampled (500 points).
    let base = chrono::Utc::now() - chrono::Duration::minutes(10);
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::<u64>::new()));
    let errors = Arc::new(AtomicU32::new(0));
    let pusher = {
        let (stop, acked, errors) = (stop.clone(), acked.clone(), errors.clone());
        std::thread::spawn(move || {
            let auth = format!("Bearer {AGENT_TOKEN}");
            let headers = [
                ("Content-Encoding", "gzip"),
                ("X-Cluster-ID", CLUSTER),
                ("Authorization", auth.as_str()),
            ];
            let deadline = Instant::now() + Duration::from_secs(90);
            let mut k = 1u64;
            while k <= 450 && !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let body = numbered_snapshot(CLUSTER, NODE, k, base);
                match http(
                    addr,
                    "POST",
                    "/agent/snapshot",
                    &headers,
                    &body,
                    Duration::from_secs(2),
                ) {
                    Ok((200, _)) => {
                        acked.lock().expect("lock").push(k);
                        k += 1;
                        std::thread::sleep(Duration::from_millis(15));
                    }
                    Ok((code, text)) => {
                        // 503 while the store is not ready is fine; anything else is not.
                        assert!(
                            code == 503,
                            "snapshot {k}: {code} {}",
                            String::from_utf8_lossy(&text)
                        );
                        errors.fetch_add(1, Ordering::Relaxed);
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
            }
        })
    };

    // The killer: 20 SIGKILLs at random moments of ingest, restarting at once each time.
    let mut downtime = Duration::ZERO;
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..20 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(150 + rng % 250));
        let t = Instant::now();
        let mut m = master.lock().expect("lock");
        m.restart();
        downtime += t.elapsed();
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    pusher.join().expect("pusher");
    let acked: Vec<u64> = acked.lock().expect("lock").clone();
    let last = *acked.last().expect("something was acknowledged");
    assert!(
        acked.len() >= 100,
        "ingest ran during the kills ({})",
        acked.len()
    );

    // Clean stop, then SQLite's own check of the file the kills left behind.
    let mut m = Arc::try_unwrap(master)
        .expect("only owner")
        .into_inner()
        .expect("lock");
    m.proc.assert_no_panic();
    assert!(
        m.proc.terminate(Duration::from_secs(10)),
        "clean exit on SIGTERM"
    );
    let (integrity, rows) = {
        let conn =
            rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .expect("open the master's database");
        let integrity: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .expect("integrity_check");
        let rows: i64 = conn
            .query_row(
                "SELECT count(*) FROM history h JOIN node n ON n.id = h.node_id \
                 WHERE n.cluster_id = ?1 AND n.node_name = ?2",
                [CLUSTER, NODE],
                |r| r.get(0),
            )
            .expect("count history rows");
        (integrity, rows)
    };
    assert_eq!(integrity, "ok", "PRAGMA integrity_check");

    // Every acknowledged snapshot is in the history the API serves, and the latest is the last.
    m.restart();
    let stored = stored_numbers(addr, VIEWER, CLUSTER, NODE, base);
    let auth = format!("Bearer {VIEWER}");
    let lost: Vec<u64> = acked
        .iter()
        .copied()
        .filter(|k| !stored.contains(&i64::try_from(*k).expect("small")))
        .collect();
    let (code, body) = atlhyper_testkit::http_get(
        addr,
        &format!("/api/v2/clusters/{CLUSTER}/node-metrics/{NODE}"),
        &[("Authorization", &auth)],
        Duration::from_secs(10),
    )
    .expect("latest");
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    let latest: serde_json::Value = serde_json::from_slice(&body).expect("latest JSON");
    eprintln!(
        "master kill -9 x20 during ingest: {} snapshots acknowledged (last {last}), {} failed \
         attempts retried, total downtime {downtime:?} (restart to healthy), integrity_check \
         {integrity}, {rows} history rows, {} points served, {} acknowledged points missing, \
         latest uptime {}",
        acked.len(),
        errors.load(Ordering::Relaxed),
        stored.len(),
        lost.len(),
        latest["uptime"]
    );
    assert!(lost.is_empty(), "acknowledged snapshots lost: {lost:?}");
    assert_eq!(
        latest["uptime"].as_u64(),
        Some(last),
        "the latest stored snapshot is the last acknowledged one"
    );
    m.proc.assert_no_panic();
}
