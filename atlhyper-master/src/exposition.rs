//! Prometheus text exposition (`GET /metrics`): every online node's latest figures as gauges
//! labelled by cluster and node, every node's and cluster's liveness, and the master's own
//! counters and latency histograms.
//!
//! A node that is not online (its agent says so, or the agent is silent) exports
//! `atlhyper_node_up 0` and the time of its last report, and no current figure at all: the series
//! go absent, so Prometheus marks them stale and no `cpu > 90` rule keeps firing on a frozen value.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use atlhyper_model::{ClusterInfo, MetricsDataPoint, NodeMetricsSnapshot, RejectReason};

use crate::admission::{Admission, BackfillDropped};

use crate::hub::ClusterView;

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

    fn write(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.buckets) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
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

fn counter(out: &mut String, name: &str, help: &str, value: &AtomicU64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
        value.load(Ordering::Relaxed)
    );
}

/// Escapes a label value: backslash, double quote and newline.
fn escape(value: &str) -> String {
    let mut s = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
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

fn write_value(out: &mut String, name: &str, labels: &str, value: f64) {
    if value.is_finite() {
        let _ = writeln!(out, "{name}{{{labels}}} {value}");
    }
}

/// Writes every node gauge of every cluster.
fn write_nodes(out: &mut String, views: &[std::sync::Arc<ClusterView>]) {
    struct Row<'a> {
        labels: String,
        node: &'a NodeMetricsSnapshot,
        point: MetricsDataPoint,
        online: bool,
    }
    let mut rows = Vec::new();
    for view in views {
        let cluster = escape(&view.snapshot.cluster_id);
        for (name, node) in &view.snapshot.node_metrics {
            rows.push(Row {
                labels: format!("cluster=\"{cluster}\",node=\"{}\"", escape(name)),
                node,
                point: MetricsDataPoint::from_snapshot(node),
                online: view.is_node_online(name),
            });
        }
    }

    let _ = writeln!(
        out,
        "# HELP atlhyper_node_up 1 when the node reports to its agent and the agent to the master, 0 otherwise.\n# TYPE atlhyper_node_up gauge"
    );
    for r in &rows {
        write_value(
            out,
            "atlhyper_node_up",
            &r.labels,
            f64::from(u8::from(r.online)),
        );
    }
    {
        let (name, help, read) = NODE_TIMESTAMP;
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for r in &rows {
            if let Some(v) = read(r.node, &r.point) {
                write_value(out, name, &r.labels, v);
            }
        }
    }
    // Everything below is a current figure: online nodes only.
    rows.retain(|r| r.online);
    for (name, help, read) in NODE_GAUGES {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for r in &rows {
            if let Some(v) = read(r.node, &r.point) {
                write_value(out, name, &r.labels, v);
            }
        }
    }

    type DiskRead = fn(&atlhyper_model::DiskMetrics) -> f64;
    let disk: [(&str, &str, DiskRead); 3] = [
        (
            "atlhyper_node_filesystem_size_bytes",
            "Filesystem size, bytes.",
            |d| d.total as f64,
        ),
        (
            "atlhyper_node_filesystem_used_bytes",
            "Filesystem used space, bytes.",
            |d| d.used as f64,
        ),
        (
            "atlhyper_node_filesystem_usage_percent",
            "Filesystem used percent as df computes it.",
            |d| d.usage_percent,
        ),
    ];
    for (name, help, read) in disk {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for r in &rows {
            for d in &r.node.disks {
                let labels = format!(
                    "{},device=\"{}\",mountpoint=\"{}\"",
                    r.labels,
                    escape(&d.device),
                    escape(&d.mount_point)
                );
                write_value(out, name, &labels, read(d));
            }
        }
    }

    type NetRead = fn(&atlhyper_model::NetworkMetrics) -> f64;
    let net: [(&str, &str, NetRead); 2] = [
        (
            "atlhyper_node_interface_receive_bytes_per_second",
            "Receive rate of one interface, bytes/s.",
            |n| n.rx_rate,
        ),
        (
            "atlhyper_node_interface_transmit_bytes_per_second",
            "Send rate of one interface, bytes/s.",
            |n| n.tx_rate,
        ),
    ];
    for (name, help, read) in net {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for r in &rows {
            for n in &r.node.networks {
                let labels = format!("{},interface=\"{}\"", r.labels, escape(&n.interface));
                write_value(out, name, &labels, read(n));
            }
        }
    }

    let name = "atlhyper_node_sensor_temperature_celsius";
    let _ = writeln!(
        out,
        "# HELP {name} Reading of one temperature sensor, Celsius.\n# TYPE {name} gauge"
    );
    for r in &rows {
        for s in &r.node.temperature.sensors {
            let labels = format!(
                "{},chip=\"{}\",sensor=\"{}\"",
                r.labels,
                escape(&s.name),
                escape(&s.label)
            );
            write_value(out, name, &labels, s.current);
        }
    }
}

/// Writes `atlhyper_cluster_up` of every known cluster.
fn write_clusters(out: &mut String, clusters: &[ClusterInfo]) {
    let name = "atlhyper_cluster_up";
    let _ = writeln!(
        out,
        "# HELP {name} 1 when the cluster's agent was heard from within MASTER_AGENT_OFFLINE_AFTER, 0 otherwise.\n# TYPE {name} gauge"
    );
    for c in clusters {
        let up = u8::from(c.status == "online");
        let _ = writeln!(out, "{name}{{cluster=\"{}\"}} {up}", escape(&c.cluster_id));
    }
}

