//! The rule engine: one pass of every rule over the hub's views as they read now, moving each
//! alert through inactive → pending → firing → resolved as Prometheus does.
//!
//! - A condition first seen holding makes a pending alert (`active_at` = now), or a firing one at
//!   once when the rule's `for` is 0. A pending alert fires once it has held for `for`.
//! - A pending alert whose condition stops is dropped (inactive). A firing one keeps firing for
//!   `keep_firing_for` after the condition last held, then resolves: it is published once with
//!   `state: resolved` and `resolved_at`, goes to the history and leaves the running set.
//! - Staleness: node figures are read only from nodes online under the hub's read-time rule.
//!   A node offline while its agent is alive gives `node.down`; a silent agent gives `agent.down`
//!   and nothing else of its cluster is evaluated, so no alert holds on frozen numbers.
//!
//! The engine is pure over its inputs (views, time, history samples); the task around it
//! ([`super::Alerting`]) reads the hub, persists the changes and publishes.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use atlhyper_model::{Alert, AlertState, Labels, NodeMetricsSnapshot, fingerprint};
use atlhyper_store::AlertChanges;
use chrono::{DateTime, Utc};
use rustc_hash::{FxHashMap, FxHasher};

use super::figures::Subject;
use super::plan::{NodeFigures, Plan, ScopeCache};
use super::predict::predict_linear;
use super::rules::Rule;
use crate::view::ClusterView;

/// Samples a predict rule keeps per series over its lookback (plus the value now).
pub(crate) const SAMPLES_PER_LOOKBACK: u32 = 60;
/// History loads asked for per evaluation (each one store read), so a restart with many nodes
/// seeds their predict series over a few evaluations instead of all at once.
const MAX_SEEDS_PER_EVALUATION: usize = 64;

/// One running (pending or firing) alert and what the engine needs to move it on.
#[derive(Debug, Clone)]
struct Running {
    alert: Alert,
    /// When the condition last held.
    last_held: DateTime<Utc>,
    /// The pass that last saw the condition hold.
    seen: u64,
    keep_firing_for: Duration,
}

/// Recent values of one predicted series.
#[derive(Debug)]
struct Samples {
    /// (Unix seconds, value), oldest first, one per lookback / 60.
    points: VecDeque<(f64, f64)>,
    /// Times of the oldest and newest point (+inf and -inf without points), kept beside the
    /// points so an evaluation with no sample due and no prediction to make reads no point
    /// (tens of thousands of series per evaluation: the points are a cache miss each).
    oldest: f64,
    newest: f64,
    /// Whether stored history was loaded into it (or there is none to load).
    seeded: bool,
    /// Last pass that used it (series not used for a while are dropped).
    used: u64,
}

impl Default for Samples {
    fn default() -> Self {
        Self {
            points: VecDeque::new(),
            oldest: f64::INFINITY,
            newest: f64::NEG_INFINITY,
            seeded: false,
            used: 0,
        }
    }
}

impl Samples {
    /// Appends `(at, value)` when the newest point is `spacing` old or there is none.
    fn push_if_due(&mut self, at: f64, value: f64, spacing: f64) {
        if at - self.newest >= spacing {
            self.points.push_back((at, value));
            self.newest = at;
            if self.points.len() == 1 {
                self.oldest = at;
            }
        }
    }

    /// Drops the points older than `since`.
    fn drop_before(&mut self, since: f64) {
        if self.oldest >= since {
            return;
        }
        while self.points.front().is_some_and(|first| first.0 < since) {
            self.points.pop_front();
        }
        self.oldest = self.points.front().map_or(f64::INFINITY, |p| p.0);
        self.newest = self.points.back().map_or(f64::NEG_INFINITY, |p| p.0);
    }

    /// Puts `points` (oldest first) that are older than every point in front.
    fn push_older(&mut self, points: &[(f64, f64)]) {
        let first = self.oldest;
        for p in points.iter().rev().filter(|p| p.0 < first) {
            self.points.push_front(*p);
        }
        self.oldest = self.points.front().map_or(f64::INFINITY, |p| p.0);
        self.newest = self.points.back().map_or(f64::NEG_INFINITY, |p| p.0);
    }
}

