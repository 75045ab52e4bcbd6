//! The engine's state machine, staleness, restart and prediction over stored history.

use std::sync::Arc;
use std::time::Duration;

use atlhyper_model::{
    Alert, AlertState, ClusterSnapshot, DiskMetrics, MetricsDataPoint, NodeMetricsSnapshot,
    NodeState, NodeStatus,
};
use atlhyper_store::{AlertStore, MemoryStore, MetricsStore, SqliteStore};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use parking_lot::Mutex;

use super::engine::Engine;
use super::rules::{Rule, RuleSpec, from_json};
use super::{AlertPublisher, AlertSettings, Alerting};
use crate::hub::DataHub;
use crate::view::ClusterView;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 10, 12, 0, 0).unwrap()
}

fn at(secs: i64) -> DateTime<Utc> {
    t0() + TimeDelta::seconds(secs)
}

fn rule(json: &str) -> Arc<Rule> {
    Arc::new(Rule::compile(from_json(json.as_bytes()).unwrap()).unwrap())
}

fn node(name: &str, cpu: f64) -> NodeMetricsSnapshot {
    let mut n = NodeMetricsSnapshot {
        node_name: name.into(),
        ..NodeMetricsSnapshot::default()
    };
    n.cpu.usage_percent = cpu;
    n.memory.total = 1000;
    n.memory.available = 500;
    n.disks.push(DiskMetrics {
        device: "sda1".into(),
        mount_point: "/".into(),
        total: 1000,
        usage_percent: 50.0,
        ..DiskMetrics::default()
    });
    n
}

/// A view of cluster `c` with these nodes; `offline` ones listed offline by the agent.
fn view(nodes: &[NodeMetricsSnapshot], offline: &[&str]) -> Arc<ClusterView> {
    let mut s = ClusterSnapshot {
        cluster_id: "c".into(),
        ..ClusterSnapshot::default()
    };
    for n in nodes {
        s.node_metrics.insert(n.node_name.clone(), n.clone());
        let state = if offline.contains(&n.node_name.as_str()) {
            NodeState::Offline
        } else {
            NodeState::Online
        };
        s.node_status.insert(
            n.node_name.clone(),
            NodeStatus {
                state,
                last_seen: n.timestamp,
            },
        );
    }
    Arc::new(ClusterView::new(s, Utc::now()))
}

fn states(alerts: &[Alert]) -> Vec<(String, AlertState)> {
    alerts.iter().map(|a| (a.rule.clone(), a.state)).collect()
}

const HIGH_CPU_10M: &str = r#"{"name":"HighCpu","figure":"cpu.usage_percent","op":">","threshold":90,"for":"10m",
    "annotations":{"summary":"{{node}} at {{value}}%"}}"#;

#[test]
fn for_then_firing_then_resolved_once() {
    let mut e = Engine::new();
    e.set_rules(vec![rule(HIGH_CPU_10M)]);
    let hot = view(&[node("n1", 95.0), node("n2", 10.0)], &[]);

    let first = e.evaluate(at(0), std::slice::from_ref(&hot));
    assert!(first.published.is_empty(), "pending is never published");
    assert_eq!(
        states(&e.running()),
        [("HighCpu".into(), AlertState::Pending)]
    );
    assert_eq!(first.changes.upsert.len(), 1, "pending is persisted");

    let mid = e.evaluate(at(300), std::slice::from_ref(&hot));
    assert!(mid.published.is_empty() && mid.changes.is_empty());

    let fired = e.evaluate(at(600), std::slice::from_ref(&hot));
    assert_eq!(
        states(&fired.published),
        [("HighCpu".into(), AlertState::Firing)]
    );
    let alert = &fired.published[0];
    assert_eq!(alert.active_at, at(0));
    assert_eq!(alert.fired_at, Some(at(600)));
    assert_eq!(alert.labels["node"], "n1");
    assert_eq!(alert.labels["cluster"], "c");
    assert_eq!(alert.labels["severity"], "warning");
    assert_eq!(alert.labels["alertname"], "HighCpu");
    assert_eq!(alert.annotations["summary"], "n1 at 95%");

    let again = e.evaluate(at(615), std::slice::from_ref(&hot));
    assert_eq!(
        again.published.len(),
        1,
        "firing is published every evaluation"
    );

    let cool = view(&[node("n1", 20.0), node("n2", 10.0)], &[]);
    let resolved = e.evaluate(at(630), std::slice::from_ref(&cool));
    assert_eq!(
        states(&resolved.published),
        [("HighCpu".into(), AlertState::Resolved)]
    );
    assert_eq!(resolved.published[0].resolved_at, Some(at(630)));
    assert_eq!(resolved.changes.history.len(), 1);
    assert_eq!(resolved.changes.remove.len(), 1);
    assert!(e.running().is_empty());

    let after = e.evaluate(at(645), std::slice::from_ref(&cool));
    assert!(after.published.is_empty(), "resolved is published once");
}

