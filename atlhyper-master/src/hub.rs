//! [`DataHub`]: the latest [`ClusterSnapshot`] of every cluster, in memory, with the dashboard's
//! JSON answers serialized once per snapshot, and each agent's liveness.
//!
//! # Staleness
//! A node is online only while its agent says so and the agent itself is alive: heard from
//! within the hub's `offline_after` (`MASTER_AGENT_OFFLINE_AFTER`). Liveness is decided when a
//! view is read, never by a timer: [`DataHub::view`] hands out the published view while the
//! agent is alive and, once it is silent, that view's [`ClusterView::agent_silent`] form, where
//! every node is offline (built once per snapshot, on first read after the transition). So no
//! reader sees a node online one moment past the window, and the fast path costs one lock of
//! the agent's liveness. Ages are measured on the monotonic clock (tokio's, so tests can pause
//! it), immune to wall-clock steps.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use atlhyper_model::{AgentState, ClusterInfo, ClusterSnapshot, NodeState};
use chrono::{DateTime, Utc};
use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;

use crate::view::ClusterView;

/// The latest state of every cluster the master has heard of.
#[derive(Debug)]
pub struct DataHub {
    clusters: RwLock<BTreeMap<String, Arc<ClusterEntry>>>,
    /// An agent silent for longer is offline, and so are all its nodes.
    offline_after: Duration,
}

impl Default for DataHub {
    fn default() -> Self {
        Self::with_offline_after(Duration::from_secs(60))
    }
}

/// One cluster: its published view, its agent's liveness, the command wake-up and the ingest
/// bookkeeping.
#[derive(Debug)]
pub(crate) struct ClusterEntry {
    pub(crate) id: String,
    /// Serializes snapshot ingest of this cluster (seq checks and history buckets).
    pub(crate) ingest: tokio::sync::Mutex<IngestMark>,
    view: RwLock<Option<Arc<ClusterView>>>,
    liveness: Mutex<Liveness>,
    /// Woken whenever a command for this cluster is queued; the agent's long poll waits on it.
    pub(crate) commands_ready: Notify,
    /// Long polls of this cluster's agent held here now, and when the last one ended.
    polls: Mutex<(usize, Option<Instant>)>,
}

/// One long poll held ([`ClusterEntry::polling`]); counted until dropped.
#[derive(Debug)]
pub(crate) struct Polling<'a>(&'a ClusterEntry);

impl Drop for Polling<'_> {
    fn drop(&mut self) {
        let mut polls = self.0.polls.lock();
        polls.0 = polls.0.saturating_sub(1);
        polls.1 = Some(Instant::now());
    }
}

/// What ingest remembers between snapshots of one cluster.
#[derive(Debug, Default)]
pub(crate) struct IngestMark {
    /// Highest `seq` accepted (0: none or a v2 agent).
    pub(crate) last_seq: u64,
    /// Timestamp of the last accepted snapshot.
    pub(crate) last_timestamp: Option<DateTime<Utc>>,
    /// Per node, the last history bucket (timestamp / history interval) that has a point.
    pub(crate) history_bucket: HashMap<String, i64>,
    /// The nodes the master holds for this cluster (the node cap counts them): seeded from the
    /// restored view at the first snapshot, grown by every admitted node. Whoever deletes a
    /// node's latest snapshot removes it here too ([`IngestMark::forget_node`]).
    pub(crate) held_nodes: Option<HashSet<String>>,
    /// When a snapshot contact was last written to the agent registry, and with which agent
    /// version and address (the registry is written at most every few seconds per agent).
    pub(crate) registry_written: Option<(DateTime<Utc>, String, String)>,
}

impl IngestMark {
    /// Forgets a node whose latest snapshot was deleted or retired: its history bucket (its next
    /// report starts a point at once) and its place under the node cap.
    pub(crate) fn forget_node(&mut self, name: &str) {
        self.history_bucket.remove(name);
        if let Some(held) = &mut self.held_nodes {
            held.remove(name);
        }
    }
}

