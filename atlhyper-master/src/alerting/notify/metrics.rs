//! Notification figures for `/metrics`: deliveries per receiver and result, failed attempts
//! (each one retried), the queue of notifications waiting per receiver, groups and alerts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use atlhyper_model::{Exposition, MetricKind};
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
    /// Notifications not yet done (new, in backoff, or being sent).
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

/// Appends the notification figures to a Prometheus text exposition.
pub fn write_metrics(out: &mut Exposition, stats: Option<&NotifyStats>) {
    let Some(stats) = stats else {
        return;
    };
    let receivers = stats.receivers.read();
    let mut family = out.family(
        "atlhyper_notifications_total",
        MetricKind::Counter,
        "Alert notifications by receiver and result (sent, or failed after every retry).",
    );
    for (receiver, r) in receivers.iter() {
        for (result, v) in [("sent", &r.sent), ("failed", &r.failed)] {
            family.sample(
                &[("receiver", receiver), ("result", result)],
                v.load(Ordering::Relaxed) as f64,
            );
        }
    }
    let mut family = out.family(
        "atlhyper_notification_attempts_failed_total",
        MetricKind::Counter,
        "Delivery attempts that failed, by receiver (each is retried with backoff or given up).",
    );
    for (receiver, r) in receivers.iter() {
        family.sample(
            &[("receiver", receiver)],
            r.attempts_failed.load(Ordering::Relaxed) as f64,
        );
    }
    let mut family = out.family(
        "atlhyper_notification_queue",
        MetricKind::Gauge,
        "Notifications waiting to be delivered (new or in backoff), by receiver.",
    );
    for (receiver, r) in receivers.iter() {
        family.sample(
            &[("receiver", receiver)],
            r.queued.load(Ordering::Relaxed).max(0) as f64,
        );
    }
    for (name, help, kind, v) in [
        (
            "atlhyper_notification_alerts_received_total",
            "Alerts handed to notification by the rule engine.",
            MetricKind::Counter,
            &stats.alerts_received,
        ),
        (
            "atlhyper_notification_groups",
            "Alert groups held by notification.",
            MetricKind::Gauge,
            &stats.groups,
        ),
        (
            "atlhyper_notification_log_store_errors_total",
            "Notification log writes the store refused.",
            MetricKind::Counter,
            &stats.store_errors,
        ),
    ] {
        out.family(name, kind, help)
            .sample(&[], v.load(Ordering::Relaxed) as f64);
    }
}
