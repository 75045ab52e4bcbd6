//! The command channel: queueing a command wakes its cluster's long polls at once, and a result
//! wakes whoever waits for it (an observe detail request).
//!
//! Two kinds of commands travel the same long poll:
//! - commands created through `POST /api/v2/commands` are persisted in the [`CommandQueue`]
//!   (they survive a restart, their record can be read and listed);
//! - the observe detail queries the master itself sends (`node_detail`, `node_series`) are
//!   *transient*: kept in memory only for as long as the HTTP request that needs the answer waits
//!   (a restart ends that request anyway), so a round trip costs no store write. They are offered
//!   first, and follow the same rules: delivered only to their own cluster's agent, answered
//!   only by it.
//!
//! [`CommandQueue`]: atlhyper_store::CommandQueue

use std::collections::HashMap;
use std::time::Duration;

use atlhyper_model::{CommandRecord, CommandResult, CommandStatus};
use chrono::Utc;
use parking_lot::Mutex;
use serde_json::{Map, Value};
use tokio::sync::oneshot;

use crate::Master;
use crate::error::ApiError;

/// Waiters for command results, by command id.
#[derive(Debug, Default)]
pub(crate) struct ResultWaiters {
    waiting: Mutex<HashMap<String, Vec<oneshot::Sender<CommandRecord>>>>,
}

impl ResultWaiters {
    /// Registers interest in a command's final record. Register before queueing, so a fast
    /// answer is never missed.
    pub(crate) fn register(&self, command_id: &str) -> oneshot::Receiver<CommandRecord> {
        let (tx, rx) = oneshot::channel();
        self.waiting
            .lock()
            .entry(command_id.to_owned())
            .or_default()
            .push(tx);
        rx
    }

    /// Hands a final record to everyone waiting for it.
    pub(crate) fn wake(&self, record: &CommandRecord) {
        let senders = self.waiting.lock().remove(&record.command_id);
        for tx in senders.into_iter().flatten() {
            let _ = tx.send(record.clone());
        }
    }

    /// Whether someone waits for this command's result.
    #[cfg(feature = "postgres")]
    pub(crate) fn is_waiting(&self, command_id: &str) -> bool {
        self.waiting.lock().contains_key(command_id)
    }

    /// Drops the waiters of a command nobody waits for any more.
    pub(crate) fn forget(&self, command_id: &str) {
        self.waiting.lock().remove(command_id);
    }
}

/// Transient commands (see the module docs), by id.
#[derive(Debug, Default)]
pub(crate) struct TransientCommands {
    commands: Mutex<HashMap<String, TransientCommand>>,
}

#[derive(Debug)]
struct TransientCommand {
    record: CommandRecord,
    taken: bool,
}

impl TransientCommands {
    fn insert(&self, record: CommandRecord) {
        self.commands.lock().insert(
            record.command_id.clone(),
            TransientCommand {
                record,
                taken: false,
            },
        );
    }

    fn remove(&self, command_id: &str) {
        self.commands.lock().remove(command_id);
    }

    /// The oldest not yet taken command of `cluster_id`, now marked running.
    pub(crate) fn take(&self, cluster_id: &str) -> Option<CommandRecord> {
        let mut commands = self.commands.lock();
        let next = commands
            .values_mut()
            .filter(|c| !c.taken && c.record.cluster_id == cluster_id)
            .min_by_key(|c| c.record.created_at)?;
        next.taken = true;
        next.record.status = CommandStatus::Running;
        next.record.started_at = Some(Utc::now());
        Some(next.record.clone())
    }

    /// Finishes a transient command of the result's cluster; `None` when there is none with
    /// this id in this cluster (the caller then asks the persistent queue, which answers
    /// not found for another cluster's command).
    pub(crate) fn complete(&self, result: &CommandResult) -> Option<CommandRecord> {
        let mut commands = self.commands.lock();
        let entry = commands.get(&result.command_id)?;
        if entry.record.cluster_id != result.cluster_id {
            return None;
        }
        let mut record = commands.remove(&result.command_id)?.record;
        record.status = if result.success {
            CommandStatus::Success
        } else {
            CommandStatus::Failed
        };
        record.finished_at = Some(Utc::now());
        record.result = Some(result.clone());
        Some(record)
    }

    /// How many are waiting or running.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.commands.lock().len()
    }
}

/// A command to queue.
#[derive(Debug, Clone, Default)]
pub(crate) struct NewCommand {
    pub(crate) cluster_id: String,
    pub(crate) action: String,
    pub(crate) target_kind: String,
    pub(crate) target_namespace: String,
    pub(crate) target_name: String,
    pub(crate) params: Map<String, Value>,
    pub(crate) timeout: Duration,
}

impl NewCommand {
    fn into_record(self) -> Result<CommandRecord, ApiError> {
        let now = Utc::now();
        let timeout = chrono::Duration::from_std(self.timeout)
            .map_err(|_| ApiError::bad_request("command timeout is too long"))?;
        Ok(CommandRecord {
            command_id: uuid::Uuid::new_v4().to_string(),
            cluster_id: self.cluster_id,
            action: self.action,
            target_kind: self.target_kind,
            target_namespace: self.target_namespace,
            target_name: self.target_name,
            params: self.params,
            status: CommandStatus::Pending,
            created_at: now,
            deadline: now + timeout,
            started_at: None,
            finished_at: None,
            result: None,
        })
    }
}

/// `Retry-After` of a command refused because its cluster's queue is full: the agent takes
/// commands as soon as it polls, and open ones time out at their deadline, so a few seconds
/// usually free a place.
const QUEUE_FULL_RETRY_AFTER: Duration = Duration::from_secs(5);

