//! [`NotifyStore`] over SQLite.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, params};

use super::log_table::{LogFilter, newest_first, prune_before};
use super::{SqliteStore, map_err};
use crate::error::{StoreError, StoreResult};
use crate::notify::{
    DeliveryResult, NotificationRecord, NotifiedGroup, NotifyStore, Silence, SilenceMatcher,
    check_notified, check_record, check_silence,
};
use crate::timestamp::{from_ns, to_ns, to_ns_clamped};

const SILENCE_COLUMNS: &str = "id, matchers, starts_at, ends_at, created_by, comment, updated_at";

/// A JSON column read back; a value we did not write is `Corrupt`.
fn json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn to_json<T: serde::Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Backend(e.to_string()))
}

/// A silence row with its matchers still as JSON text.
type SilenceRow = (String, String, i64, i64, String, String, i64);

fn silence_row(r: &Row<'_>) -> rusqlite::Result<SilenceRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn silence(row: SilenceRow) -> StoreResult<Silence> {
    let (id, matchers, starts_at, ends_at, created_by, comment, updated_at) = row;
    let matchers: Vec<SilenceMatcher> = json(&matchers, "silence matchers")?;
    Ok(Silence {
        id,
        matchers,
        starts_at: from_ns(starts_at),
        ends_at: from_ns(ends_at),
        created_by,
        comment,
        updated_at: from_ns(updated_at),
    })
}

type NotifiedRow = (String, String, String, String, i64);

fn notified(row: NotifiedRow) -> StoreResult<NotifiedGroup> {
    let (receiver, group_key, firing, resolved, sent_at) = row;
    Ok(NotifiedGroup {
        firing: json(&firing, "notified firing")?,
        resolved: json(&resolved, "notified resolved")?,
        receiver,
        group_key,
        sent_at: from_ns(sent_at),
    })
}

type RecordRow = (i64, String, String, u32, u32, u32, String, String);

fn record(row: RecordRow) -> StoreResult<NotificationRecord> {
    let (at, receiver, group_key, firing, resolved, attempts, result, error) = row;
    let result = match result.as_str() {
        "sent" => DeliveryResult::Sent,
        "failed" => DeliveryResult::Failed,
        other => {
            return Err(StoreError::Corrupt(format!(
                "notification result {other:?}"
            )));
        }
    };
    Ok(NotificationRecord {
        at: from_ns(at),
        receiver,
        group_key,
        firing,
        resolved,
        attempts,
        result,
        error,
    })
}

#[async_trait::async_trait]
impl NotifyStore for SqliteStore {
    async fn put_silence(&self, silence: &Silence) -> StoreResult<()> {
        check_silence(silence)?;
        let matchers = to_json(&silence.matchers)?;
        let s = silence.clone();
        let starts = to_ns(s.starts_at, "silence starts_at")?;
        let ends = to_ns(s.ends_at, "silence ends_at")?;
        let updated = to_ns(s.updated_at, "silence updated_at")?;
        self.write(move |conn| {
            conn.prepare_cached(&format!(
                "INSERT OR REPLACE INTO silence ({SILENCE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
            ))
            .and_then(|mut st| {
                st.execute(params![
                    s.id,
                    matchers,
                    starts,
                    ends,
                    s.created_by,
                    s.comment,
                    updated
                ])
            })
            .map(drop)
            .map_err(map_err)
        })
        .await
    }

    async fn get_silence(&self, id: &str) -> StoreResult<Option<Silence>> {
        let id = id.to_owned();
        let row = self
            .read(move |conn| {
                conn.prepare_cached(&format!(
                    "SELECT {SILENCE_COLUMNS} FROM silence WHERE id = ?1"
                ))
                .and_then(|mut st| st.query_row([&id], silence_row).optional())
                .map_err(map_err)
            })
            .await?;
        row.map(silence).transpose()
    }

    async fn list_silences(&self) -> StoreResult<Vec<Silence>> {
        let rows = self
            .read(|conn| {
                let mut st = conn
                    .prepare_cached(&format!(
                        "SELECT {SILENCE_COLUMNS} FROM silence ORDER BY starts_at, id"
                    ))
                    .map_err(map_err)?;
                st.query_map([], silence_row)
                    .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                    .map_err(map_err)
            })
            .await?;
        rows.into_iter().map(silence).collect()
    }

    async fn prune_silences(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let before = to_ns_clamped(before);
        self.write(move |conn| {
            conn.prepare_cached("DELETE FROM silence WHERE ends_at < ?1")
                .and_then(|mut st| st.execute([before]))
                .map(|n| n as u64)
                .map_err(map_err)
        })
        .await
    }

    async fn put_notified(&self, entry: &NotifiedGroup) -> StoreResult<()> {
        let sent_at = check_notified(entry)?;
        let firing = to_json(&entry.firing)?;
        let resolved = to_json(&entry.resolved)?;
        let (receiver, group_key) = (entry.receiver.clone(), entry.group_key.clone());
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO notified_group (receiver, group_key, firing, resolved, sent_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut st| st.execute(params![receiver, group_key, firing, resolved, sent_at]))
            .map(drop)
            .map_err(map_err)
        })
        .await
    }

    async fn list_notified(&self) -> StoreResult<Vec<NotifiedGroup>> {
        let rows = self
            .read(|conn| {
                let mut st = conn
                    .prepare_cached(
                        "SELECT receiver, group_key, firing, resolved, sent_at FROM notified_group \
                         ORDER BY receiver, group_key",
                    )
                    .map_err(map_err)?;
                st.query_map([], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
                .and_then(|rows| rows.collect::<Result<Vec<NotifiedRow>, _>>())
                .map_err(map_err)
            })
            .await?;
        rows.into_iter().map(notified).collect()
    }

    async fn delete_notified(&self, receiver: &str, group_key: &str) -> StoreResult<bool> {
        let (receiver, group_key) = (receiver.to_owned(), group_key.to_owned());
        self.write(move |conn| {
            conn.prepare_cached("DELETE FROM notified_group WHERE receiver = ?1 AND group_key = ?2")
                .and_then(|mut st| st.execute([&receiver, &group_key]))
                .map(|n| n > 0)
                .map_err(map_err)
        })
        .await
    }

    async fn append_notification(&self, record: &NotificationRecord) -> StoreResult<()> {
        let at = check_record(record)?;
        let r = record.clone();
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO notification (at, receiver, group_key, firing, resolved, attempts, result, error) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    at,
                    r.receiver,
                    r.group_key,
                    r.firing,
                    r.resolved,
                    r.attempts,
                    r.result.as_str(),
                    r.error
                ])
            })
            .map(drop)
            .map_err(map_err)
        })
        .await
    }

    async fn list_notifications(&self, limit: usize) -> StoreResult<Vec<NotificationRecord>> {
        let filter = LogFilter {
            limit,
            ..LogFilter::default()
        };
        let rows: Vec<RecordRow> = self
            .read(move |conn| {
                newest_first(
                    conn,
                    "notification",
                    "at, receiver, group_key, firing, resolved, attempts, result, error",
                    &filter,
                )
            })
            .await?;
        rows.into_iter().map(record).collect()
    }

    async fn prune_notifications(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let before = to_ns_clamped(before);
        self.write(move |conn| prune_before(conn, "notification", before))
            .await
    }
}
