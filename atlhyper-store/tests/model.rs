//! Model test: random operation sequences run against the in-memory engine and the SQLite
//! engine must give the same answers, call by call, and the same contents after a reopen; and
//! both engines' latest snapshots must be what a reference model of "latest" says: per node, the
//! last one written by a batch that was accepted (arrival order, not the largest timestamp).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use atlhyper_model::{CommandResult, CommandStatus, NodeMetricsSnapshot};
use atlhyper_store::{
    AgentRegistry, AgentSeen, CommandFilter, CommandQueue, HistoryQuery, MetricsStore, PgStore,
    SeenVia, SqliteOptions, SqliteStore, StoreResult, Synchronous,
};
use common::{Store, command, kind, point, snapshot, t};
use proptest::prelude::*;

const CLUSTERS: [&str; 4] = ["a", "b", "c", ""];
const NODES: [&str; 4] = ["n0", "n1", "n2", ""];
const ACTIONS: [&str; 2] = ["ping", "node_detail"];

#[derive(Debug, Clone)]
enum Op {
    Upsert {
        cluster: usize,
        snaps: Vec<(usize, i64, f64)>,
    },
    GetLatest {
        cluster: usize,
        node: usize,
    },
    ListLatest {
        cluster: usize,
    },
    Append {
        cluster: usize,
        points: Vec<(usize, i64, f64)>,
    },
    History {
        cluster: usize,
        node: usize,
        from: i64,
        to: i64,
        max: Option<usize>,
    },
    Prune {
        before: i64,
    },
    DeleteLatest {
        cluster: usize,
        node: usize,
    },
    DeleteClusterLatest {
        cluster: usize,
    },
    Retire {
        before: i64,
    },
    ListClusters,
    ListNodes {
        cluster: usize,
    },
    Enqueue {
        id: u8,
        cluster: usize,
        action: usize,
        created: i64,
        ttl: i64,
    },
    Take {
        cluster: usize,
        max: usize,
        lease: u64,
        now: i64,
    },
    Complete {
        id: u8,
        cluster: usize,
        success: bool,
        now: i64,
    },
    Get {
        id: u8,
    },
    List {
        cluster: Option<usize>,
        status: Option<usize>,
        action: Option<usize>,
        limit: Option<usize>,
        offset: usize,
    },
    CountOpen {
        cluster: usize,
    },
    Expire {
        now: i64,
    },
    PruneCommands {
        before: i64,
    },
    Seen {
        cluster: usize,
        version: u8,
        addr: u8,
        at: i64,
        heartbeat: bool,
    },
    Agents {
        now: i64,
        offline: u64,
    },
    Forget {
        cluster: usize,
    },
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        20 => (0u32..400).prop_map(|v| f64::from(v) / 4.0),
        5 => -1.0e9..1.0e9f64,
        1 => Just(f64::NAN),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let c = 0..CLUSTERS.len();
    let n = 0..NODES.len();
    let ts = 0i64..60;
    prop_oneof![
        4 => (c.clone(), prop::collection::vec((n.clone(), ts.clone(), value()), 0..5))
            .prop_map(|(cluster, snaps)| Op::Upsert { cluster, snaps }),
        2 => (c.clone(), n.clone()).prop_map(|(cluster, node)| Op::GetLatest { cluster, node }),
        1 => c.clone().prop_map(|cluster| Op::ListLatest { cluster }),
        6 => (c.clone(), prop::collection::vec((n.clone(), ts.clone(), value()), 0..12))
            .prop_map(|(cluster, points)| Op::Append { cluster, points }),
        4 => (c.clone(), n.clone(), -5i64..65, -5i64..65, prop::option::of(0usize..8))
            .prop_map(|(cluster, node, from, to, max)| Op::History { cluster, node, from, to, max }),
        1 => (0i64..70).prop_map(|before| Op::Prune { before }),
        1 => (c.clone(), n.clone()).prop_map(|(cluster, node)| Op::DeleteLatest { cluster, node }),
        1 => c.clone().prop_map(|cluster| Op::DeleteClusterLatest { cluster }),
        1 => (0i64..70).prop_map(|before| Op::Retire { before }),
        1 => Just(Op::ListClusters),
        1 => c.clone().prop_map(|cluster| Op::ListNodes { cluster }),
        4 => (0u8..8, c.clone(), 0..ACTIONS.len(), ts.clone(), 0i64..40)
            .prop_map(|(id, cluster, action, created, ttl)| Op::Enqueue { id, cluster, action, created, ttl }),
        4 => (c.clone(), 0usize..4, 0u64..30, 0i64..100)
            .prop_map(|(cluster, max, lease, now)| Op::Take { cluster, max, lease, now }),
        3 => (0u8..8, c.clone(), any::<bool>(), 0i64..100)
            .prop_map(|(id, cluster, success, now)| Op::Complete { id, cluster, success, now }),
        1 => (0u8..8).prop_map(|id| Op::Get { id }),
        2 => (
            prop::option::of(c.clone()),
            prop::option::of(0..CommandStatus::ALL.len()),
            prop::option::of(0..ACTIONS.len()),
            prop::option::of(0usize..6),
            0usize..4,
        )
            .prop_map(|(cluster, status, action, limit, offset)| Op::List { cluster, status, action, limit, offset }),
        2 => (0i64..100).prop_map(|now| Op::Expire { now }),
        1 => c.clone().prop_map(|cluster| Op::CountOpen { cluster }),
        1 => (0i64..120).prop_map(|before| Op::PruneCommands { before }),
        3 => (c.clone(), 0u8..3, 0u8..3, ts.clone(), any::<bool>())
            .prop_map(|(cluster, version, addr, at, heartbeat)| Op::Seen { cluster, version, addr, at, heartbeat }),
        1 => (0i64..100, 0u64..40).prop_map(|(now, offline)| Op::Agents { now, offline }),
        1 => c.clone().prop_map(|cluster| Op::Forget { cluster }),
    ]
}

