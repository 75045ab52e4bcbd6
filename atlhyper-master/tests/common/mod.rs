//! Support shared by the router tests of the AtlHyper answer formats: a request helper over
//! `oneshot`, and a fake agent that answers the master's built-in queries from given snapshots.

use std::collections::BTreeMap;
use std::time::Duration;

use atlhyper_master::Master;
use atlhyper_model::{
    ClusterSnapshot, CommandPoll, CommandResult, MetricsDataPoint, NodeMetricsSnapshot, StatusBody,
};
use atlhyper_testkit::api::ApiCall;
use axum::body::Bytes;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};

/// Sends one request through the router and returns its status and body.
pub async fn send(
    master: &Master,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (StatusCode, Bytes) {
    let mut call = ApiCall::new(method, path).body(body);
    if method == "POST" {
        call = call.header("content-type", "application/json");
    }
    for (k, v) in headers {
        call = call.header(k, v);
    }
    call.send(master.router()).await
}

/// `GET path`.
pub async fn get(master: &Master, path: &str) -> (StatusCode, Bytes) {
    send(master, "GET", path, &[], Vec::new()).await
}

/// Pushes a cluster snapshot as its agent would (gzip body, `X-Cluster-ID`), expecting 200.
pub async fn push(master: &Master, snapshot: &ClusterSnapshot) {
    let body = atlhyper_testkit::gzip(&serde_json::to_vec(snapshot).unwrap());
    let (status, bytes) = ApiCall::new("POST", "/agent/snapshot")
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .header("x-cluster-id", &snapshot.cluster_id)
        .body(body)
        .send(master.router())
        .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    let body: StatusBody = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body.status, "ok");
}

/// The series the fake agent answers for a node: `count` points 5 s apart ending at `end`, whose
/// figures all move with the point's index so each figure can be told apart.
pub fn series_points(node: &str, end: DateTime<Utc>, count: i64) -> Vec<MetricsDataPoint> {
    (0..count)
        .rev()
        .map(|i| {
            let k = i as f64;
            MetricsDataPoint {
                timestamp: end - chrono::Duration::seconds(5 * i),
                node_name: node.to_owned(),
                cpu_usage: 10.0 + k,
                memory_usage: 20.0 + k,
                disk_usage: 30.0 + k,
                disk_io_read: 1000.0 + k,
                disk_io_write: 2000.0 + k,
                network_rx: 3000.0 + k,
                network_tx: 4000.0 + k,
                cpu_temp: 50.0 + k,
                load_1: 1.0 + k,
                ..Default::default()
            }
            // Extension figure i (in `MetricsDataPoint::extensions` order) is 100 (i + 1) + k.
            .with_extensions(std::array::from_fn(|i| Some(100.0 * (i + 1) as f64 + k)))
        })
        .collect()
}

/// A fake agent inside the test: long-polls through the router and answers `node_detail` with
/// the given snapshot of the node and `node_series` with [`series_points`] ending at `end`,
/// the way the real agent answers from its node table. Stops after `commands` commands.
pub fn spawn_agent(
    master: &Master,
    cluster: &'static str,
    nodes: BTreeMap<String, NodeMetricsSnapshot>,
    end: DateTime<Utc>,
    commands: usize,
) -> tokio::task::JoinHandle<()> {
    spawn_agent_with(master, cluster, nodes, commands, move |node| {
        series_points(node, end, 3)
    })
}

/// [`spawn_agent`] answering `node_series` with `series(node)`.
pub fn spawn_agent_with(
    master: &Master,
    cluster: &'static str,
    nodes: BTreeMap<String, NodeMetricsSnapshot>,
    commands: usize,
    series: impl Fn(&str) -> Vec<MetricsDataPoint> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    let m = master.clone();
    tokio::spawn(async move {
        let mut answered = 0;
        while answered < commands {
            let (_, body) = get(&m, &format!("/agent/commands?cluster_id={cluster}")).await;
            let Some(command) = serde_json::from_slice::<CommandPoll>(&body)
                .unwrap()
                .command
            else {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            };
            let node = nodes.get(&command.target_name);
            let (success, output, error) = match (command.action.as_str(), node) {
                ("node_detail", Some(n)) => (true, serde_json::to_string(n).unwrap(), ""),
                ("node_series", Some(_)) => (
                    true,
                    serde_json::to_string(&series(&command.target_name)).unwrap(),
                    "",
                ),
                _ => (false, String::new(), "unknown node or action"),
            };
            let result = CommandResult {
                cluster_id: cluster.into(),
                command_id: command.id,
                success,
                output,
                error: error.into(),
                exec_time_ms: 1,
            };
            let (status, _) = send(
                &m,
                "POST",
                "/agent/result",
                &[("x-cluster-id", cluster)],
                serde_json::to_vec(&result).unwrap(),
            )
            .await;
            assert_eq!(status, 200);
            answered += 1;
        }
    })
}

