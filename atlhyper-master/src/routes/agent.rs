//! The agent routes (AtlHyper v2): snapshots, heartbeats, the command long poll and command
//! results. Each authenticates the agent by its token, never by what the body says.

use std::sync::atomic::Ordering;
use std::time::Instant;

use atlhyper_http::tls::ClientCertificate;
use atlhyper_model::{ClusterSnapshot, CommandPoll, CommandResult, Heartbeat, StatusBody};
use atlhyper_store::{AgentSeen, SeenVia, StoreError};
use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;

use crate::Master;
use crate::error::ApiError;
use crate::footprint::footprint;
use crate::ingest::{IngestReport, Ingested};
use crate::routes::body::{
    AgentJson, client_cert, decompress, header_str, parse_json, read_agent_json, read_body,
    remote_addr,
};

/// `POST /agent/snapshot`.
pub(crate) async fn post_snapshot(
    State(master): State<Master>,
    request: Request,
) -> Result<Json<StatusBody>, ApiError> {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let result = snapshot_request(&master, &parts, body).await;
    let stats = &master.stats;
    match result.as_ref().map(|r| r.outcome) {
        Ok(Ingested::Accepted) => {
            stats.snapshots_accepted.fetch_add(1, Ordering::Relaxed);
            stats.ingest_latency.observe(started.elapsed());
        }
        Ok(Ingested::Duplicate) => {
            stats.snapshots_duplicate.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => {
            stats.snapshots_rejected.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(status = %e.status, error = %e.message, "snapshot rejected");
        }
    }
    result.map(|r| Json(r.into_status()))
}

async fn snapshot_request(
    master: &Master,
    parts: &Parts,
    body: Body,
) -> Result<IngestReport, ApiError> {
    let config = &master.config;
    let header_cluster = header_str(&parts.headers, "x-cluster-id");
    // Identity first: an unauthenticated sender gets 401 before we read its body.
    let identity =
        master
            .tokens
            .agent_identity(&parts.headers, client_cert(parts), &[header_cluster])?;
    let raw = read_body(body, config.snapshot_body_limit, "snapshot").await?;
    let compressed_len = raw.len();
    let gzip_header = header_str(&parts.headers, header::CONTENT_ENCODING.as_str())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let limit = config.snapshot_decompressed_limit;
    let budget = config.snapshot_memory_budget();
    let decode = move || -> Result<(ClusterSnapshot, usize), ApiError> {
        let json = decompress(raw, gzip_header, limit)?;
        // Refuse what would take too much memory once parsed before parsing it; a body that
        // does not even have the snapshot's shape gets the parser's own error below.
        if let Ok(bytes) = footprint(&json)
            && bytes > budget
        {
            return Err(ApiError::too_large(format!(
                "snapshot would take about {bytes} bytes of memory once read (its lists hold \
                 that many entries); at most {budget} are accepted"
            )));
        }
        let snapshot = parse_json::<ClusterSnapshot>(&json, "snapshot")?;
        Ok((snapshot, json.len()))
    };
    // Big snapshots take milliseconds to inflate and parse: keep them off the async workers.
    let (snapshot, decompressed_len) = if compressed_len > 64 * 1024 {
        tokio::task::spawn_blocking(decode).await.map_err(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "snapshot decoding failed",
            )
        })??
    } else {
        decode()?
    };
    if !snapshot.cluster_id.is_empty() && snapshot.cluster_id != identity {
        return Err(ApiError::forbidden(
            "the snapshot's cluster_id does not match the agent's cluster",
        ));
    }
    let report = master
        .ingest_snapshot(&identity, snapshot, &remote_addr(parts))
        .await?;
    if report.outcome == Ingested::Accepted {
        let stats = &master.stats;
        stats
            .snapshot_bytes_compressed
            .fetch_add(compressed_len as u64, Ordering::Relaxed);
        stats
            .snapshot_bytes_decompressed
            .fetch_add(decompressed_len as u64, Ordering::Relaxed);
    }
    Ok(report)
}

