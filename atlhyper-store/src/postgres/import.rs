//! Copying another engine's contents into PostgreSQL (`atlhyper-master migrate`): latest
//! snapshots, history, commands, the agent registry, alert rules, running alerts and silences,
//! the audit log and the series store.
//!
//! Safe to run twice, and after masters started writing to PostgreSQL: history points and
//! commands already there are skipped, a latest snapshot already there wins over the imported
//! one, agent times only move forward, rules, running alerts and silences are replaced by id,
//! an audit entry equal in every field to one already there is skipped, and a series row of a
//! (node, tier, interval) already there stays as it is.

use std::time::Duration;

use atlhyper_model::{CommandRecord, NodeMetricsSnapshot};
use chrono::{DateTime, Utc};

use super::{PgStore, map_err};
use crate::agents::{AgentRegistry, AgentSeen, SeenVia};
use crate::alerts::{AlertChanges, AlertStore};
use crate::audit::{AuditEntry, AuditLog, AuditQuery, MAX_AUDIT_LIMIT, check_entry};
use crate::commands::{CommandFilter, CommandQueue};
use crate::error::{StoreError, StoreResult};
use crate::metrics::{HistoryQuery, MetricsStore, encode_snapshot};
use crate::notify::NotifyStore;
use crate::series::{SeriesQuery, SeriesStore, TIERS};
use crate::timestamp::to_ns;

/// History points written per batch.
const HISTORY_BATCH: usize = 5_000;
/// Commands read per page.
const COMMAND_PAGE: usize = 1_000;
/// Series rows written per batch.
const SERIES_BATCH: usize = 1_000;

/// What [`PgStore::import_from`] found in the source and how much of it was new here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Latest snapshots read / written (not already here).
    pub latest: (u64, u64),
    /// History points read / new.
    pub history: (u64, u64),
    /// Commands read / new.
    pub commands: (u64, u64),
    /// Agents read (all applied; times move forward only).
    pub agents: u64,
    /// Alert rules, running alerts and silences read (all applied).
    pub alerting: u64,
    /// Audit entries read / new.
    pub audit: (u64, u64),
    /// Series rows (every tier) read / new.
    pub series: (u64, u64),
}

impl std::fmt::Display for ImportReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "latest {} read, {} new; history {} points read, {} new; commands {} read, {} new; \
             {} agents; {} alert rules, running alerts and silences; audit {} entries read, \
             {} new; series {} rows read, {} new",
            self.latest.0,
            self.latest.1,
            self.history.0,
            self.history.1,
            self.commands.0,
            self.commands.1,
            self.agents,
            self.alerting,
            self.audit.0,
            self.audit.1,
            self.series.0,
            self.series.1
        )
    }
}

/// Every trait an engine to import from has.
pub trait ImportSource:
    MetricsStore + CommandQueue + AgentRegistry + AlertStore + NotifyStore + AuditLog + SeriesStore
{
}

impl<
    T: MetricsStore + CommandQueue + AgentRegistry + AlertStore + NotifyStore + AuditLog + SeriesStore,
> ImportSource for T
{
}

/// Where the next page of a newest-first audit listing starts, after `page` of a listing of at
/// most `limit`: the oldest instant of the page (the bound is inclusive) and how many entries
/// of that instant the page already had (they come first again). `None` after the last page.
fn next_audit_page(
    page: &[AuditEntry],
    limit: usize,
) -> StoreResult<Option<(DateTime<Utc>, usize)>> {
    let Some(oldest) = page.last().map(|e| e.at).filter(|_| page.len() >= limit) else {
        return Ok(None);
    };
    let at_oldest = page.iter().filter(|e| e.at == oldest).count();
    if at_oldest == page.len() {
        return Err(StoreError::Invalid(format!(
            "more than {limit} audit entries at one instant ({oldest})"
        )));
    }
    Ok(Some((oldest, at_oldest)))
}

