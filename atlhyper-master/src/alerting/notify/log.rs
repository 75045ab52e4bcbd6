//! The notification log: per integration and group, which firing and resolved alerts were last
//! delivered and when, written through to the store so a restart does not notify again; and
//! [`needs_update`], Alertmanager's de-duplication rule over it.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use atlhyper_store::{NotificationRecord, NotifiedGroup, NotifyStore, StoreError};
use chrono::{DateTime, Utc};
use parking_lot::Mutex;

/// The log in memory, backed by the store.
pub struct NotificationLog {
    store: Arc<dyn NotifyStore>,
    /// (integration key, group key) to the entry.
    entries: Mutex<HashMap<(String, String), NotifiedGroup>>,
}

impl std::fmt::Debug for NotificationLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationLog")
            .field("entries", &self.entries.lock().len())
            .finish_non_exhaustive()
    }
}

impl NotificationLog {
    /// Loads every entry from the store.
    pub async fn load(store: Arc<dyn NotifyStore>) -> Result<Self, StoreError> {
        let entries = store
            .list_notified()
            .await?
            .into_iter()
            .map(|e| ((e.receiver.clone(), e.group_key.clone()), e))
            .collect();
        Ok(Self {
            store,
            entries: Mutex::new(entries),
        })
    }

    /// What was last delivered to `integration` for `group_key`.
    pub fn get(&self, integration: &str, group_key: &str) -> Option<NotifiedGroup> {
        self.entries
            .lock()
            .get(&(integration.to_owned(), group_key.to_owned()))
            .cloned()
    }

    /// Records a delivery: in memory at once, then in the store. A store failure is returned
    /// (and the memory keeps it, so this process does not send twice).
    pub async fn record(&self, entry: NotifiedGroup) -> Result<(), StoreError> {
        self.entries.lock().insert(
            (entry.receiver.clone(), entry.group_key.clone()),
            entry.clone(),
        );
        self.store.put_notified(&entry).await
    }

    /// Appends to the delivery history.
    pub async fn append(&self, record: &NotificationRecord) -> Result<(), StoreError> {
        self.store.append_notification(record).await
    }

    /// The newest `limit` deliveries, newest first.
    pub async fn recent(&self, limit: usize) -> Result<Vec<NotificationRecord>, StoreError> {
        self.store.list_notifications(limit).await
    }

    /// Forgets entries not written since `before` (groups long gone) and deliveries older.
    pub async fn prune(&self, before: DateTime<Utc>) -> Result<(), StoreError> {
        let old: Vec<(String, String)> = self
            .entries
            .lock()
            .iter()
            .filter(|(_, e)| e.sent_at < before)
            .map(|(k, _)| k.clone())
            .collect();
        for (integration, group) in old {
            self.store.delete_notified(&integration, &group).await?;
            self.entries.lock().remove(&(integration, group));
        }
        self.store.prune_notifications(before).await.map(drop)
    }
}

/// Whether a group's alerts must be sent to an integration, given what was last sent:
/// Alertmanager's rule. Sent when some firing alert was not in the last notification; when every
/// alert resolved and the last notification had firing ones (also without `send_resolved`, so
/// the log forgets them); when `send_resolved` and some resolved alert is new; when nothing
/// changed but `repeat` has passed.
pub fn needs_update(
    entry: Option<&NotifiedGroup>,
    firing: &BTreeSet<&str>,
    resolved: &BTreeSet<&str>,
    send_resolved: bool,
    repeat: Duration,
    now: DateTime<Utc>,
) -> bool {
    let Some(entry) = entry else {
        return !firing.is_empty();
    };
    let sent_firing: BTreeSet<&str> = entry.firing.iter().map(String::as_str).collect();
    if !firing.is_subset(&sent_firing) {
        return true;
    }
    if firing.is_empty() {
        return !entry.firing.is_empty();
    }
    let sent_resolved: BTreeSet<&str> = entry.resolved.iter().map(String::as_str).collect();
    if send_resolved && !resolved.is_subset(&sent_resolved) {
        return true;
    }
    let repeat = chrono::Duration::from_std(repeat).unwrap_or(chrono::Duration::MAX);
    entry
        .sent_at
        .checked_add_signed(repeat)
        .is_some_and(|due| due <= now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn set<'a>(fps: &[&'a str]) -> BTreeSet<&'a str> {
        fps.iter().copied().collect()
    }

    fn entry(firing: &[&str], resolved: &[&str], at: DateTime<Utc>) -> NotifiedGroup {
        NotifiedGroup {
            receiver: "r/webhook/0".into(),
            group_key: "g".into(),
            firing: firing.iter().map(|s| s.to_string()).collect(),
            resolved: resolved.iter().map(|s| s.to_string()).collect(),
            sent_at: at,
        }
    }

    #[test]
    fn firing_and_resolved_each_once_then_repeat() {
        let now = Utc::now();
        let hour = Duration::from_secs(3600);
        // Nothing sent yet: firing goes out, resolved alone does not.
        assert!(needs_update(None, &set(&["a"]), &set(&[]), true, hour, now));
        assert!(!needs_update(
            None,
            &set(&[]),
            &set(&["a"]),
            true,
            hour,
            now
        ));
        let sent = entry(&["a", "b"], &[], now);
        // Same alerts again: nothing until the repeat interval.
        assert!(!needs_update(
            Some(&sent),
            &set(&["a", "b"]),
            &set(&[]),
            true,
            hour,
            now
        ));
        assert!(!needs_update(
            Some(&sent),
            &set(&["a"]),
            &set(&[]),
            false,
            hour,
            now
        ));
        assert!(needs_update(
            Some(&sent),
            &set(&["a", "b"]),
            &set(&[]),
            true,
            hour,
            now + TimeDelta::hours(1)
        ));
        // A new firing alert.
        assert!(needs_update(
            Some(&sent),
            &set(&["a", "c"]),
            &set(&[]),
            true,
            hour,
            now
        ));
        // b resolved: sent with send_resolved, not without.
        assert!(needs_update(
            Some(&sent),
            &set(&["a"]),
            &set(&["b"]),
            true,
            hour,
            now
        ));
        assert!(!needs_update(
            Some(&sent),
            &set(&["a"]),
            &set(&["b"]),
            false,
            hour,
            now
        ));
        let after = entry(&["a"], &["b"], now);
        assert!(!needs_update(
            Some(&after),
            &set(&["a"]),
            &set(&["b"]),
            true,
            hour,
            now
        ));
        // All resolved: always, once.
        assert!(needs_update(
            Some(&after),
            &set(&[]),
            &set(&["a"]),
            false,
            hour,
            now
        ));
        let done = entry(&[], &["a"], now);
        assert!(!needs_update(
            Some(&done),
            &set(&[]),
            &set(&["a"]),
            true,
            hour,
            now
        ));
    }
}
