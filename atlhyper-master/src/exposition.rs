//! Prometheus text exposition (`GET /metrics`): every online node's latest figures as gauges
//! labelled by cluster and node, every node's and cluster's liveness, and the master's own
//! counters and latency histograms.
//!
//! A node that is not online (its agent says so, or the agent is silent) exports
//! `atlhyper_node_up 0` and the time of its last report, and no current figure at all: the series
//! go absent, so Prometheus marks them stale and no `cpu > 90` rule keeps firing on a frozen value.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use atlhyper_model::{
    ClusterInfo, Exposition, ExpositionFormat, MetricKind, MetricsDataPoint, NodeMetricsSnapshot,
    RejectReason,
};

use crate::admission::{Admission, BackfillDropped};

use crate::view::ClusterView;
use atlhyper_http::text_response;
use axum::http::{HeaderMap, header};
use axum::response::Response;

/// Upper bounds of the latency histograms, seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// A Prometheus histogram over [`LATENCY_BUCKETS`], lock free.
#[derive(Debug, Default)]
pub(crate) struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub(crate) fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    fn write(&self, out: &mut Exposition, name: &str, help: &str) {
        let mut cumulative = [(0.0, 0); LATENCY_BUCKETS.len()];
        for ((slot, bound), bucket) in cumulative
            .iter_mut()
            .zip(LATENCY_BUCKETS)
            .zip(&self.buckets)
        {
            *slot = (bound, bucket.load(Ordering::Relaxed));
        }
        let count = self.count.load(Ordering::Relaxed);
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        out.family(name, MetricKind::Histogram, help)
            .histogram(&[], &cumulative, sum, count);
    }
}

/// The master's own metrics.
#[derive(Debug, Default)]
pub(crate) struct MasterStats {
    pub(crate) snapshots_accepted: AtomicU64,
    pub(crate) snapshots_duplicate: AtomicU64,
    pub(crate) snapshots_rejected: AtomicU64,
    pub(crate) snapshot_bytes_compressed: AtomicU64,
    pub(crate) snapshot_bytes_decompressed: AtomicU64,
    pub(crate) heartbeats: AtomicU64,
    /// Nodes refused alone out of cluster snapshots, in [`RejectReason::ALL`] order.
    pub(crate) nodes_rejected: [AtomicU64; RejectReason::ALL.len()],
    /// Node timestamps replaced by the receive time (clock far off).
    pub(crate) node_clocks_replaced: AtomicU64,
    /// Backfill points dropped, in [`BackfillDropped::by_reason`] order.
    pub(crate) backfill_dropped: [AtomicU64; 4],
    pub(crate) history_points: AtomicU64,
    pub(crate) history_pruned: AtomicU64,
    pub(crate) nodes_retired: AtomicU64,
    pub(crate) store_errors: AtomicU64,
    pub(crate) commands_created: AtomicU64,
    pub(crate) command_results: AtomicU64,
    pub(crate) commands_expired: AtomicU64,
    pub(crate) commands_pruned: AtomicU64,
    pub(crate) detail_timeouts: AtomicU64,
    pub(crate) ingest_latency: Histogram,
    pub(crate) command_round_trip: Histogram,
    pub(crate) limits: crate::limits::LimitCounters,
    /// Alert notification's figures, once a dispatcher is attached.
    pub(crate) notifications:
        std::sync::OnceLock<std::sync::Arc<crate::alerting::notify::NotifyStats>>,
}

