//! The agent's view of its nodes: latest snapshot, liveness and a ring of recent points per node.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use atlhyper_model::{MetricsDataPoint, NodeMetricsSnapshot, NodeState, NodeStatus};
use chrono::{DateTime, Utc};
use parking_lot::RwLock;
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::time::Instant;

/// How the table judges liveness and how much history it keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeTableConfig {
    /// The nodes' collection interval (5 s by default).
    pub node_interval: Duration,
    /// A node silent for more than this many intervals is offline (3).
    pub offline_intervals: u32,
    /// A node silent for longer than this is dropped from the table (10 min).
    pub ttl: Duration,
    /// Points kept per node (720 = 1 h at 5 s).
    pub ring_capacity: usize,
    /// Nodes held at once (10,000, twice the 5,000 nodes Kubernetes supports in one cluster): a
    /// new node beyond it is refused ([`TableFull`]) until a silent node has expired; known
    /// nodes keep reporting.
    pub max_nodes: usize,
}

impl Default for NodeTableConfig {
    fn default() -> Self {
        Self {
            node_interval: Duration::from_secs(5),
            offline_intervals: 3,
            ttl: Duration::from_secs(600),
            ring_capacity: 720,
            max_nodes: DEFAULT_MAX_NODES,
        }
    }
}

/// Default of [`NodeTableConfig::max_nodes`].
pub const DEFAULT_MAX_NODES: usize = 10_000;

impl NodeTableConfig {
    /// Silence after which a node counts as offline: `node_interval * offline_intervals`.
    pub fn offline_after(&self) -> Duration {
        self.node_interval.saturating_mul(self.offline_intervals)
    }
}

/// What happened to an ingested snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    /// It is the node's newest snapshot: the last to arrive, unless it is [`Ingested::Late`].
    Latest,
    /// It was taken before the node's latest snapshot and arrived while that one is fresh (a
    /// daemon sends its newest snapshot first, then backfills older ones after an outage): its
    /// point went into the ring, the latest snapshot stays.
    Late,
    /// A snapshot with this timestamp was already here (a retried send); nothing changed but the
    /// node's liveness.
    Duplicate,
}

/// A new node was refused: the table already holds [`NodeTableConfig::max_nodes`] nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the agent already holds {max_nodes} nodes, its limit (AGENT_MAX_NODES); nodes it knows keep \
     reporting, a new one is taken once a silent node has expired"
)]
pub struct TableFull {
    /// The limit.
    pub max_nodes: usize,
    /// When a place may free up at the earliest (the oldest node's silence reaching the TTL),
    /// at least one second.
    pub retry_after: Duration,
}

/// One line of `list_nodes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeListing {
    /// Node name.
    pub node_name: String,
    /// Online or offline.
    pub state: NodeState,
    /// When the agent last received a snapshot from the node.
    pub last_seen: DateTime<Utc>,
}

/// Counts for health and exposition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeCounts {
    /// Nodes in the table (not past their TTL).
    pub total: usize,
    /// Nodes reporting.
    pub online: usize,
    /// Nodes silent for more than the offline threshold.
    pub offline: usize,
    /// Ring points over all nodes.
    pub ring_points: usize,
}

/// A [`MetricsDataPoint`] without its node name (the ring's key holds it): 200 bytes (96 with
/// the nine figures alone).
#[derive(Debug, Clone, Copy)]
struct RingPoint {
    timestamp: DateTime<Utc>,
    /// Bit `i` set: extension `i` is present (an absent one reads 0.0 in `extensions`).
    present: u16,
    figures: [f64; MetricsDataPoint::FIGURES],
    extensions: [f64; MetricsDataPoint::EXTENSIONS],
}

// Every extension has its bit in `present`.
const _: () = assert!(MetricsDataPoint::EXTENSIONS <= u16::BITS as usize);

impl RingPoint {
    fn new(p: &MetricsDataPoint) -> Self {
        let mut present = 0u16;
        let mut extensions = [0.0; MetricsDataPoint::EXTENSIONS];
        for (i, figure) in p.extensions().into_iter().enumerate() {
            if let Some(v) = figure {
                present |= 1 << i;
                extensions[i] = v;
            }
        }
        Self {
            timestamp: p.timestamp,
            present,
            figures: p.figures(),
            extensions,
        }
    }

