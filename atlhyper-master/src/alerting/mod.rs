//! Alerting in the master: rules ([`rules`], [`builtin`]), the engine that evaluates them over
//! the hub every `MASTER_ALERT_EVAL_INTERVAL` (15 s) ([`engine`]), their state persisted through
//! [`AlertStore`], the API (`/api/v2/alerts`, `/api/v2/alerts/history`, `/api/v2/alert-rules`)
//! and the `atlhyper_alerts` family on `/metrics`; [`notify`] routes, groups, mutes and delivers
//! what the engine publishes.
//!
//! After every evaluation the engine hands every firing alert, plus every alert that resolved in
//! that evaluation (once), to an [`AlertPublisher`]; pending alerts are never published.
//!
//! # A master with a custom publisher (tests, embedding)
//! ```
//! use std::sync::Arc;
//!
//! use atlhyper_master::alerting::{AlertPublisher, AlertSettings, Alerting};
//! use atlhyper_master::{Master, MasterConfig};
//! use atlhyper_store::MemoryStore;
//!
//! #[derive(Debug, Default)]
//! struct Collect(parking_lot::Mutex<Vec<atlhyper_model::Alert>>);
//!
//! impl AlertPublisher for Collect {
//!     fn publish(&self, _at: chrono::DateTime<chrono::Utc>, alerts: Vec<atlhyper_model::Alert>) {
//!         self.0.lock().extend(alerts);
//!     }
//! }
//!
//! let store = Arc::new(MemoryStore::new());
//! let alerting = Alerting::new(store.clone(), Arc::new(Collect::default()), AlertSettings::default());
//! let master = Master::with_alerting(
//!     MasterConfig::default(),
//!     store.clone(),
//!     store.clone(),
//!     store,
//!     alerting,
//! );
//! # drop(master);
//! ```
//! [`Master::new`](crate::Master::new) is the same with an in-memory alert store and
//! [`NoPublisher`]; [`crate::run_from_args`] keeps alert state in the master's SQLite file and reads
//! rules from `--alert-config`. [`crate::Master::evaluate_alerts`] runs one evaluation at once
//! (tests need not wait for the interval).

pub(crate) mod api;
pub mod builtin;
mod config_file;
pub mod engine;
pub mod figures;
pub(crate) mod metrics;
pub mod notify;
mod plan;
pub mod predict;
mod roster;
pub mod rules;
mod samples;
mod table;
pub mod template;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use atlhyper_model::{Alert, AlertState};
use atlhyper_store::{AlertChanges, AlertRuleRecord, AlertStore, HistoryQuery, MetricsStore};
use chrono::{DateTime, Utc};
use parking_lot::{Mutex, RwLock};
use serde::Serialize;

pub use config_file::{AlertConfigError, load_alert_config, parse_alert_config};
pub use engine::Engine;
pub use rules::{Rule, RuleError, RuleSpec};

use crate::hub::DataHub;

/// Receives the engine's output after every evaluation; must not block (hand off to a task).
pub trait AlertPublisher: Send + Sync + 'static {
    fn publish(
        &self,
        evaluated_at: chrono::DateTime<chrono::Utc>,
        alerts: Vec<atlhyper_model::Alert>,
    );
}

/// The publisher when no notification is configured: drops what it is given.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoPublisher;

impl AlertPublisher for NoPublisher {
    fn publish(&self, _evaluated_at: DateTime<Utc>, _alerts: Vec<Alert>) {}
}

/// Which silences mute an alert, for `silenced_by` in `GET /api/v2/alerts` (set by the
/// notification side; without one the field is left out).
pub trait SilenceLookup: Send + Sync + 'static {
    /// Ids of the silences that match the alert now.
    fn silenced_by(&self, alert: &Alert) -> Vec<String>;
}

/// Alerting settings: flags `--alert-eval-interval` and `--alert-config`.
#[derive(Debug, Clone)]
pub struct AlertSettings {
    /// Time between evaluations (15 s). The first evaluation waits one interval after start,
    /// so agents have pushed and restored nodes are not taken for down.
    pub eval_interval: Duration,
    /// Rules from the alert configuration file, with the file's path (read-only through the
    /// API).
    pub file_rules: Vec<RuleSpec>,
    /// The file they came from.
    pub file: Option<PathBuf>,
}

impl Default for AlertSettings {
    fn default() -> Self {
        Self {
            eval_interval: Duration::from_secs(15),
            file_rules: Vec::new(),
            file: None,
        }
    }
}

