//! Store benches: latest upsert of 1000 nodes, history append throughput, a 30-day read of one
//! node (raw and downsampled to 500 points), on SQLite (FULL and NORMAL), PostgreSQL (a
//! throwaway local server, fsync on, over 127.0.0.1; skipped when PostgreSQL is not installed)
//! and in memory, in one run. `audit_append` is what the master adds to every operator write
//! (one audit entry, one commit), next to `heartbeat_commit` (the same shape of write).
//!
//! Before the criterion groups it also writes one day of history for many nodes (5-minute points,
//! one batch per timestamp as the master does) to a fresh file and prints the sustained append
//! rate and the database bytes per node per day.
//!
//! Run: `cargo bench -p atlhyper-store --bench store -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use atlhyper_model::{MetricsDataPoint, NodeMetricsSnapshot};
use atlhyper_store::{
    AgentRegistry, AgentSeen, AuditEntry, AuditLog, HistoryQuery, MemoryStore, MetricsStore,
    PgStore, SeenVia, SqliteOptions, SqliteStore, Synchronous,
};
use atlhyper_testkit::TestPostgres;
use chrono::{DateTime, TimeZone, Utc};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;

fn t(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap() + chrono::TimeDelta::seconds(secs)
}

/// Node `node` at `at`: the test kit's realistic snapshot (4 cores, 2 disks, 2 interfaces,
/// 3 sensors, 10 processes), its load spread over the nodes.
fn snapshot(node: usize, at: DateTime<Utc>) -> NodeMetricsSnapshot {
    atlhyper_testkit::node(&format!("node-{node:04}"), at, (node % 100) as f64 / 100.0)
}

fn point(node: usize, at: DateTime<Utc>, i: i64) -> MetricsDataPoint {
    let v = (i % 1000) as f64 / 10.0 + node as f64 / 1000.0;
    MetricsDataPoint {
        timestamp: at,
        node_name: format!("node-{node:04}"),
        cpu_usage: v,
        memory_usage: 40.0 + v / 3.0,
        disk_usage: 24.6,
        disk_io_read: 1024.0 * v,
        disk_io_write: 4096.5 + v,
        network_rx: 123_456.7 + v,
        network_tx: 65_432.1,
        cpu_temp: 48.5,
        load_1: v / 50.0,
        ..Default::default()
    }
}

fn sqlite(dir: &tempfile::TempDir, name: &str, synchronous: Synchronous) -> SqliteStore {
    let options = SqliteOptions {
        synchronous,
        ..SqliteOptions::default()
    };
    SqliteStore::open_with(dir.path().join(name), &options).unwrap()
}

/// One day of 5-minute points for `nodes` nodes, one batch per timestamp; prints the rate and
/// the file size per node per day.
fn day_of_history(rt: &Runtime, nodes: usize, synchronous: Synchronous) {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir, "day.db", synchronous);
    let started = Instant::now();
    for step in 0..288i64 {
        let at = t(step * 300);
        let batch: Vec<_> = (0..nodes).map(|n| point(n, at, step)).collect();
        rt.block_on(store.append_history("bench", &batch)).unwrap();
    }
    let elapsed = started.elapsed();
    store.close().unwrap();
    let path = dir.path().join("day.db");
    let bytes = std::fs::metadata(&path).unwrap().len();
    let wal = std::fs::metadata(dir.path().join("day.db-wal")).map_or(0, |m| m.len());
    let points = 288 * nodes;
    println!(
        "day_of_history/{synchronous:?}: {nodes} nodes x 288 points = {points} points in \
         {:.2} s = {:.0} points/s sustained; file {bytes} B (+ WAL {wal} B) = {:.0} B per node per day",
        elapsed.as_secs_f64(),
        points as f64 / elapsed.as_secs_f64(),
        (bytes + wal) as f64 / nodes as f64
    );
}

/// A store over a fresh database of `server`.
fn postgres(rt: &Runtime, server: &TestPostgres) -> PgStore {
    rt.block_on(PgStore::connect(&server.fresh_database()))
        .unwrap()
}