/// An answer as text: `Debug` prints floats exactly (shortest round trip), errors by kind.
fn show<T: std::fmt::Debug>(r: StoreResult<T>) -> String {
    match r {
        Ok(v) => format!("{v:?}"),
        Err(e) => format!("error {}", kind(&e)),
    }
}

fn id(i: u8) -> String {
    format!("cmd-{i}")
}

async fn apply(s: &impl Store, op: &Op) -> String {
    match op {
        Op::Upsert { cluster, snaps } => {
            let snaps: Vec<_> = snaps
                .iter()
                .map(|&(n, ts, v)| snapshot(NODES[n], t(ts), v))
                .collect();
            show(s.upsert_latest(CLUSTERS[*cluster], &snaps).await)
        }
        Op::GetLatest { cluster, node } => {
            show(s.get_latest(CLUSTERS[*cluster], NODES[*node]).await)
        }
        Op::ListLatest { cluster } => show(s.list_latest(CLUSTERS[*cluster]).await),
        Op::Append { cluster, points } => {
            let points: Vec<_> = points
                .iter()
                .map(|&(n, ts, v)| point(NODES[n], t(ts), v))
                .collect();
            show(s.append_history(CLUSTERS[*cluster], &points).await)
        }
        Op::History {
            cluster,
            node,
            from,
            to,
            max,
        } => show(
            s.history(&HistoryQuery {
                cluster_id: CLUSTERS[*cluster].to_owned(),
                node_name: NODES[*node].to_owned(),
                from: t(*from),
                to: t(*to),
                max_points: *max,
            })
            .await,
        ),
        Op::Prune { before } => show(s.prune_history(t(*before)).await),
        Op::DeleteLatest { cluster, node } => {
            show(s.delete_latest(CLUSTERS[*cluster], NODES[*node]).await)
        }
        Op::DeleteClusterLatest { cluster } => {
            show(s.delete_cluster_latest(CLUSTERS[*cluster]).await)
        }
        Op::Retire { before } => show(s.retire_latest(t(*before)).await),
        Op::ListClusters => show(s.list_clusters().await),
        Op::ListNodes { cluster } => show(s.list_nodes(CLUSTERS[*cluster]).await),
        Op::Enqueue {
            id: i,
            cluster,
            action,
            created,
            ttl,
        } => show(
            s.enqueue(&command(
                &id(*i),
                CLUSTERS[*cluster],
                ACTIONS[*action],
                *created,
                *ttl,
            ))
            .await,
        ),
        Op::Take {
            cluster,
            max,
            lease,
            now,
        } => show(
            s.take(
                CLUSTERS[*cluster],
                *max,
                Duration::from_secs(*lease),
                t(*now),
            )
            .await,
        ),
        Op::Complete {
            id: i,
            cluster,
            success,
            now,
        } => {
            let result = CommandResult {
                cluster_id: CLUSTERS[*cluster].to_owned(),
                command_id: id(*i),
                success: *success,
                output: format!("out {i}"),
                error: String::new(),
                exec_time_ms: u64::from(*i),
            };
            show(s.complete(&result, t(*now)).await)
        }
        Op::Get { id: i } => show(s.get(&id(*i)).await),
        Op::List {
            cluster,
            status,
            action,
            limit,
            offset,
        } => {
            let filter = CommandFilter {
                cluster_id: cluster.map(|c| CLUSTERS[c].to_owned()),
                status: status.map(|st| CommandStatus::ALL[st]),
                action: action.map(|a| ACTIONS[a].to_owned()),
                limit: *limit,
                offset: *offset,
            };
            show(CommandQueue::list(s, &filter).await)
        }
        Op::Expire { now } => show(s.expire(t(*now)).await),
        Op::CountOpen { cluster } => show(s.count_open(CLUSTERS[*cluster]).await),
        Op::PruneCommands { before } => show(s.prune_commands(t(*before)).await),
        Op::Seen {
            cluster,
            version,
            addr,
            at,
            heartbeat,
        } => show(
            s.seen(&AgentSeen {
                cluster_id: CLUSTERS[*cluster].to_owned(),
                agent_version: if *version == 0 {
                    String::new()
                } else {
                    format!("0.{version}")
                },
                remote_addr: if *addr == 0 {
                    String::new()
                } else {
                    format!("10.0.0.{addr}:80")
                },
                at: t(*at),
                via: if *heartbeat {
                    SeenVia::Heartbeat
                } else {
                    SeenVia::Snapshot
                },
            })
            .await,
        ),
        Op::Agents { now, offline } => {
            show(AgentRegistry::list(s, t(*now), Duration::from_secs(*offline)).await)
        }
        Op::Forget { cluster } => show(s.forget(CLUSTERS[*cluster]).await),
    }
}