/// Stores a command as pending and wakes the cluster's long polls; 429 when the cluster
/// already has [`MasterConfig::max_pending_commands`] open commands.
///
/// [`MasterConfig::max_pending_commands`]: crate::MasterConfig::max_pending_commands
pub(crate) async fn queue_command(
    master: &Master,
    new: NewCommand,
) -> Result<CommandRecord, ApiError> {
    let record = new.into_record()?;
    // Count and queue as one step: two creations must not both see the last free place.
    let _creating = master.creating.lock().await;
    let open = master
        .commands
        .count_open(&record.cluster_id)
        .await
        .map_err(master.store_failed("counting open commands"))?;
    let cap = master.config.max_pending_commands;
    if open >= cap {
        master.stats.limits.count_pending_full();
        return Err(ApiError::too_many_requests(
            format!(
                "cluster {} has {open} open commands, the most allowed \
                 (MASTER_MAX_PENDING_COMMANDS={cap}); retry once its agent has taken some",
                record.cluster_id
            ),
            QUEUE_FULL_RETRY_AFTER,
        ));
    }
    enqueue(master, &record).await?;
    Ok(record)
}

async fn enqueue(master: &Master, record: &CommandRecord) -> Result<(), ApiError> {
    master
        .commands
        .enqueue(record)
        .await
        .map_err(master.store_failed("queueing a command"))?;
    master
        .stats
        .commands_created
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    master
        .hub
        .entry(&record.cluster_id)
        .commands_ready
        .notify_waiters();
    // The agent may be polling another master.
    master.fleet.tell(crate::fleet::News::Command {
        cluster: record.cluster_id.clone(),
    });
    Ok(())
}

/// An agent that polled this master that recently is taken to poll it still (it polls again
/// right after each answer).
const AGENT_POLLS_AGAIN_WITHIN: Duration = Duration::from_secs(2);

/// Sends a transient command (see the module docs; through the shared queue when the agent
/// polls another master of the fleet) and waits for the agent's answer, at
/// most `timeout` (then 504). Returns the final record (success or failed).
pub(crate) async fn execute(master: &Master, new: NewCommand) -> Result<CommandRecord, ApiError> {
    let timeout = new.timeout;
    let started = tokio::time::Instant::now();
    let record = new.into_record()?;
    let answer = master.waiters.register(&record.command_id);
    let id = record.command_id.clone();
    let cluster_id = record.cluster_id.clone();
    let entry = master.hub.entry(&cluster_id);
    if master.fleet.is_shared() && !entry.agent_polls_here(AGENT_POLLS_AGAIN_WITHIN) {
        // The agent polls another master: the command goes through the shared queue, and
        // its result comes back as news.
        if let Err(e) = enqueue(master, &record).await {
            master.waiters.forget(&id);
            return Err(e);
        }
    } else {
        master.transient.insert(record);
        master
            .stats
            .commands_created
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        entry.commands_ready.notify_waiters();
    }
    let outcome = tokio::select! {
        r = answer => r.ok(),
        () = tokio::time::sleep(timeout) => None,
        () = master.shutdown.cancelled() => {
            master.waiters.forget(&id);
            master.transient.remove(&id);
            return Err(ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "the master is shutting down",
            ));
        }
    };
    master.waiters.forget(&id);
    master.transient.remove(&id);
    let timed_out = || {
        master
            .stats
            .detail_timeouts
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ApiError::new(
            axum::http::StatusCode::GATEWAY_TIMEOUT,
            format!(
                "the agent of cluster {cluster_id} did not answer within {} ms",
                timeout.as_millis()
            ),
        )
    };
    match outcome {
        Some(done) if done.status != CommandStatus::Timeout => {
            master.stats.command_round_trip.observe(started.elapsed());
            Ok(done)
        }
        _ => Err(timed_out()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_commands_stay_in_their_cluster() {
        let t = TransientCommands::default();
        let record = |id: &str, cluster: &str, age: i64| CommandRecord {
            command_id: id.into(),
            cluster_id: cluster.into(),
            created_at: Utc::now() - chrono::Duration::seconds(age),
            ..Default::default()
        };
        t.insert(record("new", "a", 1));
        t.insert(record("old", "a", 5));
        t.insert(record("other", "b", 9));
        assert_eq!(t.take("a").unwrap().command_id, "old");
        assert_eq!(t.take("a").unwrap().command_id, "new");
        assert!(
            t.take("a").is_none(),
            "taken commands are not offered twice"
        );
        let result = |id: &str, cluster: &str| CommandResult {
            command_id: id.into(),
            cluster_id: cluster.into(),
            success: true,
            ..Default::default()
        };
        assert!(
            t.complete(&result("other", "a")).is_none(),
            "b's command, a's answer"
        );
        assert_eq!(t.len(), 3);
        let done = t.complete(&result("old", "a")).unwrap();
        assert_eq!(done.status, CommandStatus::Success);
        assert!(t.complete(&result("old", "a")).is_none(), "answered once");
        assert_eq!(t.take("b").unwrap().command_id, "other");
        t.remove("other");
        assert_eq!(t.len(), 1);
    }

    #[tokio::test]
    async fn waiters_get_the_record_once() {
        let w = ResultWaiters::default();
        let rx1 = w.register("x");
        let rx2 = w.register("x");
        let record = CommandRecord {
            command_id: "x".into(),
            ..Default::default()
        };
        w.wake(&record);
        assert_eq!(rx1.await.unwrap().command_id, "x");
        assert_eq!(rx2.await.unwrap().command_id, "x");
        // Nobody left: waking again does nothing.
        w.wake(&record);
        let rx3 = w.register("y");
        w.forget("y");
        assert!(rx3.await.is_err());
    }
}
