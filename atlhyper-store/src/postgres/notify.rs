//! [`NotifyStore`] over PostgreSQL.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use super::{PgStore, map_err, to_i64};
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

/// A stored `BIGINT` back as `u32`.
fn small(n: i64, what: &str) -> StoreResult<u32> {
    u32::try_from(n).map_err(|_| StoreError::Corrupt(format!("{what} {n} out of range")))
}

fn silence(r: &Row) -> StoreResult<Silence> {
    let matchers: Vec<SilenceMatcher> = json(r.get(1), "silence matchers")?;
    Ok(Silence {
        id: r.get(0),
        matchers,
        starts_at: from_ns(r.get(2)),
        ends_at: from_ns(r.get(3)),
        created_by: r.get(4),
        comment: r.get(5),
        updated_at: from_ns(r.get(6)),
    })
}

fn record(r: &Row) -> StoreResult<NotificationRecord> {
    let result = match r.get::<_, &str>(6) {
        "sent" => DeliveryResult::Sent,
        "failed" => DeliveryResult::Failed,
        other => {
            return Err(StoreError::Corrupt(format!(
                "notification result {other:?}"
            )));
        }
    };
    Ok(NotificationRecord {
        at: from_ns(r.get(0)),
        receiver: r.get(1),
        group_key: r.get(2),
        firing: small(r.get(3), "notification firing")?,
        resolved: small(r.get(4), "notification resolved")?,
        attempts: small(r.get(5), "notification attempts")?,
        result,
        error: r.get(7),
    })
}

#[async_trait::async_trait]
impl NotifyStore for PgStore {
    async fn put_silence(&self, silence: &Silence) -> StoreResult<()> {
        check_silence(silence)?;
        let matchers = to_json(&silence.matchers)?;
        let starts = to_ns(silence.starts_at, "silence starts_at")?;
        let ends = to_ns(silence.ends_at, "silence ends_at")?;
        let updated = to_ns(silence.updated_at, "silence updated_at")?;
        let client = self.client().await?;
        client
            .execute(
                &format!(
                    "INSERT INTO silence ({SILENCE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (id) DO UPDATE SET matchers = excluded.matchers,
                         starts_at = excluded.starts_at, ends_at = excluded.ends_at,
                         created_by = excluded.created_by, comment = excluded.comment,
                         updated_at = excluded.updated_at"
                ),
                &[
                    &silence.id,
                    &matchers,
                    &starts,
                    &ends,
                    &silence.created_by,
                    &silence.comment,
                    &updated,
                ],
            )
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn get_silence(&self, id: &str) -> StoreResult<Option<Silence>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {SILENCE_COLUMNS} FROM silence WHERE id = $1"),
                &[&id],
            )
            .await
            .map_err(map_err)?;
        row.as_ref().map(silence).transpose()
    }

    async fn list_silences(&self) -> StoreResult<Vec<Silence>> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!("SELECT {SILENCE_COLUMNS} FROM silence ORDER BY starts_at, id"),
                &[],
            )
            .await
            .map_err(map_err)?;
        rows.iter().map(silence).collect()
    }

    async fn prune_silences(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let before = to_ns_clamped(before);
        let client = self.client().await?;
        client
            .execute("DELETE FROM silence WHERE ends_at < $1", &[&before])
            .await
            .map_err(map_err)
    }

    async fn put_notified(&self, entry: &NotifiedGroup) -> StoreResult<()> {
        let sent_at = check_notified(entry)?;
        let firing = to_json(&entry.firing)?;
        let resolved = to_json(&entry.resolved)?;
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO notified_group (receiver, group_key, firing, resolved, sent_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (receiver, group_key) DO UPDATE SET firing = excluded.firing,
                     resolved = excluded.resolved, sent_at = excluded.sent_at",
                &[
                    &entry.receiver,
                    &entry.group_key,
                    &firing,
                    &resolved,
                    &sent_at,
                ],
            )
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn list_notified(&self) -> StoreResult<Vec<NotifiedGroup>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT receiver, group_key, firing, resolved, sent_at FROM notified_group
                 ORDER BY receiver, group_key",
                &[],
            )
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(NotifiedGroup {
                    receiver: r.get(0),
                    group_key: r.get(1),
                    firing: json(r.get(2), "notified firing")?,
                    resolved: json(r.get(3), "notified resolved")?,
                    sent_at: from_ns(r.get(4)),
                })
            })
            .collect()
    }

    async fn delete_notified(&self, receiver: &str, group_key: &str) -> StoreResult<bool> {
        let client = self.client().await?;
        let n = client
            .execute(
                "DELETE FROM notified_group WHERE receiver = $1 AND group_key = $2",
                &[&receiver, &group_key],
            )
            .await
            .map_err(map_err)?;
        Ok(n > 0)
    }

    async fn append_notification(&self, record: &NotificationRecord) -> StoreResult<()> {
        let at = check_record(record)?;
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO notification (at, receiver, group_key, firing, resolved, attempts,
                     result, error)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &at,
                    &record.receiver,
                    &record.group_key,
                    &i64::from(record.firing),
                    &i64::from(record.resolved),
                    &i64::from(record.attempts),
                    &record.result.as_str(),
                    &record.error,
                ],
            )
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn list_notifications(&self, limit: usize) -> StoreResult<Vec<NotificationRecord>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT at, receiver, group_key, firing, resolved, attempts, result, error
                 FROM notification ORDER BY at DESC, id DESC LIMIT $1",
                &[&to_i64(limit)],
            )
            .await
            .map_err(map_err)?;
        rows.iter().map(record).collect()
    }

    async fn prune_notifications(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let before = to_ns_clamped(before);
        let client = self.client().await?;
        client
            .execute("DELETE FROM notification WHERE at < $1", &[&before])
            .await
            .map_err(map_err)
    }
}
