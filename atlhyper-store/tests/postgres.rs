//! What only the PostgreSQL engine has: day partitions of history and their prune, migrations
//! shared by processes starting together, and leases that two stores (two masters) taking at
//! once never hand out twice.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use atlhyper_store::{
    CommandQueue, HistoryQuery, MetricsStore, PG_SCHEMA_VERSION, PgStore, StoreError,
};
use common::{command, point, t};

const DAY: i64 = 86_400;

#[tokio::test]
async fn history_is_partitioned_by_day_and_the_prune_drops_whole_days() {
    let Some(engine) = common::postgres().await else {
        return;
    };
    let s = &engine.store;
    // 2024-01-20, -21 and -22, one point every 6 hours.
    let points: Vec<_> = (0..12)
        .map(|i| point("n1", t(i * DAY / 4), i as f64))
        .collect();
    assert_eq!(s.append_history("prod", &points).await.unwrap(), 12);
    assert_eq!(
        s.history_partitions().await.unwrap(),
        [
            "history_p20240120",
            "history_p20240121",
            "history_p20240122"
        ]
    );
    // Before 2024-01-21 06:00: the first day goes whole (4 points), the second keeps 3 of 4.
    assert_eq!(s.prune_history(t(DAY + DAY / 4)).await.unwrap(), 5);
    assert_eq!(
        s.history_partitions().await.unwrap(),
        ["history_p20240121", "history_p20240122"]
    );
    let left = s
        .history(&HistoryQuery {
            cluster_id: "prod".to_owned(),
            node_name: "n1".to_owned(),
            from: t(0),
            to: t(3 * DAY),
            max_points: None,
        })
        .await
        .unwrap();
    assert_eq!(left.len(), 7);
    assert_eq!(left[0].timestamp, t(DAY + DAY / 4));
    // A dropped day comes back when a point of it arrives again.
    assert_eq!(s.append_history("prod", &points[..1]).await.unwrap(), 1);
    assert_eq!(s.history_partitions().await.unwrap().len(), 3);
}

#[tokio::test]
async fn a_partition_dropped_by_another_process_is_created_again() {
    let Some(engine) = common::postgres().await else {
        return;
    };
    let other = PgStore::connect(&engine.url).await.unwrap();
    let first = [point("n1", t(0), 1.0)];
    assert_eq!(engine.store.append_history("c", &first).await.unwrap(), 1);
    // The other process prunes the day away; this one still believes it exists.
    assert_eq!(other.prune_history(t(DAY)).await.unwrap(), 1);
    let again = [point("n1", t(60), 2.0)];
    assert_eq!(engine.store.append_history("c", &again).await.unwrap(), 1);
}