impl MasterStats {
    /// Counts what admission refused, replaced and dropped.
    pub(crate) fn count_admission(&self, admission: &Admission) {
        for (counter, n) in self.nodes_rejected.iter().zip(admission.refused) {
            counter.fetch_add(n, Ordering::Relaxed);
        }
        self.node_clocks_replaced
            .fetch_add(admission.clocks_replaced, Ordering::Relaxed);
        let dropped = admission.backfill_dropped.by_reason();
        for (counter, (_, n)) in self.backfill_dropped.iter().zip(dropped) {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }
}

fn counter(out: &mut Exposition, name: &str, help: &str, value: &AtomicU64) {
    out.family(name, MetricKind::Counter, help)
        .sample(&[], value.load(Ordering::Relaxed) as f64);
}

/// A node gauge: name, help, and how to read it (None: not reported for this node).
type NodeGauge = (
    &'static str,
    &'static str,
    fn(&NodeMetricsSnapshot, &MetricsDataPoint) -> Option<f64>,
);

/// Current figures: exported for online nodes only.
const NODE_GAUGES: &[NodeGauge] = &[
    (
        "atlhyper_node_cpu_usage_percent",
        "CPU busy percent (100 - idle - iowait) over the last collection interval.",
        |_, p| Some(p.cpu_usage),
    ),
    (
        "atlhyper_node_cpu_iowait_percent",
        "CPU iowait percent over the last collection interval.",
        |n, _| Some(n.cpu.iowait_percent),
    ),
    (
        "atlhyper_node_cpu_steal_percent",
        "CPU steal percent over the last collection interval (absent when not reported).",
        |n, _| n.cpu.steal_percent,
    ),
    ("atlhyper_node_load1", "1-minute load average.", |n, _| {
        Some(n.cpu.load_1)
    }),
    ("atlhyper_node_load5", "5-minute load average.", |n, _| {
        Some(n.cpu.load_5)
    }),
    ("atlhyper_node_load15", "15-minute load average.", |n, _| {
        Some(n.cpu.load_15)
    }),
    (
        "atlhyper_node_memory_total_bytes",
        "MemTotal, bytes.",
        |n, _| Some(n.memory.total as f64),
    ),
    (
        "atlhyper_node_memory_used_bytes",
        "Used memory (total - available), bytes.",
        |n, _| Some(n.memory.used as f64),
    ),
    (
        "atlhyper_node_memory_available_bytes",
        "MemAvailable, bytes.",
        |n, _| Some(n.memory.available as f64),
    ),
    (
        "atlhyper_node_memory_usage_percent",
        "Used memory percent.",
        |_, p| Some(p.memory_usage),
    ),
    (
        "atlhyper_node_swap_used_bytes",
        "Used swap, bytes.",
        |n, _| Some(n.memory.swap_used as f64),
    ),
    (
        "atlhyper_node_disk_usage_percent",
        "Used percent of the primary filesystem (mounted at /, else the first).",
        |_, p| Some(p.disk_usage),
    ),
    (
        "atlhyper_node_disk_read_bytes_per_second",
        "Disk read rate over whole disks, bytes/s.",
        |_, p| Some(p.disk_io_read),
    ),
    (
        "atlhyper_node_disk_write_bytes_per_second",
        "Disk write rate over whole disks, bytes/s.",
        |_, p| Some(p.disk_io_write),
    ),
    (
        "atlhyper_node_network_receive_bytes_per_second",
        "Receive rate over non-virtual interfaces, bytes/s.",
        |_, p| Some(p.network_rx),
    ),
    (
        "atlhyper_node_network_transmit_bytes_per_second",
        "Send rate over non-virtual interfaces, bytes/s.",
        |_, p| Some(p.network_tx),
    ),
    (
        "atlhyper_node_cpu_temperature_celsius",
        "CPU temperature, Celsius (absent when the node has no sensor).",
        |n, _| (n.temperature.cpu_temp > 0.0).then_some(n.temperature.cpu_temp),
    ),
    (
        "atlhyper_node_uptime_seconds",
        "Seconds since boot.",
        |n, _| Some(n.uptime as f64),
    ),
];

/// Exported for every node, online or not: when its last report was collected.
const NODE_TIMESTAMP: NodeGauge = (
    "atlhyper_node_snapshot_timestamp_seconds",
    "When the node's latest snapshot was collected, Unix seconds (also for offline nodes).",
    |n, _| Some(n.timestamp.timestamp_millis() as f64 / 1000.0),
);

/// One node's row: its labels and what its figures are read from.
struct Row<'a> {
    cluster: &'a str,
    name: &'a str,
    node: &'a NodeMetricsSnapshot,
    point: MetricsDataPoint,
    online: bool,
}