/// Alerting flags, flattened into [`crate::MasterArgs`].
#[derive(Debug, Clone, clap::Args)]
pub struct AlertArgs {
    /// Time between alert rule evaluations.
    #[arg(long, env = "MASTER_ALERT_EVAL_INTERVAL", default_value = "15s", value_parser = atlhyper_model::parse_positive_duration)]
    pub alert_eval_interval: Duration,
    /// Alert configuration file (YAML): `rules:` here, `route:`, `receivers:` and
    /// `inhibit_rules:` for notification.
    #[arg(long, env = "MASTER_ALERT_CONFIG")]
    pub alert_config: Option<PathBuf>,
}

impl AlertArgs {
    /// The settings these flags describe, the file read and checked.
    pub fn to_settings(&self) -> Result<AlertSettings, crate::ConfigError> {
        if self.alert_eval_interval.is_zero() {
            return Err(crate::ConfigError::new(
                "MASTER_ALERT_EVAL_INTERVAL",
                "must be above zero",
            ));
        }
        let file_rules = match &self.alert_config {
            Some(path) => load_alert_config(path)
                .map_err(|e| crate::ConfigError::new("MASTER_ALERT_CONFIG", e))?,
            None => Vec::new(),
        };
        Ok(AlertSettings {
            eval_interval: self.alert_eval_interval,
            file_rules,
            file: self.alert_config.clone(),
        })
    }
}

/// Where an effective rule comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleOrigin {
    /// Built in, as shipped.
    Builtin,
    /// Built in, changed through the API.
    BuiltinModified,
    /// Created through the API.
    Api,
    /// From the alert configuration file (read-only through the API).
    File,
}

/// An effective rule and its origin.
#[derive(Debug, Clone)]
pub struct EffectiveRule {
    pub origin: RuleOrigin,
    pub rule: Arc<Rule>,
}

/// Counters of the engine.
#[derive(Debug, Default)]
pub(crate) struct AlertStats {
    pub(crate) evaluations: AtomicU64,
    pub(crate) store_errors: AtomicU64,
    pub(crate) last_duration_us: AtomicU64,
}

/// The alerting state of one master.
pub struct Alerting {
    store: Arc<dyn AlertStore>,
    publisher: Arc<dyn AlertPublisher>,
    settings: AlertSettings,
    engine: Mutex<Engine>,
    rules: RwLock<Arc<Vec<EffectiveRule>>>,
    running: RwLock<Arc<Vec<Alert>>>,
    /// Changes a failed store write left behind, written with the next ones.
    unsaved: Mutex<AlertChanges>,
    /// Serializes rule writes (check, write, reload).
    writing: tokio::sync::Mutex<()>,
    /// Serializes evaluations (the task, and [`crate::Master::evaluate_alerts`]).
    evaluating: tokio::sync::Mutex<()>,
    silences: RwLock<Option<Arc<dyn SilenceLookup>>>,
    pub(crate) stats: AlertStats,
}

impl std::fmt::Debug for Alerting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerting")
            .field("settings", &self.settings)
            .field("rules", &self.rules.read().len())
            .field("running", &self.running.read().len())
            .finish_non_exhaustive()
    }
}

impl Alerting {
    /// Alerting over `store`, publishing to `publisher`. Rules are loaded by
    /// [`Alerting::load`] (the master calls it when it restores its state).
    pub fn new(
        store: Arc<dyn AlertStore>,
        publisher: Arc<dyn AlertPublisher>,
        settings: AlertSettings,
    ) -> Self {
        let this = Self {
            store,
            publisher,
            settings,
            engine: Mutex::new(Engine::new()),
            rules: RwLock::new(Arc::new(Vec::new())),
            running: RwLock::new(Arc::new(Vec::new())),
            unsaved: Mutex::new(AlertChanges::default()),
            writing: tokio::sync::Mutex::new(()),
            evaluating: tokio::sync::Mutex::new(()),
            silences: RwLock::new(None),
            stats: AlertStats::default(),
        };
        // Built-in and file rules at once; stored ones join at `load`.
        this.install(effective_rules(&[], &this.settings.file_rules));
        this
    }

    /// In memory, publishing nothing, default settings.
    pub fn in_memory() -> Self {
        Self::new(
            Arc::new(atlhyper_store::MemoryStore::new()),
            Arc::new(NoPublisher),
            AlertSettings::default(),
        )
    }

