//! The observe routes (viewer): summary and node list from memory, one node's detail and series
//! through its agent (as commands), and the Prometheus exposition of everything.

use std::collections::HashMap;

use atlhyper_model::{CommandStatus, MetricsDataPoint, NodeMetricsSnapshot, NodeStatus};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::Master;
use crate::auth::valid_cluster_id;
use crate::commands::NewCommand;
use crate::error::ApiError;
use crate::routes::respond::{Format, Params, format, json_bytes, negotiated, params};
use crate::v3::{self, SeriesMetric, UnservedMetric};
use crate::view::Envelope;

/// Longest node series an observe request may ask the agent for, minutes.
pub const MAX_SERIES_MINUTES: u32 = 24 * 60;

/// `GET /metrics[?cluster=ID]`: text 0.0.4, or OpenMetrics when asked; gzip when accepted.
pub(crate) async fn metrics(
    State(master): State<Master>,
    headers: HeaderMap,
    query: Params,
) -> Result<Response, ApiError> {
    let query = params(query)?;
    Ok(crate::exposition::respond(
        &master,
        &headers,
        query.get("cluster").map(String::as_str),
    ))
}

/// The `cluster_id` query parameter of the observe endpoints.
fn observe_cluster(query: &HashMap<String, String>) -> Result<&str, ApiError> {
    let id = query
        .get("cluster_id")
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad_request("cluster_id is required"))?;
    valid_cluster_id(id)?;
    Ok(id)
}

/// `GET /api/v2/observe/metrics/summary?cluster_id=`: from memory.
pub(crate) async fn observe_summary(
    State(master): State<Master>,
    query: Params,
) -> Result<Response, ApiError> {
    let query = params(query)?;
    let format = format(&query)?;
    let view = master.cluster_view(observe_cluster(&query)?)?;
    Ok(json_bytes(match format {
        Format::V3 => view.observe_summary_v3_json(),
        Format::V2 => view.observe_summary_json(),
    }))
}

/// `GET /api/v2/observe/metrics/nodes?cluster_id=`: from memory.
pub(crate) async fn observe_nodes(
    State(master): State<Master>,
    headers: HeaderMap,
    query: Params,
) -> Result<Response, ApiError> {
    let query = params(query)?;
    let format = format(&query)?;
    let view = master.cluster_view(observe_cluster(&query)?)?;
    let encoded = match format {
        Format::V3 => view.observe_nodes_v3_encoded(),
        Format::V2 => view.observe_nodes_encoded(),
    };
    Ok(negotiated(encoded, &headers))
}

/// Runs a built-in query on the agent of a cluster that has the node, and parses its output.
async fn ask_agent<T: serde::de::DeserializeOwned>(
    master: &Master,
    cluster_id: &str,
    node: &str,
    action: &str,
    params: Map<String, Value>,
) -> Result<T, ApiError> {
    let view = master.cluster_view(cluster_id)?;
    if view.node(node).is_none() {
        return Err(ApiError::not_found(format!(
            "node {node} not found in cluster {cluster_id}"
        )));
    }
    let record = crate::commands::execute(
        master,
        NewCommand {
            cluster_id: cluster_id.to_owned(),
            action: action.to_owned(),
            target_kind: "Node".to_owned(),
            target_name: node.to_owned(),
            params,
            timeout: master.config.detail_timeout,
            ..NewCommand::default()
        },
    )
    .await?;
    let result = record.result.unwrap_or_default();
    if record.status != CommandStatus::Success || !result.success {
        let why = if result.error.is_empty() {
            "no reason given".to_owned()
        } else {
            result.error
        };
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            format!("the agent could not run {action}: {why}"),
        ));
    }
    serde_json::from_str(&result.output).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            format!("the agent's {action} answer is not valid: {e}"),
        )
    })
}

/// `GET /api/v2/observe/metrics/nodes/{name}`: the envelope with, as an extension, the node's
/// liveness (`status`: `{state, last_seen}`).
#[derive(serde::Serialize)]
struct ObserveNode<'a> {
    message: &'static str,
    data: &'a NodeMetricsSnapshot,
    status: NodeStatus,
}

/// `GET /api/v2/observe/metrics/nodes/{name}` in the v3 shape, with the node's liveness as an
/// extension (`status`: `{state, lastSeen}`).
#[derive(serde::Serialize)]
struct ObserveNodeV3 {
    message: &'static str,
    data: v3::NodeMetrics,
    status: v3::NodeLiveness,
}

/// The answer of `GET /api/v2/observe/metrics/nodes/{name}` in `format`.
fn observe_node_answer(format: Format, data: &NodeMetricsSnapshot, status: NodeStatus) -> Response {
    match format {
        Format::V3 => Json(ObserveNodeV3 {
            message: "ok",
            data: v3::NodeMetrics::from_snapshot(data),
            status: v3::NodeLiveness::from(&status),
        })
        .into_response(),
        Format::V2 => Json(ObserveNode {
            message: "ok",
            data,
            status,
        })
        .into_response(),
    }
}

/// `GET /api/v2/observe/metrics/nodes/{name}?cluster_id=`: through the agent (`node_detail`)
/// while it is alive; from memory, marked offline, once it is silent.
pub(crate) async fn observe_node(
    State(master): State<Master>,
    Path(node): Path<String>,
    query: Params,
) -> Result<Response, ApiError> {
    let query = params(query)?;
    let format = format(&query)?;
    let cluster_id = observe_cluster(&query)?;
    let view = master.cluster_view(cluster_id)?;
    let Some(status) = view.status_of(&node) else {
        return Err(ApiError::not_found(format!(
            "node {node} not found in cluster {cluster_id}"
        )));
    };
    // A silent agent cannot answer: its last report, from memory, marked offline.
    if let Some(snapshot) = view.node(&node).filter(|_| view.is_agent_silent()) {
        return Ok(observe_node_answer(format, snapshot, status));
    }
    let snapshot: NodeMetricsSnapshot =
        ask_agent(&master, cluster_id, &node, "node_detail", Map::new()).await?;
    Ok(observe_node_answer(format, &snapshot, status))
}

