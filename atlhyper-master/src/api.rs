//! The reader side: clusters, node metrics, history, the observe endpoints, commands, health and
//! the Prometheus exposition.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use atlhyper_model::{
    CommandCreated, CommandRecord, CommandStatus, CreateCommand, MetricsDataPoint, NodeHistory,
    NodeMetricsSnapshot, NodeStatus, StatusBody,
};
use atlhyper_store::{CommandFilter, HistoryQuery};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::Master;
use crate::auth::{Role, valid_cluster_id};
use crate::commands::NewCommand;
use crate::error::ApiError;
use crate::hub::{ClusterView, Encoded, Envelope, GZIP_MIN_BYTES};
use crate::ingest::{parse_json, read_body};

/// Longest history range, hours.
pub const MAX_HISTORY_HOURS: u32 = 720;
/// Longest node series an observe request may ask the agent for, minutes.
pub const MAX_SERIES_MINUTES: u32 = 24 * 60;
/// Longest timeout of a command created through the API, seconds.
pub const MAX_COMMAND_TIMEOUT_SECS: u64 = 24 * 3600;

/// Bytes a command body may have beyond its `params`: the id, action, target and timeout fields.
const COMMAND_FIELDS_BYTES: usize = 16 << 10;

type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

fn params(p: Params) -> Result<HashMap<String, String>, ApiError> {
    p.map(|Query(q)| q)
        .map_err(|e| ApiError::bad_request(e.body_text()))
}

/// A JSON answer that is already serialized, gzip-compressed when the client accepts it and the
/// compressed form is ready (large answers are compressed once per snapshot, in the background).
fn negotiated(encoded: &Arc<Encoded>, headers: &HeaderMap) -> Response {
    let accepts_gzip = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|e| {
            let mut parts = e.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q == 0.0))
            });
            name.eq_ignore_ascii_case("gzip") && !refused
        });
    let gzip = if accepts_gzip { encoded.gzip() } else { None };
    let mut response = match gzip {
        Some(g) => {
            let mut r = json_bytes(g);
            r.headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            r
        }
        None => json_bytes(encoded.plain.clone()),
    };
    if encoded.plain.len() >= GZIP_MIN_BYTES {
        response
            .headers_mut()
            .insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    response
}

/// A JSON body that is already serialized.
fn json_bytes(bytes: Bytes) -> Response {
    let mut response = Response::new(Body::from(bytes));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

impl Master {
    pub(crate) fn require(&self, headers: &HeaderMap, role: Role) -> Result<(), ApiError> {
        self.inner.tokens.require(headers, role)
    }

    /// The cluster's view, 404 when the master has none.
    fn cluster_view(&self, cluster_id: &str) -> Result<Arc<ClusterView>, ApiError> {
        self.inner
            .hub
            .view(cluster_id)
            .ok_or_else(|| ApiError::not_found(format!("cluster {cluster_id} not found")))
    }
}

/// `GET /health`.
pub(crate) async fn health() -> Json<StatusBody> {
    Json(StatusBody::ok())
}

/// `GET /metrics`.
pub(crate) async fn metrics(
    State(master): State<Master>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    master.require(&headers, Role::Viewer)?;
    let inner = &master.inner;
    let views = inner.hub.views();
    let clusters = inner.hub.clusters();
    let mut text = crate::exposition::render(&views, &clusters, &inner.stats);
    crate::alerting::metrics::write_alert_metrics(&mut text, &inner.alerting);
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response())
}

/// `GET /api/v2/clusters`.
pub(crate) async fn clusters(
    State(master): State<Master>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    master.require(&headers, Role::Viewer)?;
    Ok(Json(master.inner.hub.clusters()).into_response())
}

