//! The fleet over PostgreSQL: the outbox sender, the listener (with its catch-up after every
//! reconnect) and the leader election.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use atlhyper_model::{ClusterSnapshot, NodeMetricsSnapshot, NodeState, NodeStatus};
use atlhyper_store::{PgSession, PgStore, StoreError};
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{News, decode};
use crate::Master;
use crate::view::ClusterView;

/// How often the listening connection is checked when nothing arrives (a connection cut
/// without a reset only shows when used).
const LISTENER_PING_EVERY: Duration = Duration::from_secs(5);

/// Longest wait between two attempts to reach the database.
const RECONNECT_MAX: Duration = Duration::from_secs(2);

/// The shared database, and the outbox's receiving end until the sender task takes it.
#[derive(Debug)]
pub(super) struct Shared {
    database: Arc<PgStore>,
    outbox: Mutex<Option<mpsc::Receiver<String>>>,
    /// The session that takes and holds the leader lock: the election's, and asked by
    /// [`confirm`] before each periodic run.
    lock_session: tokio::sync::Mutex<Option<PgSession>>,
}

impl Shared {
    pub(super) fn new(database: Arc<PgStore>, outbox: mpsc::Receiver<String>) -> Self {
        Self {
            database,
            outbox: Mutex::new(Some(outbox)),
            lock_session: tokio::sync::Mutex::new(None),
        }
    }
}

/// Whether this master still holds the leader lock, asked of the database on the session that
/// took it (see [`crate::Master::confirm_leader`]). When it does not (the session ended with a
/// database restart, or does not answer in a leader interval) it stops leading at once.
pub(super) async fn confirm(master: &Master, shared: &Shared) -> bool {
    let mut session = shared.lock_session.lock().await;
    let held = match session.as_ref() {
        Some(s) if !s.is_closed() => matches!(
            tokio::time::timeout(master.config.leader_interval, s.holds_lead()).await,
            Ok(Ok(true))
        ),
        _ => false,
    };
    if !held {
        *session = None;
        step_down(
            master,
            "the lock is no longer held on a live database session",
        );
    }
    held
}

/// Stops leading (once: logged when it was leading).
fn step_down(master: &Master, why: &str) {
    if master.fleet.is_leader() {
        master.fleet.set_leader(false);
        tracing::warn!(reason = why, "no longer leading the fleet's periodic work");
    }
}

/// The sender, the listener and the leader election, when the database is shared.
pub(super) fn spawn(master: &Master) -> Vec<(&'static str, JoinHandle<()>)> {
    let Some(shared) = master.fleet.shared.get() else {
        return Vec::new();
    };
    let mut tasks = Vec::new();
    if let Some(outbox) = shared.outbox.lock().take() {
        tasks.push((
            "fleet sender",
            tokio::spawn(send(master.clone(), shared.database.clone(), outbox)),
        ));
    }
    tasks.push((
        "fleet listener",
        tokio::spawn(listen(master.clone(), shared.database.clone())),
    ));
    tasks.push((
        "fleet leader",
        tokio::spawn(lead(master.clone(), shared.database.clone())),
    ));
    tasks
}

/// Sends the outbox's news, in order, until shutdown.
async fn send(master: Master, database: Arc<PgStore>, mut outbox: mpsc::Receiver<String>) {
    let mut failing = false;
    loop {
        let payload = tokio::select! {
            p = outbox.recv() => match p {
                Some(p) => p,
                None => return,
            },
            () = master.shutdown.cancelled() => return,
        };
        match database.notify_fleet(&payload).await {
            Ok(()) => failing = false,
            Err(e) => {
                master.fleet.news_dropped.fetch_add(1, Ordering::Relaxed);
                // Once per outage: the listener says when the database is back.
                if !failing {
                    tracing::warn!(error = %e, "telling the other masters failed");
                }
                failing = true;
            }
        }
    }
}

/// A new listening session: the schema first (a master that started while the database was
/// down migrates now), then `LISTEN`.
async fn open_listener(database: &PgStore) -> Result<PgSession, StoreError> {
    database.migrate().await?;
    let session = database.session().await?;
    session.listen().await?;
    Ok(session)
}