#[tokio::test]
async fn processes_starting_together_migrate_once_and_a_newer_schema_is_refused() {
    let Some(engine) = common::postgres().await else {
        return;
    };
    let url = engine.url.clone();
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { PgStore::connect(&url).await.map(drop) })
        })
        .collect();
    for start in starts {
        start.await.unwrap().unwrap();
    }
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let version: i32 = client
        .query_one("SELECT version FROM atlhyper_schema", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(version, PG_SCHEMA_VERSION);
    client
        .execute(
            "UPDATE atlhyper_schema SET version = $1",
            &[&(PG_SCHEMA_VERSION + 1)],
        )
        .await
        .unwrap();
    let refused = PgStore::connect(&url).await.unwrap_err();
    assert!(matches!(refused, StoreError::Corrupt(_)), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_taking_at_once_lease_each_command_once() {
    let Some(engine) = common::postgres().await else {
        return;
    };
    let a = std::sync::Arc::new(PgStore::connect(&engine.url).await.unwrap());
    let b = std::sync::Arc::new(PgStore::connect(&engine.url).await.unwrap());
    for i in 0..200 {
        a.enqueue(&command(&format!("cmd-{i:03}"), "prod", "ping", 0, 3600))
            .await
            .unwrap();
    }
    let takers: Vec<_> = (0..8)
        .map(|i| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    let taken = store
                        .take("prod", 3, Duration::from_secs(600), t(10))
                        .await
                        .unwrap();
                    if taken.is_empty() {
                        return got;
                    }
                    got.extend(taken.into_iter().map(|c| c.command_id));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for taker in takers {
        all.extend(taker.await.unwrap());
    }
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(all.len(), 200, "every command leased once");
    assert_eq!(unique.len(), 200);
}

#[tokio::test]
async fn a_bad_url_is_invalid_and_an_unreachable_database_a_backend_error() {
    let err = PgStore::connect("postgres://u@h:notaport/db")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    // Certificate checks without a CA to check against, or an sslmode nobody knows.
    for url in [
        "postgres://u@127.0.0.1:1/db?sslmode=verify-full",
        "postgres://u@127.0.0.1:1/db?sslmode=maybe",
    ] {
        let err = PgStore::connect(url).await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{url}: {err}");
    }
    // Nothing listens on port 1: refused at once.
    let options = atlhyper_store::PgOptions {
        connect_timeout: Duration::from_secs(2),
        ..atlhyper_store::PgOptions::default()
    };
    let err = PgStore::connect_with("postgres://u@127.0.0.1:1/db", &options)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Backend(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_reconnects_by_itself_after_an_immediate_restart() {
    // A server of its own: this test kills it.
    let Some(server) = atlhyper_testkit::TestPostgres::start(false) else {
        return;
    };
    if server.port().is_none() {
        eprintln!("skipped: the server of ATLHYPER_TEST_PG_URL cannot be restarted here");
        return;
    }
    let url = server.fresh_database();
    let options = atlhyper_store::PgOptions {
        connect_timeout: Duration::from_secs(2),
        ..atlhyper_store::PgOptions::default()
    };
    let store = PgStore::connect_with(&url, &options).await.unwrap();
    let mut acknowledged = 0;
    for i in 0..20 {
        if store
            .append_history("c", &[point("n1", t(i), i as f64)])
            .await
            .is_ok()
        {
            acknowledged += 1;
        }
    }
    assert_eq!(acknowledged, 20);

    // Down: calls fail with Backend (no panic, no hang past the timeout).
    server.stop_immediate();
    let err = store
        .append_history("c", &[point("n1", t(100), 1.0)])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Backend(_)), "{err}");

    // Back (crash recovery from the WAL): the same store works again and lost nothing it
    // acknowledged.
    server.start_again();
    let mut back = false;
    for _ in 0..50 {
        if store
            .append_history("c", &[point("n1", t(200), 2.0)])
            .await
            .is_ok()
        {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(back, "the store reconnected");
    let all = store
        .history(&HistoryQuery {
            cluster_id: "c".to_owned(),
            node_name: "n1".to_owned(),
            from: t(0),
            to: t(1000),
            max_points: None,
        })
        .await
        .unwrap();
    assert_eq!(
        all.len(),
        21,
        "20 acknowledged before the crash and 1 after"
    );
}

#[tokio::test]
async fn fleet_news_reach_every_listening_session_and_stay_under_the_payload_limit() {
    let Some(engine) = common::postgres().await else {
        return;
    };
    let s = &engine.store;
    let mut first = s.session().await.unwrap();
    let mut second = s.session().await.unwrap();
    first.listen().await.unwrap();
    second.listen().await.unwrap();
    s.notify_fleet("{\"kind\":\"command\",\"cluster\":\"prod\"}")
        .await
        .unwrap();
    for session in [&mut first, &mut second] {
        let heard = tokio::time::timeout(Duration::from_secs(10), session.next_notification())
            .await
            .expect("a notification within 10 s");
        assert_eq!(
            heard.as_deref(),
            Some("{\"kind\":\"command\",\"cluster\":\"prod\"}")
        );
    }
    let long = "x".repeat(atlhyper_store::MAX_NOTIFY_PAYLOAD + 1);
    assert!(matches!(
        s.notify_fleet(&long).await,
        Err(StoreError::Invalid(_))
    ));
    s.notify_fleet(&long[1..]).await.unwrap();
    let heard = tokio::time::timeout(Duration::from_secs(10), first.next_notification())
        .await
        .expect("the longest payload");
    assert_eq!(
        heard.map(|p| p.len()),
        Some(atlhyper_store::MAX_NOTIFY_PAYLOAD)
    );
    // The named nodes' latest rows, and nothing for names without one.
    s.upsert_latest(
        "prod",
        &[
            common::snapshot("a", t(0), 1.0),
            common::snapshot("b", t(0), 2.0),
        ],
    )
    .await
    .unwrap();
    let names = ["b".to_owned(), "gone".to_owned()];
    let rows = s.latest_of("prod", &names).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].node_name, "b");
    assert!(s.latest_of("other", &names).await.unwrap().is_empty());
}

#[tokio::test]
async fn one_session_leads_until_it_ends_then_another_takes_over() {
    let Some(engine) = common::postgres().await else {
        return;
    };
    let s = &engine.store;
    let leader = s.session().await.unwrap();
    let other = s.session().await.unwrap();
    assert!(leader.try_lead().await.unwrap());
    assert!(!other.try_lead().await.unwrap(), "two leaders");
    // The lock is not the one history partitions are created under.
    s.append_history("prod", &[point("n1", t(0), 1.0)])
        .await
        .unwrap();
    assert!(!other.try_lead().await.unwrap());
    drop(leader);
    // The server releases the lock when it sees the session gone.
    let mut took = false;
    for _ in 0..100 {
        if other.try_lead().await.unwrap() {
            took = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(took, "the lock stayed with a closed session");
    other.ping().await.unwrap();
    assert!(!other.is_closed());
}
