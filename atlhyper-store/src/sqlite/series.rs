//! [`SeriesStore`] over SQLite: tables `series_node`, `series_dict` and `series` (schema
//! version 5).

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use super::{SqliteStore, map_err};
use crate::error::{StoreError, StoreResult};
use crate::series::{
    Dictionary, SeriesKey, SeriesQuery, SeriesRow, SeriesStore, check_tier, decode_keys,
    decode_row, encode_batch, union_keys,
};

/// Key dictionaries by id, shared by the reader threads. Dictionary rows are never changed or
/// deleted, so an entry never goes stale.
#[derive(Debug, Default)]
pub(super) struct Dictionaries(Mutex<HashMap<i64, Arc<Dictionary>>>);

impl Dictionaries {
    fn get(&self, conn: &Connection, id: i64) -> StoreResult<Arc<Dictionary>> {
        if let Some(keys) = self.0.lock().get(&id) {
            return Ok(Arc::clone(keys));
        }
        let blob: Vec<u8> = conn
            .prepare_cached("SELECT keys FROM series_dict WHERE id = ?1")
            .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
            .map_err(map_err)?
            .ok_or_else(|| StoreError::Corrupt(format!("series dictionary {id} is missing")))?;
        let keys = Arc::new(decode_keys(&blob)?);
        self.0.lock().insert(id, Arc::clone(&keys));
        Ok(keys)
    }
}

/// The id of (cluster, node) in `series_node`, created if missing.
fn node_id(tx: &Transaction<'_>, cluster_id: &str, node_name: &str) -> StoreResult<i64> {
    tx.prepare_cached(
        "INSERT INTO series_node (cluster_id, node_name) VALUES (?1, ?2)
         ON CONFLICT (cluster_id, node_name) DO NOTHING",
    )
    .and_then(|mut s| s.execute(params![cluster_id, node_name]))
    .map_err(map_err)?;
    tx.prepare_cached("SELECT id FROM series_node WHERE cluster_id = ?1 AND node_name = ?2")
        .and_then(|mut s| s.query_row(params![cluster_id, node_name], |r| r.get(0)))
        .map_err(map_err)
}

/// The id of a key dictionary, created if missing.
fn dict_id(tx: &Transaction<'_>, keys: &[u8]) -> StoreResult<i64> {
    tx.prepare_cached("INSERT INTO series_dict (keys) VALUES (?1) ON CONFLICT (keys) DO NOTHING")
        .and_then(|mut s| s.execute([keys]))
        .map_err(map_err)?;
    tx.prepare_cached("SELECT id FROM series_dict WHERE keys = ?1")
        .and_then(|mut s| s.query_row([keys], |r| r.get(0)))
        .map_err(map_err)
}

