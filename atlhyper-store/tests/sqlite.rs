//! What only the SQLite engine has: persistence, the schema, refusing foreign or corrupt files.

mod common;

use std::sync::Arc;
use std::time::Duration;

use atlhyper_model::CommandStatus;
use atlhyper_store::{
    APPLICATION_ID, AgentRegistry, AgentSeen, AlertStore, AuditLog, CommandQueue, HistoryQuery,
    MetricsStore, SCHEMA_VERSION, SeenVia, SqliteOptions, SqliteStore, StoreError, Synchronous,
};
use common::{command, point, snapshot, t};

fn all(node: &str) -> HistoryQuery {
    HistoryQuery {
        cluster_id: "prod".to_owned(),
        node_name: node.to_owned(),
        from: t(-1_000_000),
        to: t(1_000_000),
        max_points: None,
    }
}

fn pragma(path: &std::path::Path, name: &str) -> String {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row(&format!("PRAGMA {name}"), [], |r| {
        r.get::<_, rusqlite::types::Value>(0)
    })
    .map(|v| match v {
        rusqlite::types::Value::Integer(i) => i.to_string(),
        rusqlite::types::Value::Text(s) => s,
        other => format!("{other:?}"),
    })
    .unwrap()
}

#[tokio::test]
async fn everything_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let snap = snapshot("n1", t(0), 12.5);
    let pts: Vec<_> = (0..50)
        .map(|i| point("n1", t(i * 300), i as f64 / 3.0))
        .collect();
    {
        let s = SqliteStore::open(&path).unwrap();
        s.upsert_latest("prod", std::slice::from_ref(&snap))
            .await
            .unwrap();
        s.append_history("prod", &pts).await.unwrap();
        s.enqueue(&command("c1", "prod", "ping", 0, 600))
            .await
            .unwrap();
        s.take("prod", 1, Duration::from_secs(30), t(1))
            .await
            .unwrap();
        s.seen(&AgentSeen {
            cluster_id: "prod".to_owned(),
            agent_version: "1.2.3".to_owned(),
            remote_addr: "10.0.0.1:1".to_owned(),
            at: t(5),
            via: SeenVia::Heartbeat,
        })
        .await
        .unwrap();
        s.close().unwrap();
    }
    // Closing folded the WAL into the database file.
    let wal = dir.path().join("a.db-wal");
    assert!(
        std::fs::metadata(&wal).map_or(true, |m| m.len() == 0),
        "WAL left behind"
    );
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.get_latest("prod", "n1").await.unwrap(), Some(snap));
    assert_eq!(s.history(&all("n1")).await.unwrap(), pts);
    // The lease survives too: not offered before it ends, offered after.
    assert!(
        s.take("prod", 1, Duration::from_secs(30), t(30))
            .await
            .unwrap()
            .is_empty()
    );
    let again = s
        .take("prod", 1, Duration::from_secs(30), t(31))
        .await
        .unwrap();
    assert_eq!(again[0].started_at, Some(t(1)));
    let agents = AgentRegistry::list(&s, t(6), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(agents[0].agent_version, "1.2.3");
    s.integrity_check().await.unwrap();
}

#[tokio::test]
async fn schema_version_wal_and_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full.db");
    let s = SqliteStore::open(&full).unwrap();
    assert_eq!(pragma(&full, "user_version"), SCHEMA_VERSION.to_string());
    assert_eq!(pragma(&full, "application_id"), APPLICATION_ID.to_string());
    assert_eq!(pragma(&full, "journal_mode"), "wal");
    drop(s);
    let conn = rusqlite::Connection::open(&full).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        tables,
        [
            "agent",
            "alert_active",
            "alert_history",
            "alert_rule",
            "audit",
            "command",
            "history",
            "latest",
            "node",
            "notification",
            "notified_group",
            "series",
            "series_dict",
            "series_node",
            "silence"
        ]
    );
    // History reads are a range of the primary key, not a scan.
    let plan: Vec<String> = conn
        .prepare(
            "EXPLAIN QUERY PLAN SELECT h.ts FROM node n JOIN history h ON h.node_id = n.id
             WHERE n.cluster_id = 'a' AND n.node_name = 'b' AND h.ts BETWEEN 1 AND 2
             ORDER BY h.ts",
        )
        .unwrap()
        .query_map([], |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(plan.len(), 2, "{plan:?}");
    assert!(plan.iter().all(|p| p.starts_with("SEARCH")), "{plan:?}");
    assert!(
        plan.iter()
            .any(|p| p.contains("PRIMARY KEY (node_id=? AND ts>? AND ts<?)")),
        "{plan:?}"
    );
    // Reopening an up-to-date database changes nothing.
    let normal = SqliteOptions {
        synchronous: Synchronous::Normal,
        ..SqliteOptions::default()
    };
    let s = SqliteStore::open_with(&full, &normal).unwrap();
    s.integrity_check().await.unwrap();
}

