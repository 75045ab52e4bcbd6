//! Retirement: clusters and nodes leave the latest state on request
//! (`DELETE /api/v2/clusters/{id}`, `DELETE /api/v2/clusters/{id}/nodes/{node}`, operator) or,
//! for nodes, on their own after [`MasterConfig::node_retire_after`](crate::MasterConfig) of
//! silence. History stays until the retention prune in every case.
//!
//! What leaves: a deleted cluster's hub entry (views, liveness), every latest row of its nodes and
//! its agent registry entry; a deleted or retired node's place in its cluster's view and its
//! latest row. A master restart does not bring them back: restore reads the latest rows and the
//! registry.
//!
//! What brings them back, as with Prometheus targets: a deleted cluster whose agent keeps
//! pushing or heartbeating is known again at its next contact (its nodes with its next
//! snapshot); a node comes back when it reports again (its agent lists it online). A node its
//! agent still lists as offline (agents keep silent nodes for `AGENT_NODE_TTL`, 10 min by
//! default) stays out (see `ClusterEntry::drop_unknown_offline`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use atlhyper_store::NodeKey;
use chrono::Utc;

use crate::Master;
use crate::error::ApiError;
use crate::hub::ClusterEntry;

/// Deletes a cluster: its hub entry, the latest snapshots of its nodes and its agent registry
/// entry (history stays until the retention). Returns whether the master knew it.
pub(crate) async fn delete_cluster(master: &Master, cluster_id: &str) -> Result<bool, ApiError> {
    let store_err = master.store_failed("deleting a cluster");
    let entry = master.hub.get(cluster_id);
    // No snapshot of this cluster is half-ingested while its rows are deleted.
    let _ingest = match &entry {
        Some(e) => Some(e.ingest.lock().await),
        None => None,
    };
    let rows = master
        .metrics
        .delete_cluster_latest(cluster_id)
        .await
        .map_err(store_err)?;
    let agent = master.agents.forget(cluster_id).await.map_err(store_err)?;
    let removed = master.hub.remove(cluster_id).is_some();
    if removed || rows > 0 || agent {
        tracing::info!(cluster = cluster_id, latest_rows = rows, "cluster deleted");
        master.fleet.tell(crate::fleet::News::Deleted {
            cluster: cluster_id.to_owned(),
            nodes: Vec::new(),
        });
    }
    Ok(removed || rows > 0 || agent)
}

/// Deletes a node: its place in the cluster's view and its latest snapshot (history stays
/// until the retention). Returns whether the master knew it.
pub(crate) async fn delete_node(
    master: &Master,
    cluster_id: &str,
    node_name: &str,
) -> Result<bool, ApiError> {
    let entry = master.hub.get(cluster_id);
    let mut mark = match &entry {
        Some(e) => Some(e.ingest.lock().await),
        None => None,
    };
    if let Some(mark) = &mut mark {
        mark.forget_node(node_name);
    }
    let row = master
        .metrics
        .delete_latest(cluster_id, node_name)
        .await
        .map_err(master.store_failed("deleting a node"))?;
    let in_view = entry
        .as_deref()
        .is_some_and(|e| remove_from_view(e, &[node_name]));
    if row || in_view {
        tracing::info!(cluster = cluster_id, node = node_name, "node deleted");
        master.fleet.tell(crate::fleet::News::Deleted {
            cluster: cluster_id.to_owned(),
            nodes: vec![node_name.to_owned()],
        });
    }
    Ok(row || in_view)
}

