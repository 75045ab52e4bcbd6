//! Copying another engine's contents into PostgreSQL (`atlhyper-master migrate`): latest
//! snapshots, history, commands, the agent registry, alert rules, running alerts and silences.
//!
//! Safe to run twice, and after masters started writing to PostgreSQL: history points and
//! commands already there are skipped, a latest snapshot already there wins over the imported
//! one, agent times only move forward, rules, running alerts and silences are replaced by id.

use std::time::Duration;

use atlhyper_model::{CommandRecord, NodeMetricsSnapshot};
use chrono::{DateTime, Utc};

use super::{PgStore, map_err};
use crate::agents::{AgentRegistry, AgentSeen, SeenVia};
use crate::alerts::{AlertChanges, AlertStore};
use crate::commands::{CommandFilter, CommandQueue};
use crate::error::{StoreError, StoreResult};
use crate::metrics::{HistoryQuery, MetricsStore, encode_snapshot};
use crate::notify::NotifyStore;
use crate::timestamp::to_ns;

/// History points written per batch.
const HISTORY_BATCH: usize = 5_000;
/// Commands read per page.
const COMMAND_PAGE: usize = 1_000;

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
}

impl std::fmt::Display for ImportReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "latest {} read, {} new; history {} points read, {} new; commands {} read, {} new; \
             {} agents; {} alert rules, running alerts and silences",
            self.latest.0,
            self.latest.1,
            self.history.0,
            self.history.1,
            self.commands.0,
            self.commands.1,
            self.agents,
            self.alerting
        )
    }
}

/// Every trait an engine to import from has.
pub trait ImportSource:
    MetricsStore + CommandQueue + AgentRegistry + AlertStore + NotifyStore
{
}

impl<T: MetricsStore + CommandQueue + AgentRegistry + AlertStore + NotifyStore> ImportSource for T {}

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
        Ok(report)
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
        let ids = self.node_ids(&client, cluster_id, &names).await?;
        let node_ids: Vec<i64> = names.iter().map(|n| ids[*n]).collect();
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
