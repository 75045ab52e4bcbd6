//! [`MetricsStore`] over SQLite.

use std::collections::HashMap;
use std::sync::Arc;

use atlhyper_model::{MetricsDataPoint, NodeMetricsSnapshot};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use super::{SqliteStore, map_err};
use crate::error::{StoreError, StoreResult};
use crate::metrics::{
    HistoryQuery, HistoryRow, MetricsStore, NodeKey, POINT_FIELDS, Range, decode_snapshot,
    encode_snapshot, shape,
};
use crate::timestamp::{to_ns, to_ns_clamped};

/// Node ids the writer knows, per cluster then node. Only writer jobs touch it; an id enters it
/// only after the transaction that created it committed, and pruning (which deletes node rows)
/// empties it.
#[derive(Debug, Default)]
pub(super) struct NodeIds(HashMap<String, HashMap<String, i64>>);

/// Node ids of one write: known ones from the cache, new ones remembered until commit.
struct Ids<'a> {
    cluster_id: &'a str,
    known: Option<&'a HashMap<String, i64>>,
    created: Vec<(String, i64)>,
}

impl<'a> Ids<'a> {
    fn new(cache: &'a NodeIds, cluster_id: &'a str) -> Self {
        Self {
            cluster_id,
            known: cache.0.get(cluster_id),
            created: Vec::new(),
        }
    }

    fn get(&mut self, tx: &Transaction<'_>, node_name: &str) -> StoreResult<i64> {
        if let Some(&id) = self.known.and_then(|k| k.get(node_name)) {
            return Ok(id);
        }
        if let Some((_, id)) = self.created.iter().find(|(n, _)| n == node_name) {
            return Ok(*id);
        }
        let id = node_id(tx, self.cluster_id, node_name)?;
        self.created.push((node_name.to_owned(), id));
        Ok(id)
    }

    /// The ids this write created (to remember after commit).
    fn into_created(self) -> Vec<(String, i64)> {
        self.created
    }
}

impl NodeIds {
    /// After commit: remembers ids a write created.
    fn remember(&mut self, cluster_id: &str, created: Vec<(String, i64)>) {
        if !created.is_empty() {
            self.0
                .entry(cluster_id.to_owned())
                .or_default()
                .extend(created);
        }
    }
}

/// The id of (cluster, node), created if missing.
fn node_id(tx: &Transaction<'_>, cluster_id: &str, node_name: &str) -> StoreResult<i64> {
    let found = tx
        .prepare_cached("SELECT id FROM node WHERE cluster_id = ?1 AND node_name = ?2")
        .and_then(|mut s| {
            s.query_row(params![cluster_id, node_name], |r| r.get(0))
                .optional()
        })
        .map_err(map_err)?;
    if let Some(id) = found {
        return Ok(id);
    }
    tx.prepare_cached("INSERT INTO node (cluster_id, node_name) VALUES (?1, ?2)")
        .and_then(|mut s| s.execute(params![cluster_id, node_name]))
        .map_err(map_err)?;
    Ok(tx.last_insert_rowid())
}

fn begin(conn: &mut Connection) -> StoreResult<Transaction<'_>> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(map_err)
}

fn check_cluster(cluster_id: &str) -> StoreResult<()> {
    if cluster_id.is_empty() {
        return Err(StoreError::Invalid("empty cluster_id".to_owned()));
    }
    Ok(())
}

/// Reads the rows of one node in `[from, to]`, oldest first.
fn read_range(conn: &Connection, q: &HistoryQuery, range: Range) -> StoreResult<Vec<HistoryRow>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT h.ts, h.cpu_usage, h.memory_usage, h.disk_usage, h.disk_io_read,
                    h.disk_io_write, h.network_rx, h.network_tx, h.cpu_temp, h.load_1
             FROM node n JOIN history h ON h.node_id = n.id
             WHERE n.cluster_id = ?1 AND n.node_name = ?2 AND h.ts BETWEEN ?3 AND ?4
             ORDER BY h.ts",
        )
        .map_err(map_err)?;
    let rows = stmt
        .query_map(
            params![q.cluster_id, q.node_name, range.from, range.to],
            |r| {
                let mut values = [0.0; POINT_FIELDS];
                for (i, v) in values.iter_mut().enumerate() {
                    *v = r.get(i + 1)?;
                }
                Ok(HistoryRow {
                    ts: r.get(0)?,
                    values,
                })
            },
        )
        .map_err(map_err)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(map_err)
}

/// Names in the first column of a query.
fn strings(conn: &Connection, sql: &str, param: Option<&str>) -> StoreResult<Vec<String>> {
    let mut stmt = conn.prepare_cached(sql).map_err(map_err)?;
    let values: Vec<&str> = param.into_iter().collect();
    let rows = stmt
        .query_map(rusqlite::params_from_iter(values), |r| r.get(0))
        .map_err(map_err)?;
    rows.collect::<Result<Vec<String>, _>>().map_err(map_err)
}

