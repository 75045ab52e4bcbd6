//! [`SeriesStore`] in memory: the rows encoded as the durable engines store them, so every
//! engine answers alike (values rounded to their quantum).

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::RwLock;

use super::{
    Dictionary, EncodedRow, SeriesKey, SeriesQuery, SeriesRow, SeriesStore, check_tier,
    decode_keys, decode_row, encode_batch, union_keys,
};
use crate::MemoryStore;
use crate::error::StoreResult;

/// One stored row.
#[derive(Debug)]
struct StoredRow {
    samples: u32,
    dict: Arc<Dictionary>,
    values: Vec<u8>,
}

/// One node's rows by (tier, start ms).
type NodeRows = BTreeMap<(u8, i64), StoredRow>;

/// Rows per cluster, node, then (tier, start ms); dictionaries shared by encoded keys.
#[derive(Debug, Default)]
pub(crate) struct SeriesTables {
    rows: RwLock<BTreeMap<String, BTreeMap<String, NodeRows>>>,
    dictionary: RwLock<BTreeMap<Vec<u8>, Arc<Dictionary>>>,
}

impl SeriesTables {
    fn dict_of(&self, row: &EncodedRow) -> StoreResult<Arc<Dictionary>> {
        if let Some(dict) = self.dictionary.read().get(&row.keys) {
            return Ok(Arc::clone(dict));
        }
        let dict = Arc::new(decode_keys(&row.keys)?);
        self.dictionary
            .write()
            .insert(row.keys.clone(), Arc::clone(&dict));
        Ok(dict)
    }
}

#[async_trait::async_trait]
impl SeriesStore for MemoryStore {
    async fn append_series(
        &self,
        cluster_id: &str,
        tier: u8,
        rows: &[SeriesRow],
    ) -> StoreResult<usize> {
        let encoded = encode_batch(cluster_id, tier, rows)?;
        let t = &self.series;
        let mut stored = Vec::with_capacity(encoded.len());
        for row in encoded {
            let dict = t.dict_of(&row)?;
            stored.push((row, dict));
        }
        let mut all = t.rows.write();
        let nodes = all.entry(cluster_id.to_owned()).or_default();
        let mut written = 0;
        for (row, dict) in stored {
            let node = nodes.entry(row.node_name).or_default();
            let key = (tier, row.start_ms);
            if tier == 0 && node.contains_key(&key) {
                continue;
            }
            node.insert(
                key,
                StoredRow {
                    samples: row.samples,
                    dict,
                    values: row.values,
                },
            );
            written += 1;
        }
        Ok(written)
    }

    async fn read_series(&self, query: &SeriesQuery) -> StoreResult<Vec<SeriesRow>> {
        check_tier(query.tier)?;
        let all = self.series.rows.read();
        let Some(nodes) = all.get(&query.cluster_id) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        if query.from_ms > query.to_ms {
            return Ok(out);
        }
        for (name, rows) in nodes {
            if query.node_name.as_ref().is_some_and(|n| n != name) {
                continue;
            }
            let range = (query.tier, query.from_ms)..=(query.tier, query.to_ms);
            for (&(_, start), row) in rows.range(range) {
                if let Some(r) =
                    decode_row(query, name, start, row.samples, &row.dict, &row.values)?
                {
                    out.push(r);
                }
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
        let all = self.series.rows.read();
        let Some(rows) = all.get(cluster_id).and_then(|n| n.get(node_name)) else {
            return Ok(Vec::new());
        };
        let mut dicts: Vec<&Arc<Dictionary>> = Vec::new();
        for row in rows
            .range((tier, since_ms)..=(tier, i64::MAX))
            .map(|(_, r)| r)
        {
            if !dicts.iter().any(|d| Arc::ptr_eq(d, &row.dict)) {
                dicts.push(&row.dict);
            }
        }
        Ok(union_keys(dicts.into_iter().map(|d| &d.keys[..])))
    }

    async fn series_nodes(&self, cluster_id: &str) -> StoreResult<Vec<String>> {
        Ok(self
            .series
            .rows
            .read()
            .get(cluster_id)
            .map(|nodes| {
                nodes
                    .iter()
                    .filter(|(_, rows)| !rows.is_empty())
                    .map(|(n, _)| n.clone())
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn series_clusters(&self) -> StoreResult<Vec<String>> {
        Ok(self
            .series
            .rows
            .read()
            .iter()
            .filter(|(_, nodes)| nodes.values().any(|rows| !rows.is_empty()))
            .map(|(c, _)| c.clone())
            .collect())
    }

    async fn series_bounds(&self, tier: u8) -> StoreResult<Option<(i64, i64)>> {
        check_tier(tier)?;
        let all = self.series.rows.read();
        let mut bounds: Option<(i64, i64)> = None;
        for rows in all.values().flat_map(|n| n.values()) {
            let mut tier_rows = rows.range((tier, i64::MIN)..=(tier, i64::MAX));
            let Some(((_, lo), _)) = tier_rows.next() else {
                continue;
            };
            let hi = tier_rows.next_back().map_or(*lo, |((_, hi), _)| *hi);
            let lo = *lo;
            let b = bounds.get_or_insert((lo, hi));
            *b = (b.0.min(lo), b.1.max(hi));
        }
        Ok(bounds)
    }

    async fn prune_series(&self, tier: u8, before_ms: i64) -> StoreResult<u64> {
        check_tier(tier)?;
        let mut all = self.series.rows.write();
        let mut deleted = 0u64;
        for nodes in all.values_mut() {
            for rows in nodes.values_mut() {
                let old: Vec<(u8, i64)> = rows
                    .range((tier, i64::MIN)..(tier, before_ms))
                    .map(|(k, _)| *k)
                    .collect();
                for k in old {
                    rows.remove(&k);
                    deleted += 1;
                }
            }
            nodes.retain(|_, rows| !rows.is_empty());
        }
        all.retain(|_, nodes| !nodes.is_empty());
        Ok(deleted)
    }
}
