//! `atlhyper-master migrate --from sqlite://PATH --to postgres://...` (the library function the
//! subcommand runs): everything of an SQLite database of the master lands in PostgreSQL, a
//! second run adds nothing and changes nothing, and what PostgreSQL already held wins.

use std::time::Duration;

use atlhyper_master::migrate::{MigrateArgs, migrate};
use atlhyper_model::{CommandRecord, CommandResult, MetricsDataPoint};
use atlhyper_store::{
    AgentRegistry, AgentSeen, AlertRuleRecord, AlertStore, AuditEntry, AuditLog, AuditQuery,
    CommandFilter, CommandQueue, Figure, HistoryQuery, MetricsStore, PgStore, SeenVia, SeriesKey,
    SeriesQuery, SeriesRow, SeriesStore, SqliteStore, Triple,
};
use atlhyper_testkit::TestPostgres;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};

fn t(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap() + TimeDelta::seconds(secs)
}

fn command(id: &str, created: i64) -> CommandRecord {
    CommandRecord {
        command_id: id.to_owned(),
        cluster_id: "prod".to_owned(),
        action: "ping".to_owned(),
        target_kind: "Node".to_owned(),
        target_name: "n1".to_owned(),
        created_at: t(created),
        deadline: t(created + 3600),
        ..CommandRecord::default()
    }
}

/// What a store holds, as text, for comparing two engines.
async fn dump<
    S: MetricsStore + CommandQueue + AgentRegistry + AlertStore + AuditLog + SeriesStore,
>(
    s: &S,
) -> String {
    let mut out = String::new();
    for c in s.list_clusters().await.unwrap() {
        out += &format!("{c}: {:?}\n", s.list_latest(&c).await.unwrap());
        for n in s.list_nodes(&c).await.unwrap() {
            let q = HistoryQuery {
                cluster_id: c.clone(),
                node_name: n.clone(),
                from: t(-1_000_000),
                to: t(1_000_000),
                max_points: None,
            };
            out += &format!("{c}/{n}: {:?}\n", s.history(&q).await.unwrap());
        }
    }
    let all = CommandFilter {
        limit: Some(10_000),
        ..CommandFilter::default()
    };
    out += &format!("{:?}\n", CommandQueue::list(s, &all).await.unwrap());
    out += &format!(
        "{:?}\n",
        AgentRegistry::list(s, t(0), Duration::from_secs(60))
            .await
            .unwrap()
    );
    out += &format!("{:?}\n", s.list_alert_rules().await.unwrap());
    let every_entry = AuditQuery {
        limit: atlhyper_store::MAX_AUDIT_LIMIT,
        ..AuditQuery::default()
    };
    out += &format!("{:?}\n", s.list_audit(&every_entry).await.unwrap());
    for c in s.series_clusters().await.unwrap() {
        for n in s.series_nodes(&c).await.unwrap() {
            for tier in 0..atlhyper_store::TIERS {
                let q = SeriesQuery::node(&c, &n, tier, i64::MIN, i64::MAX);
                out += &format!("{c}/{n}/{tier}: {:?}\n", s.read_series(&q).await.unwrap());
            }
        }
    }
    out
}

fn audit_entry(i: i64) -> AuditEntry {
    AuditEntry {
        // Pairs share an instant: paging must not lose or repeat them.
        at: t(i / 2),
        actor: "alice".to_owned(),
        source: "10.0.0.7:5000".to_owned(),
        action: "command.create".to_owned(),
        target: format!("/api/v2/commands/{i}"),
        status: 201,
        detail: String::new(),
    }
}

