//! The dashboard in a real browser: a master on 127.0.0.1:0 with a memory store, fed through the
//! real agent routes (gzip snapshots with backfilled history, a fake agent answering the
//! `node_series` and `node_detail` commands over the long poll), then `e2e/dashboard.test.mjs`
//! drives Debian's headless Chromium through playwright-core against it. The master runs the real
//! alert engine (every second) and the notification side (silences): `e2e/alerts.mjs` creates
//! rules through the API with the operator token and checks the badges and the Alerts view.
//!
//! Needs `/usr/bin/chromium` (or `$CHROMIUM`), `node` and `e2e/node_modules` (`npm ci` in
//! `e2e/`). When one is missing the test fails under `CI=true` (or `ATLHYPER_E2E_REQUIRED=1`,
//! set by `.ci/run`) and is skipped with a reason otherwise. Screenshots and the measured numbers (`perf.json`) go to
//! `target/e2e-screenshots/`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use atlhyper_master::alerting::notify::{Dispatcher, NotifyConfig};
use atlhyper_master::alerting::{AlertSettings, Alerting};
use atlhyper_master::{Master, MasterConfig, run_master};
use atlhyper_model::{
    ClusterSnapshot, Command, CommandPoll, CommandResult, CpuMetrics, DiskMetrics, MemoryMetrics,
    MetricsDataPoint, NetworkMetrics, NodeMetricsSnapshot, NodeState, NodeStatus, NodeTotals,
    ProcessMetrics, PsiMetrics, SensorReading, SoftnetMetrics, SystemMetrics, TcpMetrics,
    TemperatureMetrics, VmstatMetrics,
};
use atlhyper_store::{MemoryStore, SeriesKey, SeriesRow, SeriesStore, Triple, samples_of};
use chrono::{DateTime, Utc};
use tokio::sync::watch;

const VIEWER_TOKEN: &str = "viewer-e2e-token";
/// The token the browser test creates alert rules and silences with.
const OPERATOR_TOKEN: &str = "operator-e2e-token";
/// Alert rules are evaluated this often, so a rule the browser test creates fires at once.
const ALERT_EVAL_INTERVAL: Duration = Duration::from_secs(1);
const MAIN: &str = "prod";
const SILENT: &str = "edge";
const BIG: &str = "big-1000";
const GIB: u64 = 1 << 30;

fn agent_token(cluster: &str) -> String {
    format!("agent-token-{cluster}")
}

// ---------- prerequisites ----------

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the master crate lives in the workspace")
        .to_path_buf()
}

/// Whether the browser test must run: under CI (`CI=true`, CI installs the browser and the
/// driver) or when `.ci/run` says so (`ATLHYPER_E2E_REQUIRED=1`).
fn required() -> bool {
    ["CI", "ATLHYPER_E2E_REQUIRED"]
        .iter()
        .any(|k| std::env::var(k).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false"))
}

/// What is missing to run the browser test, if anything.
fn missing_prerequisite(root: &Path, chromium: &Path) -> Option<String> {
    if !chromium.is_file() {
        return Some(format!(
            "{} not found (apt-get install chromium chromium-driver)",
            chromium.display()
        ));
    }
    let node = std::process::Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        return Some("node not found on PATH".to_owned());
    }
    let driver = root.join("e2e/node_modules/playwright-core/package.json");
    if !driver.is_file() {
        return Some(format!(
            "{} missing (run `npm ci` in e2e/)",
            driver.display()
        ));
    }
    None
}

// ---------- fixture data ----------

struct Shape {
    cpu: f64,
    mem: f64,
    root_disk: f64,
    temp: f64,
}

