//! The audit log: every write through the API recorded with who, from where, what, on what and
//! how it ended; listed to operators only (`GET /api/v2/audit`), persisted in the store.

use std::sync::Arc;

use atlhyper_master::{Master, MasterConfig, parse_agent_tokens};
use atlhyper_store::{AuditLog, MemoryStore, SqliteStore};
use atlhyper_testkit::api::{ApiCall, json_of};
use axum::body::Bytes;
use axum::http::StatusCode;
use serde_json::{Value, json};

const VIEWER: &str = "viewer-token-0123456789";
const OPERATOR: &str = "operator-token-0123456789";
const AGENT: &str = "agent-token-0123456789";
const CLIENT: &str = "192.0.2.7:40123";

fn config() -> MasterConfig {
    MasterConfig {
        agent_tokens: parse_agent_tokens(&format!("{AGENT}=c1")).unwrap(),
        viewer_tokens: vec![VIEWER.into()],
        operator_tokens: vec![OPERATOR.into()],
        ..MasterConfig::default()
    }
}

fn master() -> Master {
    let store = Arc::new(MemoryStore::new());
    Master::new(config(), store.clone(), store.clone(), store)
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
        .from_peer(CLIENT.parse().unwrap())
        .send(master.router())
        .await
}

async fn with_cluster(master: &Master) {
    let snapshot = atlhyper_testkit::snapshot::cluster("c1", 2, 1, chrono::Utc::now());
    master
        .ingest_snapshot("c1", snapshot, "127.0.0.1:1")
        .await
        .unwrap();
}