#[test]
fn pending_that_stops_holding_leaves_no_history() {
    let mut e = Engine::new();
    e.set_rules(vec![rule(HIGH_CPU_10M)]);
    e.evaluate(at(0), &[view(&[node("n1", 95.0)], &[])]);
    let out = e.evaluate(at(60), &[view(&[node("n1", 5.0)], &[])]);
    assert!(out.published.is_empty());
    assert!(out.changes.history.is_empty());
    assert_eq!(out.changes.remove.len(), 1);
    assert!(e.running().is_empty());
    // Holding again starts a new `for`.
    e.evaluate(at(120), &[view(&[node("n1", 95.0)], &[])]);
    assert_eq!(e.running()[0].active_at, at(120));
}

#[test]
fn keep_firing_for_holds_a_firing_alert_after_the_condition_stops() {
    let mut e = Engine::new();
    e.set_rules(vec![rule(
        r#"{"name":"HighCpu","figure":"cpu.usage_percent","op":">","threshold":90,"keep_firing_for":"2m"}"#,
    )]);
    let fired = e.evaluate(at(0), &[view(&[node("n1", 95.0)], &[])]);
    assert_eq!(
        states(&fired.published),
        [("HighCpu".into(), AlertState::Firing)],
        "for 0 fires at once"
    );
    let cool = view(&[node("n1", 5.0)], &[]);
    let kept = e.evaluate(at(60), std::slice::from_ref(&cool));
    assert_eq!(
        states(&kept.published),
        [("HighCpu".into(), AlertState::Firing)]
    );
    let kept = e.evaluate(at(119), std::slice::from_ref(&cool));
    assert_eq!(
        states(&kept.published),
        [("HighCpu".into(), AlertState::Firing)]
    );
    let resolved = e.evaluate(at(120), std::slice::from_ref(&cool));
    assert_eq!(
        states(&resolved.published),
        [("HighCpu".into(), AlertState::Resolved)]
    );
}