    /// Sets who answers `silenced_by` in `GET /api/v2/alerts`.
    pub fn set_silence_lookup(&self, lookup: Arc<dyn SilenceLookup>) {
        *self.silences.write() = Some(lookup);
    }

    /// The settings.
    pub fn settings(&self) -> &AlertSettings {
        &self.settings
    }

    /// Loads the stored rules and the running alerts saved before a restart.
    pub async fn load(&self) -> Result<(), atlhyper_store::StoreError> {
        self.reload_rules().await?;
        let active = self.store.active_alerts().await?;
        let mut engine = self.engine.lock();
        engine.restore(active);
        *self.running.write() = Arc::new(engine.running());
        Ok(())
    }

    /// Over a shared database, on a master that does not lead: the rules and running alerts
    /// as the leader stored them, so every master's API agrees (nothing is evaluated here).
    pub(crate) async fn follow(&self) -> Result<(), atlhyper_store::StoreError> {
        self.reload_rules().await?;
        let mut active = self.store.active_alerts().await?;
        active.retain(|a| matches!(a.state, AlertState::Pending | AlertState::Firing));
        active.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
        *self.running.write() = Arc::new(active);
        Ok(())
    }

    /// Becoming the leader: a fresh engine with the rules and running alerts as the previous
    /// leader stored them (what this master held from an earlier leadership may have resolved
    /// since).
    #[cfg(feature = "postgres")]
    pub(crate) async fn take_over(&self) -> Result<(), atlhyper_store::StoreError> {
        *self.engine.lock() = Engine::new();
        self.load().await
    }

    /// Re-reads the stored rules and installs the effective set.
    pub(crate) async fn reload_rules(&self) -> Result<(), atlhyper_store::StoreError> {
        let stored = self.store.list_alert_rules().await?;
        self.install(effective_rules(&stored, &self.settings.file_rules));
        Ok(())
    }

    fn install(&self, rules: Vec<EffectiveRule>) {
        self.engine
            .lock()
            .set_rules(rules.iter().map(|r| Arc::clone(&r.rule)).collect());
        *self.rules.write() = Arc::new(rules);
    }

    /// The effective rules, sorted by name.
    pub fn rules(&self) -> Arc<Vec<EffectiveRule>> {
        Arc::clone(&self.rules.read())
    }

    /// Every pending and firing alert as of the last evaluation, sorted by fingerprint.
    pub fn running(&self) -> Arc<Vec<Alert>> {
        Arc::clone(&self.running.read())
    }

    pub(crate) fn silenced_by(&self, alert: &Alert) -> Option<Vec<String>> {
        self.silences.read().as_ref().map(|s| s.silenced_by(alert))
    }

    /// One evaluation at `now` over the hub: evaluate, persist the changes, publish, then seed
    /// predicted series from stored history.
    pub(crate) async fn evaluate(
        &self,
        hub: &DataHub,
        history: &dyn MetricsStore,
        now: DateTime<Utc>,
    ) {
        let _one_at_a_time = self.evaluating.lock().await;
        let started = std::time::Instant::now();
        let views = hub.views();
        let evaluation = {
            let mut engine = self.engine.lock();
            let evaluation = engine.evaluate(now, &views);
            *self.running.write() = Arc::new(engine.running());
            evaluation
        };
        self.stats.evaluations.fetch_add(1, Ordering::Relaxed);
        self.stats.last_duration_us.store(
            u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        let changes = {
            let mut unsaved = self.unsaved.lock();
            merge_changes(std::mem::take(&mut *unsaved), evaluation.changes)
        };
        if !changes.is_empty()
            && let Err(e) = self.store.apply_alert_changes(&changes).await
        {
            self.stats.store_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "saving alert state failed; retried with the next evaluation");
            let mut unsaved = self.unsaved.lock();
            *unsaved = merge_changes(changes, std::mem::take(&mut *unsaved));
        }
        self.publisher.publish(now, evaluation.published);
        for seed in evaluation.seeds {
            let query = HistoryQuery {
                cluster_id: seed.cluster.clone(),
                node_name: seed.node.clone(),
                from: now - chrono::Duration::from_std(seed.lookback).unwrap_or_default(),
                to: now,
                max_points: Some(engine::SAMPLES_PER_LOOKBACK as usize),
            };
            match history.history(&query).await {
                Ok(points) => {
                    let points: Vec<(f64, f64)> = points
                        .iter()
                        .map(|p| (p.timestamp.timestamp() as f64, p.figures()[seed.column]))
                        .collect();
                    self.engine.lock().seed(&seed, &points);
                }
                Err(e) => {
                    self.stats.store_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, "reading history for a prediction failed");
                    self.engine.lock().seed_none(&seed);
                }
            }
        }
    }

    /// Writes a rule (already checked) and reloads.
    pub(crate) async fn put_rule(&self, spec: &RuleSpec) -> Result<(), atlhyper_store::StoreError> {
        let record = AlertRuleRecord {
            name: spec.name.clone(),
            body: serde_json::to_string(spec).unwrap_or_else(|_| "{}".to_owned()),
            updated_at: Utc::now(),
        };
        self.store.put_alert_rule(&record).await?;
        self.reload_rules().await
    }

    /// Deletes alert history older than `before` (the master's retention).
    pub(crate) async fn prune_history(&self, before: DateTime<Utc>) {
        match self.store.prune_alert_history(before).await {
            Ok(n) if n > 0 => tracing::info!(deleted = n, %before, "pruned alert history"),
            Ok(_) => {}
            Err(e) => {
                self.stats.store_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "pruning alert history failed");
            }
        }
    }

    /// The history store.
    pub(crate) fn store(&self) -> &dyn AlertStore {
        &*self.store
    }
}

