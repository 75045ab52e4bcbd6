//! One outbox per integration: notifications wait here to be delivered, one at a time, with
//! retries and exponential backoff. A receiver that is down holds up only its own outbox; the
//! dispatcher and the other receivers go on. A newer notification of a group replaces the one
//! waiting (keeping the resolved alerts the older one carried), so a long outage delivers the
//! current state once instead of every missed flush.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use atlhyper_model::AlertState;
use atlhyper_store::{DeliveryResult, NotificationRecord, NotifiedGroup};
use chrono::Utc;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::log::{NotificationLog, needs_update};
use super::metrics::ReceiverStats;
use super::receivers::{Context, Named, Notification};

/// How failed deliveries are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Wait after the first failure; doubled after each further one.
    pub initial: Duration,
    /// Longest wait.
    pub max: Duration,
    /// Give up this long after the first attempt.
    pub give_up_after: Duration,
}

impl RetryPolicy {
    /// The wait after `failures` failed attempts (1 or more).
    pub fn backoff(&self, failures: u32) -> Duration {
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(30));
        self.initial.saturating_mul(factor).min(self.max)
    }
}

/// A notification waiting in an outbox.
#[derive(Debug)]
struct Waiting {
    notification: Notification,
    attempts: u32,
    first_attempt: Option<Instant>,
    due: Instant,
    last_error: String,
}

/// An integration's outbox task and what it needs.
pub struct Outbox {
    /// The integration.
    pub named: Named,
    /// What was sent, for de-duplication.
    pub log: Arc<NotificationLog>,
    /// The receiver's counters.
    pub stats: Arc<ReceiverStats>,
    /// Every figure (store errors).
    pub totals: Arc<super::metrics::NotifyStats>,
    /// HTTP client and URLs.
    pub ctx: Context,
    /// Retries.
    pub retry: RetryPolicy,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("integration", &self.named.key)
            .finish_non_exhaustive()
    }
}

