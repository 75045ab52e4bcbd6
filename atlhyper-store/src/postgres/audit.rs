//! [`AuditLog`] over PostgreSQL: every master appends to one table, so the log is the whole
//! fleet's.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use super::{PgStore, map_err, to_i64};
use crate::audit::{AuditEntry, AuditLog, AuditQuery, check_entry, check_query};
use crate::error::{StoreError, StoreResult};
use crate::timestamp::{from_ns, to_ns_clamped};

fn entry(r: &Row) -> StoreResult<AuditEntry> {
    let status: i32 = r.get(5);
    let status = u16::try_from(status)
        .map_err(|_| StoreError::Corrupt(format!("audit entry status {status}")))?;
    Ok(AuditEntry {
        at: from_ns(r.get(0)),
        actor: r.get(1),
        source: r.get(2),
        action: r.get(3),
        target: r.get(4),
        status,
        detail: r.get(6),
    })
}

#[async_trait::async_trait]
impl AuditLog for PgStore {
    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        let at = check_entry(entry)?;
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "INSERT INTO audit (at, actor, source, action, target, status, detail)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .await
            .map_err(map_err)?;
        client
            .execute(
                &stmt,
                &[
                    &at,
                    &entry.actor,
                    &entry.source,
                    &entry.action,
                    &entry.target,
                    &i32::from(entry.status),
                    &entry.detail,
                ],
            )
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn list_audit(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEntry>> {
        check_query(query)?;
        let from = query.from.map(to_ns_clamped);
        let to = query.to.map(to_ns_clamped);
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT at, actor, source, action, target, status, detail FROM audit
                 WHERE ($1::BIGINT IS NULL OR at >= $1) AND ($2::BIGINT IS NULL OR at <= $2)
                   AND ($3::TEXT IS NULL OR action = $3)
                 ORDER BY at DESC, id DESC LIMIT $4",
                &[&from, &to, &query.action, &to_i64(query.limit)],
            )
            .await
            .map_err(map_err)?;
        rows.iter().map(entry).collect()
    }

    async fn prune_audit(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let before = to_ns_clamped(before);
        let client = self.client().await?;
        client
            .execute("DELETE FROM audit WHERE at < $1", &[&before])
            .await
            .map_err(map_err)
    }
}