/// Combines unsaved changes with newer ones so that writing the result once equals writing both
/// in order.
fn merge_changes(older: AlertChanges, newer: AlertChanges) -> AlertChanges {
    if older.is_empty() {
        return newer;
    }
    // Fingerprint -> the last word: Some(upsert) or None (remove).
    let mut last: BTreeMap<String, Option<Alert>> = BTreeMap::new();
    for changes in [&older, &newer] {
        for fp in &changes.remove {
            last.insert(fp.clone(), None);
        }
        for a in &changes.upsert {
            last.insert(a.fingerprint.clone(), Some(a.clone()));
        }
    }
    let mut merged = AlertChanges::default();
    for (fp, word) in last {
        match word {
            Some(a) => merged.upsert.push(a),
            None => merged.remove.push(fp),
        }
    }
    merged.history = older.history.into_iter().chain(newer.history).collect();
    merged
}

/// Built-in rules, replaced by stored rules of the same name, then by the file's rules. A
/// stored rule that no longer compiles (written by another version) is skipped with a warning.
fn effective_rules(stored: &[AlertRuleRecord], file: &[RuleSpec]) -> Vec<EffectiveRule> {
    let mut rules: BTreeMap<String, EffectiveRule> = BTreeMap::new();
    for spec in builtin::builtin_rules() {
        match Rule::compile(spec) {
            Ok(rule) => {
                rules.insert(
                    rule.name().to_owned(),
                    EffectiveRule {
                        origin: RuleOrigin::Builtin,
                        rule: Arc::new(rule),
                    },
                );
            }
            Err(e) => tracing::error!(error = %e, "a built-in rule does not compile"),
        }
    }
    for record in stored {
        let compiled = serde_json::from_str::<RuleSpec>(&record.body)
            .map_err(|e| e.to_string())
            .and_then(|spec| Rule::compile(spec).map_err(|e| e.to_string()));
        match compiled {
            Ok(rule) => {
                let origin = if rules
                    .get(&record.name)
                    .is_some_and(|r| r.origin == RuleOrigin::Builtin)
                {
                    RuleOrigin::BuiltinModified
                } else {
                    RuleOrigin::Api
                };
                rules.insert(
                    record.name.clone(),
                    EffectiveRule {
                        origin,
                        rule: Arc::new(rule),
                    },
                );
            }
            Err(e) => tracing::warn!(rule = %record.name, error = %e, "stored alert rule skipped"),
        }
    }
    for spec in file {
        if let Ok(rule) = Rule::compile(spec.clone()) {
            rules.insert(
                rule.name().to_owned(),
                EffectiveRule {
                    origin: RuleOrigin::File,
                    rule: Arc::new(rule),
                },
            );
        }
    }
    rules.into_values().collect()
}