fn node(name: &str, at: DateTime<Utc>, s: &Shape, processes: usize) -> NodeMetricsSnapshot {
    let mem_total = 32 * GIB;
    let mem_used = (mem_total as f64 * s.mem / 100.0) as u64;
    let root_total = 200 * GIB;
    let root_used = (root_total as f64 * s.root_disk / 100.0) as u64;
    let per_core: Vec<f64> = (0..8)
        .map(|i| (s.cpu + (f64::from(i) * 9.0) - 30.0).clamp(0.0, 100.0))
        .collect();
    NodeMetricsSnapshot {
        node_name: name.to_owned(),
        timestamp: at,
        hostname: format!("{name}.cluster.local"),
        os: "Debian GNU/Linux 12 (bookworm)".to_owned(),
        kernel: "6.1.0-18-amd64".to_owned(),
        uptime: 3 * 86_400 + 4_000,
        cpu: CpuMetrics {
            usage_percent: s.cpu,
            user_percent: s.cpu * 0.7,
            system_percent: s.cpu * 0.25,
            idle_percent: 100.0 - s.cpu - 0.5,
            iowait_percent: 0.5,
            per_core,
            load_1: s.cpu / 12.5,
            load_5: s.cpu / 14.0,
            load_15: s.cpu / 16.0,
            model: "AMD EPYC 7B13 64-Core Processor".to_owned(),
            cores: 4,
            threads: 8,
            frequency: 2450.0,
            steal_percent: Some(0.2),
            ..Default::default()
        },
        memory: MemoryMetrics {
            total: mem_total,
            used: mem_used,
            available: mem_total - mem_used,
            free: (mem_total - mem_used) / 3,
            usage_percent: s.mem,
            cached: 6 * GIB,
            buffers: GIB / 4,
            swap_total: 4 * GIB,
            swap_used: GIB / 8,
            swap_free: 4 * GIB - GIB / 8,
            swap_percent: 3.125,
        },
        disks: vec![
            DiskMetrics {
                device: "nvme0n1p2".to_owned(),
                mount_point: "/".to_owned(),
                fs_type: "ext4".to_owned(),
                total: root_total,
                used: root_used,
                available: root_total - root_used,
                usage_percent: s.root_disk,
                read_bytes: 90 * GIB,
                write_bytes: 140 * GIB,
                read_rate: 1.2e6,
                write_rate: 3.4e6,
                read_iops: 120.0,
                write_iops: 310.0,
                io_util: 7.5,
                ..Default::default()
            },
            DiskMetrics {
                device: "sdb1".to_owned(),
                mount_point: "/var/lib/containerd".to_owned(),
                fs_type: "xfs".to_owned(),
                total: 500 * GIB,
                used: 120 * GIB,
                available: 380 * GIB,
                usage_percent: 24.0,
                read_rate: 2.0e5,
                write_rate: 9.0e5,
                io_util: 2.0,
                ..Default::default()
            },
        ],
        networks: vec![
            NetworkMetrics {
                interface: "eth0".to_owned(),
                ip_address: "10.0.3.17".to_owned(),
                mac_address: "02:42:ac:11:00:02".to_owned(),
                status: "up".to_owned(),
                speed: 10_000,
                mtu: 1500,
                rx_bytes: 800 * GIB,
                tx_bytes: 300 * GIB,
                rx_rate: 12.5e6,
                tx_rate: 4.2e6,
                rx_dropped: 3,
                ..Default::default()
            },
            NetworkMetrics {
                interface: "eth1".to_owned(),
                ip_address: "192.168.10.17".to_owned(),
                status: "up".to_owned(),
                speed: 1000,
                mtu: 9000,
                rx_rate: 1.0e5,
                tx_rate: 2.0e5,
                ..Default::default()
            },
        ],
        temperature: TemperatureMetrics {
            cpu_temp: s.temp,
            cpu_temp_max: 95.0,
            // A shape with temp 0 is a node without sensors (a VM): it reports none.
            sensors: if s.temp <= 0.0 {
                Vec::new()
            } else {
                vec![
                    SensorReading {
                        name: "k10temp".to_owned(),
                        label: "Tctl".to_owned(),
                        current: s.temp,
                        max: 95.0,
                        critical: 105.0,
                    },
                    SensorReading {
                        name: "nvme".to_owned(),
                        label: "Composite".to_owned(),
                        current: 41.0,
                        max: 82.0,
                        critical: 85.0,
                    },
                ]
            },
        },
        processes: (0..processes)
            .map(|i| {
                let k = u32::try_from(i).expect("few processes");
                ProcessMetrics {
                    pid: 1000 + k * 17,
                    name: ["kubelet", "containerd", "etcd", "java", "postgres", "nginx"][i % 6]
                        .to_owned(),
                    cmdline: format!("/usr/bin/proc-{i} --config /etc/proc-{i}.yaml"),
                    user: if i % 3 == 0 { "root" } else { "app" }.to_owned(),
                    status: "S".to_owned(),
                    cpu_percent: 80.0 / (f64::from(k) + 1.0),
                    mem_percent: 1.5 * f64::from(k % 5),
                    mem_rss: (u64::from(k % 5 + 1) * 300) << 20,
                    threads: 4 + k,
                    start_time: 1_700_000_000,
                }
            })
            .collect(),
        totals: Some(NodeTotals {
            disk_read_rate: 1.4e6,
            disk_write_rate: 4.3e6,
            disk_read_iops: 120.0,
            disk_write_iops: 310.0,
            network_rx_rate: 12.6e6,
            network_tx_rate: 4.4e6,
            ..Default::default()
        }),
        // The kernel panel's figures (v2 extensions a current collector sends).
        psi: Some(PsiMetrics {
            cpu_some: 2.5,
            memory_some: 0.75,
            memory_full: 0.25,
            io_some: 1.5,
            io_full: 0.5,
        }),
        tcp: Some(TcpMetrics {
            curr_estab: 1234,
            alloc: 1500,
            in_use: 1300,
            time_wait: 87,
            orphan: 0,
            sockets_used: 2048,
        }),
        system: Some(SystemMetrics {
            conntrack_entries: Some(5000),
            conntrack_limit: Some(262_144),
            filefd_allocated: Some(9000),
            filefd_max: Some(1_000_000),
            entropy_bits: Some(256),
            entropy_pool_bits: Some(256),
        }),
        vmstat: Some(VmstatMetrics {
            pgfault_rate: 4200.0,
            pgmajfault_rate: 3.5,
            pswpin_rate: 0.0,
            pswpout_rate: 12.0,
            pgpgin_rate: 100.0,
            pgpgout_rate: 200.0,
        }),
        softnet: Some(SoftnetMetrics {
            dropped_rate: 0.0,
            squeezed_rate: 1.5,
        }),
        ..Default::default()
    }
}

