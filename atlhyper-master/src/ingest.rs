//! The agent side (AtlHyper v2 routes): snapshots, heartbeats, the command long poll and
//! command results; and the ingest of a snapshot into the hub and the stores.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use atlhyper_http::GunzipError;
use atlhyper_model::{
    ClockPolicy, ClusterSnapshot, CommandPoll, CommandResult, Heartbeat, MetricsDataPoint,
    NodeMetricsSnapshot, RejectedNode, SnapshotBounds, StatusBody, truncate_utf8,
};
use atlhyper_store::{AgentSeen, HistoryQuery, SeenVia, StoreError};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use http_body_util::{BodyExt, Limited};
use serde::Deserialize;

use crate::Master;
use crate::admission::{AdmissionRules, admit, settle_time};
use crate::error::ApiError;
use crate::footprint::footprint;
use crate::hub::{ClusterEntry, ClusterView, IngestMark};

/// Reads a body of at most `limit` bytes (413 above).
pub(crate) async fn read_body(body: Body, limit: usize, what: &str) -> Result<Bytes, ApiError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::too_large(format!(
            "{what} is larger than {limit} bytes"
        ))),
        Err(_) => Err(ApiError::bad_request(format!(
            "{what}: could not read the body"
        ))),
    }
}

/// Parses a JSON body read with [`read_body`].
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &str,
) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("{what}: {e}")))
}

/// Gunzips `body` when it is gzip (by header or magic bytes), refusing more than `limit` bytes.
fn decompress(body: Bytes, gzip_header: bool, limit: usize) -> Result<Bytes, ApiError> {
    if !(gzip_header || atlhyper_http::is_gzip(&body)) {
        if body.len() > limit {
            return Err(ApiError::too_large(format!(
                "snapshot is larger than {limit} bytes"
            )));
        }
        return Ok(body);
    }
    match atlhyper_http::gunzip_limited(&body, limit) {
        Ok(json) => Ok(Bytes::from(json)),
        Err(GunzipError::TooLarge { limit }) => Err(ApiError::too_large(format!(
            "snapshot decompresses to more than {limit} bytes"
        ))),
        Err(GunzipError::Invalid(e)) => Err(ApiError::bad_request(format!(
            "snapshot: bad gzip data: {e}"
        ))),
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn remote_addr(parts: &Parts) -> String {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_default()
}

/// What happened to a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    /// Stored and published (its nodes that were refused alone are listed in the report).
    Accepted,
    /// Its seq (and timestamp) were not newer than the last accepted one: acknowledged, ignored.
    Duplicate,
}

/// The answer to one snapshot: what happened to it, and the nodes refused alone (the rest was
/// stored), each with its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestReport {
    /// Accepted or a duplicate.
    pub outcome: Ingested,
    /// Nodes refused alone, in name order (at most 10,000 listed; all are counted on
    /// `/metrics`).
    pub rejected: Vec<RejectedNode>,
}

impl IngestReport {
    fn duplicate() -> Self {
        Self {
            outcome: Ingested::Duplicate,
            rejected: Vec::new(),
        }
    }

    /// The `POST /agent/snapshot` answer.
    fn into_status(self) -> StatusBody {
        let mut body = StatusBody::with_status(match self.outcome {
            Ingested::Accepted => "ok",
            Ingested::Duplicate => "duplicate",
        });
        body.rejected = self.rejected;
        body
    }
}

/// `POST /agent/snapshot`.
pub(crate) async fn post_snapshot(
    State(master): State<Master>,
    request: axum::extract::Request,
) -> Result<Json<StatusBody>, ApiError> {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let result = snapshot_request(&master, &parts, body).await;
    let stats = &master.inner.stats;
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
    let config = &master.inner.config;
    let header_cluster = header_str(&parts.headers, "x-cluster-id");
    // Identity first: an unauthenticated sender gets 401 before we read its body.
    let identity = master
        .inner
        .tokens
        .agent_identity(&parts.headers, &[header_cluster])?;
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
        let stats = &master.inner.stats;
        stats
            .snapshot_bytes_compressed
            .fetch_add(compressed_len as u64, Ordering::Relaxed);
        stats
            .snapshot_bytes_decompressed
            .fetch_add(decompressed_len as u64, Ordering::Relaxed);
    }
    Ok(report)
}

/// Snapshot contacts are written to the agent registry at most this often per agent.
const REGISTRY_EVERY: chrono::Duration = chrono::Duration::seconds(5);

