//! The pusher: a ClusterSnapshot to the master every interval, heartbeats, backfill after outages.
//!
//! What the master's answer makes the pusher do:
//!
//! | answer | the batch | next push |
//! |---|---|---|
//! | 2xx | delivered; nodes listed in `rejected` are counted per reason and logged (once per node and reason every 10 min) | after the interval |
//! | 400, 413, 415, 422 (the batch is invalid) | dropped as handled, so its backfill is not sent again; counted per status; the master's error logged | after the interval |
//! | 401, 403, 429, 5xx, any other, no answer | kept: an outage, its points travel as backfill later | after a growing backoff, or the answer's `Retry-After` (up to 5 min) when longer |

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use atlhyper_model::{Heartbeat, MetricsDataPoint, NodeStatus, RejectedNode, StatusBody};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::master::{MasterError, MasterLink};
use crate::node_table::{NodeTable, PushBatch};
use crate::stats::{AgentStats, PUSH_REFUSED_STATUSES, inc};
use atlhyper_http::gzip;

/// The version every agent reports.
pub const AGENT_VERSION: &str = concat!("atlhyper-rs/", env!("CARGO_PKG_VERSION"));

/// The JSON of [`atlhyper_model::ClusterSnapshot`], written from borrowed parts so that node
/// snapshots travel exactly as the nodes sent them. Same field names and omission rules.
#[derive(Serialize)]
struct ClusterSnapshotOut<'a> {
    cluster_id: &'a str,
    timestamp: DateTime<Utc>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    node_metrics: BTreeMap<&'a str, &'a RawValue>,
    #[serde(skip_serializing_if = "is_zero")]
    seq: u64,
    #[serde(skip_serializing_if = "is_empty_str")]
    agent_version: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    node_status: BTreeMap<&'a str, &'a NodeStatus>,
    #[serde(skip_serializing_if = "is_empty_slice")]
    backfill: &'a [MetricsDataPoint],
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn is_empty_str(s: &&str) -> bool {
    s.is_empty()
}

fn is_empty_slice<T>(s: &&[T]) -> bool {
    s.is_empty()
}

/// The ClusterSnapshot JSON of a batch.
pub(crate) fn cluster_snapshot_json(
    cluster_id: &str,
    timestamp: DateTime<Utc>,
    seq: u64,
    batch: &PushBatch,
) -> Vec<u8> {
    let out = ClusterSnapshotOut {
        cluster_id,
        timestamp,
        node_metrics: batch
            .nodes
            .iter()
            .map(|(n, raw, _)| (n.as_str(), &**raw))
            .collect(),
        seq,
        agent_version: AGENT_VERSION,
        node_status: batch
            .nodes
            .iter()
            .map(|(n, _, s)| (n.as_str(), s))
            .collect(),
        backfill: &batch.backfill,
    };
    // Serialising plain data into a Vec cannot fail.
    serde_json::to_vec(&out).unwrap_or_default()
}

/// What one push came to, from the master's answer.
#[derive(Debug)]
pub(crate) enum PushOutcome {
    /// The master took the snapshot; these nodes it refused alone.
    Accepted(Vec<RejectedNode>),
    /// The master says the snapshot is invalid (400, 413, 415, 422): sending it again would get
    /// the same answer.
    Refused {
        /// The HTTP status.
        status: u16,
        /// The master's words (the start of its answer).
        error: String,
    },
    /// No answer, or one worth retrying (401 and 403 until the token is fixed, 5xx, 429, any
    /// other status).
    Failed(MasterError),
}

impl PushOutcome {
    /// Classifies the result of [`MasterLink::post_snapshot`].
    pub(crate) fn of(result: Result<StatusBody, MasterError>) -> Self {
        match result {
            Ok(body) => Self::Accepted(body.rejected),
            Err(MasterError::Status { status, body, .. })
                if PUSH_REFUSED_STATUSES.contains(&status) =>
            {
                Self::Refused {
                    status,
                    error: error_text(&body),
                }
            }
            Err(e) => Self::Failed(e),
        }
    }
}