/// The whole exposition: `views` as they read now, `clusters` every known cluster.
pub(crate) fn render(
    views: &[std::sync::Arc<ClusterView>],
    clusters: &[ClusterInfo],
    stats: &MasterStats,
) -> String {
    let mut out = String::with_capacity(4096 + views.len() * 4096);
    write_clusters(&mut out, clusters);
    write_nodes(&mut out, views);
    let agents_online = clusters.iter().filter(|c| c.status == "online").count();
    let clusters = clusters.len();

    let _ = writeln!(
        out,
        "# HELP atlhyper_master_clusters Clusters the master knows.\n# TYPE atlhyper_master_clusters gauge\natlhyper_master_clusters {clusters}"
    );
    let _ = writeln!(
        out,
        "# HELP atlhyper_master_agents_online Agents heard from recently.\n# TYPE atlhyper_master_agents_online gauge\natlhyper_master_agents_online {agents_online}"
    );
    let name = "atlhyper_master_snapshots_total";
    let _ = writeln!(
        out,
        "# HELP {name} Cluster snapshots received, by result.\n# TYPE {name} counter"
    );
    for (result, v) in [
        ("accepted", &stats.snapshots_accepted),
        ("duplicate", &stats.snapshots_duplicate),
        ("rejected", &stats.snapshots_rejected),
    ] {
        let _ = writeln!(
            out,
            "{name}{{result=\"{result}\"}} {}",
            v.load(Ordering::Relaxed)
        );
    }
    let name = "atlhyper_master_nodes_rejected_total";
    let _ = writeln!(
        out,
        "# HELP {name} Nodes refused alone out of accepted cluster snapshots, by reason.\n# TYPE {name} counter"
    );
    for (reason, v) in RejectReason::ALL.iter().zip(&stats.nodes_rejected) {
        let _ = writeln!(
            out,
            "{name}{{reason=\"{}\"}} {}",
            reason.as_str(),
            v.load(Ordering::Relaxed)
        );
    }
    counter(
        &mut out,
        "atlhyper_master_node_clocks_replaced_total",
        "Node timestamps too far ahead or older than the retention, replaced by the receive time.",
        &stats.node_clocks_replaced,
    );
    let name = "atlhyper_master_backfill_points_dropped_total";
    let _ = writeln!(
        out,
        "# HELP {name} Backfill points dropped alone, by reason.\n# TYPE {name} counter"
    );
    let labels = BackfillDropped::default().by_reason();
    for ((reason, _), v) in labels.iter().zip(&stats.backfill_dropped) {
        let _ = writeln!(
            out,
            "{name}{{reason=\"{reason}\"}} {}",
            v.load(Ordering::Relaxed)
        );
    }
    let name = "atlhyper_master_snapshot_bytes_total";
    let _ = writeln!(
        out,
        "# HELP {name} Bytes of accepted snapshot bodies, as sent and decompressed.\n# TYPE {name} counter"
    );
    for (kind, v) in [
        ("compressed", &stats.snapshot_bytes_compressed),
        ("decompressed", &stats.snapshot_bytes_decompressed),
    ] {
        let _ = writeln!(
            out,
            "{name}{{kind=\"{kind}\"}} {}",
            v.load(Ordering::Relaxed)
        );
    }
    counter(
        &mut out,
        "atlhyper_master_heartbeats_total",
        "Agent heartbeats received.",
        &stats.heartbeats,
    );
    counter(
        &mut out,
        "atlhyper_master_history_points_total",
        "History points written.",
        &stats.history_points,
    );
    counter(
        &mut out,
        "atlhyper_master_history_pruned_total",
        "History points deleted by the retention prune.",
        &stats.history_pruned,
    );
    counter(
        &mut out,
        "atlhyper_master_nodes_retired_total",
        "Nodes that left the latest state after MASTER_NODE_RETIRE_AFTER of silence.",
        &stats.nodes_retired,
    );
    counter(
        &mut out,
        "atlhyper_master_commands_pruned_total",
        "Finished commands deleted by the retention prune.",
        &stats.commands_pruned,
    );
    counter(
        &mut out,
        "atlhyper_master_store_errors_total",
        "Store operations that failed.",
        &stats.store_errors,
    );
    counter(
        &mut out,
        "atlhyper_master_commands_created_total",
        "Commands queued for agents.",
        &stats.commands_created,
    );
    counter(
        &mut out,
        "atlhyper_master_command_results_total",
        "Command results accepted from agents.",
        &stats.command_results,
    );
    counter(
        &mut out,
        "atlhyper_master_commands_expired_total",
        "Commands that passed their deadline unanswered.",
        &stats.commands_expired,
    );
    counter(
        &mut out,
        "atlhyper_master_detail_timeouts_total",
        "Observe detail requests answered 504 because the agent did not answer in time.",
        &stats.detail_timeouts,
    );
    stats.ingest_latency.write(
        &mut out,
        "atlhyper_master_snapshot_ingest_seconds",
        "Time to ingest one snapshot (decode, persist, publish).",
    );
    stats.command_round_trip.write(
        &mut out,
        "atlhyper_master_command_round_trip_seconds",
        "Observe detail requests: command queued to result received.",
    );
    stats.limits.write(&mut out);
    crate::alerting::notify::write_metrics(&mut out, stats.notifications.get().map(|s| &**s));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_label_values() {
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape("x\ny"), "x\\ny");
    }

    #[test]
    fn histogram_is_cumulative() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(300));
        h.observe(Duration::from_millis(3));
        let mut out = String::new();
        h.write(&mut out, "x", "help");
        assert!(out.contains("x_bucket{le=\"0.0005\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"0.005\"} 2\n"), "{out}");
        assert!(out.contains("x_count 2\n"), "{out}");
    }
}
