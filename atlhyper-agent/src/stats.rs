//! The agent's counters and their Prometheus text exposition.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::node_table::NodeCounts;

/// Counters of the cluster agent, exposed on `GET /metrics`.
#[derive(Debug, Default)]
pub struct AgentStats {
    /// Snapshots accepted as a node's newest.
    pub ingest_latest: AtomicU64,
    /// Snapshots accepted as late history points.
    pub ingest_late: AtomicU64,
    /// Snapshots that repeated one already held.
    pub ingest_duplicate: AtomicU64,
    /// Rejected with 400.
    pub rejected_bad_request: AtomicU64,
    /// Rejected with 401.
    pub rejected_unauthorized: AtomicU64,
    /// Rejected with 413.
    pub rejected_too_large: AtomicU64,
    /// Rejected with 408 (body too slow).
    pub rejected_timeout: AtomicU64,
    /// Rejected with 415.
    pub rejected_unsupported_encoding: AtomicU64,
    /// Snapshots the master accepted.
    pub push_ok: AtomicU64,
    /// Snapshot pushes that failed.
    pub push_failed: AtomicU64,
    /// seq of the last snapshot sent.
    pub push_last_seq: AtomicU64,
    /// Backfill points the master accepted.
    pub backfill_points: AtomicU64,
    /// Heartbeats the master accepted.
    pub heartbeat_ok: AtomicU64,
    /// Heartbeats that failed.
    pub heartbeat_failed: AtomicU64,
    /// Commands that ran and succeeded.
    pub commands_ok: AtomicU64,
    /// Commands that ran and failed (including unknown actions).
    pub commands_failed: AtomicU64,
    /// Long polls that failed.
    pub command_poll_errors: AtomicU64,
    /// Results that could not be delivered after every retry.
    pub results_lost: AtomicU64,
}

pub(crate) fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// Appends one metric family with a single sample.
pub(crate) fn family(out: &mut String, name: &str, kind: &str, help: &str, value: impl Into<f64>) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    let _ = writeln!(out, "{name} {}", value.into());
}

impl AgentStats {
    /// Prometheus text exposition (format 0.0.4) of the counters and the node counts.
    pub fn render(&self, nodes: NodeCounts) -> String {
        let mut out = String::with_capacity(4096);
        let _ = writeln!(
            out,
            "# HELP atlhyper_agent_snapshots_received_total Node snapshots accepted, by outcome."
        );
        let _ = writeln!(
            out,
            "# TYPE atlhyper_agent_snapshots_received_total counter"
        );
        for (outcome, c) in [
            ("latest", &self.ingest_latest),
            ("late", &self.ingest_late),
            ("duplicate", &self.ingest_duplicate),
        ] {
            let _ = writeln!(
                out,
                "atlhyper_agent_snapshots_received_total{{outcome=\"{outcome}\"}} {}",
                get(c)
            );
        }
        let _ = writeln!(
            out,
            "# HELP atlhyper_agent_snapshots_rejected_total Node snapshots rejected, by HTTP status."
        );
        let _ = writeln!(
            out,
            "# TYPE atlhyper_agent_snapshots_rejected_total counter"
        );
        for (code, c) in [
            ("400", &self.rejected_bad_request),
            ("401", &self.rejected_unauthorized),
            ("408", &self.rejected_timeout),
            ("413", &self.rejected_too_large),
            ("415", &self.rejected_unsupported_encoding),
        ] {
            let _ = writeln!(
                out,
                "atlhyper_agent_snapshots_rejected_total{{code=\"{code}\"}} {}",
                get(c)
            );
        }
        let _ = writeln!(out, "# HELP atlhyper_agent_nodes Nodes known, by state.");
        let _ = writeln!(out, "# TYPE atlhyper_agent_nodes gauge");
        let _ = writeln!(
            out,
            "atlhyper_agent_nodes{{state=\"online\"}} {}",
            nodes.online
        );
        let _ = writeln!(
            out,
            "atlhyper_agent_nodes{{state=\"offline\"}} {}",
            nodes.offline
        );
        let gauges: [(&str, &str, &str, u64); 10] = [
            (
                "atlhyper_agent_ring_points",
                "gauge",
                "History points held over all nodes.",
                nodes.ring_points as u64,
            ),
            (
                "atlhyper_agent_pushes_total",
                "counter",
                "Cluster snapshots the master accepted.",
                get(&self.push_ok),
            ),
            (
                "atlhyper_agent_push_failures_total",
                "counter",
                "Cluster snapshot pushes that failed.",
                get(&self.push_failed),
            ),
            (
                "atlhyper_agent_push_seq",
                "gauge",
                "seq of the last cluster snapshot sent.",
                get(&self.push_last_seq),
            ),
            (
                "atlhyper_agent_backfill_points_total",
                "counter",
                "History points delivered to the master as backfill.",
                get(&self.backfill_points),
            ),
            (
                "atlhyper_agent_heartbeat_failures_total",
                "counter",
                "Heartbeats that failed.",
                get(&self.heartbeat_failed),
            ),
            (
                "atlhyper_agent_commands_succeeded_total",
                "counter",
                "Commands that ran and succeeded.",
                get(&self.commands_ok),
            ),
            (
                "atlhyper_agent_commands_failed_total",
                "counter",
                "Commands that failed, unknown actions included.",
                get(&self.commands_failed),
            ),
            (
                "atlhyper_agent_command_poll_errors_total",
                "counter",
                "Command long polls that failed.",
                get(&self.command_poll_errors),
            ),
            (
                "atlhyper_agent_command_results_lost_total",
                "counter",
                "Command results not delivered after every retry.",
                get(&self.results_lost),
            ),
        ];
        for (name, kind, help, v) in gauges {
            family(&mut out, name, kind, help, v as f64);
        }
        family(
            &mut out,
            "atlhyper_agent_heartbeats_total",
            "counter",
            "Heartbeats the master accepted.",
            get(&self.heartbeat_ok) as f64,
        );
        out
    }
}
