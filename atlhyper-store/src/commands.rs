//! The command queue.

use std::time::Duration;

use atlhyper_model::{CommandRecord, CommandResult, CommandStatus};
use chrono::{DateTime, Utc};

use crate::error::StoreResult;

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
    /// Stores a new command (status `pending`). An id that exists already is `Invalid`.
    async fn enqueue(&self, command: &CommandRecord) -> StoreResult<()>;

    /// Takes up to `max` commands of one cluster, oldest first: those `pending`, and those
    /// `running` whose lease ran out (their agent died). They become `running` with a lease until
    /// `now + lease`. Commands past their deadline are not offered.
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
    async fn complete(&self, result: &CommandResult, now: DateTime<Utc>) -> StoreResult<CommandRecord>;

    /// One command by id.
    async fn get(&self, command_id: &str) -> StoreResult<Option<CommandRecord>>;

    /// Commands matching a filter, newest first.
    async fn list(&self, filter: &CommandFilter) -> StoreResult<Vec<CommandRecord>>;

    /// Marks every pending or running command whose deadline is before `now` as `timeout`.
    /// Returns the commands it changed.
    async fn expire(&self, now: DateTime<Utc>) -> StoreResult<Vec<CommandRecord>>;
}
