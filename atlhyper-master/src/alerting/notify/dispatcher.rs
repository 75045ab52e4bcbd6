//! The dispatcher: takes the engine's alerts without blocking it, groups them on the route
//! tree's timers, drops what silences and inhibition mute, and hands each group's notification
//! to the outbox of every integration of its receiver.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use atlhyper_model::{Alert, Labels};
use atlhyper_store::{NotificationRecord, NotifyStore, StoreError};
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::config::NotifyConfig;
use super::group::{Flush, Groups};
use super::inhibit::{InhibitRule, Inhibitions};
use super::log::NotificationLog;
use super::metrics::NotifyStats;
use super::outbox::{Outbox, RetryPolicy};
use super::receivers::{self, Context, Notification};
use super::route::Route;
use super::silence::Silences;
use crate::alerting::AlertPublisher;

/// How long the notification log remembers a group not notified since, and the delivery history
/// and expired silences are kept (Alertmanager keeps its log 120 h).
pub const LOG_RETENTION: Duration = Duration::from_secs(120 * 3600);
/// How often the retention runs.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Why the dispatcher could not start.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// A receiver cannot be built (an email address, the HTTP client).
    #[error("alert notification config: {0}")]
    Config(String),
    /// The silences or the notification log could not be loaded.
    #[error("alert notification store: {0}")]
    Store(#[from] StoreError),
}

/// One evaluation's output.
type Batch = (DateTime<Utc>, Vec<Alert>);

/// Notification: an [`AlertPublisher`] for the engine, silences for the API, figures for
/// `/metrics`. Cheap to clone.
#[derive(Clone)]
pub struct Dispatcher {
    shared: Arc<Shared>,
}

struct Shared {
    batches: mpsc::UnboundedSender<Batch>,
    silences: Arc<Silences>,
    log: Arc<NotificationLog>,
    stats: Arc<NotifyStats>,
    shutdown: CancellationToken,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("silences", &self.shared.silences)
            .finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// Loads silences and the notification log from `store` and starts the dispatcher task and
    /// one outbox task per integration. Call [`Dispatcher::stop`] to end them.
    pub async fn start(
        config: NotifyConfig,
        store: Arc<dyn NotifyStore>,
    ) -> Result<Self, NotifyError> {
        let silences = Arc::new(Silences::load(store.clone()).await?);
        let log = Arc::new(NotificationLog::load(store).await?);
        let stats = Arc::new(NotifyStats::default());
        let global = &config.global;
        let http = reqwest::Client::builder()
            .timeout(global.http_timeout)
            .connect_timeout(global.http_timeout)
            .build()
            .map_err(|e| NotifyError::Config(format!("http client: {e}")))?;
        let ctx = Context {
            http,
            external_url: global.external_url.clone(),
        };
        let retry = RetryPolicy {
            initial: global.retry_initial,
            max: global.retry_max,
            give_up_after: global.retry_for,
        };
        let shutdown = CancellationToken::new();
        let mut tasks = Vec::new();
        let mut outboxes: HashMap<String, Vec<Outlet>> = HashMap::new();
        for (receiver, integrations) in
            receivers::build(&config.receivers, global).map_err(NotifyError::Config)?
        {
            let receiver_stats = stats.receiver(&receiver);
            let senders = outboxes.entry(receiver).or_default();
            for named in integrations {
                let (tx, rx) = mpsc::unbounded_channel();
                senders.push(Outlet {
                    sender: tx,
                    refreshed: named.integration.resend_while_firing(),
                });
                let outbox = Outbox {
                    named,
                    log: log.clone(),
                    stats: receiver_stats.clone(),
                    totals: stats.clone(),
                    ctx: ctx.clone(),
                    retry,
                };
                tasks.push(tokio::spawn(outbox.run(rx, shutdown.clone())));
            }
        }
        let mut rules = if global.builtin_inhibit_rules {
            InhibitRule::builtin()
        } else {
            Vec::new()
        };
        rules.extend(config.inhibit_rules.iter().map(InhibitRule::from_config));
        // Unbounded: the task does only in-memory work per batch, and a batch is one
        // evaluation's alerts, so the queue stays as short as the engine's output; a bounded one
        // would have to drop resolved notices, which the engine publishes only once.
        let (batches, rx) = mpsc::unbounded_channel();
        let refreshed: Vec<String> = outboxes
            .iter()
            .filter(|(_, outlets)| outlets.iter().any(|o| o.refreshed))
            .map(|(receiver, _)| receiver.clone())
            .collect();
        let task = Task {
            groups: Groups::new(Route::tree(&config.route), global.resolve_timeout)
                .with_refreshed(refreshed),
            rules,
            outboxes,
            silences: silences.clone(),
            log: log.clone(),
            stats: stats.clone(),
        };
        tasks.push(tokio::spawn(task.run(rx, shutdown.clone())));
        Ok(Self {
            shared: Arc::new(Shared {
                batches,
                silences,
                log,
                stats,
                shutdown,
                tasks: Mutex::new(tasks),
            }),
        })
    }