fn bucket_of(ts: DateTime<Utc>, interval_ms: i64) -> i64 {
    ts.timestamp_millis().div_euclid(interval_ms)
}

fn bucket_start(bucket: i64, interval_ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(bucket.saturating_mul(interval_ms)).unwrap_or_default()
}

impl Master {
    /// What ingest accepts of one snapshot, from the configuration.
    fn admission_rules(&self) -> AdmissionRules {
        let config = &self.inner.config;
        AdmissionRules {
            bounds: SnapshotBounds::default(),
            clock: ClockPolicy {
                max_ahead: config.max_clock_ahead,
                max_age: config.retention,
            },
            max_nodes: config.max_nodes_per_cluster,
            max_backfill_per_node: crate::admission::MAX_BACKFILL_POINTS_PER_NODE,
            backfill_ahead: chrono::Duration::from_std(config.history_interval)
                .unwrap_or(chrono::Duration::MAX),
        }
    }

    /// Ingests one snapshot of `cluster_id` (the authenticated identity): settles the
    /// snapshot's time, checks its seq, admits every node alone (bounds, node cap, memory
    /// budget, clock: see the `admission` rules; refused nodes are listed in the report),
    /// upserts every admitted node's latest snapshot, adds history points (one per node per
    /// history interval, by the points' timestamps), merges the agent's backfill without
    /// duplicates, records the agent as seen and publishes the new view.
    ///
    /// On a store failure the view is still published (readers see fresh figures) but the seq
    /// is not recorded, so the agent's retry is stored; the error is a 503. Numbers must be
    /// finite (JSON carries no others); a snapshot built in code with a NaN is refused whole.
    pub async fn ingest_snapshot(
        &self,
        cluster_id: &str,
        mut snapshot: ClusterSnapshot,
        remote_addr: &str,
    ) -> Result<IngestReport, ApiError> {
        crate::auth::valid_cluster_id(cluster_id)?;
        snapshot.cluster_id = cluster_id.to_owned();
        let rules = self.admission_rules();
        truncate_utf8(&mut snapshot.agent_version, rules.bounds.max_string_bytes);
        let entry = self.inner.hub.entry(cluster_id);
        let mut mark = entry.ingest.lock().await;
        let now = Utc::now();
        // The agent's own clock far off must not make every later snapshot a "duplicate".
        snapshot.timestamp = settle_time(&rules.clock, snapshot.timestamp, now);
        if is_duplicate(&mark, &snapshot) {
            return Ok(IngestReport::duplicate());
        }
        // Deleted or retired nodes the agent still lists as offline stay out.
        entry.drop_unknown_offline(&mut snapshot);
        let held = mark.held_nodes.get_or_insert_with(|| {
            entry
                .view()
                .map(|v| v.snapshot.node_metrics.keys().cloned().collect())
                .unwrap_or_default()
        });
        let admission = admit(&mut snapshot, held, &rules, now);
        for name in snapshot.node_metrics.keys() {
            if !held.contains(name) {
                held.insert(name.clone());
            }
        }
        self.inner.stats.count_admission(&admission);
        if let Some(first) = admission.rejected.first() {
            tracing::warn!(
                cluster = cluster_id,
                refused = admission.refused.iter().sum::<u64>(),
                first_node = %first.node_name,
                first_reason = %first.reason,
                first_error = %first.error,
                "nodes refused alone"
            );
        }
        let persisted = self.persist(&entry, &mut mark, &mut snapshot, now).await;

        let view = if snapshot.node_metrics.len() > 200 {
            tokio::task::spawn_blocking(move || ClusterView::new(snapshot, now))
                .await
                .map_err(|_| {
                    ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "building the view failed",
                    )
                })?
        } else {
            ClusterView::new(snapshot, now)
        };
        let (seq, timestamp) = (view.snapshot.seq, view.snapshot.timestamp);
        let agent_version = view.snapshot.agent_version.clone();
        // The dashboard polls the node list: have its gzip form ready before the next poll.
        view.node_metrics_encoded().compress_in_background();
        entry.publish(Arc::new(view));
        entry.heard(now, true);

