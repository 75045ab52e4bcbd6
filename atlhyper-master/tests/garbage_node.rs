//! Property: a cluster snapshot where any one node is garbage (a bad name, a list over its cap,
//! a string over its cap, a timestamp in 2300 or 1970) still stores every other node, latest and
//! history; the garbage node is listed in the answer's `rejected` with its reason, or, for the
//! clock cases, stored with the receive time and its `clock_skew_seconds`. Over the master
//! library with the memory store.

use std::sync::Arc;

use atlhyper_master::{Ingested, Master, MasterConfig};
use atlhyper_model::{ClusterSnapshot, NodeMetricsSnapshot, SnapshotBounds};
use atlhyper_store::{HistoryQuery, MemoryStore, MetricsStore};
use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;

/// What is wrong with the garbage node.
#[derive(Debug, Clone)]
enum Garbage {
    /// A name that is not DNS-1123.
    Name(String),
    /// One list (by index) one entry over its cap.
    List(usize),
    /// One string (by index) one byte over its cap.
    Text(usize),
    /// Stamped 2300-01-01.
    Year2300,
    /// Stamped 1970-01-01.
    Year1970,
}

fn garbage() -> impl Strategy<Value = Garbage> {
    prop_oneof![
        prop_oneof![
            Just(String::new()),
            "[A-Z][a-z]{0,8}",
            "[a-z]{1,5}_[a-z]{1,5}",
            "-[a-z]{1,8}",
            "[a-z]{1,8}\\.\\.[a-z]{1,3}",
            "[a-z]{254,300}",
            "[a-z]{1,5} [a-z]{1,5}",
        ]
        .prop_map(Garbage::Name),
        (0usize..6).prop_map(Garbage::List),
        (0usize..6).prop_map(Garbage::Text),
        Just(Garbage::Year2300),
        Just(Garbage::Year1970),
    ]
}

/// Makes `node` garbage; the reason it must be refused with, if refused.
fn spoil(node: &mut NodeMetricsSnapshot, how: &Garbage) -> Option<&'static str> {
    let b = SnapshotBounds::default();
    match how {
        Garbage::Name(_) => Some("invalid_name"),
        Garbage::List(i) => {
            match i {
                0 => node.disks = vec![Default::default(); b.max_disks + 1],
                1 => node.networks = vec![Default::default(); b.max_networks + 1],
                2 => node.processes = vec![Default::default(); b.max_processes + 1],
                3 => node.cpu.per_core = vec![1.0; b.max_per_core + 1],
                4 => node.temperature.sensors = vec![Default::default(); b.max_sensors + 1],
                _ => node.collectors = vec![Default::default(); b.max_collectors + 1],
            }
            Some("list_too_long")
        }
        Garbage::Text(i) => {
            let long = "x".repeat(b.max_string_bytes + 1);
            match i {
                0 => node.hostname = long,
                1 => node.kernel = long,
                2 => node.cpu.model = long,
                3 => node.disks[0].mount_point = long,
                4 => node.networks[0].interface = long,
                _ => node.processes[0].name = long,
            }
            Some("string_too_long")
        }
        Garbage::Year2300 => {
            node.timestamp = Utc.with_ymd_and_hms(2300, 1, 1, 0, 0, 0).unwrap();
            None
        }
        Garbage::Year1970 => {
            node.timestamp = Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).unwrap();
            None
        }
    }
}

fn history_len(store: &MemoryStore, node: &str, rt: &tokio::runtime::Runtime) -> usize {
    let query = HistoryQuery {
        cluster_id: "c".to_owned(),
        node_name: node.to_owned(),
        from: DateTime::<Utc>::MIN_UTC,
        to: DateTime::<Utc>::MAX_UTC,
        max_points: None,
    };
    rt.block_on(store.history(&query)).unwrap().len()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn one_garbage_node_never_costs_the_others(
        good in 1usize..6,
        at in 0usize..6,
        how in garbage(),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let store = Arc::new(MemoryStore::new());
        let master = Master::new(MasterConfig::default(), store.clone(), store.clone(), store.clone());
        let now = Utc::now();
        let mut snapshot = atlhyper_testkit::cluster("c", good, 1, now);
        let good_names: Vec<String> = snapshot.node_metrics.keys().cloned().collect();
        // The garbage node sorts among the good ones by its position.
        let name = match &how {
            Garbage::Name(n) => n.clone(),
            _ => format!("node-{:03}x", at.min(good)),
        };
        let mut node = atlhyper_testkit::node(&name, now, 0.5);
        let refused_with = spoil(&mut node, &how);
        snapshot.node_metrics.insert(name.clone(), node);

        let before = Utc::now();
        let report = rt
            .block_on(master.ingest_snapshot("c", snapshot, "127.0.0.1:1"))
            .unwrap();
        let after = Utc::now();
        prop_assert_eq!(report.outcome, Ingested::Accepted);

        for n in &good_names {
            prop_assert!(rt.block_on(store.get_latest("c", n)).unwrap().is_some(), "latest of {}", n);
            prop_assert_eq!(history_len(&store, n, &rt), 1, "history of {}", n);
            prop_assert!(master.hub().view("c").unwrap().node(n).is_some());
        }
        let stored = rt.block_on(store.get_latest("c", &name)).unwrap();
        match refused_with {
            Some(reason) => {
                prop_assert_eq!(report.rejected.len(), 1, "{:?}", report.rejected);
                let mut listed = name.clone();
                atlhyper_model::truncate_utf8(&mut listed, atlhyper_model::MAX_NODE_NAME_BYTES);
                prop_assert_eq!(&report.rejected[0].node_name, &listed);
                prop_assert_eq!(report.rejected[0].reason.as_str(), reason);
                prop_assert!(!report.rejected[0].error.is_empty());
                prop_assert!(stored.is_none());
                prop_assert_eq!(history_len(&store, &name, &rt), 0);
                prop_assert_eq!(master.hub().view("c").unwrap().snapshot.node_metrics.len(), good);
            }
            None => {
                prop_assert!(report.rejected.is_empty(), "{:?}", report.rejected);
                let stored = stored.expect("the clock node is stored");
                prop_assert!(stored.timestamp >= before && stored.timestamp <= after, "{}", stored.timestamp);
                let skew = stored.clock_skew_seconds.expect("skew kept");
                match how {
                    Garbage::Year2300 => prop_assert!(skew > 270.0 * 365.0 * 86_400.0, "{}", skew),
                    _ => prop_assert!(skew < -50.0 * 365.0 * 86_400.0, "{}", skew),
                }
                prop_assert_eq!(history_len(&store, &name, &rt), 1);
            }
        }
    }
}

/// The plain case the property builds on: a snapshot without garbage stores every node.
#[test]
fn clean_snapshot_stores_every_node() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = Arc::new(MemoryStore::new());
    let master = Master::new(
        MasterConfig::default(),
        store.clone(),
        store.clone(),
        store.clone(),
    );
    let snapshot: ClusterSnapshot = atlhyper_testkit::cluster("c", 3, 1, Utc::now());
    let report = rt
        .block_on(master.ingest_snapshot("c", snapshot, "x"))
        .unwrap();
    assert!(report.rejected.is_empty());
    assert_eq!(rt.block_on(store.list_latest("c")).unwrap().len(), 3);
}
