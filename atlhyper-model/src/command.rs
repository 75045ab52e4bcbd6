//! Commands the master sends to an agent through the long-poll channel, and their results
//! (AtlHyper v2 `agentsdk` wire types, plus the master's record of each command).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::serde_util::null_default;

/// A command as the agent receives it (`GET /agent/commands` → `command`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Command {
    /// Command id (UUID).
    #[serde(deserialize_with = "null_default")]
    pub id: String,
    /// What to do: `node_detail`, `node_series`, `list_nodes`, `ping`, or an AtlHyper v2 action.
    #[serde(deserialize_with = "null_default")]
    pub action: String,
    /// Kind of the target (e.g. "Node").
    #[serde(deserialize_with = "null_default")]
    pub target_kind: String,
    /// Namespace of the target, if namespaced.
    #[serde(deserialize_with = "null_default")]
    pub target_namespace: String,
    /// Name of the target (e.g. the node name).
    #[serde(deserialize_with = "null_default")]
    pub target_name: String,
    /// Action-specific parameters.
    #[serde(
        skip_serializing_if = "Map::is_empty",
        deserialize_with = "null_default"
    )]
    pub params: Map<String, Value>,
    /// Extension: the cluster the command is for.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_default"
    )]
    pub cluster_id: String,
    /// Extension: when the command was created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
}

/// `GET /agent/commands` answer: `{"has_command": false}` when the long poll timed out empty.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CommandPoll {
    /// Whether `command` is set.
    pub has_command: bool,
    /// The command to run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Command>,
}

impl CommandPoll {
    /// The empty answer.
    pub fn empty() -> Self {
        Self {
            has_command: false,
            command: None,
        }
    }

    /// An answer carrying one command.
    pub fn with(command: Command) -> Self {
        Self {
            has_command: true,
            command: Some(command),
        }
    }
}

/// `POST /agent/result` body: what running a command gave.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CommandResult {
    /// Cluster that ran it (must own the command, else the master answers 404).
    #[serde(deserialize_with = "null_default")]
    pub cluster_id: String,
    /// The command's id.
    #[serde(deserialize_with = "null_default")]
    pub command_id: String,
    /// Whether it succeeded.
    pub success: bool,
    /// Output; for the built-in queries a JSON document as text.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_default"
    )]
    pub output: String,
    /// Why it failed.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_default"
    )]
    pub error: String,
    /// How long it ran, milliseconds.
    pub exec_time_ms: u64,
}

/// Where a command is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandStatus {
    /// Queued, not yet taken by an agent (or its lease expired).
    #[default]
    Pending,
    /// Taken by an agent under a lease.
    Running,
    /// Finished and succeeded.
    Success,
    /// Finished and failed.
    Failed,
    /// Not finished before its deadline. AtlHyper v2 calls it `expired`.
    #[serde(alias = "expired")]
    Timeout,
}

impl CommandStatus {
    /// Every status, in life order.
    pub const ALL: [CommandStatus; 5] = [
        Self::Pending,
        Self::Running,
        Self::Success,
        Self::Failed,
        Self::Timeout,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Success => "success",
            Self::Failed => "failed",
            Self::Timeout => "timeout",
        }
    }

    /// Whether the command has finished (success, failed or timeout).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Success | Self::Failed | Self::Timeout)
    }
}

impl fmt::Display for CommandStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error of parsing a [`CommandStatus`] from text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCommandStatus(pub String);

impl fmt::Display for UnknownCommandStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown command status {:?} (expected pending, running, success, failed or timeout)",
            self.0
        )
    }
}

impl std::error::Error for UnknownCommandStatus {}

impl FromStr for CommandStatus {
    type Err = UnknownCommandStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(Self::Pending),
            "running" => Ok(Self::Running),
            "success" => Ok(Self::Success),
            "failed" => Ok(Self::Failed),
            "timeout" | "expired" => Ok(Self::Timeout),
            other => Err(UnknownCommandStatus(other.to_owned())),
        }
    }
}

/// The master's record of a command: `GET /api/v2/commands/{id}` and the command list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CommandRecord {
    /// Command id.
    pub command_id: String,
    /// Cluster the command is for.
    pub cluster_id: String,
    /// Action.
    pub action: String,
    /// Target kind.
    pub target_kind: String,
    /// Target namespace.
    pub target_namespace: String,
    /// Target name.
    pub target_name: String,
    /// Parameters.
    #[serde(
        skip_serializing_if = "Map::is_empty",
        deserialize_with = "null_default"
    )]
    pub params: Map<String, Value>,
    /// Current status.
    pub status: CommandStatus,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it has to be finished by; past it a pending or running command becomes `timeout`.
    pub deadline: DateTime<Utc>,
    /// When an agent took it (first time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// When it finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// The agent's result, once there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<CommandResult>,
}

impl CommandRecord {
    /// The command as the agent receives it.
    pub fn to_command(&self) -> Command {
        Command {
            id: self.command_id.clone(),
            action: self.action.clone(),
            target_kind: self.target_kind.clone(),
            target_namespace: self.target_namespace.clone(),
            target_name: self.target_name.clone(),
            params: self.params.clone(),
            cluster_id: self.cluster_id.clone(),
            created_at: Some(self.created_at),
        }
    }
}

/// `POST /api/v2/commands` body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CreateCommand {
    /// Cluster to run it in.
    pub cluster_id: String,
    /// Action.
    pub action: String,
    /// Target kind.
    pub target_kind: String,
    /// Target namespace.
    pub target_namespace: String,
    /// Target name.
    pub target_name: String,
    /// Parameters.
    #[serde(deserialize_with = "null_default")]
    pub params: Map<String, Value>,
    /// Seconds until it times out; the master's default when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
}

/// `POST /api/v2/commands` answer (201).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandCreated {
    /// The new command's id.
    pub command_id: String,
    /// Its status (pending).
    pub status: CommandStatus,
}
