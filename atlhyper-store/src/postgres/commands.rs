//! [`CommandQueue`] over PostgreSQL. Rows are read into [`StoredCommand`]s and changed by the
//! same rules as the other engines, then written back in the same transaction; `take` locks the
//! rows it leases with `FOR UPDATE SKIP LOCKED`, so two masters never lease one command twice.

use std::fmt::Write as _;
use std::time::Duration;

use atlhyper_model::{CommandRecord, CommandResult, CommandStatus};
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{PgStore, count, map_err, to_i64};
use crate::commands::{
    CommandFilter, CommandQueue, DEFAULT_LIST_LIMIT, StoredCommand, duplicate, new_command,
    not_found,
};
use crate::error::{StoreError, StoreResult};
use crate::timestamp::{from_ns, to_ns};

const COLUMNS: &str = "command_id, cluster_id, action, target_kind, target_namespace, \
     target_name, params, status, created_at, deadline, started_at, finished_at, lease_until, \
     result";

/// Decodes a row of [`COLUMNS`]; what we did not write is `Corrupt`.
fn decode(r: &Row) -> StoreResult<StoredCommand> {
    let command_id: String = r.get(0);
    let corrupt = |what: &str, e: &dyn std::fmt::Display| {
        StoreError::Corrupt(format!("command {command_id}: stored {what}: {e}"))
    };
    let params = serde_json::from_str(r.get::<_, &str>(6)).map_err(|e| corrupt("params", &e))?;
    let status: CommandStatus = r
        .get::<_, &str>(7)
        .parse()
        .map_err(|e| corrupt("status", &e))?;
    let result = r
        .get::<_, Option<&str>>(13)
        .map(serde_json::from_str::<CommandResult>)
        .transpose()
        .map_err(|e| corrupt("result", &e))?;
    Ok(StoredCommand {
        record: CommandRecord {
            cluster_id: r.get(1),
            action: r.get(2),
            target_kind: r.get(3),
            target_namespace: r.get(4),
            target_name: r.get(5),
            params,
            status,
            created_at: from_ns(r.get(8)),
            deadline: from_ns(r.get(9)),
            started_at: r.get::<_, Option<i64>>(10).map(from_ns),
            finished_at: r.get::<_, Option<i64>>(11).map(from_ns),
            result,
            command_id,
        },
        lease_until: r.get(12),
    })
}

async fn query(
    client: &impl GenericClient,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> StoreResult<Vec<StoredCommand>> {
    let stmt = client.prepare_cached(sql).await.map_err(map_err)?;
    let rows = client.query(&stmt, params).await.map_err(map_err)?;
    rows.iter().map(decode).collect()
}

/// Writes back what the rules change: status, times, lease, result.
async fn update(client: &impl GenericClient, c: &StoredCommand) -> StoreResult<()> {
    let r = &c.record;
    let result = r
        .result
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| StoreError::Invalid(format!("command result: {e}")))?;
    let started = r.started_at.map(|t| to_ns(t, "started_at")).transpose()?;
    let finished = r.finished_at.map(|t| to_ns(t, "finished_at")).transpose()?;
    let stmt = client
        .prepare_cached(
            "UPDATE command SET status = $2, started_at = $3, finished_at = $4, lease_until = $5,
                 result = $6
             WHERE command_id = $1",
        )
        .await
        .map_err(map_err)?;
    client
        .execute(
            &stmt,
            &[
                &r.command_id,
                &r.status.as_str(),
                &started,
                &finished,
                &c.lease_until,
                &result,
            ],
        )
        .await
        .map_err(map_err)?;
    Ok(())
}

