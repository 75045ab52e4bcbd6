//! Smoke test of the fleet load generator (examples/fleet_load) against one real
//! `atlhyper-master` on loopback: a few clusters for a few seconds, every push acknowledged, and
//! every node of every cluster in the master's API with the figures of its last acknowledged
//! snapshot. The long load run is deploy/measure-fleet.sh, not a test.

mod common;
#[path = "../examples/fleet_load/generator.rs"]
mod generator;

use std::time::Duration;

use atlhyper_testkit::http_get;
use common::{RunningMaster, serial};
use generator::{LoadConfig, run};
use tokio_util::sync::CancellationToken;

const TOKEN_PREFIX: &str = "fleet-load-smoke-token-";
const VIEWER: &str = "viewer-token-fleet-load-0";
const CLUSTERS: usize = 3;
const NODES: usize = 4;

#[test]
fn every_push_is_acknowledged_and_visible_in_the_api() {
    let _serial = serial();
    let tokens: Vec<String> = (0..CLUSTERS)
        .map(|i| format!("{TOKEN_PREFIX}smoke-{i:03}=smoke-{i:03}"))
        .collect();
    let master = RunningMaster::start_on_any_port(
        "fleet-load",
        &[
            ("MASTER_AGENT_TOKENS", tokens.join(",")),
            ("MASTER_VIEWER_TOKEN", VIEWER.to_owned()),
        ],
    );
    let config = LoadConfig {
        masters: format!("http://{}", master.addr),
        clusters: CLUSTERS,
        nodes: NODES,
        interval: Duration::from_secs(1),
        duration: Duration::from_secs(4),
        heartbeat_interval: Duration::from_secs(1),
        request_timeout: Duration::from_secs(20),
        cluster_prefix: "smoke-".to_owned(),
        token_prefix: Some(TOKEN_PREFIX.to_owned()),
        seed: 5,
        progress_every: None,
    };
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let report = runtime
        .block_on(run(config, CancellationToken::new()))
        .expect("the generator runs");
    eprintln!("{report:?}");

    assert_eq!(report.pushes_failed, 0, "{:?}", report.errors);
    assert_eq!(report.heartbeats_failed, 0);
    assert_eq!(report.nodes_refused, 0);
    // Four ticks per cluster; on a loaded machine a slow push may skip one.
    assert!(
        report.pushes_acked + report.ticks_skipped >= (CLUSTERS * 4) as u64
            && report.pushes_acked >= (CLUSTERS * 2) as u64,
        "{report:?}"
    );
    assert_eq!(
        report.node_snapshots_acked,
        report.pushes_acked * NODES as u64
    );
    assert!(report.latency_ms_p50 > 0.0 && report.latency_ms_p99 >= report.latency_ms_p50);
    assert!(report.node_json_bytes > 4_000, "realistic node snapshots");
    assert_eq!(report.last_acked.len(), CLUSTERS);

    let auth = format!("Bearer {VIEWER}");
    for (cluster, last) in &report.last_acked {
        let (code, body) = http_get(
            master.addr,
            &format!("/api/v2/clusters/{cluster}/node-metrics"),
            &[("Authorization", &auth)],
            Duration::from_secs(10),
        )
        .expect("the API answers");
        assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
        let list: atlhyper::model::ClusterNodeMetrics =
            serde_json::from_slice(&body).expect("a node list");
        assert_eq!(list.nodes.len(), NODES, "{cluster}");
        assert_eq!(list.summary.online_nodes, NODES as u32, "{cluster}");
        for node in &list.nodes {
            assert_eq!(
                node.timestamp.timestamp_millis(),
                last.timestamp_millis(),
                "{cluster}/{}: the latest is the last acknowledged snapshot",
                node.node_name
            );
            assert!(node.cpu.per_core.len() >= 4 && !node.temperature.sensors.is_empty());
        }
    }
    master.proc.assert_no_panic();
}
