//! The series routes (viewer reads; see docs/series-api.md): a node's catalog and series, a
//! cluster's trend, and the fleet at a glance.

use std::collections::HashMap;

use atlhyper_model::{AlertState, Severity};
use atlhyper_store::{Figure, HOUR_MS, SeriesQuery};
use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Serialize;

use crate::Master;
use crate::auth::valid_cluster_id;
use crate::error::ApiError;
use crate::routes::respond::{Params, params};
use crate::series::query::{
    CLUSTER_FIGURES, Point, Window, add_open, cluster_points, device_points, parse_figure, step_of,
    window,
};

/// How far back the catalog looks for a node's series.
const CATALOG_SINCE_MS: i64 = 7 * 24 * HOUR_MS;

/// One figure of a node's catalog.
#[derive(Debug, Serialize)]
pub(crate) struct CatalogFigure {
    figure: &'static str,
    unit: &'static str,
    devices: Vec<String>,
}

/// `{"figures": [...]}`.
#[derive(Debug, Serialize)]
pub(crate) struct Catalog {
    figures: Vec<CatalogFigure>,
}

/// One device's points.
#[derive(Debug, Serialize)]
pub(crate) struct DeviceSeries {
    device: String,
    points: Vec<Point>,
    /// The `ts_ms` of the point that holds the interval still open (its figures change until
    /// the interval ends); absent when no point does.
    #[serde(skip_serializing_if = "Option::is_none")]
    partial_ts: Option<i64>,
}

/// A node's series of one figure.
#[derive(Debug, Serialize)]
pub(crate) struct NodeSeries {
    cluster_id: String,
    node: String,
    figure: &'static str,
    unit: &'static str,
    step: i64,
    from: i64,
    to: i64,
    tier: u8,
    series: Vec<DeviceSeries>,
}

/// A cluster's trend of one figure.
#[derive(Debug, Serialize)]
pub(crate) struct ClusterSeries {
    cluster_id: String,
    figure: &'static str,
    unit: &'static str,
    step: i64,
    from: i64,
    to: i64,
    tier: u8,
    series: Vec<DeviceSeries>,
}

/// 404 unless the master knows the cluster (in memory or with stored series).
async fn known_cluster(master: &Master, cluster_id: &str) -> Result<(), ApiError> {
    valid_cluster_id(cluster_id).map_err(|_| not_found_cluster(cluster_id))?;
    if master.hub.contains(cluster_id) {
        return Ok(());
    }
    let stored = master
        .series
        .series_clusters()
        .await
        .map_err(master.store_failed("reading series"))?;
    if stored.iter().any(|c| c == cluster_id) {
        Ok(())
    } else {
        Err(not_found_cluster(cluster_id))
    }
}

fn not_found_cluster(cluster_id: &str) -> ApiError {
    ApiError::not_found(format!("cluster {cluster_id} not found"))
}

/// 404 unless the master knows the node (in the cluster's view or with stored series).
async fn known_node(master: &Master, cluster_id: &str, node: &str) -> Result<(), ApiError> {
    known_cluster(master, cluster_id).await?;
    if master
        .hub
        .view(cluster_id)
        .is_some_and(|v| v.node(node).is_some())
    {
        return Ok(());
    }
    let stored = master
        .series
        .series_nodes(cluster_id)
        .await
        .map_err(master.store_failed("reading series"))?;
    if stored.iter().any(|n| n == node) {
        Ok(())
    } else {
        Err(ApiError::not_found(format!(
            "node {node} not found in cluster {cluster_id}"
        )))
    }
}

/// `GET /api/v2/clusters/{id}/node-metrics/{node}/series`: the catalog without `figure`, else
/// the figure's series.
pub(crate) async fn node_series(
    State(master): State<Master>,
    Path((cluster_id, node)): Path<(String, String)>,
    query: Params,
) -> Result<Response, ApiError> {
    let query = params(query)?;
    let Some(figure) = query.get("figure") else {
        known_node(&master, &cluster_id, &node).await?;
        let catalog = catalog(&master, &cluster_id, &node).await?;
        return Ok(Json(catalog).into_response());
    };
    let figure = parse_figure(figure)?;
    let now_ms = Utc::now().timestamp_millis();
    let w = window(&query, now_ms, master.series_tiers())?;
    let device = query.get("device").cloned();
    known_node(&master, &cluster_id, &node).await?;
    let mut rows = master
        .series
        .read_series(&SeriesQuery {
            cluster_id: cluster_id.clone(),
            node_name: Some(node.clone()),
            tier: w.tier,
            from_ms: w.from_ms,
            to_ms: w.to_ms,
            figure: Some(figure),
            device: device.clone(),
        })
        .await
        .map_err(master.store_failed("reading series"))?;
    let open = master
        .series_open
        .open_row(&cluster_id, &node, Some(figure), device.as_deref());
    let open = add_open(&mut rows, open.into_iter().collect(), w);
    let series = device_points(&rows, w.step_ms)
        .into_iter()
        .map(|(device, points)| {
            let partial_ts = open
                .iter()
                .find(|o| o.series.iter().any(|(k, _)| k.device == device))
                .map(|o| step_of(o.start_ms, w.step_ms));
            DeviceSeries {
                device,
                points,
                partial_ts,
            }
        })
        .collect();
    Ok(Json(NodeSeries {
        cluster_id,
        node,
        figure: figure.name(),
        unit: figure.unit(),
        step: w.step_ms / 1000,
        from: w.from_ms,
        to: w.to_ms,
        tier: w.tier,
        series,
    })
    .into_response())
}