    /// The silences (API, and `silenced_by` for the alerts API).
    pub fn silences(&self) -> &Silences {
        &self.shared.silences
    }

    /// Ids of the silences muting an alert with these labels now.
    pub fn silenced_by(&self, labels: &Labels) -> Vec<String> {
        self.shared.silences.silenced_by(labels, Utc::now())
    }

    /// The figures for `/metrics`.
    pub fn stats(&self) -> Arc<NotifyStats> {
        self.shared.stats.clone()
    }

    /// The newest `limit` deliveries (what, to whom, when, result), newest first.
    pub async fn recent_notifications(
        &self,
        limit: usize,
    ) -> Result<Vec<NotificationRecord>, StoreError> {
        self.shared.log.recent(limit).await
    }

    /// Stops every task and waits for them: a delivery under way is finished and logged
    /// (bounded by `global.http_timeout`); notifications still waiting are not sent (nor logged
    /// as sent, so the next start sends them).
    pub async fn stop(&self) {
        self.shared.shutdown.cancel();
        let tasks = std::mem::take(&mut *self.shared.tasks.lock());
        for task in tasks {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "notification task failed");
            }
        }
    }
}

impl crate::alerting::SilenceLookup for Dispatcher {
    fn silenced_by(&self, alert: &atlhyper_model::Alert) -> Vec<String> {
        Dispatcher::silenced_by(self, &alert.labels)
    }
}

impl AlertPublisher for Dispatcher {
    fn publish(&self, evaluated_at: DateTime<Utc>, alerts: Vec<Alert>) {
        // Fails only once stopped: nothing is listening any more.
        let _ = self.shared.batches.send((evaluated_at, alerts));
    }
}

/// The way into one integration's outbox.
struct Outlet {
    sender: mpsc::UnboundedSender<Notification>,
    /// Whether it takes refreshes (it forwards to an Alertmanager).
    refreshed: bool,
}

/// The dispatcher task's state.
struct Task {
    groups: Groups,
    rules: Vec<InhibitRule>,
    outboxes: HashMap<String, Vec<Outlet>>,
    silences: Arc<Silences>,
    log: Arc<NotificationLog>,
    stats: Arc<NotifyStats>,
}

impl Task {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Batch>, shutdown: CancellationToken) {
        let mut prune = tokio::time::interval(PRUNE_EVERY);
        prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let deadline = self.groups.next_deadline();
            let due = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                batch = rx.recv() => {
                    let Some((at, alerts)) = batch else { break };
                    self.stats.alerts_received.fetch_add(alerts.len() as u64, Ordering::Relaxed);
                    self.groups.ingest(at, alerts, Instant::now());
                }
                () = due => {}
                _ = prune.tick() => self.prune().await,
            }
            self.flush_due();
        }
    }

    /// Sends every due group through the mute stage to its receiver's outboxes.
    fn flush_due(&mut self) {
        let flushes = self.groups.due(Instant::now());
        self.stats
            .groups
            .store(self.groups.len() as u64, Ordering::Relaxed);
        if flushes.is_empty() {
            return;
        }
        let now = Utc::now();
        let inhibitions = Inhibitions::new(&self.rules, self.groups.firing());
        for flush in flushes {
            let Flush {
                group_key,
                receiver,
                group_labels,
                timing,
                mut alerts,
                refresh,
            } = flush;
            alerts.retain(|a| {
                !inhibitions.inhibits(a) && self.silences.silenced_by(&a.labels, now).is_empty()
            });
            if alerts.is_empty() {
                continue;
            }
            // Firing first, as Alertmanager lists them.
            alerts.sort_by_key(|a| a.state != atlhyper_model::AlertState::Firing);
            let notification = Notification {
                receiver: receiver.clone(),
                group_key,
                group_labels,
                alerts,
                group_interval: timing.group_interval,
                repeat_interval: timing.repeat_interval,
            };
            for outlet in self.outboxes.get(&receiver).into_iter().flatten() {
                if outlet.refreshed || !refresh {
                    let _ = outlet.sender.send(notification.clone());
                }
            }
        }
    }

    async fn prune(&self) {
        let Ok(retention) = chrono::Duration::from_std(LOG_RETENTION) else {
            return;
        };
        let before = Utc::now() - retention;
        if let Err(e) = self.log.prune(before).await {
            tracing::warn!(error = %e, "pruning the notification log failed");
        }
        if let Err(e) = self.silences.prune(before).await {
            tracing::warn!(error = %e, "pruning expired silences failed");
        }
    }
}