#[async_trait::async_trait]
impl MetricsStore for SqliteStore {
    async fn upsert_latest(
        &self,
        cluster_id: &str,
        snapshots: &[NodeMetricsSnapshot],
    ) -> StoreResult<()> {
        check_cluster(cluster_id)?;
        // Encode on the caller's side of the channel: the writer thread only writes.
        let encoded = snapshots
            .iter()
            .map(|s| {
                Ok((
                    s.node_name.clone(),
                    to_ns(s.timestamp, "snapshot timestamp")?,
                    encode_snapshot(s)?,
                ))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        if encoded.is_empty() {
            return Ok(());
        }
        let cluster_id = cluster_id.to_owned();
        let cache = Arc::clone(&self.node_ids);
        self.write(move |conn| {
            let mut cache = cache.lock();
            let tx = begin(conn)?;
            let mut ids = Ids::new(&cache, &cluster_id);
            {
                let mut upsert = tx
                    .prepare_cached(
                        "INSERT INTO latest (node_id, ts, snapshot) VALUES (?1, ?2, ?3)
                         ON CONFLICT (node_id) DO UPDATE
                         SET ts = excluded.ts, snapshot = excluded.snapshot",
                    )
                    .map_err(map_err)?;
                for (node, ts, json) in &encoded {
                    let id = ids.get(&tx, node)?;
                    upsert.execute(params![id, ts, json]).map_err(map_err)?;
                }
            }
            tx.commit().map_err(map_err)?;
            let created = ids.into_created();
            cache.remember(&cluster_id, created);
            Ok(())
        })
        .await
    }

    async fn get_latest(
        &self,
        cluster_id: &str,
        node_name: &str,
    ) -> StoreResult<Option<NodeMetricsSnapshot>> {
        let (cluster_id, node_name) = (cluster_id.to_owned(), node_name.to_owned());
        self.read(move |conn| {
            let json: Option<String> = conn
                .prepare_cached(
                    "SELECT l.snapshot FROM node n JOIN latest l ON l.node_id = n.id
                     WHERE n.cluster_id = ?1 AND n.node_name = ?2",
                )
                .and_then(|mut s| {
                    s.query_row(params![cluster_id, node_name], |r| r.get(0))
                        .optional()
                })
                .map_err(map_err)?;
            json.map(|j| decode_snapshot(j.as_bytes())).transpose()
        })
        .await
    }

    async fn list_latest(&self, cluster_id: &str) -> StoreResult<Vec<NodeMetricsSnapshot>> {
        let cluster_id = cluster_id.to_owned();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT l.snapshot FROM node n JOIN latest l ON l.node_id = n.id
                     WHERE n.cluster_id = ?1 ORDER BY n.node_name",
                )
                .map_err(map_err)?;
            let rows = stmt
                .query_map([&cluster_id], |r| r.get::<_, String>(0))
                .map_err(map_err)?;
            let mut out = Vec::new();
            for json in rows {
                out.push(decode_snapshot(json.map_err(map_err)?.as_bytes())?);
            }
            Ok(out)
        })
        .await
    }

    async fn append_history(
        &self,
        cluster_id: &str,
        points: &[MetricsDataPoint],
    ) -> StoreResult<usize> {
        check_cluster(cluster_id)?;
        let rows = points
            .iter()
            .map(|p| Ok((p.node_name.clone(), HistoryRow::from_point(p)?)))
            .collect::<StoreResult<Vec<_>>>()?;
        if rows.is_empty() {
            return Ok(0);
        }
        let cluster_id = cluster_id.to_owned();
        let cache = Arc::clone(&self.node_ids);
        self.write(move |conn| {
            let mut cache = cache.lock();
            let tx = begin(conn)?;
            let mut ids = Ids::new(&cache, &cluster_id);
            let mut added = 0;
            {
                let mut insert = tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO history (node_id, ts, cpu_usage, memory_usage,
                             disk_usage, disk_io_read, disk_io_write, network_rx, network_tx,
                             cpu_temp, load_1)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                    )
                    .map_err(map_err)?;
                for (node, row) in &rows {
                    let id = ids.get(&tx, node)?;
                    let v = &row.values;
                    added += insert
                        .execute(params![
                            id, row.ts, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]
                        ])
                        .map_err(map_err)?;
                }
            }
            tx.commit().map_err(map_err)?;
            let created = ids.into_created();
            cache.remember(&cluster_id, created);
            Ok(added)
        })
        .await
    }

    async fn history(&self, query: &HistoryQuery) -> StoreResult<Vec<MetricsDataPoint>> {
        let Some(range) = Range::of(query)? else {
            return Ok(Vec::new());
        };
        let query = query.clone();
        self.read(move |conn| {
            let rows = read_range(conn, &query, range)?;
            Ok(shape(rows, range, &query.node_name))
        })
        .await
    }

    async fn prune_history(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let before = to_ns_clamped(before);
        let cache = Arc::clone(&self.node_ids);
        self.write(move |conn| {
            let mut cache = cache.lock();
            let tx = begin(conn)?;
            let mut deleted = 0u64;
            {
                let ids = tx
                    .prepare("SELECT id FROM node")
                    .and_then(|mut s| {
                        s.query_map([], |r| r.get::<_, i64>(0))?
                            .collect::<Result<Vec<_>, _>>()
                    })
                    .map_err(map_err)?;
                // Per node, so each delete is a range of the primary key.
                let mut delete = tx
                    .prepare_cached("DELETE FROM history WHERE node_id = ?1 AND ts < ?2")
                    .map_err(map_err)?;
                for id in ids {
                    deleted += delete.execute(params![id, before]).map_err(map_err)? as u64;
                }
                tx.execute(
                    "DELETE FROM node WHERE NOT EXISTS (SELECT 1 FROM latest WHERE node_id = node.id)
                       AND NOT EXISTS (SELECT 1 FROM history WHERE node_id = node.id)",
                    [],
                )
                .map_err(map_err)?;
            }
            tx.commit().map_err(map_err)?;
            // Node rows may be gone: forget every id.
            cache.0.clear();
            Ok(deleted)
        })
        .await
    }

    async fn list_clusters(&self) -> StoreResult<Vec<String>> {
        self.read(|conn| {
            strings(
                conn,
                "SELECT DISTINCT cluster_id FROM node
                 WHERE EXISTS (SELECT 1 FROM latest WHERE node_id = node.id)
                    OR EXISTS (SELECT 1 FROM history WHERE node_id = node.id)
                 ORDER BY cluster_id",
                None,
            )
        })
        .await
    }

    async fn list_nodes(&self, cluster_id: &str) -> StoreResult<Vec<String>> {
        let cluster_id = cluster_id.to_owned();
        self.read(move |conn| {
            strings(
                conn,
                "SELECT node_name FROM node
                 WHERE cluster_id = ?1
                   AND (EXISTS (SELECT 1 FROM latest WHERE node_id = node.id)
                     OR EXISTS (SELECT 1 FROM history WHERE node_id = node.id))
                 ORDER BY node_name",
                Some(&cluster_id),
            )
        })
        .await
    }

    // Node rows stay (history may point at them); the retention prune deletes unused ones, so
    // the writer's id cache stays valid.
    async fn delete_latest(&self, cluster_id: &str, node_name: &str) -> StoreResult<bool> {
        let (cluster_id, node_name) = (cluster_id.to_owned(), node_name.to_owned());
        self.write(move |conn| {
            conn.prepare_cached(
                "DELETE FROM latest WHERE node_id =
                   (SELECT id FROM node WHERE cluster_id = ?1 AND node_name = ?2)",
            )
            .and_then(|mut s| s.execute(params![cluster_id, node_name]))
            .map(|n| n > 0)
            .map_err(map_err)
        })
        .await
    }

    async fn delete_cluster_latest(&self, cluster_id: &str) -> StoreResult<u64> {
        let cluster_id = cluster_id.to_owned();
        self.write(move |conn| {
            conn.prepare_cached(
                "DELETE FROM latest WHERE node_id IN (SELECT id FROM node WHERE cluster_id = ?1)",
            )
            .and_then(|mut s| s.execute([&cluster_id]))
            .map(|n| n as u64)
            .map_err(map_err)
        })
        .await
    }

    async fn retire_latest(&self, before: DateTime<Utc>) -> StoreResult<Vec<NodeKey>> {
        let before = to_ns_clamped(before);
        self.write(move |conn| {
            let tx = begin(conn)?;
            let retired = {
                let mut select = tx
                    .prepare_cached(
                        "SELECT n.cluster_id, n.node_name FROM latest l JOIN node n ON n.id = l.node_id
                         WHERE l.ts < ?1 ORDER BY n.cluster_id, n.node_name",
                    )
                    .map_err(map_err)?;
                let rows = select
                    .query_map([before], |r| {
                        Ok(NodeKey {
                            cluster_id: r.get(0)?,
                            node_name: r.get(1)?,
                        })
                    })
                    .map_err(map_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(map_err)?
            };
            if !retired.is_empty() {
                tx.execute("DELETE FROM latest WHERE ts < ?1", [before])
                    .map_err(map_err)?;
            }
            tx.commit().map_err(map_err)?;
            Ok(retired)
        })
        .await
    }
}
