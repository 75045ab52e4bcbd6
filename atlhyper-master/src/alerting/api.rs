//! `/api/v2/alerts`, `/api/v2/alerts/history` and `/api/v2/alert-rules`: viewers read,
//! operators write. A refused rule is 400 with the field first in the message
//! (`{"error": "scope.nodes: bad pattern ..."}`).

use std::collections::HashMap;

use atlhyper_model::{Alert, AlertState, Severity};
use atlhyper_store::{AlertHistoryQuery, MAX_ALERT_HISTORY_LIMIT};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::builtin::builtin_rules;
use super::rules::{MAX_RULES, Rule, RuleSpec, from_json};
use super::{EffectiveRule, RuleOrigin};
use crate::Master;
use crate::audit::AuditNote;
use crate::error::ApiError;
use crate::routes::body::read_body;

/// Largest rule body, bytes.
const MAX_RULE_BODY: usize = 64 << 10;

/// The routes, to merge into the master's router (under its limits).
pub(crate) fn routes() -> Router<Master> {
    Router::new()
        .route("/api/v2/alerts", get(list_alerts))
        .route("/api/v2/alerts/history", get(history))
        .route("/api/v2/alert-rules", get(list_rules).post(create_rule))
        .route(
            "/api/v2/alert-rules/{name}",
            get(get_rule).put(put_rule).delete(delete_rule),
        )
}

/// One alert as the API shows it: the alert, and the silences that mute it when notification
/// says so.
#[derive(Serialize)]
struct AlertItem<'a> {
    #[serde(flatten)]
    alert: &'a Alert,
    #[serde(skip_serializing_if = "Option::is_none")]
    silenced_by: Option<Vec<String>>,
}

fn bad_param(name: &str, value: &str, why: &str) -> ApiError {
    ApiError::bad_request(format!("{name}: {value:?} {why}"))
}

/// `GET /api/v2/alerts?state=&severity=&alertname=&cluster=&node=`: pending and firing alerts
/// as of the last evaluation.
async fn list_alerts(
    State(master): State<Master>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let state = match q.get("state").map(String::as_str) {
        None | Some("") => None,
        Some("pending") => Some(AlertState::Pending),
        Some("firing") => Some(AlertState::Firing),
        Some(other) => return Err(bad_param("state", other, "is not pending or firing")),
    };
    let severity: Option<Severity> = match q.get("severity").filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(
            s.parse()
                .map_err(|e: String| ApiError::bad_request(format!("severity: {e}")))?,
        ),
    };
    let label = |name: &str| q.get(name).filter(|v| !v.is_empty());
    let alerting = master.alerting();
    let running = alerting.running();
    let items: Vec<AlertItem<'_>> = running
        .iter()
        .filter(|a| state.is_none_or(|s| a.state == s))
        .filter(|a| severity.is_none_or(|s| a.severity() == Some(s)))
        .filter(|a| {
            ["alertname", "cluster", "node"]
                .iter()
                .all(|name| label(name).is_none_or(|v| a.labels.get(*name) == Some(v)))
        })
        .map(|alert| AlertItem {
            alert,
            silenced_by: alerting.silenced_by(alert),
        })
        .collect();
    Ok(Json(items).into_response())
}

fn parse_time(name: &str, value: Option<&String>) -> Result<Option<DateTime<Utc>>, ApiError> {
    value
        .filter(|v| !v.is_empty())
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| bad_param(name, v, "is not an RFC 3339 time"))
        })
        .transpose()
}

/// `GET /api/v2/alerts/history?from=&to=&alertname=&cluster=&limit=`: resolved alerts, newest
/// first (limit 100 by default).
async fn history(
    State(master): State<Master>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let limit = match q.get("limit").filter(|v| !v.is_empty()) {
        None => 100,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_ALERT_HISTORY_LIMIT).contains(n))
            .ok_or_else(|| {
                bad_param(
                    "limit",
                    v,
                    &format!("is not 1 to {MAX_ALERT_HISTORY_LIMIT}"),
                )
            })?,
    };
    let query = AlertHistoryQuery {
        from: parse_time("from", q.get("from"))?,
        to: parse_time("to", q.get("to"))?,
        rule: q.get("alertname").filter(|v| !v.is_empty()).cloned(),
        cluster: q.get("cluster").filter(|v| !v.is_empty()).cloned(),
        limit,
    };
    let list = master
        .alerting()
        .store()
        .alert_history(&query)
        .await
        .map_err(|e| ApiError::store("reading alert history", &e))?;
    Ok(Json(list).into_response())
}

/// A rule as the API shows it.
#[derive(Serialize)]
struct RuleItem<'a> {
    #[serde(flatten)]
    spec: &'a RuleSpec,
    origin: RuleOrigin,
}

fn item(r: &EffectiveRule) -> RuleItem<'_> {
    RuleItem {
        spec: &r.rule.spec,
        origin: r.origin,
    }
}

