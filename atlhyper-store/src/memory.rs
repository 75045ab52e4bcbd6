//! The in-memory engine: every trait over maps behind `parking_lot` locks. Nothing survives the
//! process; for tests, demos and single-run tools.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use atlhyper_model::{
    AgentStatus, Alert, CommandRecord, CommandResult, MetricsDataPoint, NodeMetricsSnapshot,
};
use chrono::{DateTime, Utc};
use parking_lot::{Mutex, RwLock};

use crate::agents::{AgentRecord, AgentRegistry, AgentSeen, check_seen};
use crate::alerts::{
    AlertChanges, AlertHistoryQuery, AlertRuleRecord, AlertStore, check_history_query, check_rule,
    encode_alert,
};
use crate::audit::{AuditEntry, AuditLog, AuditQuery, check_entry, check_query};
use crate::commands::{
    CommandFilter, CommandQueue, DEFAULT_LIST_LIMIT, StoredCommand, duplicate, matches,
    new_command, not_found, oldest_first,
};
use crate::error::StoreResult;
use crate::metrics::{
    HistoryQuery, HistoryRow, MetricsStore, NodeKey, POINT_FIELDS, Range, encode_snapshot, shape,
};
use crate::notify::{
    NotificationRecord, NotifiedGroup, NotifyStore, Silence, check_notified, check_record,
    check_silence,
};
use crate::timestamp::{to_ns, to_ns_clamped};

/// Node name to a value, per cluster; both levels sorted.
type PerNode<T> = BTreeMap<String, BTreeMap<String, T>>;

/// Every store trait in memory.
///
/// ```
/// use atlhyper_store::{MemoryStore, MetricsStore};
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// assert!(store.list_clusters().await.unwrap().is_empty());
/// # });
/// ```
#[derive(Debug, Default)]
pub struct MemoryStore {
    latest: RwLock<PerNode<NodeMetricsSnapshot>>,
    /// Per node: timestamp (ns) to the point's numbers.
    history: RwLock<PerNode<BTreeMap<i64, [f64; POINT_FIELDS]>>>,
    commands: Mutex<HashMap<String, StoredCommand>>,
    agents: Mutex<BTreeMap<String, AgentRecord>>,
    alerts: Mutex<AlertTables>,
    silences: Mutex<BTreeMap<String, Silence>>,
    /// (receiver, group key) to the entry.
    notified: Mutex<BTreeMap<(String, String), NotifiedGroup>>,
    /// Oldest first.
    notifications: Mutex<Vec<NotificationRecord>>,
    /// Series rows ([`crate::SeriesStore`]).
    pub(crate) series: crate::series::memory::SeriesTables,
    /// Audit entries in the order they were appended.
    audit: Mutex<Vec<AuditEntry>>,
}

/// Alert rules, running alerts and history, as [`AlertStore`] keeps them in memory.
#[derive(Debug, Default)]
struct AlertTables {
    rules: BTreeMap<String, AlertRuleRecord>,
    active: BTreeMap<String, Alert>,
    /// Keyed by (entry time ns, fingerprint): iterated backwards for newest first.
    history: BTreeMap<(i64, String), Alert>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

fn check_cluster(cluster_id: &str) -> StoreResult<()> {
    if cluster_id.is_empty() {
        return Err(crate::StoreError::Invalid("empty cluster_id".to_owned()));
    }
    Ok(())
}

#[async_trait::async_trait]
impl MetricsStore for MemoryStore {
    async fn upsert_latest(
        &self,
        cluster_id: &str,
        snapshots: &[NodeMetricsSnapshot],
    ) -> StoreResult<()> {
        check_cluster(cluster_id)?;
        for s in snapshots {
            encode_snapshot(s)?;
        }
        let mut latest = self.latest.write();
        let nodes = latest.entry(cluster_id.to_owned()).or_default();
        // Arrival order: the last one written wins, whatever its timestamp.
        for s in snapshots {
            nodes.insert(s.node_name.clone(), s.clone());
        }
        if nodes.is_empty() {
            latest.remove(cluster_id);
        }
        Ok(())
    }

    async fn get_latest(
        &self,
        cluster_id: &str,
        node_name: &str,
    ) -> StoreResult<Option<NodeMetricsSnapshot>> {
        Ok(self
            .latest
            .read()
            .get(cluster_id)
            .and_then(|nodes| nodes.get(node_name))
            .cloned())
    }

