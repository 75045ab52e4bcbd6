//! The agent registry.

use std::time::Duration;

use atlhyper_model::{AgentState, AgentStatus};
use chrono::{DateTime, Utc};

use crate::error::{StoreError, StoreResult};
use crate::timestamp::{from_ns, nanos128, to_ns};

/// How an agent was heard from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeenVia {
    /// `POST /agent/heartbeat`.
    Heartbeat,
    /// An accepted `POST /agent/snapshot`.
    Snapshot,
}

/// One sign of life from an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSeen {
    /// Cluster id (from the token).
    pub cluster_id: String,
    /// Agent version string (empty if unknown).
    pub agent_version: String,
    /// Remote address as the master saw it.
    pub remote_addr: String,
    /// When.
    pub at: DateTime<Utc>,
    /// Heartbeat or snapshot.
    pub via: SeenVia,
}

/// When each cluster's agent was last heard from.
#[async_trait::async_trait]
pub trait AgentRegistry: Send + Sync + 'static {
    /// Upserts the agent of `seen.cluster_id`: the version and address are replaced when
    /// non-empty, and the last heartbeat (or snapshot) time moves forward only. An empty cluster
    /// id or a time outside years 1677 to 2262 is `Invalid`.
    async fn seen(&self, seen: &AgentSeen) -> StoreResult<()>;

    /// Every agent, sorted by cluster id, `online` when heard from (heartbeat or snapshot) within
    /// `offline_after` of `now`. A time never seen is reported as the Unix epoch.
    async fn list(
        &self,
        now: DateTime<Utc>,
        offline_after: Duration,
    ) -> StoreResult<Vec<AgentStatus>>;

    /// Forgets the agent of a cluster (a retired cluster); it comes back when heard from again.
    /// Returns whether it was known.
    async fn forget(&self, cluster_id: &str) -> StoreResult<bool>;
}

/// What the store keeps per agent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AgentRecord {
    pub(crate) cluster_id: String,
    pub(crate) agent_version: String,
    pub(crate) remote_addr: String,
    /// Nanoseconds since the epoch.
    pub(crate) last_heartbeat: Option<i64>,
    /// Nanoseconds since the epoch.
    pub(crate) last_snapshot: Option<i64>,
}

impl AgentRecord {
    /// Applies a sign of life: the version and address when known, and the newest time per kind.
    pub(crate) fn apply(&mut self, seen: &AgentSeen, at: i64) {
        if !seen.agent_version.is_empty() {
            self.agent_version.clone_from(&seen.agent_version);
        }
        if !seen.remote_addr.is_empty() {
            self.remote_addr.clone_from(&seen.remote_addr);
        }
        let slot = match seen.via {
            SeenVia::Heartbeat => &mut self.last_heartbeat,
            SeenVia::Snapshot => &mut self.last_snapshot,
        };
        *slot = Some(slot.map_or(at, |old| old.max(at)));
    }

    /// The status at `now`: online when heard from (either way) within `offline_after`.
    pub(crate) fn status(&self, now: DateTime<Utc>, offline_after: Duration) -> AgentStatus {
        let last = self.last_heartbeat.max(self.last_snapshot);
        let online = last.is_some_and(|last| {
            nanos128(now) - i128::from(last)
                <= i128::try_from(offline_after.as_nanos()).unwrap_or(i128::MAX)
        });
        AgentStatus {
            cluster_id: self.cluster_id.clone(),
            status: if online {
                AgentState::Online
            } else {
                AgentState::Offline
            },
            last_heartbeat: self.last_heartbeat.map(from_ns).unwrap_or_default(),
            last_snapshot: self.last_snapshot.map(from_ns).unwrap_or_default(),
            agent_version: self.agent_version.clone(),
            remote_addr: self.remote_addr.clone(),
        }
    }
}

/// Checks a sign of life; returns its time in nanoseconds.
pub(crate) fn check_seen(seen: &AgentSeen) -> StoreResult<i64> {
    if seen.cluster_id.is_empty() {
        return Err(StoreError::Invalid(
            "agent seen without cluster_id".to_owned(),
        ));
    }
    to_ns(seen.at, "agent seen at")
}