        persisted?;
        // The registry is for restarts and the agent list; the hub has the exact time. Writing it
        // at most every REGISTRY_EVERY saves a store transaction on most snapshots.
        let due = match &mark.registry_written {
            Some((at, version, addr)) => {
                now - *at >= REGISTRY_EVERY || *version != agent_version || addr != remote_addr
            }
            None => true,
        };
        if due {
            let seen = AgentSeen {
                cluster_id: cluster_id.to_owned(),
                agent_version: agent_version.clone(),
                remote_addr: remote_addr.to_owned(),
                at: now,
                via: SeenVia::Snapshot,
            };
            match self.inner.agents.seen(&seen).await {
                Ok(()) => {
                    mark.registry_written = Some((now, agent_version, remote_addr.to_owned()));
                }
                Err(e) => {
                    self.inner.count_store_error();
                    tracing::warn!(error = %e, cluster = cluster_id, "recording the agent failed");
                }
            }
        }
        mark.last_seq = seq;
        mark.last_timestamp = Some(timestamp);
        Ok(IngestReport {
            outcome: Ingested::Accepted,
            rejected: admission.rejected,
        })
    }

    /// Writes the latest snapshots and the new history points; advances the history buckets
    /// only when the write worked.
    async fn persist(
        &self,
        entry: &ClusterEntry,
        mark: &mut IngestMark,
        snapshot: &mut ClusterSnapshot,
        now: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        let inner = &self.inner;
        let store = &inner.metrics;
        let cluster_id = entry.id.as_str();
        let interval_ms = i64::try_from(inner.config.history_interval.as_millis())
            .unwrap_or(i64::MAX)
            .max(1);
        let newest_ok = now + chrono::Duration::milliseconds(interval_ms);
        let oldest_ok = now
            - chrono::Duration::from_std(inner.config.retention).unwrap_or(chrono::Duration::MAX);

        // History: one point per node per bucket.
        let mut points = Vec::new();
        let mut new_buckets = Vec::new();
        let mut current_bucket = BTreeMap::new();
        for (name, node) in &snapshot.node_metrics {
            if !snapshot.is_node_online(name)
                || node.timestamp > newest_ok
                || node.timestamp < oldest_ok
            {
                continue;
            }
            let bucket = bucket_of(node.timestamp, interval_ms);
            current_bucket.insert(name.clone(), bucket);
            let last = match mark.history_bucket.get(name) {
                Some(b) => Some(*b),
                None => {
                    self.last_stored_bucket(cluster_id, name, bucket, interval_ms, now)
                        .await?
                }
            };
            if last.is_none_or(|last| bucket > last) {
                points.push(MetricsDataPoint::from_snapshot(node));
                new_buckets.push((name.clone(), bucket));
            } else if let Some(last) = last {
                mark.history_bucket.insert(name.clone(), last);
            }
        }

        // Backfill: the first point of every bucket the store does not have yet, before the
        // node's current bucket.
        let backfill = std::mem::take(&mut snapshot.backfill);
        let mut by_node: BTreeMap<&str, Vec<&MetricsDataPoint>> = BTreeMap::new();
        for p in &backfill {
            if !p.node_name.is_empty() && p.timestamp <= newest_ok && p.timestamp >= oldest_ok {
                by_node.entry(p.node_name.as_str()).or_default().push(p);
            }
        }
        for (name, mut list) in by_node {
            list.sort_by_key(|p| p.timestamp);
            let upper = current_bucket.get(name).copied().unwrap_or(i64::MAX);
            list.retain(|p| bucket_of(p.timestamp, interval_ms) < upper);
            let (Some(first), Some(last)) = (list.first(), list.last()) else {
                continue;
            };
            let query = HistoryQuery {
                cluster_id: cluster_id.to_owned(),
                node_name: name.to_owned(),
                from: bucket_start(bucket_of(first.timestamp, interval_ms), interval_ms),
                to: bucket_start(bucket_of(last.timestamp, interval_ms) + 1, interval_ms),
                max_points: None,
            };
            let stored = store.history(&query).await.map_err(|e| {
                inner.count_store_error();
                ApiError::store("reading history", &e)
            })?;
            let mut have: HashSet<i64> = stored
                .iter()
                .map(|p| bucket_of(p.timestamp, interval_ms))
                .collect();
            for p in list {
                if have.insert(bucket_of(p.timestamp, interval_ms)) {
                    points.push(p.clone());
                }
            }
        }

        // Latest: move the nodes out for the batch and back afterwards (no copy).
        let nodes: Vec<NodeMetricsSnapshot> = std::mem::take(&mut snapshot.node_metrics)
            .into_values()
            .collect();
        let upserted = store.upsert_latest(cluster_id, &nodes).await;
        snapshot.node_metrics = nodes
            .into_iter()
            .map(|n| (n.node_name.clone(), n))
            .collect();
        upserted.map_err(|e| {
            inner.count_store_error();
            ApiError::store("storing the latest snapshots", &e)
        })?;

        if !points.is_empty() {
            let written = store
                .append_history(cluster_id, &points)
                .await
                .map_err(|e| {
                    inner.count_store_error();
                    ApiError::store("storing history", &e)
                })?;
            inner
                .stats
                .history_points
                .fetch_add(written as u64, Ordering::Relaxed);
        }
        for (name, bucket) in new_buckets {
            mark.history_bucket.insert(name, bucket);
        }
        Ok(())
    }

    /// The newest history bucket the store has for a node at or after `bucket` (a node this
    /// process has not seen yet may have points from before a restart).
    async fn last_stored_bucket(
        &self,
        cluster_id: &str,
        node: &str,
        bucket: i64,
        interval_ms: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>, ApiError> {
        let query = HistoryQuery {
            cluster_id: cluster_id.to_owned(),
            node_name: node.to_owned(),
            from: bucket_start(bucket, interval_ms),
            to: now + chrono::Duration::milliseconds(interval_ms),
            max_points: None,
        };
        let stored = self.inner.metrics.history(&query).await.map_err(|e| {
            self.inner.count_store_error();
            ApiError::store("reading history", &e)
        })?;
        Ok(stored
            .iter()
            .map(|p| bucket_of(p.timestamp, interval_ms))
            .max())
    }
}

