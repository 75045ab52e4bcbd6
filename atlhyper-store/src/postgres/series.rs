//! [`SeriesStore`] over PostgreSQL: tables `series_node`, `series_dict` and `series` (schema
//! version 2).

use std::sync::Arc;

use deadpool_postgres::GenericClient;

use super::ids::NodeTable;
use super::{PgStore, count, map_err};
use crate::error::{StoreError, StoreResult};
use crate::series::{
    Dictionary, SeriesKey, SeriesQuery, SeriesRow, SeriesStore, check_tier, decode_keys,
    decode_row, encode_batch, union_keys,
};

impl PgStore {
    /// The keys of dictionary `id`, cached (dictionary rows never change).
    async fn series_dict(
        &self,
        client: &impl GenericClient,
        id: i64,
    ) -> StoreResult<Arc<Dictionary>> {
        if let Some(keys) = self.series_dicts.lock().get(&id) {
            return Ok(Arc::clone(keys));
        }
        let row = client
            .query_opt("SELECT keys FROM series_dict WHERE id = $1", &[&id])
            .await
            .map_err(map_err)?
            .ok_or_else(|| StoreError::Corrupt(format!("series dictionary {id} is missing")))?;
        let blob: Vec<u8> = row.get(0);
        let keys = Arc::new(decode_keys(&blob)?);
        self.series_dicts.lock().insert(id, Arc::clone(&keys));
        Ok(keys)
    }
}

#[async_trait::async_trait]
impl SeriesStore for PgStore {
    async fn append_series(
        &self,
        cluster_id: &str,
        tier: u8,
        rows: &[SeriesRow],
    ) -> StoreResult<usize> {
        let mut encoded = encode_batch(cluster_id, tier, rows)?;
        if encoded.is_empty() {
            return Ok(0);
        }
        // Two masters may write the same cluster's rows at once (an agent that failed over
        // mid-interval). Node and dictionary ids are settled first, each set in one statement
        // in sorted order, and the rows then go in (node, time) order in one statement: every
        // writer takes its locks in one order, so none waits on another in a cycle (the
        // 10,000-node load run hit `deadlock detected` when ids were taken row by row inside a
        // transaction).
        encoded.sort_by(|a, b| {
            (a.node_name.as_str(), a.start_ms).cmp(&(b.node_name.as_str(), b.start_ms))
        });
        // One statement cannot touch a row twice: within the batch tier 0 keeps the first row
        // of a (node, start), the coarser tiers the last (as row-by-row writes would).
        if tier == 0 {
            encoded.dedup_by(|later, kept| {
                later.node_name == kept.node_name && later.start_ms == kept.start_ms
            });
        } else {
            encoded.reverse();
            encoded.dedup_by(|earlier, kept| {
                earlier.node_name == kept.node_name && earlier.start_ms == kept.start_ms
            });
            encoded.reverse();
        }
        let client = self.client().await?;
        let names: Vec<&str> = encoded.iter().map(|r| r.node_name.as_str()).collect();
        let nodes = self
            .node_ids(&client, NodeTable::Series, cluster_id, &names)
            .await?;
        let keys: Vec<&[u8]> = encoded.iter().map(|r| r.keys.as_slice()).collect();
        let dicts = self.dict_ids(&client, &keys).await?;
        let starts: Vec<i64> = encoded.iter().map(|r| r.start_ms).collect();
        let samples: Vec<i32> = encoded
            .iter()
            .map(|r| i32::try_from(r.samples).unwrap_or(i32::MAX))
            .collect();
        let data: Vec<&[u8]> = encoded.iter().map(|r| r.values.as_slice()).collect();
        let insert = client
            .prepare_cached(if tier == 0 {
                "INSERT INTO series (node_id, tier, ts, dict_id, samples, data)
                 SELECT n, $2::smallint, t, d, s, v
                 FROM unnest($1::bigint[], $3::bigint[], $4::bigint[], $5::integer[], $6::bytea[])
                     AS u(n, t, d, s, v)
                 ON CONFLICT DO NOTHING"
            } else {
                "INSERT INTO series (node_id, tier, ts, dict_id, samples, data)
                 SELECT n, $2::smallint, t, d, s, v
                 FROM unnest($1::bigint[], $3::bigint[], $4::bigint[], $5::integer[], $6::bytea[])
                     AS u(n, t, d, s, v)
                 ON CONFLICT (node_id, tier, ts) DO UPDATE
                 SET dict_id = EXCLUDED.dict_id, samples = EXCLUDED.samples, data = EXCLUDED.data"
            })
            .await
            .map_err(map_err)?;
        let written = client
            .execute(
                &insert,
                &[&nodes, &i16::from(tier), &starts, &dicts, &samples, &data],
            )
            .await
            .map_err(map_err)?;
        Ok(usize::try_from(written).unwrap_or(usize::MAX))
    }

