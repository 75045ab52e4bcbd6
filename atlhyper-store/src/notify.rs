//! What alert notification keeps: silences, and the notification log.
//!
//! The notification log has two parts, as Alertmanager's `nflog` does plus a history:
//! - [`NotifiedGroup`]: per (receiver, group), which firing and resolved alert fingerprints were
//!   last sent and when. The dispatcher decides from it whether a group needs a notification, so
//!   each firing and resolved alert is sent once and a restart does not send it again.
//! - [`NotificationRecord`]: one row per delivery attempt that ended (sent or given up): what, to
//!   whom, when, the result.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{StoreError, StoreResult};
use crate::timestamp::to_ns;

/// One label matcher of a silence, in Alertmanager's API v2 shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilenceMatcher {
    /// Label name.
    pub name: String,
    /// Value, or a regular expression (anchored at both ends) when `is_regex`.
    pub value: String,
    /// Whether `value` is a regular expression.
    #[serde(default)]
    pub is_regex: bool,
    /// `true`: the label must match; `false`: it must not (`!=`, `!~`).
    #[serde(default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

/// A silence: alerts whose labels satisfy every matcher are not notified between `starts_at`
/// and `ends_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    /// Unique id (a UUID from the master).
    pub id: String,
    /// All must match.
    pub matchers: Vec<SilenceMatcher>,
    /// Start of the muting.
    pub starts_at: DateTime<Utc>,
    /// End of the muting (an expired silence has `ends_at` in the past).
    pub ends_at: DateTime<Utc>,
    /// Who made it.
    pub created_by: String,
    /// Why.
    pub comment: String,
    /// Last change (creation or expiry).
    pub updated_at: DateTime<Utc>,
}

/// Per receiver and group: what was last sent and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifiedGroup {
    /// Receiver name.
    pub receiver: String,
    /// Group key (route and group labels).
    pub group_key: String,
    /// Fingerprints of the firing alerts sent, sorted.
    pub firing: Vec<String>,
    /// Fingerprints of the resolved alerts sent, sorted.
    pub resolved: Vec<String>,
    /// When the notification was delivered.
    pub sent_at: DateTime<Utc>,
}

/// How a delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryResult {
    /// The receiver accepted it.
    Sent,
    /// Every attempt failed, or a newer notification of the same group replaced it.
    Failed,
}

impl DeliveryResult {
    /// `sent` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }
}

/// One finished delivery: what, to whom, when, the result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationRecord {
    /// When it ended.
    pub at: DateTime<Utc>,
    /// Receiver name.
    pub receiver: String,
    /// Group key.
    pub group_key: String,
    /// Firing alerts in the notification.
    pub firing: u32,
    /// Resolved alerts in the notification.
    pub resolved: u32,
    /// Attempts made.
    pub attempts: u32,
    /// Sent or failed.
    pub result: DeliveryResult,
    /// The last error, empty when sent.
    pub error: String,
}

/// Silences and the notification log.
#[async_trait::async_trait]
pub trait NotifyStore: Send + Sync + 'static {
    /// Creates or replaces the silence with `silence.id`. An empty id or a time outside years
    /// 1677 to 2262 is `Invalid`.
    async fn put_silence(&self, silence: &Silence) -> StoreResult<()>;

    /// The silence with this id.
    async fn get_silence(&self, id: &str) -> StoreResult<Option<Silence>>;

    /// Every silence, by start time then id.
    async fn list_silences(&self) -> StoreResult<Vec<Silence>>;

    /// Deletes silences that ended before `before`; returns how many.
    async fn prune_silences(&self, before: DateTime<Utc>) -> StoreResult<u64>;

    /// Records what was sent to a receiver for a group (replacing the previous entry).
    async fn put_notified(&self, entry: &NotifiedGroup) -> StoreResult<()>;

    /// Every entry, by receiver then group key.
    async fn list_notified(&self) -> StoreResult<Vec<NotifiedGroup>>;

    /// Forgets a group's entry for a receiver (the group is gone); returns whether it existed.
    async fn delete_notified(&self, receiver: &str, group_key: &str) -> StoreResult<bool>;

    /// Appends a finished delivery to the log.
    async fn append_notification(&self, record: &NotificationRecord) -> StoreResult<()>;

    /// The newest `limit` deliveries, newest first.
    async fn list_notifications(&self, limit: usize) -> StoreResult<Vec<NotificationRecord>>;

    /// Deletes deliveries logged before `before`; returns how many.
    async fn prune_notifications(&self, before: DateTime<Utc>) -> StoreResult<u64>;
}

/// Checks a silence before storing it.
pub(crate) fn check_silence(silence: &Silence) -> StoreResult<()> {
    if silence.id.is_empty() {
        return Err(StoreError::Invalid("silence without id".to_owned()));
    }
    to_ns(silence.starts_at, "silence starts_at")?;
    to_ns(silence.ends_at, "silence ends_at")?;
    to_ns(silence.updated_at, "silence updated_at")?;
    Ok(())
}

/// Checks a notification log entry before storing it.
pub(crate) fn check_notified(entry: &NotifiedGroup) -> StoreResult<i64> {
    if entry.receiver.is_empty() || entry.group_key.is_empty() {
        return Err(StoreError::Invalid(
            "notification log entry without receiver or group key".to_owned(),
        ));
    }
    to_ns(entry.sent_at, "notification sent_at")
}

/// Checks a delivery record before storing it.
pub(crate) fn check_record(record: &NotificationRecord) -> StoreResult<i64> {
    if record.receiver.is_empty() {
        return Err(StoreError::Invalid(
            "notification record without receiver".to_owned(),
        ));
    }
    to_ns(record.at, "notification at")
}