#[test]
fn scope_and_disabled_rules() {
    let mut e = Engine::new();
    e.set_rules(vec![
        rule(r#"{"name":"A","figure":"cpu.usage_percent","op":">","threshold":90,"scope":{"nodes":"db-.*"}}"#),
        rule(r#"{"name":"B","figure":"cpu.usage_percent","op":">","threshold":90,"scope":{"clusters":"prod"}}"#),
        rule(r#"{"name":"C","figure":"cpu.usage_percent","op":">","threshold":90,"enabled":false}"#),
    ]);
    let out = e.evaluate(
        at(0),
        &[view(&[node("db-1", 95.0), node("web-1", 95.0)], &[])],
    );
    let fired: Vec<(String, String)> = out
        .published
        .iter()
        .map(|a| (a.rule.clone(), a.labels["node"].clone()))
        .collect();
    assert_eq!(fired, [("A".to_owned(), "db-1".to_owned())]);
}

#[test]
fn mount_labels_and_missing_figures() {
    let mut e = Engine::new();
    e.set_rules(vec![
        rule(
            r#"{"name":"Full","figure":"disk.usage_percent","op":">","threshold":90,
                "annotations":{"summary":"{{mountpoint}} ({{device}}) {{value}}%"}}"#,
        ),
        rule(r#"{"name":"Psi","figure":"psi.memory_full","op":">=","threshold":0}"#),
    ]);
    let mut n = node("n1", 1.0);
    n.disks.push(DiskMetrics {
        device: "sdb1".into(),
        mount_point: "/data".into(),
        total: 10,
        usage_percent: 97.0,
        ..DiskMetrics::default()
    });
    let out = e.evaluate(at(0), &[view(&[n], &[])]);
    assert_eq!(
        out.published.len(),
        1,
        "no PSI: no series, not a 0 that holds"
    );
    let a = &out.published[0];
    assert_eq!(a.labels["mountpoint"], "/data");
    assert_eq!(a.labels["device"], "sdb1");
    assert_eq!(a.annotations["summary"], "/data (sdb1) 97%");
}

/// A node that goes stale resolves its HighCpu and gets NodeDown; a silent agent gets
/// AgentDown; nothing fires on frozen numbers.
#[tokio::test(start_paused = true)]
async fn staleness_node_down_and_agent_down_instead_of_frozen_figures() {
    let hub = DataHub::with_offline_after(Duration::from_secs(60));
    let mut e = Engine::new();
    let builtins: Vec<Arc<Rule>> = super::builtin::builtin_rules()
        .into_iter()
        .map(|s| Arc::new(Rule::compile(s).unwrap()))
        .collect();
    let mut rules = builtins;
    rules.push(rule(
        r#"{"name":"HotNow","figure":"cpu.usage_percent","op":">","threshold":90}"#,
    ));
    e.set_rules(rules);
    let entry = hub.entry("c");
    let publish = |nodes: &[NodeMetricsSnapshot], offline: &[&str]| {
        let v = view(nodes, offline);
        entry.publish(Arc::new(ClusterView::new(
            ClusterSnapshot {
                node_status: v.node_status.clone(),
                ..ClusterSnapshot::clone(&v.snapshot)
            },
            Utc::now(),
        )));
        entry.heard(Utc::now(), true);
    };
    let firing = |out: &super::engine::Evaluation| -> Vec<(String, Option<String>, AlertState)> {
        out.published
            .iter()
            .map(|a| (a.rule.clone(), a.labels.get("node").cloned(), a.state))
            .collect()
    };

    publish(&[node("n1", 99.0), node("n2", 10.0)], &[]);
    let out = e.evaluate(at(0), &hub.views());
    assert_eq!(
        firing(&out),
        [("HotNow".into(), Some("n1".into()), AlertState::Firing)]
    );

    // The agent says n1 stopped reporting; its last figures (99 %) are still in the snapshot.
    publish(&[node("n1", 99.0), node("n2", 10.0)], &["n1"]);
    let out = e.evaluate(at(15), &hub.views());
    assert_eq!(
        firing(&out),
        [("HotNow".into(), Some("n1".into()), AlertState::Resolved)],
        "no alert holds on a stale node's frozen figures"
    );
    assert_eq!(
        states(&e.running()),
        [("NodeDown".into(), AlertState::Pending)]
    );
    let out = e.evaluate(at(75), &hub.views());
    assert_eq!(
        firing(&out),
        [("NodeDown".into(), Some("n1".into()), AlertState::Firing)]
    );

    // The whole agent goes silent: AgentDown, and nothing of the cluster is evaluated on the
    // numbers it last sent (n2 hot now would not fire).
    publish(&[node("n1", 99.0), node("n2", 99.0)], &["n1"]);
    tokio::time::advance(Duration::from_secs(61)).await;
    let out = e.evaluate(at(90), &hub.views());
    assert_eq!(
        firing(&out),
        [("NodeDown".into(), Some("n1".into()), AlertState::Resolved)]
    );
    assert_eq!(
        states(&e.running()),
        [("AgentDown".into(), AlertState::Pending)]
    );
    let out = e.evaluate(at(150), &hub.views());
    assert_eq!(
        firing(&out),
        [("AgentDown".into(), None, AlertState::Firing)]
    );
    assert_eq!(out.published[0].labels["cluster"], "c");

    // Back: the agent is heard, n2 is hot and online, AgentDown resolves.
    entry.heard(Utc::now(), true);
    let out = e.evaluate(at(165), &hub.views());
    let mut got = firing(&out);
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        [
            ("AgentDown".into(), None, AlertState::Resolved),
            ("HotNow".into(), Some("n2".into()), AlertState::Firing)
        ]
    );
}

#[derive(Default)]
struct Collect(Mutex<Vec<(DateTime<Utc>, Vec<Alert>)>>);

impl AlertPublisher for Collect {
    fn publish(&self, evaluated_at: DateTime<Utc>, alerts: Vec<Alert>) {
        self.0.lock().push((evaluated_at, alerts));
    }
}

fn hub_with(nodes: &[NodeMetricsSnapshot]) -> DataHub {
    let hub = DataHub::new();
    let entry = hub.entry("c");
    let v = view(nodes, &[]);
    entry.publish(Arc::new(ClusterView::new(
        ClusterSnapshot {
            node_status: v.node_status.clone(),
            ..ClusterSnapshot::clone(&v.snapshot)
        },
        Utc::now(),
    )));
    entry.heard(Utc::now(), true);
    hub
}

fn settings_with(rules: &[&str]) -> AlertSettings {
    AlertSettings {
        file_rules: rules
            .iter()
            .map(|j| from_json(j.as_bytes()).unwrap())
            .collect::<Vec<RuleSpec>>(),
        ..AlertSettings::default()
    }
}

/// A running `for` survives a restart over SQLite, and a firing alert comes back firing with
/// its original `fired_at` (so notification knows it was already sent).
#[tokio::test]
async fn restart_keeps_a_running_for_and_firing_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let hot = hub_with(&[node("n1", 95.0)]);
    let metrics = MemoryStore::new();
    let rules = [
        HIGH_CPU_10M,
        r#"{"name":"HotNow","figure":"cpu.usage_percent","op":">","threshold":90}"#,
    ];
    {
        let store = Arc::new(SqliteStore::open(&path).unwrap());
        let publisher = Arc::new(Collect::default());
        let a = Alerting::new(store.clone(), publisher.clone(), settings_with(&rules));
        a.load().await.unwrap();
        a.evaluate(&hot, &metrics, at(0)).await;
        a.evaluate(&hot, &metrics, at(300)).await;
        assert_eq!(
            states(&store.active_alerts().await.unwrap()).len(),
            2,
            "pending and firing saved"
        );
        let published = publisher.0.lock();
        assert_eq!(
            states(&published[1].1),
            [("HotNow".into(), AlertState::Firing)]
        );
    }
    // Restart: a new engine over the same file.
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let publisher = Arc::new(Collect::default());
    let a = Alerting::new(store.clone(), publisher.clone(), settings_with(&rules));
    a.load().await.unwrap();
    let mut restored = states(&a.running());
    restored.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        restored,
        [
            ("HighCpu".into(), AlertState::Pending),
            ("HotNow".into(), AlertState::Firing)
        ]
    );
    a.evaluate(&hot, &metrics, at(400)).await;
    a.evaluate(&hot, &metrics, at(600)).await;
    let published = publisher.0.lock();
    let (_, at400) = &published[0];
    assert_eq!(
        states(at400),
        [("HotNow".into(), AlertState::Firing)],
        "HighCpu still pending"
    );
    assert_eq!(at400[0].fired_at, Some(at(0)), "not a new firing");
    let (_, at600) = &published[1];
    let high = at600.iter().find(|a| a.rule == "HighCpu").unwrap();
    assert_eq!(
        high.state,
        AlertState::Firing,
        "fired 10 minutes after it started, restart or not"
    );
    assert_eq!(high.active_at, at(0));
    assert_eq!(high.fired_at, Some(at(600)));
}

