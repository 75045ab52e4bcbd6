//! Notification figures for `/metrics`: deliveries per receiver and result, failed attempts
//! (each one retried), the queue of notifications waiting per receiver, groups and alerts.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use parking_lot::RwLock;

/// Counters of one receiver (all its integrations together).
#[derive(Debug, Default)]
pub struct ReceiverStats {
    /// Notifications delivered.
    pub sent: AtomicU64,
    /// Notifications given up after every retry.
    pub failed: AtomicU64,
    /// Attempts that failed (each followed by a retry or the give-up).
    pub attempts_failed: AtomicU64,
    /// Notifications waiting (new, or in backoff).
    pub queued: AtomicI64,
}

/// Every notification figure.
#[derive(Debug, Default)]
pub struct NotifyStats {
    receivers: RwLock<BTreeMap<String, Arc<ReceiverStats>>>,
    /// Alerts handed over by the engine (firing and resolved).
    pub alerts_received: AtomicU64,
    /// Groups held now.
    pub groups: AtomicU64,
    /// Store writes of the notification log that failed.
    pub store_errors: AtomicU64,
}

impl NotifyStats {
    /// The counters of `receiver`, created at first use.
    pub fn receiver(&self, receiver: &str) -> Arc<ReceiverStats> {
        if let Some(r) = self.receivers.read().get(receiver) {
            return r.clone();
        }
        self.receivers
            .write()
            .entry(receiver.to_owned())
            .or_default()
            .clone()
    }
}

/// Label value escaping of the text format (backslash, quote, newline).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Appends the notification figures to a Prometheus text exposition.
pub fn write_metrics(out: &mut String, stats: Option<&NotifyStats>) {
    let Some(stats) = stats else {
        return;
    };
    let receivers = stats.receivers.read();
    let name = "atlhyper_notifications_total";
    let _ = writeln!(
        out,
        "# HELP {name} Alert notifications by receiver and result (sent, or failed after every retry).\n# TYPE {name} counter"
    );
    for (receiver, r) in receivers.iter() {
        let receiver = escape(receiver);
        for (result, v) in [("sent", &r.sent), ("failed", &r.failed)] {
            let _ = writeln!(
                out,
                "{name}{{receiver=\"{receiver}\",result=\"{result}\"}} {}",
                v.load(Ordering::Relaxed)
            );
        }
    }
    let name = "atlhyper_notification_attempts_failed_total";
    let _ = writeln!(
        out,
        "# HELP {name} Delivery attempts that failed, by receiver (each is retried with backoff or given up).\n# TYPE {name} counter"
    );
    for (receiver, r) in receivers.iter() {
        let _ = writeln!(
            out,
            "{name}{{receiver=\"{}\"}} {}",
            escape(receiver),
            r.attempts_failed.load(Ordering::Relaxed)
        );
    }
    let name = "atlhyper_notification_queue";
    let _ = writeln!(
        out,
        "# HELP {name} Notifications waiting to be delivered (new or in backoff), by receiver.\n# TYPE {name} gauge"
    );
    for (receiver, r) in receivers.iter() {
        let _ = writeln!(
            out,
            "{name}{{receiver=\"{}\"}} {}",
            escape(receiver),
            r.queued.load(Ordering::Relaxed).max(0)
        );
    }
    for (name, help, kind, v) in [
        (
            "atlhyper_notification_alerts_received_total",
            "Alerts handed to notification by the rule engine.",
            "counter",
            &stats.alerts_received,
        ),
        (
            "atlhyper_notification_groups",
            "Alert groups held by notification.",
            "gauge",
            &stats.groups,
        ),
        (
            "atlhyper_notification_log_store_errors_total",
            "Notification log writes the store refused.",
            "counter",
            &stats.store_errors,
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}",
            v.load(Ordering::Relaxed)
        );
    }
}