/// [`day_of_history`] on PostgreSQL; the size is the history partition's (table, index, TOAST).
fn day_of_history_pg(rt: &Runtime, server: &TestPostgres, nodes: usize) {
    let url = server.fresh_database();
    let store = rt.block_on(PgStore::connect(&url)).unwrap();
    let started = Instant::now();
    for step in 0..288i64 {
        let at = t(step * 300);
        let batch: Vec<_> = (0..nodes).map(|n| point(n, at, step)).collect();
        rt.block_on(store.append_history("bench", &batch)).unwrap();
    }
    let elapsed = started.elapsed();
    let bytes: i64 = rt.block_on(async {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
            .query_one(
                "SELECT pg_total_relation_size('history_p20240101')::bigint",
                &[],
            )
            .await
            .unwrap()
            .get(0)
    });
    let points = 288 * nodes;
    println!(
        "day_of_history/postgres: {nodes} nodes x 288 points = {points} points in {:.2} s = \
         {:.0} points/s sustained; partition {bytes} B = {:.0} B per node per day",
        elapsed.as_secs_f64(),
        points as f64 / elapsed.as_secs_f64(),
        bytes as f64 / nodes as f64
    );
}

fn benches(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    // Durable (fsync on), as SQLite FULL.
    let pg = TestPostgres::start(true);
    day_of_history(&rt, 500, Synchronous::Full);
    day_of_history(&rt, 500, Synchronous::Normal);
    if let Some(server) = &pg {
        day_of_history_pg(&rt, server, 500);
    }

    let dir = tempfile::tempdir().unwrap();

    // Latest upsert: 1000 nodes in one batch, a newer timestamp each time.
    let mut group = c.benchmark_group("latest_upsert_1000_nodes");
    group.throughput(Throughput::Elements(1000));
    group.sample_size(20);
    let mut step = 0i64;
    let mut batch = move || {
        step += 1;
        (0..1000).map(|n| snapshot(n, t(step))).collect::<Vec<_>>()
    };
    for sync in [Synchronous::Full, Synchronous::Normal] {
        let store = sqlite(&dir, &format!("latest-{sync:?}.db"), sync);
        group.bench_function(format!("sqlite_{sync:?}"), |b| {
            b.iter_batched(
                &mut batch,
                |snaps| rt.block_on(store.upsert_latest("bench", &snaps)).unwrap(),
                BatchSize::LargeInput,
            );
        });
    }
    if let Some(server) = &pg {
        let store = postgres(&rt, server);
        group.bench_function("postgres", |b| {
            b.iter_batched(
                &mut batch,
                |snaps| rt.block_on(store.upsert_latest("bench", &snaps)).unwrap(),
                BatchSize::LargeInput,
            );
        });
    }
    let memory = MemoryStore::new();
    group.bench_function("memory", |b| {
        b.iter_batched(
            &mut batch,
            |snaps| rt.block_on(memory.upsert_latest("bench", &snaps)).unwrap(),
            BatchSize::LargeInput,
        );
    });
    group.finish();

    // History append: batches of 1000 nodes at one timestamp, as the master appends them.
    let mut group = c.benchmark_group("history_append_1000_points");
    group.throughput(Throughput::Elements(1000));
    group.sample_size(20);
    let mut step = 0i64;
    let mut points = move || {
        step += 1;
        (0..1000)
            .map(|n| point(n, t(step * 300), step))
            .collect::<Vec<_>>()
    };
    for sync in [Synchronous::Full, Synchronous::Normal] {
        let store = sqlite(&dir, &format!("append-{sync:?}.db"), sync);
        group.bench_function(format!("sqlite_{sync:?}"), |b| {
            b.iter_batched(
                &mut points,
                |p| {
                    assert_eq!(
                        rt.block_on(store.append_history("bench", &p)).unwrap(),
                        1000
                    )
                },
                BatchSize::LargeInput,
            );
        });
    }
    if let Some(server) = &pg {
        let store = postgres(&rt, server);
        group.bench_function("postgres", |b| {
            b.iter_batched(
                &mut points,
                |p| {
                    assert_eq!(
                        rt.block_on(store.append_history("bench", &p)).unwrap(),
                        1000
                    )
                },
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();

    // One small write (an agent heartbeat) per commit: what the fsync of FULL costs.
    let mut group = c.benchmark_group("heartbeat_commit");
    for sync in [Synchronous::Full, Synchronous::Normal] {
        let store = sqlite(&dir, &format!("beat-{sync:?}.db"), sync);
        let mut step = 0i64;
        group.bench_function(format!("sqlite_{sync:?}"), |b| {
            b.iter(|| {
                step += 1;
                let seen = AgentSeen {
                    cluster_id: "bench".to_owned(),
                    agent_version: "0.1.0".to_owned(),
                    remote_addr: "10.0.0.1:4000".to_owned(),
                    at: t(step),
                    via: SeenVia::Heartbeat,
                };
                rt.block_on(store.seen(&seen)).unwrap();
            });
        });
    }
    if let Some(server) = &pg {
        let store = postgres(&rt, server);
        let mut step = 0i64;
        group.bench_function("postgres", |b| {
            b.iter(|| {
                step += 1;
                let seen = AgentSeen {
                    cluster_id: "bench".to_owned(),
                    agent_version: "0.1.0".to_owned(),
                    remote_addr: "10.0.0.1:4000".to_owned(),
                    at: t(step),
                    via: SeenVia::Heartbeat,
                };
                rt.block_on(store.seen(&seen)).unwrap();
            });
        });
    }
    group.finish();

    // One audit entry per commit: the cost the audit log adds to an operator write.
    let entry = |step: i64| AuditEntry {
        at: t(step),
        actor: "alice".to_owned(),
        source: "10.0.0.7:51234".to_owned(),
        action: "command.create".to_owned(),
        target: format!("/api/v2/commands/{step:032x}"),
        status: 201,
        detail: "cluster=prod-a action=node_detail".to_owned(),
    };
    let mut group = c.benchmark_group("audit_append");
    for sync in [Synchronous::Full, Synchronous::Normal] {
        let store = sqlite(&dir, &format!("audit-{sync:?}.db"), sync);
        let mut step = 0i64;
        group.bench_function(format!("sqlite_{sync:?}"), |b| {
            b.iter(|| {
                step += 1;
                rt.block_on(store.append_audit(&entry(step))).unwrap();
            });
        });
    }
    if let Some(server) = &pg {
        let store = postgres(&rt, server);
        let mut step = 0i64;
        group.bench_function("postgres", |b| {
            b.iter(|| {
                step += 1;
                rt.block_on(store.append_audit(&entry(step))).unwrap();
            });
        });
    }
    let memory = MemoryStore::new();
    let mut step = 0i64;
    group.bench_function("memory", |b| {
        b.iter(|| {
            step += 1;
            rt.block_on(memory.append_audit(&entry(step))).unwrap();
        });
    });
    group.finish();

    // 30 days of one node (8,640 points) among 10 nodes: raw and downsampled to 500.
    let store = sqlite(&dir, "read.db", Synchronous::Normal);
    let memory = MemoryStore::new();
    for step in 0..8640i64 {
        let batch: Vec<_> = (0..10).map(|n| point(n, t(step * 300), step)).collect();
        rt.block_on(memory.append_history("bench", &batch)).unwrap();
    }
    let pg_store = pg.as_ref().map(|server| postgres(&rt, server));
    for chunk in (0..8640i64).collect::<Vec<_>>().chunks(100) {
        let batch: Vec<_> = chunk
            .iter()
            .flat_map(|&step| (0..10).map(move |n| point(n, t(step * 300), step)))
            .collect();
        rt.block_on(store.append_history("bench", &batch)).unwrap();
        if let Some(pg_store) = &pg_store {
            rt.block_on(pg_store.append_history("bench", &batch))
                .unwrap();
        }
    }
    let query = |max_points| HistoryQuery {
        cluster_id: "bench".to_owned(),
        node_name: "node-0007".to_owned(),
        from: t(0),
        to: t(8639 * 300),
        max_points,
    };
    let mut group = c.benchmark_group("history_read_30_days");
    group.throughput(Throughput::Elements(8640));
    for (name, max) in [("raw", None), ("downsampled_500", Some(500))] {
        let q = query(max);
        let want = if max.is_some() { 500 } else { 8640 };
        assert_eq!(rt.block_on(store.history(&q)).unwrap().len(), want);
        group.bench_function(format!("sqlite_{name}"), |b| {
            b.iter(|| black_box(rt.block_on(store.history(&q)).unwrap()));
        });
        group.bench_function(format!("memory_{name}"), |b| {
            b.iter(|| black_box(rt.block_on(memory.history(&q)).unwrap()));
        });
        if let Some(pg_store) = &pg_store {
            assert_eq!(rt.block_on(pg_store.history(&q)).unwrap().len(), want);
            group.bench_function(format!("postgres_{name}"), |b| {
                b.iter(|| black_box(rt.block_on(pg_store.history(&q)).unwrap()));
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = store;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(store);