/// The audit log as an operator reads it: (actor, action, target, status) per entry.
async fn entries(master: &Master, query: &str) -> Vec<(String, String, String, u64)> {
    let (status, body) = send(
        master,
        "GET",
        &format!("/api/v2/audit{query}"),
        Some(OPERATOR),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body:?}");
    json_of(&body)
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_owned(),
                e["action"].as_str().unwrap().to_owned(),
                e["target"].as_str().unwrap().to_owned(),
                e["status"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn row(actor: &str, action: &str, target: &str, status: u64) -> (String, String, String, u64) {
    (
        actor.to_owned(),
        action.to_owned(),
        target.to_owned(),
        status,
    )
}

#[tokio::test]
async fn every_write_is_recorded_with_who_what_and_how_it_ended() {
    let m = master();
    with_cluster(&m).await;

    let command = json!({"cluster_id": "c1", "action": "ping", "target_kind": "",
        "target_namespace": "", "target_name": "", "params": {}});
    let (status, body) = send(
        &m,
        "POST",
        "/api/v2/commands",
        Some(OPERATOR),
        Some(command),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let command_id = json_of(&body)["command_id"].as_str().unwrap().to_owned();
    let rule = json!({"name": "HotNow", "figure": "cpu.usage_percent", "op": ">", "threshold": 90});
    let rule_path = "/api/v2/alert-rules/HotNow";
    let writes = [
        // A viewer may not delete; no token at all; a token that is not one.
        ("DELETE", "/api/v2/clusters/c1", Some(VIEWER), None, 403),
        ("POST", "/api/v2/alert-rules", None, Some(rule.clone()), 401),
        (
            "POST",
            "/api/v2/alert-rules",
            Some("wrong-token-0123456789"),
            Some(rule.clone()),
            401,
        ),
        // A refused body is recorded with its 400.
        (
            "POST",
            "/api/v2/alert-rules",
            Some(OPERATOR),
            Some(json!({"name": "X"})),
            400,
        ),
        (
            "POST",
            "/api/v2/alert-rules",
            Some(OPERATOR),
            Some(rule.clone()),
            201,
        ),
        ("PUT", rule_path, Some(OPERATOR), Some(rule.clone()), 200),
        ("DELETE", rule_path, Some(OPERATOR), None, 204),
        (
            "DELETE",
            "/api/v2/clusters/c1/nodes/node-001",
            Some(OPERATOR),
            None,
            204,
        ),
        ("DELETE", "/api/v2/clusters/c1", Some(OPERATOR), None, 204),
        ("DELETE", "/api/v2/clusters/c1", Some(OPERATOR), None, 404),
    ];
    for (method, path, token, body, want) in writes.clone() {
        let (status, answer) = send(&m, method, path, token, body).await;
        assert_eq!(status.as_u16(), want, "{method} {path}: {answer:?}");
    }
    // Reads are not writes.
    send(&m, "GET", "/api/v2/alert-rules", Some(VIEWER), None).await;
    send(&m, "GET", "/api/v2/commands", Some(OPERATOR), None).await;

    let listed = entries(&m, "?limit=100").await;
    let op = "env-operator-1";
    let expected = vec![
        row(op, "cluster.delete", "/api/v2/clusters/c1", 404),
        row(op, "cluster.delete", "/api/v2/clusters/c1", 204),
        row(op, "node.delete", "/api/v2/clusters/c1/nodes/node-001", 204),
        row(op, "alert_rule.delete", rule_path, 204),
        row(op, "alert_rule.update", rule_path, 200),
        row(op, "alert_rule.create", rule_path, 201),
        row(op, "alert_rule.create", "/api/v2/alert-rules", 400),
        row("unknown", "alert_rule.create", "/api/v2/alert-rules", 401),
        row("unknown", "alert_rule.create", "/api/v2/alert-rules", 401),
        row("env-viewer-1", "cluster.delete", "/api/v2/clusters/c1", 403),
        row(
            op,
            "command.create",
            &format!("/api/v2/commands/{command_id}"),
            201,
        ),
    ];
    assert_eq!(listed, expected, "newest first, every write once");

    // The whole entry: time, source address, detail.
    let (_, body) = send(
        &m,
        "GET",
        "/api/v2/audit?action=command.create",
        Some(OPERATOR),
        None,
    )
    .await;
    let list = json_of(&body);
    let entry = &list.as_array().unwrap()[0];
    assert_eq!(entry["source"], CLIENT);
    assert_eq!(entry["detail"], "cluster=c1 action=ping");
    let at = chrono::DateTime::parse_from_rfc3339(entry["at"].as_str().unwrap()).unwrap();
    assert!(
        (chrono::Utc::now() - at.to_utc()).num_seconds() < 60,
        "{at}"
    );
    // Never a token's text.
    let all = String::from_utf8_lossy(
        &send(&m, "GET", "/api/v2/audit", Some(OPERATOR), None)
            .await
            .1,
    )
    .into_owned();
    for token in [VIEWER, OPERATOR, "wrong-token-0123456789"] {
        assert!(!all.contains(token), "a token in the audit log: {all}");
    }
    assert_eq!(entries(&m, "?limit=2").await, expected[..2]);
}

#[tokio::test]
async fn the_audit_log_is_for_operators_and_names_a_bad_parameter() {
    let m = master();
    for (token, want) in [
        (Some(VIEWER), 403),
        (None, 401),
        (Some(AGENT), 401),
        (Some(OPERATOR), 200),
    ] {
        let (status, body) = send(&m, "GET", "/api/v2/audit", token, None).await;
        assert_eq!(status.as_u16(), want, "{token:?}: {body:?}");
    }
    for (query, names) in [
        ("from=yesterday", "from:"),
        ("to=1700000000", "to:"),
        ("limit=0", "limit:"),
        ("limit=many", "limit:"),
        ("action=", "action:"),
        ("acton=command.create", "acton:"),
    ] {
        let (status, body) = send(
            &m,
            "GET",
            &format!("/api/v2/audit?{query}"),
            Some(OPERATOR),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        let message = json_of(&body)["error"].as_str().unwrap().to_owned();
        assert!(message.starts_with(names), "{query}: {message}");
    }
    // Reading the log is not itself a write.
    assert!(entries(&m, "").await.is_empty());
}

#[tokio::test]
async fn an_open_master_records_anonymous_writes() {
    let store = Arc::new(MemoryStore::new());
    let m = Master::new(MasterConfig::default(), store.clone(), store.clone(), store);
    with_cluster(&m).await;
    let (status, _) = send(&m, "DELETE", "/api/v2/clusters/c1", None, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let listed = entries(&m, "").await;
    assert_eq!(
        listed,
        [row(
            "anonymous",
            "cluster.delete",
            "/api/v2/clusters/c1",
            204
        )]
    );
}

#[tokio::test]
async fn the_audit_log_survives_a_restart_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("atlhyper.db");
    {
        let store = Arc::new(SqliteStore::open(&path).unwrap());
        let m = Master::new(config(), store.clone(), store.clone(), store.clone())
            .with_audit_log(store.clone());
        with_cluster(&m).await;
        let (status, _) = send(&m, "DELETE", "/api/v2/clusters/c1", Some(OPERATOR), None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        drop(m);
    }
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let stored = store
        .list_audit(&atlhyper_store::AuditQuery::default())
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].action, "cluster.delete");
    assert_eq!(stored[0].source, CLIENT);
    let m =
        Master::new(config(), store.clone(), store.clone(), store.clone()).with_audit_log(store);
    assert_eq!(
        entries(&m, "").await,
        [row(
            "env-operator-1",
            "cluster.delete",
            "/api/v2/clusters/c1",
            204
        )]
    );
}