/// When the agent was last heard from.
#[derive(Debug, Default, Clone)]
pub(crate) struct Liveness {
    pub(crate) last_heartbeat: Option<DateTime<Utc>>,
    pub(crate) last_snapshot: Option<DateTime<Utc>>,
    /// The latest contact on the monotonic clock (what online/offline is decided by).
    last_contact: Option<Instant>,
}

impl Liveness {
    fn last_seen(&self) -> Option<DateTime<Utc>> {
        self.last_heartbeat.max(self.last_snapshot)
    }

    /// Heard from within `offline_after` of now (monotonic).
    fn online(&self, offline_after: Duration) -> bool {
        self.last_contact
            .is_some_and(|at| Instant::now().saturating_duration_since(at) <= offline_after)
    }
}

impl ClusterEntry {
    fn new(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            ingest: tokio::sync::Mutex::new(IngestMark::default()),
            view: RwLock::new(None),
            liveness: Mutex::new(Liveness::default()),
            commands_ready: Notify::new(),
            polls: Mutex::new((0, None)),
        }
    }

    /// Counts a long poll of the agent as held here until the guard is dropped.
    pub(crate) fn polling(&self) -> Polling<'_> {
        self.polls.lock().0 += 1;
        Polling(self)
    }

    /// Whether the agent polls this master: a long poll held now, or one that ended within
    /// `within` (the agent polls again right after each answer).
    pub(crate) fn agent_polls_here(&self, within: Duration) -> bool {
        let polls = self.polls.lock();
        polls.0 > 0 || polls.1.is_some_and(|at| at.elapsed() <= within)
    }

    pub(crate) fn view(&self) -> Option<Arc<ClusterView>> {
        self.view.read().clone()
    }

    pub(crate) fn publish(&self, view: Arc<ClusterView>) {
        *self.view.write() = Some(view);
    }

    /// Records a contact from the agent at wall-clock time `at` (now, or earlier when restored
    /// from the registry): its age on the monotonic clock is now minus how long ago `at` was.
    pub(crate) fn heard(&self, at: DateTime<Utc>, snapshot: bool) {
        let age = (Utc::now() - at).to_std().unwrap_or(Duration::ZERO);
        // A contact too long ago for the monotonic clock to go back to is no contact at all.
        let contact = Instant::now().checked_sub(age);
        let mut l = self.liveness.lock();
        let slot = if snapshot {
            &mut l.last_snapshot
        } else {
            &mut l.last_heartbeat
        };
        *slot = (*slot).max(Some(at));
        l.last_contact = l.last_contact.max(contact);
    }

    /// Whether the agent was heard from within `offline_after`.
    pub(crate) fn agent_online(&self, offline_after: Duration) -> bool {
        self.liveness.lock().online(offline_after)
    }

    /// Drops, from a snapshot about to be ingested, the nodes the agent reports offline that
    /// this cluster's view does not have (deleted or retired): they come back only when they
    /// report again. A cluster without a view yet (new, or deleted and back) takes every node.
    /// Call with the ingest lock held.
    pub(crate) fn drop_unknown_offline(&self, snapshot: &mut ClusterSnapshot) {
        let Some(view) = self.view() else {
            return;
        };
        let known = |name: &str| view.node(name).is_some();
        let refused: Vec<String> = snapshot
            .node_status
            .iter()
            .filter(|(name, s)| s.state == NodeState::Offline && !known(name))
            .map(|(name, _)| name.clone())
            .collect();
        for name in &refused {
            snapshot.node_metrics.remove(name);
            snapshot.node_status.remove(name);
        }
    }

    pub(crate) fn liveness(&self) -> Liveness {
        self.liveness.lock().clone()
    }
}

impl DataHub {
    /// An empty hub where an agent is offline after 60 s of silence.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty hub where an agent silent for longer than `offline_after` is offline, and all
    /// its nodes with it.
    pub fn with_offline_after(offline_after: Duration) -> Self {
        Self {
            clusters: RwLock::new(BTreeMap::new()),
            offline_after,
        }
    }