impl Row<'_> {
    fn labels(&self) -> [(&str, &str); 2] {
        [("cluster", self.cluster), ("node", self.name)]
    }
}

/// Writes one family over every row with a value from `read` (skipping non-finite values, which
/// mean "not measured" in the snapshot).
fn per_node(
    out: &mut Exposition,
    rows: &[Row<'_>],
    (name, help, read): NodeGauge,
    kind: MetricKind,
) {
    let mut family = out.family(name, kind, help);
    for r in rows {
        if let Some(v) = read(r.node, &r.point).filter(|v| v.is_finite()) {
            family.sample(&r.labels(), v);
        }
    }
}

/// A per-mount figure: name, kind, help, and how to read it from one filesystem.
type DiskFigure = (
    &'static str,
    MetricKind,
    &'static str,
    fn(&atlhyper_model::DiskMetrics) -> Option<f64>,
);

/// Per filesystem: space, inodes, and the IO counters of its device.
const DISK_FIGURES: &[DiskFigure] = &[
    (
        "atlhyper_node_filesystem_size_bytes",
        MetricKind::Gauge,
        "Filesystem size, bytes.",
        |d| Some(d.total as f64),
    ),
    (
        "atlhyper_node_filesystem_used_bytes",
        MetricKind::Gauge,
        "Filesystem used space, bytes.",
        |d| Some(d.used as f64),
    ),
    (
        "atlhyper_node_filesystem_avail_bytes",
        MetricKind::Gauge,
        "Filesystem space available to unprivileged users (df's Avail), bytes.",
        |d| Some(d.available as f64),
    ),
    (
        "atlhyper_node_filesystem_usage_percent",
        MetricKind::Gauge,
        "Filesystem used percent as df computes it.",
        |d| Some(d.usage_percent),
    ),
    (
        "atlhyper_node_filesystem_files",
        MetricKind::Gauge,
        "Filesystem inodes.",
        |d| d.inodes_total.map(|v| v as f64),
    ),
    (
        "atlhyper_node_filesystem_files_free",
        MetricKind::Gauge,
        "Filesystem free inodes.",
        |d| match (d.inodes_total, d.inodes_used) {
            (Some(t), Some(u)) => Some(t.saturating_sub(u) as f64),
            _ => None,
        },
    ),
    (
        "atlhyper_node_disk_read_bytes_total",
        MetricKind::Counter,
        "Bytes read from the filesystem's device since boot.",
        |d| Some(d.read_bytes as f64),
    ),
    (
        "atlhyper_node_disk_written_bytes_total",
        MetricKind::Counter,
        "Bytes written to the filesystem's device since boot.",
        |d| Some(d.write_bytes as f64),
    ),
];

/// A per-interface figure, as [`DiskFigure`].
type NetFigure = (
    &'static str,
    MetricKind,
    &'static str,
    fn(&atlhyper_model::NetworkMetrics) -> Option<f64>,
);

/// Per interface: the kernel's counters, the rates the collector took, the link.
const NET_FIGURES: &[NetFigure] = &[
    (
        "atlhyper_node_network_receive_bytes_total",
        MetricKind::Counter,
        "Bytes received since the interface came up.",
        |n| Some(n.rx_bytes as f64),
    ),
    (
        "atlhyper_node_network_transmit_bytes_total",
        MetricKind::Counter,
        "Bytes sent since the interface came up.",
        |n| Some(n.tx_bytes as f64),
    ),
    (
        "atlhyper_node_network_receive_packets_total",
        MetricKind::Counter,
        "Packets received.",
        |n| Some(n.rx_packets as f64),
    ),
    (
        "atlhyper_node_network_transmit_packets_total",
        MetricKind::Counter,
        "Packets sent.",
        |n| Some(n.tx_packets as f64),
    ),
    (
        "atlhyper_node_network_receive_errs_total",
        MetricKind::Counter,
        "Receive errors.",
        |n| Some(n.rx_errors as f64),
    ),
    (
        "atlhyper_node_network_transmit_errs_total",
        MetricKind::Counter,
        "Transmit errors.",
        |n| Some(n.tx_errors as f64),
    ),
    (
        "atlhyper_node_network_receive_drop_total",
        MetricKind::Counter,
        "Received packets dropped.",
        |n| Some(n.rx_dropped as f64),
    ),
    (
        "atlhyper_node_network_transmit_drop_total",
        MetricKind::Counter,
        "Sent packets dropped.",
        |n| Some(n.tx_dropped as f64),
    ),
    (
        "atlhyper_node_interface_receive_bytes_per_second",
        MetricKind::Gauge,
        "Receive rate of one interface over the last collection interval, bytes/s.",
        |n| Some(n.rx_rate),
    ),
    (
        "atlhyper_node_interface_transmit_bytes_per_second",
        MetricKind::Gauge,
        "Send rate of one interface over the last collection interval, bytes/s.",
        |n| Some(n.tx_rate),
    ),
    (
        "atlhyper_node_network_up",
        MetricKind::Gauge,
        "1 when the interface's operstate is up.",
        |n| Some(f64::from(u8::from(n.status == "up"))),
    ),
    (
        "atlhyper_node_network_speed_bytes",
        MetricKind::Gauge,
        "Link speed, bytes/s (absent when the kernel does not know it).",
        |n| (n.speed >= 0).then_some(n.speed as f64 * 125_000.0),
    ),
    (
        "atlhyper_node_network_mtu_bytes",
        MetricKind::Gauge,
        "MTU, bytes.",
        |n| Some(f64::from(n.mtu)),
    ),
];

/// Pressure stall shares (avg10, percent): name suffix and how to read it.
type PsiFigure = (&'static str, fn(&atlhyper_model::PsiMetrics) -> f64);

const PSI_FIGURES: [PsiFigure; 5] = [
    ("cpu_some", |p| p.cpu_some),
    ("memory_some", |p| p.memory_some),
    ("memory_full", |p| p.memory_full),
    ("io_some", |p| p.io_some),
    ("io_full", |p| p.io_full),
];

/// Writes every node figure of every cluster in `views` (only `cluster` when given).
fn write_nodes(out: &mut Exposition, views: &[std::sync::Arc<ClusterView>], cluster: Option<&str>) {
    let mut rows = Vec::new();
    for view in views {
        if cluster.is_some_and(|c| c != view.snapshot.cluster_id) {
            continue;
        }
        for (name, node) in &view.snapshot.node_metrics {
            rows.push(Row {
                cluster: &view.snapshot.cluster_id,
                name,
                node,
                point: MetricsDataPoint::from_snapshot(node),
                online: view.is_node_online(name),
            });
        }
    }

    {
        let mut family = out.family(
            "atlhyper_node_up",
            MetricKind::Gauge,
            "1 when the node reports to its agent and the agent to the master, 0 otherwise.",
        );
        for r in &rows {
            family.sample(&r.labels(), f64::from(u8::from(r.online)));
        }
    }
    per_node(out, &rows, NODE_TIMESTAMP, MetricKind::Gauge);
    // Everything below is a current figure: online nodes only.
    rows.retain(|r| r.online);
    for gauge in NODE_GAUGES {
        per_node(out, &rows, *gauge, MetricKind::Gauge);
    }

    for (name, kind, help, read) in DISK_FIGURES {
        let mut family = out.family(name, *kind, help);
        for r in &rows {
            let [c, n] = r.labels();
            for d in &r.node.disks {
                if let Some(v) = read(d).filter(|v| v.is_finite()) {
                    let labels = [c, n, ("device", &d.device), ("mountpoint", &d.mount_point)];
                    family.sample(&labels, v);
                }
            }
        }
    }
    for (name, kind, help, read) in NET_FIGURES {
        let mut family = out.family(name, *kind, help);
        for r in &rows {
            let [c, n] = r.labels();
            for i in &r.node.networks {
                if let Some(v) = read(i).filter(|v| v.is_finite()) {
                    family.sample(&[c, n, ("interface", &i.interface)], v);
                }
            }
        }
    }
    {
        let mut family = out.family(
            "atlhyper_node_pressure_percent",
            MetricKind::Gauge,
            "Pressure stall share over the last 10 s (avg10), percent, by resource and kind.",
        );
        for r in &rows {
            let [c, n] = r.labels();
            let Some(psi) = &r.node.psi else { continue };
            for (what, read) in PSI_FIGURES {
                let (resource, kind) = what.split_once('_').unwrap_or((what, ""));
                let labels = [c, n, ("resource", resource), ("kind", kind)];
                family.sample(&labels, read(psi));
            }
        }
    }
    let mut family = out.family(
        "atlhyper_node_sensor_temperature_celsius",
        MetricKind::Gauge,
        "Reading of one temperature sensor, Celsius.",
    );
    for r in &rows {
        let [c, n] = r.labels();
        for s in &r.node.temperature.sensors {
            if s.current.is_finite() {
                family.sample(&[c, n, ("chip", &s.name), ("sensor", &s.label)], s.current);
            }
        }
    }
}

/// Writes `atlhyper_cluster_up` of every known cluster (only `cluster` when given).
fn write_clusters(out: &mut Exposition, clusters: &[ClusterInfo], cluster: Option<&str>) {
    let mut family = out.family(
        "atlhyper_cluster_up",
        MetricKind::Gauge,
        "1 when the cluster's agent was heard from within MASTER_AGENT_OFFLINE_AFTER, 0 otherwise.",
    );
    for c in clusters {
        if cluster.is_none_or(|only| only == c.cluster_id) {
            let up = u8::from(c.status == "online");
            family.sample(&[("cluster", &c.cluster_id)], f64::from(up));
        }
    }
}

/// What a scrape asks for: the format, and optionally one cluster (`?cluster=`) to split a large
/// fleet over several scrape jobs. The master's own figures come with every scrape.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Scrape<'a> {
    pub(crate) format: ExpositionFormat,
    pub(crate) cluster: Option<&'a str>,
}

/// The `/metrics` answer: the format the `Accept` header asks for, gzip-compressed when
/// `Accept-Encoding` allows it, only `cluster`'s nodes when given.
pub(crate) fn respond(
    master: &crate::Master,
    headers: &HeaderMap,
    cluster: Option<&str>,
) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = ExpositionFormat::negotiate(accept);
    let views = master.hub.views();
    let clusters = master.hub.clusters();
    let text = render(
        &views,
        &clusters,
        &master.stats,
        Scrape { format, cluster },
        |out| {
            crate::alerting::metrics::write_alert_metrics(out, &master.alerting);
            master.fleet.write_metrics(out);
        },
    );
    text_response(headers, format.content_type(), text)
}