    fn to_point(self, node_name: &str) -> MetricsDataPoint {
        let mut extensions = [None; MetricsDataPoint::EXTENSIONS];
        for (i, slot) in extensions.iter_mut().enumerate() {
            if self.present & (1 << i) != 0 {
                *slot = Some(self.extensions[i]);
            }
        }
        MetricsDataPoint::from_figures(self.timestamp, node_name.to_owned(), self.figures)
            .with_extensions(extensions)
    }
}

#[derive(Debug)]
struct NodeEntry {
    /// The latest snapshot as the receiver accepted it (validated JSON, the node's own bytes
    /// unless a receiver changed something).
    raw: Arc<RawValue>,
    /// The latest snapshot's own timestamp.
    latest_ts: DateTime<Utc>,
    /// The latest snapshot's place in arrival order: its timestamp, or its arrival time when
    /// the node stamped it later than that (a node cannot have taken it in the future).
    latest_order: DateTime<Utc>,
    /// When the latest snapshot was set.
    latest_at: Instant,
    /// The largest timestamp this node ever sent (a larger one cannot be a retry).
    max_ts: DateTime<Utc>,
    /// When the node was last heard from.
    received_at: Instant,
    last_seen: DateTime<Utc>,
    /// Points in arrival order.
    ring: VecDeque<RingPoint>,
    /// Points ever appended; the ring holds indexes `appended - ring.len() .. appended`.
    appended: u64,
    /// Index below which the master has had its chance to see the points.
    pushed: u64,
    /// Points from `pushed` on must travel as backfill (master outage, or late points).
    needs_backfill: bool,
}

impl NodeEntry {
    fn push_point(&mut self, point: RingPoint, capacity: usize) {
        if capacity == 0 {
            return;
        }
        if self.ring.len() >= capacity {
            self.ring.pop_front();
        }
        self.ring.push_back(point);
        self.appended += 1;
    }

    fn oldest_index(&self) -> u64 {
        self.appended - self.ring.len() as u64
    }
}

#[derive(Debug, Default)]
struct Inner {
    nodes: BTreeMap<String, NodeEntry>,
    /// The last push to the master failed: nodes that appear now need backfill too.
    outage: bool,
    /// While the table is full: no node can expire before this instant (so a flood of new
    /// nodes does not scan the table on every request).
    no_expiry_before: Option<Instant>,
}

/// The latest snapshot of every node with its receive time, liveness (offline after
/// `offline_intervals` silent intervals, dropped after the TTL) and a ring of recent
/// [`MetricsDataPoint`]s per node.
///
/// Times are [`tokio::time::Instant`]s passed in by the caller, so liveness follows paused time in
/// tests.
///
/// ```
/// use atlhyper_agent::{NodeTable, NodeTableConfig};
/// use atlhyper_model::NodeMetricsSnapshot;
/// use tokio::time::Instant;
///
/// let table = NodeTable::new(NodeTableConfig::default());
/// let json = r#"{"node_name":"worker-1","timestamp":"2024-01-20T10:30:00Z"}"#;
/// let snapshot: NodeMetricsSnapshot = serde_json::from_str(json).unwrap();
/// let raw = serde_json::value::RawValue::from_string(json.to_owned()).unwrap();
/// table.ingest(&snapshot, raw, Instant::now(), chrono::Utc::now()).unwrap();
/// assert_eq!(table.latest("worker-1", Instant::now()).unwrap().get(), json);
/// assert_eq!(table.counts(Instant::now()).online, 1);
/// ```
#[derive(Debug)]
pub struct NodeTable {
    config: NodeTableConfig,
    inner: RwLock<Inner>,
    /// Woken when a node the table did not hold arrives (the pusher sends it soon instead of
    /// a full interval later).
    new_node: tokio::sync::Notify,
}

/// What one push to the master carries from the table, and what to mark once it succeeded.
#[derive(Debug)]
pub(crate) struct PushBatch {
    /// Latest raw snapshot and status of every live node, by name.
    pub nodes: Vec<(String, Arc<RawValue>, NodeStatus)>,
    /// Ring points the master has not had, oldest first per node.
    pub backfill: Vec<MetricsDataPoint>,
    /// Whether backfill was cut at the limit (more to send).
    pub backfill_incomplete: bool,
    marks: Vec<PushMark>,
}