    pub(crate) fn get(&self, cluster_id: &str) -> Option<Arc<ClusterEntry>> {
        self.clusters.read().get(cluster_id).cloned()
    }

    pub(crate) fn entry(&self, cluster_id: &str) -> Arc<ClusterEntry> {
        if let Some(e) = self.get(cluster_id) {
            return e;
        }
        self.clusters
            .write()
            .entry(cluster_id.to_owned())
            .or_insert_with(|| Arc::new(ClusterEntry::new(cluster_id)))
            .clone()
    }

    /// The latest view of a cluster as it reads now, if it has sent a snapshot: the published
    /// view while its agent is alive, its [`ClusterView::agent_silent`] form (every node
    /// offline) once the agent is silent past the hub's `offline_after`.
    pub fn view(&self, cluster_id: &str) -> Option<Arc<ClusterView>> {
        self.current(&*self.get(cluster_id)?)
    }

    fn current(&self, entry: &ClusterEntry) -> Option<Arc<ClusterView>> {
        let view = entry.view()?;
        Some(if entry.agent_online(self.offline_after) {
            view
        } else {
            view.agent_silent()
        })
    }

    /// Whether the cluster's agent was heard from within the hub's `offline_after`.
    pub fn agent_online(&self, cluster_id: &str) -> bool {
        self.get(cluster_id)
            .is_some_and(|e| e.agent_online(self.offline_after))
    }

    /// Removes a cluster; returns its entry if it was there.
    pub(crate) fn remove(&self, cluster_id: &str) -> Option<Arc<ClusterEntry>> {
        self.clusters.write().remove(cluster_id)
    }

    /// When a cluster's agent was last heard from, as this process saw it.
    pub(crate) fn liveness(&self, cluster_id: &str) -> Option<Liveness> {
        Some(self.get(cluster_id)?.liveness())
    }

    /// Whether the master knows the cluster (a snapshot, heartbeat or restored state).
    pub fn contains(&self, cluster_id: &str) -> bool {
        self.clusters.read().contains_key(cluster_id)
    }

    /// Every known cluster, sorted by id, with its agent online when heard from within the
    /// hub's `offline_after`.
    pub fn clusters(&self) -> Vec<ClusterInfo> {
        let entries: Vec<Arc<ClusterEntry>> = self.clusters.read().values().cloned().collect();
        entries
            .iter()
            .map(|e| {
                let live = e.liveness();
                let view = e.view();
                ClusterInfo {
                    cluster_id: e.id.clone(),
                    status: if live.online(self.offline_after) {
                        "online"
                    } else {
                        "offline"
                    }
                    .to_owned(),
                    last_seen: live.last_seen().unwrap_or_default(),
                    node_count: view.map_or(0, |v| {
                        u32::try_from(v.snapshot.node_metrics.len()).unwrap_or(u32::MAX)
                    }),
                    pod_count: 0,
                }
            })
            .collect()
    }

    /// Every cluster's latest view as it reads now (see [`DataHub::view`]; clusters without a
    /// snapshot left out), sorted by id.
    pub fn views(&self) -> Vec<Arc<ClusterView>> {
        let entries: Vec<Arc<ClusterEntry>> = self.clusters.read().values().cloned().collect();
        entries.iter().filter_map(|e| self.current(e)).collect()
    }

    /// Every cluster's entry, sorted by id.
    pub(crate) fn entries(&self) -> Vec<Arc<ClusterEntry>> {
        self.clusters.read().values().cloned().collect()
    }

