//! Alerting: the rules operators wrote or changed, the rule engine's running alerts (so a
//! restart keeps a running `for` and does not fire again what already fired), and the history of
//! resolved alerts.
//!
//! The store knows nothing of the rule language: a rule is its name and its JSON body as the
//! master validated it. Alerts are [`atlhyper_model::Alert`]s, kept as they were handed in.

use atlhyper_model::Alert;
use chrono::{DateTime, Utc};

use crate::error::{StoreError, StoreResult};
use crate::timestamp::to_ns;

/// Most history entries one query returns.
pub const MAX_ALERT_HISTORY_LIMIT: usize = 10_000;

/// One stored alert rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRuleRecord {
    /// Rule name (also the alerts' `alertname`); unique.
    pub name: String,
    /// The rule as JSON text (an object), as the master validated it.
    pub body: String,
    /// When it was last written.
    pub updated_at: DateTime<Utc>,
}

/// What one evaluation changed, written in one transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertChanges {
    /// Alerts now pending or firing, inserted or replaced by fingerprint.
    pub upsert: Vec<Alert>,
    /// Fingerprints of alerts no longer running (resolved, or pending that stopped holding).
    pub remove: Vec<String>,
    /// Alerts to add to the history (resolved ones); idempotent on (fingerprint, time of the
    /// entry), the entry's time being `resolved_at`, or `evaluated_at` without one.
    pub history: Vec<Alert>,
}

impl AlertChanges {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.upsert.is_empty() && self.remove.is_empty() && self.history.is_empty()
    }
}

/// A history query. Entries come newest first (by their time, then fingerprint descending).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertHistoryQuery {
    /// Inclusive lower bound of the entry time.
    pub from: Option<DateTime<Utc>>,
    /// Inclusive upper bound of the entry time.
    pub to: Option<DateTime<Utc>>,
    /// Only alerts of this rule.
    pub rule: Option<String>,
    /// Only alerts with this `cluster` label.
    pub cluster: Option<String>,
    /// At most this many (1 to [`MAX_ALERT_HISTORY_LIMIT`]).
    pub limit: usize,
}

impl Default for AlertHistoryQuery {
    fn default() -> Self {
        Self {
            from: None,
            to: None,
            rule: None,
            cluster: None,
            limit: 100,
        }
    }
}

/// Alert rules, running alerts and alert history.
#[async_trait::async_trait]
pub trait AlertStore: Send + Sync + 'static {
    /// Every stored rule, sorted by name.
    async fn list_alert_rules(&self) -> StoreResult<Vec<AlertRuleRecord>>;

    /// Inserts or replaces a rule by name. An empty name, a body that is not a JSON object or a
    /// time outside years 1677 to 2262 is `Invalid`.
    async fn put_alert_rule(&self, rule: &AlertRuleRecord) -> StoreResult<()>;

    /// Deletes a rule; returns whether there was one.
    async fn delete_alert_rule(&self, name: &str) -> StoreResult<bool>;

    /// Every running (pending or firing) alert, sorted by fingerprint.
    async fn active_alerts(&self) -> StoreResult<Vec<Alert>>;

    /// Applies one evaluation's changes in one transaction: removals first, then upserts, then
    /// history. An alert without a fingerprint, with a non-finite value or a time outside years
    /// 1677 to 2262 makes the whole batch `Invalid` (nothing is written).
    async fn apply_alert_changes(&self, changes: &AlertChanges) -> StoreResult<()>;

    /// History entries matching `query`, newest first. A limit of 0 or above
    /// [`MAX_ALERT_HISTORY_LIMIT`] is `Invalid`.
    async fn alert_history(&self, query: &AlertHistoryQuery) -> StoreResult<Vec<Alert>>;

    /// Deletes history entries older than `before`; returns how many.
    async fn prune_alert_history(&self, before: DateTime<Utc>) -> StoreResult<u64>;
}

/// A rule checked: name set, body a JSON object; returns its time in nanoseconds.
pub(crate) fn check_rule(rule: &AlertRuleRecord) -> StoreResult<i64> {
    if rule.name.is_empty() {
        return Err(StoreError::Invalid("alert rule without name".to_owned()));
    }
    match serde_json::from_str::<serde_json::Value>(&rule.body) {
        Ok(serde_json::Value::Object(_)) => {}
        _ => {
            return Err(StoreError::Invalid(format!(
                "alert rule {} body is not a JSON object",
                rule.name
            )));
        }
    }
    to_ns(rule.updated_at, "alert rule updated_at")
}

/// An alert as the engines keep it: checked, its JSON, and its history time in nanoseconds.
pub(crate) struct EncodedAlert {
    pub(crate) fingerprint: String,
    pub(crate) rule: String,
    pub(crate) cluster: String,
    pub(crate) at: i64,
    pub(crate) json: String,
}

/// Checks an alert and encodes it.
pub(crate) fn encode_alert(alert: &Alert) -> StoreResult<EncodedAlert> {
    if alert.fingerprint.is_empty() {
        return Err(StoreError::Invalid("alert without fingerprint".to_owned()));
    }
    if !alert.value.is_finite() {
        return Err(StoreError::Invalid(format!(
            "alert {} has a non-finite value",
            alert.fingerprint
        )));
    }
    for (what, at) in [
        ("alert active_at", Some(alert.active_at)),
        ("alert fired_at", alert.fired_at),
        ("alert resolved_at", alert.resolved_at),
        ("alert evaluated_at", Some(alert.evaluated_at)),
    ] {
        if let Some(at) = at {
            to_ns(at, what)?;
        }
    }
    let json = serde_json::to_string(alert)
        .map_err(|e| StoreError::Invalid(format!("alert {}: {e}", alert.fingerprint)))?;
    Ok(EncodedAlert {
        fingerprint: alert.fingerprint.clone(),
        rule: alert.rule.clone(),
        cluster: alert.labels.get("cluster").cloned().unwrap_or_default(),
        at: to_ns(
            alert.resolved_at.unwrap_or(alert.evaluated_at),
            "alert history time",
        )?,
        json,
    })
}

/// Decodes a stored alert; a row that does not decode is `Corrupt`.
pub(crate) fn decode_alert(json: &str) -> StoreResult<Alert> {
    serde_json::from_str(json)
        .map_err(|e| StoreError::Corrupt(format!("stored alert does not decode: {e}")))
}

/// Checks a history query's limit.
pub(crate) fn check_history_query(query: &AlertHistoryQuery) -> StoreResult<()> {
    if query.limit == 0 || query.limit > MAX_ALERT_HISTORY_LIMIT {
        return Err(StoreError::Invalid(format!(
            "limit must be 1 to {MAX_ALERT_HISTORY_LIMIT}"
        )));
    }
    Ok(())
}