/// DiskWillFillIn24h-like rule: a disk growing 1 %/h from 65 % reaches 95 % in 24 h (no alert);
/// growing 2 %/h it reaches 100 % (alert), the regression fed by the engine's own samples.
#[test]
fn predict_fires_only_for_a_disk_that_fills_in_time() {
    let r = rule(
        r#"{"name":"Fill","figure":"disk.usage_percent","op":">=","threshold":100,
            "predict":{"lookback":"6h","within":"24h","current_above":60}}"#,
    );
    for (per_hour, fires) in [(1.0, false), (2.0, true)] {
        let mut e = Engine::new();
        e.set_rules(vec![Arc::clone(&r)]);
        let mut last = None;
        for step in 0..=60 {
            let secs = step * 360;
            let mut n = node("n1", 1.0);
            n.disks[0].usage_percent = 65.0 + per_hour * secs as f64 / 3600.0;
            last = Some(e.evaluate(at(secs), &[view(&[n], &[])]));
        }
        let out = last.unwrap();
        assert_eq!(!out.published.is_empty(), fires, "{per_hour} %/h");
        if fires {
            let v = out.published[0].value;
            // 65 + 2*6 = 77 now, + 48 in 24 h = 125.
            assert!((v - 125.0).abs() < 0.5, "{v}");
        }
    }
}