/// A realistic node snapshot with every extension present (PSI, totals, TCP, kernel tables,
/// vmstat, softnet, steal and the mpstat splits, per-interface rates, inodes), as an atlhyper-rs
/// collector sends it after its second collection.
pub fn node_with_every_extension(name: &str, at: DateTime<Utc>, load: f64) -> NodeMetricsSnapshot {
    use atlhyper_model::{PsiMetrics, SoftnetMetrics, SystemMetrics, TcpMetrics, VmstatMetrics};
    let mut node = atlhyper_testkit::node(name, at, load);
    node.cpu.nice_percent = Some(0.2);
    node.cpu.irq_percent = Some(0.1);
    node.cpu.softirq_percent = Some(0.3);
    node.psi = Some(PsiMetrics {
        cpu_some: 1.5,
        memory_some: 0.25,
        memory_full: 0.125,
        io_some: 2.5,
        io_full: 1.25,
    });
    node.tcp = Some(TcpMetrics {
        curr_estab: 42,
        alloc: 120,
        in_use: 40,
        time_wait: 7,
        orphan: 1,
        sockets_used: 310,
    });
    node.system = Some(SystemMetrics {
        conntrack_entries: Some(1_024),
        conntrack_limit: Some(262_144),
        filefd_allocated: Some(4_096),
        filefd_max: Some(9_223_372_036_854_775_807),
        entropy_bits: Some(256),
        entropy_pool_bits: Some(256),
    });
    node.vmstat = Some(VmstatMetrics {
        pgfault_rate: 1_500.0,
        pgmajfault_rate: 2.0,
        pswpin_rate: 0.5,
        pswpout_rate: 0.25,
        pgpgin_rate: 64.0,
        pgpgout_rate: 128.0,
    });
    node.softnet = Some(SoftnetMetrics {
        dropped_rate: 0.2,
        squeezed_rate: 1.4,
    });
    for (i, n) in node.networks.iter_mut().enumerate() {
        let k = i as f64 + 1.0;
        n.rx_packets_rate = Some(100.0 * k);
        n.tx_packets_rate = Some(80.0 * k);
        n.rx_errors_rate = Some(0.5 * k);
        n.tx_errors_rate = Some(0.25 * k);
        n.rx_dropped_rate = Some(0.75 * k);
        n.tx_dropped_rate = Some(0.125 * k);
    }
    // A real hwmon layout: the package sensor is the CPU reading (its threshold is `max`), the
    // cores share its thresholds, an NVMe drive has its own; a second NIC down with no speed.
    use atlhyper_model::SensorReading;
    let sensor = |name: &str, label: &str, current: f64, max: f64, critical: f64| SensorReading {
        name: name.to_owned(),
        label: label.to_owned(),
        current,
        max,
        critical,
    };
    let cpu = node.temperature.cpu_temp;
    node.temperature.cpu_temp_max = 80.0;
    node.temperature.sensors = vec![
        sensor("coretemp", "Core 0", cpu - 2.0, 80.0, 100.0),
        sensor("coretemp", "Package id 0", cpu, 80.0, 100.0),
        sensor("coretemp", "Core 1", cpu - 1.0, 80.0, 100.0),
        sensor("nvme", "Composite", 38.85, 84.85, 89.85),
        sensor("acpitz", "temp1", 27.8, 0.0, 0.0),
    ];
    node.networks[1].status = "down".to_owned();
    node.networks[1].speed = -1;
    node.networks[1].ip_address = String::new();
    node.networks[0].ip_address = "10.0.3.17".to_owned();
    for d in &mut node.disks {
        d.inodes_total = Some(6_553_600);
        d.inodes_used = Some(327_680);
    }
    node
}
