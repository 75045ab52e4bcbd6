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

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use atlhyper_model::{Alert, AlertState, Labels, fingerprint};
use atlhyper_store::AlertChanges;
use chrono::{DateTime, Utc};
use rustc_hash::{FxHashMap, FxHasher};
use slab::Slab;

use super::figures::Subject;
use super::plan::Plan;
use super::predict::predict_linear;
use super::roster::{NodeSlot, Roster, rule_identity, series_key};
use super::rules::Rule;
use super::samples::Samples;
use super::table::{ClusterRows, FigureTable, HitKey, HitLists, NodeRow, rows_holding};
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
    /// The key of the series it was last found by (see `Engine::by_series`).
    series_key: Option<u64>,
}

/// A predicted series that would like its stored history: the driver reads it from the store
/// and hands it to [`Engine::seed`].
#[derive(Debug, Clone, PartialEq)]
pub struct SeedRequest {
    /// The series among the node's (see [`Engine::seed`]).
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
    /// Counts rule changes, so rosters know when to match their names again.
    generation: u64,
    /// Cluster id -> its nodes' state between evaluations (pattern bits, predicted series).
    rosters: FxHashMap<String, Roster>,
    /// The running alerts.
    active: Slab<Running>,
    /// Fingerprint -> its alert in `active`, in fingerprint order (the order alerts are
    /// published in, so publication needs no sort).
    by_fingerprint: BTreeMap<String, usize>,
    // Series keys hash with FxHash instead of SipHash: they come from authenticated agents
    // (node, device and mount names) in bounded numbers, so SipHash's flooding resistance buys
    // little.
    /// Series key (rule and series, see `Series::key`) -> its running alert in `active`, so a
    /// condition that still holds finds its alert without building labels again.
    by_series: FxHashMap<u64, usize>,
    pass: u64,
    /// Rows of the last evaluation's table (nodes, mounts, interfaces).
    table_rows: (usize, usize, usize),
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
    active: &'e mut Slab<Running>,
    by_fingerprint: &'e mut BTreeMap<String, usize>,
    by_series: &'e mut FxHashMap<u64, usize>,
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
        self.generation += 1;
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
            let fingerprint = alert.fingerprint.clone();
            let running = Running {
                last_held: alert.evaluated_at,
                seen: self.pass,
                keep_firing_for,
                series_key: None,
                alert,
            };
            match self.by_fingerprint.get(&fingerprint) {
                Some(&at) => self.active[at] = running,
                None => {
                    let at = self.active.insert(running);
                    self.by_fingerprint.insert(fingerprint, at);
                }
            }
        }
    }

    /// Every pending and firing alert, sorted by fingerprint.
    pub fn running(&self) -> Vec<Alert> {
        self.by_fingerprint
            .values()
            .map(|&at| self.active[at].alert.clone())
            .collect()
    }

    /// Puts stored history points (seconds, value) in front of the samples of the predicted
    /// series `request` asked for.
    pub fn seed(&mut self, request: &SeedRequest, points: &[(f64, f64)]) {
        if let Some(s) = self.requested_samples(request) {
            s.push_older(points);
            s.seeded = true;
        }
    }

    /// Marks a series as seeded without history (none stored, or the read failed for good).
    pub fn seed_none(&mut self, request: &SeedRequest) {
        if let Some(s) = self.requested_samples(request) {
            s.seeded = true;
        }
    }

    fn requested_samples(&mut self, request: &SeedRequest) -> Option<&mut Samples> {
        self.rosters
            .get_mut(&request.cluster)?
            .slot_of(&request.node)?
            .existing_samples(request.key)
    }

    /// One evaluation of every enabled rule over `views` (the hub's views as they read now) at
    /// `now`.
    pub fn evaluate(&mut self, now: DateTime<Utc>, views: &[Arc<ClusterView>]) -> Evaluation {
        self.pass += 1;
        let Self {
            rules,
            plan,
            generation,
            rosters,
            active,
            by_fingerprint,
            by_series,
            pass: pass_no,
            table_rows,
        } = self;
        let pass_no = *pass_no;
        let mut pass = Pass {
            active: &mut *active,
            by_fingerprint: &mut *by_fingerprint,
            by_series: &mut *by_series,
            pass: pass_no,
            now,
            now_secs: secs(now),
            out: Evaluation::default(),
        };
        // Node rules in two steps: every node's figures into one table, each snapshot read once
        // (10,000 node snapshots do not fit in cache: reading them rule by rule walked them 100
        // times), then rule by rule over the table's contiguous columns.
        let mut table = FigureTable::new(plan, *table_rows);
        // Per cluster of the table, per rule: whether the rule covers it.
        let mut covers: Vec<bool> = Vec::new();
        let mut over_nodes = vec![false; rules.len()];
        for (v, view) in views.iter().enumerate() {
            let cluster = view.snapshot.cluster_id.as_str();
            let silent = view.is_agent_silent();
            let at = covers.len();
            covers.resize(at + rules.len(), false);
            for (i, rule) in rules.iter().enumerate() {
                if !rule.spec.enabled || !rule.covers_cluster(cluster) {
                    continue;
                }
                if pass.rule_over_cluster(rule, view, cluster, silent) {
                    covers[at + i] = true;
                    over_nodes[i] = true;
                }
            }
            // A silent agent's figures are frozen: only agent.down speaks for its cluster.
            if silent || !covers[at..].contains(&true) {
                covers.truncate(at);
                continue;
            }
            let roster = match rosters.get_mut(cluster) {
                Some(roster) => roster,
                None => rosters.entry(cluster.to_owned()).or_default(),
            };
            if roster.seen == pass_no {
                // Two views of one cluster (the hub keeps one): the first one counts.
                covers.truncate(at);
                continue;
            }
            roster.align(
                plan,
                *generation,
                view.snapshot.node_metrics.keys(),
                pass_no,
            );
            table.start_cluster(v);
            // Both maps are sorted by name: one merge instead of a lookup per node.
            let mut status = view.node_status.iter().peekable();
            for (slot, (name, node)) in view.snapshot.node_metrics.iter().enumerate() {
                while status
                    .next_if(|(s, _)| s.as_str() < name.as_str())
                    .is_some()
                {}
                let online = match status.peek() {
                    Some((s, st)) if *s == name => st.state == atlhyper_model::NodeState::Online,
                    _ => true,
                };
                let row = NodeRow {
                    name,
                    node,
                    online,
                    slot,
                };
                table.push_node(plan, row, roster.scope(plan, slot));
            }
        }
        // Rules of one figure, comparator and threshold (differing in scope, labels or `for`)
        // share one compare of the column.
        let mut hits = HitLists::default();
        for (i, rule) in rules.iter().enumerate() {
            if !over_nodes[i] {
                continue;
            }
            for (c, rows) in table.clusters.iter().enumerate() {
                if !covers[c * rules.len() + i] {
                    continue;
                }
                let cluster = views[rows.view].snapshot.cluster_id.as_str();
                let Some(roster) = rosters.get_mut(cluster) else {
                    continue;
                };
                let Some(kind) = RowKind::of(rule.figure.subject()) else {
                    continue;
                };
                let over = Over {
                    rule,
                    kind,
                    slot: plan.slot(i),
                    pattern: plan.node_pattern(i),
                    table: &table,
                    rows,
                    cluster,
                };
                let found = match (rule.condition, rule.predict, over.column()) {
                    (Some((op, threshold)), None, Some(column)) => {
                        let range = over.range();
                        let key = HitKey {
                            cluster: c,
                            table: kind.table(),
                            slot: over.slot,
                            op,
                            threshold: threshold.to_bits(),
                        };
                        hits.rows(key, |out| {
                            rows_holding(
                                &column[range.clone()],
                                op,
                                threshold,
                                range.start as u32,
                                out,
                            );
                        })
                    }
                    _ => &[],
                };
                pass.rule_over_nodes(&over, roster, found);
            }
        }
        *table_rows = table.rows();
        pass.sweep();
        // Published in fingerprint order already (the sweep walks `by_fingerprint`).
        let out = pass.out;
        if pass_no.is_multiple_of(64) {
            rosters.retain(|_, r| pass_no - r.seen < 64);
            for roster in rosters.values_mut() {
                roster.forget_series_older_than(pass_no.saturating_sub(63));
            }
        }
        out
    }
}

