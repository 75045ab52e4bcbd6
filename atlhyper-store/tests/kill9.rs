//! Crash safety: a process appending in a loop is killed with SIGKILL at random moments, 30 times.
//! Every write it acknowledged (printed after the call returned) must be there afterwards, every
//! batch must be all or nothing, and `PRAGMA integrity_check` must say ok.
//!
//! The writer is this test binary itself, re-run with `--ignored --exact writer_process` and the
//! database path in the environment.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use atlhyper_model::AgentState;
use atlhyper_store::{
    AgentRegistry, AgentSeen, CommandQueue, HistoryQuery, MetricsStore, SeenVia, SqliteOptions,
    SqliteStore, Synchronous,
};
use common::{command, point, snapshot, t};

const ENV_DB: &str = "ATLHYPER_STORE_KILL9_DB";
const ENV_START: &str = "ATLHYPER_STORE_KILL9_START";
const ENV_SYNC: &str = "ATLHYPER_STORE_KILL9_SYNC";
/// History points per batch.
const POINTS: i64 = 40;
/// Nodes per batch (latest snapshots).
const NODES: i64 = 8;

/// Batch `n` writes points at t(n * POINTS + i) of node `p{i % NODES}`.
fn batch_points(n: i64) -> Vec<atlhyper_model::MetricsDataPoint> {
    (0..POINTS)
        .map(|i| {
            point(
                &format!("p{}", i % NODES),
                t(n * POINTS + i),
                (n % 1000) as f64 + i as f64 / 8.0,
            )
        })
        .collect()
}

fn options(sync: &str) -> SqliteOptions {
    SqliteOptions {
        synchronous: if sync == "normal" {
            Synchronous::Normal
        } else {
            Synchronous::Full
        },
        ..SqliteOptions::default()
    }
}

#[test]
#[ignore = "helper process of kill9_at_random_moments_loses_nothing_acknowledged"]
fn writer_process() {
    let (Ok(path), Ok(start), Ok(sync)) = (
        std::env::var(ENV_DB),
        std::env::var(ENV_START),
        std::env::var(ENV_SYNC),
    ) else {
        // Run directly (e.g. `--include-ignored`): there is nothing to write to.
        eprintln!(
            "writer_process: helper of kill9_at_random_moments_loses_nothing_acknowledged, skipped"
        );
        return;
    };
    let start: i64 = start.parse().expect("start batch");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = SqliteStore::open_with(&path, &options(&sync)).expect("open");
        let mut out = std::io::stdout().lock();
        writeln!(out, "open").unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        for n in start..start + 100_000 {
            if Instant::now() > deadline {
                break;
            }
            store
                .append_history("kill", &batch_points(n))
                .await
                .expect("append");
            writeln!(out, "ack hist {n}").unwrap();
            let snaps: Vec<_> = (0..NODES)
                .map(|i| snapshot(&format!("p{i}"), t(n), n as f64 / 10.0))
                .collect();
            store.upsert_latest("kill", &snaps).await.expect("upsert");
            writeln!(out, "ack latest {n}").unwrap();
            store
                .enqueue(&command(&format!("cmd-{n}"), "kill", "ping", n, 600))
                .await
                .expect("enqueue");
            writeln!(out, "ack cmd {n}").unwrap();
            store
                .seen(&AgentSeen {
                    cluster_id: "kill".to_owned(),
                    agent_version: "1".to_owned(),
                    remote_addr: String::new(),
                    at: t(n),
                    via: SeenVia::Heartbeat,
                })
                .await
                .expect("seen");
            writeln!(out, "ack agent {n}").unwrap();
            out.flush().unwrap();
        }
    });
}

/// What the writer acknowledged before it died.
#[derive(Debug, Default)]
struct Acks {
    opened: bool,
    hist: BTreeSet<i64>,
    latest: Option<i64>,
    cmd: BTreeSet<i64>,
    agent: Option<i64>,
}

