//! Admission of an agent's cluster snapshot, node by node, before anything is stored: one bad
//! node is refused alone, with a reason, and never costs its cluster the push.
//!
//! Every node passes [`SnapshotBounds::apply`] (DNS-1123 name, list and string caps, command
//! lines cut) and the cluster's node cap (nodes the master does not hold yet are refused beyond
//! it); then [`ClockPolicy::settle`] replaces a timestamp far
//! off by the receive time. `node_status` keeps only admitted nodes; backfill keeps only points
//! of admitted nodes, within the storable window and finite, at most
//! [`AdmissionRules::max_backfill_per_node`] per node. Pure: no I/O, no clock of its own.

use std::collections::{BTreeMap, HashSet};

use atlhyper_model::{
    ClockPolicy, ClusterSnapshot, MAX_NODE_NAME_BYTES, MetricsDataPoint, NodeMetricsSnapshot,
    RejectReason, RejectedNode, SnapshotBounds, truncate_utf8,
};
use chrono::{DateTime, Utc};

/// At most this many refused nodes are listed in one answer (all of them are counted): an agent
/// never has more nodes than the master's node cap, so an honest answer is never cut.
pub(crate) const MAX_LISTED_REJECTIONS: usize = 10_000;

/// Backfill points kept per node and snapshot. The agent sends a node's points from its ring,
/// which holds 720 (one hour at 5 s) by default, and at most 5,000 points per push in all
/// (`AGENT_BACKFILL_MAX_POINTS`): 8,640 (a twelve-hour ring at 5 s; also 30 days of the master's
/// 5-minute history) is more than an agent at its defaults, or with a ring twelve times larger,
/// ever sends for one node, and bounds a snapshot's backfill to 8,640 x its admitted nodes.
pub(crate) const MAX_BACKFILL_POINTS_PER_NODE: usize = 8640;

/// `at`, or `received_at` when `at` is further ahead or older than `clock` allows (the rule of
/// [`ClockPolicy::settle`], for a snapshot's own timestamp).
pub(crate) fn settle_time(
    clock: &ClockPolicy,
    at: DateTime<Utc>,
    received_at: DateTime<Utc>,
) -> DateTime<Utc> {
    match clock.skew(at, received_at) {
        Some(_) => received_at,
        None => at,
    }
}

/// What the master accepts from one cluster snapshot.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AdmissionRules {
    /// Caps on each node's lists and strings.
    pub(crate) bounds: SnapshotBounds,
    /// How far a node's clock may be off.
    pub(crate) clock: ClockPolicy,
    /// Nodes the master holds per cluster; new ones beyond are refused (`too_many_nodes`).
    pub(crate) max_nodes: usize,
    /// Backfill points kept per node and snapshot.
    pub(crate) max_backfill_per_node: usize,
    /// Backfill points stamped more than this after the receive time are dropped (a point in a
    /// future history bucket would hold the node's next buckets back).
    pub(crate) backfill_ahead: chrono::Duration,
}

/// Backfill points dropped, by why.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct BackfillDropped {
    /// The point's node was not admitted in this snapshot (unknown, refused or a bad name).
    pub(crate) node: u64,
    /// Timestamp outside the storable window (older than the retention or too far ahead).
    pub(crate) time: u64,
    /// A figure is not finite.
    pub(crate) value: u64,
    /// Beyond the per-node cap.
    pub(crate) cap: u64,
}

