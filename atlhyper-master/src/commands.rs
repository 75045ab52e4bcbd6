//! The command channel: queueing a command wakes its cluster's long polls at once, and a result
//! wakes whoever waits for it (an observe detail request).

use std::collections::HashMap;
use std::time::Duration;

use atlhyper_model::{CommandRecord, CommandStatus};
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

    /// Drops the waiters of a command nobody waits for any more.
    pub(crate) fn forget(&self, command_id: &str) {
        self.waiting.lock().remove(command_id);
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

impl Master {
    /// Stores a command as pending and wakes the cluster's long polls.
    pub(crate) async fn queue_command(&self, new: NewCommand) -> Result<CommandRecord, ApiError> {
        let record = new.into_record()?;
        self.enqueue(&record).await?;
        Ok(record)
    }

    async fn enqueue(&self, record: &CommandRecord) -> Result<(), ApiError> {
        let inner = &self.inner;
        if let Err(e) = inner.commands.enqueue(record).await {
            inner.count_store_error();
            return Err(ApiError::store("queueing a command", &e));
        }
        inner
            .stats
            .commands_created
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        inner
            .hub
            .entry(&record.cluster_id)
            .commands_ready
            .notify_waiters();
        Ok(())
    }

    /// Queues a command and waits for the agent's answer, at most `timeout` (then 504). Returns
    /// the final record (success or failed).
    pub(crate) async fn execute(&self, new: NewCommand) -> Result<CommandRecord, ApiError> {
        let inner = &self.inner;
        let timeout = new.timeout;
        let started = tokio::time::Instant::now();
        let record = new.into_record()?;
        let answer = inner.waiters.register(&record.command_id);
        if let Err(e) = self.enqueue(&record).await {
            inner.waiters.forget(&record.command_id);
            return Err(e);
        }
        let outcome = tokio::select! {
            r = answer => r.ok(),
            () = tokio::time::sleep(timeout) => None,
            () = inner.shutdown.cancelled() => {
                inner.waiters.forget(&record.command_id);
                return Err(ApiError::new(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "the master is shutting down",
                ));
            }
        };
        inner.waiters.forget(&record.command_id);
        let timed_out = || {
            inner
                .stats
                .detail_timeouts
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            ApiError::new(
                axum::http::StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "the agent of cluster {} did not answer within {} ms",
                    record.cluster_id,
                    timeout.as_millis()
                ),
            )
        };
        match outcome {
            Some(done) if done.status != CommandStatus::Timeout => {
                inner.stats.command_round_trip.observe(started.elapsed());
                Ok(done)
            }
            _ => Err(timed_out()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