/// The series range of `GET .../series`: `minutes=N` (1..=1440), or `since` and optional
/// `until` as RFC 3339; 30 minutes when none is given.
pub(crate) fn series_params(
    query: &HashMap<String, String>,
) -> Result<Map<String, Value>, ApiError> {
    let mut params = Map::new();
    let parse_time = |name: &str| -> Result<Option<DateTime<Utc>>, ApiError> {
        query
            .get(name)
            .map(|t| {
                DateTime::parse_from_rfc3339(t)
                    .map(|d| d.with_timezone(&Utc))
                    .map_err(|_| {
                        ApiError::bad_request(format!(
                            "{name} must be an RFC 3339 time like 2024-01-20T10:30:00Z, got {t:?}"
                        ))
                    })
            })
            .transpose()
    };
    let since = parse_time("since")?;
    let until = parse_time("until")?;
    match (query.get("minutes"), since) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "give either minutes or since, not both",
            ));
        }
        (Some(m), None) => match m.trim().parse::<u32>() {
            Ok(n) if (1..=MAX_SERIES_MINUTES).contains(&n) => {
                params.insert("minutes".into(), Value::from(n));
            }
            _ => {
                return Err(ApiError::bad_request(format!(
                    "minutes must be an integer from 1 to {MAX_SERIES_MINUTES}, got {m:?}"
                )));
            }
        },
        (None, Some(since)) => {
            let until = until.unwrap_or_else(Utc::now);
            if since >= until {
                return Err(ApiError::bad_request("since must be before until"));
            }
            params.insert("since".into(), Value::from(since.to_rfc3339()));
            params.insert("until".into(), Value::from(until.to_rfc3339()));
        }
        (None, None) => {
            if until.is_some() {
                return Err(ApiError::bad_request("until needs since"));
            }
            params.insert("minutes".into(), Value::from(30));
        }
    }
    Ok(params)
}

/// `GET /api/v2/observe/metrics/nodes/{name}/series?cluster_id=&metric=`: through the agent
/// (`node_series`). v3: one figure by its v3 name (400 for a name v3 does not know, 404 when
/// no point in the range carries the figure, as v3 answers "not ready"); v2: the nine v2
/// figures of each point (the extension figures left out, as v2 answered).
pub(crate) async fn observe_series(
    State(master): State<Master>,
    Path(node): Path<String>,
    query: Params,
) -> Result<Response, ApiError> {
    let query = params(query)?;
    let format = format(&query)?;
    let cluster_id = observe_cluster(&query)?;
    let range = series_params(&query)?;
    let metric_name = query.get("metric").map(String::as_str);
    let metric = match format {
        Format::V2 => None,
        Format::V3 => Some(
            SeriesMetric::parse(metric_name)
                .map_err(|e: UnservedMetric| ApiError::bad_request(e.to_string()))?,
        ),
    };
    if !master.hub.agent_online(cluster_id) && master.hub.contains(cluster_id) {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the agent of cluster {cluster_id} is offline: the series comes from the agent; \
                 stored history is at /api/v2/clusters/{cluster_id}/node-metrics/{node}/history"
            ),
        ));
    }
    let points: Vec<MetricsDataPoint> =
        ask_agent(&master, cluster_id, &node, "node_series", range).await?;
    let (Some(metric), Some(name)) = (metric, metric_name) else {
        let v2: Vec<MetricsDataPoint> = points
            .iter()
            .map(MetricsDataPoint::without_extensions)
            .collect();
        return Ok(Json(Envelope::ok(v2)).into_response());
    };
    if points.is_empty() {
        return Err(ApiError::not_found(format!(
            "no point of node {node} in the range yet"
        )));
    }
    let series = v3::Series::of(name, metric, &points);
    if series.points.is_empty() {
        return Err(ApiError::not_found(format!(
            "no point of node {node} in the range carries {name}: its collector does not report \
             it (PSI needs Linux 4.20+, packet rates a second collection) or its agent predates \
             the figure"
        )));
    }
    Ok(Json(Envelope::ok(series)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series() {
        let q = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert_eq!(series_params(&q(&[])).unwrap()["minutes"], 30);
        assert_eq!(
            series_params(&q(&[("minutes", "5")])).unwrap()["minutes"],
            5
        );
        let p = series_params(&q(&[
            ("since", "2024-01-20T10:00:00Z"),
            ("until", "2024-01-20T11:00:00Z"),
        ]))
        .unwrap();
        assert_eq!(p["since"], "2024-01-20T10:00:00+00:00");
        for bad in [
            vec![("minutes", "0")],
            vec![("minutes", "abc")],
            vec![("minutes", "5"), ("since", "2024-01-20T10:00:00Z")],
            vec![("since", "yesterday")],
            vec![("until", "2024-01-20T10:00:00Z")],
            vec![
                ("since", "2024-01-20T11:00:00Z"),
                ("until", "2024-01-20T10:00:00Z"),
            ],
        ] {
            assert_eq!(series_params(&q(&bad)).unwrap_err().status, 400, "{bad:?}");
        }
    }
}
