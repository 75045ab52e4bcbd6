//! [`AuditLog`] over SQLite.

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{SqliteStore, map_err};
use crate::audit::{AuditEntry, AuditLog, AuditQuery, check_entry, check_query};
use crate::error::{StoreError, StoreResult};
use crate::timestamp::{from_ns, to_ns_clamped};

/// An entry row: at, actor, source, action, target, status, detail.
type EntryRow = (i64, String, String, String, String, i64, String);

fn entry(row: EntryRow) -> StoreResult<AuditEntry> {
    let (at, actor, source, action, target, status, detail) = row;
    let status = u16::try_from(status)
        .map_err(|_| StoreError::Corrupt(format!("audit entry status {status}")))?;
    Ok(AuditEntry {
        at: from_ns(at),
        actor,
        source,
        action,
        target,
        status,
        detail,
    })
}

#[async_trait::async_trait]
impl AuditLog for SqliteStore {
    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        let at = check_entry(entry)?;
        let e = entry.clone();
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO audit (at, actor, source, action, target, status, detail) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    at, e.actor, e.source, e.action, e.target, e.status, e.detail
                ])
            })
            .map(drop)
            .map_err(map_err)
        })
        .await
    }

    async fn list_audit(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEntry>> {
        check_query(query)?;
        let from = query.from.map(to_ns_clamped);
        let to = query.to.map(to_ns_clamped);
        let action = query.action.clone();
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        let rows = self
            .read(move |conn| {
                let mut st = conn
                    .prepare_cached(
                        "SELECT at, actor, source, action, target, status, detail FROM audit \
                         WHERE (?1 IS NULL OR at >= ?1) AND (?2 IS NULL OR at <= ?2) \
                           AND (?3 IS NULL OR action = ?3) \
                         ORDER BY at DESC, id DESC LIMIT ?4",
                    )
                    .map_err(map_err)?;
                st.query_map(params![from, to, action, limit], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                    ))
                })
                .and_then(|rows| rows.collect::<Result<Vec<EntryRow>, _>>())
                .map_err(map_err)
            })
            .await?;
        rows.into_iter().map(entry).collect()
    }

    async fn prune_audit(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let before = to_ns_clamped(before);
        self.write(move |conn| {
            conn.prepare_cached("DELETE FROM audit WHERE at < ?1")
                .and_then(|mut st| st.execute([before]))
                .map(|n| n as u64)
                .map_err(map_err)
        })
        .await
    }
}