/// A snapshot is a duplicate (a retry or a reordered old one) when its seq is not above the last
/// accepted one and it is not newer either. A restarted agent starts its seq again at 1 but
/// sends newer timestamps, so it is accepted.
fn is_duplicate(mark: &IngestMark, snapshot: &ClusterSnapshot) -> bool {
    let Some(last_ts) = mark.last_timestamp else {
        return false;
    };
    snapshot.seq <= mark.last_seq && snapshot.timestamp <= last_ts
}

/// `POST /agent/heartbeat`.
pub(crate) async fn post_heartbeat(
    State(master): State<Master>,
    request: axum::extract::Request,
) -> Result<Json<StatusBody>, ApiError> {
    let (parts, body) = request.into_parts();
    let inner = &master.inner;
    let header_cluster = header_str(&parts.headers, "x-cluster-id");
    if inner.tokens.agents_need_token() {
        inner
            .tokens
            .agent_identity(&parts.headers, &[header_cluster])?;
    }
    let bytes = read_body(body, inner.config.json_body_limit, "heartbeat").await?;
    let heartbeat: Heartbeat = parse_json(&bytes, "heartbeat")?;
    let identity = inner.tokens.agent_identity(
        &parts.headers,
        &[header_cluster, Some(&heartbeat.cluster_id)],
    )?;
    let now = Utc::now();
    inner.hub.entry(&identity).heard(now, false);
    inner.stats.heartbeats.fetch_add(1, Ordering::Relaxed);
    let seen = AgentSeen {
        cluster_id: identity,
        agent_version: heartbeat.agent_version,
        remote_addr: remote_addr(&parts),
        at: now,
        via: SeenVia::Heartbeat,
    };
    inner.agents.seen(&seen).await.map_err(|e| {
        inner.count_store_error();
        ApiError::store("recording the heartbeat", &e)
    })?;
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
    query: Result<Query<PollQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<CommandPoll>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let inner = &master.inner;
    let identity = inner.tokens.agent_identity(
        &headers,
        &[
            header_str(&headers, "x-cluster-id"),
            query.cluster_id.as_deref(),
        ],
    )?;
    let entry = inner.hub.entry(&identity);
    let deadline = tokio::time::Instant::now() + inner.config.long_poll_timeout;
    loop {
        // Register for the wake-up before looking, so a command queued in between is not missed.
        let notified = entry.commands_ready.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if let Some(record) = inner.transient.take(&identity) {
            return Ok(Json(CommandPoll::with(record.to_command())));
        }
        let taken = inner
            .commands
            .take(&identity, 1, inner.config.command_lease, Utc::now())
            .await
            .map_err(|e| {
                inner.count_store_error();
                ApiError::store("taking a command", &e)
            })?;
        if let Some(record) = taken.into_iter().next() {
            return Ok(Json(CommandPoll::with(record.to_command())));
        }
        tokio::select! {
            () = &mut notified => {}
            () = tokio::time::sleep_until(deadline) => return Ok(Json(CommandPoll::empty())),
            () = inner.shutdown.cancelled() => return Ok(Json(CommandPoll::empty())),
        }
    }
}

