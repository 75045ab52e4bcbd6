//! Ids of nodes (table `node` for latest and history, `series_node` for series) and of series
//! key dictionaries: settled in one statement per batch and cached. None of these rows is ever
//! deleted or changed (a deleted node keeps its id; its rows go, the id stays), so an id once
//! known stays right for the life of the process, whatever another process does.

use std::collections::HashMap;
use std::hash::Hash;

use deadpool_postgres::Object;
use parking_lot::Mutex;
use tokio_postgres::types::{FromSqlOwned, ToSql};

use super::{PgStore, map_err};
use crate::error::{StoreError, StoreResult};

/// Most series dictionaries cached; past it the cache starts again (a fleet of very mixed node
/// shapes must not grow it without end).
const MAX_CACHED_DICTS: usize = 4096;

/// Which table names the nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NodeTable {
    /// `node`: latest and history.
    Metrics,
    /// `series_node`: series rows.
    Series,
}

impl NodeTable {
    /// Creates the missing names of `$2` in cluster `$1`; `(id, node_name)` of every name.
    fn settle_sql(self) -> &'static str {
        match self {
            Self::Metrics => {
                "WITH wanted AS (SELECT unnest($2::text[]) AS node_name),
                 added AS (
                     INSERT INTO node (cluster_id, node_name)
                     SELECT $1, node_name FROM wanted
                     ON CONFLICT (cluster_id, node_name) DO NOTHING
                     RETURNING id, node_name
                 )
                 SELECT id, node_name FROM added
                 UNION ALL
                 SELECT n.id, n.node_name FROM node n JOIN wanted w USING (node_name)
                 WHERE n.cluster_id = $1"
            }
            Self::Series => {
                "WITH wanted AS (SELECT unnest($2::text[]) AS node_name),
                 added AS (
                     INSERT INTO series_node (cluster_id, node_name)
                     SELECT $1, node_name FROM wanted
                     ON CONFLICT (cluster_id, node_name) DO NOTHING
                     RETURNING id, node_name
                 )
                 SELECT id, node_name FROM added
                 UNION ALL
                 SELECT n.id, n.node_name FROM series_node n JOIN wanted w USING (node_name)
                 WHERE n.cluster_id = $1"
            }
        }
    }

    /// `(id, node_name)` of the names of `$2` in cluster `$1` that exist.
    fn find_sql(self) -> &'static str {
        match self {
            Self::Metrics => {
                "SELECT id, node_name FROM node WHERE cluster_id = $1 AND node_name = ANY($2)"
            }
            Self::Series => {
                "SELECT id, node_name FROM series_node
                 WHERE cluster_id = $1 AND node_name = ANY($2)"
            }
        }
    }

    fn cache(self, store: &PgStore) -> &Mutex<HashMap<String, HashMap<String, i64>>> {
        match self {
            Self::Metrics => &store.node_ids,
            Self::Series => &store.series_node_ids,
        }
    }
}

/// The ids of `wanted` from `cache`, `None` when one is missing.
fn all_known<K: Hash + Eq + std::borrow::Borrow<Q>, Q: Hash + Eq + ?Sized>(
    cache: Option<&HashMap<K, i64>>,
    wanted: &[&Q],
) -> Option<Vec<i64>> {
    let cache = cache?;
    wanted.iter().map(|k| cache.get(*k).copied()).collect()
}

/// The values of `wanted` not in `cache`, sorted and once each: every process creates rows in
/// one order, so two creating overlapping sets at once never wait on each other in a cycle.
fn missing<'a, K: Hash + Eq + std::borrow::Borrow<Q>, Q: Hash + Eq + Ord + ?Sized>(
    cache: Option<&HashMap<K, i64>>,
    wanted: &[&'a Q],
) -> Vec<&'a Q> {
    let mut out: Vec<&Q> = wanted
        .iter()
        .copied()
        .filter(|k| cache.is_none_or(|c| !c.contains_key(*k)))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Runs `settle` (creates what is missing, answers `(id, value)` of every value), then `find`
/// when another process created some of them while `settle` ran (its snapshot did not see
/// them; a new statement does). `(value, id)` of every one of `wanted`.
async fn settle<V>(
    client: &Object,
    settle: &str,
    find: &str,
    params: &[&(dyn ToSql + Sync)],
    wanted: usize,
    what: &str,
) -> StoreResult<Vec<(V, i64)>>
where
    V: FromSqlOwned,
{
    let stmt = client.prepare_cached(settle).await.map_err(map_err)?;
    let rows = client.query(&stmt, params).await.map_err(map_err)?;
    let mut found: Vec<(V, i64)> = rows.iter().map(|r| (r.get(1), r.get(0))).collect();
    if found.len() < wanted {
        let stmt = client.prepare_cached(find).await.map_err(map_err)?;
        let rows = client.query(&stmt, params).await.map_err(map_err)?;
        found = rows.iter().map(|r| (r.get(1), r.get(0))).collect();
    }
    if found.len() < wanted {
        return Err(StoreError::Backend(format!(
            "{what}: {} of {wanted} found",
            found.len()
        )));
    }
    Ok(found)
}