/// `GET /api/v2/alert-rules`: every effective rule, sorted by name, with its origin.
async fn list_rules(State(master): State<Master>) -> Result<Response, ApiError> {
    let rules = master.alerting().rules();
    let items: Vec<RuleItem<'_>> = rules.iter().map(item).collect();
    Ok(Json(items).into_response())
}

/// `GET /api/v2/alert-rules/{name}`.
async fn get_rule(
    State(master): State<Master>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let rules = master.alerting().rules();
    let rule = rules
        .iter()
        .find(|r| r.rule.name() == name)
        .ok_or_else(|| ApiError::not_found(format!("alert rule {name} not found")))?;
    Ok(Json(item(rule)).into_response())
}

async fn read_rule(body: Body) -> Result<RuleSpec, ApiError> {
    let bytes = read_body(body, MAX_RULE_BODY, "alert rule").await?;
    from_json(&bytes).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// Checks, writes and answers with the effective rule; `created` picks 201 over 200.
async fn write_rule(master: &Master, spec: RuleSpec, created: bool) -> Result<Response, ApiError> {
    let rule = Rule::compile(spec).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let alerting = master.alerting();
    alerting
        .put_rule(&rule.spec)
        .await
        .map_err(|e| ApiError::store("saving the alert rule", &e))?;
    let rules = alerting.rules();
    let stored = rules
        .iter()
        .find(|r| r.rule.name() == rule.name())
        .ok_or_else(|| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "rule not installed"))?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let note = AuditNote::new(
        format!("/api/v2/alert-rules/{}", rule.name()),
        String::new(),
    );
    Ok((status, Extension(note), Json(item(stored))).into_response())
}

fn refuse_file_rule(rules: &[EffectiveRule], name: &str) -> Result<(), ApiError> {
    if rules
        .iter()
        .any(|r| r.rule.name() == name && r.origin == RuleOrigin::File)
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("alert rule {name} comes from the alert configuration file; change it there"),
        ));
    }
    Ok(())
}

/// Refuses a new rule past [`MAX_RULES`] created through the API (409). Changed built-in
/// rules do not count: there are only as many as built-in rules.
async fn check_room(master: &Master) -> Result<(), ApiError> {
    let stored = master
        .alerting()
        .store()
        .list_alert_rules()
        .await
        .map_err(|e| ApiError::store("reading alert rules", &e))?;
    let builtin: Vec<String> = builtin_rules().into_iter().map(|r| r.name).collect();
    let created = stored.iter().filter(|r| !builtin.contains(&r.name)).count();
    if created >= MAX_RULES {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "alert rule limit reached: at most {MAX_RULES} rules created through the API \
                 besides the built-in ones; delete one first"
            ),
        ));
    }
    Ok(())
}

/// `POST /api/v2/alert-rules` (operator): 201 with the rule; 409 when the name is taken.
async fn create_rule(State(master): State<Master>, body: Body) -> Result<Response, ApiError> {
    let spec = read_rule(body).await?;
    let _writing = master.alerting().writing.lock().await;
    if master
        .alerting()
        .rules()
        .iter()
        .any(|r| r.rule.name() == spec.name)
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "alert rule {} exists; PUT /api/v2/alert-rules/{} replaces it",
                spec.name, spec.name
            ),
        ));
    }
    check_room(&master).await?;
    write_rule(&master, spec, true).await
}

/// `PUT /api/v2/alert-rules/{name}` (operator): creates or replaces (a built-in rule too: its
/// stored form wins until deleted). The body's `name`, when set, must be the path's.
async fn put_rule(
    State(master): State<Master>,
    Path(name): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let mut spec = read_rule(body).await?;
    if spec.name.is_empty() {
        spec.name.clone_from(&name);
    } else if spec.name != name {
        return Err(ApiError::bad_request(format!(
            "name: {:?} differs from the path's {name:?}",
            spec.name
        )));
    }
    let _writing = master.alerting().writing.lock().await;
    let rules = master.alerting().rules();
    refuse_file_rule(&rules, &name)?;
    let exists = rules.iter().any(|r| r.rule.name() == name);
    if !exists {
        check_room(&master).await?;
    }
    write_rule(&master, spec, !exists).await
}

/// `DELETE /api/v2/alert-rules/{name}` (operator): 204. A changed built-in rule goes back to
/// its default; a built-in rule as shipped cannot be deleted (409: disable it with
/// `"enabled": false`).
async fn delete_rule(
    State(master): State<Master>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let alerting = master.alerting();
    let _writing = alerting.writing.lock().await;
    let rules = alerting.rules();
    refuse_file_rule(&rules, &name)?;
    let deleted = alerting
        .store()
        .delete_alert_rule(&name)
        .await
        .map_err(|e| ApiError::store("deleting the alert rule", &e))?;
    if !deleted {
        return Err(match rules.iter().find(|r| r.rule.name() == name) {
            Some(_) => ApiError::new(
                StatusCode::CONFLICT,
                format!("{name} is a built-in rule; disable it with \"enabled\": false"),
            ),
            None => ApiError::not_found(format!("alert rule {name} not found")),
        });
    }
    alerting
        .reload_rules()
        .await
        .map_err(|e| ApiError::store("reloading alert rules", &e))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
