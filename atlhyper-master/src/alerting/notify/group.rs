//! Grouping: alerts are gathered per (route, group labels) and released on the route's timers,
//! as Alertmanager's aggregation groups: a new group waits `group_wait` (so an outage's alerts
//! arrive as one notification), then is flushed every `group_interval` while it has alerts.
//! Resolved alerts are released once and then dropped; a group left empty is removed.
//!
//! Groups whose receiver forwards to an Alertmanager are also *refreshed*: between flushes
//! spaced more than [`RESEND_EVERY`] apart, their firing alerts are released again every
//! [`RESEND_EVERY`] for the forwarding alone, as Prometheus re-sends to its Alertmanagers, so an
//! alert never outlives its `endsAt` there while it fires here, whatever the route's timers.
//!
//! No I/O and no clock of its own: the dispatcher passes the instant (tokio's, so tests pause
//! time) and the evaluation time, and asks for the next deadline.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use atlhyper_model::{Alert, AlertState, Labels};
use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::receivers::alertmanager::RESEND_EVERY;
use super::route::{Route, Timing};

/// Alerts of one group released at a flush, for the mute stage and the receivers.
#[derive(Debug, Clone)]
pub struct Flush {
    /// Group key (route key and group labels).
    pub group_key: String,
    /// Receiver name.
    pub receiver: String,
    /// The group's labels.
    pub group_labels: Labels,
    /// The route's timers.
    pub timing: Timing,
    /// Firing and resolved alerts, by fingerprint.
    pub alerts: Vec<Alert>,
    /// A refresh between flushes: firing alerts only, for the integrations that must hear them
    /// regularly (Alertmanager forwarding), not a notification for the others.
    pub refresh: bool,
}

#[derive(Debug)]
struct Group {
    receiver: String,
    timing: Timing,
    labels: Labels,
    alerts: BTreeMap<String, Alert>,
    next_flush: Instant,
    /// When the firing alerts are next released as a refresh (see the module docs).
    next_refresh: Option<Instant>,
    flushed: bool,
}

impl Group {
    /// The earlier of its flush and its refresh.
    fn deadline(&self) -> Instant {
        self.next_refresh
            .map_or(self.next_flush, |r| r.min(self.next_flush))
    }

    /// Whether it has a firing alert.
    fn firing(&self) -> bool {
        self.alerts.values().any(|a| a.state == AlertState::Firing)
    }
}

/// Every group, keyed by group key.
#[derive(Debug)]
pub struct Groups {
    root: Route,
    resolve_timeout: Duration,
    groups: HashMap<String, Group>,
    /// Every firing alert by fingerprint (the inhibition sources).
    firing: HashMap<String, Alert>,
    /// The newest evaluation time seen.
    last_evaluation: Option<DateTime<Utc>>,
    /// Receivers whose groups are refreshed (they forward to an Alertmanager).
    refreshed: HashSet<String>,
}

impl Groups {
    /// No groups yet, over this route tree.
    pub fn new(root: Route, resolve_timeout: Duration) -> Self {
        Self {
            root,
            resolve_timeout,
            groups: HashMap::new(),
            firing: HashMap::new(),
            last_evaluation: None,
            refreshed: HashSet::new(),
        }
    }

    /// Refreshes the groups of these receivers (those that forward to an Alertmanager).
    pub fn with_refreshed(mut self, receivers: impl IntoIterator<Item = String>) -> Self {
        self.refreshed = receivers.into_iter().collect();
        self
    }

    /// Number of groups.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// Whether there is no group.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Every firing alert (the inhibition sources).
    pub fn firing(&self) -> impl Iterator<Item = &Alert> + Clone {
        self.firing.values()
    }