/// A history point of a node at `t`: its current figures moved by slow waves, so charts show
/// a shape and each node its own.
fn point(n: &NodeMetricsSnapshot, t: DateTime<Utc>) -> MetricsDataPoint {
    let phase = n.node_name.bytes().map(f64::from).sum::<f64>();
    let h = t.timestamp() as f64 / 3600.0;
    let wave = |period_h: f64| (h / period_h * std::f64::consts::TAU + phase).sin();
    let pct = |base: f64, amp: f64, period: f64| (base + amp * wave(period)).clamp(0.0, 100.0);
    let totals = n.totals.clone().unwrap_or_default();
    MetricsDataPoint {
        timestamp: t,
        node_name: n.node_name.clone(),
        cpu_usage: pct(n.cpu.usage_percent, 15.0, 6.0),
        memory_usage: pct(n.memory.usage_percent, 5.0, 24.0),
        disk_usage: pct(n.disks[0].usage_percent - 2.0, 2.0, 240.0),
        disk_io_read: totals.disk_read_rate * (1.0 + 0.6 * wave(2.0)),
        disk_io_write: totals.disk_write_rate * (1.0 + 0.4 * wave(3.0)),
        network_rx: totals.network_rx_rate * (1.0 + 0.5 * wave(12.0)),
        network_tx: totals.network_tx_rate * (1.0 + 0.5 * wave(8.0)),
        // No sensors: no reading (0), never a made-up temperature.
        cpu_temp: if n.temperature.cpu_temp > 0.0 {
            n.temperature.cpu_temp + 6.0 * wave(6.0)
        } else {
            0.0
        },
        load_1: n.cpu.load_1,
        ..Default::default()
    }
}