/// After a restart the prediction needs no 6 hours of fresh samples: it reads stored history.
#[tokio::test]
async fn predict_seeds_from_stored_history() {
    let metrics = MemoryStore::new();
    let now = Utc::now();
    let mut n = node("n1", 1.0);
    n.timestamp = now;
    n.disks[0].usage_percent = 88.0;
    // Six hours of 5-minute points of the primary disk growing 2 %/h up to 88 %.
    let points: Vec<MetricsDataPoint> = (0..72)
        .map(|i| {
            let ago = TimeDelta::minutes(5 * (72 - i));
            MetricsDataPoint {
                timestamp: now - ago,
                disk_usage: 88.0 - 2.0 * ago.num_seconds() as f64 / 3600.0,
                ..MetricsDataPoint::from_snapshot(&n)
            }
        })
        .collect();
    metrics.append_history("c", &points).await.unwrap();
    let hub = hub_with(&[n]);
    let publisher = Arc::new(Collect::default());
    let a = Alerting::new(
        Arc::new(MemoryStore::new()),
        publisher.clone(),
        settings_with(&[
            r#"{"name":"Fill","figure":"disk.usage_percent","op":">=","threshold":100,
            "predict":{"lookback":"6h","within":"24h"}}"#,
        ]),
    );
    a.load().await.unwrap();
    a.evaluate(&hub, &metrics, now).await;
    a.evaluate(&hub, &metrics, now + TimeDelta::seconds(15))
        .await;
    let published = publisher.0.lock();
    assert!(
        published[0].1.is_empty(),
        "first pass: one sample, history asked for"
    );
    let fill = published[1]
        .1
        .iter()
        .find(|a| a.rule == "Fill")
        .expect("fires on stored history");
    assert!((fill.value - 136.0).abs() < 1.0, "{}", fill.value);
}

/// `(rule, node, state)` of every running alert, in fingerprint order.
fn running_by_node(e: &Engine) -> Vec<(String, String, AlertState)> {
    e.running()
        .iter()
        .map(|a| (a.rule.clone(), a.labels["node"].clone(), a.state))
        .collect()
}

