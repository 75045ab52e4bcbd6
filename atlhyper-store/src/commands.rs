//! The command queue.

use std::time::Duration;

use atlhyper_model::{CommandRecord, CommandResult, CommandStatus};
use chrono::{DateTime, Utc};

use crate::error::{StoreError, StoreResult};
use crate::timestamp::{duration_ns, nanos128, to_ns};

/// Filter of [`CommandQueue::list`]; `None` fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandFilter {
    /// Only this cluster.
    pub cluster_id: Option<String>,
    /// Only this status.
    pub status: Option<CommandStatus>,
    /// Only this action.
    pub action: Option<String>,
    /// At most this many (newest first); the engine's default when `None`.
    pub limit: Option<usize>,
    /// Skip this many.
    pub offset: usize,
}

/// Commands for agents: enqueue, take under a lease, complete, expire.
#[async_trait::async_trait]
pub trait CommandQueue: Send + Sync + 'static {
    /// Stores a new command as `pending` (its status, start, finish and result are reset). An id
    /// that exists already, an empty id or cluster, or a time outside years 1677 to 2262 is
    /// `Invalid`.
    async fn enqueue(&self, command: &CommandRecord) -> StoreResult<()>;

    /// Takes up to `max` commands of one cluster, oldest first: those `pending`, and those
    /// `running` whose lease ran out (their agent died). They become `running` with a lease until
    /// `now + lease`; `started_at` is set the first time. Commands past their deadline
    /// (`deadline < now`) are not offered. A lease ends at `now + lease` exactly: at that instant
    /// the command is offered again.
    async fn take(
        &self,
        cluster_id: &str,
        max: usize,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<CommandRecord>>;

    /// Records a result. Accepted only for a command of `result.cluster_id`; otherwise (or for an
    /// unknown id) `NotFound` and nothing changes. A command already final keeps its first result
    /// and the call returns it unchanged.
    async fn complete(
        &self,
        result: &CommandResult,
        now: DateTime<Utc>,
    ) -> StoreResult<CommandRecord>;

    /// One command by id.
    async fn get(&self, command_id: &str) -> StoreResult<Option<CommandRecord>>;

    /// Commands matching a filter, newest first (by `created_at`, then id, descending); at most
    /// [`DEFAULT_LIST_LIMIT`] when the filter sets no limit.
    async fn list(&self, filter: &CommandFilter) -> StoreResult<Vec<CommandRecord>>;

    /// Marks every pending or running command whose deadline is before `now` as `timeout`.
    /// Returns the commands it changed, oldest first.
    async fn expire(&self, now: DateTime<Utc>) -> StoreResult<Vec<CommandRecord>>;
    /// How many commands of `cluster_id` are still open: `pending`, or `running` (taken by its
    /// agent, result not yet in). Commands past their deadline that [`CommandQueue::expire`] has
    /// not marked yet still count. The master caps this per cluster.
    async fn count_open(&self, cluster_id: &str) -> StoreResult<u64>;

    /// Deletes every finished command (`success`, `failed`, `timeout`) whose `finished_at` is
    /// before `before`: the command history's retention. Pending and running commands stay,
    /// however old. Returns how many were deleted.
    async fn prune_commands(&self, before: DateTime<Utc>) -> StoreResult<u64>;
}

/// How many commands [`CommandQueue::list`] returns when the filter sets no limit.
pub const DEFAULT_LIST_LIMIT: usize = 100;

/// A stored command: the record and, while it is `running`, when its lease runs out.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoredCommand {
    pub(crate) record: CommandRecord,
    /// Nanoseconds since the epoch.
    pub(crate) lease_until: Option<i64>,
}

/// Checks a command to enqueue and returns it as stored: `pending`, never started or finished.
pub(crate) fn new_command(command: &CommandRecord) -> StoreResult<StoredCommand> {
    if command.command_id.is_empty() {
        return Err(StoreError::Invalid("command without command_id".to_owned()));
    }
    if command.cluster_id.is_empty() {
        return Err(StoreError::Invalid(format!(
            "command {} without cluster_id",
            command.command_id
        )));
    }
    to_ns(command.created_at, "command created_at")?;
    to_ns(command.deadline, "command deadline")?;
    let record = CommandRecord {
        status: CommandStatus::Pending,
        started_at: None,
        finished_at: None,
        result: None,
        ..command.clone()
    };
    Ok(StoredCommand {
        record,
        lease_until: None,
    })
}

/// The error of enqueueing an id that exists.
pub(crate) fn duplicate(command_id: &str) -> StoreError {
    StoreError::Invalid(format!("command {command_id} exists already"))
}

impl StoredCommand {
    /// Whether [`CommandQueue::take`] offers it at `now` (nanoseconds).
    pub(crate) fn offerable(&self, now: i64) -> bool {
        let r = &self.record;
        let not_overdue = nanos128(r.deadline) >= i128::from(now);
        let free = match r.status {
            CommandStatus::Pending => true,
            CommandStatus::Running => self.lease_until.is_none_or(|until| until <= now),
            _ => false,
        };
        free && not_overdue
    }

    /// Takes it under a lease until `now + lease`.
    pub(crate) fn lease(&mut self, now: DateTime<Utc>, now_ns: i64, lease: Duration) {
        self.record.status = CommandStatus::Running;
        self.record.started_at.get_or_insert(now);
        self.lease_until = Some(now_ns.saturating_add(duration_ns(lease)));
    }

    /// Records a result unless the command is final already. Returns whether it changed.
    pub(crate) fn complete(&mut self, result: &CommandResult, now: DateTime<Utc>) -> bool {
        if self.record.status.is_final() {
            return false;
        }
        self.record.status = if result.success {
            CommandStatus::Success
        } else {
            CommandStatus::Failed
        };
        self.record.finished_at = Some(now);
        self.record.result = Some(result.clone());
        self.lease_until = None;
        true
    }

    /// Whether [`CommandQueue::expire`] times it out at `now`.
    pub(crate) fn overdue(&self, now: DateTime<Utc>) -> bool {
        !self.record.status.is_final() && self.record.deadline < now
    }

    /// Times it out.
    pub(crate) fn time_out(&mut self, now: DateTime<Utc>) {
        self.record.status = CommandStatus::Timeout;
        self.record.finished_at = Some(now);
        self.lease_until = None;
    }
}

/// The error of completing an unknown command or one of another cluster.
pub(crate) fn not_found(command_id: &str) -> StoreError {
    StoreError::NotFound(format!("command {command_id}"))
}

/// Oldest first: by creation time, then id.
pub(crate) fn oldest_first(a: &CommandRecord, b: &CommandRecord) -> std::cmp::Ordering {
    (a.created_at, &a.command_id).cmp(&(b.created_at, &b.command_id))
}

/// Whether a record passes a filter's matching fields (limit and offset aside).
pub(crate) fn matches(filter: &CommandFilter, r: &CommandRecord) -> bool {
    filter
        .cluster_id
        .as_ref()
        .is_none_or(|c| *c == r.cluster_id)
        && filter.status.is_none_or(|s| s == r.status)
        && filter.action.as_ref().is_none_or(|a| *a == r.action)
}
