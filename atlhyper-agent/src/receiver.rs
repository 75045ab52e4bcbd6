//! The node receiver: `POST /metrics/node`, `GET /health`, `GET /metrics`.
//!
//! The first hop that sees a node's snapshot, so the one that refuses a bad node alone: every
//! snapshot passes [`SnapshotBounds`] (DNS-1123 name, capped lists and strings, command lines cut
//! at 4 KiB) and [`ClockPolicy`] (a timestamp far ahead or older than the retention is replaced
//! by the receive time, the skew kept in `clock_skew_seconds`), and the table's node cap.

use std::sync::Arc;
use std::time::Duration;

use atlhyper_model::{
    ClockPolicy, ErrorBody, Exposition, ExpositionFormat, NodeListLengths, NodeMetricsSnapshot,
    RejectReason, Rejection, SnapshotBounds, StatusBody,
};
use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::value::RawValue;
use tokio::time::Instant;

use crate::node_table::{Ingested, NodeTable, TableFull};
use crate::node_tokens::NodeTokens;
use crate::stats::{AgentStats, inc};
use atlhyper_http::{GunzipError, gunzip_limited, text_response};

/// Default body limit of `POST /metrics/node`, bytes (1 MiB), applied before and after gzip.
pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;

/// Default time a node has to send its whole body (10 s); a slower sender gets 408.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// What the receiver routes share.
#[derive(Debug, Clone)]
pub struct ReceiverState {
    /// Where snapshots go.
    pub table: Arc<NodeTable>,
    /// Bearer tokens nodes must send (none: every node is accepted), some limited to one node.
    pub node_tokens: NodeTokens,
    /// Largest accepted body, bytes, compressed and decompressed.
    pub body_limit: usize,
    /// Counters for `/metrics`.
    pub stats: Arc<AgentStats>,
    /// Time a node has to send its whole body.
    pub body_timeout: Duration,
    /// Caps on a snapshot's name, lists and strings.
    pub bounds: SnapshotBounds,
    /// How far a node's clock may be off before its timestamp is replaced by the receive time.
    pub clock: ClockPolicy,
}

impl ReceiverState {
    /// State with no node token, the default body limit and fresh counters.
    pub fn new(table: Arc<NodeTable>) -> Self {
        Self {
            table,
            node_tokens: NodeTokens::open(),
            body_limit: DEFAULT_BODY_LIMIT,
            stats: Arc::new(AgentStats::default()),
            body_timeout: DEFAULT_BODY_TIMEOUT,
            bounds: SnapshotBounds::default(),
            clock: ClockPolicy::default(),
        }
    }

    /// Sets how far a node's clock may be off.
    pub fn with_clock_policy(mut self, clock: ClockPolicy) -> Self {
        self.clock = clock;
        self
    }

    /// Sets the time a node has to send its whole body.
    pub fn with_body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = timeout;
        self
    }

    /// Requires nodes to send `Authorization: Bearer <token>` (an empty token requires nothing).
    pub fn with_node_token(mut self, token: Option<&str>) -> Self {
        self.node_tokens = NodeTokens::single(token);
        self
    }

    /// Requires nodes to send one of `tokens`.
    pub fn with_node_tokens(mut self, tokens: NodeTokens) -> Self {
        self.node_tokens = tokens;
        self
    }

    /// Sets the body limit, bytes.
    pub fn with_body_limit(mut self, limit: usize) -> Self {
        self.body_limit = limit;
        self
    }
}