#[test]
fn kill9_at_random_moments_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kill9.db");
    let exe = std::env::current_exe().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut rng = fastrand::Rng::with_seed(0x6b69_6c6c);
    let mut next = 0i64;
    let (mut total_acked, mut in_flight_seen) = (0usize, 0usize);
    let started = Instant::now();
    for round in 0..30 {
        let sync = if round % 2 == 0 { "full" } else { "normal" };
        let mut child = Command::new(&exe)
            .args([
                "--ignored",
                "--exact",
                "writer_process",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ENV_DB, &path)
            .env(ENV_START, next.to_string())
            .env(ENV_SYNC, sync)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut acks = Acks::default();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // libtest prints "test writer_process ... " before the test's first line.
                let line = line.rsplit("... ").next().unwrap_or_default();
                let mut words = line.split_whitespace();
                match (
                    words.next(),
                    words.next(),
                    words.next().map(str::parse::<i64>),
                ) {
                    (Some("open"), None, None) => acks.opened = true,
                    (Some("ack"), Some(what), Some(Ok(n))) => match what {
                        "hist" => {
                            acks.hist.insert(n);
                        }
                        "latest" => acks.latest = Some(n),
                        "cmd" => {
                            acks.cmd.insert(n);
                        }
                        "agent" => acks.agent = Some(n),
                        other => panic!("unknown ack {other}"),
                    },
                    _ => {} // the test harness's own lines
                }
            }
            acks
        });
        // A random moment: sometimes while opening, mostly mid-loop.
        std::thread::sleep(Duration::from_millis(rng.u64(5..400)));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "round {round}: the writer was killed, not finished"
        );
        let acks = reader.join().unwrap();

        rt.block_on(async {
            let store = SqliteStore::open(&path).expect("reopen after kill -9");
            store
                .integrity_check()
                .await
                .expect("integrity_check after kill -9");
            // Every acknowledged batch is whole.
            for &n in &acks.hist {
                for p in batch_points(n) {
                    let q = HistoryQuery {
                        cluster_id: "kill".to_owned(),
                        node_name: p.node_name.clone(),
                        from: p.timestamp,
                        to: p.timestamp,
                        max_points: None,
                    };
                    assert_eq!(
                        store.history(&q).await.unwrap(),
                        vec![p],
                        "round {round} batch {n}"
                    );
                }
            }
            // The batch in flight at the kill is all or nothing.
            let in_flight = acks.hist.last().map_or(next, |n| n + 1);
            let q = HistoryQuery {
                cluster_id: "kill".to_owned(),
                node_name: "p0".to_owned(),
                from: t(in_flight * POINTS),
                to: t(in_flight * POINTS + POINTS - 1),
                max_points: None,
            };
            let mut present = 0;
            for i in 0..NODES {
                let q = HistoryQuery {
                    node_name: format!("p{i}"),
                    ..q.clone()
                };
                present += store.history(&q).await.unwrap().len() as i64;
            }
            assert!(
                present == 0 || present == POINTS,
                "round {round}: batch {in_flight} torn: {present} of {POINTS} points"
            );
            if present == POINTS {
                in_flight_seen += 1;
            }
            if let Some(n) = acks.latest {
                for i in 0..NODES {
                    let s = store
                        .get_latest("kill", &format!("p{i}"))
                        .await
                        .unwrap()
                        .expect("acked latest");
                    assert!(
                        s.timestamp >= t(n),
                        "round {round}: latest of p{i} older than acked {n}"
                    );
                }
            }
            for &n in &acks.cmd {
                assert!(
                    store.get(&format!("cmd-{n}")).await.unwrap().is_some(),
                    "round {round}: cmd-{n} lost"
                );
            }
            if let Some(n) = acks.agent {
                let agents = AgentRegistry::list(&store, t(n), Duration::from_secs(1))
                    .await
                    .unwrap();
                assert!(
                    agents[0].last_heartbeat >= t(n),
                    "round {round}: heartbeat {n} lost"
                );
                assert_eq!(agents[0].status, AgentState::Online);
            }
            store.close().unwrap();
        });
        total_acked += acks.hist.len();
        next = acks.hist.last().map_or(next, |n| n + 2);
        eprintln!(
            "round {round:2} ({sync:6}): opened {}, {} batches acknowledged",
            acks.opened,
            acks.hist.len()
        );
    }
    eprintln!(
        "30 kills in {:.1} s: {total_acked} acknowledged history batches ({} points) all present, \
         {in_flight_seen} in-flight batches committed whole, integrity_check ok each time",
        started.elapsed().as_secs_f64(),
        total_acked as i64 * POINTS
    );
    assert!(
        total_acked > 30,
        "the writer made progress ({total_acked} batches)"
    );
}
