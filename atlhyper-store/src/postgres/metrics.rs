//! [`MetricsStore`] over PostgreSQL: latest one row per node, history partitioned by day.

use std::collections::HashMap;

use atlhyper_model::{MetricsDataPoint, NodeMetricsSnapshot};
use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::{GenericClient, Object};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use super::ids::NodeTable;
use super::{PgStore, count, map_err};
use crate::error::{StoreError, StoreResult};
use crate::metrics::{
    HistoryQuery, HistoryRow, MetricsStore, NodeKey, POINT_FIELDS, Range, decode_snapshot,
    encode_snapshot, shape,
};
use crate::timestamp::{from_ns, to_ns, to_ns_clamped};

/// Nanoseconds in a day.
const DAY_NS: i64 = 86_400 * 1_000_000_000;
/// Advisory lock key of partition creation and dropping ("ATLH" and 2).
const PARTITION_LOCK: i64 = 0x4154_4C48_0000_0002;
/// Name prefix of the history partitions.
const PARTITION_PREFIX: &str = "history_p";

/// Snapshots per statement of a latest upsert (see `upsert_latest`).
const UPSERT_CHUNK: usize = 200;

/// Polls `f` once with a waker that does nothing: a tokio-postgres request is handed to the
/// connection on its first poll. `Some` when it finished at once; otherwise await it later
/// (that poll registers the real waker).
fn poll_once<F: Future + Unpin>(f: &mut F) -> Option<F::Output> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::Pin::new(f).poll(&mut cx) {
        std::task::Poll::Ready(out) => Some(out),
        std::task::Poll::Pending => None,
    }
}

/// The day (since the epoch, floor) of a timestamp in nanoseconds.
fn day_of(ts: i64) -> i64 {
    ts.div_euclid(DAY_NS)
}

/// The partition of day `day`: its name and `[from, to)` in nanoseconds. Days of storable
/// timestamps only (years 1677 to 2262); bounds saturate at the ends of `i64`.
fn partition(day: i64) -> (String, i64, i64) {
    let date = DateTime::<Utc>::from_timestamp(day * 86_400, 0)
        .map_or_else(|| "invalid".to_owned(), |d| d.format("%Y%m%d").to_string());
    let from = day.saturating_mul(DAY_NS);
    let to = day.saturating_add(1).saturating_mul(DAY_NS);
    (format!("{PARTITION_PREFIX}{date}"), from, to)
}

/// The day of a partition name, `None` for a table that is not one of ours.
fn day_of_partition(name: &str) -> Option<i64> {
    let date = NaiveDate::parse_from_str(name.strip_prefix(PARTITION_PREFIX)?, "%Y%m%d").ok()?;
    let midnight = date.and_hms_opt(0, 0, 0)?.and_utc();
    Some(midnight.timestamp().div_euclid(86_400))
}

/// Every history partition: (day, name), oldest first.
pub(super) async fn partitions(client: &impl GenericClient) -> StoreResult<Vec<(i64, String)>> {
    let rows = client
        .query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'history'::regclass",
            &[],
        )
        .await
        .map_err(map_err)?;
    let mut out: Vec<(i64, String)> = rows
        .iter()
        .filter_map(|r| {
            let name: String = r.get(0);
            day_of_partition(&name).map(|day| (day, name))
        })
        .collect();
    out.sort();
    Ok(out)
}

impl PgStore {
    /// Creates the history partitions of `days` that this process does not know to exist.
    async fn ensure_days(&self, client: &mut Object, days: &[i64]) -> StoreResult<()> {
        // TimescaleDB creates its chunks itself.
        if self.is_hypertable() {
            return Ok(());
        }
        let missing: Vec<i64> = {
            let known = self.days.lock();
            days.iter()
                .copied()
                .filter(|d| !known.contains(d))
                .collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let tx = client.transaction().await.map_err(map_err)?;
        // One creator at a time: concurrent `CREATE TABLE IF NOT EXISTS` of one name can fail.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PARTITION_LOCK])
            .await
            .map_err(map_err)?;
        for &day in &missing {
            let (name, from, to) = partition(day);
            tx.batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {name} PARTITION OF history
                 FOR VALUES FROM ({from}) TO ({to})"
            ))
            .await
            .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        self.days.lock().extend(missing);
        Ok(())
    }