/// A predicted series: its key among its node's, where it is, whether the store keeps its
/// history.
struct Predicted<'a> {
    key: u64,
    cluster: &'a str,
    node: &'a str,
    stored: bool,
}

/// Which rows of the table a rule's column has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RowKind {
    Nodes,
    /// Mount rows, every entry a series (mount figures).
    Mounts,
    /// Mount rows, the first entry of each device a series (disk figures).
    Disks,
    Interfaces,
}

impl RowKind {
    fn of(subject: Subject) -> Option<Self> {
        match subject {
            Subject::Node | Subject::NodeDown => Some(Self::Nodes),
            Subject::Mount => Some(Self::Mounts),
            Subject::Disk => Some(Self::Disks),
            Subject::Interface => Some(Self::Interfaces),
            Subject::Cluster | Subject::AgentDown => None,
        }
    }

    /// Which table (node, mount, interface) its column is in: disk and mount figures share
    /// the mount table, so their rules share hit lists.
    fn table(self) -> u8 {
        match self {
            Self::Nodes => 0,
            Self::Mounts | Self::Disks => 1,
            Self::Interfaces => 2,
        }
    }
}

/// One rule over the rows of one cluster.
struct Over<'a> {
    rule: &'a Rule,
    kind: RowKind,
    /// The rule's column.
    slot: usize,
    /// Its node pattern.
    pattern: Option<usize>,
    table: &'a FigureTable<'a>,
    rows: &'a ClusterRows,
    cluster: &'a str,
}