/// A predicted series that would like its stored history: the driver reads it from the store
/// and hands it to [`Engine::seed`].
#[derive(Debug, Clone, PartialEq)]
pub struct SeedRequest {
    pub key: u64,
    pub cluster: String,
    pub node: String,
    /// Index into [`atlhyper_model::MetricsDataPoint::figures`].
    pub column: usize,
    pub lookback: Duration,
}

/// What one evaluation produced.
#[derive(Debug, Default)]
pub struct Evaluation {
    /// Every firing alert plus every alert resolved in this pass (for notification).
    pub published: Vec<Alert>,
    /// What to persist.
    pub changes: AlertChanges,
    /// Predicted series to seed from stored history.
    pub seeds: Vec<SeedRequest>,
}

/// Rules and running alerts.
#[derive(Debug, Default)]
pub struct Engine {
    rules: Vec<Arc<Rule>>,
    /// The rules prepared for evaluation (figure slots, distinct node patterns).
    plan: Plan,
    /// Node name -> which node patterns it matches.
    scopes: ScopeCache,
    /// One node's figures, reused from node to node.
    figures: NodeFigures,
    // Internal maps and series keys hash with FxHash instead of SipHash: they are hashed tens
    // of thousands of times per evaluation. Their keys come from authenticated agents (node,
    // device and mount names) in bounded numbers, so SipHash's flooding resistance buys little.
    active: FxHashMap<String, Running>,
    /// Series key (rule and series, see `Series::key`) -> fingerprint of its running alert, so
    /// a condition that still holds finds its alert without building labels again.
    by_series: FxHashMap<u64, String>,
    samples: FxHashMap<u64, Samples>,
    pass: u64,
}

/// What a series is, for its labels.
#[derive(Clone, Copy)]
struct Series<'a> {
    cluster: &'a str,
    node: Option<&'a str>,
    device: Option<&'a str>,
    mountpoint: Option<&'a str>,
}

impl<'a> Series<'a> {
    fn of(cluster: &'a str, node: Option<&'a str>) -> Self {
        Self {
            cluster,
            node,
            device: None,
            mountpoint: None,
        }
    }

    /// Whether `labels` are this series' (a hash collision of two keys must not mix alerts).
    fn is_of(&self, labels: &Labels) -> bool {
        let same = |name: &str, v: Option<&str>| labels.get(name).map(String::as_str) == v;
        same("cluster", Some(self.cluster))
            && same("node", self.node)
            && same("device", self.device)
            && same("mountpoint", self.mountpoint)
    }

    fn key(&self, rule: &str) -> u64 {
        let mut h = FxHasher::default();
        (rule, self.cluster, self.node, self.device, self.mountpoint).hash(&mut h);
        h.finish()
    }
}

/// One pass's mutable state, apart from the rules it walks.
struct Pass<'e> {
    active: &'e mut FxHashMap<String, Running>,
    by_series: &'e mut FxHashMap<u64, String>,
    samples: &'e mut FxHashMap<u64, Samples>,
    pass: u64,
    now: DateTime<Utc>,
    now_secs: f64,
    out: Evaluation,
}

fn secs(at: DateTime<Utc>) -> f64 {
    at.timestamp() as f64 + f64::from(at.timestamp_subsec_nanos()) * 1e-9
}

fn elapsed(from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
    (to - from).to_std().unwrap_or(Duration::ZERO)
}

impl Engine {
    /// An engine without rules or alerts.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the rules (disabled ones are kept and skipped). Running alerts of rules that are
    /// gone or disabled stop holding, so they resolve at the next evaluation.
    pub fn set_rules(&mut self, rules: Vec<Arc<Rule>>) {
        self.plan = Plan::new(&rules);
        self.scopes.clear();
        self.rules = rules;
        // Labels and annotation templates may have changed: the next hold builds them anew.
        self.by_series.clear();
    }

