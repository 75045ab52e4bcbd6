//! Notification against the real components it talks to, started by the test on loopback:
//! Prometheus Alertmanager (Debian's `prometheus-alertmanager`) for forwarding, and an SMTP sink
//! (Debian's `python3-aiosmtpd`) for email. Without them the tests skip with a reason, except
//! under `CI=true`, where a missing component fails the test (`.ci/run` installs both).

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use atlhyper_master::alerting::AlertPublisher;
use atlhyper_master::alerting::notify::receivers::Notification;
use atlhyper_master::alerting::notify::receivers::webhook::Payload;
use atlhyper_master::alerting::notify::{Dispatcher, NotifyConfig};
use atlhyper_model::{Alert, AlertState, Labels};
use atlhyper_store::MemoryStore;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde_json::Value;
use tokio::process::{Child, Command};

const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";
const PYTHON: &str = "/usr/bin/python3";

/// Whether `component` is usable; under `CI=true` a missing one fails the test.
fn available(component: &str, check: impl FnOnce() -> bool, install: &str) -> bool {
    if check() {
        return true;
    }
    let reason = format!("{component} is not installed ({install})");
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("CI=true and {reason}");
    }
    println!("skipped: {reason}");
    false
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_until<F: std::future::Future<Output = bool>>(
    within: Duration,
    mut check: impl FnMut() -> F,
) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn node_down(node: &str, state: AlertState, fired: DateTime<Utc>, now: DateTime<Utc>) -> Alert {
    let labels = labels(&[
        ("alertname", "NodeDown"),
        ("cluster", "prod-eu"),
        ("node", node),
        ("severity", "critical"),
    ]);
    Alert {
        fingerprint: atlhyper_model::fingerprint(&labels),
        rule: "NodeDown".into(),
        annotations: std::sync::Arc::new(
            [(
                "summary".to_owned(),
                format!("node {node} stopped reporting"),
            )]
            .into(),
        ),
        labels: labels.into(),
        state,
        value: 0.0,
        active_at: fired,
        fired_at: Some(fired),
        resolved_at: (state == AlertState::Resolved).then_some(now),
        evaluated_at: now,
    }
}

