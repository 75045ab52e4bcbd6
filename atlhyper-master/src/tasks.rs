//! The master's periodic tasks: command expiry, the retention prune, forgetting idle clients of
//! the rate limits, and logging nodes that went offline or came back. Each is a function of the state, run by [`every`] until shutdown.
//!
//! To add one (say, alert evaluation): write `async fn evaluate(master: Master)` beside its
//! part of the master and start it in [`spawn_all`] as
//! `("alerting", every(master, period, evaluate))`; [`crate::run_master`] joins it at shutdown.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

use atlhyper_model::NodeState;
use chrono::Utc;
use tokio::task::JoinHandle;

use crate::Master;

/// How often the rate limits forget clients whose budget has refilled.
const FORGET_IDLE_CLIENTS_EVERY: Duration = Duration::from_secs(60);
/// How often node liveness is compared with what was last logged: a transition is logged at
/// most this long after it happens.
const LOG_LIVENESS_EVERY: Duration = Duration::from_secs(2);

/// How often the token file is looked at for a change.
const RELOAD_TOKENS_EVERY: Duration = Duration::from_secs(5);

/// Watches the token file (when there is one) until the master shuts down, logging each
/// change with the count of tokens per role, and a file that does not parse once per problem
/// (the tokens in force stay).
fn watch_token_file(master: &Master) -> JoinHandle<()> {
    let file = master.tokens.token_file();
    let shutdown = master.shutdown.clone();
    tokio::spawn(async move {
        let Some(file) = file else { return };
        let watch = file.watch(RELOAD_TOKENS_EVERY, "token file", |set| {
            let (agents, viewers, operators) = set.counts();
            tracing::info!(agents, viewers, operators, "tokens in force");
        });
        tokio::select! {
            () = watch => {}
            () = shutdown.cancelled() => {}
        }
    })
}

/// Runs `task` every `period` (a run that overruns delays the next, none piles up) until the
/// master shuts down.
pub(crate) fn every<F, Fut>(master: &Master, period: Duration, task: F) -> JoinHandle<()>
where
    F: Fn(Master) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let master = master.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = master.shutdown.cancelled() => return,
            }
            task(master.clone()).await;
        }
    })
}

/// Starts every periodic task of `master`, each with the name it is reported by if it fails.
pub(crate) fn spawn_all(master: &Master) -> Vec<(&'static str, JoinHandle<()>)> {
    let mut tasks = vec![
        (
            "expiry",
            every(master, master.config.expiry_interval, expire_commands),
        ),
        ("prune", every(master, master.config.prune_interval, prune)),
        (
            "limits",
            every(master, FORGET_IDLE_CLIENTS_EVERY, forget_idle_clients),
        ),
        (
            "liveness log",
            every(master, LOG_LIVENESS_EVERY, log_liveness_changes),
        ),
        ("token file", watch_token_file(master)),
        (
            "series",
            every(
                master,
                crate::series::FLUSH_EVERY,
                crate::series::flush_and_roll_up,
            ),
        ),
        // Its own loop: the first evaluation waits one interval, so agents have pushed since
        // the start before anything is judged down.
        ("alerts", crate::alerting::spawn(master)),
    ];
    tasks.extend(crate::fleet::spawn(master));
    tasks
}

/// Marks commands past their deadline as `timeout` and wakes whoever waits for them.
async fn expire_commands(master: Master) {
    // Once across the fleet (see crate::fleet).
    if !master.confirm_leader().await {
        return;
    }
    match master.commands.expire(Utc::now()).await {
        Ok(expired) => {
            master
                .stats
                .commands_expired
                .fetch_add(expired.len() as u64, Ordering::Relaxed);
            for record in &expired {
                master.waiters.wake(record);
            }
        }
        Err(e) => master.store_failure("expiring commands", &e),
    }
}

/// Deletes history, commands finished and audit entries before the retention; retires nodes silent past
/// `node_retire_after`.
async fn prune(master: Master) {
    // Once across the fleet (see crate::fleet).
    if !master.confirm_leader().await {
        return;
    }
    crate::retire::retire_silent_nodes(&master).await;
    let before = Utc::now()
        - chrono::Duration::from_std(master.config.retention).unwrap_or(chrono::Duration::MAX);
    match master.metrics.prune_history(before).await {
        Ok(n) => {
            master.stats.history_pruned.fetch_add(n, Ordering::Relaxed);
            if n > 0 {
                tracing::info!(deleted = n, %before, "pruned history");
            }
        }
        Err(e) => master.store_failure("pruning history", &e),
    }
    // Finished commands share the history's retention; open ones are never deleted.
    match master.commands.prune_commands(before).await {
        Ok(n) => {
            master.stats.commands_pruned.fetch_add(n, Ordering::Relaxed);
            if n > 0 {
                tracing::info!(deleted = n, %before, "pruned finished commands");
            }
        }
        Err(e) => master.store_failure("pruning commands", &e),
    }
    master.alerting.prune_history(before).await;
    crate::series::prune(&master, Utc::now()).await;
    // The audit log shares the retention too.
    match master.audit.prune_audit(before).await {
        Ok(n) if n > 0 => tracing::info!(deleted = n, %before, "pruned audit entries"),
        Ok(_) => {}
        Err(e) => master.store_failure("pruning the audit log", &e),
    }
}

/// Lets the rate limits forget clients whose budget has refilled (bounded memory).
async fn forget_idle_clients(master: Master) {
    master.limits.forget_idle();
}

/// Logs every node that went offline or came back since the last run, once: liveness is decided
/// when a view is read (a silent agent makes all its nodes offline without any event), so this
/// is where the moment is noticed.
async fn log_liveness_changes(master: Master) {
    let views = master.hub.views();
    // Every node of every view (a node its agent lists without a status counts as online).
    let now = views.iter().flat_map(|view| {
        view.snapshot.node_metrics.keys().map(|node| {
            let state = if view.is_node_online(node) {
                NodeState::Online
            } else {
                NodeState::Offline
            };
            ((view.snapshot.cluster_id.clone(), node.clone()), state)
        })
    });
    let changes = master.node_liveness.lock().update(now);
    for change in changes {
        let (cluster, node) = &change.node;
        match change.state {
            NodeState::Online => tracing::info!(cluster, node, "node online"),
            NodeState::Offline => tracing::warn!(cluster, node, "node offline"),
        }
    }
}