/// The node whose stored history has a hole: it reported nothing from `GAP_FROM_H` to
/// `GAP_TO_H` hours ago, so its charts must break there.
const GAP_NODE: &str = "worker-1";
const GAP_FROM_H: i64 = 8;
const GAP_TO_H: i64 = 6;

/// History every `step` over the last `span` before `now`, oldest first (with the hole of
/// `GAP_NODE`).
fn history(
    n: &NodeMetricsSnapshot,
    now: DateTime<Utc>,
    span: Duration,
    step: Duration,
) -> Vec<MetricsDataPoint> {
    let span = chrono::Duration::from_std(span).expect("span");
    let step = chrono::Duration::from_std(step).expect("step");
    let mut t = now - span;
    let gap = now - chrono::Duration::hours(GAP_FROM_H)..now - chrono::Duration::hours(GAP_TO_H);
    let mut out = Vec::new();
    while t < now {
        if n.node_name != GAP_NODE || !gap.contains(&t) {
            out.push(point(n, t));
        }
        t += step;
    }
    out
}

fn cluster_snapshot(
    id: &str,
    nodes: Vec<NodeMetricsSnapshot>,
    offline: &[&str],
    backfill: bool,
    now: DateTime<Utc>,
) -> ClusterSnapshot {
    let mut s = ClusterSnapshot {
        cluster_id: id.to_owned(),
        timestamp: now,
        seq: 1,
        agent_version: "dashboard-e2e".to_owned(),
        ..Default::default()
    };
    for n in nodes {
        let off = offline.contains(&n.node_name.as_str());
        if backfill && !off {
            s.backfill.extend(history(
                &n,
                now,
                Duration::from_secs(30 * 86_400),
                Duration::from_secs(600),
            ));
        }
        s.node_status.insert(
            n.node_name.clone(),
            NodeStatus {
                state: if off {
                    NodeState::Offline
                } else {
                    NodeState::Online
                },
                last_seen: n.timestamp,
            },
        );
        s.node_metrics.insert(n.node_name.clone(), n);
    }
    s
}

fn fixture(now: DateTime<Utc>) -> Vec<ClusterSnapshot> {
    let shape = |cpu, mem, root_disk, temp| Shape {
        cpu,
        mem,
        root_disk,
        temp,
    };
    let ten_min_ago = now - chrono::Duration::minutes(10);
    let prod = vec![
        node("worker-1", now, &shape(34.5, 61.2, 48.0, 52.0), 12),
        node("worker-2", now, &shape(93.4, 71.0, 52.5, 78.5), 12),
        node("worker-3", now, &shape(41.0, 55.5, 95.2, 55.0), 12),
        // No temperature sensors.
        node("worker-4", now, &shape(12.25, 38.0, 33.0, 0.0), 12),
        NodeMetricsSnapshot {
            // Its clock was 10 minutes behind: the agent replaced its timestamp.
            clock_skew_seconds: Some(-600.0),
            ..node("worker-5", ten_min_ago, &shape(66.0, 80.0, 61.0, 61.0), 12)
        },
        node("worker-6", now, &shape(57.75, 88.1, 71.0, 58.25), 12),
    ];
    let edge = vec![
        node("edge-a", now, &shape(22.0, 45.0, 30.0, 49.0), 8),
        node("edge-b", now, &shape(28.0, 47.0, 31.0, 50.0), 8),
        node("edge-c", now, &shape(18.0, 40.0, 29.0, 0.0), 8),
    ];
    let big = (0..1000)
        .map(|i| {
            let f = f64::from(i);
            node(
                &format!("node-{i:04}"),
                now,
                &shape(
                    (f * 7.3) % 99.0,
                    20.0 + (f * 3.1) % 75.0,
                    10.0 + (f * 1.7) % 85.0,
                    40.0 + f % 30.0,
                ),
                10,
            )
        })
        .collect();
    vec![
        cluster_snapshot(MAIN, prod, &["worker-5"], true, now),
        cluster_snapshot(SILENT, edge, &[], true, now),
        cluster_snapshot(BIG, big, &[], false, now),
    ]
}