    async fn list_latest(&self, cluster_id: &str) -> StoreResult<Vec<NodeMetricsSnapshot>> {
        Ok(self
            .latest
            .read()
            .get(cluster_id)
            .map(|nodes| nodes.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn append_history(
        &self,
        cluster_id: &str,
        points: &[MetricsDataPoint],
    ) -> StoreResult<usize> {
        check_cluster(cluster_id)?;
        let rows = points
            .iter()
            .map(HistoryRow::from_point)
            .collect::<StoreResult<Vec<_>>>()?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut history = self.history.write();
        let nodes = history.entry(cluster_id.to_owned()).or_default();
        let mut added = 0;
        for (p, row) in points.iter().zip(rows) {
            let series = match nodes.get_mut(&p.node_name) {
                Some(series) => series,
                None => nodes.entry(p.node_name.clone()).or_default(),
            };
            if let std::collections::btree_map::Entry::Vacant(slot) = series.entry(row.ts) {
                slot.insert(row.values);
                added += 1;
            }
        }
        Ok(added)
    }

    async fn history(&self, query: &HistoryQuery) -> StoreResult<Vec<MetricsDataPoint>> {
        let Some(range) = Range::of(query)? else {
            return Ok(Vec::new());
        };
        let rows: Vec<HistoryRow> = {
            let history = self.history.read();
            match history
                .get(&query.cluster_id)
                .and_then(|nodes| nodes.get(&query.node_name))
            {
                Some(series) => series
                    .range(range.from..=range.to)
                    .map(|(&ts, &values)| HistoryRow { ts, values })
                    .collect(),
                None => Vec::new(),
            }
        };
        Ok(shape(rows, range, &query.node_name))
    }

    async fn prune_history(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let before = to_ns_clamped(before);
        let mut history = self.history.write();
        let mut deleted = 0u64;
        for nodes in history.values_mut() {
            for series in nodes.values_mut() {
                let kept = series.split_off(&before);
                deleted += series.len() as u64;
                *series = kept;
            }
            nodes.retain(|_, series| !series.is_empty());
        }
        history.retain(|_, nodes| !nodes.is_empty());
        Ok(deleted)
    }

    async fn list_clusters(&self) -> StoreResult<Vec<String>> {
        let latest = self.latest.read();
        let history = self.history.read();
        let mut clusters: Vec<String> = latest.keys().chain(history.keys()).cloned().collect();
        clusters.sort_unstable();
        clusters.dedup();
        Ok(clusters)
    }

    async fn list_nodes(&self, cluster_id: &str) -> StoreResult<Vec<String>> {
        let latest = self.latest.read();
        let history = self.history.read();
        let mut nodes: Vec<String> = latest
            .get(cluster_id)
            .into_iter()
            .flat_map(|n| n.keys())
            .chain(history.get(cluster_id).into_iter().flat_map(|n| n.keys()))
            .cloned()
            .collect();
        nodes.sort_unstable();
        nodes.dedup();
        Ok(nodes)
    }

    async fn delete_latest(&self, cluster_id: &str, node_name: &str) -> StoreResult<bool> {
        let mut latest = self.latest.write();
        let Some(nodes) = latest.get_mut(cluster_id) else {
            return Ok(false);
        };
        let removed = nodes.remove(node_name).is_some();
        if nodes.is_empty() {
            latest.remove(cluster_id);
        }
        Ok(removed)
    }

    async fn delete_cluster_latest(&self, cluster_id: &str) -> StoreResult<u64> {
        Ok(self
            .latest
            .write()
            .remove(cluster_id)
            .map_or(0, |nodes| nodes.len() as u64))
    }

    async fn retire_latest(&self, before: DateTime<Utc>) -> StoreResult<Vec<NodeKey>> {
        let before = to_ns_clamped(before);
        let mut latest = self.latest.write();
        let mut retired = Vec::new();
        for (cluster_id, nodes) in latest.iter_mut() {
            nodes.retain(|node_name, s| {
                // Stored timestamps are storable (checked on upsert), so they convert exactly.
                let silent = to_ns_clamped(s.timestamp) < before;
                if silent {
                    retired.push(NodeKey {
                        cluster_id: cluster_id.clone(),
                        node_name: node_name.clone(),
                    });
                }
                !silent
            });
        }
        latest.retain(|_, nodes| !nodes.is_empty());
        Ok(retired)
    }
}

#[async_trait::async_trait]
impl CommandQueue for MemoryStore {
    async fn enqueue(&self, command: &CommandRecord) -> StoreResult<()> {
        let stored = new_command(command)?;
        let mut commands = self.commands.lock();
        if commands.contains_key(&command.command_id) {
            return Err(duplicate(&command.command_id));
        }
        commands.insert(command.command_id.clone(), stored);
        Ok(())
    }

    async fn take(
        &self,
        cluster_id: &str,
        max: usize,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<CommandRecord>> {
        let now_ns = to_ns(now, "now")?;
        let mut commands = self.commands.lock();
        let mut offered: Vec<&mut StoredCommand> = commands
            .values_mut()
            .filter(|c| c.record.cluster_id == cluster_id && c.offerable(now_ns))
            .collect();
        offered.sort_by(|a, b| oldest_first(&a.record, &b.record));
        Ok(offered
            .into_iter()
            .take(max)
            .map(|c| {
                c.lease(now, now_ns, lease);
                c.record.clone()
            })
            .collect())
    }

    async fn complete(
        &self,
        result: &CommandResult,
        now: DateTime<Utc>,
    ) -> StoreResult<CommandRecord> {
        to_ns(now, "now")?;
        let mut commands = self.commands.lock();
        match commands.get_mut(&result.command_id) {
            Some(c) if c.record.cluster_id == result.cluster_id => {
                c.complete(result, now);
                Ok(c.record.clone())
            }
            _ => Err(not_found(&result.command_id)),
        }
    }

    async fn get(&self, command_id: &str) -> StoreResult<Option<CommandRecord>> {
        Ok(self
            .commands
            .lock()
            .get(command_id)
            .map(|c| c.record.clone()))
    }

    async fn list(&self, filter: &CommandFilter) -> StoreResult<Vec<CommandRecord>> {
        let commands = self.commands.lock();
        let mut found: Vec<&CommandRecord> = commands
            .values()
            .map(|c| &c.record)
            .filter(|r| matches(filter, r))
            .collect();
        found.sort_by(|a, b| oldest_first(b, a));
        Ok(found
            .into_iter()
            .skip(filter.offset)
            .take(filter.limit.unwrap_or(DEFAULT_LIST_LIMIT))
            .cloned()
            .collect())
    }

    async fn expire(&self, now: DateTime<Utc>) -> StoreResult<Vec<CommandRecord>> {
        to_ns(now, "now")?;
        let mut commands = self.commands.lock();
        let mut changed: Vec<CommandRecord> = commands
            .values_mut()
            .filter(|c| c.overdue(now))
            .map(|c| {
                c.time_out(now);
                c.record.clone()
            })
            .collect();
        changed.sort_by(oldest_first);
        Ok(changed)
    }

    async fn count_open(&self, cluster_id: &str) -> StoreResult<u64> {
        let commands = self.commands.lock();
        let open = commands
            .values()
            .filter(|c| c.record.cluster_id == cluster_id && !c.record.status.is_final())
            .count();
        Ok(open as u64)
    }

    async fn prune_commands(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        to_ns(before, "prune before")?;
        let mut commands = self.commands.lock();
        let was = commands.len();
        commands.retain(|_, c| {
            !(c.record.status.is_final() && matches!(c.record.finished_at, Some(f) if f < before))
        });
        Ok((was - commands.len()) as u64)
    }
}

#[async_trait::async_trait]
impl AgentRegistry for MemoryStore {
    async fn seen(&self, seen: &AgentSeen) -> StoreResult<()> {
        let at = check_seen(seen)?;
        let mut agents = self.agents.lock();
        let agent = agents
            .entry(seen.cluster_id.clone())
            .or_insert_with(|| AgentRecord {
                cluster_id: seen.cluster_id.clone(),
                ..AgentRecord::default()
            });
        agent.apply(seen, at);
        Ok(())
    }

    async fn list(
        &self,
        now: DateTime<Utc>,
        offline_after: Duration,
    ) -> StoreResult<Vec<AgentStatus>> {
        Ok(self
            .agents
            .lock()
            .values()
            .map(|a| a.status(now, offline_after))
            .collect())
    }

    async fn forget(&self, cluster_id: &str) -> StoreResult<bool> {
        Ok(self.agents.lock().remove(cluster_id).is_some())
    }
}

#[async_trait::async_trait]
impl AlertStore for MemoryStore {
    async fn list_alert_rules(&self) -> StoreResult<Vec<AlertRuleRecord>> {
        Ok(self.alerts.lock().rules.values().cloned().collect())
    }

    async fn put_alert_rule(&self, rule: &AlertRuleRecord) -> StoreResult<()> {
        check_rule(rule)?;
        self.alerts
            .lock()
            .rules
            .insert(rule.name.clone(), rule.clone());
        Ok(())
    }

    async fn delete_alert_rule(&self, name: &str) -> StoreResult<bool> {
        Ok(self.alerts.lock().rules.remove(name).is_some())
    }

    async fn active_alerts(&self) -> StoreResult<Vec<Alert>> {
        Ok(self.alerts.lock().active.values().cloned().collect())
    }

    async fn apply_alert_changes(&self, changes: &AlertChanges) -> StoreResult<()> {
        // Check everything first, so a bad batch writes nothing.
        for alert in &changes.upsert {
            encode_alert(alert)?;
        }
        let history = changes
            .history
            .iter()
            .map(|a| encode_alert(a).map(|e| ((e.at, e.fingerprint), a.clone())))
            .collect::<StoreResult<Vec<_>>>()?;
        let mut tables = self.alerts.lock();
        for fingerprint in &changes.remove {
            tables.active.remove(fingerprint);
        }
        for alert in &changes.upsert {
            tables
                .active
                .insert(alert.fingerprint.clone(), alert.clone());
        }
        for (key, alert) in history {
            tables.history.entry(key).or_insert(alert);
        }
        Ok(())
    }

    async fn alert_history(&self, query: &AlertHistoryQuery) -> StoreResult<Vec<Alert>> {
        check_history_query(query)?;
        let from = query.from.map_or(i64::MIN, to_ns_clamped);
        let to = query.to.map_or(i64::MAX, to_ns_clamped);
        if from > to {
            return Ok(Vec::new());
        }
        let tables = self.alerts.lock();
        Ok(tables
            .history
            .range((from, String::new())..)
            .rev()
            .filter(|((at, _), _)| *at <= to)
            .map(|(_, a)| a)
            .filter(|a| query.rule.as_ref().is_none_or(|r| &a.rule == r))
            .filter(|a| {
                query
                    .cluster
                    .as_ref()
                    .is_none_or(|c| a.labels.get("cluster") == Some(c))
            })
            .take(query.limit)
            .cloned()
            .collect())
    }

    async fn prune_alert_history(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let before = to_ns_clamped(before);
        let mut tables = self.alerts.lock();
        let kept = tables.history.split_off(&(before, String::new()));
        let pruned = std::mem::replace(&mut tables.history, kept);
        Ok(pruned.len() as u64)
    }
}

#[async_trait::async_trait]
impl NotifyStore for MemoryStore {
    async fn put_silence(&self, silence: &Silence) -> StoreResult<()> {
        check_silence(silence)?;
        self.silences
            .lock()
            .insert(silence.id.clone(), silence.clone());
        Ok(())
    }

    async fn get_silence(&self, id: &str) -> StoreResult<Option<Silence>> {
        Ok(self.silences.lock().get(id).cloned())
    }

    async fn list_silences(&self) -> StoreResult<Vec<Silence>> {
        let mut all: Vec<Silence> = self.silences.lock().values().cloned().collect();
        all.sort_by(|a, b| a.starts_at.cmp(&b.starts_at).then_with(|| a.id.cmp(&b.id)));
        Ok(all)
    }

    async fn prune_silences(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let mut silences = self.silences.lock();
        let was = silences.len();
        silences.retain(|_, s| s.ends_at >= before);
        Ok((was - silences.len()) as u64)
    }

    async fn put_notified(&self, entry: &NotifiedGroup) -> StoreResult<()> {
        check_notified(entry)?;
        self.notified.lock().insert(
            (entry.receiver.clone(), entry.group_key.clone()),
            entry.clone(),
        );
        Ok(())
    }

    async fn list_notified(&self) -> StoreResult<Vec<NotifiedGroup>> {
        Ok(self.notified.lock().values().cloned().collect())
    }

    async fn delete_notified(&self, receiver: &str, group_key: &str) -> StoreResult<bool> {
        Ok(self
            .notified
            .lock()
            .remove(&(receiver.to_owned(), group_key.to_owned()))
            .is_some())
    }

    async fn append_notification(&self, record: &NotificationRecord) -> StoreResult<()> {
        check_record(record)?;
        self.notifications.lock().push(record.clone());
        Ok(())
    }

    async fn list_notifications(&self, limit: usize) -> StoreResult<Vec<NotificationRecord>> {
        let mut all = self.notifications.lock().clone();
        // Newest first; equal times in reverse order of appending, as SQLite's rowid order.
        all.reverse();
        all.sort_by_key(|r| std::cmp::Reverse(r.at));
        all.truncate(limit);
        Ok(all)
    }

    async fn prune_notifications(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let mut all = self.notifications.lock();
        let was = all.len();
        all.retain(|r| r.at >= before);
        Ok((was - all.len()) as u64)
    }
}

#[async_trait::async_trait]
impl AuditLog for MemoryStore {
    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        check_entry(entry)?;
        self.audit.lock().push(entry.clone());
        Ok(())
    }

    async fn list_audit(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEntry>> {
        check_query(query)?;
        let all = self.audit.lock();
        let mut found: Vec<AuditEntry> = all
            .iter()
            .rev()
            .filter(|e| query.from.is_none_or(|from| e.at >= from))
            .filter(|e| query.to.is_none_or(|to| e.at <= to))
            .filter(|e| query.action.as_ref().is_none_or(|a| &e.action == a))
            .cloned()
            .collect();
        // Newest first; equal times newest appended first (stable sort of the reversed log).
        found.sort_by_key(|e| std::cmp::Reverse(e.at));
        found.truncate(query.limit);
        Ok(found)
    }

    async fn prune_audit(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let mut all = self.audit.lock();
        let was = all.len();
        all.retain(|e| e.at >= before);
        Ok((was - all.len()) as u64)
    }
}
