//! Alerts: what the master's rule engine hands to notification, the API and the store.
//!
//! The shapes follow Prometheus alerting rules and Alertmanager, so operators meet names they know:
//! an alert is one rule matched on one series, identified by its label set (`alertname`,
//! `severity`, `cluster` and, where it has them, `node`, `device`, `mountpoint`); its state moves
//! inactive → pending → firing → resolved; its `fingerprint` is a stable hash of the labels (the same
//! labels give the same fingerprint in every build and after every restart, so a persisted alert or
//! notification log finds its alert again).
//!
//! The contract between evaluation and notification: after every evaluation the engine publishes
//! every alert that is firing, plus every alert that resolved in that evaluation (once, with
//! `state: resolved` and `resolved_at` set). Pending alerts are never published to notification.
//! Grouping, silences, inhibition and de-duplication happen on the notification side.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Label or annotation set, sorted by name (so rendering and hashing are deterministic).
pub type Labels = BTreeMap<String, String>;

/// How bad an alert is, in increasing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    /// Every severity, least severe first.
    pub const ALL: [Severity; 3] = [Severity::Info, Severity::Warning, Severity::Critical];

    /// The label value: `info`, `warning` or `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|sev| sev.as_str() == s)
            .ok_or_else(|| format!("unknown severity {s:?} (expected info, warning or critical)"))
    }
}

/// Where an alert is in its life, as Prometheus names the states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// The condition does not hold.
    Inactive,
    /// The condition holds, for less than the rule's `for`.
    Pending,
    /// The condition has held for the rule's `for` (or is within `keep_firing_for` after it stopped).
    Firing,
    /// Was firing and no longer is.
    Resolved,
}

impl AlertState {
    /// The label value: `inactive`, `pending`, `firing` or `resolved`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

impl fmt::Display for AlertState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One alert: a rule matched on one series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// [`fingerprint`] of `labels`, 16 lower-case hex digits.
    pub fingerprint: String,
    /// Name of the rule that produced it (also the `alertname` label).
    pub rule: String,
    /// Identifying labels: `alertname`, `severity`, `cluster`, and `node`, `device`, `mountpoint`
    /// where the series has them, plus the rule's own labels.
    ///
    /// Shared: the engine publishes every firing alert every evaluation and notification keeps
    /// them, so a copy of an alert shares its label sets instead of copying a dozen strings.
    #[serde(with = "shared_labels")]
    pub labels: Arc<Labels>,
    /// Rendered annotations (`summary`, `description`, ...), shared as `labels`.
    #[serde(with = "shared_labels")]
    pub annotations: Arc<Labels>,
    pub state: AlertState,
    /// The figure's value at the last evaluation that saw the condition hold.
    pub value: f64,
    /// When the condition was first seen holding (start of pending).
    pub active_at: DateTime<Utc>,
    /// When it started firing (Alertmanager's `startsAt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fired_at: Option<DateTime<Utc>>,
    /// When it resolved (Alertmanager's `endsAt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
    /// Time of the evaluation that last updated it.
    pub evaluated_at: DateTime<Utc>,
}

impl Alert {
    /// The `alertname` label, or the rule name when absent.
    pub fn name(&self) -> &str {
        self.labels
            .get("alertname")
            .map(String::as_str)
            .unwrap_or(&self.rule)
    }

    /// The `severity` label parsed, if it is one of the three.
    pub fn severity(&self) -> Option<Severity> {
        self.labels.get("severity").and_then(|s| s.parse().ok())
    }
}

/// An `Arc<Labels>` on the wire: the map itself (serde's `rc` feature would do the same for
/// every crate of the build).
mod shared_labels {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::Labels;

    pub(super) fn serialize<S: Serializer>(labels: &Arc<Labels>, s: S) -> Result<S::Ok, S::Error> {
        labels.as_ref().serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<Labels>, D::Error> {
        Labels::deserialize(d).map(Arc::new)
    }
}

/// Stable fingerprint of a label set: FNV-1a 64 over `name \xff value \xff` in name order, as 16
/// lower-case hex digits. The same labels give the same fingerprint in every build and process.
pub fn fingerprint(labels: &Labels) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    for (name, value) in labels {
        for byte in name
            .bytes()
            .chain([0xff])
            .chain(value.bytes())
            .chain([0xff])
        {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(PRIME);
        }
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn fingerprint_is_stable_and_order_free() {
        let a = labels(&[("alertname", "NodeDown"), ("cluster", "c1"), ("node", "n1")]);
        let b = labels(&[("node", "n1"), ("cluster", "c1"), ("alertname", "NodeDown")]);
        assert_eq!(fingerprint(&a), fingerprint(&b));
        // Pinned: a change of this value would orphan every persisted alert.
        assert_eq!(fingerprint(&a), "be850ad40f727a55");
        assert_eq!(fingerprint(&a).len(), 16);
    }

    #[test]
    fn fingerprint_separates_names_from_values() {
        let a = labels(&[("ab", "c")]);
        let b = labels(&[("a", "bc")]);
        assert_ne!(fingerprint(&a), fingerprint(&b));
        assert_ne!(fingerprint(&labels(&[])), fingerprint(&labels(&[("", "")])));
    }

    #[test]
    fn severity_round_trips_and_orders() {
        for sev in Severity::ALL {
            assert_eq!(sev.as_str().parse::<Severity>(), Ok(sev));
            assert_eq!(serde_json::to_string(&sev).unwrap(), format!("\"{sev}\""));
        }
        assert!(Severity::Critical > Severity::Warning && Severity::Warning > Severity::Info);
        assert!("fatal".parse::<Severity>().unwrap_err().contains("fatal"));
    }

    #[test]
    fn alert_serialises_states_in_lower_case() {
        let now = Utc::now();
        let l = labels(&[("alertname", "HighCpu"), ("severity", "warning")]);
        let alert = Alert {
            fingerprint: fingerprint(&l),
            rule: "HighCpu".into(),
            labels: l.into(),
            annotations: Default::default(),
            state: AlertState::Firing,
            value: 97.5,
            active_at: now,
            fired_at: Some(now),
            resolved_at: None,
            evaluated_at: now,
        };
        let json = serde_json::to_value(&alert).unwrap();
        assert_eq!(json["state"], "firing");
        assert!(json.get("resolved_at").is_none());
        let back: Alert = serde_json::from_value(json).unwrap();
        assert_eq!(back, alert);
        assert_eq!(back.name(), "HighCpu");
        assert_eq!(back.severity(), Some(Severity::Warning));
    }
}