    /// Inserts history rows (columns as arrays); how many were new.
    async fn insert_history(
        &self,
        client: &Object,
        ids: &[i64],
        ts: &[i64],
        columns: &[Vec<f64>; POINT_FIELDS],
    ) -> Result<u64, tokio_postgres::Error> {
        let stmt = client
            .prepare_cached(
                "INSERT INTO history (node_id, ts, cpu_usage, memory_usage, disk_usage,
                     disk_io_read, disk_io_write, network_rx, network_tx, cpu_temp, load_1)
                 SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::float8[], $4::float8[],
                     $5::float8[], $6::float8[], $7::float8[], $8::float8[], $9::float8[],
                     $10::float8[], $11::float8[])
                 ON CONFLICT DO NOTHING",
            )
            .await?;
        let c = columns;
        client
            .execute(
                &stmt,
                &[
                    &ids, &ts, &c[0], &c[1], &c[2], &c[3], &c[4], &c[5], &c[6], &c[7], &c[8],
                ],
            )
            .await
    }
}

impl PgStore {
    /// The retention prune of a hypertable: whole chunks older than `before` dropped, the rows
    /// before it in the chunk it falls in deleted; how many rows.
    async fn prune_hypertable(&self, before: i64) -> StoreResult<u64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        let n: i64 = tx
            .query_one("SELECT count(*) FROM history WHERE ts < $1", &[&before])
            .await
            .map_err(map_err)?
            .get(0);
        tx.execute(
            "SELECT drop_chunks('history', older_than => $1)",
            &[&before],
        )
        .await
        .map_err(map_err)?;
        tx.execute("DELETE FROM history WHERE ts < $1", &[&before])
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        count(n, "history rows")
    }
}

fn check_cluster(cluster_id: &str) -> StoreResult<()> {
    if cluster_id.is_empty() {
        return Err(StoreError::Invalid("empty cluster_id".to_owned()));
    }
    Ok(())
}

fn strings(rows: &[tokio_postgres::Row]) -> Vec<String> {
    rows.iter().map(|r| r.get(0)).collect()
}

#[async_trait::async_trait]
impl MetricsStore for PgStore {
    async fn upsert_latest(
        &self,
        cluster_id: &str,
        snapshots: &[NodeMetricsSnapshot],
    ) -> StoreResult<()> {
        check_cluster(cluster_id)?;
        // Within a batch the later entry of a node wins: one row per node per statement.
        let mut last: HashMap<&str, usize> = HashMap::with_capacity(snapshots.len());
        let mut order: Vec<&str> = Vec::with_capacity(snapshots.len());
        for (i, s) in snapshots.iter().enumerate() {
            if s.node_name.is_empty() {
                return Err(StoreError::Invalid("snapshot without node_name".to_owned()));
            }
            to_ns(s.timestamp, "snapshot timestamp")?;
            if last.insert(s.node_name.as_str(), i).is_none() {
                order.push(s.node_name.as_str());
            }
        }
        if order.is_empty() {
            return Ok(());
        }
        // An entry replaced by a later one is not stored, but a bad one still refuses the batch.
        for (i, s) in snapshots.iter().enumerate() {
            if last[s.node_name.as_str()] != i {
                encode_snapshot(s)?;
            }
        }
        let mut client = self.client().await?;
        let node_ids = self
            .node_ids(&client, NodeTable::Metrics, cluster_id, &order)
            .await?;
        // Encoding 1000 snapshots as JSON takes as long as the database takes to store them:
        // the batch goes in chunks, each sent before the next is encoded, so both work at once.
        // One transaction: the batch is stored whole or not at all.
        let tx = client.transaction().await.map_err(map_err)?;
        let stmt = tx
            .prepare_cached(
                "INSERT INTO latest (node_id, ts, snapshot)
                 SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[])
                 ON CONFLICT (node_id) DO UPDATE SET ts = excluded.ts, snapshot = excluded.snapshot",
            )
            .await
            .map_err(map_err)?;
        let mut sent = Vec::new();
        for (ids, names) in node_ids
            .chunks(UPSERT_CHUNK)
            .zip(order.chunks(UPSERT_CHUNK))
        {
            let mut ts = Vec::with_capacity(names.len());
            let mut json = Vec::with_capacity(names.len());
            for name in names {
                let s = &snapshots[last[name]];
                ts.push(to_ns(s.timestamp, "snapshot timestamp")?);
                json.push(encode_snapshot(s)?);
            }
            let params: [Box<dyn ToSql + Sync + Send>; 3] =
                [Box::new(ids.to_vec()), Box::new(ts), Box::new(json)];
            let mut upsert = Box::pin(tx.execute_raw(&stmt, params));
            match poll_once(&mut upsert) {
                Some(done) => {
                    done.map_err(map_err)?;
                }
                None => sent.push(upsert),
            }
        }
        for upsert in sent {
            upsert.await.map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(())
    }