    /// The rules.
    pub fn rules(&self) -> &[Arc<Rule>] {
        &self.rules
    }

    /// Takes back running alerts saved before a restart: a pending one keeps its `active_at`
    /// (its `for` goes on), a firing one stays firing with its `fired_at`.
    pub fn restore(&mut self, alerts: Vec<Alert>) {
        for alert in alerts {
            if !matches!(alert.state, AlertState::Pending | AlertState::Firing) {
                continue;
            }
            let keep_firing_for = self
                .rules
                .iter()
                .find(|r| r.name() == alert.rule)
                .map_or(Duration::ZERO, |r| r.keep_firing_for);
            self.active.insert(
                alert.fingerprint.clone(),
                Running {
                    last_held: alert.evaluated_at,
                    seen: self.pass,
                    keep_firing_for,
                    alert,
                },
            );
        }
    }

    /// Every pending and firing alert, sorted by fingerprint.
    pub fn running(&self) -> Vec<Alert> {
        let mut list: Vec<Alert> = self.active.values().map(|r| r.alert.clone()).collect();
        list.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
        list
    }

    /// Puts stored history points (seconds, value) in front of a predicted series' samples.
    pub fn seed(&mut self, key: u64, points: &[(f64, f64)]) {
        if let Some(s) = self.samples.get_mut(&key) {
            s.push_older(points);
            s.seeded = true;
        }
    }

    /// Marks a series as seeded without history (none stored, or the read failed for good).
    pub fn seed_none(&mut self, key: u64) {
        if let Some(s) = self.samples.get_mut(&key) {
            s.seeded = true;
        }
    }

    /// One evaluation of every enabled rule over `views` (the hub's views as they read now) at
    /// `now`.
    pub fn evaluate(&mut self, now: DateTime<Utc>, views: &[Arc<ClusterView>]) -> Evaluation {
        self.pass += 1;
        let mut pass = Pass {
            active: &mut self.active,
            by_series: &mut self.by_series,
            samples: &mut self.samples,
            pass: self.pass,
            now,
            now_secs: secs(now),
            out: Evaluation::default(),
        };
        // Node-major: each node's snapshot is read once for every rule while it is in cache, not
        // once per rule (10,000 node snapshots do not fit in cache; rule-major walked them 100
        // times per evaluation), and each of its figures once into a flat table.
        let mut node_rules: Vec<usize> = Vec::new();
        for view in views {
            let cluster = view.snapshot.cluster_id.as_str();
            let silent = view.is_agent_silent();
            node_rules.clear();
            for (i, rule) in self.rules.iter().enumerate() {
                if !rule.spec.enabled || !rule.covers_cluster(cluster) {
                    continue;
                }
                if pass.rule_over_cluster(rule, view, cluster, silent) {
                    node_rules.push(i);
                }
            }
            // A silent agent's figures are frozen: only agent.down speaks for its cluster.
            if silent || node_rules.is_empty() {
                continue;
            }
            // Both maps are sorted by name: one merge instead of a lookup per node.
            let mut status = view.node_status.iter().peekable();
            for (name, node) in &view.snapshot.node_metrics {
                while status
                    .next_if(|(s, _)| s.as_str() < name.as_str())
                    .is_some()
                {}
                let online = match status.peek() {
                    Some((s, st)) if *s == name => st.state == atlhyper_model::NodeState::Online,
                    _ => true,
                };
                let scope = self.scopes.row(&self.plan, name, pass.pass);
                if online {
                    self.figures.read(&self.plan, node);
                }
                let series = Series::of(cluster, Some(name.as_str()));
                for &i in &node_rules {
                    if self
                        .plan
                        .node_pattern(i)
                        .is_some_and(|p| !self.scopes.matches(scope, p))
                    {
                        continue;
                    }
                    let rule = &self.rules[i];
                    let slot = self.plan.slot(i);
                    pass.rule_over_node(rule, slot, series, node, &self.figures, online);
                }
            }
        }
        pass.sweep();
        let mut out = pass.out;
        out.published
            .sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
        if self.pass.is_multiple_of(64) {
            let pass_no = self.pass;
            self.samples.retain(|_, s| pass_no - s.used < 64);
            let active = &self.active;
            self.by_series.retain(|_, fp| active.contains_key(fp));
            self.scopes
                .forget_older_than(&self.plan, pass_no.saturating_sub(63));
        }
        out
    }
}