#[test]
fn random_bytes_are_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("random.db");
    let mut bytes = vec![0u8; 64 * 1024];
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for b in &mut bytes {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::write(&path, &bytes).unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    assert!(err.to_string().contains("not an SQLite database"), "{err}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "the file is left alone"
    );
}

#[test]
fn text_file_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "hello, this is not a database\n".repeat(200)).unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
}

#[test]
fn foreign_databases_are_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.db");
    {
        let conn = rusqlite::Connection::open(&other).unwrap();
        conn.execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);")
            .unwrap();
    }
    let before = std::fs::read(&other).unwrap();
    let err = SqliteStore::open(&other).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    assert!(
        err.to_string().contains("not an atlhyper-rs database"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&other).unwrap(),
        before,
        "the file is left alone"
    );

    let versioned = dir.path().join("versioned.db");
    {
        let conn = rusqlite::Connection::open(&versioned).unwrap();
        conn.pragma_update(None, "user_version", 7).unwrap();
    }
    let err = SqliteStore::open(&versioned).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");

    let alien = dir.path().join("alien.db");
    {
        let conn = rusqlite::Connection::open(&alien).unwrap();
        conn.pragma_update(None, "application_id", 0x1234).unwrap();
    }
    let err = SqliteStore::open(&alien).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
}

#[test]
fn a_newer_schema_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("newer.db");
    drop(SqliteStore::open(&path).unwrap());
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
    }
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    assert!(err.to_string().contains("newer"), "{err}");
}

#[tokio::test]
async fn a_version_1_database_migrates_and_keeps_its_commands() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    {
        let s = SqliteStore::open(&path).unwrap();
        s.enqueue(&command("kept", "prod", "ping", 0, 100))
            .await
            .unwrap();
        s.close().unwrap();
    }
    // Back to what version 1 wrote: no index for the command prune, no alerting, notification,
    // series or audit tables.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP INDEX command_finished; DROP TABLE alert_rule; DROP TABLE alert_active; \
             DROP TABLE alert_history; DROP TABLE silence; DROP TABLE notified_group; \
             DROP TABLE notification; DROP TABLE series; DROP TABLE series_dict; \
             DROP TABLE series_node; DROP TABLE audit; PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.get("kept").await.unwrap().unwrap().command_id, "kept");
    assert_eq!(s.prune_commands(t(1000)).await.unwrap(), 0, "pending stays");
    s.close().unwrap();
    assert_eq!(pragma(&path, "user_version"), SCHEMA_VERSION.to_string());
    let conn = rusqlite::Connection::open(&path).unwrap();
    let index: String = conn
        .query_row(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'command_finished'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(index, "command_finished");
    // Version 3 added the alerting tables and version 6 the audit log, and they work.
    let s = SqliteStore::open(&path).unwrap();
    assert!(s.active_alerts().await.unwrap().is_empty());
    let audit = s
        .list_audit(&atlhyper_store::AuditQuery::default())
        .await
        .unwrap();
    assert!(audit.is_empty());
    s.close().unwrap();
}

