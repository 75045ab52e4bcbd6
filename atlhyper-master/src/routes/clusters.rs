//! The cluster routes (viewer reads, operator deletes): the cluster and agent lists, node
//! metrics from memory, stored history, and retirement.

use std::collections::HashMap;

use atlhyper_model::NodeHistory;
use atlhyper_store::HistoryQuery;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

use crate::Master;
use crate::auth::valid_cluster_id;
use crate::error::ApiError;
use crate::routes::respond::{Format, Params, format, negotiated, params};
use crate::series::query::parse_time;
use crate::v3;

/// Longest history range, hours.
pub const MAX_HISTORY_HOURS: u32 = 720;

/// `GET /api/v2/clusters`: `{clusters, total}` in the v3 shape (`otelAvailable` when the
/// cluster has node figures); `?format=v2`: the bare v2 list.
pub(crate) async fn clusters(
    State(master): State<Master>,
    query: Params,
) -> Result<Response, ApiError> {
    let list = master.hub.clusters();
    Ok(match format(&params(query)?)? {
        Format::V3 => Json(v3::ClusterList::from(list)).into_response(),
        Format::V2 => Json(list).into_response(),
    })
}

/// `GET /api/v2/agents`.
pub(crate) async fn agents(State(master): State<Master>) -> Result<Response, ApiError> {
    let now = Utc::now();
    let offline_after = master.config.agent_offline_after;
    let mut list = master
        .agents
        .list(now, offline_after)
        .await
        .map_err(master.store_failed("listing agents"))?;
    // The registry is written at most every few seconds per agent; the hub knows the exact time.
    for agent in &mut list {
        if let Some(live) = master.hub.liveness(&agent.cluster_id) {
            if let Some(at) = live.last_snapshot {
                agent.last_snapshot = agent.last_snapshot.max(at);
            }
            if let Some(at) = live.last_heartbeat {
                agent.last_heartbeat = agent.last_heartbeat.max(at);
            }
        }
        if let Some(state) = master.hub.agent_state(&agent.cluster_id) {
            agent.status = state;
        }
    }
    Ok(Json(list).into_response())
}

/// `GET /api/v2/clusters/{id}/node-metrics`.
///
/// `?view=overview` answers the same shape with every node in its overview form (no processes,
/// per-core CPU, sensors, collector reports, or interfaces when totals are present): what a
/// node list needs, about a quarter of the size. `view=full` (the default) is the whole snapshot.
pub(crate) async fn node_metrics(
    State(master): State<Master>,
    headers: HeaderMap,
    Path(cluster_id): Path<String>,
    query: Params,
) -> Result<Response, ApiError> {
    let query = params(query)?;
    let overview = match query.get("view").map(String::as_str) {
        None | Some("full") => false,
        Some("overview") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "view must be full or overview, not {other:?}"
            )));
        }
    };
    let view = master.cluster_view(&cluster_id)?;
    let encoded = if overview {
        view.node_overview_encoded()
    } else {
        view.node_metrics_encoded()
    };
    Ok(negotiated(encoded, &headers))
}