    /// Takes one evaluation's alerts. Pending and inactive ones are ignored (the engine does
    /// not publish them anyway).
    pub fn ingest(&mut self, evaluated_at: DateTime<Utc>, alerts: Vec<Alert>, now: Instant) {
        self.last_evaluation = Some(
            self.last_evaluation
                .map_or(evaluated_at, |t| t.max(evaluated_at)),
        );
        for alert in alerts {
            match alert.state {
                AlertState::Firing => {
                    self.firing.insert(alert.fingerprint.clone(), alert.clone());
                }
                AlertState::Resolved => {
                    self.firing.remove(&alert.fingerprint);
                }
                AlertState::Pending | AlertState::Inactive => continue,
            }
            for route in self.root.matching(&alert.labels) {
                let labels = route.group_labels(&alert.labels);
                let key = route.group_key(&labels);
                let group = self.groups.entry(key).or_insert_with(|| Group {
                    receiver: route.receiver.clone(),
                    timing: route.timing,
                    labels,
                    alerts: BTreeMap::new(),
                    next_flush: now + route.timing.group_wait,
                    next_refresh: None,
                    flushed: false,
                });
                // An alert that has fired for longer than group_wait already (a restart, a
                // late route) need not wait again: as Alertmanager, flush at once.
                let fired = alert.fired_at.unwrap_or(alert.active_at);
                let waited = chrono::Duration::from_std(group.timing.group_wait)
                    .is_ok_and(|wait| fired + wait <= evaluated_at);
                if !group.flushed && waited {
                    group.next_flush = group.next_flush.min(now);
                }
                group
                    .alerts
                    .insert(alert.fingerprint.clone(), alert.clone());
            }
        }
    }