/// A webhook receiver keeping every payload.
async fn hook() -> (String, Arc<Mutex<Vec<Value>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let received: Arc<Mutex<Vec<Value>>> = Arc::default();
    let app = Router::new()
        .route(
            "/hook",
            post(
                |State(r): State<Arc<Mutex<Vec<Value>>>>, body: String| async move {
                    r.lock().push(serde_json::from_str(&body).unwrap());
                    StatusCode::OK
                },
            ),
        )
        .with_state(received.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

fn spawn(command: &mut Command) -> Child {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the component")
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

/// Starts a real Alertmanager on loopback whose own webhook goes to `hook_url`; waits until it
/// is ready. Its base URL.
async fn start_alertmanager(dir: &Path, hook_url: &str) -> (Child, String) {
    let am_config = dir.join("alertmanager.yml");
    std::fs::write(
        &am_config,
        format!(
            "route:\n  receiver: test\n  group_by: [alertname, cluster]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: test\n    webhook_configs:\n      - url: {hook_url}\n        send_resolved: true\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let mut am = spawn(
        Command::new(ALERTMANAGER)
            .arg(format!("--config.file={}", am_config.display()))
            .arg(format!("--storage.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address="),
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let ready = wait_until(Duration::from_secs(20), || {
        let http = http.clone();
        let url = format!("{base}/-/ready");
        async move {
            http.get(url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await;
    if !ready {
        let _ = am.start_kill();
        let out = am.wait_with_output().await.unwrap();
        panic!(
            "alertmanager did not become ready: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (am, base)
}

/// Alerts forwarded to a real Alertmanager appear in its `/api/v2/alerts`, its own webhook
/// delivers them to a receiver of the test (in the same version 4 payload our webhooks send),
/// and their resolution reaches it too.
#[tokio::test]
async fn forwarded_alerts_reach_a_real_alertmanager_and_its_webhook() {
    if !available(
        "prometheus-alertmanager",
        || Path::new(ALERTMANAGER).exists(),
        "apt-get install prometheus-alertmanager",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (hook_url, received) = hook().await;
    let (mut am, base) = start_alertmanager(dir.path(), &hook_url).await;
    let http = reqwest::Client::new();

    let config = NotifyConfig::from_yaml(
        &format!(
            "route:\n  receiver: am\n  group_by: [alertname, cluster]\n  group_wait: 100ms\n  group_interval: 1s\nreceivers:\n  - name: am\n    alertmanager_configs:\n      - url: {base}\n"
        ),
        "test.yaml",
    )
    .unwrap();
    let dispatcher = Dispatcher::start(config, Arc::new(MemoryStore::new()))
        .await
        .unwrap();
    let fired = Utc::now();
    let firing = vec![
        node_down("worker-1", AlertState::Firing, fired, fired),
        node_down("worker-2", AlertState::Firing, fired, fired),
    ];
    dispatcher.publish(fired, firing.clone());

    // In the Alertmanager's own API.
    let listed = wait_until(Duration::from_secs(10), || {
        let http = http.clone();
        let url = format!("{base}/api/v2/alerts");
        async move {
            let Ok(r) = http.get(url).send().await else {
                return false;
            };
            let alerts: Value = r.json().await.unwrap_or_default();
            let ours: Vec<&Value> = alerts
                .as_array()
                .into_iter()
                .flatten()
                .filter(|a| a["labels"]["cluster"] == "prod-eu" && a["status"]["state"] == "active")
                .collect();
            ours.len() == 2
                && ours.iter().all(|a| {
                    a["labels"]["alertname"] == "NodeDown"
                        && a["annotations"]["summary"]
                            .as_str()
                            .is_some_and(|s| s.contains("stopped reporting"))
                })
        }
    })
    .await;
    assert!(
        listed,
        "the forwarded alerts never showed in the Alertmanager's /api/v2/alerts"
    );

    // And its webhook delivers them to our test receiver.
    let delivered = wait_until(Duration::from_secs(10), || {
        let r = received.clone();
        async move {
            r.lock().iter().any(|p| {
                p["status"] == "firing" && p["alerts"].as_array().is_some_and(|a| a.len() == 2)
            })
        }
    })
    .await;
    assert!(
        delivered,
        "the Alertmanager's webhook did not deliver: {:?}",
        received.lock()
    );
    let am_payload = received
        .lock()
        .iter()
        .find(|p| p["status"] == "firing")
        .cloned()
        .unwrap();
    assert_eq!(am_payload["version"], "4");
    let nodes: Vec<&str> = am_payload["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["labels"]["node"].as_str().unwrap())
        .collect();
    assert!(nodes.contains(&"worker-1") && nodes.contains(&"worker-2"));
    // Our webhook payload has exactly the fields the real Alertmanager sends.
    let ours = Notification {
        receiver: "test".into(),
        group_key: "{}:{}".into(),
        group_labels: Labels::new(),
        alerts: firing.clone(),
        group_interval: Duration::from_secs(1),
        repeat_interval: Duration::from_secs(3600),
    };
    let ours = serde_json::to_value(Payload::new(&ours, "", 0)).unwrap();
    assert_eq!(keys(&ours), keys(&am_payload));
    assert_eq!(keys(&ours["alerts"][0]), keys(&am_payload["alerts"][0]));
    assert_eq!(am_payload["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");

    // Resolved: the Alertmanager sends a resolved notification.
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
    let resolved = wait_until(Duration::from_secs(15), || {
        let r = received.clone();
        async move { r.lock().iter().any(|p| p["status"] == "resolved") }
    })
    .await;
    assert!(
        resolved,
        "no resolved notification from the Alertmanager: {:?}",
        received.lock()
    );
    dispatcher.stop().await;
    let _ = am.start_kill();
    let _ = am.wait().await;
}

/// The alert as a real Alertmanager lists it: (state, endsAt, updatedAt).
async fn listed(
    http: &reqwest::Client,
    base: &str,
    node: &str,
) -> Option<(String, DateTime<Utc>, DateTime<Utc>)> {
    let alerts: Value = http
        .get(format!("{base}/api/v2/alerts"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let alert = alerts
        .as_array()?
        .iter()
        .find(|a| a["labels"]["node"] == node)?;
    let time = |field: &str| alert[field].as_str()?.parse::<DateTime<Utc>>().ok();
    Some((
        alert["status"]["state"].as_str()?.to_owned(),
        time("endsAt")?,
        time("updatedAt")?,
    ))
}

/// With a route whose `group_interval` (10 min) and `repeat_interval` (4 h) are long, a firing
/// alert is still re-sent to the Alertmanager within a minute (RESEND_EVERY), each time with an
/// `endsAt` ahead of the next re-send, so it stays active there. Takes a little over a minute.
#[tokio::test]
async fn forwarding_resends_firing_alerts_every_minute_whatever_the_route_timers() {
    use atlhyper_master::alerting::notify::receivers::alertmanager::RESEND_EVERY;
    if !available(
        "prometheus-alertmanager",
        || Path::new(ALERTMANAGER).exists(),
        "apt-get install prometheus-alertmanager",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (hook_url, _received) = hook().await;
    let (mut am, base) = start_alertmanager(dir.path(), &hook_url).await;
    let http = reqwest::Client::new();
    let config = NotifyConfig::from_yaml(
        &format!(
            "route:\n  receiver: am\n  group_wait: 100ms\n  group_interval: 10m\n  repeat_interval: 4h\nreceivers:\n  - name: am\n    alertmanager_configs:\n      - url: {base}\n"
        ),
        "test.yaml",
    )
    .unwrap();
    let dispatcher = Dispatcher::start(config, Arc::new(MemoryStore::new()))
        .await
        .unwrap();
    // The engine publishes every evaluation while the alert fires.
    let fired = Utc::now();
    let publisher = {
        let dispatcher = dispatcher.clone();
        tokio::spawn(async move {
            loop {
                let now = Utc::now();
                dispatcher.publish(
                    now,
                    vec![node_down("worker-9", AlertState::Firing, fired, now)],
                );
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };
    let started = Instant::now();
    let mut first = None;
    while first.is_none() && started.elapsed() < Duration::from_secs(10) {
        first = listed(&http, &base, "worker-9").await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (state, first_end, first_update) =
        first.expect("the forwarded alert never showed in the Alertmanager");
    assert_eq!(state, "active");
    let ahead = (first_end - Utc::now()).to_std().unwrap_or_default();
    assert!(
        ahead > RESEND_EVERY && ahead <= Duration::from_secs(241),
        "endsAt {ahead:?} ahead: four re-send periods"
    );
    // The re-send: the Alertmanager's copy is updated with a later endsAt, and stays active.
    let mut resent = None;
    while started.elapsed() < RESEND_EVERY + Duration::from_secs(20) {
        let now = listed(&http, &base, "worker-9").await;
        if let Some((state, end, update)) = now {
            assert_eq!(
                state, "active",
                "expired in the Alertmanager between re-sends"
            );
            if update > first_update && end > first_end {
                resent = Some((update - first_update).to_std().unwrap_or_default());
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    publisher.abort();
    let gap = resent.expect("not re-sent to the Alertmanager within a minute");
    println!("forwarding: first endsAt {ahead:?} ahead, re-sent after {gap:?}");
    assert!(
        gap <= RESEND_EVERY + Duration::from_secs(2),
        "re-sent after {gap:?}"
    );
    dispatcher.stop().await;
    let _ = am.start_kill();
    let _ = am.wait().await;
}

/// An email to a real SMTP sink carries the alert's labels and annotations.
#[tokio::test]
async fn email_reaches_a_real_smtp_sink() {
    let has_aiosmtpd = || {
        std::process::Command::new(PYTHON)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !available(
        "python3-aiosmtpd",
        has_aiosmtpd,
        "apt-get install python3-aiosmtpd",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("mail");
    let port = free_port();
    let mut sink = spawn(
        Command::new(PYTHON)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir),
    );
    let up = wait_until(Duration::from_secs(20), || async move {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
    })
    .await;
    assert!(up, "the SMTP sink did not start");

    let config = NotifyConfig::from_yaml(
        &format!(
            "global:\n  smtp_smarthost: 127.0.0.1:{port}\n  smtp_from: atlhyper@example.org\n  smtp_require_tls: false\nroute:\n  receiver: mail\n  group_wait: 100ms\nreceivers:\n  - name: mail\n    email_configs:\n      - to: ops@example.org, oncall@example.org\n"
        ),
        "test.yaml",
    )
    .unwrap();
    let dispatcher = Dispatcher::start(config, Arc::new(MemoryStore::new()))
        .await
        .unwrap();
    let now = Utc::now();
    dispatcher.publish(
        now,
        vec![node_down("worker-9", AlertState::Firing, now, now)],
    );
    let new = maildir.join("new");
    let arrived = wait_until(Duration::from_secs(10), || {
        let new = new.clone();
        async move { std::fs::read_dir(&new).is_ok_and(|mut d| d.next().is_some()) }
    })
    .await;
    assert!(arrived, "no message in the sink's maildir");
    let file = std::fs::read_dir(&new)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    // Long headers are folded (RFC 5322): unfold before reading them.
    let message = std::fs::read_to_string(file)
        .unwrap()
        .replace("\r\n", "\n")
        .replace("\n ", " ");
    assert!(
        message.contains(
            "Subject: [FIRING:1] NodeDown (cluster=prod-eu node=worker-9 severity=critical)"
        ),
        "{message}"
    );
    assert!(message.contains("From: atlhyper@example.org"), "{message}");
    assert!(
        message.contains("ops@example.org") && message.contains("oncall@example.org"),
        "{message}"
    );
    for line in [
        "alertname = NodeDown",
        "cluster = prod-eu",
        "node = worker-9",
        "severity = critical",
        "summary = node worker-9 stopped reporting",
    ] {
        assert!(message.contains(line), "{line} missing: {message}");
    }
    dispatcher.stop().await;
    let _ = sink.start_kill();
    let _ = sink.wait().await;
}