impl Outbox {
    /// Delivers what arrives on `rx` until `shutdown`; an attempt under way is finished, what
    /// still waits is dropped (not logged as sent, so the next start sends it).
    pub async fn run(
        self,
        mut rx: mpsc::UnboundedReceiver<Notification>,
        shutdown: CancellationToken,
    ) {
        let mut waiting: HashMap<String, Waiting> = HashMap::new();
        loop {
            let next = waiting
                .iter()
                .min_by_key(|(_, w)| w.due)
                .map(|(k, w)| (k.clone(), w.due));
            let sleep = async {
                match next {
                    Some((_, due)) => tokio::time::sleep_until(due).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                received = rx.recv() => {
                    let Some(n) = received else { break };
                    self.enqueue(&mut waiting, n);
                }
                () = sleep => {
                    let Some((key, _)) = next else { continue };
                    let Some(mut w) = waiting.remove(&key) else { continue };
                    // Not cancelled by shutdown: a delivery that went out must reach the log,
                    // or the next start would send it again. Bounded by the HTTP timeout.
                    // The notification counts as queued until it is done, in flight included.
                    if self.attempt(&mut w).await {
                        waiting.insert(key, w);
                    } else {
                        self.stats.queued.fetch_sub(1, Ordering::Relaxed);
                    }
                }
            }
        }
        self.stats
            .queued
            .fetch_sub(waiting.len() as i64, Ordering::Relaxed);
    }

    fn enqueue(&self, waiting: &mut HashMap<String, Waiting>, mut n: Notification) {
        match waiting.remove(&n.group_key) {
            Some(mut old) => {
                // Keep the resolved alerts the replaced notification carried and the new one
                // does not mention: the group has dropped them, this is their only way out.
                let known: BTreeSet<String> =
                    n.alerts.iter().map(|a| a.fingerprint.clone()).collect();
                n.alerts
                    .extend(old.notification.alerts.drain(..).filter(|a| {
                        a.state == AlertState::Resolved && !known.contains(&a.fingerprint)
                    }));
                old.notification = n;
                // Waiting out a backoff: the newer content waits the same.
                waiting.insert(old.notification.group_key.clone(), old);
            }
            None => {
                self.stats.queued.fetch_add(1, Ordering::Relaxed);
                waiting.insert(
                    n.group_key.clone(),
                    Waiting {
                        notification: n,
                        attempts: 0,
                        first_attempt: None,
                        due: Instant::now(),
                        last_error: String::new(),
                    },
                );
            }
        }
    }

    /// One attempt; returns whether to retry (the backoff set in `w.due`).
    async fn attempt(&self, w: &mut Waiting) -> bool {
        let integration = &self.named.integration;
        let mut n = w.notification.clone();
        if !integration.send_resolved() {
            n.alerts.retain(|a| a.state == AlertState::Firing);
        }
        let firing: BTreeSet<&str> = w
            .notification
            .alerts
            .iter()
            .filter(|a| a.state == AlertState::Firing)
            .map(|a| a.fingerprint.as_str())
            .collect();
        let resolved: BTreeSet<&str> = w
            .notification
            .alerts
            .iter()
            .filter(|a| a.state == AlertState::Resolved)
            .map(|a| a.fingerprint.as_str())
            .collect();
        let entry = self.log.get(&self.named.key, &n.group_key);
        let now = Utc::now();
        let resend = integration.resend_while_firing() && !firing.is_empty();
        if !resend
            && !needs_update(
                entry.as_ref(),
                &firing,
                &resolved,
                integration.send_resolved(),
                n.repeat_interval,
                now,
            )
        {
            return false;
        }
        let started = *w.first_attempt.get_or_insert_with(Instant::now);
        w.attempts += 1;
        // Nothing left to show (resolved only, not sent here): only the log learns of it.
        let result = if n.alerts.is_empty() {
            Ok(())
        } else {
            integration.send(&n, &self.ctx).await
        };
        match result {
            Ok(()) => {
                let entry = NotifiedGroup {
                    receiver: self.named.key.clone(),
                    group_key: n.group_key.clone(),
                    firing: firing.iter().map(|s| s.to_string()).collect(),
                    resolved: resolved.iter().map(|s| s.to_string()).collect(),
                    sent_at: Utc::now(),
                };
                if let Err(e) = self.log.record(entry).await {
                    self.totals.store_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, "writing the notification log failed");
                }
                if !n.alerts.is_empty() {
                    self.stats.sent.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(receiver = %self.named.key, group = %n.group_key, firing = firing.len(), resolved = resolved.len(), "notified");
                    self.append(&n, w.attempts, DeliveryResult::Sent, String::new())
                        .await;
                }
                false
            }
            Err(e) => {
                self.stats.attempts_failed.fetch_add(1, Ordering::Relaxed);
                w.last_error = e.to_string();
                if started.elapsed() >= self.retry.give_up_after {
                    self.stats.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(receiver = %self.named.key, group = %n.group_key, attempts = w.attempts, error = %w.last_error, "notification given up");
                    self.append(&n, w.attempts, DeliveryResult::Failed, w.last_error.clone())
                        .await;
                    return false;
                }
                let wait = self.retry.backoff(w.attempts);
                tracing::debug!(receiver = %self.named.key, error = %w.last_error, ?wait, "notification failed, retrying");
                w.due = Instant::now() + wait;
                true
            }
        }
    }

    async fn append(&self, n: &Notification, attempts: u32, result: DeliveryResult, error: String) {
        let record = NotificationRecord {
            at: Utc::now(),
            receiver: self.named.key.clone(),
            group_key: n.group_key.clone(),
            firing: n.firing().count() as u32,
            resolved: n.resolved().count() as u32,
            attempts,
            result,
            error,
        };
        if let Err(e) = self.log.append(&record).await {
            self.totals.store_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "writing the delivery log failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(5),
            give_up_after: Duration::from_secs(60),
        };
        let waits: Vec<u64> = (1..=6).map(|n| p.backoff(n).as_millis() as u64).collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 5000, 5000]);
        assert_eq!(p.backoff(u32::MAX), Duration::from_secs(5));
    }
}
