//! [`CommandQueue`] over SQLite. Rows are read into [`StoredCommand`]s and changed by the same
//! rules as the in-memory engine, then written back in the same transaction.

use std::fmt::Write as _;
use std::time::Duration;

use atlhyper_model::{CommandRecord, CommandResult, CommandStatus};
use chrono::{DateTime, Utc};
use rusqlite::types::Value;
use rusqlite::{Connection, Row, TransactionBehavior, params, params_from_iter};

use super::{SqliteStore, map_err};
use crate::commands::{
    CommandFilter, CommandQueue, DEFAULT_LIST_LIMIT, StoredCommand, duplicate, new_command,
    not_found,
};
use crate::error::{StoreError, StoreResult};
use crate::timestamp::{from_ns, to_ns};

const COLUMNS: &str = "command_id, cluster_id, action, target_kind, target_namespace, \
     target_name, params, status, created_at, deadline, started_at, finished_at, lease_until, \
     result";

/// A row read raw (so decoding errors become `Corrupt`, not engine errors).
struct RawRow {
    command_id: String,
    cluster_id: String,
    action: String,
    target_kind: String,
    target_namespace: String,
    target_name: String,
    params: String,
    status: String,
    created_at: i64,
    deadline: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    lease_until: Option<i64>,
    result: Option<String>,
}

fn raw(r: &Row<'_>) -> rusqlite::Result<RawRow> {
    Ok(RawRow {
        command_id: r.get(0)?,
        cluster_id: r.get(1)?,
        action: r.get(2)?,
        target_kind: r.get(3)?,
        target_namespace: r.get(4)?,
        target_name: r.get(5)?,
        params: r.get(6)?,
        status: r.get(7)?,
        created_at: r.get(8)?,
        deadline: r.get(9)?,
        started_at: r.get(10)?,
        finished_at: r.get(11)?,
        lease_until: r.get(12)?,
        result: r.get(13)?,
    })
}

impl RawRow {
    fn decode(self) -> StoreResult<StoredCommand> {
        let corrupt = |what: &str, e: &dyn std::fmt::Display| {
            StoreError::Corrupt(format!("command {}: stored {what}: {e}", self.command_id))
        };
        let params = serde_json::from_str(&self.params).map_err(|e| corrupt("params", &e))?;
        let status: CommandStatus = self.status.parse().map_err(|e| corrupt("status", &e))?;
        let result = self
            .result
            .as_deref()
            .map(serde_json::from_str::<CommandResult>)
            .transpose()
            .map_err(|e| corrupt("result", &e))?;
        Ok(StoredCommand {
            record: CommandRecord {
                command_id: self.command_id,
                cluster_id: self.cluster_id,
                action: self.action,
                target_kind: self.target_kind,
                target_namespace: self.target_namespace,
                target_name: self.target_name,
                params,
                status,
                created_at: from_ns(self.created_at),
                deadline: from_ns(self.deadline),
                started_at: self.started_at.map(from_ns),
                finished_at: self.finished_at.map(from_ns),
                result,
            },
            lease_until: self.lease_until,
        })
    }
}