/// Hears the other masters' news until shutdown; reconnects whenever the session ends and
/// catches up after each (re)connect.
async fn listen(master: Master, database: Arc<PgStore>) {
    let mut wait = Duration::from_millis(100);
    let mut reported = false;
    let mut connected_before = false;
    loop {
        let opened = tokio::select! {
            s = open_listener(&database) => s,
            () = master.shutdown.cancelled() => return,
        };
        let mut session = match opened {
            Ok(session) => session,
            Err(e) => {
                master.fleet.set_database_up(false);
                if !reported {
                    tracing::warn!(error = %e, "database unreachable; serving from memory, retrying");
                    reported = true;
                }
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = master.shutdown.cancelled() => return,
                }
                wait = (wait * 2).min(RECONNECT_MAX);
                continue;
            }
        };
        wait = Duration::from_millis(100);
        reported = false;
        master.fleet.set_database_up(true);
        // What was sent while nobody listened is lost: read it all again.
        if let Err(e) = catch_up(&master, &database).await {
            master.store_failure("catching up with the other masters", &e);
        }
        if connected_before {
            tracing::info!("database reachable again; listening to the other masters");
        } else {
            tracing::info!("listening to the other masters");
        }
        connected_before = true;
        let mut ping = tokio::time::interval(LISTENER_PING_EVERY);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                heard = session.next_notification() => match heard {
                    Some(payload) => apply(&master, &database, &payload).await,
                    None => break,
                },
                _ = ping.tick() => {
                    let alive = tokio::time::timeout(LISTENER_PING_EVERY, session.ping()).await;
                    if !matches!(alive, Ok(Ok(()))) {
                        break;
                    }
                }
                () = master.shutdown.cancelled() => return,
            }
        }
        master.fleet.set_database_up(false);
        tracing::warn!("lost the database connection; reconnecting");
    }
}

/// Applies one payload heard from another master.
async fn apply(master: &Master, database: &PgStore, payload: &str) {
    let news = match decode(&master.fleet.instance, payload) {
        Ok(Some(news)) => news,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %e, "unreadable news from another master, ignored");
            return;
        }
    };
    master.fleet.news_heard.fetch_add(1, Ordering::Relaxed);
    match news {
        News::Snapshot {
            cluster,
            at_ms,
            online,
            offline,
        } => {
            let at = time_of(at_ms);
            let mut states: HashMap<String, NodeState> = HashMap::new();
            for name in &online {
                states.insert(name.clone(), NodeState::Online);
            }
            for name in &offline {
                states.insert(name.clone(), NodeState::Offline);
            }
            let names: Vec<String> = states.keys().cloned().collect();
            match database.latest_of(&cluster, &names).await {
                Ok(nodes) => {
                    merge_into_view(
                        master,
                        &cluster,
                        nodes,
                        |name| states.get(name).copied(),
                        at,
                        false,
                    )
                    .await;
                    master.hub.entry(&cluster).heard(at, true);
                }
                Err(e) => master.store_failure("reading another master's snapshot", &e),
            }
        }
        News::Heard { cluster, at_ms } => {
            master.hub.entry(&cluster).heard(time_of(at_ms), false);
        }
        News::Command { cluster } => {
            if let Some(entry) = master.hub.get(&cluster) {
                entry.commands_ready.notify_waiters();
            }
        }
        News::Result { command_id } => {
            if master.waiters.is_waiting(&command_id) {
                match atlhyper_store::CommandQueue::get(database, &command_id).await {
                    Ok(Some(record)) if record.result.is_some() => master.waiters.wake(&record),
                    Ok(_) => {}
                    Err(e) => master.store_failure("reading another master's command result", &e),
                }
            }
        }
        News::Deleted { cluster, nodes } => {
            crate::retire::forget_deleted(master, &cluster, &nodes).await;
        }
    }
}

/// Unix milliseconds as a time; out of range (a bad payload): now.
fn time_of(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms)
        .filter(|t| *t <= Utc::now())
        .unwrap_or_else(Utc::now)
}

/// After a (re)connect: every latest row newer than what the views hold, what was deleted
/// meanwhile dropped, every agent's last contact, and a wake-up of every long poll (a command
/// may have been queued meanwhile).
async fn catch_up(master: &Master, database: &PgStore) -> Result<(), StoreError> {
    use atlhyper_store::{AgentRegistry, MetricsStore};
    let now = Utc::now();
    for cluster in MetricsStore::list_clusters(database).await? {
        let nodes = database.list_latest(&cluster).await?;
        merge_into_view(master, &cluster, nodes, |_| None, now, true).await;
    }
    let never = DateTime::<Utc>::default();
    let agents = AgentRegistry::list(database, now, master.config.agent_offline_after).await?;
    let with_agent: HashSet<&str> = agents.iter().map(|a| a.cluster_id.as_str()).collect();
    // Deletions made while this master was not listening: what memory holds and the database
    // no longer does.
    let held: Vec<String> = master.hub.entries().iter().map(|e| e.id.clone()).collect();
    for cluster in &held {
        crate::retire::forget_missing(
            master,
            database,
            cluster,
            with_agent.contains(cluster.as_str()),
        )
        .await?;
    }
    for agent in &agents {
        let entry = master.hub.entry(&agent.cluster_id);
        if agent.last_heartbeat > never {
            entry.heard(agent.last_heartbeat, false);
        }
        if agent.last_snapshot > never {
            entry.heard(agent.last_snapshot, true);
        }
    }
    for entry in master.hub.entries() {
        entry.commands_ready.notify_waiters();
    }
    Ok(())
}

