//! One contract, run against every engine: each test in `suite` runs once per engine.

mod common;

use std::time::Duration;

use atlhyper_model::AgentState;
use atlhyper_model::{Alert, AlertState, CommandResult, CommandStatus, Labels, fingerprint};
use atlhyper_store::{
    AgentRegistry, AgentSeen, AlertChanges, AlertHistoryQuery, AlertRuleRecord, CommandFilter,
    CommandQueue, DEFAULT_LIST_LIMIT, DeliveryResult, HistoryQuery, NotificationRecord,
    NotifiedGroup, SeenVia, Silence, SilenceMatcher, StoreError,
};
use common::{Store, command, point, snapshot, t};

fn q(cluster: &str, node: &str, from: i64, to: i64, max: Option<usize>) -> HistoryQuery {
    HistoryQuery {
        cluster_id: cluster.to_owned(),
        node_name: node.to_owned(),
        from: t(from),
        to: t(to),
        max_points: max,
    }
}

fn result(cluster: &str, id: &str, success: bool) -> CommandResult {
    CommandResult {
        cluster_id: cluster.to_owned(),
        command_id: id.to_owned(),
        success,
        output: "{\"ok\":true}".to_owned(),
        error: if success {
            String::new()
        } else {
            "boom".to_owned()
        },
        exec_time_ms: 12,
    }
}

fn seen(cluster: &str, version: &str, addr: &str, at: i64, via: SeenVia) -> AgentSeen {
    AgentSeen {
        cluster_id: cluster.to_owned(),
        agent_version: version.to_owned(),
        remote_addr: addr.to_owned(),
        at: t(at),
        via,
    }
}

const LEASE: Duration = Duration::from_secs(30);

fn alert(name: &str, cluster: &str, node: &str, state: AlertState, at: i64) -> Alert {
    let labels: Labels = [("alertname", name), ("cluster", cluster), ("node", node)]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    Alert {
        fingerprint: fingerprint(&labels),
        rule: name.to_owned(),
        labels: labels.into(),
        annotations: Default::default(),
        state,
        value: 91.25,
        active_at: t(at),
        fired_at: (state != AlertState::Pending).then(|| t(at + 60)),
        resolved_at: (state == AlertState::Resolved).then(|| t(at + 120)),
        evaluated_at: t(at + 120),
    }
}

fn rule(name: &str, body: &str, at: i64) -> AlertRuleRecord {
    AlertRuleRecord {
        name: name.to_owned(),
        body: body.to_owned(),
        updated_at: t(at),
    }
}

fn silence(id: &str, starts: i64, ends: i64) -> Silence {
    Silence {
        id: id.to_owned(),
        matchers: vec![
            SilenceMatcher {
                name: "alertname".to_owned(),
                value: "HighCpu".to_owned(),
                is_regex: false,
                is_equal: true,
            },
            SilenceMatcher {
                name: "node".to_owned(),
                value: "worker-.*".to_owned(),
                is_regex: true,
                is_equal: false,
            },
        ],
        starts_at: t(starts),
        ends_at: t(ends),
        created_by: "ops@example".to_owned(),
        comment: "maintenance \u{1f6e0}".to_owned(),
        updated_at: t(starts) + chrono::TimeDelta::nanoseconds(7),
    }
}

fn notified(receiver: &str, group: &str, firing: &[&str], at: i64) -> NotifiedGroup {
    NotifiedGroup {
        receiver: receiver.to_owned(),
        group_key: group.to_owned(),
        firing: firing.iter().map(|f| f.to_string()).collect(),
        resolved: vec!["00000000000000ff".to_owned()],
        sent_at: t(at),
    }
}

fn delivery(receiver: &str, at: i64, result: DeliveryResult) -> NotificationRecord {
    NotificationRecord {
        at: t(at),
        receiver: receiver.to_owned(),
        group_key: "{}:{alertname=\"NodeDown\"}".to_owned(),
        firing: 1000,
        resolved: 2,
        attempts: 3,
        result,
        error: if result == DeliveryResult::Sent {
            String::new()
        } else {
            "connection refused".to_owned()
        },
    }
}

mod suite {
    use super::*;

    pub async fn latest_upsert_get_list(s: &impl Store) {
        let a = snapshot("worker-b", t(0), 10.0);
        let b = snapshot("worker-a", t(0), 20.0);
        s.upsert_latest("prod", &[a.clone(), b.clone()])
            .await
            .unwrap();
        s.upsert_latest("dev", &[snapshot("n1", t(5), 1.0)])
            .await
            .unwrap();
        assert_eq!(
            s.get_latest("prod", "worker-b").await.unwrap(),
            Some(a.clone())
        );
        assert_eq!(s.get_latest("prod", "nope").await.unwrap(), None);
        assert_eq!(s.get_latest("nope", "worker-b").await.unwrap(), None);
        assert_eq!(s.list_latest("prod").await.unwrap(), vec![b, a]);
        assert!(s.list_latest("nope").await.unwrap().is_empty());
        assert_eq!(s.list_clusters().await.unwrap(), ["dev", "prod"]);
        assert_eq!(
            s.list_nodes("prod").await.unwrap(),
            ["worker-a", "worker-b"]
        );
        assert!(s.list_nodes("nope").await.unwrap().is_empty());
    }

    pub async fn latest_deletes_leave_history(s: &impl Store) {
        s.upsert_latest(
            "prod",
            &[snapshot("a", t(10), 1.0), snapshot("b", t(20), 2.0)],
        )
        .await
        .unwrap();
        s.upsert_latest("dev", &[snapshot("a", t(10), 3.0)])
            .await
            .unwrap();
        s.append_history("prod", &[point("a", t(10), 1.0)])
            .await
            .unwrap();

        assert!(s.delete_latest("prod", "a").await.unwrap());
        assert!(!s.delete_latest("prod", "a").await.unwrap(), "already gone");
        assert!(!s.delete_latest("nope", "a").await.unwrap());
        assert_eq!(s.get_latest("prod", "a").await.unwrap(), None);
        assert_eq!(s.list_latest("prod").await.unwrap().len(), 1);
        assert!(
            s.get_latest("dev", "a").await.unwrap().is_some(),
            "the same node name in another cluster stays"
        );
        // History stays, so the node is still listed.
        assert_eq!(s.list_nodes("prod").await.unwrap(), ["a", "b"]);
        assert_eq!(
            s.history(&q("prod", "a", 0, 100, None))
                .await
                .unwrap()
                .len(),
            1
        );

        assert_eq!(s.delete_cluster_latest("prod").await.unwrap(), 1);
        assert_eq!(s.delete_cluster_latest("prod").await.unwrap(), 0);
        assert_eq!(s.delete_cluster_latest("nope").await.unwrap(), 0);
        assert!(s.list_latest("prod").await.unwrap().is_empty());
        assert_eq!(s.list_clusters().await.unwrap(), ["dev", "prod"]);
        assert_eq!(s.list_nodes("prod").await.unwrap(), ["a"], "history only");
        assert_eq!(s.list_latest("dev").await.unwrap().len(), 1);

        // A deleted node comes back when it reports again.
        s.upsert_latest("prod", &[snapshot("b", t(5), 4.0)])
            .await
            .unwrap();
        assert_eq!(
            s.get_latest("prod", "b").await.unwrap().unwrap().timestamp,
            t(5)
        );
    }

