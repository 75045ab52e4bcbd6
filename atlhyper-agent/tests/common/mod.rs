//! Test helpers of the agent's tests: a fake master that records what it got, a running agent,
//! recent timestamps (snapshots, ports and polling are in atlhyper-testkit).
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use atlhyper_model::{ClusterSnapshot, Command, CommandPoll, CommandResult, Heartbeat};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use parking_lot::Mutex;
use serde_json::Value;
use tokio::net::TcpListener;

/// A timestamp `secs_ago` seconds before now, RFC 3339 in UTC with whole seconds: recent enough
/// that the receiver keeps it (older than the 30-day retention is replaced by the receive time).
pub fn recent(secs_ago: i64) -> String {
    let at = chrono::Utc::now() - chrono::Duration::seconds(secs_ago);
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// What the fake master received.
#[derive(Debug, Default)]
pub struct Recorded {
    pub snapshots: Vec<ClusterSnapshot>,
    /// The raw JSON of each accepted snapshot (to compare node bodies as JSON values).
    pub snapshot_json: Vec<Value>,
    /// (X-Cluster-ID, Authorization) of each snapshot request.
    pub snapshot_headers: Vec<(String, String)>,
    pub heartbeats: Vec<Heartbeat>,
    pub results: Vec<CommandResult>,
    pub polls: Vec<(String, String)>,
}

#[derive(Debug, Default)]
pub struct FakeMaster {
    pub recorded: Mutex<Recorded>,
    pub commands: Mutex<VecDeque<Command>>,
    /// Snapshot posts to refuse with 503 before accepting again.
    pub fail_snapshots: AtomicU32,
    /// When set, an empty long poll answers at once instead of holding for 300 ms.
    pub no_hold: AtomicBool,
    /// Milliseconds `/agent/result` takes to answer.
    pub result_delay_ms: AtomicU64,
    /// Results being handled right now, and the most at once.
    pub results_in_flight: AtomicU64,
    pub results_max_in_flight: AtomicU64,
}

impl FakeMaster {
    pub fn queue(&self, id: &str, action: &str, target: &str, params: Value) {
        self.commands.lock().push_back(Command {
            id: id.to_owned(),
            action: action.to_owned(),
            target_name: target.to_owned(),
            params: params.as_object().cloned().unwrap_or_default(),
            ..Default::default()
        });
    }
}

fn header(h: &HeaderMap, name: &str) -> String {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

async fn snapshot(State(m): State<Arc<FakeMaster>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    if m.fail_snapshots
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    assert_eq!(header(&headers, "content-encoding"), "gzip");
    let json = atlhyper_agent::gunzip_limited(&body, 64 << 20).expect("gzip body");
    let value: Value = serde_json::from_slice(&json).expect("json");
    let snap: ClusterSnapshot = serde_json::from_value(value.clone()).expect("ClusterSnapshot");
    let mut r = m.recorded.lock();
    r.snapshot_headers.push((
        header(&headers, "x-cluster-id"),
        header(&headers, "authorization"),
    ));
    r.snapshots.push(snap);
    r.snapshot_json.push(value);
    StatusCode::OK
}

async fn heartbeat(State(m): State<Arc<FakeMaster>>, body: Bytes) -> StatusCode {
    let hb: Heartbeat = serde_json::from_slice(&body).expect("heartbeat");
    m.recorded.lock().heartbeats.push(hb);
    StatusCode::OK
}

#[derive(serde::Deserialize)]
struct PollQuery {
    cluster_id: String,
    topic: String,
}

/// Long poll: answers at once when a command is queued, else after up to 300 ms of waiting.
async fn commands(
    State(m): State<Arc<FakeMaster>>,
    Query(q): Query<PollQuery>,
) -> axum::Json<CommandPoll> {
    m.recorded.lock().polls.push((q.cluster_id, q.topic));
    let rounds = if m.no_hold.load(Ordering::SeqCst) {
        1
    } else {
        30
    };
    for _ in 0..rounds {
        if let Some(c) = m.commands.lock().pop_front() {
            return axum::Json(CommandPoll::with(c));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    axum::Json(CommandPoll::empty())
}

async fn result(State(m): State<Arc<FakeMaster>>, body: Bytes) -> StatusCode {
    let r: CommandResult = serde_json::from_slice(&body).expect("result");
    let now = m.results_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    m.results_max_in_flight.fetch_max(now, Ordering::SeqCst);
    let delay = m.result_delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    m.results_in_flight.fetch_sub(1, Ordering::SeqCst);
    m.recorded.lock().results.push(r);
    StatusCode::OK
}

/// Starts the fake master on 127.0.0.1:0.
pub async fn start_master() -> (SocketAddr, Arc<FakeMaster>) {
    let master = Arc::new(FakeMaster::default());
    let app = Router::new()
        .route("/agent/snapshot", post(snapshot))
        .route("/agent/heartbeat", post(heartbeat))
        .route("/agent/commands", get(commands))
        .route("/agent/result", post(result))
        .with_state(Arc::clone(&master));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, master)
}

/// A cluster agent serving on a listener in this runtime, until [`RunningAgent::stop`].
pub struct RunningAgent {
    /// Its node table.
    pub table: std::sync::Arc<atlhyper_agent::NodeTable>,
    stop: tokio::sync::oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<Result<(), atlhyper_agent::AgentError>>,
}

/// Starts `serve_agent` on `listener` with `cfg` and a fresh node table.
pub fn spawn_agent(listener: TcpListener, cfg: atlhyper_agent::AgentConfig) -> RunningAgent {
    let table = std::sync::Arc::new(atlhyper_agent::NodeTable::new(cfg.table_config()));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(atlhyper_agent::serve_agent(
        listener,
        cfg,
        std::sync::Arc::clone(&table),
        async {
            let _ = stopped.await;
        },
    ));
    RunningAgent {
        table,
        stop,
        handle,
    }
}

impl RunningAgent {
    /// Tells the agent to stop; the handle completes when it has.
    pub fn stop(self) -> tokio::task::JoinHandle<Result<(), atlhyper_agent::AgentError>> {
        let _ = self.stop.send(());
        self.handle
    }
}