impl Pass<'_> {
    /// Evaluates a rule of the cluster as a whole (agent.down, cluster figures); true for a rule
    /// over its nodes, mounts, disks and interfaces (evaluated node by node).
    fn rule_over_cluster(
        &mut self,
        rule: &Rule,
        view: &ClusterView,
        cluster: &str,
        silent: bool,
    ) -> bool {
        let series = Series::of(cluster, None);
        match rule.figure.subject() {
            Subject::AgentDown => {
                if silent {
                    self.hold(rule, series, 1.0);
                }
            }
            _ if silent => {}
            Subject::Cluster => {
                if let Some(v) = rule.figure.of_cluster(&view.summary) {
                    self.check(rule, series, v);
                }
            }
            Subject::NodeDown
            | Subject::Node
            | Subject::Mount
            | Subject::Disk
            | Subject::Interface => return true,
        }
        false
    }

    /// Evaluates one rule over one node (`series` names the cluster and the node); `figures`
    /// are the node's, read for this evaluation when it is online, and `slot` is where the
    /// rule's figure sits in them.
    fn rule_over_node(
        &mut self,
        rule: &Rule,
        slot: usize,
        series: Series<'_>,
        node: &NodeMetricsSnapshot,
        figures: &NodeFigures,
        online: bool,
    ) {
        match rule.figure.subject() {
            Subject::NodeDown => {
                if !online {
                    self.hold(rule, series, 1.0);
                }
            }
            _ if !online => {}
            Subject::Node => {
                if let Some(v) = figures.node(slot) {
                    self.check(rule, series, v);
                }
            }
            Subject::Mount => {
                for (d, disk) in node.disks.iter().enumerate() {
                    if let Some(v) = figures.mount(d, slot) {
                        let s = Series {
                            device: Some(&disk.device),
                            mountpoint: Some(&disk.mount_point),
                            ..series
                        };
                        self.check_with_history(rule, s, v, figures.is_primary(d));
                    }
                }
            }
            Subject::Disk => {
                for (d, disk) in node.disks.iter().enumerate() {
                    if !figures.is_first_of_device(d) {
                        continue;
                    }
                    if let Some(v) = figures.mount(d, slot) {
                        let s = Series {
                            device: Some(&disk.device),
                            ..series
                        };
                        self.check(rule, s, v);
                    }
                }
            }
            Subject::Interface => {
                for (k, interface) in node.networks.iter().enumerate() {
                    if let Some(v) = figures.interface(k, slot) {
                        let s = Series {
                            device: Some(&interface.interface),
                            ..series
                        };
                        self.check(rule, s, v);
                    }
                }
            }
            // Evaluated once per cluster in rule_over_cluster.
            Subject::Cluster | Subject::AgentDown => {}
        }
    }

    fn check(&mut self, rule: &Rule, series: Series<'_>, value: f64) {
        let has_history = rule.figure.history_column().is_some() && series.mountpoint.is_none();
        self.check_with_history(rule, series, value, has_history);
    }

    /// Compares the value now, or for a predict rule the predicted one; `stored` says whether
    /// the store keeps this series' history (to seed the prediction after a restart).
    fn check_with_history(&mut self, rule: &Rule, series: Series<'_>, value: f64, stored: bool) {
        let Some((op, threshold)) = rule.condition else {
            return;
        };
        let value = match rule.predict {
            None => value,
            Some(p) => {
                let Some(v) = self.predicted(rule, series, value, p, stored) else {
                    return;
                };
                v
            }
        };
        if op.holds(value, threshold) {
            self.hold(rule, series, value);
        }
    }

    /// Records `current` in the series' samples and predicts its value `within` ahead.
    fn predicted(
        &mut self,
        rule: &Rule,
        series: Series<'_>,
        current: f64,
        p: super::rules::Predict,
        stored: bool,
    ) -> Option<f64> {
        let key = series.key(rule.name());
        let lookback = p.lookback.as_secs_f64();
        let spacing = lookback / f64::from(SAMPLES_PER_LOOKBACK);
        let s = self.samples.entry(key).or_default();
        s.used = self.pass;
        s.push_if_due(self.now_secs, current, spacing);
        s.drop_before(self.now_secs - lookback);
        if !s.seeded {
            match rule.figure.history_column() {
                Some(column) if stored => {
                    if self.out.seeds.len() < MAX_SEEDS_PER_EVALUATION {
                        self.out.seeds.push(SeedRequest {
                            key,
                            cluster: series.cluster.to_owned(),
                            node: series.node.unwrap_or_default().to_owned(),
                            column,
                            lookback: p.lookback,
                        });
                    }
                }
                _ => s.seeded = true,
            }
        }
        if p.current_above.is_some_and(|floor| current <= floor) {
            return None;
        }
        // Too short a span extrapolates noise: a quarter of the lookback at least.
        let span = s.points.back()?.0 - s.points.front()?.0;
        if span < lookback / 4.0 {
            return None;
        }
        let mut points: Vec<(f64, f64)> = s.points.iter().copied().collect();
        if points.last().is_some_and(|last| last.0 < self.now_secs) {
            points.push((self.now_secs, current));
        }
        predict_linear(&points, self.now_secs + p.within.as_secs_f64())
    }

    /// The condition holds for this series now.
    fn hold(&mut self, rule: &Rule, series: Series<'_>, value: f64) {
        let key = series.key(rule.name());
        if let Some(fp) = self.by_series.get(&key)
            && let Some(r) = self.active.get_mut(fp)
            && r.alert.rule == rule.name()
            && series.is_of(&r.alert.labels)
        {
            if value.to_bits() != r.alert.value.to_bits() {
                let threshold = rule.condition.map(|c| c.1);
                r.alert.annotations = rule
                    .annotations
                    .iter()
                    .map(|(name, t)| (name.clone(), t.render(&r.alert.labels, value, threshold)))
                    .collect();
            }
            let now = self.now;
            r.seen = self.pass;
            r.last_held = now;
            r.keep_firing_for = rule.keep_firing_for;
            r.alert.value = value;
            r.alert.evaluated_at = now;
            if r.alert.state == AlertState::Pending && elapsed(r.alert.active_at, now) >= rule.for_
            {
                r.alert.state = AlertState::Firing;
                r.alert.fired_at = Some(now);
                self.out.changes.upsert.push(r.alert.clone());
            }
            return;
        }
        let mut labels = Labels::new();
        labels.insert("alertname".to_owned(), rule.name().to_owned());
        labels.insert(
            "severity".to_owned(),
            rule.spec.severity.as_str().to_owned(),
        );
        labels.insert("cluster".to_owned(), series.cluster.to_owned());
        for (name, v) in [
            ("node", series.node),
            ("device", series.device),
            ("mountpoint", series.mountpoint),
        ] {
            if let Some(v) = v {
                labels.insert(name.to_owned(), v.to_owned());
            }
        }
        for (k, v) in &rule.spec.labels {
            labels.insert(k.clone(), v.clone());
        }
        let threshold = rule.condition.map(|c| c.1);
        let annotations: Labels = rule
            .annotations
            .iter()
            .map(|(name, t)| (name.clone(), t.render(&labels, value, threshold)))
            .collect();
        let now = self.now;
        let fp = fingerprint(&labels);
        self.by_series.insert(key, fp.clone());
        match self.active.get_mut(&fp) {
            Some(r) => {
                r.seen = self.pass;
                r.last_held = now;
                r.keep_firing_for = rule.keep_firing_for;
                r.alert.value = value;
                r.alert.annotations = annotations;
                r.alert.evaluated_at = now;
                if r.alert.state == AlertState::Pending
                    && elapsed(r.alert.active_at, now) >= rule.for_
                {
                    r.alert.state = AlertState::Firing;
                    r.alert.fired_at = Some(now);
                    self.out.changes.upsert.push(r.alert.clone());
                }
            }
            None => {
                let firing = rule.for_.is_zero();
                let alert = Alert {
                    fingerprint: fp.clone(),
                    rule: rule.name().to_owned(),
                    labels,
                    annotations,
                    state: if firing {
                        AlertState::Firing
                    } else {
                        AlertState::Pending
                    },
                    value,
                    active_at: now,
                    fired_at: firing.then_some(now),
                    resolved_at: None,
                    evaluated_at: now,
                };
                self.out.changes.upsert.push(alert.clone());
                self.active.insert(
                    fp,
                    Running {
                        alert,
                        last_held: now,
                        seen: self.pass,
                        keep_firing_for: rule.keep_firing_for,
                    },
                );
            }
        }
    }

    /// Moves on every running alert whose condition did not hold in this pass, and collects the
    /// firing ones for publication.
    fn sweep(&mut self) {
        let now = self.now;
        let mut gone = Vec::new();
        for (fp, r) in self.active.iter_mut() {
            if r.seen == self.pass {
                if r.alert.state == AlertState::Firing {
                    self.out.published.push(r.alert.clone());
                }
                continue;
            }
            match r.alert.state {
                AlertState::Firing if elapsed(r.last_held, now) < r.keep_firing_for => {
                    r.alert.evaluated_at = now;
                    self.out.published.push(r.alert.clone());
                }
                AlertState::Firing => {
                    let mut resolved = r.alert.clone();
                    resolved.state = AlertState::Resolved;
                    resolved.resolved_at = Some(now);
                    resolved.evaluated_at = now;
                    self.out.published.push(resolved.clone());
                    self.out.changes.history.push(resolved);
                    gone.push(fp.clone());
                }
                _ => gone.push(fp.clone()),
            }
        }
        for fp in gone {
            self.active.remove(&fp);
            self.out.changes.remove.push(fp);
        }
    }
}