#[async_trait::async_trait]
impl CommandQueue for PgStore {
    async fn enqueue(&self, command: &CommandRecord) -> StoreResult<()> {
        let stored = new_command(command)?;
        let r = &stored.record;
        let params = serde_json::to_string(&r.params)
            .map_err(|e| StoreError::Invalid(format!("command params: {e}")))?;
        let created_at = to_ns(r.created_at, "created_at")?;
        let deadline = to_ns(r.deadline, "deadline")?;
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "INSERT INTO command (command_id, cluster_id, action, target_kind,
                     target_namespace, target_name, params, status, created_at, deadline)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 ON CONFLICT (command_id) DO NOTHING",
            )
            .await
            .map_err(map_err)?;
        let inserted = client
            .execute(
                &stmt,
                &[
                    &r.command_id,
                    &r.cluster_id,
                    &r.action,
                    &r.target_kind,
                    &r.target_namespace,
                    &r.target_name,
                    &params,
                    &r.status.as_str(),
                    &created_at,
                    &deadline,
                ],
            )
            .await
            .map_err(map_err)?;
        if inserted == 0 {
            return Err(duplicate(&r.command_id));
        }
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
        if max == 0 {
            return Ok(Vec::new());
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let mut offered = query(
            &tx,
            &format!(
                "SELECT {COLUMNS} FROM command
                 WHERE cluster_id = $1 AND deadline >= $2
                   AND (status = 'pending'
                        OR (status = 'running' AND (lease_until IS NULL OR lease_until <= $2)))
                 ORDER BY created_at, command_id LIMIT $3
                 FOR UPDATE SKIP LOCKED"
            ),
            &[&cluster_id, &now_ns, &to_i64(max)],
        )
        .await?;
        let mut out = Vec::with_capacity(offered.len());
        for c in &mut offered {
            c.lease(now, now_ns, lease);
            update(&tx, c).await?;
            out.push(c.record.clone());
        }
        tx.commit().await.map_err(map_err)?;
        Ok(out)
    }

    async fn complete(
        &self,
        result: &CommandResult,
        now: DateTime<Utc>,
    ) -> StoreResult<CommandRecord> {
        to_ns(now, "now")?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let found = query(
            &tx,
            &format!("SELECT {COLUMNS} FROM command WHERE command_id = $1 FOR UPDATE"),
            &[&result.command_id],
        )
        .await?;
        let mut c = match found.into_iter().next() {
            Some(c) if c.record.cluster_id == result.cluster_id => c,
            _ => return Err(not_found(&result.command_id)),
        };
        if c.complete(result, now) {
            update(&tx, &c).await?;
            tx.commit().await.map_err(map_err)?;
        }
        Ok(c.record)
    }

    async fn get(&self, command_id: &str) -> StoreResult<Option<CommandRecord>> {
        let client = self.client().await?;
        let found = query(
            &client,
            &format!("SELECT {COLUMNS} FROM command WHERE command_id = $1"),
            &[&command_id],
        )
        .await?;
        Ok(found.into_iter().next().map(|c| c.record))
    }

    async fn list(&self, filter: &CommandFilter) -> StoreResult<Vec<CommandRecord>> {
        let status = filter.status.map(|s| s.as_str());
        let limit = to_i64(filter.limit.unwrap_or(DEFAULT_LIST_LIMIT));
        let offset = to_i64(filter.offset);
        let mut sql = format!("SELECT {COLUMNS} FROM command WHERE true");
        let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
        if let Some(c) = &filter.cluster_id {
            params.push(c);
            let _ = write!(sql, " AND cluster_id = ${}", params.len());
        }
        if let Some(s) = &status {
            params.push(s);
            let _ = write!(sql, " AND status = ${}", params.len());
        }
        if let Some(a) = &filter.action {
            params.push(a);
            let _ = write!(sql, " AND action = ${}", params.len());
        }
        params.push(&limit);
        params.push(&offset);
        let _ = write!(
            sql,
            " ORDER BY created_at DESC, command_id DESC LIMIT ${} OFFSET ${}",
            params.len() - 1,
            params.len()
        );
        let client = self.client().await?;
        Ok(query(&client, &sql, &params)
            .await?
            .into_iter()
            .map(|c| c.record)
            .collect())
    }

    async fn expire(&self, now: DateTime<Utc>) -> StoreResult<Vec<CommandRecord>> {
        let now_ns = to_ns(now, "now")?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let mut overdue = query(
            &tx,
            &format!(
                "SELECT {COLUMNS} FROM command
                 WHERE status IN ('pending', 'running') AND deadline < $1
                 ORDER BY created_at, command_id
                 FOR UPDATE"
            ),
            &[&now_ns],
        )
        .await?;
        for c in &mut overdue {
            c.time_out(now);
            update(&tx, c).await?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(overdue.into_iter().map(|c| c.record).collect())
    }

    async fn count_open(&self, cluster_id: &str) -> StoreResult<u64> {
        let client = self.client().await?;
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM command
                 WHERE cluster_id = $1 AND status IN ('pending', 'running')",
                &[&cluster_id],
            )
            .await
            .map_err(map_err)?
            .get(0);
        count(n, "open command count")
    }

    async fn prune_commands(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let before = to_ns(before, "prune before")?;
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM command
                 WHERE status IN ('success', 'failed', 'timeout') AND finished_at < $1",
                &[&before],
            )
            .await
            .map_err(map_err)
    }
}
