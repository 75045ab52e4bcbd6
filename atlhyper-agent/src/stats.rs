//! The agent's counters and their Prometheus text exposition.

use std::sync::atomic::{AtomicU64, Ordering};

use atlhyper_model::{Exposition, ExpositionFormat, MetricKind, RejectReason};

use crate::node_table::NodeCounts;

/// HTTP statuses with which the master says a cluster snapshot is invalid: the batch is dropped,
/// not retried. The `status` labels of `atlhyper_agent_push_refused_total`.
pub(crate) const PUSH_REFUSED_STATUSES: [u16; 4] = [400, 413, 415, 422];

/// The `reason` label of nodes the master refused for a reason this agent does not know.
const OTHER_REASON: &str = "other";

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
    /// Rejected with 403 (a node token limited to another node).
    pub rejected_wrong_node: AtomicU64,
    /// Rejected with 413.
    pub rejected_too_large: AtomicU64,
    /// Rejected with 408 (body too slow).
    pub rejected_timeout: AtomicU64,
    /// Rejected with 415.
    pub rejected_unsupported_encoding: AtomicU64,
    /// Rejected with 429 (a new node while the table is full).
    pub rejected_too_many_nodes: AtomicU64,
    /// Node snapshots refused by reason, in [`RejectReason::ALL`] order.
    pub nodes_rejected: [AtomicU64; RejectReason::ALL.len()],
    /// Cluster snapshots the master refused as invalid (dropped), by status, in the order of
    /// 400, 413, 415, 422.
    pub push_refused: [AtomicU64; PUSH_REFUSED_STATUSES.len()],
    /// Nodes the master refused out of accepted cluster snapshots, by reason: the
    /// [`RejectReason::ALL`] labels, then any other.
    pub push_nodes_refused: [AtomicU64; RejectReason::ALL.len() + 1],
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

impl AgentStats {
    /// Counts a node snapshot refused for `reason`.
    pub fn count_rejection(&self, reason: RejectReason) {
        if let Some(i) = RejectReason::ALL.iter().position(|r| *r == reason) {
            inc(&self.nodes_rejected[i]);
        }
    }

    /// Counts a cluster snapshot the master refused with `status`; false when `status` is not
    /// one that says the batch is invalid.
    pub(crate) fn count_push_refused(&self, status: u16) -> bool {
        match PUSH_REFUSED_STATUSES.iter().position(|s| *s == status) {
            Some(i) => {
                inc(&self.push_refused[i]);
                true
            }
            None => false,
        }
    }

    /// Counts a node the master refused with the reason label `reason` (any string: one the
    /// agent does not know counts as `other`, so the master cannot add series).
    pub(crate) fn count_push_node_refused(&self, reason: &str) {
        let i = RejectReason::ALL
            .iter()
            .position(|r| r.as_str() == reason)
            .unwrap_or(RejectReason::ALL.len());
        inc(&self.push_nodes_refused[i]);
    }
}

pub(crate) fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// Writes one family with a sample per (label value, counter).
fn labelled<'a>(
    out: &mut Exposition,
    name: &str,
    kind: MetricKind,
    help: &str,
    label: &str,
    samples: impl Iterator<Item = (&'a str, &'a AtomicU64)>,
) {
    let mut family = out.family(name, kind, help);
    for (value, c) in samples {
        family.sample(&[(label, value)], get(c) as f64);
    }
}

impl AgentStats {
    /// Prometheus text exposition (format 0.0.4) of the counters and the node counts.
    pub fn render(&self, nodes: NodeCounts) -> String {
        let mut out = Exposition::new(ExpositionFormat::Text);
        self.write(nodes, &mut out);
        out.finish()
    }