/// `GET /api/v2/agents`.
pub(crate) async fn agents(
    State(master): State<Master>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    master.require(&headers, Role::Viewer)?;
    let inner = &master.inner;
    let now = Utc::now();
    let offline_after = inner.config.agent_offline_after;
    let mut list = inner.agents.list(now, offline_after).await.map_err(|e| {
        inner.count_store_error();
        ApiError::store("listing agents", &e)
    })?;
    // The registry is written at most every few seconds per agent; the hub knows the exact time.
    for agent in &mut list {
        if let Some(live) = inner.hub.liveness(&agent.cluster_id) {
            if let Some(at) = live.last_snapshot {
                agent.last_snapshot = agent.last_snapshot.max(at);
            }
            if let Some(at) = live.last_heartbeat {
                agent.last_heartbeat = agent.last_heartbeat.max(at);
            }
        }
        if let Some(state) = inner.hub.agent_state(&agent.cluster_id) {
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
    master.require(&headers, Role::Viewer)?;
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
    headers: HeaderMap,
    Path((cluster_id, node)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    master.require(&headers, Role::Viewer)?;
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

/// `GET /api/v2/clusters/{id}/node-metrics/{node}/history?hours=`.
pub(crate) async fn node_history(
    State(master): State<Master>,
    headers: HeaderMap,
    Path((cluster_id, node)): Path<(String, String)>,
    query: Params,
) -> Result<Response, ApiError> {
    master.require(&headers, Role::Viewer)?;
    let query = params(query)?;
    let hours = parse_hours(query.get("hours").map(String::as_str))?;
    let inner = &master.inner;
    let store_err = |e: atlhyper_store::StoreError| {
        inner.count_store_error();
        ApiError::store("reading history", &e)
    };
    // Known from memory, or from the store (history outlives the node's last snapshot).
    let in_memory = inner
        .hub
        .view(&cluster_id)
        .is_some_and(|v| v.node(&node).is_some());
    if !in_memory {
        let clusters = inner.metrics.list_clusters().await.map_err(store_err)?;
        if !clusters.contains(&cluster_id) && !inner.hub.contains(&cluster_id) {
            return Err(ApiError::not_found(format!(
                "cluster {cluster_id} not found"
            )));
        }
        let nodes = inner
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
    let end = Utc::now();
    let start = end - chrono::Duration::hours(i64::from(hours));
    let data = inner
        .metrics
        .history(&HistoryQuery {
            cluster_id,
            node_name: node.clone(),
            from: start,
            to: end,
            max_points: Some(inner.config.history_max_points),
        })
        .await
        .map_err(store_err)?;
    Ok(Json(NodeHistory {
        node_name: node,
        start,
        end,
        data,
    })
    .into_response())
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
    headers: HeaderMap,
    query: Params,
) -> Result<Response, ApiError> {
    master.require(&headers, Role::Viewer)?;
    let query = params(query)?;
    let view = master.cluster_view(observe_cluster(&query)?)?;
    Ok(json_bytes(view.observe_summary_json()))
}

/// `GET /api/v2/observe/metrics/nodes?cluster_id=`: from memory.
pub(crate) async fn observe_nodes(
    State(master): State<Master>,
    headers: HeaderMap,
    query: Params,
) -> Result<Response, ApiError> {
    master.require(&headers, Role::Viewer)?;
    let query = params(query)?;
    let view = master.cluster_view(observe_cluster(&query)?)?;
    Ok(negotiated(view.observe_nodes_encoded(), &headers))
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
    let record = master
        .execute(NewCommand {
            cluster_id: cluster_id.to_owned(),
            action: action.to_owned(),
            target_kind: "Node".to_owned(),
            target_name: node.to_owned(),
            params,
            timeout: master.inner.config.detail_timeout,
            ..NewCommand::default()
        })
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
struct ObserveNode {
    message: &'static str,
    data: NodeMetricsSnapshot,
    status: NodeStatus,
}

impl ObserveNode {
    fn new(data: NodeMetricsSnapshot, status: NodeStatus) -> Self {
        Self {
            message: "ok",
            data,
            status,
        }
    }
}

/// `GET /api/v2/observe/metrics/nodes/{name}?cluster_id=`: through the agent (`node_detail`)
/// while it is alive; from memory, marked offline, once it is silent.
pub(crate) async fn observe_node(
    State(master): State<Master>,
    headers: HeaderMap,
    Path(node): Path<String>,
    query: Params,
) -> Result<Response, ApiError> {
    master.require(&headers, Role::Viewer)?;
    let query = params(query)?;
    let cluster_id = observe_cluster(&query)?;
    let view = master.cluster_view(cluster_id)?;
    let Some(status) = view.status_of(&node) else {
        return Err(ApiError::not_found(format!(
            "node {node} not found in cluster {cluster_id}"
        )));
    };
    // A silent agent cannot answer: its last report, from memory, marked offline.
    if view.is_agent_silent() {
        let snapshot = view.node(&node).cloned().unwrap_or_default();
        return Ok(Json(ObserveNode::new(snapshot, status)).into_response());
    }
    let snapshot: NodeMetricsSnapshot =
        ask_agent(&master, cluster_id, &node, "node_detail", Map::new()).await?;
    Ok(Json(ObserveNode::new(snapshot, status)).into_response())
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

/// `GET /api/v2/observe/metrics/nodes/{name}/series?cluster_id=`: through the agent
/// (`node_series`).
pub(crate) async fn observe_series(
    State(master): State<Master>,
    headers: HeaderMap,
    Path(node): Path<String>,
    query: Params,
) -> Result<Response, ApiError> {
    master.require(&headers, Role::Viewer)?;
    let query = params(query)?;
    let cluster_id = observe_cluster(&query)?;
    let range = series_params(&query)?;
    if !master.inner.hub.agent_online(cluster_id) && master.inner.hub.contains(cluster_id) {
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
    Ok(Json(Envelope::ok(points)).into_response())
}

/// `POST /api/v2/commands` (operator): 201 `{command_id, status}`.
pub(crate) async fn create_command(
    State(master): State<Master>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    master.require(&headers, Role::Operator)?;
    let inner = &master.inner;
    let max_params = inner.config.max_command_params;
    // Stop reading a body that cannot hold an acceptable command, before it is all in memory.
    let body_limit = inner
        .config
        .json_body_limit
        .min(max_params.saturating_add(COMMAND_FIELDS_BYTES));
    let what = format!("command (params may be at most {max_params} bytes of JSON)");
    let bytes = read_body(body, body_limit, &what).await?;
    let create: CreateCommand = parse_json(&bytes, "command")?;
    let params_bytes = serde_json::to_vec(&create.params)
        .map_err(|e| ApiError::bad_request(format!("command params: {e}")))?
        .len();
    if params_bytes > max_params {
        return Err(ApiError::too_large(format!(
            "command params are {params_bytes} bytes of JSON, more than the {max_params} allowed \
             (MASTER_MAX_COMMAND_PARAMS)"
        )));
    }
    valid_cluster_id(&create.cluster_id)?;
    if create.action.is_empty() || create.action.len() > 64 {
        return Err(ApiError::bad_request("action must be 1 to 64 characters"));
    }
    if !inner.hub.contains(&create.cluster_id) {
        return Err(ApiError::not_found(format!(
            "cluster {} not found",
            create.cluster_id
        )));
    }
    let timeout = match create.timeout_secs {
        None => inner.config.command_timeout,
        Some(s) if (1..=MAX_COMMAND_TIMEOUT_SECS).contains(&s) => Duration::from_secs(s),
        Some(s) => {
            return Err(ApiError::bad_request(format!(
                "timeout_secs must be from 1 to {MAX_COMMAND_TIMEOUT_SECS}, got {s}"
            )));
        }
    };
    let record = master
        .queue_command(NewCommand {
            cluster_id: create.cluster_id,
            action: create.action,
            target_kind: create.target_kind,
            target_namespace: create.target_namespace,
            target_name: create.target_name,
            params: create.params,
            timeout,
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CommandCreated {
            command_id: record.command_id,
            status: record.status,
        }),
    )
        .into_response())
}

/// `GET /api/v2/commands/{id}`.
pub(crate) async fn get_command(
    State(master): State<Master>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<CommandRecord>, ApiError> {
    master.require(&headers, Role::Viewer)?;
    let inner = &master.inner;
    match inner.commands.get(&id).await {
        Ok(Some(record)) => Ok(Json(record)),
        Ok(None) => Err(ApiError::not_found(format!("command {id} not found"))),
        Err(e) => {
            inner.count_store_error();
            Err(ApiError::store("reading a command", &e))
        }
    }
}

/// `GET /api/v2/commands?cluster_id=&status=&action=&limit=&offset=`.
pub(crate) async fn list_commands(
    State(master): State<Master>,
    headers: HeaderMap,
    query: Params,
) -> Result<Json<Vec<CommandRecord>>, ApiError> {
    master.require(&headers, Role::Viewer)?;
    let query = params(query)?;
    let number = |name: &str, max: usize| -> Result<Option<usize>, ApiError> {
        query
            .get(name)
            .map(|v| match v.trim().parse::<usize>() {
                Ok(n) if n <= max => Ok(n),
                _ => Err(ApiError::bad_request(format!(
                    "{name} must be an integer from 0 to {max}, got {v:?}"
                ))),
            })
            .transpose()
    };
    let filter = CommandFilter {
        cluster_id: query.get("cluster_id").cloned().filter(|s| !s.is_empty()),
        status: query
            .get("status")
            .map(|s| s.parse::<CommandStatus>())
            .transpose()
            .map_err(|e| ApiError::bad_request(e.to_string()))?,
        action: query.get("action").cloned().filter(|s| !s.is_empty()),
        limit: Some(number("limit", 1000)?.unwrap_or(100)),
        offset: number("offset", usize::MAX)?.unwrap_or(0),
    };
    let inner = &master.inner;
    inner.commands.list(&filter).await.map(Json).map_err(|e| {
        inner.count_store_error();
        ApiError::store("listing commands", &e)
    })
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
