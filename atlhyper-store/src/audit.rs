//! The audit log: one entry per write an operator (or someone trying to be one) sent to the
//! master, with who, from where, what, on what, and how it ended.
//!
//! The store keeps entries as they are handed in; the master decides what is a write and names
//! the action and the target.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{StoreError, StoreResult};
use crate::timestamp::to_ns;

/// Most entries one query returns.
pub const MAX_AUDIT_LIMIT: usize = 10_000;

/// Longest stored text field, bytes; a longer one is `Invalid` (the master cuts before).
pub const MAX_AUDIT_FIELD_BYTES: usize = 1024;

/// One audited write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When the answer was given.
    pub at: DateTime<Utc>,
    /// Who: the token's name, `cert:<subject>` for a client certificate, `anonymous` on an
    /// open master, `unknown` for a missing or unknown token. Never a token's text.
    pub actor: String,
    /// The client's address (`IP:port` of the connection).
    pub source: String,
    /// What was asked (`command.create`, `alert_rule.delete`, ...); never empty.
    pub action: String,
    /// What it was done to (a resource path such as `/api/v2/clusters/prod-a`).
    pub target: String,
    /// HTTP status of the answer: 2xx done, 401/403 refused, other 4xx invalid, 5xx failed.
    pub status: u16,
    /// Anything the route adds (the cluster and action of a command); may be empty.
    pub detail: String,
}

/// An audit query. Entries come newest first (by time, then by the order they were appended).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    /// Inclusive lower bound of the entry time.
    pub from: Option<DateTime<Utc>>,
    /// Inclusive upper bound of the entry time.
    pub to: Option<DateTime<Utc>>,
    /// Only entries of this action (exact match).
    pub action: Option<String>,
    /// At most this many (1 to [`MAX_AUDIT_LIMIT`]).
    pub limit: usize,
}

impl Default for AuditQuery {
    fn default() -> Self {
        Self {
            from: None,
            to: None,
            action: None,
            limit: 100,
        }
    }
}

/// The audit log: appended, listed, pruned by age.
#[async_trait::async_trait]
pub trait AuditLog: Send + Sync + 'static {
    /// Appends one entry. An empty action, a text field over [`MAX_AUDIT_FIELD_BYTES`] or a time
    /// outside years 1677 to 2262 is `Invalid` (nothing is written).
    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<()>;

    /// Entries matching `query`, newest first. A limit of 0 or above [`MAX_AUDIT_LIMIT`] is
    /// `Invalid`.
    async fn list_audit(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEntry>>;

    /// Deletes entries older than `before`; returns how many.
    async fn prune_audit(&self, before: DateTime<Utc>) -> StoreResult<u64>;
}

/// Checks an entry before storing it; returns its time in nanoseconds.
pub(crate) fn check_entry(entry: &AuditEntry) -> StoreResult<i64> {
    if entry.action.is_empty() {
        return Err(StoreError::Invalid("audit entry without action".to_owned()));
    }
    for (name, text) in [
        ("actor", &entry.actor),
        ("source", &entry.source),
        ("action", &entry.action),
        ("target", &entry.target),
        ("detail", &entry.detail),
    ] {
        if text.len() > MAX_AUDIT_FIELD_BYTES {
            return Err(StoreError::Invalid(format!(
                "audit entry {name} is {} bytes, more than {MAX_AUDIT_FIELD_BYTES}",
                text.len()
            )));
        }
    }
    to_ns(entry.at, "audit entry at")
}

/// Checks a query's limit.
pub(crate) fn check_query(query: &AuditQuery) -> StoreResult<()> {
    if query.limit == 0 || query.limit > MAX_AUDIT_LIMIT {
        return Err(StoreError::Invalid(format!(
            "limit must be 1 to {MAX_AUDIT_LIMIT}"
        )));
    }
    Ok(())
}