/// The reference model of "latest": (cluster, node) to the last snapshot written. A batch is
/// written whole or not at all; it is refused when the cluster id is empty or any snapshot has
/// no node name or a non-finite number. Deletes remove a node or a cluster; retirement removes
/// every snapshot stamped before its bound.
#[derive(Debug, Default)]
struct LatestModel(BTreeMap<(String, String), NodeMetricsSnapshot>);

impl LatestModel {
    fn apply(&mut self, op: &Op) {
        let (cluster, snaps) = match op {
            Op::Upsert { cluster, snaps } => (cluster, snaps),
            Op::DeleteLatest { cluster, node } => {
                self.0
                    .remove(&(CLUSTERS[*cluster].to_owned(), NODES[*node].to_owned()));
                return;
            }
            Op::DeleteClusterLatest { cluster } => {
                self.0.retain(|(c, _), _| c != CLUSTERS[*cluster]);
                return;
            }
            // Retirement goes by the snapshot's own timestamp.
            Op::Retire { before } => {
                self.0.retain(|_, s| s.timestamp >= t(*before));
                return;
            }
            _ => return,
        };
        let refused = CLUSTERS[*cluster].is_empty()
            || snaps
                .iter()
                .any(|&(n, _, v)| NODES[n].is_empty() || !v.is_finite());
        if refused {
            return;
        }
        for &(n, ts, v) in snaps {
            self.0.insert(
                (CLUSTERS[*cluster].to_owned(), NODES[n].to_owned()),
                snapshot(NODES[n], t(ts), v),
            );
        }
    }