impl PgStore {
    /// Copies everything `source` holds into this database (see the module docs for what and
    /// why it is safe to repeat).
    pub async fn import_from(&self, source: &impl ImportSource) -> StoreResult<ImportReport> {
        let mut report = ImportReport::default();
        for cluster in source.list_clusters().await? {
            let latest = source.list_latest(&cluster).await?;
            report.latest.0 += latest.len() as u64;
            report.latest.1 += self.import_latest(&cluster, &latest).await?;
            for node in source.list_nodes(&cluster).await? {
                let points = source
                    .history(&HistoryQuery {
                        cluster_id: cluster.clone(),
                        node_name: node,
                        from: DateTime::<Utc>::MIN_UTC,
                        to: DateTime::<Utc>::MAX_UTC,
                        max_points: None,
                    })
                    .await?;
                report.history.0 += points.len() as u64;
                for batch in points.chunks(HISTORY_BATCH) {
                    report.history.1 += self.append_history(&cluster, batch).await? as u64;
                }
            }
        }
        let mut offset = 0;
        loop {
            let page = CommandQueue::list(
                source,
                &CommandFilter {
                    limit: Some(COMMAND_PAGE),
                    offset,
                    ..CommandFilter::default()
                },
            )
            .await?;
            for command in &page {
                report.commands.0 += 1;
                report.commands.1 += u64::from(self.import_command(command).await?);
            }
            if page.len() < COMMAND_PAGE {
                break;
            }
            offset += page.len();
        }
        let never = DateTime::<Utc>::default();
        for agent in AgentRegistry::list(source, Utc::now(), Duration::ZERO).await? {
            report.agents += 1;
            for (at, via) in [
                (agent.last_heartbeat, SeenVia::Heartbeat),
                (agent.last_snapshot, SeenVia::Snapshot),
            ] {
                if at > never {
                    self.seen(&AgentSeen {
                        cluster_id: agent.cluster_id.clone(),
                        agent_version: agent.agent_version.clone(),
                        remote_addr: agent.remote_addr.clone(),
                        at,
                        via,
                    })
                    .await?;
                }
            }
        }
        for rule in source.list_alert_rules().await? {
            self.put_alert_rule(&rule).await?;
            report.alerting += 1;
        }
        let running = source.active_alerts().await?;
        report.alerting += running.len() as u64;
        self.apply_alert_changes(&AlertChanges {
            upsert: running,
            ..AlertChanges::default()
        })
        .await?;
        for silence in source.list_silences().await? {
            self.put_silence(&silence).await?;
            report.alerting += 1;
        }
        report.audit = self.import_audit(source).await?;
        report.series = self.import_series(source).await?;
        Ok(report)
    }

    /// Copies the audit log, newest first page by page; (read, new).
    async fn import_audit(&self, source: &impl AuditLog) -> StoreResult<(u64, u64)> {
        let (mut read, mut added) = (0u64, 0u64);
        let mut to: Option<DateTime<Utc>> = None;
        // Entries at `to` already read on the page before (they come first again, in order).
        let mut skip = 0usize;
        loop {
            let page = source
                .list_audit(&AuditQuery {
                    to,
                    limit: MAX_AUDIT_LIMIT,
                    ..AuditQuery::default()
                })
                .await?;
            let fresh = page.get(skip..).unwrap_or_default();
            read += fresh.len() as u64;
            added += self.insert_audit_missing(fresh).await?;
            match next_audit_page(&page, MAX_AUDIT_LIMIT)? {
                Some((oldest, at_oldest)) => (to, skip) = (Some(oldest), at_oldest),
                None => break,
            }
        }
        Ok((read, added))
    }