/// `GET /api/v2/clusters/{id}/node-metrics/{node}`.
pub(crate) async fn node_detail(
    State(master): State<Master>,
    Path((cluster_id, node)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let view = master.cluster_view(&cluster_id)?;
    let snapshot = view.node(&node).ok_or_else(|| {
        ApiError::not_found(format!("node {node} not found in cluster {cluster_id}"))
    })?;
    Ok(Json(snapshot).into_response())
}

/// Parses `hours`: an integer from 1 to [`MAX_HISTORY_HOURS`]; 24 when absent.
pub(crate) fn parse_hours(value: Option<&str>) -> Result<u32, ApiError> {
    let Some(text) = value else {
        return Ok(24);
    };
    match text.trim().parse::<u32>() {
        Ok(h) if (1..=MAX_HISTORY_HOURS).contains(&h) => Ok(h),
        _ => Err(ApiError::bad_request(format!(
            "hours must be an integer from 1 to {MAX_HISTORY_HOURS}, got {text:?}"
        ))),
    }
}

/// The time window of a history request: the last `hours` up to now, or an explicit
/// `from`..`to` (unix ms) that a zoomed chart asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HistoryWindow {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

impl HistoryWindow {
    fn last_hours(hours: u32) -> Self {
        let to = Utc::now();
        Self {
            from: to - chrono::Duration::hours(i64::from(hours)),
            to,
        }
    }
}

/// The window of `?hours=` (default 24) or `?from=&to=` (unix ms or RFC 3339, 1970 to 9999;
/// both, `from` before `to`, at most [`MAX_HISTORY_HOURS`] apart; not together with `hours`).
fn parse_window(query: &HashMap<String, String>) -> Result<HistoryWindow, ApiError> {
    let (from, to) = (query.get("from"), query.get("to"));
    if from.is_none() && to.is_none() {
        return Ok(HistoryWindow::last_hours(parse_hours(
            query.get("hours").map(String::as_str),
        )?));
    }
    if query.contains_key("hours") {
        return Err(ApiError::bad_request(
            "give either hours or from and to, not both",
        ));
    }
    let (Some(from), Some(to)) = (from, to) else {
        return Err(ApiError::bad_request("from and to go together"));
    };
    let (from, to) = (parse_time("from", from)?, parse_time("to", to)?);
    if from >= to {
        return Err(ApiError::bad_request("from must be before to"));
    }
    if to - from > chrono::Duration::hours(i64::from(MAX_HISTORY_HOURS)) {
        return Err(ApiError::bad_request(format!(
            "from and to are more than {MAX_HISTORY_HOURS} hours apart"
        )));
    }
    Ok(HistoryWindow { from, to })
}

/// `GET /api/v2/clusters/{id}/node-metrics/{node}/history?hours=` (or `?from=&to=`, unix ms:
/// the window a zoomed chart shows, at the finer resolution a shorter window allows).
pub(crate) async fn node_history(
    State(master): State<Master>,
    Path((cluster_id, node)): Path<(String, String)>,
    query: Params,
) -> Result<Response, ApiError> {
    let query = params(query)?;
    let window = parse_window(&query)?;
    Ok(Json(stored_history(&master, cluster_id, node, window).await?).into_response())
}

/// `GET /api/v2/node-metrics/{node}/history?cluster_id=&hours=`: the stored history in the
/// shape the AtlHyper web draws (`{nodeName, start, end, data: {cpu, memory, disk, temp}}`).
pub(crate) async fn node_history_v3(
    State(master): State<Master>,
    Path(node): Path<String>,
    query: Params,
) -> Result<Response, ApiError> {
    let query = params(query)?;
    let cluster_id = query
        .get("cluster_id")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad_request("cluster_id is required"))?;
    valid_cluster_id(cluster_id)?;
    let hours = parse_hours(query.get("hours").map(String::as_str))?;
    let window = HistoryWindow::last_hours(hours);
    let history = stored_history(&master, cluster_id.clone(), node, window).await?;
    Ok(Json(v3::NodeHistory {
        data: v3::HistoryData::from_points(&history.data),
        node_name: history.node_name,
        start: history.start,
        end: history.end,
    })
    .into_response())
}

/// A node's stored history in `window`; 404 when neither memory nor the store knows the
/// cluster or the node.
async fn stored_history(
    master: &Master,
    cluster_id: String,
    node: String,
    window: HistoryWindow,
) -> Result<NodeHistory, ApiError> {
    let store_err = master.store_failed("reading history");
    // Known from memory, or from the store (history outlives the node's last snapshot).
    let in_memory = master
        .hub
        .view(&cluster_id)
        .is_some_and(|v| v.node(&node).is_some());
    if !in_memory {
        let clusters = master.metrics.list_clusters().await.map_err(store_err)?;
        if !clusters.contains(&cluster_id) && !master.hub.contains(&cluster_id) {
            return Err(ApiError::not_found(format!(
                "cluster {cluster_id} not found"
            )));
        }
        let nodes = master
            .metrics
            .list_nodes(&cluster_id)
            .await
            .map_err(store_err)?;
        if !nodes.contains(&node) {
            return Err(ApiError::not_found(format!(
                "node {node} not found in cluster {cluster_id}"
            )));
        }
    }
    let HistoryWindow {
        from: start,
        to: end,
    } = window;
    let data = master
        .metrics
        .history(&HistoryQuery {
            cluster_id,
            node_name: node.clone(),
            from: start,
            to: end,
            max_points: Some(master.config.history_max_points),
        })
        .await
        .map_err(store_err)?;
    Ok(NodeHistory {
        node_name: node,
        start,
        end,
        data,
    })
}

/// `DELETE /api/v2/clusters/{id}` (operator): 204 when deleted, 404 when unknown.
pub(crate) async fn delete_cluster(
    State(master): State<Master>,
    Path(cluster_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    valid_cluster_id(&cluster_id)?;
    if master.delete_cluster(&cluster_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "cluster {cluster_id} not found"
        )))
    }
}

/// `DELETE /api/v2/clusters/{id}/nodes/{node}` (operator): 204 when deleted, 404 when unknown.
pub(crate) async fn delete_node(
    State(master): State<Master>,
    Path((cluster_id, node)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    valid_cluster_id(&cluster_id)?;
    if master.delete_node(&cluster_id, &node).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "node {node} not found in cluster {cluster_id}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours() {
        assert_eq!(parse_hours(None).unwrap(), 24);
        assert_eq!(parse_hours(Some("1")).unwrap(), 1);
        assert_eq!(parse_hours(Some("720")).unwrap(), 720);
        for bad in ["0", "721", "abc", "100000", "-1", "1.5", ""] {
            assert_eq!(parse_hours(Some(bad)).unwrap_err().status, 400, "{bad}");
        }
    }
}