    /// What `list_latest(cluster)` must answer.
    fn list(&self, cluster: &str) -> Vec<NodeMetricsSnapshot> {
        self.0
            .iter()
            .filter(|((c, _), _)| c == cluster)
            .map(|(_, s)| s.clone())
            .collect()
    }
}

/// Everything a store holds, as text.
async fn dump(s: &impl Store) -> String {
    let mut out = String::new();
    for c in s.list_clusters().await.unwrap() {
        out += &format!("{c}: {:?}\n", s.list_latest(&c).await.unwrap());
        for n in s.list_nodes(&c).await.unwrap() {
            let q = HistoryQuery {
                cluster_id: c.clone(),
                node_name: n.clone(),
                from: t(-100),
                to: t(100),
                max_points: None,
            };
            out += &format!("{c}/{n}: {:?}\n", s.history(&q).await.unwrap());
        }
    }
    let all = CommandFilter {
        limit: Some(1000),
        ..CommandFilter::default()
    };
    out += &format!("{:?}\n", CommandQueue::list(s, &all).await.unwrap());
    out += &format!(
        "{:?}\n",
        AgentRegistry::list(s, t(0), Duration::from_secs(5))
            .await
            .unwrap()
    );
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn engines_agree(ops in prop::collection::vec(op(), 1..60)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("model.db");
            let options = SqliteOptions { synchronous: Synchronous::Normal, ..SqliteOptions::default() };
            let memory = atlhyper_store::MemoryStore::new();
            let sqlite = SqliteStore::open_with(&path, &options).unwrap();
            let mut model = LatestModel::default();
            for (i, op) in ops.iter().enumerate() {
                let want = apply(&memory, op).await;
                let got = apply(&sqlite, op).await;
                prop_assert_eq!(&got, &want, "op {} {:?}", i, op);
                model.apply(op);
                for c in CLUSTERS.iter().filter(|c| !c.is_empty()) {
                    let expected = format!("{:?}", model.list(c));
                    prop_assert_eq!(
                        format!("{:?}", memory.list_latest(c).await.unwrap()),
                        expected.clone(),
                        "memory latest of {} after op {} {:?}", c, i, op
                    );
                    prop_assert_eq!(
                        format!("{:?}", sqlite.list_latest(c).await.unwrap()),
                        expected,
                        "sqlite latest of {} after op {} {:?}", c, i, op
                    );
                }
            }
            sqlite.close().unwrap();
            let reopened = SqliteStore::open_with(&path, &options).unwrap();
            prop_assert_eq!(dump(&reopened).await, dump(&memory).await);
            Ok(())
        })?;
    }
}

/// The same operation sequences against the in-memory engine and the PostgreSQL engine (a fresh
/// database per case on one server held for the whole test), then the contents after
/// reconnecting.
#[test]
fn postgres_agrees_with_memory() {
    let Some(server) = atlhyper_testkit::TestPostgres::shared() else {
        return;
    };
    let config = ProptestConfig {
        cases: 64,
        ..ProptestConfig::default()
    };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let strategy = prop::collection::vec(op(), 1..60);
    let outcome = runner.run(&strategy, |ops| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let url = server.fresh_database();
            let memory = atlhyper_store::MemoryStore::new();
            let postgres = PgStore::connect(&url).await.unwrap();
            let mut model = LatestModel::default();
            for (i, op) in ops.iter().enumerate() {
                let want = apply(&memory, op).await;
                let got = apply(&postgres, op).await;
                prop_assert_eq!(&got, &want, "op {} {:?}", i, op);
                model.apply(op);
                for c in CLUSTERS.iter().filter(|c| !c.is_empty()) {
                    prop_assert_eq!(
                        format!("{:?}", postgres.list_latest(c).await.unwrap()),
                        format!("{:?}", model.list(c)),
                        "postgres latest of {} after op {} {:?}",
                        c,
                        i,
                        op
                    );
                }
            }
            drop(postgres);
            let reconnected = PgStore::connect(&url).await.unwrap();
            prop_assert_eq!(dump(&reconnected).await, dump(&memory).await);
            Ok(())
        })
    });
    if let Err(e) = outcome {
        panic!("{e}");
    }
}
