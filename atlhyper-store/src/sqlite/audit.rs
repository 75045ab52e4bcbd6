//! [`AuditLog`] over SQLite.

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::log_table::{LogFilter, newest_first, prune_before};
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
        let filter = LogFilter {
            from: query.from.map(to_ns_clamped),
            to: query.to.map(to_ns_clamped),
            equal: query.action.clone().map(|action| ("action", action)),
            limit: query.limit,
        };
        let rows: Vec<EntryRow> = self
            .read(move |conn| {
                newest_first(
                    conn,
                    "audit",
                    "at, actor, source, action, target, status, detail",
                    &filter,
                )
            })
            .await?;
        rows.into_iter().map(entry).collect()
    }

    async fn prune_audit(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let before = to_ns_clamped(before);
        self.write(move |conn| prune_before(conn, "audit", before))
            .await
    }
}