/// The `error` of a `{"error": "..."}` answer, else the answer as it is.
fn error_text(body: &str) -> String {
    serde_json::from_str::<atlhyper_model::ErrorBody>(body)
        .map(|b| b.error)
        .unwrap_or_else(|_| body.to_owned())
}

/// The longest `Retry-After` of the master the pusher honours; what is missed meanwhile is
/// backfilled from the ring (1 h by default).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// How often the same refusal is logged again.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(600);

/// Says which refusals to log: each (what, why) once, then again every [`REFUSAL_LOG_EVERY`], so
/// a node the master refuses on every push fills no log.
#[derive(Debug, Default)]
pub(crate) struct RefusalLog {
    logged: HashMap<String, (String, Instant)>,
}

impl RefusalLog {
    /// Whether to log that `what` (a node, or the whole batch) was refused because of `why` now.
    pub(crate) fn should_log(&mut self, what: &str, why: &str, now: Instant) -> bool {
        match self.logged.get(what) {
            Some((reason, at))
                if reason == why && now.saturating_duration_since(*at) < REFUSAL_LOG_EVERY =>
            {
                false
            }
            _ => {
                self.logged.insert(what.to_owned(), (why.to_owned(), now));
                true
            }
        }
    }

    /// Forgets refusals logged longer ago than [`REFUSAL_LOG_EVERY`] (once per push: the map
    /// holds only what was refused lately).
    pub(crate) fn forget_old(&mut self, now: Instant) {
        self.logged
            .retain(|_, (_, at)| now.saturating_duration_since(*at) < REFUSAL_LOG_EVERY);
    }
}

/// Carries out `outcome` of the push of `batch` (started at `started`): marks the table, counts,
/// logs, and returns when to push next.
fn after_push(
    outcome: PushOutcome,
    batch: &PushBatch,
    started: Instant,
    ctx: &mut PushContext<'_>,
) -> Instant {
    let now = Instant::now();
    ctx.log.forget_old(now);
    match outcome {
        PushOutcome::Accepted(rejected) => {
            ctx.table.commit_push(batch);
            inc(&ctx.stats.push_ok);
            ctx.stats
                .backfill_points
                .fetch_add(batch.backfill.len() as u64, Ordering::Relaxed);
            for node in &rejected {
                ctx.stats.count_push_node_refused(&node.reason);
                if ctx.log.should_log(&node.node_name, &node.reason, now) {
                    tracing::warn!(
                        node = %node.node_name,
                        reason = %node.reason,
                        error = %node.error,
                        "the master refused a node's snapshot; the other nodes were stored"
                    );
                }
            }
            if ctx.backoff.attempts() > 0 {
                tracing::info!(backfill = batch.backfill.len(), "master reachable again");
            }
            ctx.backoff.reset();
            if batch.backfill_incomplete {
                now
            } else {
                started + ctx.settings.interval
            }
        }
        PushOutcome::Refused { status, error } => {
            // Handled: what it carried is not sent again, or one bad batch would be retried
            // forever and stop the cluster's history.
            ctx.table.commit_push(batch);
            ctx.stats.count_push_refused(status);
            if ctx.log.should_log("", &format!("{status} {error}"), now) {
                tracing::error!(
                    status,
                    error = %error,
                    "the master refused the cluster snapshot as invalid; dropped"
                );
            }
            ctx.backoff.reset();
            started + ctx.settings.interval
        }
        PushOutcome::Failed(e) => {
            ctx.table.mark_outage();
            inc(&ctx.stats.push_failed);
            // A master that limits its writers says when to come back; within reason.
            let asked = e.retry_after().map(|d| d.min(MAX_RETRY_AFTER));
            let delay = ctx.backoff.next_delay().max(asked.unwrap_or_default());
            tracing::warn!(error = %e, retry_in = ?delay, "snapshot push failed");
            now + delay
        }
    }
}

/// What [`after_push`] works on.
struct PushContext<'a> {
    table: &'a NodeTable,
    stats: &'a AgentStats,
    settings: &'a PushSettings,
    backoff: &'a mut Backoff,
    log: &'a mut RefusalLog,
}