impl<'a> Over<'a> {
    fn in_scope(&self, node_row: usize) -> bool {
        self.pattern
            .is_none_or(|p| self.table.in_scope(node_row, p))
    }

    /// The rows of the rule's column that are this cluster's.
    fn range(&self) -> std::ops::Range<usize> {
        match self.kind {
            RowKind::Nodes => self.rows.nodes.clone(),
            RowKind::Mounts | RowKind::Disks => self.rows.mounts.clone(),
            RowKind::Interfaces => self.rows.interfaces.clone(),
        }
    }

    /// The rule's whole column (every cluster's rows); `None` for a state figure.
    fn column(&self) -> Option<&'a [f64]> {
        match (self.kind, self.rule.figure.subject()) {
            (_, Subject::NodeDown) => None,
            (RowKind::Nodes, _) => Some(self.table.node_column(self.slot)),
            (RowKind::Mounts | RowKind::Disks, _) => Some(self.table.mount_column(self.slot)),
            (RowKind::Interfaces, _) => Some(self.table.interface_column(self.slot)),
        }
    }

    /// The node row of row `r`, `None` for a row that is no series of the rule (a second entry
    /// of a device, for a disk figure).
    fn node_of(&self, r: usize) -> Option<usize> {
        let t = self.table;
        match self.kind {
            RowKind::Nodes => Some(r),
            RowKind::Mounts => Some(t.mounts[r].node),
            RowKind::Disks => t.first_of_device(r).then(|| t.mounts[r].node),
            RowKind::Interfaces => Some(t.interfaces[r].node),
        }
    }

    /// Row `r`'s [`series_identity`](super::roster::series_identity) and whether the store
    /// keeps its history (to seed a prediction after a restart).
    fn identity_and_stored(&self, r: usize) -> (u64, bool) {
        let t = self.table;
        let stored = self.rule.figure.history_column().is_some();
        match self.kind {
            RowKind::Nodes => (0, stored),
            RowKind::Mounts => (t.mount_identity(r), t.is_primary(r)),
            RowKind::Disks => (t.disk_identity(r), stored),
            RowKind::Interfaces => (t.interface_identity(r), stored),
        }
    }

    fn node_series(&self, node_row: usize) -> Series<'a> {
        Series::of(self.cluster, Some(self.table.nodes[node_row].name))
    }

    /// Row `r`'s series, for its alert's labels.
    fn series(&self, r: usize) -> Series<'a> {
        let t = self.table;
        match self.kind {
            RowKind::Nodes => self.node_series(r),
            RowKind::Mounts => {
                let d = t.disk(r);
                Series {
                    device: Some(&d.device),
                    mountpoint: Some(&d.mount_point),
                    ..self.node_series(t.mounts[r].node)
                }
            }
            RowKind::Disks => Series {
                device: Some(&t.disk(r).device),
                ..self.node_series(t.mounts[r].node)
            },
            RowKind::Interfaces => Series {
                device: Some(&t.network(r).interface),
                ..self.node_series(t.interfaces[r].node)
            },
        }
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
                // Cluster figures are never predicted (refused when the rule is written).
                if let Some(v) = rule.figure.of_cluster(&view.summary)
                    && let Some((op, threshold)) = rule.condition
                    && op.holds(v, threshold)
                {
                    self.hold(rule, series, v);
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

    /// Evaluates a rule over the nodes (or their mounts, disks or interfaces) of one cluster.
    /// `hits` are the rows (of the rule's column) where its condition holds, for a threshold
    /// rule; a predict rule compares predicted values and reads every row.
    fn rule_over_nodes(&mut self, over: &Over<'_>, roster: &mut Roster, hits: &[u32]) {
        let (rule, table) = (over.rule, over.table);
        if rule.figure.subject() == Subject::NodeDown {
            for r in over.range() {
                if !table.nodes[r].online && over.in_scope(r) {
                    self.hold(rule, over.node_series(r), 1.0);
                }
            }
            return;
        }
        let Some((op, threshold)) = rule.condition else {
            return;
        };
        let Some(column) = over.column() else {
            return;
        };
        match rule.predict {
            None => {
                for &r in hits {
                    let r = r as usize;
                    if let Some(node) = over.node_of(r)
                        && over.in_scope(node)
                    {
                        self.hold(rule, over.series(r), column[r]);
                    }
                }
            }
            Some(p) => {
                let rule_id = rule_identity(rule.name());
                for r in over.range() {
                    let v = column[r];
                    if v.is_nan() {
                        continue;
                    }
                    let Some(node) = over.node_of(r) else {
                        continue;
                    };
                    if !over.in_scope(node) {
                        continue;
                    }
                    let (identity, stored) = over.identity_and_stored(r);
                    let target = Predicted {
                        key: series_key(rule_id, identity),
                        cluster: over.cluster,
                        node: table.nodes[node].name,
                        stored,
                    };
                    let slot = roster.slot(table.nodes[node].slot);
                    if let Some(predicted) = self.predicted(rule, &target, v, p, slot)
                        && op.holds(predicted, threshold)
                    {
                        self.hold(rule, over.series(r), predicted);
                    }
                }
            }
        }
    }

    /// Records `current` in the series' samples (kept in its node's slot) and predicts its
    /// value `within` ahead.
    fn predicted(
        &mut self,
        rule: &Rule,
        target: &Predicted<'_>,
        current: f64,
        p: super::rules::Predict,
        node: &mut NodeSlot,
    ) -> Option<f64> {
        let lookback = p.lookback.as_secs_f64();
        let spacing = lookback / f64::from(SAMPLES_PER_LOOKBACK);
        let s = node.samples(target.key);
        s.used = self.pass;
        s.push_if_due(self.now_secs, current, spacing);
        s.drop_before(self.now_secs - lookback);
        if !s.seeded {
            match rule.figure.history_column() {
                Some(column) if target.stored => {
                    if self.out.seeds.len() < MAX_SEEDS_PER_EVALUATION {
                        self.out.seeds.push(SeedRequest {
                            key: target.key,
                            cluster: target.cluster.to_owned(),
                            node: target.node.to_owned(),
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
        if let Some(&at) = self.by_series.get(&key)
            && let Some(r) = self.active.get_mut(at)
            && r.alert.rule == rule.name()
            && series.is_of(&r.alert.labels)
        {
            if value.to_bits() != r.alert.value.to_bits() {
                let threshold = rule.condition.map(|c| c.1);
                r.alert.annotations = Arc::new(
                    rule.annotations
                        .iter()
                        .map(|(name, t)| {
                            (name.clone(), t.render(&r.alert.labels, value, threshold))
                        })
                        .collect(),
                );
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
        match self.by_fingerprint.get(&fp) {
            Some(&at) => {
                self.by_series.insert(key, at);
                let r = &mut self.active[at];
                r.series_key = Some(key);
                r.seen = self.pass;
                r.last_held = now;
                r.keep_firing_for = rule.keep_firing_for;
                r.alert.value = value;
                r.alert.annotations = Arc::new(annotations);
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
                    labels: Arc::new(labels),
                    annotations: Arc::new(annotations),
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
                let at = self.active.insert(Running {
                    alert,
                    last_held: now,
                    seen: self.pass,
                    keep_firing_for: rule.keep_firing_for,
                    series_key: Some(key),
                });
                self.by_fingerprint.insert(fp, at);
                self.by_series.insert(key, at);
            }
        }
    }

    /// Moves on every running alert whose condition did not hold in this pass, and collects the
    /// firing ones for publication.
    fn sweep(&mut self) {
        let now = self.now;
        let mut gone = Vec::new();
        for (fp, &at) in self.by_fingerprint.iter() {
            let r = &mut self.active[at];
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
            if let Some(at) = self.by_fingerprint.remove(&fp) {
                let r = self.active.remove(at);
                // Its series key must not find the slot once another alert takes it.
                if let Some(key) = r.series_key
                    && self.by_series.get(&key) == Some(&at)
                {
                    self.by_series.remove(&key);
                }
            }
            self.out.changes.remove.push(fp);
        }
    }
}