impl BackfillDropped {
    /// `(reason label, count)` for the exposition.
    pub(crate) fn by_reason(&self) -> [(&'static str, u64); 4] {
        [
            ("unknown_node", self.node),
            ("out_of_range", self.time),
            ("invalid_value", self.value),
            ("over_cap", self.cap),
        ]
    }
}

/// What admission did to a snapshot.
#[derive(Debug, Default)]
pub(crate) struct Admission {
    /// Nodes refused, in name order, for the answer (at most [`MAX_LISTED_REJECTIONS`]).
    pub(crate) rejected: Vec<RejectedNode>,
    /// Refusals per reason, in [`RejectReason::ALL`] order (all of them, also the unlisted).
    pub(crate) refused: [u64; RejectReason::ALL.len()],
    /// Nodes whose timestamp was replaced by the receive time.
    pub(crate) clocks_replaced: u64,
    /// Backfill points dropped.
    pub(crate) backfill_dropped: BackfillDropped,
}

impl Admission {
    fn refuse(&mut self, name: &str, reason: RejectReason, error: String) {
        if let Some(i) = RejectReason::ALL.iter().position(|r| *r == reason) {
            self.refused[i] += 1;
        }
        if self.rejected.len() < MAX_LISTED_REJECTIONS {
            let mut node_name = name.to_owned();
            // A junk name is echoed only as long as a valid one can be.
            truncate_utf8(&mut node_name, MAX_NODE_NAME_BYTES);
            self.rejected.push(RejectedNode {
                node_name,
                reason: reason.as_str().to_owned(),
                error,
            });
        }
    }
}

/// Admits `snapshot`'s nodes in place (refused ones leave it), with `held` the nodes the master
/// already holds for this cluster and `received_at` the master's receive time.
pub(crate) fn admit(
    snapshot: &mut ClusterSnapshot,
    held: &HashSet<String>,
    rules: &AdmissionRules,
    received_at: DateTime<Utc>,
) -> Admission {
    let mut out = Admission::default();
    let mut admitted = BTreeMap::new();
    // Nodes counted against the cap: the held ones plus the new ones admitted so far.
    let mut holding = held.len();
    for (name, mut node) in std::mem::take(&mut snapshot.node_metrics) {
        // The map key is the node's name; the body's own field is not trusted.
        node.node_name.clone_from(&name);
        if let Err(refusal) = rules.bounds.apply(&mut node) {
            out.refuse(&name, refusal.reason, refusal.detail);
            continue;
        }
        let new = !held.contains(&name);
        if new && holding >= rules.max_nodes {
            out.refuse(
                &name,
                RejectReason::TooManyNodes,
                format!(
                    "the master already holds {} nodes of this cluster, its cap",
                    rules.max_nodes
                ),
            );
            continue;
        }
        if new {
            holding += 1;
        }
        if rules.clock.settle(&mut node, received_at) {
            out.clocks_replaced += 1;
        }
        admitted.insert(name, node);
    }
    snapshot.node_metrics = admitted;
    let nodes = &snapshot.node_metrics;
    snapshot
        .node_status
        .retain(|name, _| nodes.contains_key(name));
    snapshot.backfill = admit_backfill(
        std::mem::take(&mut snapshot.backfill),
        nodes,
        rules,
        received_at,
        &mut out.backfill_dropped,
    );
    out
}

/// The backfill points kept: of admitted nodes, finite, stamped within the storable window, at
/// most `max_backfill_per_node` per node (the first ones sent: the agent sends oldest first).
fn admit_backfill(
    points: Vec<MetricsDataPoint>,
    nodes: &BTreeMap<String, NodeMetricsSnapshot>,
    rules: &AdmissionRules,
    received_at: DateTime<Utc>,
    dropped: &mut BackfillDropped,
) -> Vec<MetricsDataPoint> {
    let oldest = chrono::Duration::from_std(rules.clock.max_age)
        .ok()
        .and_then(|age| received_at.checked_sub_signed(age));
    let newest = received_at.checked_add_signed(rules.backfill_ahead);
    let mut per_node: BTreeMap<&str, usize> = BTreeMap::new();
    let mut kept = Vec::with_capacity(points.len().min(nodes.len() * 64));
    for p in points {
        let Some((name, _)) = nodes.get_key_value(p.node_name.as_str()) else {
            dropped.node += 1;
            continue;
        };
        if oldest.is_some_and(|o| p.timestamp < o) || newest.is_some_and(|n| p.timestamp > n) {
            dropped.time += 1;
            continue;
        }
        let finite = p.figures().iter().all(|v| v.is_finite())
            && p.extensions().iter().flatten().all(|v| v.is_finite());
        if !finite {
            dropped.value += 1;
            continue;
        }
        let count = per_node.entry(name.as_str()).or_default();
        if *count >= rules.max_backfill_per_node {
            dropped.cap += 1;
            continue;
        }
        *count += 1;
        kept.push(p);
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn rules() -> AdmissionRules {
        AdmissionRules {
            bounds: SnapshotBounds::default(),
            clock: ClockPolicy::default(),
            max_nodes: 3,
            max_backfill_per_node: 2,
            backfill_ahead: chrono::Duration::minutes(5),
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap()
    }

    fn snapshot(names: &[&str]) -> ClusterSnapshot {
        let mut s = ClusterSnapshot::default();
        for n in names {
            s.node_metrics.insert(
                (*n).to_owned(),
                NodeMetricsSnapshot {
                    node_name: "ignored".into(),
                    timestamp: now(),
                    ..Default::default()
                },
            );
        }
        s
    }

    fn reasons(a: &Admission) -> Vec<(String, String)> {
        a.rejected
            .iter()
            .map(|r| (r.node_name.clone(), r.reason.clone()))
            .collect()
    }

    #[test]
    fn bad_nodes_leave_alone() {
        let mut s = snapshot(&["a", "Bad_Name", "b"]);
        s.node_metrics.get_mut("b").unwrap().disks = vec![Default::default(); 2000];
        s.node_status.insert("a".into(), Default::default());
        s.node_status.insert("b".into(), Default::default());
        s.node_status.insert("ghost".into(), Default::default());
        let a = admit(&mut s, &HashSet::new(), &rules(), now());
        assert_eq!(s.node_metrics.keys().collect::<Vec<_>>(), ["a"]);
        assert_eq!(s.node_metrics["a"].node_name, "a");
        assert_eq!(s.node_status.keys().collect::<Vec<_>>(), ["a"]);
        assert_eq!(
            reasons(&a),
            [
                ("Bad_Name".to_owned(), "invalid_name".to_owned()),
                ("b".to_owned(), "list_too_long".to_owned())
            ]
        );
        assert_eq!(a.refused, [1, 1, 0, 0]);
    }

    #[test]
    fn node_cap_spares_held_nodes() {
        let held: HashSet<String> = ["x", "y"].map(String::from).into();
        let mut s = snapshot(&["a", "b", "x", "y"]);
        let a = admit(&mut s, &held, &rules(), now());
        // "a" fills the third place; "b" is new and refused; x and y are held and kept.
        assert_eq!(s.node_metrics.keys().collect::<Vec<_>>(), ["a", "x", "y"]);
        assert_eq!(reasons(&a), [("b".to_owned(), "too_many_nodes".to_owned())]);
    }

    #[test]
    fn clocks_far_off_are_replaced() {
        let mut s = snapshot(&["a", "b", "c"]);
        s.node_metrics.get_mut("a").unwrap().timestamp =
            Utc.with_ymd_and_hms(2300, 1, 1, 0, 0, 0).unwrap();
        s.node_metrics.get_mut("b").unwrap().timestamp =
            Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).unwrap();
        let a = admit(&mut s, &HashSet::new(), &rules(), now());
        assert!(a.rejected.is_empty());
        assert_eq!(a.clocks_replaced, 2);
        for n in s.node_metrics.values() {
            assert_eq!(n.timestamp, now());
        }
        assert!(s.node_metrics["a"].clock_skew_seconds.unwrap() > 0.0);
        assert!(s.node_metrics["b"].clock_skew_seconds.unwrap() < 0.0);
        assert_eq!(s.node_metrics["c"].clock_skew_seconds, None);
    }

    #[test]
    fn backfill_is_filtered_and_capped() {
        let mut s = snapshot(&["a", "Bad"]);
        let point = |node: &str, ts: DateTime<Utc>| MetricsDataPoint {
            node_name: node.to_owned(),
            timestamp: ts,
            ..Default::default()
        };
        let t = now() - chrono::Duration::minutes(10);
        let mut nan = point("a", t);
        nan.cpu_usage = f64::NAN;
        s.backfill = vec![
            point("a", t),
            point("Bad", t),
            point("ghost", t),
            point("a", Utc.with_ymd_and_hms(2300, 1, 1, 0, 0, 0).unwrap()),
            point("a", Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).unwrap()),
            nan,
            point("a", t + chrono::Duration::seconds(1)),
            point("a", t + chrono::Duration::seconds(2)),
        ];
        let a = admit(&mut s, &HashSet::new(), &rules(), now());
        assert_eq!(s.backfill.len(), 2);
        assert_eq!(s.backfill[0].timestamp, t);
        assert_eq!(
            a.backfill_dropped,
            BackfillDropped {
                node: 2,
                time: 2,
                value: 1,
                cap: 1
            }
        );
    }

    #[test]
    fn junk_names_are_echoed_short() {
        let long = "X".repeat(100_000);
        let mut s = snapshot(&[&long]);
        let a = admit(&mut s, &HashSet::new(), &rules(), now());
        assert_eq!(a.rejected[0].node_name.len(), MAX_NODE_NAME_BYTES);
        assert!(a.rejected[0].error.len() < 1000);
    }
}