    /// The state of a cluster's agent as the hub sees it (`None`: unknown cluster).
    pub(crate) fn agent_state(&self, cluster_id: &str) -> Option<AgentState> {
        let online = self.get(cluster_id)?.agent_online(self.offline_after);
        Some(if online {
            AgentState::Online
        } else {
            AgentState::Offline
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atlhyper_model::{NodeMetricsSnapshot, NodeStatus};

    fn node(name: &str, cpu: f64) -> NodeMetricsSnapshot {
        let mut n = NodeMetricsSnapshot {
            node_name: name.into(),
            ..Default::default()
        };
        n.cpu.usage_percent = cpu;
        n
    }

    #[test]
    fn liveness_decides_online() {
        let hub = DataHub::with_offline_after(Duration::from_secs(60));
        let now = Utc::now();
        hub.entry("a")
            .heard(now - chrono::Duration::seconds(10), false);
        hub.entry("b")
            .heard(now - chrono::Duration::seconds(100), true);
        let list = hub.clusters();
        assert_eq!(list[0].status, "online");
        assert_eq!(list[1].status, "offline");
        assert!(hub.agent_online("a"));
        assert!(!hub.agent_online("b"));
        assert!(!hub.agent_online("nope"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_agent_reads_with_every_node_offline() {
        let hub = DataHub::with_offline_after(Duration::from_secs(60));
        let mut snapshot = ClusterSnapshot {
            cluster_id: "c".into(),
            ..Default::default()
        };
        snapshot.node_metrics.insert("a".into(), node("a", 10.0));
        snapshot.node_metrics.insert("b".into(), node("b", 20.0));
        let entry = hub.entry("c");
        entry.publish(Arc::new(ClusterView::new(snapshot, Utc::now())));
        entry.heard(Utc::now(), true);
        let live = hub.view("c").unwrap();
        assert_eq!(live.summary.online_nodes, 2);
        assert!(live.is_node_online("a"));

        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(
            hub.view("c").unwrap().summary.online_nodes,
            2,
            "within the window"
        );
        tokio::time::advance(Duration::from_secs(2)).await;
        let silent = hub.view("c").unwrap();
        assert!(silent.is_agent_silent());
        assert_eq!(silent.summary.online_nodes, 0);
        assert_eq!(silent.summary.offline_nodes, 2);
        assert_eq!(
            silent.summary.max_cpu_usage, 0.0,
            "no figure of an offline node"
        );
        assert!(!silent.is_node_online("a"));
        assert!(Arc::ptr_eq(&silent, &hub.view("c").unwrap()), "built once");
        let v: serde_json::Value = serde_json::from_slice(&silent.node_metrics_json()).unwrap();
        assert_eq!(v["node_status"]["a"]["state"], "offline");
        let v: serde_json::Value = serde_json::from_slice(&silent.observe_nodes_json()).unwrap();
        assert_eq!(v["node_status"]["b"]["state"], "offline");
        assert_eq!(hub.clusters()[0].status, "offline");

        // Heard again: the published view is back.
        entry.heard(Utc::now(), false);
        assert!(Arc::ptr_eq(&hub.view("c").unwrap(), &live));
    }

    #[test]
    fn unknown_offline_nodes_are_dropped() {
        let entry = ClusterEntry::new("c");
        let mut first = ClusterSnapshot::default();
        first
            .node_metrics
            .insert("known".into(), node("known", 1.0));
        entry.publish(Arc::new(ClusterView::new(first, Utc::now())));
        let mut next = ClusterSnapshot::default();
        for name in ["known", "gone", "back"] {
            next.node_metrics.insert(name.into(), node(name, 1.0));
        }
        for (name, state) in [
            ("known", NodeState::Offline),
            ("gone", NodeState::Offline),
            ("back", NodeState::Online),
        ] {
            next.node_status.insert(
                name.into(),
                NodeStatus {
                    state,
                    last_seen: Utc::now(),
                },
            );
        }
        let mut fresh = next.clone();
        entry.drop_unknown_offline(&mut next);
        let names: Vec<&String> = next.node_metrics.keys().collect();
        assert_eq!(names, ["back", "known"]);
        assert!(!next.node_status.contains_key("gone"));
        // A cluster without a view yet takes every node.
        ClusterEntry::new("new").drop_unknown_offline(&mut fresh);
        assert_eq!(fresh.node_metrics.len(), 3);
    }
}