/// Every node id.
fn node_ids(conn: &Connection) -> StoreResult<Vec<i64>> {
    conn.prepare_cached("SELECT id FROM series_node")
        .and_then(|mut s| {
            s.query_map([], |r| r.get::<_, i64>(0))?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(map_err)
}

fn names(conn: &Connection, sql: &str, param: Option<&str>) -> StoreResult<Vec<String>> {
    let mut stmt = conn.prepare_cached(sql).map_err(map_err)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(param), |r| r.get(0))
        .map_err(map_err)?;
    rows.collect::<Result<Vec<String>, _>>().map_err(map_err)
}

fn samples_of(n: i64) -> StoreResult<u32> {
    u32::try_from(n).map_err(|_| StoreError::Corrupt(format!("series sample count {n}")))
}

#[async_trait::async_trait]
impl SeriesStore for SqliteStore {
    async fn append_series(
        &self,
        cluster_id: &str,
        tier: u8,
        rows: &[SeriesRow],
    ) -> StoreResult<usize> {
        let encoded = encode_batch(cluster_id, tier, rows)?;
        if encoded.is_empty() {
            return Ok(0);
        }
        let cluster_id = cluster_id.to_owned();
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(map_err)?;
            let mut written = 0;
            {
                let sql = if tier == 0 {
                    "INSERT OR IGNORE INTO series (node_id, tier, ts, dict_id, samples, data)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
                } else {
                    "INSERT OR REPLACE INTO series (node_id, tier, ts, dict_id, samples, data)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
                };
                let mut nodes: HashMap<&str, i64> = HashMap::new();
                let mut dicts: HashMap<&[u8], i64> = HashMap::new();
                for row in &encoded {
                    let node = match nodes.get(row.node_name.as_str()) {
                        Some(&id) => id,
                        None => {
                            let id = node_id(&tx, &cluster_id, &row.node_name)?;
                            nodes.insert(&row.node_name, id);
                            id
                        }
                    };
                    let dict = match dicts.get(row.keys.as_slice()) {
                        Some(&id) => id,
                        None => {
                            let id = dict_id(&tx, &row.keys)?;
                            dicts.insert(&row.keys, id);
                            id
                        }
                    };
                    written += tx
                        .prepare_cached(sql)
                        .and_then(|mut s| {
                            s.execute(params![
                                node,
                                tier,
                                row.start_ms,
                                dict,
                                row.samples,
                                row.values
                            ])
                        })
                        .map_err(map_err)?;
                }
            }
            tx.commit().map_err(map_err)?;
            Ok(written)
        })
        .await
    }

    async fn read_series(&self, query: &SeriesQuery) -> StoreResult<Vec<SeriesRow>> {
        check_tier(query.tier)?;
        let query = query.clone();
        let dicts = Arc::clone(&self.series_dicts);
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT n.node_name, s.ts, s.samples, s.dict_id, s.data
                     FROM series_node n JOIN series s ON s.node_id = n.id
                     WHERE n.cluster_id = ?1 AND (?2 IS NULL OR n.node_name = ?2)
                       AND s.tier = ?3 AND s.ts BETWEEN ?4 AND ?5
                     ORDER BY n.node_name, s.ts",
                )
                .map_err(map_err)?;
            let mut rows = stmt
                .query(params![
                    query.cluster_id,
                    query.node_name,
                    query.tier,
                    query.from_ms,
                    query.to_ms
                ])
                .map_err(map_err)?;
            let mut out = Vec::new();
            while let Some(r) = rows.next().map_err(map_err)? {
                let node: String = r.get(0).map_err(map_err)?;
                let start: i64 = r.get(1).map_err(map_err)?;
                let samples = samples_of(r.get(2).map_err(map_err)?)?;
                let keys = dicts.get(conn, r.get(3).map_err(map_err)?)?;
                let data = r.get_ref(4).map_err(map_err)?;
                let data = data
                    .as_blob()
                    .map_err(|_| StoreError::Corrupt("series data is not a blob".to_owned()))?;
                if let Some(row) = decode_row(&query, &node, start, samples, &keys, data)? {
                    out.push(row);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn series_keys(
        &self,
        cluster_id: &str,
        node_name: &str,
        tier: u8,
        since_ms: i64,
    ) -> StoreResult<Vec<SeriesKey>> {
        check_tier(tier)?;
        let (cluster_id, node_name) = (cluster_id.to_owned(), node_name.to_owned());
        let dicts = Arc::clone(&self.series_dicts);
        self.read(move |conn| {
            let ids: Vec<i64> = conn
                .prepare_cached(
                    "SELECT DISTINCT s.dict_id FROM series_node n JOIN series s ON s.node_id = n.id
                     WHERE n.cluster_id = ?1 AND n.node_name = ?2 AND s.tier = ?3 AND s.ts >= ?4",
                )
                .and_then(|mut s| {
                    s.query_map(params![cluster_id, node_name, tier, since_ms], |r| r.get(0))?
                        .collect::<Result<Vec<_>, _>>()
                })
                .map_err(map_err)?;
            let lists = ids
                .into_iter()
                .map(|id| dicts.get(conn, id))
                .collect::<StoreResult<Vec<_>>>()?;
            Ok(union_keys(lists.iter().map(|l| &l.keys[..])))
        })
        .await
    }

    async fn series_nodes(&self, cluster_id: &str) -> StoreResult<Vec<String>> {
        let cluster_id = cluster_id.to_owned();
        self.read(move |conn| {
            names(
                conn,
                "SELECT node_name FROM series_node n
                 WHERE cluster_id = ?1 AND EXISTS (SELECT 1 FROM series WHERE node_id = n.id)
                 ORDER BY node_name",
                Some(&cluster_id),
            )
        })
        .await
    }

    async fn series_clusters(&self) -> StoreResult<Vec<String>> {
        self.read(|conn| {
            names(
                conn,
                "SELECT DISTINCT cluster_id FROM series_node n
                 WHERE EXISTS (SELECT 1 FROM series WHERE node_id = n.id)
                 ORDER BY cluster_id",
                None,
            )
        })
        .await
    }

    async fn series_bounds(&self, tier: u8) -> StoreResult<Option<(i64, i64)>> {
        check_tier(tier)?;
        self.read(move |conn| {
            let mut bounds: Option<(i64, i64)> = None;
            // Per node, so min and max are each one seek of the primary key.
            let mut stmt = conn
                .prepare_cached(
                    "SELECT (SELECT min(ts) FROM series WHERE node_id = ?1 AND tier = ?2),
                            (SELECT max(ts) FROM series WHERE node_id = ?1 AND tier = ?2)",
                )
                .map_err(map_err)?;
            for id in node_ids(conn)? {
                let (lo, hi): (Option<i64>, Option<i64>) = stmt
                    .query_row(params![id, tier], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map_err(map_err)?;
                if let (Some(lo), Some(hi)) = (lo, hi) {
                    let b = bounds.get_or_insert((lo, hi));
                    *b = (b.0.min(lo), b.1.max(hi));
                }
            }
            Ok(bounds)
        })
        .await
    }

    async fn prune_series(&self, tier: u8, before_ms: i64) -> StoreResult<u64> {
        check_tier(tier)?;
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(map_err)?;
            let mut deleted = 0u64;
            {
                // Per node, so each delete is a range of the primary key.
                let mut delete = tx
                    .prepare_cached(
                        "DELETE FROM series WHERE node_id = ?1 AND tier = ?2 AND ts < ?3",
                    )
                    .map_err(map_err)?;
                for id in node_ids(&tx)? {
                    deleted += delete
                        .execute(params![id, tier, before_ms])
                        .map_err(map_err)? as u64;
                }
            }
            tx.commit().map_err(map_err)?;
            Ok(deleted)
        })
        .await
    }
}
