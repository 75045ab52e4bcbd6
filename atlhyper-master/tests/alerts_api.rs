//! `/api/v2/alert-rules`, `/api/v2/alerts`, `/api/v2/alerts/history` and the `atlhyper_alerts`
//! family, driven with `oneshot`: roles, 400 naming the field, and alerts from a real snapshot.

use std::sync::Arc;

use atlhyper_master::{Master, MasterConfig, parse_agent_tokens};
use atlhyper_model::{ClusterSnapshot, NodeMetricsSnapshot};
use atlhyper_store::MemoryStore;
use atlhyper_testkit::api::{ApiCall, error_of, json_of};
use axum::body::Bytes;
use axum::http::StatusCode;
use serde_json::{Value, json};

const VIEWER: &str = "viewer-token";
const OPERATOR: &str = "operator-token";
const AGENT: &str = "agent-token";

fn master() -> Master {
    let store = Arc::new(MemoryStore::new());
    let config = MasterConfig {
        agent_tokens: parse_agent_tokens(&format!("{AGENT}=c1")).unwrap(),
        viewer_tokens: vec![VIEWER.into()],
        operator_tokens: vec![OPERATOR.into()],
        ..MasterConfig::default()
    };
    Master::new(config, store.clone(), store.clone(), store)
}

async fn send(
    master: &Master,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Bytes) {
    ApiCall::new(method, path)
        .bearer(token)
        .json(body.as_ref())
        .send(master.router())
        .await
}

fn hot_rule() -> Value {
    json!({"name": "HotNow", "figure": "cpu.usage_percent", "op": ">", "threshold": 90,
           "annotations": {"summary": "{{node}} at {{value}}%"}})
}

