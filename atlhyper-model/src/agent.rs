//! Agent liveness: heartbeats and the master's view of each agent.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::serde_util::null_default;

/// `POST /agent/heartbeat` body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Heartbeat {
    /// Cluster id (the master trusts the token's cluster, and requires this to agree).
    #[serde(deserialize_with = "null_default")]
    pub cluster_id: String,
    /// When the agent sent it.
    pub timestamp: DateTime<Utc>,
    /// Extension: agent version string.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_default"
    )]
    pub agent_version: String,
}

/// `{"status": "ok"}`, the acknowledgement of ingest endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusBody {
    /// "ok", or a word saying what happened (e.g. "duplicate").
    pub status: String,
    /// Extension: nodes of a cluster snapshot that were refused alone (the rest was stored),
    /// with the reason. The sender drops them and counts them; it does not retry them.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub rejected: Vec<RejectedNode>,
}

impl StatusBody {
    /// `{"status": "ok"}`.
    pub fn ok() -> Self {
        Self::with_status("ok")
    }

    /// `{"status": status}`.
    pub fn with_status(status: &str) -> Self {
        Self {
            status: status.to_owned(),
            rejected: Vec::new(),
        }
    }
}

/// One node refused out of a cluster snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RejectedNode {
    /// The node's name as sent (the map key).
    #[serde(deserialize_with = "null_default")]
    pub node_name: String,
    /// The class of the problem, a [`crate::RejectReason`] label (`invalid_name`,
    /// `list_too_long`, `string_too_long`, `too_many_nodes`).
    #[serde(deserialize_with = "null_default")]
    pub reason: String,
    /// What exactly is wrong.
    #[serde(deserialize_with = "null_default")]
    pub error: String,
}

/// Whether an agent is reporting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentState {
    /// Heard from within the staleness window.
    Online,
    /// Silent for longer.
    #[default]
    Offline,
}

/// The master's view of one agent (AtlHyper v2 `AgentStatus`, plus version and address).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentStatus {
    /// Cluster id.
    pub cluster_id: String,
    /// Online or offline, derived from the last time the agent was heard from.
    pub status: AgentState,
    /// Last heartbeat.
    pub last_heartbeat: DateTime<Utc>,
    /// Last accepted snapshot.
    pub last_snapshot: DateTime<Utc>,
    /// Extension: agent version string.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub agent_version: String,
    /// Extension: the agent's remote address as the master saw it.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub remote_addr: String,
}