    pub async fn retire_deletes_silent_latest(s: &impl Store) {
        s.upsert_latest(
            "prod",
            &[
                snapshot("old", t(10), 1.0),
                snapshot("edge", t(50), 2.0),
                snapshot("new", t(90), 3.0),
            ],
        )
        .await
        .unwrap();
        s.upsert_latest("dev", &[snapshot("old", t(0), 3.0)])
            .await
            .unwrap();
        s.append_history("prod", &[point("old", t(10), 1.0)])
            .await
            .unwrap();
        assert!(s.retire_latest(t(0)).await.unwrap().is_empty());
        let retired = s.retire_latest(t(50)).await.unwrap();
        let names: Vec<(&str, &str)> = retired
            .iter()
            .map(|k| (k.cluster_id.as_str(), k.node_name.as_str()))
            .collect();
        assert_eq!(names, [("dev", "old"), ("prod", "old")], "before, not at");
        assert!(s.retire_latest(t(50)).await.unwrap().is_empty());
        let left: Vec<String> = s
            .list_latest("prod")
            .await
            .unwrap()
            .into_iter()
            .map(|n| n.node_name)
            .collect();
        assert_eq!(left, ["edge", "new"]);
        assert!(s.list_latest("dev").await.unwrap().is_empty());
        assert_eq!(s.list_clusters().await.unwrap(), ["prod"]);
        assert_eq!(
            s.history(&q("prod", "old", 0, 100, None))
                .await
                .unwrap()
                .len(),
            1,
            "history stays"
        );
        // Far past and far future do not fail.
        assert!(
            s.retire_latest(chrono::DateTime::<chrono::Utc>::MIN_UTC)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            s.retire_latest(chrono::DateTime::<chrono::Utc>::MAX_UTC)
                .await
                .unwrap()
                .len(),
            2
        );
    }

    pub async fn latest_is_the_last_written(s: &impl Store) {
        // Arrival order, not the node's clock: a snapshot stamped far ahead does not pin the
        // node's latest; the next one written replaces it whatever its timestamp.
        let ahead = snapshot("n", t(1_000_000), 50.0);
        s.upsert_latest("c", std::slice::from_ref(&ahead))
            .await
            .unwrap();
        assert_eq!(s.get_latest("c", "n").await.unwrap(), Some(ahead));
        let normal = snapshot("n", t(99), 1.0);
        s.upsert_latest("c", std::slice::from_ref(&normal))
            .await
            .unwrap();
        assert_eq!(s.get_latest("c", "n").await.unwrap(), Some(normal));
        // Same timestamp: the later write wins; within a batch the later entry, whatever
        // the timestamps.
        let tie = snapshot("n", t(99), 60.0);
        let last = snapshot("n", t(99), 70.0);
        s.upsert_latest("c", &[tie, last.clone()]).await.unwrap();
        assert_eq!(s.get_latest("c", "n").await.unwrap(), Some(last));
        let older_last = snapshot("n", t(150), 9.0);
        s.upsert_latest("c", &[snapshot("n", t(200), 5.0), older_last.clone()])
            .await
            .unwrap();
        assert_eq!(
            s.get_latest("c", "n").await.unwrap(),
            Some(older_last.clone())
        );
        assert_eq!(s.list_latest("c").await.unwrap(), vec![older_last]);
    }