fn series_row(node: &str, start_s: i64, cpu: f64) -> SeriesRow {
    SeriesRow {
        node_name: node.to_owned(),
        start_ms: t(start_s).timestamp_millis(),
        samples: 60,
        series: vec![
            (
                SeriesKey::node(Figure::CpuUsage),
                Triple::new(cpu - 1.0, cpu, cpu + 1.0),
            ),
            (
                SeriesKey::device(Figure::DiskWriteRate, "vda"),
                Triple::new(0.0, 1024.0, 4096.0),
            ),
        ],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_copies_everything_and_is_safe_to_run_twice() {
    let Some(server) = TestPostgres::start(false) else {
        return;
    };
    let url = server.fresh_database();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("atlhyper.db");
    let sqlite = SqliteStore::open(&path).unwrap();

    // Two clusters, 3 nodes, a day of 5-minute points each (in two day partitions), commands
    // in every state, two agents, an alert rule.
    for (cluster, nodes) in [("prod", 2), ("dev", 1)] {
        let snaps: Vec<_> = (0..nodes)
            .map(|i| atlhyper_testkit::node(&format!("n{i}"), t(3000), 10.0 + f64::from(i)))
            .collect();
        sqlite.upsert_latest(cluster, &snaps).await.unwrap();
        for snap in &snaps {
            let points: Vec<MetricsDataPoint> = (0..288)
                .map(|k| MetricsDataPoint {
                    timestamp: t(-43_200 + k * 300),
                    cpu_usage: k as f64 / 3.0,
                    ..MetricsDataPoint::from_snapshot(snap)
                })
                .collect();
            assert_eq!(sqlite.append_history(cluster, &points).await.unwrap(), 288);
        }
    }
    for i in 0..5 {
        sqlite
            .enqueue(&command(&format!("cmd-{i}"), i))
            .await
            .unwrap();
    }
    sqlite
        .take("prod", 2, Duration::from_secs(30), t(10))
        .await
        .unwrap();
    sqlite
        .complete(
            &CommandResult {
                cluster_id: "prod".to_owned(),
                command_id: "cmd-0".to_owned(),
                success: true,
                output: "pong".to_owned(),
                error: String::new(),
                exec_time_ms: 7,
            },
            t(11),
        )
        .await
        .unwrap();
    for (cluster, via) in [("prod", SeenVia::Snapshot), ("dev", SeenVia::Heartbeat)] {
        sqlite
            .seen(&AgentSeen {
                cluster_id: cluster.to_owned(),
                agent_version: "0.1.0".to_owned(),
                remote_addr: "10.0.0.9:1234".to_owned(),
                at: t(3000),
                via,
            })
            .await
            .unwrap();
    }
    sqlite
        .put_alert_rule(&AlertRuleRecord {
            name: "HighCpu".to_owned(),
            body: r#"{"expr":"cpu > 90"}"#.to_owned(),
            updated_at: t(5),
        })
        .await
        .unwrap();
    // 25 audit entries; series rows in both tiers.
    for i in 0..25 {
        sqlite.append_audit(&audit_entry(i)).await.unwrap();
    }
    let tier0: Vec<SeriesRow> = (0..12)
        .map(|k| series_row("n0", k * 300, k as f64))
        .collect();
    sqlite.append_series("prod", 0, &tier0).await.unwrap();
    sqlite
        .append_series("prod", 1, &[series_row("n0", 0, 5.5)])
        .await
        .unwrap();
    sqlite
        .append_series("dev", 0, &[series_row("n0", 0, 7.0)])
        .await
        .unwrap();
    let want = dump(&sqlite).await;
    sqlite.close().unwrap();

    let args = MigrateArgs {
        from: format!("sqlite://{}", path.display()),
        to: url.clone(),
        db_ca_file: None,
    };
    let first = migrate(&args).await.unwrap();
    assert_eq!(first.latest, (3, 3));
    assert_eq!(first.history, (3 * 288, 3 * 288));
    assert_eq!(first.commands, (5, 5));
    assert_eq!(first.agents, 2);
    assert_eq!(first.audit, (25, 25));
    assert_eq!(first.series, (14, 14));
    let pg = PgStore::connect(&url).await.unwrap();
    assert_eq!(dump(&pg).await, want, "PostgreSQL holds what SQLite held");
    assert_eq!(pg.history_partitions().await.unwrap().len(), 2);

    // Again: nothing new, nothing changed.
    let second = migrate(&args).await.unwrap();
    assert_eq!(second.latest, (3, 0));
    assert_eq!(second.history, (3 * 288, 0));
    assert_eq!(second.commands, (5, 0));
    assert_eq!(second.audit, (25, 0));
    assert_eq!(second.series, (14, 0));
    assert_eq!(dump(&pg).await, want);

    // A master on PostgreSQL wrote a newer latest: a third run leaves it.
    let newer = atlhyper_testkit::node("n0", t(9000), 99.0);
    pg.upsert_latest("prod", std::slice::from_ref(&newer))
        .await
        .unwrap();
    // ... and a roll-up of its own of an hour SQLite has too: that stays as well.
    let rolled = series_row("n0", 0, 42.0);
    pg.append_series("prod", 1, std::slice::from_ref(&rolled))
        .await
        .unwrap();
    migrate(&args).await.unwrap();
    assert_eq!(pg.get_latest("prod", "n0").await.unwrap(), Some(newer));
    let hour = pg
        .read_series(&SeriesQuery::node("prod", "n0", 1, i64::MIN, i64::MAX))
        .await
        .unwrap();
    assert_eq!(hour.len(), 1);
    assert_eq!(hour[0].series[0].1, rolled.series[0].1);

    // Bad arguments are errors, not panics.
    let bad = MigrateArgs {
        from: "/no/scheme.db".to_owned(),
        to: url.clone(),
        db_ca_file: None,
    };
    assert!(migrate(&bad).await.is_err());
    let missing = MigrateArgs {
        from: "sqlite:///nonexistent/atlhyper.db".to_owned(),
        to: url,
        db_ca_file: None,
    };
    assert!(migrate(&missing).await.is_err());
}