    /// Writes the counters and the node counts into `out`.
    pub fn write(&self, nodes: NodeCounts, out: &mut Exposition) {
        use MetricKind::{Counter, Gauge};
        labelled(
            out,
            "atlhyper_agent_snapshots_received_total",
            Counter,
            "Node snapshots accepted, by outcome.",
            "outcome",
            [
                ("latest", &self.ingest_latest),
                ("late", &self.ingest_late),
                ("duplicate", &self.ingest_duplicate),
            ]
            .into_iter(),
        );
        labelled(
            out,
            "atlhyper_agent_snapshots_rejected_total",
            Counter,
            "Node snapshots rejected, by HTTP status.",
            "code",
            [
                ("400", &self.rejected_bad_request),
                ("401", &self.rejected_unauthorized),
                ("403", &self.rejected_wrong_node),
                ("408", &self.rejected_timeout),
                ("413", &self.rejected_too_large),
                ("415", &self.rejected_unsupported_encoding),
                ("429", &self.rejected_too_many_nodes),
            ]
            .into_iter(),
        );
        let reasons = RejectReason::ALL.map(RejectReason::as_str);
        labelled(
            out,
            "atlhyper_agent_nodes_rejected_total",
            Counter,
            "Node snapshots refused at the agent, by reason (a bad name, a list or string over \
             its cap, a new node beyond AGENT_MAX_NODES).",
            "reason",
            reasons.iter().copied().zip(&self.nodes_rejected),
        );
        let statuses = PUSH_REFUSED_STATUSES.map(|s| s.to_string());
        labelled(
            out,
            "atlhyper_agent_push_refused_total",
            Counter,
            "Cluster snapshots the master refused as invalid, by HTTP status; each was dropped.",
            "status",
            statuses.iter().map(String::as_str).zip(&self.push_refused),
        );
        labelled(
            out,
            "atlhyper_agent_push_nodes_refused_total",
            Counter,
            "Nodes the master refused out of accepted cluster snapshots, by reason.",
            "reason",
            reasons
                .iter()
                .copied()
                .chain([OTHER_REASON])
                .zip(&self.push_nodes_refused),
        );
        out.family("atlhyper_agent_nodes", Gauge, "Nodes known, by state.")
            .sample(&[("state", "online")], nodes.online as f64)
            .sample(&[("state", "offline")], nodes.offline as f64);
        let singles: [(&str, MetricKind, &str, u64); 11] = [
            (
                "atlhyper_agent_ring_points",
                Gauge,
                "History points held over all nodes.",
                nodes.ring_points as u64,
            ),
            (
                "atlhyper_agent_pushes_total",
                Counter,
                "Cluster snapshots the master accepted.",
                get(&self.push_ok),
            ),
            (
                "atlhyper_agent_push_failures_total",
                Counter,
                "Cluster snapshot pushes that failed.",
                get(&self.push_failed),
            ),
            (
                "atlhyper_agent_push_seq",
                Gauge,
                "seq of the last cluster snapshot sent.",
                get(&self.push_last_seq),
            ),
            (
                "atlhyper_agent_backfill_points_total",
                Counter,
                "History points delivered to the master as backfill.",
                get(&self.backfill_points),
            ),
            (
                "atlhyper_agent_heartbeat_failures_total",
                Counter,
                "Heartbeats that failed.",
                get(&self.heartbeat_failed),
            ),
            (
                "atlhyper_agent_commands_succeeded_total",
                Counter,
                "Commands that ran and succeeded.",
                get(&self.commands_ok),
            ),
            (
                "atlhyper_agent_commands_failed_total",
                Counter,
                "Commands that failed, unknown actions included.",
                get(&self.commands_failed),
            ),
            (
                "atlhyper_agent_command_poll_errors_total",
                Counter,
                "Command long polls that failed.",
                get(&self.command_poll_errors),
            ),
            (
                "atlhyper_agent_command_results_lost_total",
                Counter,
                "Command results not delivered after every retry.",
                get(&self.results_lost),
            ),
            (
                "atlhyper_agent_heartbeats_total",
                Counter,
                "Heartbeats the master accepted.",
                get(&self.heartbeat_ok),
            ),
        ];
        for (name, kind, help, v) in singles {
            out.family(name, kind, help).sample(&[], v as f64);
        }
    }
}