    async fn read_series(&self, query: &SeriesQuery) -> StoreResult<Vec<SeriesRow>> {
        check_tier(query.tier)?;
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT n.node_name, s.ts, s.samples, s.dict_id, s.data
                 FROM series_node n JOIN series s ON s.node_id = n.id
                 WHERE n.cluster_id = $1 AND ($2::text IS NULL OR n.node_name = $2)
                   AND s.tier = $3 AND s.ts BETWEEN $4 AND $5
                 ORDER BY n.node_name, s.ts",
                &[
                    &query.cluster_id,
                    &query.node_name,
                    &i16::from(query.tier),
                    &query.from_ms,
                    &query.to_ms,
                ],
            )
            .await
            .map_err(map_err)?;
        let mut out = Vec::new();
        for r in rows {
            let node: String = r.get(0);
            let samples: i32 = r.get(2);
            let samples = u32::try_from(samples)
                .map_err(|_| StoreError::Corrupt(format!("series sample count {samples}")))?;
            let keys = self.series_dict(&client, r.get(3)).await?;
            let data: &[u8] = r.get(4);
            if let Some(row) = decode_row(query, &node, r.get(1), samples, &keys, data)? {
                out.push(row);
            }
        }
        Ok(out)
    }

    async fn series_keys(
        &self,
        cluster_id: &str,
        node_name: &str,
        tier: u8,
        since_ms: i64,
    ) -> StoreResult<Vec<SeriesKey>> {
        check_tier(tier)?;
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT DISTINCT s.dict_id FROM series_node n JOIN series s ON s.node_id = n.id
                 WHERE n.cluster_id = $1 AND n.node_name = $2 AND s.tier = $3 AND s.ts >= $4",
                &[&cluster_id, &node_name, &i16::from(tier), &since_ms],
            )
            .await
            .map_err(map_err)?;
        let mut lists = Vec::with_capacity(rows.len());
        for r in rows {
            lists.push(self.series_dict(&client, r.get(0)).await?);
        }
        Ok(union_keys(lists.iter().map(|l| &l.keys[..])))
    }

    async fn series_nodes(&self, cluster_id: &str) -> StoreResult<Vec<String>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT node_name FROM series_node n
                 WHERE cluster_id = $1 AND EXISTS (SELECT 1 FROM series WHERE node_id = n.id)
                 ORDER BY node_name",
                &[&cluster_id],
            )
            .await
            .map_err(map_err)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn series_clusters(&self) -> StoreResult<Vec<String>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT DISTINCT cluster_id FROM series_node n
                 WHERE EXISTS (SELECT 1 FROM series WHERE node_id = n.id)
                 ORDER BY cluster_id",
                &[],
            )
            .await
            .map_err(map_err)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn series_bounds(&self, tier: u8) -> StoreResult<Option<(i64, i64)>> {
        check_tier(tier)?;
        let client = self.client().await?;
        // Per node, so min and max are each one seek of the primary key.
        let row = client
            .query_one(
                "SELECT min(lo), max(hi) FROM series_node n,
                 LATERAL (SELECT min(ts) AS lo, max(ts) AS hi FROM series
                          WHERE node_id = n.id AND tier = $1) b",
                &[&i16::from(tier)],
            )
            .await
            .map_err(map_err)?;
        let (lo, hi): (Option<i64>, Option<i64>) = (row.get(0), row.get(1));
        Ok(lo.zip(hi))
    }

    async fn prune_series(&self, tier: u8, before_ms: i64) -> StoreResult<u64> {
        check_tier(tier)?;
        let client = self.client().await?;
        let n = client
            .execute(
                "DELETE FROM series s USING series_node n
                 WHERE s.node_id = n.id AND s.tier = $1 AND s.ts < $2",
                &[&i16::from(tier), &before_ms],
            )
            .await
            .map_err(map_err)?;
        count(i64::try_from(n).unwrap_or(i64::MAX), "deleted series rows")
    }
}