/// Retires nodes silent for longer than `node_retire_after`: deletes their latest rows and
/// takes them out of their clusters' views. Runs with the retention prune and at restore.
pub(crate) async fn retire_silent_nodes(master: &Master) {
    let before = Utc::now()
        - chrono::Duration::from_std(master.config.node_retire_after)
            .unwrap_or(chrono::Duration::MAX);
    let mut retired: BTreeMap<String, Vec<String>> = BTreeMap::new();
    match master.metrics.retire_latest(before).await {
        Ok(keys) => {
            for NodeKey {
                cluster_id,
                node_name,
            } in keys
            {
                retired.entry(cluster_id).or_default().push(node_name);
            }
        }
        Err(e) => master.store_failure("retiring silent nodes", &e),
    }
    // Nodes the hub holds without a row (a store write failed) retire by the same rule.
    for entry in master.hub.entries() {
        if let Some(view) = entry.view() {
            for (name, node) in &view.snapshot.node_metrics {
                let last = view
                    .node_status
                    .get(name)
                    .map_or(node.timestamp, |s| s.last_seen.max(node.timestamp));
                if last < before {
                    retired
                        .entry(entry.id.clone())
                        .or_default()
                        .push(name.clone());
                }
            }
        }
    }
    let mut count = 0u64;
    for (cluster_id, mut names) in retired {
        names.sort_unstable();
        names.dedup();
        count += names.len() as u64;
        if let Some(entry) = master.hub.get(&cluster_id) {
            let mut mark = entry.ingest.lock().await;
            for name in &names {
                mark.forget_node(name);
            }
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            remove_from_view(&entry, &names);
        }
        tracing::info!(cluster = cluster_id, nodes = ?names, %before, "retired silent nodes");
    }
    master
        .stats
        .nodes_retired
        .fetch_add(count, Ordering::Relaxed);
}

#[cfg(feature = "postgres")]
/// What another master deleted (see [`crate::fleet`]): the cluster (`nodes` empty) or these
/// nodes leave this master's memory; the rows are gone already.
pub(crate) async fn forget_deleted(master: &Master, cluster_id: &str, nodes: &[String]) {
    let Some(entry) = master.hub.get(cluster_id) else {
        return;
    };
    let mut mark = entry.ingest.lock().await;
    if nodes.is_empty() {
        master.hub.remove(cluster_id);
        return;
    }
    for name in nodes {
        mark.forget_node(name);
    }
    let names: Vec<&str> = nodes.iter().map(String::as_str).collect();
    remove_from_view(&entry, &names);
}

#[cfg(feature = "postgres")]
/// After this master missed news (its listening connection ended): drops from memory what
/// another master deleted meanwhile. The cluster's nodes without a latest row in `database`
/// leave its view; the cluster itself goes when it has no latest row and `has_agent` is false
/// (deleted: its agent registry row went with it). Read under the cluster's ingest lock, so a
/// snapshot this master is storing is never taken for a deletion. How many nodes (or whole
/// clusters) were dropped.
pub(crate) async fn forget_missing(
    master: &Master,
    database: &atlhyper_store::PgStore,
    cluster_id: &str,
    has_agent: bool,
) -> Result<usize, atlhyper_store::StoreError> {
    let Some(entry) = master.hub.get(cluster_id) else {
        return Ok(0);
    };
    let mut mark = entry.ingest.lock().await;
    let stored: std::collections::HashSet<String> = database
        .latest_names(cluster_id)
        .await?
        .into_iter()
        .collect();
    if stored.is_empty() && !has_agent {
        master.hub.remove(cluster_id);
        tracing::info!(
            cluster = cluster_id,
            "cluster deleted while not listening; forgotten"
        );
        return Ok(1);
    }
    let Some(view) = entry.view() else {
        return Ok(0);
    };
    let gone: Vec<&str> = view
        .snapshot
        .node_metrics
        .keys()
        .filter(|name| !stored.contains(*name))
        .map(String::as_str)
        .collect();
    for name in &gone {
        mark.forget_node(name);
    }
    if remove_from_view(&entry, &gone) {
        tracing::info!(
            cluster = cluster_id,
            nodes = gone.len(),
            "nodes deleted while not listening; forgotten"
        );
    }
    Ok(gone.len())
}

/// Republishes the entry's view without `names`; whether any of them was in it. Call with the
/// entry's ingest lock held.
fn remove_from_view(entry: &ClusterEntry, names: &[&str]) -> bool {
    let Some(view) = entry.view() else {
        return false;
    };
    match view.without_nodes(names) {
        Some(smaller) => {
            entry.publish(Arc::new(smaller));
            true
        }
        None => false,
    }
}
