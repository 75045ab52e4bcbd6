//! Alert notification end to end inside the master: the dispatcher with real HTTP receivers on
//! loopback, the SQLite notification log across a restart, the silences API.

use std::sync::Arc;
use std::time::{Duration, Instant};

use atlhyper_master::alerting::AlertPublisher;
use atlhyper_master::alerting::notify::{Dispatcher, NotifyConfig};
use atlhyper_master::{Master, MasterConfig};
use atlhyper_model::{Alert, AlertState, Labels};
use atlhyper_store::{DeliveryResult, MemoryStore, NotifyStore, SqliteStore};
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, StatusCode};
use axum::routing::post;
use chrono::{DateTime, TimeDelta, Utc};
use parking_lot::Mutex;
use serde_json::Value;
use tower::ServiceExt;

/// Payloads with their arrival time and path.
type Received = Arc<Mutex<Vec<(Instant, Value)>>>;

/// A webhook receiver on loopback that keeps every payload (any path) with its arrival time.
struct Hook {
    url: String,
    received: Received,
    server: tokio::task::JoinHandle<()>,
}

impl Hook {
    async fn start() -> Self {
        Self::on(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()).await
    }

    async fn on(listener: tokio::net::TcpListener) -> Self {
        let addr = listener.local_addr().unwrap();
        let received: Received = Arc::default();
        let app = Router::new()
            .fallback(post(|State(r): State<Received>, body: String| async move {
                r.lock()
                    .push((Instant::now(), serde_json::from_str(&body).unwrap()));
                StatusCode::OK
            }))
            .with_state(received.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            url: format!("http://{addr}/hook"),
            received,
            server,
        }
    }