async fn catalog(master: &Master, cluster_id: &str, node: &str) -> Result<Catalog, ApiError> {
    let since = Utc::now()
        .timestamp_millis()
        .saturating_sub(CATALOG_SINCE_MS);
    let mut keys = master
        .series
        .series_keys(cluster_id, node, 0, since)
        .await
        .map_err(master.store_failed("reading series"))?;
    if keys.is_empty() {
        // Only hourly rows left (a node silent for longer than tier 0 keeps).
        keys = master
            .series
            .series_keys(cluster_id, node, 1, i64::MIN)
            .await
            .map_err(master.store_failed("reading series"))?;
    }
    // The open interval: a node seen for the first time has figures before its first row.
    if let Some(open) = master.series_open.open_row(cluster_id, node, None, None) {
        keys.extend(open.series.into_iter().map(|(k, _)| k));
        keys.sort();
        keys.dedup();
    }
    let mut figures: Vec<CatalogFigure> = Vec::new();
    for key in keys {
        // Keys are sorted by figure (catalog order), then device.
        match figures.last_mut() {
            Some(last) if last.figure == key.figure.name() => {
                if key.figure.per_device() {
                    last.devices.push(key.device);
                }
            }
            _ => figures.push(CatalogFigure {
                figure: key.figure.name(),
                unit: key.figure.unit(),
                devices: if key.figure.per_device() {
                    vec![key.device]
                } else {
                    Vec::new()
                },
            }),
        }
    }
    Ok(Catalog { figures })
}

/// `GET /api/v2/clusters/{id}/series?figure=&from=&to=&step=`: the cluster trend.
pub(crate) async fn cluster_series(
    State(master): State<Master>,
    Path(cluster_id): Path<String>,
    query: Params,
) -> Result<Json<ClusterSeries>, ApiError> {
    let query = params(query)?;
    let text = query
        .get("figure")
        .ok_or_else(|| ApiError::bad_request("figure is required"))?;
    let figure = parse_figure(text)?;
    if !CLUSTER_FIGURES.contains(&figure) {
        return Err(ApiError::bad_request(format!(
            "figure {text:?} has no cluster trend; use one of {}",
            CLUSTER_FIGURES.map(Figure::name).join(", ")
        )));
    }
    let w = window(&query, Utc::now().timestamp_millis(), master.series_tiers())?;
    known_cluster(&master, &cluster_id).await?;
    let (avg, max, partial_ts) = cluster_trend(&master, &cluster_id, figure, w).await?;
    Ok(Json(ClusterSeries {
        cluster_id,
        figure: figure.name(),
        unit: figure.unit(),
        step: w.step_ms / 1000,
        from: w.from_ms,
        to: w.to_ms,
        tier: w.tier,
        series: vec![
            DeviceSeries {
                device: "avg".to_owned(),
                points: avg,
                partial_ts,
            },
            DeviceSeries {
                device: "max".to_owned(),
                points: max,
                partial_ts,
            },
        ],
    }))
}

/// The cluster trend's `avg` and `max` series, with the open intervals of the nodes (see
/// [`add_open`]); and the step that holds open intervals, if any.
async fn cluster_trend(
    master: &Master,
    cluster_id: &str,
    figure: Figure,
    w: Window,
) -> Result<(Vec<Point>, Vec<Point>, Option<i64>), ApiError> {
    let mut rows = master
        .series
        .read_series(&SeriesQuery {
            cluster_id: cluster_id.to_owned(),
            node_name: None,
            tier: w.tier,
            from_ms: w.from_ms,
            to_ms: w.to_ms,
            figure: Some(figure),
            device: None,
        })
        .await
        .map_err(master.store_failed("reading series"))?;
    let open = add_open(
        &mut rows,
        master.series_open.open_rows(cluster_id, Some(figure)),
        w,
    );
    let partial_ts = open.iter().map(|o| step_of(o.start_ms, w.step_ms)).max();
    let (avg, max) = cluster_points(figure, &rows, w.step_ms);
    Ok((avg, max, partial_ts))
}