    async fn get_latest(
        &self,
        cluster_id: &str,
        node_name: &str,
    ) -> StoreResult<Option<NodeMetricsSnapshot>> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT l.snapshot FROM node n JOIN latest l ON l.node_id = n.id
                 WHERE n.cluster_id = $1 AND n.node_name = $2",
            )
            .await
            .map_err(map_err)?;
        let row = client
            .query_opt(&stmt, &[&cluster_id, &node_name])
            .await
            .map_err(map_err)?;
        row.map(|r| decode_snapshot(r.get::<_, &str>(0).as_bytes()))
            .transpose()
    }

    async fn list_latest(&self, cluster_id: &str) -> StoreResult<Vec<NodeMetricsSnapshot>> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT l.snapshot FROM node n JOIN latest l ON l.node_id = n.id
                 WHERE n.cluster_id = $1 ORDER BY n.node_name",
            )
            .await
            .map_err(map_err)?;
        let rows = client.query(&stmt, &[&cluster_id]).await.map_err(map_err)?;
        rows.iter()
            .map(|r| decode_snapshot(r.get::<_, &str>(0).as_bytes()))
            .collect()
    }

    async fn append_history(
        &self,
        cluster_id: &str,
        points: &[MetricsDataPoint],
    ) -> StoreResult<usize> {
        check_cluster(cluster_id)?;
        let rows = points
            .iter()
            .map(|p| Ok((p.node_name.as_str(), HistoryRow::from_point(p)?)))
            .collect::<StoreResult<Vec<_>>>()?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut client = self.client().await?;
        let names: Vec<&str> = rows.iter().map(|(n, _)| *n).collect();
        let node_ids = self
            .node_ids(&client, NodeTable::Metrics, cluster_id, &names)
            .await?;
        let mut ts = Vec::with_capacity(rows.len());
        let mut columns: [Vec<f64>; POINT_FIELDS] =
            std::array::from_fn(|_| Vec::with_capacity(rows.len()));
        let mut days: Vec<i64> = Vec::new();
        for (_, row) in &rows {
            ts.push(row.ts);
            for (column, v) in columns.iter_mut().zip(row.values) {
                column.push(v);
            }
            let day = day_of(row.ts);
            if !days.contains(&day) {
                days.push(day);
            }
        }
        self.ensure_days(&mut client, &days).await?;
        let added = match self.insert_history(&client, &node_ids, &ts, &columns).await {
            // Another process dropped a partition this one knew (a retention prune): forget
            // what it knew, create what is missing, once more.
            Err(e) if e.code() == Some(&SqlState::CHECK_VIOLATION) => {
                self.days.lock().clear();
                self.ensure_days(&mut client, &days).await?;
                self.insert_history(&client, &node_ids, &ts, &columns)
                    .await
                    .map_err(map_err)?
            }
            other => other.map_err(map_err)?,
        };
        Ok(usize::try_from(added).unwrap_or(usize::MAX))
    }

    async fn history(&self, query: &HistoryQuery) -> StoreResult<Vec<MetricsDataPoint>> {
        let Some(range) = Range::of(query)? else {
            return Ok(Vec::new());
        };
        let client = self.client().await?;
        // The node's id first: the range read is then one primary-key range per day partition.
        let Some(node_id) = self
            .node_id(
                &client,
                NodeTable::Metrics,
                &query.cluster_id,
                &query.node_name,
            )
            .await?
        else {
            return Ok(Vec::new());
        };
        let stmt = client
            .prepare_cached(
                "SELECT ts, cpu_usage, memory_usage, disk_usage, disk_io_read, disk_io_write,
                        network_rx, network_tx, cpu_temp, load_1
                 FROM history WHERE node_id = $1 AND ts BETWEEN $2 AND $3
                 ORDER BY ts",
            )
            .await
            .map_err(map_err)?;
        let rows = client
            .query(&stmt, &[&node_id, &range.from, &range.to])
            .await
            .map_err(map_err)?;
        let rows = rows
            .iter()
            .map(|r| {
                let mut values = [0.0; POINT_FIELDS];
                for (i, v) in values.iter_mut().enumerate() {
                    *v = r.get(i + 1);
                }
                HistoryRow {
                    ts: r.get(0),
                    values,
                }
            })
            .collect();
        Ok(shape(rows, range, &query.node_name))
    }

    async fn newest_history(
        &self,
        cluster_id: &str,
        nodes: &[&str],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<Option<DateTime<Utc>>>> {
        let mut newest = vec![None; nodes.len()];
        let (from, to) = (to_ns_clamped(from), to_ns_clamped(to));
        if nodes.is_empty() || from > to {
            return Ok(newest);
        }
        let client = self.client().await?;
        // Per node one backward seek of the primary key in each day partition of the range.
        let stmt = client
            .prepare_cached(
                "SELECT w.i, (SELECT max(h.ts) FROM history h
                              WHERE h.node_id = n.id AND h.ts BETWEEN $3 AND $4)
                 FROM unnest($2::text[]) WITH ORDINALITY AS w(node_name, i)
                 JOIN node n ON n.cluster_id = $1 AND n.node_name = w.node_name",
            )
            .await
            .map_err(map_err)?;
        let rows = client
            .query(&stmt, &[&cluster_id, &nodes, &from, &to])
            .await
            .map_err(map_err)?;
        for row in rows {
            let i: i64 = row.get(0);
            let ts: Option<i64> = row.get(1);
            let slot = usize::try_from(i - 1)
                .ok()
                .and_then(|i| newest.get_mut(i))
                .ok_or_else(|| StoreError::Corrupt(format!("node ordinal {i} out of range")))?;
            *slot = ts.map(from_ns);
        }
        Ok(newest)
    }

    async fn prune_history(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let before = to_ns_clamped(before);
        if self.is_hypertable() {
            return self.prune_hypertable(before).await;
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PARTITION_LOCK])
            .await
            .map_err(map_err)?;
        let mut deleted = 0u64;
        for (day, name) in partitions(&tx).await? {
            let (_, from, to) = partition(day);
            if to <= before {
                // The whole day is older than the bound: drop it (its rows counted first).
                let n: i64 = tx
                    .query_one(&format!("SELECT count(*) FROM {name}"), &[])
                    .await
                    .map_err(map_err)?
                    .get(0);
                tx.batch_execute(&format!("DROP TABLE {name}"))
                    .await
                    .map_err(map_err)?;
                deleted += count(n, "history rows")?;
            } else if from < before {
                deleted += tx
                    .execute(&format!("DELETE FROM {name} WHERE ts < $1"), &[&before])
                    .await
                    .map_err(map_err)?;
            }
        }
        tx.commit().await.map_err(map_err)?;
        self.days.lock().retain(|&d| partition(d).2 > before);
        Ok(deleted)
    }

    async fn list_clusters(&self) -> StoreResult<Vec<String>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT DISTINCT cluster_id FROM node
                 WHERE EXISTS (SELECT 1 FROM latest WHERE node_id = node.id)
                    OR EXISTS (SELECT 1 FROM history WHERE node_id = node.id)
                 ORDER BY cluster_id",
                &[],
            )
            .await
            .map_err(map_err)?;
        Ok(strings(&rows))
    }

    async fn list_nodes(&self, cluster_id: &str) -> StoreResult<Vec<String>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT node_name FROM node
                 WHERE cluster_id = $1
                   AND (EXISTS (SELECT 1 FROM latest WHERE node_id = node.id)
                     OR EXISTS (SELECT 1 FROM history WHERE node_id = node.id))
                 ORDER BY node_name",
                &[&cluster_id],
            )
            .await
            .map_err(map_err)?;
        Ok(strings(&rows))
    }

    async fn delete_latest(&self, cluster_id: &str, node_name: &str) -> StoreResult<bool> {
        let client = self.client().await?;
        let n = client
            .execute(
                "DELETE FROM latest WHERE node_id =
                   (SELECT id FROM node WHERE cluster_id = $1 AND node_name = $2)",
                &[&cluster_id, &node_name],
            )
            .await
            .map_err(map_err)?;
        Ok(n > 0)
    }

    async fn delete_cluster_latest(&self, cluster_id: &str) -> StoreResult<u64> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM latest WHERE node_id IN (SELECT id FROM node WHERE cluster_id = $1)",
                &[&cluster_id],
            )
            .await
            .map_err(map_err)
    }

    async fn retire_latest(&self, before: DateTime<Utc>) -> StoreResult<Vec<NodeKey>> {
        let before = to_ns_clamped(before);
        let client = self.client().await?;
        let rows = client
            .query(
                "DELETE FROM latest l USING node n
                 WHERE n.id = l.node_id AND l.ts < $1
                 RETURNING n.cluster_id, n.node_name",
                &[&before],
            )
            .await
            .map_err(map_err)?;
        let mut retired: Vec<NodeKey> = rows
            .iter()
            .map(|r| NodeKey {
                cluster_id: r.get(0),
                node_name: r.get(1),
            })
            .collect();
        retired.sort();
        Ok(retired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_utc_days() {
        let ts = DateTime::parse_from_rfc3339("2024-01-20T23:59:59.999999999Z")
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap();
        let (name, from, to) = partition(day_of(ts));
        assert_eq!(name, "history_p20240120");
        assert!(from <= ts && ts < to);
        assert_eq!(to - from, DAY_NS);
        assert_eq!(day_of_partition(&name), Some(day_of(ts)));
        // Before the epoch the day still floors.
        let (old, from, to) = partition(day_of(-1));
        assert_eq!(old, "history_p19691231");
        assert!(from <= -1 && -1 < to);
        assert_eq!(day_of_partition("history_pnope"), None);
        assert_eq!(day_of_partition("latest"), None);
    }
}