impl PgStore {
    /// The ids of `names` in `cluster_id` (in the same order, a name given twice twice),
    /// created where missing. A batch of known nodes costs one cache look-up per name and no
    /// statement; the unknown ones cost one statement together.
    pub(super) async fn node_ids(
        &self,
        client: &Object,
        table: NodeTable,
        cluster_id: &str,
        names: &[&str],
    ) -> StoreResult<Vec<i64>> {
        let cache = table.cache(self);
        let absent: Vec<&str> = {
            let cache = cache.lock();
            if let Some(ids) = all_known(cache.get(cluster_id), names) {
                return Ok(ids);
            }
            missing(cache.get(cluster_id), names)
        };
        let what = format!("node ids of cluster {cluster_id}");
        let found: Vec<(String, i64)> = settle::<String>(
            client,
            table.settle_sql(),
            table.find_sql(),
            &[&cluster_id, &absent],
            absent.len(),
            &what,
        )
        .await?;
        let mut cache = cache.lock();
        let ids = cache.entry(cluster_id.to_owned()).or_default();
        ids.extend(found);
        all_known(Some(ids), names)
            .ok_or_else(|| StoreError::Backend(format!("{what}: not all cached")))
    }

    /// The id of an existing node (cached), `None` for a node never written.
    pub(super) async fn node_id(
        &self,
        client: &Object,
        table: NodeTable,
        cluster_id: &str,
        node_name: &str,
    ) -> StoreResult<Option<i64>> {
        let cache = table.cache(self);
        if let Some(&id) = cache.lock().get(cluster_id).and_then(|k| k.get(node_name)) {
            return Ok(Some(id));
        }
        let stmt = client
            .prepare_cached(table.find_sql())
            .await
            .map_err(map_err)?;
        let names = [node_name];
        let row = client
            .query_opt(&stmt, &[&cluster_id, &names.as_slice()])
            .await
            .map_err(map_err)?;
        let id = row.map(|r| r.get::<_, i64>(0));
        if let Some(id) = id {
            cache
                .lock()
                .entry(cluster_id.to_owned())
                .or_default()
                .insert(node_name.to_owned(), id);
        }
        Ok(id)
    }

    /// The ids of the series key dictionaries `keys` (encoded key lists; same order), created
    /// where missing, like [`Self::node_ids`].
    pub(super) async fn dict_ids(&self, client: &Object, keys: &[&[u8]]) -> StoreResult<Vec<i64>> {
        let absent: Vec<&[u8]> = {
            let cache = self.series_dict_ids.lock();
            if let Some(ids) = all_known(Some(&cache), keys) {
                return Ok(ids);
            }
            missing(Some(&cache), keys)
        };
        let found: Vec<(Vec<u8>, i64)> = settle::<Vec<u8>>(
            client,
            "WITH wanted AS (SELECT unnest($1::bytea[]) AS keys),
             added AS (
                 INSERT INTO series_dict (keys) SELECT keys FROM wanted
                 ON CONFLICT (keys) DO NOTHING
                 RETURNING id, keys
             )
             SELECT id, keys FROM added
             UNION ALL
             SELECT d.id, d.keys FROM series_dict d JOIN wanted w USING (keys)",
            "SELECT id, keys FROM series_dict WHERE keys = ANY($1)",
            &[&absent],
            absent.len(),
            "series dictionary ids",
        )
        .await?;
        let mut cache = self.series_dict_ids.lock();
        if cache.len() + found.len() > MAX_CACHED_DICTS {
            cache.clear();
        }
        let mut ids: HashMap<&[u8], i64> = HashMap::with_capacity(found.len());
        for (k, id) in &found {
            ids.insert(k.as_slice(), *id);
        }
        let answer = keys
            .iter()
            .map(|k| cache.get(*k).or_else(|| ids.get(k)).copied())
            .collect::<Option<Vec<i64>>>();
        cache.extend(found.iter().map(|(k, id)| (k.clone(), *id)));
        answer.ok_or_else(|| StoreError::Backend("series dictionary ids: not all found".to_owned()))
    }
}