/// 200 healthy nodes for many evaluations (only the shared compare runs for them), then one
/// turns hot: it goes pending at that evaluation and fires `for` later, not earlier, and its
/// `active_at` is when it turned.
#[test]
fn a_node_turning_hot_after_many_healthy_evaluations_goes_pending_then_firing_on_time() {
    let mut e = Engine::new();
    e.set_rules(vec![rule(HIGH_CPU_10M)]);
    let healthy: Vec<NodeMetricsSnapshot> =
        (0..200).map(|i| node(&format!("n{i:03}"), 20.0)).collect();
    let cool = view(&healthy, &[]);
    for step in 0..40 {
        let out = e.evaluate(at(step * 15), std::slice::from_ref(&cool));
        assert!(out.published.is_empty() && out.changes.is_empty());
    }
    let mut turned = healthy.clone();
    turned[137].cpu.usage_percent = 97.0;
    let hot = view(&turned, &[]);
    let first = e.evaluate(at(600), std::slice::from_ref(&hot));
    assert_eq!(first.changes.upsert.len(), 1);
    assert_eq!(first.changes.upsert[0].labels["node"], "n137");
    assert_eq!(first.changes.upsert[0].active_at, at(600));
    assert_eq!(
        running_by_node(&e),
        [("HighCpu".into(), "n137".into(), AlertState::Pending)]
    );
    let before = e.evaluate(at(1185), std::slice::from_ref(&hot));
    assert!(before.published.is_empty(), "9 min 45 s: still pending");
    let fired = e.evaluate(at(1200), std::slice::from_ref(&hot));
    assert_eq!(
        states(&fired.published),
        [("HighCpu".into(), AlertState::Firing)]
    );
    assert_eq!(fired.published[0].fired_at, Some(at(1200)));
    assert_eq!(fired.published[0].active_at, at(600));
}