/// Hours of stored series the fixture gives each node (tier 0, one row per 5 minutes).
const SERIES_HOURS: i64 = 48;

/// Stored series of the online `nodes` of a cluster every 5 minutes over the last
/// `SERIES_HOURS`, from the same waves as the history (so a node's stored figures agree with
/// its headline charts) and with `GAP_NODE`'s hole. Each value is stored as a band (0.9 v, v,
/// 1.1 v) so the charts' min/max band shows.
async fn feed_series(store: &MemoryStore, snapshot: &ClusterSnapshot, now: DateTime<Utc>) {
    const STEP_MS: i64 = 300_000;
    let end = now.timestamp_millis().div_euclid(STEP_MS) * STEP_MS;
    let gap = (now - chrono::Duration::hours(GAP_FROM_H)).timestamp_millis()
        ..(now - chrono::Duration::hours(GAP_TO_H)).timestamp_millis();
    let mut rows = Vec::new();
    for n in snapshot.node_metrics.values() {
        let online = snapshot
            .node_status
            .get(&n.node_name)
            .is_some_and(|s| s.state == NodeState::Online);
        if !online {
            continue;
        }
        let mut start = end - SERIES_HOURS * 3_600_000;
        while start < end {
            if n.node_name != GAP_NODE || !gap.contains(&start) {
                let t = DateTime::from_timestamp_millis(start).expect("a time in range");
                let p = point(n, t);
                let mut s = n.clone();
                s.cpu.usage_percent = p.cpu_usage;
                s.memory.usage_percent = p.memory_usage;
                s.disks[0].usage_percent = p.disk_usage;
                s.cpu.load_1 = p.load_1;
                let mut series: Vec<(SeriesKey, Triple)> = samples_of(&s)
                    .into_iter()
                    .map(|(key, v)| {
                        let hi = if key.figure.unit() == "%" {
                            (v * 1.1).min(100.0)
                        } else {
                            v * 1.1
                        };
                        (key, Triple::new(v * 0.9, v, hi.max(v)))
                    })
                    .collect();
                series.sort_by(|a, b| a.0.cmp(&b.0));
                series.dedup_by(|a, b| a.0 == b.0);
                rows.push(SeriesRow {
                    node_name: n.node_name.clone(),
                    start_ms: start,
                    samples: 1,
                    series,
                });
            }
            start += STEP_MS;
        }
    }
    store
        .append_series(&snapshot.cluster_id, 0, &rows)
        .await
        .expect("fixture series stored");
}

async fn post_snapshot(client: &reqwest::Client, base: &str, snapshot: &ClusterSnapshot) {
    let body = atlhyper_testkit::gzip(&serde_json::to_vec(snapshot).expect("fixture serializes"));
    let res = client
        .post(format!("{base}agent/snapshot"))
        .bearer_auth(agent_token(&snapshot.cluster_id))
        .header("X-Cluster-ID", &snapshot.cluster_id)
        .header("Content-Encoding", "gzip")
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .expect("master reachable");
    let status = res.status();
    let text = res.text().await.unwrap_or_default();
    assert!(
        status.is_success(),
        "snapshot of {}: {status} {text}",
        snapshot.cluster_id
    );
}

// ---------- the fake agent: answers node_series and node_detail over the long poll ----------

fn answer(cmd: &Command, nodes: &BTreeMap<String, NodeMetricsSnapshot>) -> Result<String, String> {
    let node = nodes
        .get(&cmd.target_name)
        .ok_or_else(|| format!("node {} is not in this cluster", cmd.target_name))?;
    match cmd.action.as_str() {
        "node_detail" => serde_json::to_string(node).map_err(|e| e.to_string()),
        "node_series" => {
            let now = Utc::now();
            let since = match (
                cmd.params.get("minutes").and_then(|m| m.as_u64()),
                cmd.params.get("since").and_then(|s| s.as_str()),
            ) {
                (Some(m), _) => {
                    now - chrono::Duration::minutes(i64::try_from(m).map_err(|e| e.to_string())?)
                }
                (None, Some(s)) => s
                    .parse::<DateTime<Utc>>()
                    .map_err(|e| format!("since: {e}"))?,
                (None, None) => now - chrono::Duration::minutes(30),
            };
            let span = (now - since).to_std().map_err(|e| e.to_string())?;
            let points = history(node, now, span, Duration::from_secs(5));
            serde_json::to_string(&points).map_err(|e| e.to_string())
        }
        other => Err(format!("unknown action {other}")),
    }
}