/// The whole exposition: `views` as they read now, `clusters` every known cluster.
pub(crate) fn render(
    views: &[std::sync::Arc<ClusterView>],
    clusters: &[ClusterInfo],
    stats: &MasterStats,
    scrape: Scrape<'_>,
    write_parts: impl FnOnce(&mut Exposition),
) -> String {
    let mut out = Exposition::with_capacity(scrape.format, 4096 + views.len() * 4096);
    write_clusters(&mut out, clusters, scrape.cluster);
    write_nodes(&mut out, views, scrape.cluster);
    write_master(&mut out, clusters, stats);
    // The parts with state of their own (alerting) write their families last.
    write_parts(&mut out);
    out.finish()
}

/// The master's own figures.
fn write_master(out: &mut Exposition, clusters: &[ClusterInfo], stats: &MasterStats) {
    let agents_online = clusters.iter().filter(|c| c.status == "online").count();
    out.family(
        "atlhyper_master_clusters",
        MetricKind::Gauge,
        "Clusters the master knows.",
    )
    .sample(&[], clusters.len() as f64);
    out.family(
        "atlhyper_master_agents_online",
        MetricKind::Gauge,
        "Agents heard from recently.",
    )
    .sample(&[], agents_online as f64);
    let load = |v: &AtomicU64| v.load(Ordering::Relaxed) as f64;
    {
        let mut family = out.family(
            "atlhyper_master_snapshots_total",
            MetricKind::Counter,
            "Cluster snapshots received, by result.",
        );
        for (result, v) in [
            ("accepted", &stats.snapshots_accepted),
            ("duplicate", &stats.snapshots_duplicate),
            ("rejected", &stats.snapshots_rejected),
        ] {
            family.sample(&[("result", result)], load(v));
        }
    }
    {
        let mut family = out.family(
            "atlhyper_master_nodes_rejected_total",
            MetricKind::Counter,
            "Nodes refused alone out of accepted cluster snapshots, by reason.",
        );
        for (reason, v) in RejectReason::ALL.iter().zip(&stats.nodes_rejected) {
            family.sample(&[("reason", reason.as_str())], load(v));
        }
    }
    counter(
        out,
        "atlhyper_master_node_clocks_replaced_total",
        "Node timestamps too far ahead or older than the retention, replaced by the receive time.",
        &stats.node_clocks_replaced,
    );
    {
        let mut family = out.family(
            "atlhyper_master_backfill_points_dropped_total",
            MetricKind::Counter,
            "Backfill points dropped alone, by reason.",
        );
        let labels = BackfillDropped::default().by_reason();
        for ((reason, _), v) in labels.iter().zip(&stats.backfill_dropped) {
            family.sample(&[("reason", reason)], load(v));
        }
    }
    out.family(
        "atlhyper_master_snapshot_bytes_total",
        MetricKind::Counter,
        "Bytes of accepted snapshot bodies, as sent and decompressed.",
    )
    .sample(
        &[("kind", "compressed")],
        load(&stats.snapshot_bytes_compressed),
    )
    .sample(
        &[("kind", "decompressed")],
        load(&stats.snapshot_bytes_decompressed),
    );
    for (name, help, v) in [
        (
            "atlhyper_master_heartbeats_total",
            "Agent heartbeats received.",
            &stats.heartbeats,
        ),
        (
            "atlhyper_master_history_points_total",
            "History points written.",
            &stats.history_points,
        ),
        (
            "atlhyper_master_history_pruned_total",
            "History points deleted by the retention prune.",
            &stats.history_pruned,
        ),
        (
            "atlhyper_master_nodes_retired_total",
            "Nodes that left the latest state after MASTER_NODE_RETIRE_AFTER of silence.",
            &stats.nodes_retired,
        ),
        (
            "atlhyper_master_commands_pruned_total",
            "Finished commands deleted by the retention prune.",
            &stats.commands_pruned,
        ),
        (
            "atlhyper_master_store_errors_total",
            "Store operations that failed.",
            &stats.store_errors,
        ),
        (
            "atlhyper_master_commands_created_total",
            "Commands queued for agents.",
            &stats.commands_created,
        ),
        (
            "atlhyper_master_command_results_total",
            "Command results accepted from agents.",
            &stats.command_results,
        ),
        (
            "atlhyper_master_commands_expired_total",
            "Commands that passed their deadline unanswered.",
            &stats.commands_expired,
        ),
        (
            "atlhyper_master_detail_timeouts_total",
            "Observe detail requests answered 504 because the agent did not answer in time.",
            &stats.detail_timeouts,
        ),
    ] {
        counter(out, name, help, v);
    }
    stats.ingest_latency.write(
        out,
        "atlhyper_master_snapshot_ingest_seconds",
        "Time to ingest one snapshot (decode, persist, publish).",
    );
    stats.command_round_trip.write(
        out,
        "atlhyper_master_command_round_trip_seconds",
        "Observe detail requests: command queued to result received.",
    );
    stats.limits.write(out);
    crate::alerting::notify::write_metrics(out, stats.notifications.get().map(|s| &**s));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(300));
        h.observe(Duration::from_millis(3));
        let mut out = Exposition::new(ExpositionFormat::Text);
        h.write(&mut out, "x", "help");
        let out = out.finish();
        assert!(out.contains("x_bucket{le=\"0.0005\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"0.005\"} 2\n"), "{out}");
        assert!(out.contains("x_count 2\n"), "{out}");
    }
}