    /// When the next group is due (flush or refresh), if any.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.groups.values().map(Group::deadline).min()
    }

    /// Releases every group due at `now`: its alerts go out, resolved ones leave the group, a
    /// group left empty is removed, the others are due again after `group_interval`. A group
    /// whose refresh alone is due releases its firing alerts as a refresh.
    pub fn due(&mut self, now: Instant) -> Vec<Flush> {
        self.resolve_stale();
        let mut out = Vec::new();
        let mut empty = Vec::new();
        for (key, group) in self.groups.iter_mut().filter(|(_, g)| g.deadline() <= now) {
            let refresh = group.next_flush > now;
            out.push(Flush {
                group_key: key.clone(),
                receiver: group.receiver.clone(),
                group_labels: group.labels.clone(),
                timing: group.timing,
                alerts: group
                    .alerts
                    .values()
                    .filter(|a| !refresh || a.state == AlertState::Firing)
                    .cloned()
                    .collect(),
                refresh,
            });
            if !refresh {
                group.alerts.retain(|_, a| a.state == AlertState::Firing);
                group.flushed = true;
                group.next_flush = now + group.timing.group_interval;
            }
            // A flush as often as RESEND_EVERY re-sends by itself.
            group.next_refresh = (self.refreshed.contains(&group.receiver)
                && group.timing.group_interval > RESEND_EVERY
                && group.firing())
            .then(|| now + RESEND_EVERY);
            if group.alerts.is_empty() {
                empty.push(key.clone());
            }
        }
        for key in empty {
            self.groups.remove(&key);
        }
        out.sort_by(|a, b| a.group_key.cmp(&b.group_key));
        out
    }

    /// Firing alerts the engine stopped publishing for `resolve_timeout` (their rule is gone)
    /// become resolved at their last evaluation, so they do not fire forever.
    fn resolve_stale(&mut self) {
        let Some(last) = self.last_evaluation else {
            return;
        };
        let Ok(timeout) = chrono::Duration::from_std(self.resolve_timeout) else {
            return;
        };
        let stale = |a: &Alert| a.state == AlertState::Firing && a.evaluated_at + timeout < last;
        for group in self.groups.values_mut() {
            for alert in group.alerts.values_mut().filter(|a| stale(a)) {
                alert.state = AlertState::Resolved;
                alert.resolved_at = Some(alert.evaluated_at);
            }
        }
        self.firing.retain(|_, a| !stale(a));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::notify::config::NotifyConfig;
    use chrono::TimeDelta;

    fn alert(pairs: &[(&str, &str)], state: AlertState, at: DateTime<Utc>) -> Alert {
        let labels: Labels = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Alert {
            fingerprint: atlhyper_model::fingerprint(&labels),
            rule: labels["alertname"].clone(),
            labels: labels.into(),
            annotations: Default::default(),
            state,
            value: 1.0,
            active_at: at,
            fired_at: Some(at),
            resolved_at: (state == AlertState::Resolved).then_some(at),
            evaluated_at: at,
        }
    }

    fn groups() -> Groups {
        let yaml = "route:\n  receiver: r\n  group_by: [alertname, cluster]\n  group_wait: 30s\n  group_interval: 5m\nreceivers:\n  - name: r\n";
        let config = NotifyConfig::from_yaml(yaml, "t.yaml").unwrap();
        Groups::new(Route::tree(&config.route), Duration::from_secs(300))
    }

    fn node_down(node: &str, state: AlertState, at: DateTime<Utc>) -> Alert {
        alert(
            &[("alertname", "NodeDown"), ("cluster", "c1"), ("node", node)],
            state,
            at,
        )
    }

    #[tokio::test(start_paused = true)]
    async fn group_wait_then_group_interval_then_gone_after_resolved() {
        let mut g = groups();
        let t0 = Utc::now();
        let start = Instant::now();
        g.ingest(
            t0,
            vec![node_down("n1", AlertState::Firing, t0)],
            Instant::now(),
        );
        assert_eq!(g.next_deadline(), Some(start + Duration::from_secs(30)));
        tokio::time::advance(Duration::from_secs(10)).await;
        // A second alert joins the waiting group; nothing is due before group_wait.
        g.ingest(
            t0,
            vec![node_down("n2", AlertState::Firing, t0)],
            Instant::now(),
        );
        assert!(g.due(Instant::now()).is_empty());
        tokio::time::advance(Duration::from_secs(20)).await;
        let flushed = g.due(Instant::now());
        assert_eq!(flushed.len(), 1);
        assert_eq!(flushed[0].alerts.len(), 2);
        assert_eq!(g.next_deadline(), Some(start + Duration::from_secs(330)));

        // A resolved notice is released at the next interval, then the group is gone.
        let t1 = t0 + TimeDelta::seconds(60);
        g.ingest(
            t1,
            vec![
                node_down("n1", AlertState::Resolved, t1),
                node_down("n2", AlertState::Resolved, t1),
            ],
            Instant::now(),
        );
        tokio::time::advance(Duration::from_secs(299)).await;
        assert!(g.due(Instant::now()).is_empty());
        tokio::time::advance(Duration::from_secs(1)).await;
        let flushed = g.due(Instant::now());
        assert!(
            flushed[0]
                .alerts
                .iter()
                .all(|a| a.state == AlertState::Resolved)
        );
        assert!(g.is_empty());
        assert_eq!(g.next_deadline(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_thousand_nodes_down_make_one_group() {
        let mut g = groups();
        let t0 = Utc::now();
        let alerts = (0..1000)
            .map(|i| node_down(&format!("n{i}"), AlertState::Firing, t0))
            .collect();
        g.ingest(t0, alerts, Instant::now());
        g.ingest(
            t0,
            vec![alert(
                &[("alertname", "NodeDown"), ("cluster", "c2")],
                AlertState::Firing,
                t0,
            )],
            Instant::now(),
        );
        tokio::time::advance(Duration::from_secs(30)).await;
        let flushed = g.due(Instant::now());
        assert_eq!(flushed.len(), 2);
        assert_eq!(flushed[0].alerts.len(), 1000);
        assert_eq!(flushed[0].group_labels["cluster"], "c1");
        assert_eq!(flushed[1].alerts.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn old_alerts_skip_group_wait_and_stale_ones_resolve() {
        let mut g = groups();
        let t0 = Utc::now();
        // Fired 10 minutes before this evaluation (a master restart): due at once.
        let old = node_down("n1", AlertState::Firing, t0 - TimeDelta::minutes(10));
        g.ingest(
            t0,
            vec![Alert {
                evaluated_at: t0,
                ..old
            }],
            Instant::now(),
        );
        assert_eq!(g.due(Instant::now()).len(), 1);
        // Not published for longer than resolve_timeout: resolved at its last evaluation.
        let later = t0 + TimeDelta::minutes(6);
        g.ingest(later, vec![], Instant::now());
        tokio::time::advance(Duration::from_secs(300)).await;
        let flushed = g.due(Instant::now());
        assert_eq!(flushed[0].alerts[0].state, AlertState::Resolved);
        assert_eq!(flushed[0].alerts[0].resolved_at, Some(t0));
        assert_eq!(g.firing().count(), 0);
        assert!(g.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn forwarding_groups_are_refreshed_every_minute_between_flushes() {
        let mut g = groups().with_refreshed(["r".to_owned()]);
        let mut plain = groups();
        let t0 = Utc::now();
        let start = Instant::now();
        let firing = vec![
            node_down("n1", AlertState::Firing, t0),
            node_down("n2", AlertState::Firing, t0),
        ];
        g.ingest(t0, firing.clone(), Instant::now());
        plain.ingest(t0, firing, Instant::now());
        tokio::time::advance(Duration::from_secs(30)).await;
        let first = g.due(Instant::now());
        assert_eq!((first.len(), first[0].refresh), (1, false));
        assert_eq!(plain.due(Instant::now()).len(), 1);
        // A minute later, a refresh of the firing alerts; the flush stays on group_interval.
        assert_eq!(g.next_deadline(), Some(start + Duration::from_secs(90)));
        assert_eq!(
            plain.next_deadline(),
            Some(start + Duration::from_secs(330))
        );
        tokio::time::advance(Duration::from_secs(60)).await;
        let t1 = t0 + TimeDelta::seconds(90);
        g.ingest(
            t1,
            vec![node_down("n2", AlertState::Resolved, t1)],
            Instant::now(),
        );
        let refresh = g.due(Instant::now());
        assert_eq!(refresh.len(), 1);
        assert!(refresh[0].refresh);
        let states: Vec<(&str, AlertState)> = refresh[0]
            .alerts
            .iter()
            .map(|a| (a.labels["node"].as_str(), a.state))
            .collect();
        assert_eq!(states, [("n1", AlertState::Firing)], "firing ones only");
        // Refreshes every minute until the flush, which still carries the resolution.
        for at in [150, 210, 270] {
            assert_eq!(g.next_deadline(), Some(start + Duration::from_secs(at)));
            tokio::time::advance(Duration::from_secs(60)).await;
            assert!(g.due(Instant::now())[0].refresh);
        }
        assert_eq!(g.next_deadline(), Some(start + Duration::from_secs(330)));
        tokio::time::advance(Duration::from_secs(60)).await;
        let flush = g.due(Instant::now());
        assert!(!flush[0].refresh);
        assert_eq!(flush[0].alerts.len(), 2);
        // All resolved: the last flush, no refresh after it, the group gone.
        let t2 = t0 + TimeDelta::seconds(400);
        g.ingest(
            t2,
            vec![node_down("n1", AlertState::Resolved, t2)],
            Instant::now(),
        );
        tokio::time::advance(Duration::from_secs(300)).await;
        let last = g.due(Instant::now());
        assert!(!last[0].refresh);
        assert!(g.is_empty());
        assert_eq!(g.next_deadline(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn short_group_intervals_need_no_refresh() {
        let yaml = "route:\n  receiver: r\n  group_wait: 1s\n  group_interval: 30s\nreceivers:\n  - name: r\n";
        let config = NotifyConfig::from_yaml(yaml, "t.yaml").unwrap();
        let mut g = Groups::new(Route::tree(&config.route), Duration::from_secs(300))
            .with_refreshed(["r".to_owned()]);
        let t0 = Utc::now();
        let start = Instant::now();
        g.ingest(
            t0,
            vec![node_down("n1", AlertState::Firing, t0)],
            Instant::now(),
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(g.due(Instant::now()).len(), 1);
        assert_eq!(g.next_deadline(), Some(start + Duration::from_secs(31)));
    }

    #[tokio::test(start_paused = true)]
    async fn pending_alerts_are_ignored() {
        let mut g = groups();
        let t0 = Utc::now();
        g.ingest(
            t0,
            vec![node_down("n1", AlertState::Pending, t0)],
            Instant::now(),
        );
        assert!(g.is_empty());
    }
}