async fn fake_agent(
    base: String,
    cluster: &'static str,
    nodes: BTreeMap<String, NodeMetricsSnapshot>,
    mut stop: watch::Receiver<bool>,
) -> usize {
    let client = reqwest::Client::new();
    let token = agent_token(cluster);
    let mut answered = 0;
    // Bounded: at most this many polls (the long poll waits up to its timeout each time).
    for _ in 0..100_000 {
        if *stop.borrow() {
            break;
        }
        let poll = client
            .get(format!("{base}agent/commands?cluster_id={cluster}"))
            .bearer_auth(&token)
            .header("X-Cluster-ID", cluster)
            .send();
        let res = tokio::select! {
            r = poll => r,
            _ = stop.changed() => break,
        };
        let Ok(res) = res else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let Ok(CommandPoll {
            command: Some(cmd), ..
        }) = res.json::<CommandPoll>().await
        else {
            continue;
        };
        let started = Instant::now();
        let (success, output, error) = match answer(&cmd, &nodes) {
            Ok(out) => (true, out, String::new()),
            Err(e) => (false, String::new(), e),
        };
        let result = CommandResult {
            cluster_id: cluster.to_owned(),
            command_id: cmd.id.clone(),
            success,
            output,
            error,
            exec_time_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        };
        let posted = client
            .post(format!("{base}agent/result"))
            .bearer_auth(&token)
            .header("X-Cluster-ID", cluster)
            .json(&result)
            .send()
            .await;
        if posted.is_ok_and(|r| r.status().is_success()) {
            answered += 1;
        }
    }
    answered
}