/// Why a node's request was refused; the one place receiver errors become responses.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    /// 400: unreadable body, bad JSON.
    #[error("{0}")]
    BadRequest(String),
    /// 400 (bad name) or 413 (a list or string over its cap): the snapshot breaks
    /// [`SnapshotBounds`]. The message starts with the reason label.
    #[error("{}: {}", .0.reason, .0.detail)]
    Rejected(Rejection),
    /// 429 with `Retry-After`: a new node while the table is full.
    #[error("too_many_nodes: {0}")]
    TooManyNodes(TableFull),
    /// 401: missing or wrong bearer token.
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// 403: a node token limited to one node sent a snapshot of another node.
    #[error("this token may push only node {allowed:?}, not {pushed:?}")]
    WrongNode {
        /// The node the token is limited to.
        allowed: String,
        /// The node name of the snapshot.
        pushed: String,
    },
    /// 413: body over the limit (before or after decompression).
    #[error("body is larger than {limit} bytes")]
    TooLarge {
        /// The limit, bytes.
        limit: usize,
    },
    /// 408: the body did not arrive within the body timeout.
    #[error("the request body did not arrive within {0:?}")]
    BodyTimeout(Duration),
    /// 415: a Content-Encoding other than gzip or identity.
    #[error("unsupported Content-Encoding {0:?} (send gzip or no encoding)")]
    UnsupportedEncoding(String),
}

impl ReceiveError {
    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Rejected(r) => {
                StatusCode::from_u16(r.reason.http_status()).unwrap_or(StatusCode::BAD_REQUEST)
            }
            Self::TooManyNodes(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::WrongNode { .. } => StatusCode::FORBIDDEN,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        }
    }
}

impl IntoResponse for ReceiveError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut resp = (status, Json(ErrorBody::new(self.to_string()))).into_response();
        match &self {
            Self::Unauthorized => {
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::TooManyNodes(full) => {
                let secs = full.retry_after.as_secs().max(1);
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            _ => {}
        }
        resp
    }
}