/// Runs evaluations every `eval_interval` until the master shuts down; the first one an
/// interval after start.
pub(crate) fn spawn(master: &crate::Master) -> tokio::task::JoinHandle<()> {
    let master = master.clone();
    tokio::spawn(async move {
        let period = master.alerting().settings.eval_interval;
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut clock = EvaluationClock::new();
        loop {
            let scheduled = tokio::select! {
                scheduled = tick.tick() => scheduled,
                () = master.shutdown.cancelled() => return,
            };
            // Once across the fleet (see crate::fleet); the stamp keeps its schedule.
            let stamp = clock.stamp(scheduled, Utc::now(), tokio::time::Instant::now());
            let leader = master.confirm_leader().await;
            if master.fleet.is_shared() {
                // Rules may have changed on another master; a follower shows the leader's alerts.
                let refreshed = if leader {
                    master.alerting().reload_rules().await
                } else {
                    master.alerting().follow().await
                };
                if let Err(e) = refreshed {
                    master.store_failure("reading the alert state", &e);
                }
            }
            if !leader {
                continue;
            }
            master.evaluate_alerts_at(stamp).await;
        }
    })
}

/// Wall-clock stamps for scheduled evaluations, as Prometheus stamps a rule group's evaluation
/// with its scheduled time: consecutive stamps are exactly one interval apart, so a `for` of
/// three intervals holds after three intervals, not four when a timer fires a millisecond late.
/// Re-anchored when the wall clock steps (NTP, a suspended VM), so stamps never drift from it.
struct EvaluationClock {
    anchor: Option<(tokio::time::Instant, DateTime<Utc>)>,
}

impl EvaluationClock {
    /// Past this gap between a stamp and the wall clock, the wall clock has stepped.
    const MAX_DRIFT: chrono::TimeDelta = chrono::TimeDelta::seconds(1);

    fn new() -> Self {
        Self { anchor: None }
    }

    /// The wall-clock time of `scheduled`, given the wall and monotonic clocks read now.
    fn stamp(
        &mut self,
        scheduled: tokio::time::Instant,
        wall_now: DateTime<Utc>,
        mono_now: tokio::time::Instant,
    ) -> DateTime<Utc> {
        if let Some((mono, wall)) = self.anchor {
            let since = chrono::TimeDelta::from_std(scheduled.saturating_duration_since(mono))
                .unwrap_or(chrono::TimeDelta::MAX);
            if let Some(stamp) = wall.checked_add_signed(since) {
                let lateness =
                    chrono::TimeDelta::from_std(mono_now.saturating_duration_since(scheduled))
                        .unwrap_or(chrono::TimeDelta::MAX);
                let expected = wall_now.checked_sub_signed(lateness).unwrap_or(wall_now);
                if (expected - stamp).abs() <= Self::MAX_DRIFT {
                    return stamp;
                }
            }
        }
        let lateness = chrono::TimeDelta::from_std(mono_now.saturating_duration_since(scheduled))
            .unwrap_or(chrono::TimeDelta::zero());
        let wall = wall_now.checked_sub_signed(lateness).unwrap_or(wall_now);
        self.anchor = Some((scheduled, wall));
        wall
    }
}

#[cfg(test)]
mod evaluation_clock_tests {
    use super::EvaluationClock;
    use chrono::{TimeDelta, TimeZone, Utc};
    use std::time::Duration;
    use tokio::time::Instant;

    #[test]
    fn stamps_are_whole_intervals_apart_whatever_the_lateness() {
        let mut clock = EvaluationClock::new();
        let start = Instant::now();
        let wall = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap();
        let first = clock.stamp(start, wall, start);
        for k in 1..=5u32 {
            let scheduled = start + Duration::from_secs(u64::from(k));
            // The task wakes 0..40 ms late, and the wall clock is read a little later still.
            let late = Duration::from_millis(u64::from(k) * 8);
            let wall_now =
                wall + TimeDelta::seconds(i64::from(k)) + TimeDelta::milliseconds(i64::from(k) * 9);
            let stamp = clock.stamp(scheduled, wall_now, scheduled + late);
            assert_eq!(stamp - first, TimeDelta::seconds(i64::from(k)));
        }
    }

    #[test]
    fn a_wall_clock_step_re_anchors() {
        let mut clock = EvaluationClock::new();
        let start = Instant::now();
        let wall = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap();
        clock.stamp(start, wall, start);
        let scheduled = start + Duration::from_secs(1);
        // The wall clock jumped an hour ahead between the two evaluations.
        let stepped = wall + TimeDelta::hours(1) + TimeDelta::seconds(1);
        assert_eq!(clock.stamp(scheduled, stepped, scheduled), stepped);
        let next = scheduled + Duration::from_secs(1);
        assert_eq!(
            clock.stamp(next, stepped + TimeDelta::seconds(1), next),
            stepped + TimeDelta::seconds(1)
        );
    }
}

#[cfg(test)]
mod tests;