#[tokio::test]
async fn an_invalid_rule_is_400_naming_the_field() {
    let m = master();
    let cases = [
        (
            json!({"name": "X", "figure": "cpu.nope", "op": ">", "threshold": 1}),
            "figure: ",
        ),
        (
            json!({"name": "X", "figure": "cpu.usage_percent", "op": ">", "threshold": 1, "for": "ten minutes"}),
            "for: ",
        ),
        (
            json!({"name": "X", "figure": "cpu.usage_percent", "op": ">", "threshold": 1, "keep_firing_for": "5y"}),
            "keep_firing_for: ",
        ),
        (
            json!({"name": "X", "figure": "cpu.usage_percent", "op": ">", "threshold": 1, "scope": {"nodes": "web-("}}),
            "scope.nodes: ",
        ),
        (
            json!({"name": "X", "figure": "cpu.usage_percent", "op": ">", "threshold": 1, "scope": {"clusters": "*"}}),
            "scope.clusters: ",
        ),
        (
            json!({"name": "X", "figure": "cpu.usage_percent", "op": ">", "threshold": 1, "severity": "page"}),
            "severity: ",
        ),
        (
            json!({"name": "X", "figure": "cpu.usage_percent", "op": ">", "threshold": 1, "treshold": 2}),
            "treshold",
        ),
        (
            json!({"name": "X", "figure": "cpu.usage_percent", "op": ">"}),
            "threshold: ",
        ),
    ];
    for (body, field) in cases {
        let (status, answer) = send(
            &m,
            "POST",
            "/api/v2/alert-rules",
            Some(OPERATOR),
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let error = error_of(&answer);
        assert!(error.contains(field), "{body}: {error}");
    }
    let (status, _) = send(
        &m,
        "PUT",
        "/api/v2/alert-rules/Other",
        Some(OPERATOR),
        Some(hot_rule()),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "name differs from the path"
    );
}

#[tokio::test]
async fn viewers_read_operators_write() {
    let m = master();
    let (status, _) = send(&m, "GET", "/api/v2/alert-rules", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = send(&m, "GET", "/api/v2/alert-rules", Some(VIEWER), None).await;
    assert_eq!(status, StatusCode::OK);
    let rules = json_of(&body);
    let node_down = rules
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "NodeDown")
        .unwrap();
    assert_eq!(node_down["origin"], "builtin");
    assert_eq!(node_down["for"], "1m");

    for (method, path) in [
        ("POST", "/api/v2/alert-rules"),
        ("PUT", "/api/v2/alert-rules/HotNow"),
        ("DELETE", "/api/v2/alert-rules/HighCpu"),
    ] {
        let (status, _) = send(&m, method, path, Some(VIEWER), Some(hot_rule())).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}");
    }

    let (status, body) = send(
        &m,
        "POST",
        "/api/v2/alert-rules",
        Some(OPERATOR),
        Some(hot_rule()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body:?}");
    assert_eq!(json_of(&body)["origin"], "api");
    let (status, _) = send(
        &m,
        "POST",
        "/api/v2/alert-rules",
        Some(OPERATOR),
        Some(hot_rule()),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let mut changed = hot_rule();
    changed["threshold"] = json!(95);
    let (status, _) = send(
        &m,
        "PUT",
        "/api/v2/alert-rules/HotNow",
        Some(OPERATOR),
        Some(changed),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = send(&m, "GET", "/api/v2/alert-rules/HotNow", Some(VIEWER), None).await;
    assert_eq!(json_of(&body)["threshold"], 95.0);

    // A built-in rule: disabled through PUT, back to its default through DELETE, never removed.
    let disabled =
        json!({"figure": "cpu.usage_percent", "op": ">", "threshold": 90, "enabled": false});
    let (status, body) = send(
        &m,
        "PUT",
        "/api/v2/alert-rules/HighCpu",
        Some(OPERATOR),
        Some(disabled),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json_of(&body)["origin"], "builtin_modified");
    assert_eq!(json_of(&body)["enabled"], false);
    let (status, _) = send(
        &m,
        "DELETE",
        "/api/v2/alert-rules/HighCpu",
        Some(OPERATOR),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, body) = send(&m, "GET", "/api/v2/alert-rules/HighCpu", Some(VIEWER), None).await;
    assert_eq!(json_of(&body)["origin"], "builtin");
    assert_eq!(json_of(&body)["enabled"], true);
    let (status, _) = send(
        &m,
        "DELETE",
        "/api/v2/alert-rules/HighCpu",
        Some(OPERATOR),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);

    let (status, _) = send(
        &m,
        "DELETE",
        "/api/v2/alert-rules/HotNow",
        Some(OPERATOR),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = send(
        &m,
        "DELETE",
        "/api/v2/alert-rules/HotNow",
        Some(OPERATOR),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn push(m: &Master, cpu: f64) {
    let mut node = NodeMetricsSnapshot {
        node_name: "n1".into(),
        timestamp: chrono::Utc::now(),
        ..NodeMetricsSnapshot::default()
    };
    node.cpu.usage_percent = cpu;
    let mut snapshot = ClusterSnapshot {
        cluster_id: "c1".into(),
        timestamp: chrono::Utc::now(),
        ..ClusterSnapshot::default()
    };
    snapshot.node_metrics.insert("n1".into(), node);
    let (status, _) = ApiCall::new("POST", "/agent/snapshot")
        .bearer(Some(AGENT))
        .header("x-cluster-id", "c1")
        .body(serde_json::to_vec(&snapshot).unwrap())
        .header("content-type", "application/json")
        .send(m.router())
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn alerts_history_and_metrics_from_a_real_snapshot() {
    let m = master();
    m.restore().await.unwrap();
    send(
        &m,
        "POST",
        "/api/v2/alert-rules",
        Some(OPERATOR),
        Some(hot_rule()),
    )
    .await;
    push(&m, 97.0).await;
    m.evaluate_alerts().await;

    let (status, body) = send(&m, "GET", "/api/v2/alerts", Some(VIEWER), None).await;
    assert_eq!(status, StatusCode::OK);
    let alerts = json_of(&body);
    let alerts = alerts.as_array().unwrap();
    // HotNow fires at once; the built-in HighCpu waits its 10 minutes.
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    let hot = alerts.iter().find(|a| a["rule"] == "HotNow").unwrap();
    assert_eq!(hot["labels"]["alertname"], "HotNow");
    assert_eq!(hot["labels"]["node"], "n1");
    assert_eq!(hot["labels"]["cluster"], "c1");
    assert_eq!(hot["state"], "firing");
    assert_eq!(hot["annotations"]["summary"], "n1 at 97%");
    let high = alerts.iter().find(|a| a["rule"] == "HighCpu").unwrap();
    assert_eq!(high["state"], "pending");
    assert!(hot.get("silenced_by").is_none(), "no silence lookup wired");

    for (query, n) in [
        ("state=firing", 1),
        ("state=pending", 1),
        ("severity=warning&cluster=c1&node=n1", 2),
        ("severity=critical", 0),
        ("alertname=NodeDown", 0),
    ] {
        let (_, body) = send(
            &m,
            "GET",
            &format!("/api/v2/alerts?{query}"),
            Some(VIEWER),
            None,
        )
        .await;
        assert_eq!(json_of(&body).as_array().unwrap().len(), n, "{query}");
    }
    let (status, body) = send(
        &m,
        "GET",
        "/api/v2/alerts?state=burning",
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_of(&body).starts_with("state: "));
    let (status, body) = send(
        &m,
        "GET",
        "/api/v2/alerts/history?limit=0",
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_of(&body).starts_with("limit: "));

    let (_, body) = send(&m, "GET", "/metrics", Some(VIEWER), None).await;
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(
        text.contains(
            "atlhyper_alerts{alertname=\"HotNow\",severity=\"warning\",state=\"firing\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains(
        "atlhyper_alerts{alertname=\"NodeDown\",severity=\"critical\",state=\"firing\"} 0"
    ));

    push(&m, 10.0).await;
    m.evaluate_alerts().await;
    let (_, body) = send(&m, "GET", "/api/v2/alerts", Some(VIEWER), None).await;
    assert!(json_of(&body).as_array().unwrap().is_empty());
    let (status, body) = send(
        &m,
        "GET",
        "/api/v2/alerts/history?alertname=HotNow",
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let history = json_of(&body);
    assert_eq!(history.as_array().unwrap().len(), 1);
    assert_eq!(history[0]["state"], "resolved");
    assert!(history[0]["resolved_at"].is_string());
}

/// The bounds of a rule, each through the router: 400 naming the field past a per-rule cap, 409
/// with "limit" past [`MAX_RULES`] stored rules (a replacement still goes through, a deletion
/// makes room).
#[tokio::test]
async fn rules_are_bounded_in_size_and_number() {
    use atlhyper_master::alerting::rules::{
        MAX_ANNOTATION, MAX_LABEL_VALUE, MAX_NAME, MAX_RULE_LABELS, MAX_RULES,
    };
    use atlhyper_store::{AlertRuleRecord, AlertStore};

    let store = Arc::new(MemoryStore::new());
    let config = MasterConfig {
        agent_tokens: parse_agent_tokens(&format!("{AGENT}=c1")).unwrap(),
        viewer_tokens: vec![VIEWER.into()],
        operator_tokens: vec![OPERATOR.into()],
        operator_write_rate_limit: None,
        ..MasterConfig::default()
    };
    let alerting = atlhyper_master::alerting::Alerting::new(
        store.clone(),
        Arc::new(atlhyper_master::alerting::NoPublisher),
        atlhyper_master::alerting::AlertSettings::default(),
    );
    let m = Master::with_alerting(
        config,
        store.clone(),
        store.clone(),
        store.clone(),
        alerting,
    );
    let rule = |name: &str| json!({"name": name, "figure": "node.down"});
    let many = |n: usize, value: &str| -> Value {
        (0..n)
            .map(|i| (format!("k{i}"), Value::from(value)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let with = |field: &str, v: Value| {
        let mut r = rule("Bounded");
        r[field] = v;
        r
    };
    let long = |n: usize| "x".repeat(n);
    let cases = [
        (with("labels", many(MAX_RULE_LABELS + 1, "v")), "labels: "),
        (
            with("annotations", many(MAX_RULE_LABELS + 1, "v")),
            "annotations: ",
        ),
        (
            with("labels", json!({"team": long(MAX_LABEL_VALUE + 1)})),
            "labels.team: ",
        ),
        (
            with("annotations", json!({"summary": long(MAX_ANNOTATION + 1)})),
            "annotations.summary: ",
        ),
        (
            with("labels", json!({ long(MAX_NAME + 1): "v" })),
            "labels.xxx",
        ),
        (rule(&long(MAX_NAME + 1)), "name: "),
    ];
    for (body, field) in cases {
        let (status, answer) = send(
            &m,
            "POST",
            "/api/v2/alert-rules",
            Some(OPERATOR),
            Some(body),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}");
        let error = error_of(&answer);
        assert!(error.starts_with(field), "{field}: {error}");
    }
    // At the caps (all of them at once would pass the 64 KiB body limit): accepted.
    let mut full = with("labels", many(MAX_RULE_LABELS, "v"));
    full["labels"]["k0"] = long(MAX_LABEL_VALUE).into();
    full["annotations"] = many(MAX_RULE_LABELS, "a");
    full["annotations"]["k0"] = long(MAX_ANNOTATION).into();
    let (status, answer) = send(
        &m,
        "POST",
        "/api/v2/alert-rules",
        Some(OPERATOR),
        Some(full),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer:?}");

    // The number: the store holds MAX_RULES - 2 more (written directly, the API's form), so
    // one POST fits and the next is refused.
    for i in 0..MAX_RULES - 2 {
        let name = format!("Stored{i:04}");
        store
            .put_alert_rule(&AlertRuleRecord {
                body: rule(&name).to_string(),
                name,
                updated_at: chrono::Utc::now(),
            })
            .await
            .unwrap();
    }
    let post = |name: &str| {
        send(
            &m,
            "POST",
            "/api/v2/alert-rules",
            Some(OPERATOR),
            Some(rule(name)),
        )
    };
    let (status, _) = post("Last").await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, answer) = post("OneTooMany").await;
    assert_eq!(status, StatusCode::CONFLICT);
    let error = error_of(&answer);
    assert!(error.contains("limit") && error.contains("1000"), "{error}");
    // PUT of a new name is refused the same; a replacement and a change of a built-in rule
    // (there are only as many as built-in rules) go through.
    let (status, answer) = send(
        &m,
        "PUT",
        "/api/v2/alert-rules/OneTooMany",
        Some(OPERATOR),
        Some(rule("OneTooMany")),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(error_of(&answer).contains("limit"));
    let (status, _) = send(
        &m,
        "PUT",
        "/api/v2/alert-rules/Last",
        Some(OPERATOR),
        Some(json!({"figure": "agent.down"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, answer) = send(
        &m,
        "PUT",
        "/api/v2/alert-rules/HighCpu",
        Some(OPERATOR),
        Some(json!({"figure": "cpu.usage_percent", "op": ">", "threshold": 95})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer:?}");
    // Deleting one makes room.
    let (status, _) = send(
        &m,
        "DELETE",
        "/api/v2/alert-rules/Last",
        Some(OPERATOR),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = post("OneTooMany").await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, list) = send(&m, "GET", "/api/v2/alert-rules", Some(VIEWER), None).await;
    let stored = json_of(&list)
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["origin"] == "api")
        .count();
    assert_eq!(stored, MAX_RULES);
    assert!(
        json_of(&list)
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "HighCpu" && r["origin"] == "builtin_modified")
    );
}

#[tokio::test]
async fn whoami_names_the_role_of_the_token() {
    let m = master();
    for (token, role) in [(VIEWER, "viewer"), (OPERATOR, "operator")] {
        let (status, body) = send(&m, "GET", "/api/v2/auth/whoami", Some(token), None).await;
        assert_eq!(status, StatusCode::OK, "{body:?}");
        assert_eq!(json_of(&body), json!({ "role": role }));
    }
    let (status, _) = send(&m, "GET", "/api/v2/auth/whoami", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = send(&m, "GET", "/api/v2/auth/whoami", Some(AGENT), None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "an agent token is no reader"
    );
    // An open master (no reader tokens) lets everyone write.
    let store = Arc::new(MemoryStore::new());
    let open = Master::new(MasterConfig::default(), store.clone(), store.clone(), store);
    let (status, body) = send(&open, "GET", "/api/v2/auth/whoami", None, None).await;
    assert_eq!(status, StatusCode::OK, "{body:?}");
    assert_eq!(json_of(&body), json!({ "role": "operator" }));
}