    pub async fn latest_rejects_bad_batches_whole(s: &impl Store) {
        let good = snapshot("n1", t(0), 10.0);
        let unnamed = snapshot("", t(0), 10.0);
        let err = s
            .upsert_latest("c", &[good.clone(), unnamed])
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err}");
        let nan = snapshot("n2", t(0), f64::NAN);
        let err = s
            .upsert_latest("c", &[good.clone(), nan])
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err}");
        let err = s
            .upsert_latest("", std::slice::from_ref(&good))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err}");
        assert!(s.list_latest("c").await.unwrap().is_empty());
        assert!(s.list_clusters().await.unwrap().is_empty());
        s.upsert_latest("c", &[]).await.unwrap();
        assert!(s.list_clusters().await.unwrap().is_empty());
    }

    pub async fn history_append_is_idempotent(s: &impl Store) {
        let pts = [
            point("n", t(0), 1.0),
            point("n", t(300), 2.0),
            point("n", t(600), 3.0),
        ];
        assert_eq!(s.append_history("c", &pts).await.unwrap(), 3);
        let again = [
            point("n", t(300), 99.0),
            point("n", t(900), 4.0),
            point("n", t(900), 5.0),
        ];
        assert_eq!(s.append_history("c", &again).await.unwrap(), 1);
        let got = s.history(&q("c", "n", 0, 900, None)).await.unwrap();
        let cpu: Vec<f64> = got.iter().map(|p| p.cpu_usage).collect();
        assert_eq!(cpu, [1.0, 2.0, 3.0, 4.0], "first stored point wins");
        assert_eq!(got[1], pts[1]);
        assert_eq!(s.append_history("c", &[]).await.unwrap(), 0);
    }

    pub async fn history_range_is_inclusive_and_per_node(s: &impl Store) {
        let mut pts = Vec::new();
        for i in 0..10 {
            pts.push(point("a", t(i * 60), i as f64));
            pts.push(point("b", t(i * 60), 100.0 + i as f64));
        }
        s.append_history("c", &pts).await.unwrap();
        s.append_history("other", &[point("a", t(60), 7.5)])
            .await
            .unwrap();
        let got = s.history(&q("c", "a", 60, 180, None)).await.unwrap();
        assert_eq!(got, vec![pts[2].clone(), pts[4].clone(), pts[6].clone()]);
        assert!(
            s.history(&q("c", "a", 181, 239, None))
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            s.history(&q("c", "zz", 0, 900, None))
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            s.history(&q("c", "a", 180, 60, None))
                .await
                .unwrap()
                .is_empty()
        );
        let other = s.history(&q("other", "a", 0, 900, None)).await.unwrap();
        assert_eq!(other.len(), 1);
        assert_eq!(other[0].cpu_usage, 7.5);
        assert_eq!(s.list_clusters().await.unwrap(), ["c", "other"]);
        assert_eq!(s.list_nodes("c").await.unwrap(), ["a", "b"]);
    }

    pub async fn history_keeps_nanoseconds(s: &impl Store) {
        let at = t(10) + chrono::TimeDelta::nanoseconds(123_456_789);
        let p = point("n", at, 0.1 + 0.2);
        s.append_history("c", std::slice::from_ref(&p))
            .await
            .unwrap();
        let got = s.history(&q("c", "n", 10, 11, None)).await.unwrap();
        assert_eq!(got, vec![p]);
    }

    pub async fn history_rejects_bad_points_whole(s: &impl Store) {
        let good = point("n", t(0), 1.0);
        for bad in [
            point("", t(1), 1.0),
            point("n", t(2), f64::NAN),
            point("n", t(3), f64::INFINITY),
            point("n", chrono::DateTime::<chrono::Utc>::MAX_UTC, 1.0),
        ] {
            let err = s
                .append_history("c", &[good.clone(), bad])
                .await
                .unwrap_err();
            assert!(matches!(err, StoreError::Invalid(_)), "{err}");
        }
        assert!(
            s.history(&q("c", "n", -10, 10, None))
                .await
                .unwrap()
                .is_empty()
        );
        let err = s.append_history("", &[good]).await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err}");
        let err = s.history(&q("c", "n", 0, 10, Some(0))).await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    }

    pub async fn history_downsamples_to_bucket_means(s: &impl Store) {
        // 30 days at 5 minutes: 8,640 points, cpu = index.
        let pts: Vec<_> = (0..8640)
            .map(|i| point("n", t(i * 300), i as f64))
            .collect();
        for chunk in pts.chunks(1000) {
            s.append_history("c", chunk).await.unwrap();
        }
        let to = 8639 * 300;
        assert_eq!(s.history(&q("c", "n", 0, to, None)).await.unwrap(), pts);
        // Fewer points than the limit: returned as stored.
        assert_eq!(
            s.history(&q("c", "n", 0, to, Some(8640))).await.unwrap(),
            pts
        );

        let got = s.history(&q("c", "n", 0, to, Some(500))).await.unwrap();
        assert!(got.len() <= 500 && got.len() >= 490, "{} points", got.len());
        // Each bucket is a run of consecutive indices; its mean is the mean of the run, its
        // timestamp the run's first point.
        let mut next = 0i64;
        for p in &got {
            let first = (p.timestamp - t(0)).num_seconds() / 300;
            assert_eq!(first, next, "buckets cover every point in order");
            let n = got
                .iter()
                .map(|q| (q.timestamp - t(0)).num_seconds() / 300)
                .find(|&f| f > first)
                .unwrap_or(8640)
                - first;
            let mean = (first + first + n - 1) as f64 / 2.0;
            assert!(
                (p.cpu_usage - mean).abs() < 1e-9,
                "{} vs {mean}",
                p.cpu_usage
            );
            assert!((p.disk_io_read - mean * 1000.0).abs() < 1e-6);
            assert_eq!(p.disk_usage, 40.0);
            assert_eq!(p.node_name, "n");
            next = first + n;
        }
        assert_eq!(next, 8640);
        // One point allowed: the mean of everything.
        let one = s.history(&q("c", "n", 0, to, Some(1))).await.unwrap();
        assert_eq!(one.len(), 1);
        assert!((one[0].cpu_usage - 4319.5).abs() < 1e-9);
        assert_eq!(one[0].timestamp, t(0));
    }

    pub async fn prune_deletes_old_points_and_empty_nodes(s: &impl Store) {
        let mut pts = Vec::new();
        for i in 0..10 {
            pts.push(point("old", t(i), 1.0));
            pts.push(point("mixed", t(i * 10), 1.0));
        }
        s.append_history("c", &pts).await.unwrap();
        s.append_history("gone", &[point("x", t(1), 1.0)])
            .await
            .unwrap();
        s.upsert_latest("gone", &[snapshot("kept", t(1), 1.0)])
            .await
            .unwrap();
        // old: 0..9 all < 50; mixed: 0,10,..,40 < 50; gone/x.
        assert_eq!(s.prune_history(t(50)).await.unwrap(), 10 + 5 + 1);
        assert_eq!(s.prune_history(t(50)).await.unwrap(), 0);
        assert_eq!(s.list_nodes("c").await.unwrap(), ["mixed"]);
        assert_eq!(s.list_nodes("gone").await.unwrap(), ["kept"]);
        assert_eq!(s.list_clusters().await.unwrap(), ["c", "gone"]);
        let left = s.history(&q("c", "mixed", 0, 1000, None)).await.unwrap();
        assert_eq!(left.first().map(|p| p.timestamp), Some(t(50)));
        assert_eq!(left.len(), 5);
        // The pruned node comes back when it reports again.
        s.append_history("c", &[point("old", t(60), 2.0)])
            .await
            .unwrap();
        assert_eq!(s.list_nodes("c").await.unwrap(), ["mixed", "old"]);
    }

    pub async fn deleted_nodes_written_again_get_their_rows(s: &impl Store) {
        // Every way a node's rows go: its latest deleted alone, its cluster's deleted, its
        // latest retired, its history pruned (SQLite then deletes the node's own row too).
        s.upsert_latest(
            "prod",
            &[snapshot("a", t(10), 1.0), snapshot("b", t(10), 1.0)],
        )
        .await
        .unwrap();
        s.append_history("prod", &[point("a", t(10), 1.0), point("b", t(10), 1.0)])
            .await
            .unwrap();
        assert!(s.delete_latest("prod", "a").await.unwrap());
        assert_eq!(s.delete_cluster_latest("prod").await.unwrap(), 1);
        assert_eq!(s.prune_history(t(20)).await.unwrap(), 2);
        assert!(s.list_nodes("prod").await.unwrap().is_empty());
        assert!(s.list_clusters().await.unwrap().is_empty());

        s.upsert_latest("prod", &[snapshot("a", t(30), 3.0)])
            .await
            .unwrap();
        assert_eq!(
            s.append_history("prod", &[point("a", t(30), 3.0), point("b", t(30), 3.0)])
                .await
                .unwrap(),
            2
        );
        let a = s.get_latest("prod", "a").await.unwrap().expect("a again");
        assert_eq!(a.timestamp, t(30));
        assert_eq!(s.list_latest("prod").await.unwrap().len(), 1);
        for node in ["a", "b"] {
            let h = s.history(&q("prod", node, 0, 100, None)).await.unwrap();
            assert_eq!(h.len(), 1, "{node}");
            assert_eq!(h[0].timestamp, t(30));
            assert_eq!(h[0].cpu_usage, 3.0);
        }
        assert_eq!(s.list_nodes("prod").await.unwrap(), ["a", "b"]);

        // Retired, then back.
        assert_eq!(s.retire_latest(t(40)).await.unwrap().len(), 1);
        assert_eq!(s.get_latest("prod", "a").await.unwrap(), None);
        s.upsert_latest("prod", &[snapshot("a", t(50), 5.0)])
            .await
            .unwrap();
        assert_eq!(
            s.get_latest("prod", "a")
                .await
                .unwrap()
                .map(|l| l.timestamp),
            Some(t(50))
        );
    }

    pub async fn newest_history_of_many_nodes(s: &impl Store) {
        s.append_history(
            "prod",
            &[
                point("a", t(10), 1.0),
                point("a", t(20), 1.0),
                point("a", t(50), 1.0),
                point("b", t(5), 1.0),
            ],
        )
        .await
        .unwrap();
        s.append_history("dev", &[point("c", t(30), 1.0)])
            .await
            .unwrap();
        let newest = s
            .newest_history("prod", &["a", "b", "c", "never", "a"], t(8), t(40))
            .await
            .unwrap();
        assert_eq!(newest, [Some(t(20)), None, None, None, Some(t(20))]);
        let newest = s
            .newest_history("prod", &["b", "a"], t(0), t(100))
            .await
            .unwrap();
        assert_eq!(newest, [Some(t(5)), Some(t(50))]);
        assert_eq!(
            s.newest_history("prod", &["a"], t(40), t(30))
                .await
                .unwrap(),
            [None],
            "an empty range"
        );
        assert!(
            s.newest_history("prod", &[], t(0), t(100))
                .await
                .unwrap()
                .is_empty()
        );
    }

    pub async fn enqueue_get_and_duplicates(s: &impl Store) {
        let mut c = command("id-1", "prod", "ping", 0, 60);
        c.status = CommandStatus::Success;
        c.finished_at = Some(t(1));
        s.enqueue(&c).await.unwrap();
        let got = s.get("id-1").await.unwrap().unwrap();
        assert_eq!(got.status, CommandStatus::Pending);
        assert_eq!(got.finished_at, None);
        assert_eq!(got.params, c.params);
        assert_eq!(got.created_at, c.created_at);
        let err = s
            .enqueue(&command("id-1", "dev", "ping", 5, 60))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err}");
        assert_eq!(s.get("id-1").await.unwrap().unwrap().cluster_id, "prod");
        assert_eq!(s.get("nope").await.unwrap(), None);
        for bad in [
            command("", "prod", "ping", 0, 1),
            command("x", "", "ping", 0, 1),
        ] {
            let err = s.enqueue(&bad).await.unwrap_err();
            assert!(matches!(err, StoreError::Invalid(_)), "{err}");
        }
    }

    pub async fn take_is_oldest_first_under_a_lease(s: &impl Store) {
        s.enqueue(&command("b", "prod", "ping", 10, 600))
            .await
            .unwrap();
        s.enqueue(&command("a", "prod", "ping", 10, 600))
            .await
            .unwrap();
        s.enqueue(&command("c", "prod", "ping", 5, 600))
            .await
            .unwrap();
        s.enqueue(&command("z", "dev", "ping", 0, 600))
            .await
            .unwrap();
        assert!(s.take("prod", 0, LEASE, t(20)).await.unwrap().is_empty());
        let first = s.take("prod", 2, LEASE, t(20)).await.unwrap();
        let ids: Vec<_> = first.iter().map(|c| c.command_id.as_str()).collect();
        assert_eq!(ids, ["c", "a"]);
        assert!(first.iter().all(|c| c.status == CommandStatus::Running));
        assert!(first.iter().all(|c| c.started_at == Some(t(20))));
        let second = s.take("prod", 10, LEASE, t(21)).await.unwrap();
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].command_id, "b");
        assert!(s.take("prod", 10, LEASE, t(49)).await.unwrap().is_empty());
        // The lease of c and a ends at t(50): their agent died, they are offered again.
        let again = s.take("prod", 10, LEASE, t(50)).await.unwrap();
        let ids: Vec<_> = again.iter().map(|c| c.command_id.as_str()).collect();
        assert_eq!(ids, ["c", "a"]);
        assert!(
            again.iter().all(|c| c.started_at == Some(t(20))),
            "first start kept"
        );
        assert_eq!(
            s.get("a").await.unwrap().unwrap().status,
            CommandStatus::Running
        );
        assert_eq!(s.take("dev", 10, LEASE, t(20)).await.unwrap().len(), 1);
        assert!(s.take("nope", 10, LEASE, t(20)).await.unwrap().is_empty());
    }

    pub async fn take_skips_overdue_and_finished(s: &impl Store) {
        s.enqueue(&command("late", "prod", "ping", 0, 10))
            .await
            .unwrap();
        s.enqueue(&command("edge", "prod", "ping", 0, 20))
            .await
            .unwrap();
        s.enqueue(&command("done", "prod", "ping", 0, 600))
            .await
            .unwrap();
        s.complete(&result("prod", "done", true), t(1))
            .await
            .unwrap();
        let got = s.take("prod", 10, LEASE, t(20)).await.unwrap();
        let ids: Vec<_> = got.iter().map(|c| c.command_id.as_str()).collect();
        assert_eq!(ids, ["edge"], "deadline == now is still on time");
    }

    pub async fn complete_only_from_the_owner(s: &impl Store) {
        s.enqueue(&command("x", "prod", "ping", 0, 600))
            .await
            .unwrap();
        s.take("prod", 1, LEASE, t(1)).await.unwrap();
        for r in [result("dev", "x", true), result("prod", "nope", true)] {
            let err = s.complete(&r, t(2)).await.unwrap_err();
            assert!(matches!(err, StoreError::NotFound(_)), "{err}");
        }
        assert_eq!(
            s.get("x").await.unwrap().unwrap().status,
            CommandStatus::Running
        );
        let done = s.complete(&result("prod", "x", false), t(3)).await.unwrap();
        assert_eq!(done.status, CommandStatus::Failed);
        assert_eq!(done.finished_at, Some(t(3)));
        assert_eq!(done.result, Some(result("prod", "x", false)));
        assert_eq!(s.get("x").await.unwrap().unwrap(), done);
        // A second result changes nothing.
        let again = s.complete(&result("prod", "x", true), t(4)).await.unwrap();
        assert_eq!(again, done);
        assert!(s.take("prod", 1, LEASE, t(100)).await.unwrap().is_empty());
        // A pending command can be completed directly.
        s.enqueue(&command("y", "prod", "ping", 0, 600))
            .await
            .unwrap();
        let y = s.complete(&result("prod", "y", true), t(5)).await.unwrap();
        assert_eq!(y.status, CommandStatus::Success);
        assert_eq!(y.started_at, None);
    }

    pub async fn list_filters_newest_first(s: &impl Store) {
        for i in 0..120 {
            let cluster = if i % 2 == 0 { "prod" } else { "dev" };
            let action = if i % 3 == 0 { "node_detail" } else { "ping" };
            s.enqueue(&command(&format!("c{i:03}"), cluster, action, i, 600))
                .await
                .unwrap();
        }
        s.take("prod", 5, LEASE, t(200)).await.unwrap();
        let all = CommandQueue::list(s, &CommandFilter::default())
            .await
            .unwrap();
        assert_eq!(all.len(), DEFAULT_LIST_LIMIT);
        assert_eq!(all[0].command_id, "c119");
        let every = CommandQueue::list(
            s,
            &CommandFilter {
                limit: Some(1000),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(every.len(), 120);
        assert!(every.windows(2).all(|w| w[0].created_at >= w[1].created_at));
        let f = CommandFilter {
            cluster_id: Some("prod".to_owned()),
            action: Some("node_detail".to_owned()),
            limit: Some(3),
            offset: 2,
            ..Default::default()
        };
        let ids: Vec<_> = CommandQueue::list(s, &f)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.command_id)
            .collect();
        // prod & node_detail: multiples of 6, newest first: 114, 108, [102, 96, 90].
        assert_eq!(ids, ["c102", "c096", "c090"]);
        let running = CommandFilter {
            status: Some(CommandStatus::Running),
            limit: Some(100),
            ..Default::default()
        };
        let ids: Vec<_> = CommandQueue::list(s, &running)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.command_id)
            .collect();
        assert_eq!(ids, ["c008", "c006", "c004", "c002", "c000"]);
        let past = CommandFilter {
            offset: 1000,
            ..Default::default()
        };
        assert!(CommandQueue::list(s, &past).await.unwrap().is_empty());
    }

    pub async fn prune_commands_deletes_finished_before(s: &impl Store) {
        for (id, created, ttl) in [
            ("a", 0, 100),
            ("b", 1, 100),
            ("c", 2, 3),
            ("d", 3, 100),
            ("e", 4, 100),
        ] {
            s.enqueue(&command(id, "prod", "ping", created, ttl))
                .await
                .unwrap();
        }
        assert_eq!(s.take("prod", 3, LEASE, t(4)).await.unwrap().len(), 3);
        s.complete(&result("prod", "a", true), t(6)).await.unwrap();
        s.complete(&result("prod", "b", false), t(7)).await.unwrap();
        let timed_out = s.expire(t(8)).await.unwrap();
        assert_eq!(timed_out.len(), 1, "c (deadline 5) times out at 8");
        assert_eq!(
            s.take("prod", 1, LEASE, t(9)).await.unwrap()[0].command_id,
            "d"
        );

        assert_eq!(s.prune_commands(t(7)).await.unwrap(), 1, "a finished at 6");
        assert!(s.get("a").await.unwrap().is_none());
        assert!(
            s.get("b").await.unwrap().is_some(),
            "finished exactly at 7 stays"
        );
        assert_eq!(s.prune_commands(t(1000)).await.unwrap(), 2, "b and c");
        let left: Vec<(String, CommandStatus)> = CommandQueue::list(s, &CommandFilter::default())
            .await
            .unwrap()
            .into_iter()
            .map(|c| (c.command_id, c.status))
            .collect();
        assert_eq!(
            left,
            [
                ("e".to_owned(), CommandStatus::Pending),
                ("d".to_owned(), CommandStatus::Running)
            ],
            "open commands stay however old"
        );
        assert_eq!(s.prune_commands(t(1000)).await.unwrap(), 0);
        assert!(matches!(
            s.prune_commands(chrono::DateTime::<chrono::Utc>::MAX_UTC)
                .await,
            Err(StoreError::Invalid(_))
        ));
    }

    pub async fn expire_times_out_open_overdue_commands(s: &impl Store) {
        s.enqueue(&command("p", "prod", "ping", 0, 10))
            .await
            .unwrap();
        s.enqueue(&command("r", "prod", "ping", 1, 10))
            .await
            .unwrap();
        s.enqueue(&command("f", "prod", "ping", 2, 10))
            .await
            .unwrap();
        s.enqueue(&command("ok", "prod", "ping", 3, 100))
            .await
            .unwrap();
        let taken = s.take("prod", 2, LEASE, t(5)).await.unwrap();
        assert_eq!(taken.len(), 2);
        s.complete(&result("prod", "f", true), t(6)).await.unwrap();
        assert!(
            s.expire(t(10)).await.unwrap().is_empty(),
            "deadline == now is on time"
        );
        let gone = s.expire(t(13)).await.unwrap();
        let ids: Vec<_> = gone.iter().map(|c| c.command_id.as_str()).collect();
        assert_eq!(ids, ["p", "r"]);
        assert!(gone.iter().all(|c| c.status == CommandStatus::Timeout));
        assert!(gone.iter().all(|c| c.finished_at == Some(t(13))));
        assert!(s.expire(t(14)).await.unwrap().is_empty());
        assert_eq!(
            s.get("f").await.unwrap().unwrap().status,
            CommandStatus::Success
        );
        assert_eq!(
            s.get("ok").await.unwrap().unwrap().status,
            CommandStatus::Pending
        );
        // A late result for a timed-out command keeps the timeout.
        let late = s.complete(&result("prod", "r", true), t(15)).await.unwrap();
        assert_eq!(late.status, CommandStatus::Timeout);
    }

    pub async fn count_open_counts_pending_and_running_per_cluster(s: &impl Store) {
        assert_eq!(s.count_open("prod").await.unwrap(), 0);
        for (id, cluster, ttl) in [
            ("p1", "prod", 600),
            ("p2", "prod", 600),
            ("p3", "prod", 600),
            ("p4", "prod", 600),
            ("late", "prod", 5),
            ("d1", "dev", 600),
        ] {
            s.enqueue(&command(id, cluster, "ping", 0, ttl))
                .await
                .unwrap();
        }
        assert_eq!(s.count_open("prod").await.unwrap(), 5);
        assert_eq!(s.count_open("dev").await.unwrap(), 1);
        assert_eq!(s.count_open("nope").await.unwrap(), 0);
        // Taken (running) commands are still open; finished ones are not.
        let taken = s.take("prod", 2, LEASE, t(1)).await.unwrap();
        assert_eq!(taken.len(), 2);
        assert_eq!(s.count_open("prod").await.unwrap(), 5, "running counts");
        let ids: Vec<_> = taken.iter().map(|c| c.command_id.as_str()).collect();
        assert_eq!(ids, ["late", "p1"]);
        s.complete(&result("prod", "p1", true), t(2)).await.unwrap();
        s.complete(&result("prod", "p4", false), t(2))
            .await
            .unwrap();
        assert_eq!(s.count_open("prod").await.unwrap(), 3);
        // Past its deadline but not yet expired: still open until expire marks it.
        assert_eq!(s.count_open("prod").await.unwrap(), 3);
        assert_eq!(s.expire(t(10)).await.unwrap().len(), 1);
        assert_eq!(s.count_open("prod").await.unwrap(), 2);
        assert_eq!(
            s.count_open("dev").await.unwrap(),
            1,
            "other cluster untouched"
        );
    }

    pub async fn agents_seen_and_status(s: &impl Store) {
        s.seen(&seen(
            "prod",
            "0.1.0",
            "10.0.0.1:5000",
            100,
            SeenVia::Heartbeat,
        ))
        .await
        .unwrap();
        s.seen(&seen("prod", "", "", 110, SeenVia::Snapshot))
            .await
            .unwrap();
        s.seen(&seen("prod", "", "", 50, SeenVia::Heartbeat))
            .await
            .unwrap();
        s.seen(&seen("dev", "0.2.0", "10.0.0.2:1", 10, SeenVia::Snapshot))
            .await
            .unwrap();
        let list = AgentRegistry::list(s, t(140), Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].cluster_id, "dev");
        assert_eq!(list[0].status, AgentState::Offline);
        assert_eq!(
            list[0].last_heartbeat,
            chrono::DateTime::<chrono::Utc>::default()
        );
        assert_eq!(list[0].last_snapshot, t(10));
        let prod = &list[1];
        assert_eq!(prod.status, AgentState::Online, "110 + 30 >= 140");
        assert_eq!(prod.last_heartbeat, t(100), "time moves forward only");
        assert_eq!(prod.last_snapshot, t(110));
        assert_eq!(
            prod.agent_version, "0.1.0",
            "empty version keeps the known one"
        );
        assert_eq!(prod.remote_addr, "10.0.0.1:5000");
        let later = AgentRegistry::list(s, t(141), Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(later[1].status, AgentState::Offline);
        s.seen(&seen(
            "prod",
            "0.1.1",
            "10.0.0.9:7",
            200,
            SeenVia::Heartbeat,
        ))
        .await
        .unwrap();
        let list = AgentRegistry::list(s, t(200), Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(list[1].agent_version, "0.1.1");
        assert_eq!(list[1].remote_addr, "10.0.0.9:7");
        assert_eq!(list[1].status, AgentState::Online);
        let err = s
            .seen(&seen("", "", "", 1, SeenVia::Heartbeat))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    }

    pub async fn agents_forget(s: &impl Store) {
        s.seen(&seen("prod", "0.1.0", "10.0.0.1:1", 10, SeenVia::Snapshot))
            .await
            .unwrap();
        s.seen(&seen("dev", "", "", 10, SeenVia::Heartbeat))
            .await
            .unwrap();
        assert!(s.forget("prod").await.unwrap());
        assert!(!s.forget("prod").await.unwrap());
        assert!(!s.forget("nope").await.unwrap());
        let list = AgentRegistry::list(s, t(10), Duration::from_secs(30))
            .await
            .unwrap();
        let ids: Vec<&str> = list.iter().map(|a| a.cluster_id.as_str()).collect();
        assert_eq!(ids, ["dev"]);
        // Heard again: back, without the forgotten version or times.
        s.seen(&seen("prod", "", "", 20, SeenVia::Heartbeat))
            .await
            .unwrap();
        let list = AgentRegistry::list(s, t(20), Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(list[1].cluster_id, "prod");
        assert_eq!(list[1].agent_version, "");
        assert_eq!(list[1].last_heartbeat, t(20));
        assert_eq!(
            list[1].last_snapshot,
            chrono::DateTime::<chrono::Utc>::default()
        );
    }
}

mod alert_suite {
    use super::*;

    pub async fn alert_rules_put_list_delete(s: &impl Store) {
        s.put_alert_rule(&rule("b", r#"{"figure":"cpu.usage_percent"}"#, 1))
            .await
            .unwrap();
        s.put_alert_rule(&rule("a", r#"{"enabled":false}"#, 2))
            .await
            .unwrap();
        s.put_alert_rule(&rule("b", r#"{"threshold":95}"#, 3))
            .await
            .unwrap();
        let rules = s.list_alert_rules().await.unwrap();
        assert_eq!(
            rules,
            [
                rule("a", r#"{"enabled":false}"#, 2),
                rule("b", r#"{"threshold":95}"#, 3)
            ]
        );
        assert!(s.delete_alert_rule("a").await.unwrap());
        assert!(!s.delete_alert_rule("a").await.unwrap());
        assert_eq!(s.list_alert_rules().await.unwrap().len(), 1);
        for bad in [rule("", "{}", 1), rule("x", "[1]", 1), rule("x", "nope", 1)] {
            let err = s.put_alert_rule(&bad).await.unwrap_err();
            assert!(matches!(err, StoreError::Invalid(_)), "{err}");
        }
    }

    pub async fn alert_changes_keep_running_alerts(s: &impl Store) {
        let pending = alert("HighCpu", "prod", "n1", AlertState::Pending, 0);
        let firing = alert("NodeDown", "prod", "n2", AlertState::Firing, 0);
        s.apply_alert_changes(&AlertChanges {
            upsert: vec![pending.clone(), firing.clone()],
            ..AlertChanges::default()
        })
        .await
        .unwrap();
        let mut expected = vec![pending.clone(), firing.clone()];
        expected.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
        assert_eq!(s.active_alerts().await.unwrap(), expected, "bit for bit");

        // Pending to firing replaces; a resolved one leaves and enters the history.
        let fired = Alert {
            state: AlertState::Firing,
            fired_at: Some(t(30)),
            ..pending.clone()
        };
        let resolved = Alert {
            state: AlertState::Resolved,
            resolved_at: Some(t(200)),
            ..firing.clone()
        };
        let changes = AlertChanges {
            upsert: vec![fired.clone()],
            remove: vec![firing.fingerprint.clone()],
            history: vec![resolved.clone()],
        };
        s.apply_alert_changes(&changes).await.unwrap();
        s.apply_alert_changes(&changes).await.unwrap();
        assert_eq!(s.active_alerts().await.unwrap(), [fired]);
        let history = s
            .alert_history(&AlertHistoryQuery::default())
            .await
            .unwrap();
        assert_eq!(history, [resolved], "appending twice keeps one");

        // A bad batch writes nothing.
        let mut bad = alert("X", "prod", "n3", AlertState::Firing, 0);
        bad.value = f64::NAN;
        let err = s
            .apply_alert_changes(&AlertChanges {
                upsert: vec![alert("Y", "prod", "n4", AlertState::Firing, 0)],
                remove: vec![pending.fingerprint.clone()],
                history: vec![bad],
            })
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err}");
        assert_eq!(s.active_alerts().await.unwrap().len(), 1);
    }

    pub async fn alert_history_filters_newest_first_and_prunes(s: &impl Store) {
        let entries = [
            alert("HighCpu", "prod", "n1", AlertState::Resolved, 0),
            alert("HighCpu", "dev", "n1", AlertState::Resolved, 100),
            alert("NodeDown", "prod", "n2", AlertState::Resolved, 200),
        ];
        s.apply_alert_changes(&AlertChanges {
            history: entries.to_vec(),
            ..AlertChanges::default()
        })
        .await
        .unwrap();
        let names = |list: Vec<Alert>| -> Vec<(String, String)> {
            list.into_iter()
                .map(|a| (a.rule.clone(), a.labels["cluster"].clone()))
                .collect()
        };
        let all = s
            .alert_history(&AlertHistoryQuery::default())
            .await
            .unwrap();
        assert_eq!(
            names(all),
            [
                ("NodeDown".to_owned(), "prod".to_owned()),
                ("HighCpu".to_owned(), "dev".to_owned()),
                ("HighCpu".to_owned(), "prod".to_owned())
            ]
        );
        let q = |rule: Option<&str>,
                 cluster: Option<&str>,
                 from: Option<i64>,
                 to: Option<i64>,
                 limit| {
            AlertHistoryQuery {
                rule: rule.map(str::to_owned),
                cluster: cluster.map(str::to_owned),
                from: from.map(t),
                to: to.map(t),
                limit,
            }
        };
        let cpu = s
            .alert_history(&q(Some("HighCpu"), None, None, None, 100))
            .await
            .unwrap();
        assert_eq!(cpu.len(), 2);
        let prod = s
            .alert_history(&q(None, Some("prod"), None, None, 1))
            .await
            .unwrap();
        assert_eq!(names(prod), [("NodeDown".to_owned(), "prod".to_owned())]);
        // Entry time is resolved_at (at + 120): the range is inclusive.
        let range = s
            .alert_history(&q(None, None, Some(120), Some(220), 100))
            .await
            .unwrap();
        assert_eq!(range.len(), 2);
        assert!(
            s.alert_history(&q(None, None, Some(300), Some(0), 100))
                .await
                .unwrap()
                .is_empty()
        );
        for limit in [0, atlhyper_store::MAX_ALERT_HISTORY_LIMIT + 1] {
            let err = s
                .alert_history(&q(None, None, None, None, limit))
                .await
                .unwrap_err();
            assert!(matches!(err, StoreError::Invalid(_)), "{err}");
        }
        assert_eq!(s.prune_alert_history(t(221)).await.unwrap(), 2);
        assert_eq!(s.prune_alert_history(t(221)).await.unwrap(), 0);
        let left = s
            .alert_history(&AlertHistoryQuery::default())
            .await
            .unwrap();
        assert_eq!(names(left), [("NodeDown".to_owned(), "prod".to_owned())]);
    }
}

macro_rules! alert_contract {
    ($engine:ident: $($name:ident),* $(,)?) => {
        mod $engine {
            $(
                #[tokio::test]
                async fn $name() {
                    let engine = crate::common::$engine();
                    crate::alert_suite::$name(&engine.store).await;
                }
            )*
        }
    };
}

/// The suite on PostgreSQL: each test on a fresh database of the shared test server.
macro_rules! postgres_contract {
    ($suite:ident: $($name:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(engine) = crate::common::postgres().await else { return };
                    crate::$suite::$name(&engine.store).await;
                }
            )*
        }
    };
}

mod alerts {
    postgres_contract!(
        alert_suite: alert_rules_put_list_delete,
        alert_changes_keep_running_alerts,
        alert_history_filters_newest_first_and_prunes
    );
    alert_contract!(
        memory: alert_rules_put_list_delete,
        alert_changes_keep_running_alerts,
        alert_history_filters_newest_first_and_prunes
    );
    alert_contract!(
        sqlite: alert_rules_put_list_delete,
        alert_changes_keep_running_alerts,
        alert_history_filters_newest_first_and_prunes
    );
}

mod notify_suite {
    use super::*;

    pub async fn silences_put_get_list_prune(s: &impl Store) {
        let a = silence("b-id", 10, 100);
        let b = silence("a-id", 20, 50);
        s.put_silence(&a).await.unwrap();
        s.put_silence(&b).await.unwrap();
        assert_eq!(s.get_silence("b-id").await.unwrap(), Some(a.clone()));
        assert_eq!(s.get_silence("nope").await.unwrap(), None);
        assert_eq!(s.list_silences().await.unwrap(), vec![a.clone(), b.clone()]);
        // Replacing (an expiry) keeps one row.
        let expired = Silence {
            ends_at: t(30),
            ..a.clone()
        };
        s.put_silence(&expired).await.unwrap();
        assert_eq!(s.list_silences().await.unwrap(), vec![expired, b.clone()]);
        // Ended before 40: the expired one only.
        assert_eq!(s.prune_silences(t(40)).await.unwrap(), 1);
        assert_eq!(s.list_silences().await.unwrap(), vec![b]);
        let bad = Silence {
            id: String::new(),
            ..a
        };
        assert!(matches!(
            s.put_silence(&bad).await,
            Err(StoreError::Invalid(_))
        ));
    }

    pub async fn notified_groups_replace_and_delete(s: &impl Store) {
        let first = notified("team-a", "g1", &["aa", "bb"], 5);
        s.put_notified(&first).await.unwrap();
        s.put_notified(&notified("team-a", "g0", &[], 6))
            .await
            .unwrap();
        let again = notified("team-a", "g1", &["aa"], 9);
        s.put_notified(&again).await.unwrap();
        let list = s.list_notified().await.unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].group_key, "g0");
        assert_eq!(list[1], again);
        assert!(s.delete_notified("team-a", "g1").await.unwrap());
        assert!(!s.delete_notified("team-a", "g1").await.unwrap());
        assert!(!s.delete_notified("team-b", "g0").await.unwrap());
        assert_eq!(s.list_notified().await.unwrap().len(), 1);
        let bad = notified("", "g1", &[], 1);
        assert!(matches!(
            s.put_notified(&bad).await,
            Err(StoreError::Invalid(_))
        ));
    }

    pub async fn notifications_newest_first_and_pruned(s: &impl Store) {
        s.append_notification(&delivery("a", 10, DeliveryResult::Sent))
            .await
            .unwrap();
        s.append_notification(&delivery("b", 30, DeliveryResult::Failed))
            .await
            .unwrap();
        s.append_notification(&delivery("c", 30, DeliveryResult::Sent))
            .await
            .unwrap();
        s.append_notification(&delivery("d", 20, DeliveryResult::Sent))
            .await
            .unwrap();
        let list = s.list_notifications(10).await.unwrap();
        let order: Vec<&str> = list.iter().map(|r| r.receiver.as_str()).collect();
        assert_eq!(order, ["c", "b", "d", "a"]);
        assert_eq!(list[1], delivery("b", 30, DeliveryResult::Failed));
        assert_eq!(s.list_notifications(1).await.unwrap().len(), 1);
        assert_eq!(s.prune_notifications(t(20)).await.unwrap(), 1);
        assert_eq!(s.list_notifications(10).await.unwrap().len(), 3);
    }
}

macro_rules! contract {
    ($suite:ident, $engine:ident: $($name:ident),* $(,)?) => {
        mod $engine {
            $(
                #[tokio::test]
                async fn $name() {
                    let engine = crate::common::$engine();
                    crate::$suite::$name(&engine.store).await;
                }
            )*
        }
    };
}

macro_rules! every_engine {
    ($($name:ident),* $(,)?) => {
        contract!(suite, memory: $($name),*);
        contract!(suite, sqlite: $($name),*);
        postgres_contract!(suite: $($name),*);
    };
}

every_engine!(
    latest_upsert_get_list,
    latest_is_the_last_written,
    latest_deletes_leave_history,
    retire_deletes_silent_latest,
    latest_rejects_bad_batches_whole,
    history_append_is_idempotent,
    history_range_is_inclusive_and_per_node,
    history_keeps_nanoseconds,
    history_rejects_bad_points_whole,
    history_downsamples_to_bucket_means,
    prune_deletes_old_points_and_empty_nodes,
    deleted_nodes_written_again_get_their_rows,
    newest_history_of_many_nodes,
    enqueue_get_and_duplicates,
    take_is_oldest_first_under_a_lease,
    take_skips_overdue_and_finished,
    complete_only_from_the_owner,
    list_filters_newest_first,
    expire_times_out_open_overdue_commands,
    prune_commands_deletes_finished_before,
    count_open_counts_pending_and_running_per_cluster,
    agents_seen_and_status,
    agents_forget,
);

mod notify {
    contract!(notify_suite, memory: silences_put_get_list_prune, notified_groups_replace_and_delete,
        notifications_newest_first_and_pruned);
    contract!(notify_suite, sqlite: silences_put_get_list_prune, notified_groups_replace_and_delete,
        notifications_newest_first_and_pruned);
    postgres_contract!(notify_suite: silences_put_get_list_prune, notified_groups_replace_and_delete,
        notifications_newest_first_and_pruned);
}

mod audit_suite {
    use super::*;
    use atlhyper_store::{
        AuditEntry, AuditLog, AuditQuery, MAX_AUDIT_FIELD_BYTES, MAX_AUDIT_LIMIT,
    };

    fn entry(actor: &str, action: &str, target: &str, status: u16, at: i64) -> AuditEntry {
        AuditEntry {
            at: t(at),
            actor: actor.to_owned(),
            source: "10.0.0.7:51234".to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
            status,
            detail: format!("by {actor}"),
        }
    }

    fn targets(list: &[AuditEntry]) -> Vec<&str> {
        list.iter().map(|e| e.target.as_str()).collect()
    }

    pub async fn audit_lists_newest_first_and_filters(s: &impl AuditLog) {
        let entries = [
            entry("alice", "command.create", "c1", 201, 10),
            entry("bob", "cluster.delete", "/api/v2/clusters/dev", 204, 20),
            entry("unknown", "command.create", "c2", 401, 20),
            entry("alice", "silence.create", "s1", 201, 30),
        ];
        for e in &entries {
            s.append_audit(e).await.unwrap();
        }
        let all = s.list_audit(&AuditQuery::default()).await.unwrap();
        // Equal times: the one appended last first.
        assert_eq!(
            targets(&all),
            ["s1", "c2", "/api/v2/clusters/dev", "c1"],
            "newest first"
        );
        assert_eq!(all[1], entries[2], "kept field for field");
        let q = |from: Option<i64>, to: Option<i64>, action: Option<&str>, limit| AuditQuery {
            from: from.map(t),
            to: to.map(t),
            action: action.map(str::to_owned),
            limit,
        };
        let commands = s
            .list_audit(&q(None, None, Some("command.create"), 100))
            .await
            .unwrap();
        assert_eq!(targets(&commands), ["c2", "c1"]);
        let range = s
            .list_audit(&q(Some(20), Some(20), None, 100))
            .await
            .unwrap();
        assert_eq!(targets(&range), ["c2", "/api/v2/clusters/dev"], "inclusive");
        let newest = s.list_audit(&q(None, None, None, 1)).await.unwrap();
        assert_eq!(targets(&newest), ["s1"]);
        assert!(
            s.list_audit(&q(Some(31), None, None, 100))
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            s.list_audit(&q(None, None, Some("node.delete"), 100))
                .await
                .unwrap()
                .is_empty()
        );
        for limit in [0, MAX_AUDIT_LIMIT + 1] {
            let err = s.list_audit(&q(None, None, None, limit)).await.unwrap_err();
            assert!(matches!(err, StoreError::Invalid(_)), "{err}");
        }
    }

    pub async fn audit_refuses_bad_entries(s: &impl AuditLog) {
        let long = "x".repeat(MAX_AUDIT_FIELD_BYTES + 1);
        let bad = [
            entry("alice", "", "c1", 201, 1),
            entry(&long, "command.create", "c1", 201, 1),
            entry("alice", "command.create", &long, 201, 1),
            AuditEntry {
                at: chrono::DateTime::<chrono::Utc>::MAX_UTC,
                ..entry("alice", "command.create", "c1", 201, 1)
            },
        ];
        for e in &bad {
            let err = s.append_audit(e).await.unwrap_err();
            assert!(matches!(err, StoreError::Invalid(_)), "{err}");
        }
        assert!(
            s.list_audit(&AuditQuery::default())
                .await
                .unwrap()
                .is_empty()
        );
        // The longest allowed field, and text PostgreSQL and SQLite both keep.
        let edge = AuditEntry {
            detail: "é".repeat(MAX_AUDIT_FIELD_BYTES / 2),
            ..entry("cert:CN=agent-a, O=Ops", "node.delete", "/n", 404, 1)
        };
        s.append_audit(&edge).await.unwrap();
        assert_eq!(s.list_audit(&AuditQuery::default()).await.unwrap(), [edge]);
    }

    pub async fn audit_prune_deletes_before(s: &impl AuditLog) {
        for (i, at) in [5, 10, 15].into_iter().enumerate() {
            s.append_audit(&entry("alice", "command.create", &format!("c{i}"), 201, at))
                .await
                .unwrap();
        }
        assert_eq!(s.prune_audit(t(10)).await.unwrap(), 1, "strictly before");
        assert_eq!(s.prune_audit(t(10)).await.unwrap(), 0);
        let left = s.list_audit(&AuditQuery::default()).await.unwrap();
        assert_eq!(targets(&left), ["c2", "c1"]);
    }
}

mod audit {
    contract!(audit_suite, memory: audit_lists_newest_first_and_filters,
        audit_refuses_bad_entries, audit_prune_deletes_before);
    contract!(audit_suite, sqlite: audit_lists_newest_first_and_filters,
        audit_refuses_bad_entries, audit_prune_deletes_before);
    postgres_contract!(audit_suite: audit_lists_newest_first_and_filters,
        audit_refuses_bad_entries, audit_prune_deletes_before);
}