    /// Inserts the entries that no entry here equals in every field; how many.
    async fn insert_audit_missing(&self, entries: &[AuditEntry]) -> StoreResult<u64> {
        if entries.is_empty() {
            return Ok(0);
        }
        let mut at = Vec::with_capacity(entries.len());
        let mut status = Vec::with_capacity(entries.len());
        for e in entries {
            at.push(check_entry(e)?);
            status.push(i32::from(e.status));
        }
        let text = |f: fn(&AuditEntry) -> &str| entries.iter().map(f).collect::<Vec<&str>>();
        let client = self.client().await?;
        // Oldest first, so ids keep the source's order; an equal entry already here (an earlier
        // run) is skipped. Equal entries within one run are all new (the NOT EXISTS sees the
        // table as it was before the statement).
        client
            .execute(
                "INSERT INTO audit (at, actor, source, action, target, status, detail)
                 SELECT s.at, s.actor, s.source, s.action, s.target, s.status, s.detail
                 FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[],
                             $6::int[], $7::text[])
                      WITH ORDINALITY AS s(at, actor, source, action, target, status, detail, i)
                 WHERE NOT EXISTS (
                     SELECT 1 FROM audit a
                     WHERE a.at = s.at AND a.actor = s.actor AND a.source = s.source
                       AND a.action = s.action AND a.target = s.target
                       AND a.status = s.status AND a.detail = s.detail)
                 ORDER BY s.i DESC",
                &[
                    &at,
                    &text(|e| &e.actor),
                    &text(|e| &e.source),
                    &text(|e| &e.action),
                    &text(|e| &e.target),
                    &status,
                    &text(|e| &e.detail),
                ],
            )
            .await
            .map_err(map_err)
    }

    /// Copies every series row of every tier; a row of a (node, tier, start) already here stays
    /// (a master writing to PostgreSQL has the newer roll-up). (read, new).
    async fn import_series(&self, source: &impl SeriesStore) -> StoreResult<(u64, u64)> {
        let (mut read, mut added) = (0u64, 0u64);
        for cluster in source.series_clusters().await? {
            for node in source.series_nodes(&cluster).await? {
                for tier in 0..TIERS {
                    let query = SeriesQuery::node(&cluster, &node, tier, i64::MIN, i64::MAX);
                    let rows = source.read_series(&query).await?;
                    if rows.is_empty() {
                        continue;
                    }
                    read += rows.len() as u64;
                    let here: std::collections::HashSet<i64> = self
                        .read_series(&query)
                        .await?
                        .iter()
                        .map(|r| r.start_ms)
                        .collect();
                    let missing: Vec<_> = rows
                        .into_iter()
                        .filter(|r| !here.contains(&r.start_ms))
                        .collect();
                    for batch in missing.chunks(SERIES_BATCH) {
                        added += self.append_series(&cluster, tier, batch).await? as u64;
                    }
                }
            }
        }
        Ok((read, added))
    }

    /// Inserts latest snapshots of nodes that have none here; how many were new.
    async fn import_latest(
        &self,
        cluster_id: &str,
        snapshots: &[NodeMetricsSnapshot],
    ) -> StoreResult<u64> {
        if snapshots.is_empty() {
            return Ok(0);
        }
        let mut ts = Vec::with_capacity(snapshots.len());
        let mut json = Vec::with_capacity(snapshots.len());
        let names: Vec<&str> = snapshots.iter().map(|s| s.node_name.as_str()).collect();
        for s in snapshots {
            ts.push(to_ns(s.timestamp, "snapshot timestamp")?);
            json.push(encode_snapshot(s)?);
        }
        let client = self.client().await?;
        let node_ids = self
            .node_ids(&client, super::ids::NodeTable::Metrics, cluster_id, &names)
            .await?;
        client
            .execute(
                "INSERT INTO latest (node_id, ts, snapshot)
                 SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[])
                 ON CONFLICT (node_id) DO NOTHING",
                &[&node_ids, &ts, &json],
            )
            .await
            .map_err(map_err)
    }

    /// Inserts a command as it is (status, times, result) unless its id exists; whether it was
    /// new. A running command's lease is not carried over: it is offered again at once.
    async fn import_command(&self, c: &CommandRecord) -> StoreResult<bool> {
        if c.command_id.is_empty() || c.cluster_id.is_empty() {
            return Err(StoreError::Invalid(
                "command without id or cluster".to_owned(),
            ));
        }
        let params = serde_json::to_string(&c.params)
            .map_err(|e| StoreError::Invalid(format!("command params: {e}")))?;
        let result = c
            .result
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StoreError::Invalid(format!("command result: {e}")))?;
        let started = c.started_at.map(|t| to_ns(t, "started_at")).transpose()?;
        let finished = c.finished_at.map(|t| to_ns(t, "finished_at")).transpose()?;
        let client = self.client().await?;
        let n = client
            .execute(
                "INSERT INTO command (command_id, cluster_id, action, target_kind,
                     target_namespace, target_name, params, status, created_at, deadline,
                     started_at, finished_at, lease_until, result)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL, $13)
                 ON CONFLICT (command_id) DO NOTHING",
                &[
                    &c.command_id,
                    &c.cluster_id,
                    &c.action,
                    &c.target_kind,
                    &c.target_namespace,
                    &c.target_name,
                    &params,
                    &c.status.as_str(),
                    &to_ns(c.created_at, "created_at")?,
                    &to_ns(c.deadline, "deadline")?,
                    &started,
                    &finished,
                    &result,
                ],
            )
            .await
            .map_err(map_err)?;
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryStore;

    /// Pages of 4 over entries two per instant: every entry read once, in order.
    #[tokio::test]
    async fn audit_pages_lose_and_repeat_nothing_at_shared_instants() {
        let store = MemoryStore::new();
        let entry = |i: i64| AuditEntry {
            at: DateTime::from_timestamp(i / 2, 0).unwrap(),
            actor: "a".to_owned(),
            source: "s".to_owned(),
            action: "x".to_owned(),
            target: i.to_string(),
            status: 200,
            detail: String::new(),
        };
        for i in 0..11 {
            store.append_audit(&entry(i)).await.unwrap();
        }
        let (mut seen, mut to, mut skip) = (Vec::new(), None, 0);
        loop {
            let page = store
                .list_audit(&AuditQuery {
                    to,
                    limit: 4,
                    ..AuditQuery::default()
                })
                .await
                .unwrap();
            seen.extend(page[skip..].iter().map(|e| e.target.clone()));
            match next_audit_page(&page, 4).unwrap() {
                Some((at, n)) => (to, skip) = (Some(at), n),
                None => break,
            }
        }
        let want: Vec<String> = (0..11).rev().map(|i: i64| i.to_string()).collect();
        assert_eq!(seen, want);
        // A full page all at one instant cannot be paged past: an error, not a loop.
        let same: Vec<AuditEntry> = (0..4).map(|_| entry(0)).collect();
        assert!(next_audit_page(&same, 4).is_err());
    }
}