/// How the pusher behaves.
#[derive(Debug, Clone)]
pub(crate) struct PushSettings {
    pub interval: Duration,
    pub heartbeat_interval: Duration,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub max_backfill: usize,
}

/// First seq of this process: the Unix time in milliseconds, so that a restarted agent still sends
/// seqs above those of its predecessor (it sends far fewer than one snapshot per millisecond).
pub(crate) fn initial_seq() -> u64 {
    u64::try_from(Utc::now().timestamp_millis())
        .unwrap_or(1)
        .max(1)
}

/// Pushes a snapshot every interval until cancelled; on failure retries with backoff and marks an
/// outage, so the next successful push carries the missed points; a snapshot the master refuses
/// as invalid is dropped (see the module docs).
pub(crate) async fn run_pusher(
    table: Arc<NodeTable>,
    link: MasterLink,
    settings: PushSettings,
    stats: Arc<AgentStats>,
    cancel: CancellationToken,
) {
    let mut seq = initial_seq();
    let mut backoff = Backoff::new(settings.backoff_base, settings.backoff_max);
    let mut log = RefusalLog::default();
    let mut next = Instant::now();
    let mut last_push = Instant::now();
    loop {
        tokio::select! {
            _ = sleep_until(next) => {}
            // A node the master has not seen (the first daemon after `atlhyper up`, a node
            // joining): push it soon instead of up to a full interval later, unless the master
            // is being waited out.
            _ = table.new_node_arrived(), if backoff.attempts() == 0 => {
                let soon = (last_push + early_push_gap(settings.interval)).min(next);
                tokio::select! {
                    _ = sleep_until(soon) => {}
                    _ = cancel.cancelled() => return,
                }
            }
            _ = cancel.cancelled() => return,
        }
        let started = Instant::now();
        last_push = started;
        seq += 1;
        let batch = table.push_batch(started, settings.max_backfill);
        let cluster_id = link.cluster_id().to_owned();
        // Serialising and compressing 1000 nodes takes milliseconds: keep it off the reactor.
        let encoded = tokio::task::spawn_blocking(move || {
            let json = cluster_snapshot_json(&cluster_id, Utc::now(), seq, &batch);
            (gzip(&json, 6), batch)
        })
        .await;
        let Ok((body, batch)) = encoded else {
            tracing::error!("encoding the cluster snapshot failed");
            next = Instant::now() + backoff.next_delay();
            continue;
        };
        stats.push_last_seq.store(seq, Ordering::Relaxed);
        let result = tokio::select! {
            r = link.post_snapshot(body) => r,
            _ = cancel.cancelled() => return,
        };
        let mut ctx = PushContext {
            table: &table,
            stats: &stats,
            settings: &settings,
            backoff: &mut backoff,
            log: &mut log,
        };
        next = after_push(PushOutcome::of(result), &batch, started, &mut ctx);
    }
}

/// Shortest time between two pushes when new nodes arrive: new nodes appear within a second,
/// and a burst of them (a cluster's daemons starting together) still costs at most one push a
/// second.
fn early_push_gap(interval: Duration) -> Duration {
    interval.min(Duration::from_secs(1))
}