/// Heartbeats of the agents of `clusters` every second until `stop`.
async fn heartbeat(
    base: String,
    clusters: &'static [&'static str],
    mut stop: watch::Receiver<bool>,
) {
    let client = reqwest::Client::new();
    loop {
        for cluster in clusters {
            let _ = client
                .post(format!("{base}agent/heartbeat"))
                .bearer_auth(agent_token(cluster))
                .header("X-Cluster-ID", *cluster)
                .json(&serde_json::json!({"cluster_id": cluster, "timestamp": Utc::now()}))
                .send()
                .await;
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
    }
}

// ---------- the test ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_headless_chromium() {
    let root = workspace_root();
    let chromium = std::env::var_os("CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    if let Some(missing) = missing_prerequisite(&root, &chromium) {
        assert!(!required(), "dashboard e2e cannot run under CI: {missing}");
        eprintln!("skipping the dashboard browser test: {missing}");
        return;
    }

    let config = MasterConfig {
        agent_tokens: [MAIN, SILENT, BIG]
            .iter()
            .map(|c| (agent_token(c), (*c).to_owned()))
            .collect::<HashMap<_, _>>(),
        viewer_tokens: vec![VIEWER_TOKEN.to_owned()],
        operator_tokens: vec![OPERATOR_TOKEN.to_owned()],
        detail_timeout: Duration::from_secs(2),
        long_poll_timeout: Duration::from_secs(5),
        // Snapshots are sent once: the agents of prod and big-1000 heartbeat every second to
        // stay online; edge's agent falls silent, and its nodes go offline, after 8 s.
        agent_offline_after: Duration::from_secs(8),
        ..MasterConfig::default()
    };
    let store = Arc::new(MemoryStore::new());
    // The real alert engine and the notification side (no receiver: silences and the Alerts
    // view work), as `atlhyper up` runs them, evaluating every second.
    let dispatcher = Dispatcher::start(NotifyConfig::empty(), store.clone())
        .await
        .expect("notification starts");
    let alerting = Alerting::new(
        store.clone(),
        Arc::new(dispatcher.clone()),
        AlertSettings {
            eval_interval: ALERT_EVAL_INTERVAL,
            ..AlertSettings::default()
        },
    );
    let master = Master::with_alerting(
        config,
        store.clone(),
        store.clone(),
        store.clone(),
        alerting,
    )
    .with_series_store(store.clone());
    assert!(master.set_notifications(dispatcher));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let base = format!("http://{addr}/");
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut server_stop = stop_rx.clone();
    let server = tokio::spawn(run_master(master, listener, async move {
        let _ = server_stop.changed().await;
    }));

    let client = reqwest::Client::new();
    let now = Utc::now();
    let clusters = fixture(now);
    for c in &clusters {
        post_snapshot(&client, &base, c).await;
    }
    // Stored series of every figure (not of the 1000-node cluster: its table is what it tests).
    for c in clusters.iter().filter(|c| c.cluster_id != BIG) {
        feed_series(&store, c, now).await;
    }
    let prod_nodes = clusters
        .iter()
        .find(|c| c.cluster_id == MAIN)
        .map(|c| c.node_metrics.clone())
        .expect("prod fixture");
    // Only prod has an agent answering commands; edge's agent falls silent (offline after 8 s:
    // its nodes offline, 503 at once on the 1 h chart).
    let agent = tokio::spawn(fake_agent(base.clone(), MAIN, prod_nodes, stop_rx.clone()));
    let heartbeats = tokio::spawn(heartbeat(base.clone(), &[MAIN, BIG], stop_rx.clone()));

    // The API answers with the fixture before the browser starts.
    let res = client
        .get(format!("{base}api/v2/clusters"))
        .bearer_auth(VIEWER_TOKEN)
        .send()
        .await
        .expect("clusters");
    assert_eq!(res.status(), 200);
    let no_token = client
        .get(format!("{base}api/v2/clusters"))
        .send()
        .await
        .expect("clusters");
    assert_eq!(
        no_token.status(),
        401,
        "the page must meet a 401 first and ask for the token"
    );

    let shots = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), PathBuf::from)
        .join("e2e-screenshots");
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(root.join("e2e/dashboard.test.mjs"))
        .arg(&base)
        .current_dir(&root)
        .env("CHROMIUM", &chromium)
        .env("ATLHYPER_E2E_TOKEN", VIEWER_TOKEN)
        .env("ATLHYPER_E2E_OPERATOR_TOKEN", OPERATOR_TOKEN)
        .env("ATLHYPER_E2E_MAIN_CLUSTER", MAIN)
        .env("ATLHYPER_E2E_SILENT_CLUSTER", SILENT)
        .env("ATLHYPER_E2E_BIG_CLUSTER", BIG)
        .env("ATLHYPER_E2E_GAP_NODE", GAP_NODE)
        .env("ATLHYPER_E2E_GAP_HOURS", format!("{GAP_FROM_H},{GAP_TO_H}"))
        .env("ATLHYPER_E2E_NO_SENSOR_NODE", "worker-4")
        .env(
            "ATLHYPER_E2E_FIXTURE_NOW_MS",
            now.timestamp_millis().to_string(),
        )
        .env("ATLHYPER_E2E_SCREENSHOTS", &shots)
        .kill_on_drop(true);
    let run = tokio::time::timeout(Duration::from_secs(300), cmd.output()).await;

    let _ = stop_tx.send(true);
    let answered = agent.await.expect("fake agent");
    heartbeats.await.expect("heartbeats");
    server.await.expect("server task").expect("master ran");

    let output = run
        .expect("browser test finished within 5 minutes")
        .expect("node started");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "dashboard.test.mjs failed ({}); screenshots in {}",
        output.status,
        shots.display()
    );
    assert!(
        stdout.contains("PASSED"),
        "the browser test did not report PASSED"
    );
    assert!(answered >= 1, "the 1 h chart went through the agent");
    assert!(
        stdout.contains("ok ") && stdout.contains(" - Alerts view: "),
        "the browser test did not drive the Alerts view"
    );
}