/// Takes the leader lock when free and holds it while the session lives; checks every
/// `leader_interval`, and stops leading the moment the lock's connection ends.
async fn lead(master: Master, database: Arc<PgStore>) {
    let Some(shared) = master.fleet.shared.get() else {
        return;
    };
    let interval = master.config.leader_interval;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // While leading, the end of the lock's connection is heard at once (a database
        // restart ends it, and the lock with it: another master may take it right away).
        let ended = match shared.lock_session.lock().await.as_ref() {
            Some(s) if master.fleet.is_leader() => Some(s.ended()),
            _ => None,
        };
        tokio::select! {
            _ = tick.tick() => {}
            () = async {
                match ended {
                    Some(ended) => ended.await,
                    None => std::future::pending().await,
                }
            } => {
                *shared.lock_session.lock().await = None;
                step_down(&master, "the database session holding the lock ended");
                continue;
            }
            () = master.shutdown.cancelled() => return,
        }
        if master.fleet.is_leader() {
            confirm(&master, shared).await;
            continue;
        }
        let mut session = shared.lock_session.lock().await;
        if session.as_ref().is_none_or(PgSession::is_closed) {
            *session = tokio::time::timeout(interval, database.session())
                .await
                .ok()
                .and_then(Result::ok);
        }
        let Some(s) = session.as_ref() else { continue };
        match tokio::time::timeout(interval, s.try_lead()).await {
            Ok(Ok(true)) => {
                drop(session);
                // Running alerts as the previous leader left them.
                if let Err(e) = master.alerting.take_over().await {
                    master.store_failure("loading the alert state", &e);
                }
                master.fleet.set_leader(true);
                tracing::info!("leading the fleet's periodic work");
            }
            Ok(Ok(false)) => {}
            Ok(Err(_)) | Err(_) => *session = None,
        }
    }
}

/// Puts latest node snapshots read from the database into their cluster's view (creating it),
/// under the cluster's ingest lock. A node's state comes from `state_of` (`None`: what the view
/// says, offline for a node it does not have); an online node was last seen at `at`.
/// `only_newer`: a node the view holds with a timestamp as new or newer stays as it is (a
/// catch-up must not replace what this master received itself with an older row).
async fn merge_into_view(
    master: &Master,
    cluster_id: &str,
    nodes: Vec<NodeMetricsSnapshot>,
    state_of: impl Fn(&str) -> Option<NodeState>,
    at: DateTime<Utc>,
    only_newer: bool,
) {
    if nodes.is_empty() {
        return;
    }
    let entry = master.hub.entry(cluster_id);
    let mut mark = entry.ingest.lock().await;
    let mut snapshot = match entry.view() {
        Some(view) => {
            let mut s = ClusterSnapshot::clone(&view.snapshot);
            s.node_status = view.node_status.clone();
            s
        }
        None => ClusterSnapshot {
            cluster_id: cluster_id.to_owned(),
            ..ClusterSnapshot::default()
        },
    };
    let mut changed = false;
    for node in nodes {
        let name = node.node_name.clone();
        if only_newer
            && snapshot
                .node_metrics
                .get(&name)
                .is_some_and(|held| held.timestamp >= node.timestamp)
        {
            continue;
        }
        let held = snapshot.node_status.get(&name);
        let state = state_of(&name)
            .or_else(|| held.map(|s| s.state))
            .unwrap_or(NodeState::Offline);
        let last_seen = match state {
            NodeState::Online => at,
            NodeState::Offline => held.map_or(node.timestamp, |s| s.last_seen),
        };
        snapshot
            .node_status
            .insert(name.clone(), NodeStatus { state, last_seen });
        if let Some(held) = &mut mark.held_nodes {
            held.insert(name.clone());
        }
        snapshot.timestamp = snapshot.timestamp.max(node.timestamp);
        snapshot.node_metrics.insert(name, node);
        changed = true;
    }
    if !changed {
        return;
    }
    let view = if snapshot.node_metrics.len() > 200 {
        match tokio::task::spawn_blocking(move || ClusterView::new(snapshot, at)).await {
            Ok(view) => view,
            Err(_) => return,
        }
    } else {
        ClusterView::new(snapshot, at)
    };
    view.node_metrics_encoded().compress_in_background();
    entry.publish(Arc::new(view));
}