    fn payloads(&self) -> Vec<Value> {
        self.received
            .lock()
            .iter()
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn count(&self) -> usize {
        self.received.lock().len()
    }

    async fn wait_for(&self, n: usize, within: Duration) -> Vec<Value> {
        let deadline = Instant::now() + within;
        while self.count() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.payloads()
    }
}

impl Drop for Hook {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn alert(
    pairs: &[(&str, &str)],
    state: AlertState,
    fired: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Alert {
    let labels = labels(pairs);
    Alert {
        fingerprint: atlhyper_model::fingerprint(&labels),
        rule: labels["alertname"].clone(),
        annotations: labels_of_summary(&labels).into(),
        labels: labels.into(),
        state,
        value: 1.0,
        active_at: fired,
        fired_at: Some(fired),
        resolved_at: (state == AlertState::Resolved).then_some(now),
        evaluated_at: now,
    }
}

fn labels_of_summary(l: &Labels) -> Labels {
    labels(&[(
        "summary",
        &format!(
            "{} on {}",
            l["alertname"],
            l.get("node").map_or("?", String::as_str)
        ),
    )])
}

fn node_down(
    cluster: &str,
    node: &str,
    state: AlertState,
    fired: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Alert {
    alert(
        &[
            ("alertname", "NodeDown"),
            ("cluster", cluster),
            ("node", node),
            ("severity", "critical"),
        ],
        state,
        fired,
        now,
    )
}

fn config(yaml: &str) -> NotifyConfig {
    NotifyConfig::from_yaml(yaml, "test.yaml").unwrap()
}

fn one_webhook(url: &str, extra_global: &str) -> NotifyConfig {
    config(&format!(
        "global:\n  retry_initial: 100ms\n  retry_max: 400ms\n{extra_global}route:\n  receiver: hook\n  group_by: [alertname, cluster]\n  group_wait: 300ms\n  group_interval: 500ms\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: {url}\n"
    ))
}

/// 1,000 nodes of one cluster down at once: one notification for the group (1,000 alerts), one
/// for the other cluster's group; repeated evaluations send nothing more; the resolution sends
/// one resolved notification per group. Latency from publish to receipt is at most
/// group_wait + 1 s.
#[tokio::test]
async fn a_thousand_nodes_down_give_one_notification_per_group_and_resolve_once() {
    let hook = Hook::start().await;
    let store = Arc::new(MemoryStore::new());
    let dispatcher = Dispatcher::start(one_webhook(&hook.url, ""), store.clone())
        .await
        .unwrap();
    let fired = Utc::now();
    let firing: Vec<Alert> = (0..1000)
        .map(|i| node_down("c1", &format!("n{i}"), AlertState::Firing, fired, fired))
        .chain((0..3).map(|i| node_down("c2", &format!("m{i}"), AlertState::Firing, fired, fired)))
        .collect();
    let published = Instant::now();
    dispatcher.publish(fired, firing.clone());
    let got = hook.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 2, "{got:?}");
    let latency = hook
        .received
        .lock()
        .iter()
        .map(|(at, _)| at.duration_since(published))
        .max()
        .unwrap();
    println!("publish -> webhook latency with group_wait 300ms: {latency:?}");
    assert!(
        latency >= Duration::from_millis(300) && latency <= Duration::from_millis(1300),
        "{latency:?}"
    );
    let mut sizes: Vec<usize> = got
        .iter()
        .map(|p| p["alerts"].as_array().unwrap().len())
        .collect();
    sizes.sort_unstable();
    assert_eq!(sizes, [3, 1000]);
    assert!(
        got.iter()
            .all(|p| p["status"] == "firing" && p["version"] == "4")
    );

    // Evaluations go on publishing the same firing alerts: nothing new is sent.
    for _ in 0..4 {
        dispatcher.publish(Utc::now(), firing.clone());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(hook.count(), 2);

    // Everything resolves: one resolved notification per group, once.
    let now = Utc::now();
    let resolved: Vec<Alert> = firing
        .iter()
        .map(|a| Alert {
            state: AlertState::Resolved,
            resolved_at: Some(now),
            evaluated_at: now,
            ..a.clone()
        })
        .collect();
    dispatcher.publish(now, resolved);
    let got = hook.wait_for(4, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(hook.count(), 4);
    for p in &got[2..] {
        assert_eq!(p["status"], "resolved");
        assert!(
            p["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .all(|a| a["status"] == "resolved")
        );
    }
    // The log says what went where.
    let log = dispatcher.recent_notifications(10).await.unwrap();
    assert_eq!(log.len(), 4);
    assert!(
        log.iter()
            .all(|r| r.result == DeliveryResult::Sent && r.receiver == "hook/webhook/0")
    );
    assert_eq!(log.iter().map(|r| r.firing).sum::<u32>(), 1003);
    assert_eq!(log.iter().map(|r| r.resolved).sum::<u32>(), 1003);
    dispatcher.stop().await;
}

/// A receiver that refuses connections is retried with backoff until it is up, and meanwhile
/// the other receiver of the same alert gets it at once.
#[tokio::test]
async fn a_down_receiver_is_retried_and_never_delays_the_others() {
    let up = Hook::start().await;
    // Bind a port without listening: connections are refused, and no other test can take the
    // port, until the hook listens on this same socket.
    let (reserved, down_port) = atlhyper_testkit::held_port();
    let down_addr = std::net::SocketAddr::from(([127, 0, 0, 1], down_port));
    let yaml = format!(
        "global:\n  retry_initial: 100ms\n  retry_max: 400ms\n  retry_for: 1m\nroute:\n  receiver: up\n  group_wait: 100ms\n  routes:\n    - receiver: down\n      continue: true\n    - receiver: up\nreceivers:\n  - name: up\n    webhook_configs:\n      - url: {}\n  - name: down\n    webhook_configs:\n      - url: http://{down_addr}/hook\n",
        up.url
    );
    let dispatcher = Dispatcher::start(config(&yaml), Arc::new(MemoryStore::new()))
        .await
        .unwrap();
    let now = Utc::now();
    let start = Instant::now();
    dispatcher.publish(
        now,
        vec![node_down("c1", "n1", AlertState::Firing, now, now)],
    );
    up.wait_for(1, Duration::from_secs(3)).await;
    let up_latency = start.elapsed();
    assert_eq!(up.count(), 1);
    assert!(up_latency < Duration::from_millis(1000), "{up_latency:?}");

    tokio::time::sleep(Duration::from_millis(700)).await;
    let stats = dispatcher.stats();
    let down_stats = stats.receiver("down");
    let failed = down_stats
        .attempts_failed
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(failed >= 2, "only {failed} failed attempts in 700 ms");
    assert_eq!(
        down_stats.queued.load(std::sync::atomic::Ordering::Relaxed),
        1
    );

    // The receiver comes up: the next retry delivers, once.
    let down = Hook::on(reserved.listen(64).unwrap()).await;
    let got = down.wait_for(1, Duration::from_secs(3)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["receiver"], "down");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(down.count(), 1);
    assert_eq!(up.count(), 1);
    assert_eq!(
        down_stats.sent.load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(
        down_stats.queued.load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    let log = dispatcher.recent_notifications(10).await.unwrap();
    let down_entry = log.iter().find(|r| r.receiver == "down/webhook/0").unwrap();
    assert_eq!(down_entry.result, DeliveryResult::Sent);
    assert!(down_entry.attempts >= 3, "{down_entry:?}");

    let mut exposition = atlhyper_model::Exposition::new(atlhyper_model::ExpositionFormat::Text);
    atlhyper_master::alerting::notify::write_metrics(&mut exposition, Some(&stats));
    let metrics = exposition.finish();
    assert!(
        metrics.contains("atlhyper_notifications_total{receiver=\"down\",result=\"sent\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("atlhyper_notifications_total{receiver=\"up\",result=\"sent\"} 1"),
        "{metrics}"
    );
    dispatcher.stop().await;
}

/// The notification log lives in SQLite: after a restart the same firing alerts are not sent
/// again, and their resolution is sent once.
#[tokio::test]
async fn a_restart_does_not_notify_again() {
    let hook = Hook::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.db");
    let fired = Utc::now() - TimeDelta::minutes(10);
    let firing = vec![
        node_down("c1", "n1", AlertState::Firing, fired, Utc::now()),
        node_down("c1", "n2", AlertState::Firing, fired, Utc::now()),
    ];
    {
        let store: Arc<dyn NotifyStore> = Arc::new(SqliteStore::open(&path).unwrap());
        let dispatcher = Dispatcher::start(one_webhook(&hook.url, ""), store)
            .await
            .unwrap();
        dispatcher.publish(Utc::now(), firing.clone());
        assert_eq!(hook.wait_for(1, Duration::from_secs(3)).await.len(), 1);
        dispatcher.stop().await;
    }
    let store: Arc<dyn NotifyStore> = Arc::new(SqliteStore::open(&path).unwrap());
    let dispatcher = Dispatcher::start(one_webhook(&hook.url, ""), store)
        .await
        .unwrap();
    // The engine restarts too and publishes the same firing alerts (fired long ago: the group
    // flushes at once, and the log says they were sent).
    for _ in 0..3 {
        dispatcher.publish(Utc::now(), firing.clone());
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    assert_eq!(
        hook.count(),
        1,
        "re-notified after restart: {:?}",
        hook.payloads()
    );
    let now = Utc::now();
    let resolved = firing
        .iter()
        .map(|a| Alert {
            state: AlertState::Resolved,
            resolved_at: Some(now),
            evaluated_at: now,
            ..a.clone()
        })
        .collect();
    dispatcher.publish(now, resolved);
    let got = hook.wait_for(2, Duration::from_secs(3)).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(hook.count(), 2);
    assert_eq!(got[1]["status"], "resolved");
    assert_eq!(got[1]["alerts"].as_array().unwrap().len(), 2);
    dispatcher.stop().await;
}

/// A new firing alert in a group already notified goes out at the next group interval, with
/// the others; an inhibited alert (NodeDown on its node) and a silenced one never go out.
#[tokio::test]
async fn changes_inhibition_and_silences() {
    let hook = Hook::start().await;
    let store = Arc::new(MemoryStore::new());
    let yaml = format!(
        "route:\n  receiver: hook\n  group_by: [cluster]\n  group_wait: 200ms\n  group_interval: 400ms\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: {}\n",
        hook.url
    );
    let dispatcher = Dispatcher::start(config(&yaml), store).await.unwrap();
    let now = Utc::now();
    let silence = dispatcher
        .silences()
        .create(
            atlhyper_master::alerting::notify::silence::NewSilence {
                matchers: vec![atlhyper_store::SilenceMatcher {
                    name: "alertname".into(),
                    value: "DiskFull".into(),
                    is_regex: false,
                    is_equal: true,
                }],
                starts_at: now,
                ends_at: now + TimeDelta::hours(1),
                created_by: "test".into(),
                comment: "known".into(),
            },
            now,
        )
        .await
        .unwrap();
    let cpu = |node: &str| {
        alert(
            &[("alertname", "HighCpu"), ("cluster", "c1"), ("node", node)],
            AlertState::Firing,
            now,
            now,
        )
    };
    let disk = alert(
        &[("alertname", "DiskFull"), ("cluster", "c1"), ("node", "n3")],
        AlertState::Firing,
        now,
        now,
    );
    let down = node_down("c1", "n2", AlertState::Firing, now, now);
    assert_eq!(dispatcher.silenced_by(&disk.labels), [silence.id.as_str()]);
    assert!(dispatcher.silenced_by(&down.labels).is_empty());
    dispatcher.publish(now, vec![cpu("n1"), cpu("n2"), disk.clone(), down.clone()]);
    let got = hook.wait_for(1, Duration::from_secs(3)).await;
    let names = |p: &Value| -> Vec<String> {
        let mut v: Vec<String> = p["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                format!(
                    "{}/{}",
                    a["labels"]["alertname"].as_str().unwrap(),
                    a["labels"]["node"].as_str().unwrap()
                )
            })
            .collect();
        v.sort();
        v
    };
    // HighCpu on n2 is inhibited by NodeDown on n2; DiskFull is silenced.
    assert_eq!(names(&got[0]), ["HighCpu/n1", "NodeDown/n2"]);

    // A new alert joins: sent at the next interval with the group's others.
    dispatcher.publish(
        Utc::now(),
        vec![cpu("n1"), cpu("n2"), disk, down, cpu("n4")],
    );
    let got = hook.wait_for(2, Duration::from_secs(3)).await;
    assert_eq!(names(&got[1]), ["HighCpu/n1", "HighCpu/n4", "NodeDown/n2"]);
    dispatcher.stop().await;
}

async fn call(
    router: &Router,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"));
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let request = request
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// `/api/v2/silences`: the operator creates and expires, the viewer reads; bad input is 400
/// naming the field; a silence made through the API mutes the dispatcher's alerts.
#[tokio::test]
async fn silences_api_roles_validation_and_effect() {
    let store = Arc::new(MemoryStore::new());
    let master = Master::new(
        MasterConfig {
            agent_tokens: [("agent".to_owned(), "c1".to_owned())].into(),
            viewer_tokens: vec!["viewer".into()],
            operator_tokens: vec!["operator".into()],
            ..MasterConfig::default()
        },
        store.clone(),
        store.clone(),
        store.clone(),
    );
    let router = master.router();
    // Before notification is attached the routes say so.
    let (status, _) = call(&router, "GET", "/api/v2/silences", "viewer", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let dispatcher = Dispatcher::start(NotifyConfig::empty(), store)
        .await
        .unwrap();
    assert!(master.set_notifications(dispatcher.clone()));

    let ends = (Utc::now() + TimeDelta::hours(2)).to_rfc3339();
    let body = serde_json::json!({
        "matchers": [{"name": "alertname", "value": "HighCpu", "is_regex": false, "is_equal": true},
                     {"name": "node", "value": "worker-.*", "is_regex": true}],
        "ends_at": ends,
        "created_by": "alice",
        "comment": "kernel upgrade",
    });
    let (status, _) = call(
        &router,
        "POST",
        "/api/v2/silences",
        "viewer",
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, created) = call(
        &router,
        "POST",
        "/api/v2/silences",
        "operator",
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["state"], "active");
    assert_eq!(created["created_by"], "alice");
    assert_eq!(created["matchers"][1]["is_equal"], true);
    assert!(created["starts_at"].as_str().unwrap().ends_with('Z'));

    let l = labels(&[("alertname", "HighCpu"), ("node", "worker-7")]);
    assert_eq!(dispatcher.silenced_by(&l), [id.as_str()]);

    let (status, list) = call(&router, "GET", "/api/v2/silences", "viewer", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (status, one) = call(
        &router,
        "GET",
        &format!("/api/v2/silences/{id}"),
        "viewer",
        None,
    )
    .await;
    assert_eq!(
        (status, one["comment"].as_str()),
        (StatusCode::OK, Some("kernel upgrade"))
    );
    let (status, _) = call(&router, "GET", "/api/v2/silences/nope", "viewer", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    for (change, field) in [
        (
            serde_json::json!({"matchers": [{"name": "node", "value": "(", "is_regex": true}]}),
            "matchers[0]",
        ),
        (
            serde_json::json!({"matchers": [{"name": "1node", "value": "x"}]}),
            "matchers[0]",
        ),
        (serde_json::json!({"matchers": []}), "matchers"),
        (serde_json::json!({"ends_at": "tomorrow"}), "ends_at"),
        (
            serde_json::json!({"ends_at": "2001-01-01T00:00:00Z"}),
            "ends_at",
        ),
        (serde_json::json!({"starts_at": "yesterday"}), "starts_at"),
        (serde_json::json!({"created_by": ""}), "created_by"),
        (serde_json::json!({"id": "mine"}), "id"),
    ] {
        let mut bad = body.clone();
        for (k, v) in change.as_object().unwrap() {
            bad[k] = v.clone();
        }
        let (status, answer) =
            call(&router, "POST", "/api/v2/silences", "operator", Some(bad)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{change}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(field),
            "{change}: {answer}"
        );
    }

    let (status, _) = call(
        &router,
        "DELETE",
        &format!("/api/v2/silences/{id}"),
        "viewer",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, expired) = call(
        &router,
        "DELETE",
        &format!("/api/v2/silences/{id}"),
        "operator",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(expired["state"], "expired");
    assert!(dispatcher.silenced_by(&l).is_empty());
    let (status, _) = call(&router, "DELETE", "/api/v2/silences/nope", "operator", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, log) = call(
        &router,
        "GET",
        "/api/v2/notifications?limit=5",
        "viewer",
        None,
    )
    .await;
    assert_eq!(
        (status, log.as_array().map(Vec::len)),
        (StatusCode::OK, Some(0))
    );
    let (status, answer) = call(
        &router,
        "GET",
        "/api/v2/notifications?limit=0",
        "viewer",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(answer["error"].as_str().unwrap().contains("limit"));

    // /metrics carries notification's figures once attached.
    let request = Request::get("/metrics")
        .header("authorization", "Bearer viewer")
        .body(Body::empty())
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = axum::body::to_bytes(response.into_body(), 1 << 24)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&text);
    assert!(
        text.contains("# TYPE atlhyper_notifications_total counter"),
        "{text}"
    );
    assert!(text.contains("atlhyper_notification_groups 0"), "{text}");
    dispatcher.stop().await;
}

/// Forwarding to an Alertmanager re-sends firing alerts at every group interval (each with an
/// `endsAt` ahead, so the Alertmanager holds them while we do), then the resolution once, with
/// its real end. The receiving end here is a plain HTTP endpoint recording the posts;
/// `notify_real.rs` does the same against a real Alertmanager.
#[tokio::test]
async fn forwarding_resends_while_firing_and_resolves_once() {
    let hook = Hook::start().await;
    let base = hook.url.trim_end_matches("/hook").to_owned();
    let yaml = format!(
        "route:\n  receiver: am\n  group_wait: 100ms\n  group_interval: 300ms\nreceivers:\n  - name: am\n    alertmanager_configs:\n      - url: {base}/am\n"
    );
    let dispatcher = Dispatcher::start(config(&yaml), Arc::new(MemoryStore::new()))
        .await
        .unwrap();
    let now = Utc::now();
    let firing = node_down("c1", "n1", AlertState::Firing, now, now);
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(1300) {
        dispatcher.publish(Utc::now(), vec![firing.clone()]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let posts = hook.payloads();
    assert!(posts.len() >= 3, "only {} posts while firing", posts.len());
    for post in &posts {
        let alerts = post.as_array().expect("postable alerts are a JSON array");
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0]["labels"]["node"], "n1");
        let ends: DateTime<Utc> = alerts[0]["endsAt"].as_str().unwrap().parse().unwrap();
        assert!(
            ends > Utc::now(),
            "a firing alert must end in the future: {ends}"
        );
    }
    let before = hook.count();
    let end = Utc::now();
    dispatcher.publish(
        end,
        vec![Alert {
            state: AlertState::Resolved,
            resolved_at: Some(end),
            evaluated_at: end,
            ..firing
        }],
    );
    hook.wait_for(before + 1, Duration::from_secs(2)).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    // A firing post already under way when the resolution was published may land after
    // `before` was counted: the resolution must be the last post and come once.
    let posts = hook.payloads();
    let ends: Vec<DateTime<Utc>> = posts[before..]
        .iter()
        .map(|p| p[0]["endsAt"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(
        (1..=2).contains(&ends.len()),
        "the resolution is sent once, then nothing: {ends:?}"
    );
    assert_eq!(ends.last(), Some(&end), "{ends:?}");
    assert_eq!(ends.iter().filter(|e| **e == end).count(), 1, "{ends:?}");
    dispatcher.stop().await;
}

/// A Slack-compatible incoming webhook gets one message per group with a line per alert.
#[tokio::test]
async fn slack_message_per_group() {
    let hook = Hook::start().await;
    let yaml = format!(
        "route:\n  receiver: chat\n  group_by: [alertname, cluster]\n  group_wait: 100ms\nreceivers:\n  - name: chat\n    slack_configs:\n      - api_url: {}\n        channel: '#ops'\n        send_resolved: true\n",
        hook.url
    );
    let dispatcher = Dispatcher::start(config(&yaml), Arc::new(MemoryStore::new()))
        .await
        .unwrap();
    let now = Utc::now();
    dispatcher.publish(
        now,
        (1..=3)
            .map(|i| node_down("c1", &format!("n{i}"), AlertState::Firing, now, now))
            .collect(),
    );
    let got = hook.wait_for(1, Duration::from_secs(3)).await;
    assert_eq!(got.len(), 1);
    let message = &got[0];
    assert_eq!(message["channel"], "#ops");
    assert_eq!(message["text"], "[FIRING:3] NodeDown (cluster=c1)");
    assert_eq!(message["attachments"][0]["color"], "danger");
    let text = message["attachments"][0]["text"].as_str().unwrap();
    assert_eq!(text.lines().count(), 3);
    assert!(text.contains("NodeDown on n2"), "{text}");
    dispatcher.stop().await;
}

/// `--alert-webhook` / `MASTER_ALERT_WEBHOOK` and `--alert-config` / `MASTER_ALERT_CONFIG`.
#[test]
fn master_flags_build_the_notification_config() {
    use clap::Parser;
    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        master: atlhyper_master::MasterArgs,
    }
    let cli = Cli::try_parse_from(["m", "--alert-webhook", "http://127.0.0.1:5001/hook"]).unwrap();
    let c = cli.master.notify_config().unwrap();
    assert_eq!(
        c.receivers[0].webhook_configs[0].url.as_str(),
        "http://127.0.0.1:5001/hook"
    );

    let cli = Cli::try_parse_from(["m", "--alert-webhook", "nope"]).unwrap();
    let e = cli.master.notify_config().unwrap_err().to_string();
    assert!(e.contains("MASTER_ALERT_WEBHOOK"), "{e}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("alerts.yaml");
    std::fs::write(
        &file,
        "rules: []\nroute:\n  receiver: ops\n  group_wait: 1x\nreceivers:\n  - name: ops\n",
    )
    .unwrap();
    let cli = Cli::try_parse_from([
        "m",
        "--alert-config",
        file.to_str().unwrap(),
        "--alert-webhook",
        "http://h:1/x",
    ])
    .unwrap();
    let e = cli.master.notify_config().unwrap_err().reason;
    assert!(
        e.starts_with(&format!("{}:4: route.group_wait", file.display())),
        "{e}"
    );

    std::fs::write(
        &file,
        "rules: []\nroute:\n  receiver: ops\nreceivers:\n  - name: ops\n",
    )
    .unwrap();
    let c = cli.master.notify_config().unwrap();
    // The flag's webhook joins the file's root receiver.
    assert_eq!(c.receivers[0].webhook_configs.len(), 1);
}

/// The bounds of silences, each through the router: 400 naming the field past a per-silence
/// cap; 409 with "limit" past MAX_ACTIVE_SILENCES active or pending ones (expiring one makes
/// room); past MAX_KEPT_SILENCES in all, the oldest expired one is forgotten.
#[tokio::test]
async fn silences_are_bounded_in_size_and_number() {
    use atlhyper_master::alerting::notify::matcher::{MAX_MATCHER_NAME, MAX_MATCHER_VALUE};
    use atlhyper_master::alerting::notify::silence::{
        MAX_ACTIVE_SILENCES, MAX_COMMENT, MAX_CREATED_BY, MAX_KEPT_SILENCES, MAX_SILENCE_MATCHERS,
    };
    use atlhyper_store::{Silence, SilenceMatcher};

    let store = Arc::new(MemoryStore::new());
    let master = Master::new(
        MasterConfig {
            agent_tokens: [("agent".to_owned(), "c1".to_owned())].into(),
            viewer_tokens: vec!["viewer".into()],
            operator_tokens: vec!["operator".into()],
            operator_write_rate_limit: None,
            ..MasterConfig::default()
        },
        store.clone(),
        store.clone(),
        store.clone(),
    );
    let router = master.router();
    // Stored before the dispatcher starts (it loads them): the oldest expired silence, more
    // expired ones, and active ones, so that one more active silence reaches both limits.
    let now = Utc::now();
    let matcher = |value: &str| SilenceMatcher {
        name: "node".into(),
        value: value.into(),
        is_regex: false,
        is_equal: true,
    };
    let stored = |i: usize, ends_at: DateTime<Utc>| Silence {
        id: format!("stored-{i:05}"),
        matchers: vec![matcher(&format!("n{i}"))],
        starts_at: now - TimeDelta::hours(5),
        ends_at,
        created_by: "ops".into(),
        comment: String::new(),
        updated_at: now,
    };
    let expired = MAX_KEPT_SILENCES - MAX_ACTIVE_SILENCES;
    for i in 0..expired {
        let ended = now - TimeDelta::hours(4) + TimeDelta::milliseconds(100 * i as i64);
        store.put_silence(&stored(i, ended)).await.unwrap();
    }
    for i in expired..MAX_KEPT_SILENCES - 1 {
        store
            .put_silence(&stored(i, now + TimeDelta::hours(2)))
            .await
            .unwrap();
    }
    let dispatcher = Dispatcher::start(NotifyConfig::empty(), store.clone())
        .await
        .unwrap();
    assert!(master.set_notifications(dispatcher.clone()));

    let ends = (now + TimeDelta::hours(1)).to_rfc3339();
    let body = serde_json::json!({
        "matchers": [{"name": "alertname", "value": "HighCpu", "is_regex": false, "is_equal": true}],
        "ends_at": ends,
        "created_by": "alice",
        "comment": "kernel upgrade",
    });
    let many_matchers: Vec<Value> = (0..=MAX_SILENCE_MATCHERS)
        .map(|i| serde_json::json!({"name": format!("l{i}"), "value": "v"}))
        .collect();
    let long = |n: usize| "x".repeat(n);
    for (change, field) in [
        (serde_json::json!({"matchers": many_matchers}), "matchers: "),
        (
            serde_json::json!({"matchers": [{"name": "node", "value": long(MAX_MATCHER_VALUE + 1)}]}),
            "matchers[0]: ",
        ),
        (
            serde_json::json!({"matchers": [{"name": long(MAX_MATCHER_NAME + 1), "value": "v"}]}),
            "matchers[0]: ",
        ),
        (
            serde_json::json!({"created_by": long(MAX_CREATED_BY + 1)}),
            "created_by: ",
        ),
        (
            serde_json::json!({"comment": long(MAX_COMMENT + 1)}),
            "comment: ",
        ),
    ] {
        let mut bad = body.clone();
        for (k, v) in change.as_object().unwrap() {
            bad[k] = v.clone();
        }
        let (status, answer) =
            call(&router, "POST", "/api/v2/silences", "operator", Some(bad)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(error.starts_with(field), "{field}: {error}");
    }

    // The last active silence that fits, then 409.
    let (status, answer) = call(
        &router,
        "POST",
        "/api/v2/silences",
        "operator",
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let (status, answer) = call(
        &router,
        "POST",
        "/api/v2/silences",
        "operator",
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    let error = answer["error"].as_str().unwrap();
    assert!(
        error.contains("limit") && error.contains("10000"),
        "{error}"
    );
    assert_eq!(dispatcher.silences().list().len(), MAX_KEPT_SILENCES);

    // Expiring one makes room for one; the kept total stays at its bound, the oldest expired
    // silence forgotten (in memory and in the store).
    let (status, _) = call(
        &router,
        "DELETE",
        &format!("/api/v2/silences/stored-{expired:05}"),
        "operator",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, answer) = call(&router, "POST", "/api/v2/silences", "operator", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(dispatcher.silences().list().len(), MAX_KEPT_SILENCES);
    let (status, _) = call(
        &router,
        "GET",
        "/api/v2/silences/stored-00000",
        "viewer",
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the oldest expired one is gone"
    );
    let (status, _) = call(
        &router,
        "GET",
        "/api/v2/silences/stored-00001",
        "viewer",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "the next oldest stays");
    assert_eq!(
        store.list_silences().await.unwrap().len(),
        MAX_KEPT_SILENCES
    );
    dispatcher.stop().await;
}