/// A node that leaves the snapshot drops its pending alert (and resolves a firing one); when
/// it comes back hot its `for` starts over, and a node taking its roster position in between
/// gets its own alert, never the one that left.
#[test]
fn a_node_leaving_and_returning_starts_over() {
    let mut e = Engine::new();
    e.set_rules(vec![
        rule(HIGH_CPU_10M),
        rule(r#"{"name":"HotNow","figure":"cpu.usage_percent","op":">","threshold":90}"#),
    ]);
    let all = [node("a", 95.0), node("b", 95.0), node("c", 10.0)];
    e.evaluate(at(0), &[view(&all, &[])]);
    assert_eq!(running_by_node(&e).len(), 4);

    // b leaves; a new hot node "ba" takes its position among the sorted names.
    let without = [node("a", 95.0), node("ba", 95.0), node("c", 10.0)];
    let out = e.evaluate(at(15), &[view(&without, &[])]);
    let resolved: Vec<(String, String)> = out
        .changes
        .history
        .iter()
        .map(|a| (a.rule.clone(), a.labels["node"].clone()))
        .collect();
    assert_eq!(resolved, [("HotNow".to_owned(), "b".to_owned())]);
    assert_eq!(out.changes.remove.len(), 2, "b's pending and firing alerts");
    let mut running: Vec<(String, String, AlertState)> = running_by_node(&e);
    running.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    assert_eq!(
        running,
        [
            ("HighCpu".into(), "a".into(), AlertState::Pending),
            ("HighCpu".into(), "ba".into(), AlertState::Pending),
            ("HotNow".into(), "a".into(), AlertState::Firing),
            ("HotNow".into(), "ba".into(), AlertState::Firing),
        ]
    );
    let ba = e
        .running()
        .into_iter()
        .find(|a| a.rule == "HighCpu" && a.labels["node"] == "ba")
        .unwrap();
    assert_eq!(ba.active_at, at(15), "a new alert, not b's");

    // b is back, hot: a new `for` from now.
    let back = [
        node("a", 95.0),
        node("b", 95.0),
        node("ba", 95.0),
        node("c", 10.0),
    ];
    e.evaluate(at(30), &[view(&back, &[])]);
    let b = e
        .running()
        .into_iter()
        .find(|a| a.rule == "HighCpu" && a.labels["node"] == "b")
        .unwrap();
    assert_eq!((b.state, b.active_at), (AlertState::Pending, at(30)));
    let out = e.evaluate(at(615), &[view(&back, &[])]);
    let fired: Vec<String> = out
        .changes
        .upsert
        .iter()
        .map(|a| a.labels["node"].clone())
        .collect();
    assert_eq!(fired, ["a", "ba"], "a from 0 and ba from 15 fire; b waits");
}

/// Rules edited between evaluations: a raised threshold stops the condition (pending dropped),
/// a lowered one starts it, new labels give a new alert; rules sharing one compare but not
/// their scope each keep to their scope.
#[test]
fn rules_edited_mid_run_and_rules_sharing_a_compare() {
    let mut e = Engine::new();
    let a = |threshold: u32| {
        rule(&format!(
            r#"{{"name":"A","figure":"cpu.usage_percent","op":">","threshold":{threshold},"for":"1m"}}"#
        ))
    };
    let scoped = rule(
        r#"{"name":"B","figure":"cpu.usage_percent","op":">","threshold":50,"scope":{"nodes":"db-.*"}}"#,
    );
    e.set_rules(vec![a(50), Arc::clone(&scoped)]);
    let nodes = view(&[node("db-1", 60.0), node("web-1", 70.0)], &[]);
    e.evaluate(at(0), std::slice::from_ref(&nodes));
    let mut running = running_by_node(&e);
    running.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    assert_eq!(
        running,
        [
            ("A".into(), "db-1".into(), AlertState::Pending),
            ("A".into(), "web-1".into(), AlertState::Pending),
            ("B".into(), "db-1".into(), AlertState::Firing),
        ]
    );

    // A raised above db-1's 60: db-1's A is dropped, web-1's goes on and fires on time.
    e.set_rules(vec![a(65), Arc::clone(&scoped)]);
    let out = e.evaluate(at(60), std::slice::from_ref(&nodes));
    assert_eq!(out.changes.remove.len(), 1);
    let mut fired: Vec<(String, String)> = out
        .published
        .iter()
        .map(|a| (a.rule.clone(), a.labels["node"].clone()))
        .collect();
    fired.sort();
    assert_eq!(
        fired,
        [
            ("A".to_owned(), "web-1".to_owned()),
            ("B".to_owned(), "db-1".to_owned())
        ]
    );

    // Lowered again: db-1's A starts a new `for`.
    e.set_rules(vec![a(50), Arc::clone(&scoped)]);
    e.evaluate(at(75), std::slice::from_ref(&nodes));
    let db = e
        .running()
        .into_iter()
        .find(|x| x.rule == "A" && x.labels["node"] == "db-1")
        .unwrap();
    assert_eq!((db.state, db.active_at), (AlertState::Pending, at(75)));

    // New labels: a new fingerprint; the old alert of web-1 is removed, the new one pending.
    e.set_rules(vec![rule(
        r#"{"name":"A","figure":"cpu.usage_percent","op":">","threshold":50,"for":"1m","labels":{"team":"x"}}"#,
    )]);
    let out = e.evaluate(at(90), std::slice::from_ref(&nodes));
    assert_eq!(out.changes.remove.len(), 3, "old A twice, B");
    let mut upserts: Vec<(String, Option<String>)> = out
        .changes
        .upsert
        .iter()
        .map(|a| (a.labels["node"].clone(), a.labels.get("team").cloned()))
        .collect();
    upserts.sort();
    assert_eq!(
        upserts,
        [
            ("db-1".to_owned(), Some("x".to_owned())),
            ("web-1".to_owned(), Some("x".to_owned()))
        ]
    );
}

/// A device mounted twice is one series for a disk figure and two for a mount figure.
#[test]
fn disk_figures_count_a_device_once() {
    let mut e = Engine::new();
    e.set_rules(vec![
        rule(r#"{"name":"Busy","figure":"disk.io_util","op":">","threshold":90}"#),
        rule(r#"{"name":"Full","figure":"disk.usage_percent","op":">","threshold":90}"#),
    ]);
    let mut n = node("n1", 1.0);
    n.disks.clear();
    for mount in ["/data", "/again"] {
        n.disks.push(DiskMetrics {
            device: "sdb1".into(),
            mount_point: mount.into(),
            total: 10,
            usage_percent: 95.0,
            io_util: 99.0,
            ..DiskMetrics::default()
        });
    }
    let out = e.evaluate(at(0), &[view(&[n], &[])]);
    let mut got: Vec<(String, Option<String>)> = out
        .published
        .iter()
        .map(|a| (a.rule.clone(), a.labels.get("mountpoint").cloned()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("Busy".to_owned(), None),
            ("Full".to_owned(), Some("/again".to_owned())),
            ("Full".to_owned(), Some("/data".to_owned())),
        ]
    );
}