#[tokio::test]
async fn damaged_pages_are_reported_not_panicked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.db");
    {
        let s = SqliteStore::open(&path).unwrap();
        let pts: Vec<_> = (0..5000)
            .map(|i| point("n1", t(i * 300), i as f64))
            .collect();
        s.append_history("prod", &pts).await.unwrap();
        s.close().unwrap();
    }
    // Closed: the WAL is checkpointed into the main file. Overwrite everything past page 1.
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 16 * 4096, "{} bytes", bytes.len());
    for (i, b) in bytes.iter_mut().enumerate().skip(4096) {
        *b = (i * 31 % 251) as u8;
    }
    std::fs::write(&path, &bytes).unwrap();
    match SqliteStore::open(&path) {
        Err(e) => assert!(matches!(e, StoreError::Corrupt(_)), "{e}"),
        Ok(s) => {
            let err = s.history(&all("n1")).await.unwrap_err();
            assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
            let err = s.integrity_check().await.unwrap_err();
            assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_and_readers_agree() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(SqliteStore::open(dir.path().join("c.db")).unwrap());
    let mut tasks = Vec::new();
    for w in 0..8 {
        let s = Arc::clone(&s);
        tasks.push(tokio::spawn(async move {
            let node = format!("n{w}");
            for batch in 0..20 {
                let pts: Vec<_> = (0..25)
                    .map(|i| point(&node, t((batch * 25 + i) * 300), i as f64))
                    .collect();
                assert_eq!(s.append_history("prod", &pts).await.unwrap(), 25);
                let seen = s.history(&all(&node)).await.unwrap();
                assert!(
                    seen.len() >= ((batch + 1) * 25) as usize,
                    "read your writes"
                );
            }
            s.enqueue(&command(&format!("cmd{w}"), "prod", "ping", w, 600))
                .await
                .unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(s.list_nodes("prod").await.unwrap().len(), 8);
    for w in 0..8 {
        assert_eq!(s.history(&all(&format!("n{w}"))).await.unwrap().len(), 500);
    }
    let taken = s
        .take("prod", 100, Duration::from_secs(1), t(1))
        .await
        .unwrap();
    assert_eq!(taken.len(), 8);
    assert!(taken.iter().all(|c| c.status == CommandStatus::Running));
}

/// Series rows of the first layout (dictionaries without the layout mark, temperatures in
/// hundredths, every head zigzag'd), as the previous build wrote them, still read; new rows
/// beside them use the current layout.
#[tokio::test]
async fn series_rows_of_the_first_layout_still_read() {
    use atlhyper_store::{Figure, SeriesKey, SeriesQuery, SeriesRow, SeriesStore, Triple};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    SqliteStore::open(&path).unwrap().close().unwrap();
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        // Keys: cpu.usage (id 0, device ""), temp (id 26) "t". Values: cpu (1.25, 42.5, 99.99)
        // as zigzag(125) << 1 | 1 = 501, 4125, 5749; temp -5.5 as zigzag(-550) << 1 = 2198.
        let keys: &[u8] = &[0, 0, 26, 1, b't'];
        let values: &[u8] = &[0xf5, 0x03, 0x9d, 0x20, 0xf5, 0x2c, 0x96, 0x11];
        conn.execute_batch(
            "INSERT INTO series_node (id, cluster_id, node_name) VALUES (1, 'prod', 'a');",
        )
        .unwrap();
        conn.execute(
            "INSERT INTO series_dict (id, keys) VALUES (1, ?1)",
            rusqlite::params![keys],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO series (node_id, tier, ts, dict_id, samples, data) \
             VALUES (1, 0, 0, 1, 60, ?1)",
            rusqlite::params![values],
        )
        .unwrap();
    }
    let s = SqliteStore::open(&path).unwrap();
    let (cpu, temp) = (
        SeriesKey::node(Figure::CpuUsage),
        SeriesKey::device(Figure::Temp, "t"),
    );
    s.append_series(
        "prod",
        0,
        &[SeriesRow {
            node_name: "a".to_owned(),
            start_ms: 300_000,
            samples: 1,
            series: vec![
                (cpu.clone(), Triple::one(1.0)),
                (temp.clone(), Triple::one(-5.56)),
            ],
        }],
    )
    .await
    .unwrap();
    let rows = s
        .read_series(&SeriesQuery::node("prod", "a", 0, 0, 300_000))
        .await
        .unwrap();
    assert_eq!(
        rows[0].series,
        [
            (cpu.clone(), Triple::new(1.25, 42.5, 99.99)),
            (temp.clone(), Triple::one(-5.5))
        ]
    );
    // The new row: tenths of a degree.
    assert_eq!(
        rows[1].series,
        [(cpu, Triple::one(1.0)), (temp, Triple::one(-5.6))]
    );
}