/// `POST /agent/heartbeat`.
pub(crate) async fn post_heartbeat(
    State(master): State<Master>,
    request: Request,
) -> Result<Json<StatusBody>, ApiError> {
    let AgentJson {
        cluster_id,
        body: heartbeat,
        remote_addr,
    } = read_agent_json(&master, request, "heartbeat", |h: &Heartbeat| &h.cluster_id).await?;
    let now = Utc::now();
    master.hub.entry(&cluster_id).heard(now, false);
    master.fleet.tell(crate::fleet::News::Heard {
        cluster: cluster_id.clone(),
        at_ms: now.timestamp_millis(),
    });
    master.stats.heartbeats.fetch_add(1, Ordering::Relaxed);
    let seen = AgentSeen {
        cluster_id,
        agent_version: heartbeat.agent_version,
        remote_addr,
        at: now,
        via: SeenVia::Heartbeat,
    };
    master
        .agents
        .seen(&seen)
        .await
        .map_err(master.store_failed("recording the heartbeat"))?;
    Ok(Json(StatusBody::ok()))
}

/// `GET /agent/commands` query.
#[derive(Debug, Deserialize)]
pub(crate) struct PollQuery {
    #[serde(default)]
    cluster_id: Option<String>,
    /// AtlHyper v2 topics (`ops`, `ai`); every topic gets the cluster's commands.
    #[serde(default)]
    #[allow(dead_code)]
    topic: Option<String>,
}

/// `GET /agent/commands`: long poll; answers at once when a command is pending, otherwise waits
/// for one to be queued (woken immediately) up to the long-poll timeout.
pub(crate) async fn get_commands(
    State(master): State<Master>,
    headers: HeaderMap,
    cert: Option<Extension<ClientCertificate>>,
    query: Result<Query<PollQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<CommandPoll>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let identity = master.tokens.agent_identity(
        &headers,
        cert.as_ref().map(|Extension(c)| c),
        &[
            header_str(&headers, "x-cluster-id"),
            query.cluster_id.as_deref(),
        ],
    )?;
    let entry = master.hub.entry(&identity);
    let _polling = entry.polling();
    let deadline = tokio::time::Instant::now() + master.config.long_poll_timeout;
    loop {
        // Register for the wake-up before looking, so a command queued in between is not missed.
        let notified = entry.commands_ready.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if let Some(record) = master.transient.take(&identity) {
            return Ok(Json(CommandPoll::with(record.to_command())));
        }
        let taken = master
            .commands
            .take(&identity, 1, master.config.command_lease, Utc::now())
            .await
            .map_err(master.store_failed("taking a command"))?;
        if let Some(record) = taken.into_iter().next() {
            return Ok(Json(CommandPoll::with(record.to_command())));
        }
        tokio::select! {
            () = &mut notified => {}
            () = tokio::time::sleep_until(deadline) => return Ok(Json(CommandPoll::empty())),
            () = master.shutdown.cancelled() => return Ok(Json(CommandPoll::empty())),
        }
    }
}

/// `POST /agent/result`: accepted only for a command of the agent's own cluster (404 otherwise,
/// nothing changes).
pub(crate) async fn post_result(
    State(master): State<Master>,
    request: Request,
) -> Result<Response, ApiError> {
    let AgentJson {
        cluster_id,
        body: mut result,
        ..
    } = read_agent_json(&master, request, "result", |r: &CommandResult| {
        &r.cluster_id
    })
    .await?;
    if result.command_id.is_empty() {
        return Err(ApiError::bad_request("command_id is required"));
    }
    result.cluster_id = cluster_id;
    if let Some(record) = master.transient.complete(&result) {
        master.stats.command_results.fetch_add(1, Ordering::Relaxed);
        master.waiters.wake(&record);
        return Ok(Json(StatusBody::ok()).into_response());
    }
    match master.commands.complete(&result, Utc::now()).await {
        Ok(record) => {
            master.stats.command_results.fetch_add(1, Ordering::Relaxed);
            master.waiters.wake(&record);
            // The request waiting for it may be on another master.
            master.fleet.tell(crate::fleet::News::Result {
                command_id: record.command_id.clone(),
            });
            Ok(Json(StatusBody::ok()).into_response())
        }
        Err(StoreError::NotFound(_)) => Err(ApiError::not_found(format!(
            "command {} not found for this cluster",
            result.command_id
        ))),
        Err(e) => Err(master.store_failed("recording the result")(e)),
    }
}