#[cfg(test)]
mod samples_tests {
    use super::Samples;

    /// The inline oldest/newest times agree with the points through pushes, drops and seeds.
    fn consistent(s: &Samples) {
        assert_eq!(s.oldest, s.points.front().map_or(f64::INFINITY, |p| p.0));
        assert_eq!(s.newest, s.points.back().map_or(f64::NEG_INFINITY, |p| p.0));
    }

    #[test]
    fn bounds_follow_the_points() {
        let mut s = Samples::default();
        consistent(&s);
        s.push_if_due(100.0, 1.0, 10.0);
        s.push_if_due(105.0, 2.0, 10.0);
        assert_eq!(s.points.len(), 1, "not due 5 s after the last point");
        s.push_if_due(110.0, 3.0, 10.0);
        assert_eq!(s.points.len(), 2);
        consistent(&s);
        s.push_older(&[(80.0, 0.0), (90.0, 0.5), (100.0, 9.0)]);
        assert_eq!(
            s.points.iter().map(|p| p.0).collect::<Vec<_>>(),
            [80.0, 90.0, 100.0, 110.0],
            "only points older than the first are put in front"
        );
        consistent(&s);
        s.drop_before(95.0);
        assert_eq!(s.points.len(), 2);
        consistent(&s);
        s.drop_before(1000.0);
        assert!(s.points.is_empty());
        consistent(&s);
        s.push_if_due(1000.0, 1.0, 10.0);
        consistent(&s);
        let mut empty = Samples::default();
        empty.push_older(&[(1.0, 1.0), (2.0, 2.0)]);
        consistent(&empty);
    }
}
