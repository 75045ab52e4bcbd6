//! The agent registry.

use std::time::Duration;

use atlhyper_model::AgentStatus;
use chrono::{DateTime, Utc};

use crate::error::StoreResult;

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
    /// Upserts the agent of `seen.cluster_id`.
    async fn seen(&self, seen: &AgentSeen) -> StoreResult<()>;

    /// Every agent, sorted by cluster id, `online` when heard from within `offline_after` of `now`.
    async fn list(&self, now: DateTime<Utc>, offline_after: Duration) -> StoreResult<Vec<AgentStatus>>;
}