#[derive(Debug)]
struct PushMark {
    node: String,
    appended_at_build: u64,
    pushed: u64,
    complete: bool,
}

impl NodeTable {
    /// An empty table.
    pub fn new(config: NodeTableConfig) -> Self {
        Self {
            config,
            inner: RwLock::new(Inner::default()),
            new_node: tokio::sync::Notify::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &NodeTableConfig {
        &self.config
    }

    /// Completes when a node the table did not hold has arrived since the last completion.
    pub(crate) async fn new_node_arrived(&self) {
        self.new_node.notified().await;
    }

    fn is_expired(&self, e: &NodeEntry, now: Instant) -> bool {
        now.saturating_duration_since(e.received_at) > self.config.ttl
    }

    fn status_of(&self, e: &NodeEntry, now: Instant) -> NodeStatus {
        let state = if now.saturating_duration_since(e.received_at) > self.config.offline_after() {
            NodeState::Offline
        } else {
            NodeState::Online
        };
        NodeStatus {
            state,
            last_seen: e.last_seen,
        }
    }

    /// Records a snapshot received at `now` (`wall` is the same moment in UTC). `raw` is the
    /// snapshot's JSON as the receiver accepted it; `snapshot` is its parsed form. The caller has
    /// validated the node name.
    ///
    /// "Latest" follows arrival, not the node's clock: a snapshot becomes the node's latest
    /// unless it was taken before the current latest while that one is fresh (arrived within
    /// the offline threshold), which is a daemon backfilling after an outage ([`Ingested::Late`]).
    /// A timestamp later than the arrival counts as the arrival, so a clock running ahead pins
    /// nothing; a clock stepped back holds the latest for at most the offline threshold. A
    /// snapshot with a timestamp already held is a retry ([`Ingested::Duplicate`]).
    ///
    /// A node not in the table is refused with [`TableFull`] while it holds
    /// [`NodeTableConfig::max_nodes`] live nodes; expired nodes give their place up.
    pub fn ingest(
        &self,
        snapshot: &NodeMetricsSnapshot,
        raw: Box<RawValue>,
        now: Instant,
        wall: DateTime<Utc>,
    ) -> Result<Ingested, TableFull> {
        let point = RingPoint::new(&MetricsDataPoint::from_snapshot(snapshot));
        let raw: Arc<RawValue> = Arc::from(raw);
        let capacity = self.config.ring_capacity;
        let ts = snapshot.timestamp;
        let order = ts.min(wall);
        let fresh_for = self.config.offline_after();
        // The replaced snapshot is freed after the lock is released.
        let replaced;
        let outcome;
        {
            let mut inner = self.inner.write();
            let outage = inner.outage;
            if let Some(e) = inner.nodes.get_mut(snapshot.node_name.as_str()) {
                e.received_at = now;
                e.last_seen = wall;
                let retry = ts == e.latest_ts
                    || (ts <= e.max_ts && e.ring.iter().any(|p| p.timestamp == ts));
                let latest_is_fresh = now.saturating_duration_since(e.latest_at) <= fresh_for;
                if retry {
                    replaced = Some(raw);
                    outcome = Ingested::Duplicate;
                } else if order > e.latest_order || !latest_is_fresh {
                    replaced = Some(std::mem::replace(&mut e.raw, raw));
                    e.latest_ts = ts;
                    e.latest_order = order;
                    e.latest_at = now;
                    e.max_ts = e.max_ts.max(ts);
                    e.push_point(point, capacity);
                    outcome = Ingested::Latest;
                } else {
                    replaced = Some(raw);
                    e.max_ts = e.max_ts.max(ts);
                    e.push_point(point, capacity);
                    e.needs_backfill = true;
                    outcome = Ingested::Late;
                }
            } else {
                if inner.nodes.len() >= self.config.max_nodes {
                    self.drop_expired_when_full(&mut inner, now);
                    if inner.nodes.len() >= self.config.max_nodes {
                        let retry_after = inner
                            .no_expiry_before
                            .map_or(self.config.ttl, |at| at.saturating_duration_since(now))
                            .max(Duration::from_secs(1));
                        return Err(TableFull {
                            max_nodes: self.config.max_nodes,
                            retry_after,
                        });
                    }
                }
                let mut e = NodeEntry {
                    raw,
                    latest_ts: ts,
                    latest_order: order,
                    latest_at: now,
                    max_ts: ts,
                    received_at: now,
                    last_seen: wall,
                    ring: VecDeque::with_capacity(capacity),
                    appended: 0,
                    pushed: 0,
                    needs_backfill: outage,
                };
                e.push_point(point, capacity);
                inner.nodes.insert(snapshot.node_name.clone(), e);
                replaced = None;
                outcome = Ingested::Latest;
                self.new_node.notify_one();
            }
        }
        drop(replaced);
        Ok(outcome)
    }

    /// The table is full: drops the nodes past their TTL, unless none can have expired yet, and
    /// notes when the next one can.
    fn drop_expired_when_full(&self, inner: &mut Inner, now: Instant) {
        if inner.no_expiry_before.is_some_and(|at| now < at) {
            return;
        }
        let before = inner.nodes.len();
        inner.nodes.retain(|_, e| !self.is_expired(e, now));
        if inner.nodes.len() < before {
            tracing::debug!(
                dropped = before - inner.nodes.len(),
                "nodes silent past the TTL dropped to make room"
            );
        }
        // A node expires once its silence exceeds the TTL; the table changes under the lock
        // only, so until the oldest node's expiry nothing can free up.
        inner.no_expiry_before =
            inner
                .nodes
                .values()
                .map(|e| e.received_at)
                .min()
                .and_then(|oldest| {
                    oldest.checked_add(self.config.ttl.saturating_add(Duration::from_millis(1)))
                });
    }

    /// The latest snapshot of `node`, as the receiver accepted it.
    pub fn latest(&self, node: &str, now: Instant) -> Option<Arc<RawValue>> {
        let inner = self.inner.read();
        let e = inner.nodes.get(node)?;
        (!self.is_expired(e, now)).then(|| Arc::clone(&e.raw))
    }

    /// Liveness of `node`.
    pub fn status(&self, node: &str, now: Instant) -> Option<NodeStatus> {
        let inner = self.inner.read();
        let e = inner.nodes.get(node)?;
        (!self.is_expired(e, now)).then(|| self.status_of(e, now))
    }

    /// Ring points of `node` with `since <= timestamp <= until` (either bound optional), in time
    /// order. `None` when the node is unknown.
    pub fn series(
        &self,
        node: &str,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        now: Instant,
    ) -> Option<Vec<MetricsDataPoint>> {
        let mut points: Vec<RingPoint> = {
            let inner = self.inner.read();
            let e = inner.nodes.get(node)?;
            if self.is_expired(e, now) {
                return None;
            }
            e.ring
                .iter()
                .filter(|p| since.is_none_or(|s| p.timestamp >= s))
                .filter(|p| until.is_none_or(|u| p.timestamp <= u))
                .copied()
                .collect()
        };
        points.sort_by_key(|p| p.timestamp);
        Some(points.into_iter().map(|p| p.to_point(node)).collect())
    }

    /// Every live node with its state, sorted by name.
    pub fn list(&self, now: Instant) -> Vec<NodeListing> {
        let inner = self.inner.read();
        inner
            .nodes
            .iter()
            .filter(|(_, e)| !self.is_expired(e, now))
            .map(|(name, e)| {
                let s = self.status_of(e, now);
                NodeListing {
                    node_name: name.clone(),
                    state: s.state,
                    last_seen: s.last_seen,
                }
            })
            .collect()
    }

    /// Node and point counts.
    pub fn counts(&self, now: Instant) -> NodeCounts {
        let inner = self.inner.read();
        let mut c = NodeCounts::default();
        for e in inner.nodes.values().filter(|e| !self.is_expired(e, now)) {
            c.total += 1;
            match self.status_of(e, now).state {
                NodeState::Online => c.online += 1,
                NodeState::Offline => c.offline += 1,
            }
            c.ring_points += e.ring.len();
        }
        c
    }

    /// Drops nodes silent for longer than the TTL; returns their names.
    pub fn sweep(&self, now: Instant) -> Vec<String> {
        let mut inner = self.inner.write();
        let expired: Vec<String> = inner
            .nodes
            .iter()
            .filter(|(_, e)| self.is_expired(e, now))
            .map(|(name, _)| name.clone())
            .collect();
        for name in &expired {
            inner.nodes.remove(name);
        }
        expired
    }

    /// What the next push to the master carries: every live node's latest snapshot and status,
    /// and up to `max_backfill` ring points the master has not had.
    pub(crate) fn push_batch(&self, now: Instant, max_backfill: usize) -> PushBatch {
        let inner = self.inner.read();
        let mut batch = PushBatch {
            nodes: Vec::with_capacity(inner.nodes.len()),
            backfill: Vec::new(),
            backfill_incomplete: false,
            marks: Vec::with_capacity(inner.nodes.len()),
        };
        let mut budget = max_backfill;
        for (name, e) in inner.nodes.iter() {
            if self.is_expired(e, now) {
                continue;
            }
            batch
                .nodes
                .push((name.clone(), Arc::clone(&e.raw), self.status_of(e, now)));
            let mut mark = PushMark {
                node: name.clone(),
                appended_at_build: e.appended,
                pushed: e.appended,
                complete: true,
            };
            if e.needs_backfill {
                let oldest = e.oldest_index();
                let start = e.pushed.clamp(oldest, e.appended);
                let pending = e.appended - start;
                let take = pending.min(budget as u64);
                let offset = usize::try_from(start - oldest).unwrap_or(usize::MAX);
                let take_n = usize::try_from(take).unwrap_or(0);
                batch.backfill.extend(
                    e.ring
                        .iter()
                        .skip(offset)
                        .take(take_n)
                        .map(|p| p.to_point(name)),
                );
                budget -= take_n;
                mark.pushed = start + take;
                mark.complete = take == pending;
                batch.backfill_incomplete |= !mark.complete;
            }
            batch.marks.push(mark);
        }
        batch
    }

    /// The push built from `batch` reached the master: what it carried counts as delivered.
    pub(crate) fn commit_push(&self, batch: &PushBatch) {
        let mut inner = self.inner.write();
        inner.outage = false;
        for m in &batch.marks {
            if let Some(e) = inner.nodes.get_mut(&m.node) {
                e.pushed = e.pushed.max(m.pushed).min(e.appended);
                if m.complete && e.appended == m.appended_at_build {
                    e.needs_backfill = false;
                }
            }
        }
    }

    /// A push to the master failed: everything from each node's last delivered point on has to
    /// travel as backfill once the master answers again.
    pub(crate) fn mark_outage(&self) {
        let mut inner = self.inner.write();
        inner.outage = true;
        for e in inner.nodes.values_mut() {
            e.needs_backfill = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn snap(node: &str, secs: i64, cpu: f64) -> (NodeMetricsSnapshot, Box<RawValue>) {
        let s = NodeMetricsSnapshot {
            node_name: node.to_owned(),
            timestamp: Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap(),
            cpu: atlhyper_model::CpuMetrics {
                usage_percent: cpu,
                ..Default::default()
            },
            ..Default::default()
        };
        let raw = serde_json::value::to_raw_value(&s).unwrap();
        (s, raw)
    }

    fn table(ring: usize) -> NodeTable {
        NodeTable::new(NodeTableConfig {
            ring_capacity: ring,
            ..Default::default()
        })
    }

    #[test]
    fn latest_late_and_duplicate() {
        let t = table(10);
        let now = Instant::now();
        let (s, r) = snap("n1", 10, 1.0);
        assert_eq!(t.ingest(&s, r, now, Utc::now()).unwrap(), Ingested::Latest);
        let (s, r) = snap("n1", 20, 2.0);
        assert_eq!(t.ingest(&s, r, now, Utc::now()).unwrap(), Ingested::Latest);
        let (s, r) = snap("n1", 15, 1.5);
        assert_eq!(t.ingest(&s, r, now, Utc::now()).unwrap(), Ingested::Late);
        let (s, r) = snap("n1", 15, 1.5);
        assert_eq!(
            t.ingest(&s, r, now, Utc::now()).unwrap(),
            Ingested::Duplicate
        );
        let (s, r) = snap("n1", 20, 2.0);
        assert_eq!(
            t.ingest(&s, r, now, Utc::now()).unwrap(),
            Ingested::Duplicate
        );
        let latest: NodeMetricsSnapshot =
            serde_json::from_str(t.latest("n1", now).unwrap().get()).unwrap();
        assert_eq!(latest.cpu.usage_percent, 2.0);
        let series = t.series("n1", None, None, now).unwrap();
        let cpu: Vec<f64> = series.iter().map(|p| p.cpu_usage).collect();
        assert_eq!(cpu, [1.0, 1.5, 2.0]);
        assert!(series.iter().all(|p| p.node_name == "n1"));
    }

    #[test]
    fn ring_is_bounded_and_series_filters_by_time() {
        let t = table(5);
        let now = Instant::now();
        for i in 0..12 {
            let (s, r) = snap("n1", i, i as f64);
            t.ingest(&s, r, now, Utc::now()).unwrap();
        }
        let all = t.series("n1", None, None, now).unwrap();
        assert_eq!(all.len(), 5);
        assert_eq!(all[0].cpu_usage, 7.0);
        let since = Utc.timestamp_opt(1_700_000_009, 0).unwrap();
        let until = Utc.timestamp_opt(1_700_000_010, 0).unwrap();
        let some = t.series("n1", Some(since), Some(until), now).unwrap();
        assert_eq!(
            some.iter().map(|p| p.cpu_usage).collect::<Vec<_>>(),
            [9.0, 10.0]
        );
        assert!(t.series("other", None, None, now).is_none());
        assert_eq!(t.counts(now).ring_points, 5);
    }

    #[test]
    fn point_round_trips_every_field() {
        let p = MetricsDataPoint {
            timestamp: Utc.timestamp_opt(1_700_000_000, 5).unwrap(),
            node_name: "n".into(),
            cpu_usage: 1.0,
            memory_usage: 2.0,
            disk_usage: 3.0,
            disk_io_read: 4.0,
            disk_io_write: 5.0,
            network_rx: 6.0,
            network_tx: 7.0,
            cpu_temp: 8.0,
            load_1: 9.0,
            ..Default::default()
        };
        assert_eq!(RingPoint::new(&p).to_point("n"), p, "no extension");
        // Every extension alone, then all of them (0.0 present is not absent).
        for i in 0..MetricsDataPoint::EXTENSIONS {
            let mut ext = [None; MetricsDataPoint::EXTENSIONS];
            ext[i] = Some(if i == 0 { 0.0 } else { 10.0 + i as f64 });
            let one = p.clone().with_extensions(ext);
            assert_eq!(RingPoint::new(&one).to_point("n"), one, "extension {i}");
        }
        let all = p.with_extensions(std::array::from_fn(|i| Some(0.5 + i as f64)));
        assert_eq!(RingPoint::new(&all).to_point("n"), all);
        assert_eq!(std::mem::size_of::<RingPoint>(), 200);
    }

    #[test]
    fn backfill_after_outage_then_nothing() {
        let t = table(100);
        let now = Instant::now();
        let ingest = |i: i64| {
            let (s, r) = snap("n1", i, i as f64);
            t.ingest(&s, r, now, Utc::now()).unwrap();
        };
        ingest(0);
        let b = t.push_batch(now, 1000);
        assert!(b.backfill.is_empty());
        t.commit_push(&b);
        // Outage: pushes fail while 5 points arrive.
        for i in 1..=5 {
            ingest(i);
            t.mark_outage();
        }
        let b = t.push_batch(now, 3);
        assert_eq!(
            b.backfill.iter().map(|p| p.cpu_usage).collect::<Vec<_>>(),
            [1.0, 2.0, 3.0]
        );
        assert!(b.backfill_incomplete);
        t.commit_push(&b);
        let b = t.push_batch(now, 3);
        assert_eq!(
            b.backfill.iter().map(|p| p.cpu_usage).collect::<Vec<_>>(),
            [4.0, 5.0]
        );
        assert!(!b.backfill_incomplete);
        t.commit_push(&b);
        ingest(6);
        let b = t.push_batch(now, 3);
        assert!(b.backfill.is_empty());
    }

    #[test]
    fn failed_push_keeps_the_backfill() {
        let t = table(100);
        let now = Instant::now();
        let (s, r) = snap("n1", 0, 0.0);
        t.ingest(&s, r, now, Utc::now()).unwrap();
        t.mark_outage();
        let b = t.push_batch(now, 10);
        assert_eq!(b.backfill.len(), 1);
        // Not committed (the push failed): the next batch carries it again.
        t.mark_outage();
        assert_eq!(t.push_batch(now, 10).backfill.len(), 1);
    }

    #[test]
    fn late_points_travel_as_backfill_without_outage() {
        let t = table(100);
        let now = Instant::now();
        for i in [0, 10] {
            let (s, r) = snap("n1", i, i as f64);
            t.ingest(&s, r, now, Utc::now()).unwrap();
        }
        let b = t.push_batch(now, 10);
        t.commit_push(&b);
        let (s, r) = snap("n1", 5, 5.0);
        assert_eq!(t.ingest(&s, r, now, Utc::now()).unwrap(), Ingested::Late);
        let b = t.push_batch(now, 10);
        assert_eq!(
            b.backfill.iter().map(|p| p.cpu_usage).collect::<Vec<_>>(),
            [5.0]
        );
        t.commit_push(&b);
        assert!(t.push_batch(now, 10).backfill.is_empty());
    }

    /// A snapshot of `node` stamped `ts` with CPU `cpu`.
    fn at(node: &str, ts: DateTime<Utc>, cpu: f64) -> (NodeMetricsSnapshot, Box<RawValue>) {
        let (mut s, _) = snap(node, 0, cpu);
        s.timestamp = ts;
        let raw = serde_json::value::to_raw_value(&s).unwrap();
        (s, raw)
    }

    fn latest_cpu(t: &NodeTable, node: &str, now: Instant) -> f64 {
        let latest: NodeMetricsSnapshot =
            serde_json::from_str(t.latest(node, now).unwrap().get()).unwrap();
        latest.cpu.usage_percent
    }

    #[test]
    fn a_clock_far_ahead_pins_nothing() {
        let t = table(10);
        let now = Instant::now();
        let wall = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap();
        let year_ahead = wall + chrono::Duration::days(365);
        let (s, r) = at("n1", year_ahead, 99.0);
        assert_eq!(t.ingest(&s, r, now, wall).unwrap(), Ingested::Latest);
        // The clock is fixed: the next snapshot, 5 s later, is the latest.
        let later = now + Duration::from_secs(5);
        let wall5 = wall + chrono::Duration::seconds(5);
        let (s, r) = at("n1", wall5, 1.0);
        assert_eq!(t.ingest(&s, r, later, wall5).unwrap(), Ingested::Latest);
        assert_eq!(latest_cpu(&t, "n1", later), 1.0);
        // A retry of the year-ahead one is still recognised.
        let (s, r) = at("n1", year_ahead, 99.0);
        assert_eq!(t.ingest(&s, r, later, wall5).unwrap(), Ingested::Duplicate);
        assert_eq!(latest_cpu(&t, "n1", later), 1.0);
        // A clock a few minutes ahead, then stepped back: the same.
        let wall10 = wall + chrono::Duration::seconds(10);
        let (s, r) = at("n1", wall10 + chrono::Duration::minutes(4), 2.0);
        assert_eq!(t.ingest(&s, r, later, wall10).unwrap(), Ingested::Latest);
        let wall15 = wall + chrono::Duration::seconds(15);
        let (s, r) = at("n1", wall15, 3.0);
        assert_eq!(t.ingest(&s, r, later, wall15).unwrap(), Ingested::Latest);
        assert_eq!(latest_cpu(&t, "n1", later), 3.0);
    }

    #[test]
    fn backfill_behind_a_fresh_latest_is_late() {
        let t = table(10);
        let now = Instant::now();
        let wall = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap();
        // After an outage a daemon sends its newest snapshot, then the older ones.
        let (s, r) = at("n1", wall, 1.0);
        assert_eq!(t.ingest(&s, r, now, wall).unwrap(), Ingested::Latest);
        for (i, back) in [60i32, 55, 50].into_iter().enumerate() {
            let arrived = wall + chrono::Duration::milliseconds(100 * (i as i64 + 1));
            let (s, r) = at(
                "n1",
                wall - chrono::Duration::seconds(i64::from(back)),
                f64::from(back),
            );
            assert_eq!(t.ingest(&s, r, now, arrived).unwrap(), Ingested::Late);
        }
        assert_eq!(latest_cpu(&t, "n1", now), 1.0);
        assert_eq!(t.series("n1", None, None, now).unwrap().len(), 4);
    }

    #[test]
    fn a_clock_stepped_back_holds_the_latest_at_most_the_offline_threshold() {
        let t = table(10);
        let offline_after = t.config().offline_after();
        let now = Instant::now();
        let wall = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap();
        let (s, r) = at("n1", wall, 1.0);
        assert_eq!(t.ingest(&s, r, now, wall).unwrap(), Ingested::Latest);
        // The node's clock steps an hour back: its snapshots look like backfill while the
        // latest is fresh, and become the latest once it is not.
        let back = |secs: i64| wall - chrono::Duration::hours(1) + chrono::Duration::seconds(secs);
        let (s, r) = at("n1", back(5), 2.0);
        let t5 = now + Duration::from_secs(5);
        assert_eq!(t.ingest(&s, r, t5, wall).unwrap(), Ingested::Late);
        let stale = now + offline_after + Duration::from_secs(1);
        let (s, r) = at("n1", back(16), 3.0);
        assert_eq!(t.ingest(&s, r, stale, wall).unwrap(), Ingested::Latest);
        let (s, r) = at("n1", back(21), 4.0);
        let next = stale + Duration::from_secs(5);
        assert_eq!(t.ingest(&s, r, next, wall).unwrap(), Ingested::Latest);
        assert_eq!(latest_cpu(&t, "n1", next), 4.0);
    }

    #[test]
    fn new_nodes_beyond_the_cap_are_refused_until_one_expires() {
        let t = NodeTable::new(NodeTableConfig {
            max_nodes: 2,
            ..Default::default()
        });
        let ttl = t.config().ttl;
        let now = Instant::now();
        for (i, node) in ["a", "b"].into_iter().enumerate() {
            let (s, r) = snap(node, i as i64, 1.0);
            assert_eq!(t.ingest(&s, r, now, Utc::now()).unwrap(), Ingested::Latest);
        }
        let (s, r) = snap("c", 0, 1.0);
        let full = t.ingest(&s, r, now, Utc::now()).unwrap_err();
        assert_eq!(full.max_nodes, 2);
        // The oldest node may expire one TTL from now.
        assert!(
            full.retry_after > ttl - Duration::from_secs(1)
                && full.retry_after <= ttl + Duration::from_secs(1)
        );
        assert!(full.to_string().contains("AGENT_MAX_NODES"), "{full}");
        // Known nodes keep reporting; "b" keeps reporting while "a" falls silent.
        let half = now + ttl / 2;
        let (s, r) = snap("b", 10, 2.0);
        assert_eq!(t.ingest(&s, r, half, Utc::now()).unwrap(), Ingested::Latest);
        let (s, r) = snap("c", 0, 1.0);
        assert!(t.ingest(&s, r, half, Utc::now()).is_err());
        // Once "a" is past its TTL, "c" takes its place.
        let later = now + ttl + Duration::from_secs(1);
        let (s, r) = snap("c", 0, 1.0);
        assert_eq!(
            t.ingest(&s, r, later, Utc::now()).unwrap(),
            Ingested::Latest
        );
        let names: Vec<String> = t.list(later).into_iter().map(|l| l.node_name).collect();
        assert_eq!(names, ["b", "c"]);
        let (s, r) = snap("d", 0, 1.0);
        assert!(t.ingest(&s, r, later, Utc::now()).is_err());
    }

    #[test]
    fn a_full_table_with_an_endless_ttl_does_not_overflow() {
        let t = NodeTable::new(NodeTableConfig {
            max_nodes: 1,
            ttl: Duration::MAX,
            ..Default::default()
        });
        let now = Instant::now();
        let (s, r) = snap("a", 0, 1.0);
        t.ingest(&s, r, now, Utc::now()).unwrap();
        let (s, r) = snap("b", 0, 1.0);
        let full = t.ingest(&s, r, now, Utc::now()).unwrap_err();
        assert_eq!(full.retry_after, Duration::MAX);
    }
}