/// `POST /agent/result`: accepted only for a command of the agent's own cluster (404 otherwise,
/// nothing changes).
pub(crate) async fn post_result(
    State(master): State<Master>,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let inner = &master.inner;
    let header_cluster = header_str(&parts.headers, "x-cluster-id");
    if inner.tokens.agents_need_token() {
        inner
            .tokens
            .agent_identity(&parts.headers, &[header_cluster])?;
    }
    let bytes = read_body(body, inner.config.json_body_limit, "result").await?;
    let mut result: CommandResult = parse_json(&bytes, "result")?;
    let identity = inner
        .tokens
        .agent_identity(&parts.headers, &[header_cluster, Some(&result.cluster_id)])?;
    if result.command_id.is_empty() {
        return Err(ApiError::bad_request("command_id is required"));
    }
    result.cluster_id = identity;
    if let Some(record) = inner.transient.complete(&result) {
        inner.stats.command_results.fetch_add(1, Ordering::Relaxed);
        inner.waiters.wake(&record);
        return Ok(Json(StatusBody::ok()).into_response());
    }
    match inner.commands.complete(&result, Utc::now()).await {
        Ok(record) => {
            inner.stats.command_results.fetch_add(1, Ordering::Relaxed);
            inner.waiters.wake(&record);
            Ok(Json(StatusBody::ok()).into_response())
        }
        Err(StoreError::NotFound(_)) => Err(ApiError::not_found(format!(
            "command {} not found for this cluster",
            result.command_id
        ))),
        Err(e) => {
            inner.count_store_error();
            Err(ApiError::store("recording the result", &e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gz(data: &[u8]) -> Bytes {
        Bytes::from(atlhyper_http::gzip(data, 1))
    }

    #[test]
    fn decompress_limits() {
        let plain = Bytes::from_static(b"{\"cluster_id\":\"a\"}");
        assert_eq!(decompress(plain.clone(), false, 100).unwrap(), plain);
        assert_eq!(decompress(gz(&plain), false, 100).unwrap(), plain);
        assert_eq!(decompress(gz(&plain), true, 100).unwrap(), plain);
        let bomb = gz(&vec![b' '; 10_000]);
        assert_eq!(decompress(bomb, true, 1000).unwrap_err().status, 413);
        assert_eq!(
            decompress(plain.clone(), true, 100).unwrap_err().status,
            400
        );
        assert_eq!(decompress(plain, false, 5).unwrap_err().status, 413);
    }

    #[test]
    fn duplicates() {
        let t0 = Utc::now();
        let mut mark = IngestMark::default();
        let snap = |seq, ts| ClusterSnapshot {
            seq,
            timestamp: ts,
            ..Default::default()
        };
        assert!(!is_duplicate(&mark, &snap(5, t0)));
        mark.last_seq = 5;
        mark.last_timestamp = Some(t0);
        assert!(is_duplicate(&mark, &snap(5, t0)));
        assert!(is_duplicate(
            &mark,
            &snap(4, t0 - chrono::Duration::seconds(10))
        ));
        assert!(!is_duplicate(
            &mark,
            &snap(6, t0 + chrono::Duration::seconds(10))
        ));
        // A restarted agent: seq starts over, time moves on.
        assert!(!is_duplicate(
            &mark,
            &snap(1, t0 + chrono::Duration::seconds(10))
        ));
        // v2 agents send no seq: a retry has the same timestamp.
        mark.last_seq = 0;
        assert!(is_duplicate(&mark, &snap(0, t0)));
        assert!(!is_duplicate(
            &mark,
            &snap(0, t0 + chrono::Duration::seconds(1))
        ));
    }

    #[test]
    fn buckets() {
        let t = DateTime::from_timestamp(600, 0).unwrap();
        assert_eq!(bucket_of(t, 300_000), 2);
        assert_eq!(bucket_start(2, 300_000), t);
        let before_epoch = DateTime::from_timestamp(-1, 0).unwrap();
        assert_eq!(bucket_of(before_epoch, 300_000), -1);
    }
}