fn query(conn: &Connection, sql: &str, values: Vec<Value>) -> StoreResult<Vec<StoredCommand>> {
    let mut stmt = conn.prepare_cached(sql).map_err(map_err)?;
    let rows = stmt
        .query_map(params_from_iter(values), raw)
        .map_err(map_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(map_err)?;
    rows.into_iter().map(RawRow::decode).collect()
}

/// Writes back what the rules change: status, times, lease, result.
fn update(conn: &Connection, c: &StoredCommand) -> StoreResult<()> {
    let r = &c.record;
    let result = r
        .result
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| StoreError::Invalid(format!("command result: {e}")))?;
    let started = r.started_at.map(|t| to_ns(t, "started_at")).transpose()?;
    let finished = r.finished_at.map(|t| to_ns(t, "finished_at")).transpose()?;
    conn.prepare_cached(
        "UPDATE command SET status = ?2, started_at = ?3, finished_at = ?4, lease_until = ?5,
             result = ?6
         WHERE command_id = ?1",
    )
    .and_then(|mut s| {
        s.execute(params![
            r.command_id,
            r.status.as_str(),
            started,
            finished,
            c.lease_until,
            result
        ])
    })
    .map_err(map_err)?;
    Ok(())
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[async_trait::async_trait]
impl CommandQueue for SqliteStore {
    async fn enqueue(&self, command: &CommandRecord) -> StoreResult<()> {
        let stored = new_command(command)?;
        let params_json = serde_json::to_string(&stored.record.params)
            .map_err(|e| StoreError::Invalid(format!("command params: {e}")))?;
        let created_at = to_ns(stored.record.created_at, "created_at")?;
        let deadline = to_ns(stored.record.deadline, "deadline")?;
        self.write(move |conn| {
            let r = &stored.record;
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(map_err)?;
            let inserted = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO command (command_id, cluster_id, action, target_kind,
                         target_namespace, target_name, params, status, created_at, deadline)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        r.command_id,
                        r.cluster_id,
                        r.action,
                        r.target_kind,
                        r.target_namespace,
                        r.target_name,
                        params_json,
                        r.status.as_str(),
                        created_at,
                        deadline,
                    ])
                });
            let inserted = inserted.map_err(map_err)?;
            if inserted == 0 {
                return Err(duplicate(&r.command_id));
            }
            tx.commit().map_err(map_err)
        })
        .await
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
        let cluster_id = cluster_id.to_owned();
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(map_err)?;
            let mut offered = query(
                &tx,
                &format!(
                    "SELECT {COLUMNS} FROM command
                     WHERE cluster_id = ?1 AND deadline >= ?2
                       AND (status = 'pending'
                            OR (status = 'running' AND (lease_until IS NULL OR lease_until <= ?2)))
                     ORDER BY created_at, command_id LIMIT ?3"
                ),
                vec![
                    Value::Text(cluster_id),
                    Value::Integer(now_ns),
                    Value::Integer(to_i64(max)),
                ],
            )?;
            let mut out = Vec::with_capacity(offered.len());
            for c in &mut offered {
                c.lease(now, now_ns, lease);
                update(&tx, c)?;
                out.push(c.record.clone());
            }
            tx.commit().map_err(map_err)?;
            Ok(out)
        })
        .await
    }

    async fn complete(
        &self,
        result: &CommandResult,
        now: DateTime<Utc>,
    ) -> StoreResult<CommandRecord> {
        to_ns(now, "now")?;
        let result = result.clone();
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(map_err)?;
            let found = query(
                &tx,
                &format!("SELECT {COLUMNS} FROM command WHERE command_id = ?1"),
                vec![Value::Text(result.command_id.clone())],
            )?;
            let mut c = match found.into_iter().next() {
                Some(c) if c.record.cluster_id == result.cluster_id => c,
                _ => return Err(not_found(&result.command_id)),
            };
            if c.complete(&result, now) {
                update(&tx, &c)?;
                tx.commit().map_err(map_err)?;
            }
            Ok(c.record)
        })
        .await
    }

    async fn get(&self, command_id: &str) -> StoreResult<Option<CommandRecord>> {
        let command_id = command_id.to_owned();
        self.read(move |conn| {
            let found = query(
                conn,
                &format!("SELECT {COLUMNS} FROM command WHERE command_id = ?1"),
                vec![Value::Text(command_id)],
            )?;
            Ok(found.into_iter().next().map(|c| c.record))
        })
        .await
    }

    async fn list(&self, filter: &CommandFilter) -> StoreResult<Vec<CommandRecord>> {
        let mut sql = format!("SELECT {COLUMNS} FROM command WHERE 1");
        let mut values = Vec::new();
        if let Some(c) = &filter.cluster_id {
            values.push(Value::Text(c.clone()));
            let _ = write!(sql, " AND cluster_id = ?{}", values.len());
        }
        if let Some(s) = filter.status {
            values.push(Value::Text(s.as_str().to_owned()));
            let _ = write!(sql, " AND status = ?{}", values.len());
        }
        if let Some(a) = &filter.action {
            values.push(Value::Text(a.clone()));
            let _ = write!(sql, " AND action = ?{}", values.len());
        }
        values.push(Value::Integer(to_i64(
            filter.limit.unwrap_or(DEFAULT_LIST_LIMIT),
        )));
        values.push(Value::Integer(to_i64(filter.offset)));
        let _ = write!(
            sql,
            " ORDER BY created_at DESC, command_id DESC LIMIT ?{} OFFSET ?{}",
            values.len() - 1,
            values.len()
        );
        self.read(move |conn| {
            Ok(query(conn, &sql, values)?
                .into_iter()
                .map(|c| c.record)
                .collect())
        })
        .await
    }

    async fn expire(&self, now: DateTime<Utc>) -> StoreResult<Vec<CommandRecord>> {
        let now_ns = to_ns(now, "now")?;
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(map_err)?;
            let mut overdue = query(
                &tx,
                &format!(
                    "SELECT {COLUMNS} FROM command
                     WHERE status IN ('pending', 'running') AND deadline < ?1
                     ORDER BY created_at, command_id"
                ),
                vec![Value::Integer(now_ns)],
            )?;
            for c in &mut overdue {
                c.time_out(now);
                update(&tx, c)?;
            }
            tx.commit().map_err(map_err)?;
            Ok(overdue.into_iter().map(|c| c.record).collect())
        })
        .await
    }

    async fn count_open(&self, cluster_id: &str) -> StoreResult<u64> {
        let cluster_id = cluster_id.to_owned();
        self.read(move |conn| {
            // Served by the command_take index (cluster_id, status, ...).
            let n: i64 = conn
                .prepare_cached(
                    "SELECT count(*) FROM command
                     WHERE cluster_id = ?1 AND status IN ('pending', 'running')",
                )
                .and_then(|mut s| s.query_row([cluster_id], |r| r.get(0)))
                .map_err(map_err)?;
            u64::try_from(n)
                .map_err(|_| StoreError::Corrupt(format!("open command count {n} is negative")))
        })
        .await
    }

    async fn prune_commands(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let before_ns = to_ns(before, "prune before")?;
        self.write(move |conn| {
            let n = conn
                .execute(
                    "DELETE FROM command
                     WHERE status IN ('success', 'failed', 'timeout') AND finished_at < ?1",
                    [before_ns],
                )
                .map_err(map_err)?;
            Ok(n as u64)
        })
        .await
    }
}