/// Firing alerts of one cluster by severity.
#[derive(Debug, Default, Serialize)]
pub(crate) struct FiringCounts {
    critical: u64,
    warning: u64,
    info: u64,
}

/// `[ts_ms, avg]` per hour.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Sparklines {
    cpu: Vec<(i64, f64)>,
    memory: Vec<(i64, f64)>,
    disk: Vec<(i64, f64)>,
}

/// One cluster at a glance.
#[derive(Debug, Serialize)]
pub(crate) struct FleetCluster {
    cluster_id: String,
    status: &'static str,
    agent_online: bool,
    nodes_total: u64,
    nodes_online: u64,
    nodes_offline: u64,
    alerts_firing: FiringCounts,
    cpu: Option<f64>,
    memory: Option<f64>,
    disk: Option<f64>,
    sparkline: Sparklines,
}

/// `{"clusters": [...]}`.
#[derive(Debug, Serialize)]
pub(crate) struct Fleet {
    clusters: Vec<FleetCluster>,
}

/// `GET /api/v2/fleet`.
pub(crate) async fn fleet(State(master): State<Master>) -> Result<Json<Fleet>, ApiError> {
    let now_ms = Utc::now().timestamp_millis();
    let mut firing: HashMap<String, FiringCounts> = HashMap::new();
    for alert in master.alerting.running().iter() {
        if alert.state != AlertState::Firing {
            continue;
        }
        let Some(cluster) = alert.labels.get("cluster") else {
            continue;
        };
        let counts = firing.entry(cluster.clone()).or_default();
        match alert.labels.get("severity").map(String::as_str) {
            Some(s) if s == Severity::Critical.as_str() => counts.critical += 1,
            Some(s) if s == Severity::Warning.as_str() => counts.warning += 1,
            _ => counts.info += 1,
        }
    }
    // Whole hours from tier 1, the last two (maybe not rolled up yet) from tier 0.
    let recent = (now_ms - 2 * HOUR_MS).div_euclid(HOUR_MS) * HOUR_MS;
    let hourly = Window {
        from_ms: recent - 22 * HOUR_MS,
        to_ms: recent - 1,
        step_ms: HOUR_MS,
        tier: 1,
    };
    let fine = Window {
        from_ms: recent,
        to_ms: now_ms,
        step_ms: HOUR_MS,
        tier: 0,
    };
    let mut clusters = Vec::new();
    for info in master.hub.clusters() {
        let id = info.cluster_id;
        let agent_online = master.hub.agent_online(&id);
        let view = master.hub.view(&id);
        let (mut total, mut online, mut unhealthy) = (0u64, 0u64, 0u64);
        let (mut cpu, mut memory, mut disk) = (Vec::new(), Vec::new(), Vec::new());
        if let Some(view) = &view {
            for (name, node) in &view.snapshot.node_metrics {
                total += 1;
                if !view.is_node_online(name) {
                    continue;
                }
                online += 1;
                if !node.is_healthy() {
                    unhealthy += 1;
                }
                cpu.push(node.cpu.usage_percent);
                memory.push(node.memory.usage_percent);
                if let Some(fullest) = node
                    .disks
                    .iter()
                    .map(|d| d.usage_percent)
                    .max_by(f64::total_cmp)
                {
                    disk.push(fullest);
                }
            }
        }
        let alerts_firing = firing.remove(&id).unwrap_or_default();
        let status = if !agent_online || online == 0 {
            "down"
        } else if online < total || unhealthy > 0 || alerts_firing.critical > 0 {
            "degraded"
        } else {
            "ok"
        };
        let mut sparkline = Sparklines::default();
        for (figure, out) in [
            (Figure::CpuUsage, &mut sparkline.cpu),
            (Figure::MemoryUsage, &mut sparkline.memory),
            (Figure::FsUsage, &mut sparkline.disk),
        ] {
            for w in [hourly, fine] {
                let (avg, _, _) = cluster_trend(&master, &id, figure, w).await?;
                out.extend(avg.into_iter().map(|(ts, _, mean, _)| (ts, mean)));
            }
        }
        clusters.push(FleetCluster {
            cluster_id: id,
            status,
            agent_online,
            nodes_total: total,
            nodes_online: online,
            nodes_offline: total - online,
            alerts_firing,
            cpu: mean(&cpu),
            memory: mean(&memory),
            disk: mean(&disk),
            sparkline,
        });
    }
    Ok(Json(Fleet { clusters }))
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}
