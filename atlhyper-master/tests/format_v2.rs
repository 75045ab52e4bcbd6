//! `?format=v2` answers exactly what the master answered before the AtlHyper v3 shapes became the
//! default: the observe routes and the cluster list, byte for byte, against answers recorded
//! from the master before that change (`tests/golden/format_v2/`), for the same state.
//!
//! Re-record (only when a v2 answer changes on purpose): `ATLHYPER_UPDATE_GOLDEN=1 cargo test -p
//! atlhyper-master --test format_v2`.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use atlhyper_master::{Master, MasterConfig};
use atlhyper_model::{NodeState, NodeStatus};
use atlhyper_store::MemoryStore;
use chrono::{DateTime, Utc};
use std::sync::Arc;

use common::{get, node_with_every_extension, push, spawn_agent};

/// A fixed instant, so every answer is the same on every run.
fn at() -> DateTime<Utc> {
    "2024-05-01T12:00:00Z".parse().unwrap()
}

/// A master that keeps a snapshot of `at()` forever (no retention or retirement gets in the way).
fn master() -> Master {
    let forever = Duration::from_secs(100 * 365 * 24 * 3600);
    let config = MasterConfig {
        retention: forever,
        node_retire_after: forever,
        ..MasterConfig::default()
    };
    let store = Arc::new(MemoryStore::new());
    Master::new(config, store.clone(), store.clone(), store)
}

/// The answer's only field that depends on the wall clock (when the master heard the agent),
/// replaced by a marker.
fn redact_last_seen(body: &str) -> String {
    let key = "\"last_seen\":\"";
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(i) = rest.find(key) {
        out.push_str(&rest[..i + key.len()]);
        rest = &rest[i + key.len()..];
        let end = rest.find('"').expect("a closed string");
        out.push_str("<when the master heard the agent>");
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/format_v2")
        .join(format!("{name}.json"))
}

fn check(name: &str, body: &str) {
    let path = golden(name);
    if std::env::var_os("ATLHYPER_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, body).unwrap();
        return;
    }
    let recorded = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (record with ATLHYPER_UPDATE_GOLDEN=1)",
            path.display()
        )
    });
    assert!(
        recorded == body,
        "{name}: the v2 answer changed\nrecorded: {recorded}\nnow:      {body}"
    );
}

#[tokio::test]
async fn v2_answers_are_byte_identical_to_the_recorded_ones() {
    let m = master();
    let mut snapshot = atlhyper_testkit::cluster("c1", 3, 1, at());
    snapshot.node_metrics.insert(
        "node-001".into(),
        node_with_every_extension("node-001", at(), 0.5),
    );
    // One node its agent lists offline: the v2 answers carry the liveness extensions.
    snapshot.node_status.insert(
        "node-002".into(),
        NodeStatus {
            state: NodeState::Offline,
            last_seen: at() - chrono::Duration::seconds(60),
        },
    );
    push(&m, &snapshot).await;
    let nodes: BTreeMap<_, _> = snapshot.node_metrics.clone().into_iter().collect();
    let agent = spawn_agent(&m, "c1", nodes, at(), 2);

    for (name, path) in [
        (
            "summary",
            "/api/v2/observe/metrics/summary?cluster_id=c1&format=v2",
        ),
        (
            "nodes",
            "/api/v2/observe/metrics/nodes?cluster_id=c1&format=v2",
        ),
        (
            "node",
            "/api/v2/observe/metrics/nodes/node-001?cluster_id=c1&format=v2",
        ),
        (
            "series",
            "/api/v2/observe/metrics/nodes/node-001/series?cluster_id=c1&minutes=15&format=v2",
        ),
        ("clusters", "/api/v2/clusters?format=v2"),
    ] {
        let (status, body) = get(&m, path).await;
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert_eq!(status, 200, "{path}: {body}");
        check(name, &redact_last_seen(&body));
    }
    agent.await.unwrap();
}