/// Sends a heartbeat every interval until cancelled, backing off on failure.
pub(crate) async fn run_heartbeat(
    link: MasterLink,
    settings: PushSettings,
    stats: Arc<AgentStats>,
    cancel: CancellationToken,
) {
    let mut backoff = Backoff::new(settings.backoff_base, settings.backoff_max);
    let mut next = Instant::now();
    loop {
        tokio::select! {
            _ = sleep_until(next) => {}
            _ = cancel.cancelled() => return,
        }
        let started = Instant::now();
        let hb = Heartbeat {
            cluster_id: link.cluster_id().to_owned(),
            timestamp: Utc::now(),
            agent_version: AGENT_VERSION.to_owned(),
        };
        let result = tokio::select! {
            r = link.heartbeat(&hb) => r,
            _ = cancel.cancelled() => return,
        };
        match result {
            Ok(()) => {
                inc(&stats.heartbeat_ok);
                backoff.reset();
                next = started + settings.heartbeat_interval;
            }
            Err(e) => {
                inc(&stats.heartbeat_failed);
                let delay = backoff.next_delay().min(settings.heartbeat_interval);
                tracing::debug!(error = %e, "heartbeat failed");
                next = Instant::now() + delay;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_table::NodeTableConfig;
    use atlhyper_model::{ClusterSnapshot, NodeMetricsSnapshot, NodeState};

    #[test]
    fn borrowed_json_is_a_cluster_snapshot() {
        let table = NodeTable::new(NodeTableConfig::default());
        let now = Instant::now();
        let wall = Utc::now();
        for name in ["b-node", "a-node"] {
            let s = NodeMetricsSnapshot {
                node_name: name.to_owned(),
                timestamp: wall,
                hostname: format!("host-{name}"),
                ..Default::default()
            };
            table
                .ingest(&s, serde_json::value::to_raw_value(&s).unwrap(), now, wall)
                .unwrap();
        }
        table.mark_outage();
        let batch = table.push_batch(now, 100);
        let json = cluster_snapshot_json("c1", wall, 42, &batch);
        let parsed: ClusterSnapshot = serde_json::from_slice(&json).unwrap();
        assert_eq!(parsed.cluster_id, "c1");
        assert_eq!(parsed.seq, 42);
        assert_eq!(parsed.agent_version, AGENT_VERSION);
        assert_eq!(parsed.node_metrics.len(), 2);
        assert_eq!(parsed.node_metrics["a-node"].hostname, "host-a-node");
        assert_eq!(parsed.node_status["b-node"].state, NodeState::Online);
        assert_eq!(parsed.backfill.len(), 2);
        // Re-serialising the parsed snapshot gives the same JSON value.
        let again = serde_json::to_value(&parsed).unwrap();
        let ours: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(again, ours);
    }

    #[test]
    fn empty_parts_are_left_out() {
        let table = NodeTable::new(NodeTableConfig::default());
        let batch = table.push_batch(Instant::now(), 100);
        let json = cluster_snapshot_json("c1", Utc::now(), 1, &batch);
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["agent_version", "cluster_id", "seq", "timestamp"]);
    }

    /// A stand-in for the master's HTTP answers (the status handling only): answers the
    /// scripted (status, body) pairs in turn, then `{"status":"ok"}`, and keeps what it got.
    #[derive(Default)]
    struct Script {
        answers: parking_lot::Mutex<std::collections::VecDeque<(u16, String)>>,
        seen: parking_lot::Mutex<Vec<ClusterSnapshot>>,
    }

    async fn answer(
        axum::extract::State(script): axum::extract::State<Arc<Script>>,
        body: axum::body::Bytes,
    ) -> axum::response::Response {
        use axum::response::IntoResponse;
        let json = atlhyper_http::gunzip_limited(&body, 64 << 20).unwrap();
        script
            .seen
            .lock()
            .push(serde_json::from_slice(&json).unwrap());
        let (status, text) = script
            .answers
            .lock()
            .pop_front()
            .unwrap_or((200, r#"{"status":"ok"}"#.to_owned()));
        let mut resp = (axum::http::StatusCode::from_u16(status).unwrap(), text).into_response();
        if status == 429 {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("7"),
            );
        }
        resp
    }

    async fn start_script(answers: &[(u16, &str)]) -> (Arc<Script>, MasterLink, CancellationToken) {
        let script = Arc::new(Script::default());
        script
            .answers
            .lock()
            .extend(answers.iter().map(|(s, b)| (*s, (*b).to_owned())));
        let router = axum::Router::new()
            .route("/agent/snapshot", axum::routing::post(answer))
            .with_state(Arc::clone(&script));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let limits = atlhyper_http::serve::ServeLimits {
            header_timeout: Duration::from_secs(10),
            max_connections: 16,
        };
        tokio::spawn(atlhyper_http::serve::serve(
            listener,
            router,
            limits,
            async move { stopped.cancelled().await },
        ));
        let link = MasterLink::new(
            &format!("http://{addr}"),
            "c1",
            None,
            Duration::from_secs(5),
        )
        .unwrap();
        (script, link, stop)
    }

    #[tokio::test]
    async fn the_masters_answers_are_classified() {
        let (_script, link, stop) = start_script(&[
            (200, r#"{"status":"ok"}"#),
            (
                200,
                r#"{"status":"ok","rejected":[{"node_name":"x","reason":"list_too_long","error":"disks has 100000 entries"}]}"#,
            ),
            (200, "not JSON, as an old master may answer"),
            (400, r#"{"error":"timestamp is outside the storable range"}"#),
            (413, "snapshot is larger than 64 MiB"),
            (415, r#"{"error":"send JSON"}"#),
            (422, r#"{"error":"unprocessable"}"#),
            (401, r#"{"error":"missing or invalid bearer token"}"#),
            (403, r#"{"error":"forbidden"}"#),
            (404, r#"{"error":"no such route"}"#),
            (429, r#"{"error":"slow down"}"#),
            (500, r#"{"error":"store failed"}"#),
            (503, r#"{"error":"unavailable"}"#),
        ])
        .await;
        let mut outcomes = Vec::new();
        for _ in 0..13 {
            outcomes.push(PushOutcome::of(link.post_snapshot(gzip(b"{}", 1)).await));
        }
        let mut it = outcomes.into_iter();
        assert!(matches!(it.next(), Some(PushOutcome::Accepted(r)) if r.is_empty()));
        match it.next() {
            Some(PushOutcome::Accepted(r)) => {
                assert_eq!(r.len(), 1);
                assert_eq!(r[0].node_name, "x");
                assert_eq!(r[0].reason, "list_too_long");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(it.next(), Some(PushOutcome::Accepted(r)) if r.is_empty()));
        for (want, text) in [
            (400, "timestamp is outside the storable range"),
            (413, "snapshot is larger than 64 MiB"),
            (415, "send JSON"),
            (422, "unprocessable"),
        ] {
            match it.next() {
                Some(PushOutcome::Refused { status, error }) => {
                    assert_eq!((status, error.as_str()), (want, text));
                }
                other => panic!("{want}: {other:?}"),
            }
        }
        for want in [401, 403, 404, 429, 500, 503] {
            match it.next() {
                Some(PushOutcome::Failed(e @ MasterError::Status { status, .. })) => {
                    assert_eq!(status, want);
                    let asked = (want == 429).then(|| Duration::from_secs(7));
                    assert_eq!(e.retry_after(), asked, "{want}");
                }
                other => panic!("{want}: {other:?}"),
            }
        }
        stop.cancel();
        // No answer at all is a failure too.
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        let link = MasterLink::new(
            &format!("http://{addr}"),
            "c1",
            None,
            Duration::from_secs(2),
        )
        .unwrap();
        assert!(matches!(
            PushOutcome::of(link.post_snapshot(gzip(b"{}", 1)).await),
            PushOutcome::Failed(MasterError::Transport { .. })
        ));
    }

    #[tokio::test]
    async fn a_refused_batch_is_dropped_and_pushing_goes_on() {
        let table = Arc::new(NodeTable::new(NodeTableConfig::default()));
        let wall = Utc::now();
        let now = Instant::now();
        let ingest = |i: i64| {
            let s = NodeMetricsSnapshot {
                node_name: "n1".to_owned(),
                timestamp: wall + chrono::Duration::seconds(i),
                ..Default::default()
            };
            let raw = serde_json::value::to_raw_value(&s).unwrap();
            table.ingest(&s, raw, now, wall).unwrap();
        };
        // An outage left points to backfill.
        ingest(0);
        table.mark_outage();
        ingest(1);
        let rejected = r#"{"status":"ok","rejected":[
            {"node_name":"n1","reason":"list_too_long","error":"disks has 100000 entries"},
            {"node_name":"n2","reason":"a reason from the future","error":"?"}]}"#;
        let (script, link, stop) = start_script(&[
            (
                400,
                r#"{"error":"node n1: timestamp is outside the storable range"}"#,
            ),
            (200, rejected),
        ])
        .await;
        let settings = PushSettings {
            interval: Duration::from_millis(20),
            heartbeat_interval: Duration::from_secs(60),
            // A failure would wait seconds: the refused batch must not be taken for one.
            backoff_base: Duration::from_secs(5),
            backoff_max: Duration::from_secs(5),
            max_backfill: 100,
        };
        let stats = Arc::new(AgentStats::default());
        let cancel = CancellationToken::new();
        let pusher = tokio::spawn(run_pusher(
            Arc::clone(&table),
            link,
            settings,
            Arc::clone(&stats),
            cancel.clone(),
        ));
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while script.seen.lock().len() < 4 {
            assert!(
                std::time::Instant::now() < deadline,
                "the pusher stopped after the refusal: {} pushes",
                script.seen.lock().len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        cancel.cancel();
        pusher.await.unwrap();
        stop.cancel();
        let seen = script.seen.lock();
        assert_eq!(
            seen[0].backfill.len(),
            2,
            "the first push carries the backfill"
        );
        assert!(
            seen[1..].iter().all(|s| s.backfill.is_empty()),
            "the refused batch's backfill was sent again"
        );
        assert!(seen.iter().all(|s| s.node_metrics.contains_key("n1")));
        assert_eq!(stats.push_failed.load(Ordering::Relaxed), 0);
        let text = stats.render(table.counts(Instant::now()));
        for line in [
            "atlhyper_agent_push_refused_total{status=\"400\"} 1",
            "atlhyper_agent_push_refused_total{status=\"413\"} 0",
            "atlhyper_agent_push_refused_total{status=\"415\"} 0",
            "atlhyper_agent_push_refused_total{status=\"422\"} 0",
            "atlhyper_agent_push_nodes_refused_total{reason=\"list_too_long\"} 1",
            "atlhyper_agent_push_nodes_refused_total{reason=\"invalid_name\"} 0",
            "atlhyper_agent_push_nodes_refused_total{reason=\"other\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }

    #[test]
    fn refusals_are_logged_once_per_node_and_reason() {
        let mut log = RefusalLog::default();
        let t0 = Instant::now();
        assert!(log.should_log("n1", "list_too_long", t0));
        assert!(!log.should_log("n1", "list_too_long", t0 + Duration::from_secs(10)));
        assert!(log.should_log("n2", "list_too_long", t0));
        // A new reason is news; the same one is said again after the quiet period.
        assert!(log.should_log("n1", "string_too_long", t0 + Duration::from_secs(20)));
        let later = t0 + Duration::from_secs(20) + REFUSAL_LOG_EVERY;
        log.forget_old(later);
        assert!(log.logged.is_empty());
        assert!(log.should_log("n1", "string_too_long", later));
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_after_of_the_master_is_honoured_within_reason() {
        let table = NodeTable::new(NodeTableConfig::default());
        let stats = AgentStats::default();
        let settings = PushSettings {
            interval: Duration::from_secs(10),
            heartbeat_interval: Duration::from_secs(15),
            backoff_base: Duration::from_millis(10),
            backoff_max: Duration::from_millis(20),
            max_backfill: 10,
        };
        let mut backoff = Backoff::new(settings.backoff_base, settings.backoff_max);
        let mut log = RefusalLog::default();
        let mut ctx = PushContext {
            table: &table,
            stats: &stats,
            settings: &settings,
            backoff: &mut backoff,
            log: &mut log,
        };
        let now = Instant::now();
        let batch = table.push_batch(now, 10);
        let limited = |retry_after: Option<Duration>| {
            PushOutcome::Failed(MasterError::Status {
                url: "http://m/agent/snapshot".into(),
                status: 429,
                body: String::new(),
                retry_after,
            })
        };
        let next = after_push(
            limited(Some(Duration::from_secs(30))),
            &batch,
            now,
            &mut ctx,
        );
        assert_eq!(next, now + Duration::from_secs(30));
        let next = after_push(
            limited(Some(Duration::from_secs(86_400))),
            &batch,
            now,
            &mut ctx,
        );
        assert_eq!(next, now + MAX_RETRY_AFTER);
        let next = after_push(limited(None), &batch, now, &mut ctx);
        assert!(
            next <= now + Duration::from_millis(20),
            "the backoff's delay"
        );
        assert_eq!(stats.push_failed.load(Ordering::Relaxed), 3);
    }
}