/// The receiver routes: `POST /metrics/node`, `GET /health`, `GET /metrics`.
pub fn receiver_router(state: ReceiverState) -> Router {
    Router::new()
        .route("/metrics/node", post(post_node))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn post_node(
    State(state): State<ReceiverState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<StatusBody>, ReceiveError> {
    let result = receive(&state, &headers, body).await;
    let stats = &state.stats;
    match &result {
        Ok(Ingested::Latest) => inc(&stats.ingest_latest),
        Ok(Ingested::Late) => inc(&stats.ingest_late),
        Ok(Ingested::Duplicate) => inc(&stats.ingest_duplicate),
        Err(ReceiveError::BadRequest(_)) => inc(&stats.rejected_bad_request),
        Err(ReceiveError::Rejected(r)) => {
            stats.count_rejection(r.reason);
            match r.reason.http_status() {
                400 => inc(&stats.rejected_bad_request),
                _ => inc(&stats.rejected_too_large),
            }
        }
        Err(ReceiveError::TooManyNodes(_)) => {
            stats.count_rejection(RejectReason::TooManyNodes);
            inc(&stats.rejected_too_many_nodes);
        }
        Err(ReceiveError::Unauthorized) => inc(&stats.rejected_unauthorized),
        Err(ReceiveError::WrongNode { .. }) => inc(&stats.rejected_wrong_node),
        Err(ReceiveError::TooLarge { .. }) => inc(&stats.rejected_too_large),
        Err(ReceiveError::BodyTimeout(_)) => inc(&stats.rejected_timeout),
        Err(ReceiveError::UnsupportedEncoding(_)) => inc(&stats.rejected_unsupported_encoding),
    }
    result.map(|_| Json(StatusBody::ok()))
}

async fn receive(
    state: &ReceiverState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Ingested, ReceiveError> {
    let auth = state
        .node_tokens
        .check(headers)
        .ok_or(ReceiveError::Unauthorized)?;
    let limit = state.body_limit;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ReceiveError::TooLarge { limit });
    }
    let gzipped = match headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase())
    {
        None => false,
        Some(e) if e.is_empty() || e == "identity" => false,
        Some(e) if e == "gzip" || e == "x-gzip" => true,
        Some(e) => return Err(ReceiveError::UnsupportedEncoding(e)),
    };
    let read = tokio::time::timeout(state.body_timeout, Limited::new(body, limit).collect());
    let Ok(read) = read.await else {
        return Err(ReceiveError::BodyTimeout(state.body_timeout));
    };
    let bytes = match read {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(ReceiveError::TooLarge { limit });
        }
        Err(_) => {
            return Err(ReceiveError::BadRequest(
                "could not read the request body".to_owned(),
            ));
        }
    };
    let decoded;
    let json: &[u8] = if gzipped {
        decoded = gunzip_limited(&bytes, limit).map_err(|e| match e {
            GunzipError::TooLarge { limit } => ReceiveError::TooLarge { limit },
            GunzipError::Invalid(why) => ReceiveError::BadRequest(why),
        })?;
        &decoded
    } else {
        &bytes
    };
    let raw: Box<RawValue> = serde_json::from_slice(json)
        .map_err(|e| ReceiveError::BadRequest(format!("invalid JSON: {e}")))?;
    // Lists over their caps are refused before their entries are built.
    let lengths = NodeListLengths::from_json(raw.get())
        .map_err(|e| ReceiveError::BadRequest(format!("not a node metrics snapshot: {e}")))?;
    state
        .bounds
        .check_lengths(&lengths)
        .map_err(ReceiveError::Rejected)?;
    let mut snapshot: NodeMetricsSnapshot = serde_json::from_str(raw.get())
        .map_err(|e| ReceiveError::BadRequest(format!("not a node metrics snapshot: {e}")))?;
    if let Err((token, allowed)) = auth.allows(&snapshot.node_name) {
        // Logged: a daemon with another node's token is a mistake or a forgery, either worth
        // an operator's look.
        tracing::warn!(token, allowed, pushed = %snapshot.node_name, "node token used for another node; refused");
        return Err(ReceiveError::WrongNode {
            allowed: allowed.to_owned(),
            pushed: snapshot.node_name.chars().take(256).collect(),
        });
    }
    let now = Instant::now();
    let received_at = chrono::Utc::now();
    let changed = bound_and_settle(state, &mut snapshot, received_at)?;
    // The node's own bytes travel on unless something was changed: re-encoding costs more than
    // the rest of the request.
    let raw = if changed {
        serde_json::value::to_raw_value(&snapshot).map_err(|e| {
            ReceiveError::BadRequest(format!("the snapshot cannot be encoded again: {e}"))
        })?
    } else {
        raw
    };
    state
        .table
        .ingest(&snapshot, raw, now, received_at)
        .map_err(ReceiveError::TooManyNodes)
}

/// Applies the bounds and the clock policy to a snapshot received at `received_at`. Returns
/// whether the snapshot changed (a command line cut, a timestamp replaced, a skew the node sent
/// itself dropped: `clock_skew_seconds` is written by receivers only).
fn bound_and_settle(
    state: &ReceiverState,
    snapshot: &mut NodeMetricsSnapshot,
    received_at: chrono::DateTime<chrono::Utc>,
) -> Result<bool, ReceiveError> {
    let max_cmdline = state.bounds.max_cmdline_bytes;
    let cut = snapshot
        .processes
        .iter()
        .any(|p| p.cmdline.len() > max_cmdline);
    state
        .bounds
        .apply(snapshot)
        .map_err(ReceiveError::Rejected)?;
    let forged_skew = snapshot.clock_skew_seconds.take().is_some();
    let settled = state.clock.settle(snapshot, received_at);
    Ok(cut || forged_skew || settled)
}

async fn health(State(state): State<ReceiverState>) -> Json<serde_json::Value> {
    let c = state.table.counts(Instant::now());
    Json(serde_json::json!({
        "status": "ok",
        "nodes": c.total,
        "online": c.online,
        "offline": c.offline,
    }))
}

async fn metrics(State(state): State<ReceiverState>, headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = ExpositionFormat::negotiate(accept);
    let mut out = Exposition::new(format);
    state
        .stats
        .write(state.table.counts(Instant::now()), &mut out);
    text_response(&headers, format.content_type(), out.finish())
}
