//! `/api/v2/silences`: list and read (viewer), create and expire (operator); and
//! `GET /api/v2/notifications?limit=` (viewer): the newest deliveries, what went to whom, when,
//! with what result (default 100, at most 1000).
//!
//! `POST` takes `{"matchers": [{"name", "value", "is_regex", "is_equal"}], "starts_at", "ends_at",
//! "created_by", "comment"}` (times RFC 3339; `starts_at` defaults to now) and answers 201 with
//! the stored silence and its `id`; `DELETE /api/v2/silences/{id}` expires it (it stays listed,
//! `state: expired`, until the retention). Bad input is 400 naming the field; a silence past
//! [`MAX_ACTIVE_SILENCES`](super::silence::MAX_ACTIVE_SILENCES) active or pending ones is 409.

use atlhyper_store::{Silence, SilenceMatcher};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Extension, Json};
use axum::{Router, response::IntoResponse, response::Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Dispatcher;
use super::silence::{NewSilence, SilenceError, SilenceState};
use crate::Master;
use crate::audit::AuditNote;
use crate::error::ApiError;
use crate::routes::body::{parse_json, read_body};

/// Largest silence body, bytes (64 matchers of 4 KiB plus the comment fit).
const SILENCE_BODY_LIMIT: usize = 512 << 10;

/// The silence routes, to merge into the master's router.
pub(crate) fn routes() -> Router<Master> {
    Router::new()
        .route("/api/v2/silences", get(list).post(create))
        .route("/api/v2/silences/{id}", get(read).delete(expire))
        .route("/api/v2/notifications", get(notifications))
}

/// Deliveries listed by default, and at most.
const DEFAULT_NOTIFICATIONS: usize = 100;
const MAX_NOTIFICATIONS: usize = 1000;

async fn notifications(
    State(master): State<Master>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Result<Response, ApiError> {
    let limit = match query
        .as_deref()
        .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("limit=")))
    {
        None => DEFAULT_NOTIFICATIONS,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_NOTIFICATIONS).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "limit: {text:?} is not a number from 1 to {MAX_NOTIFICATIONS}"
                ))
            })?,
    };
    let records = dispatcher(&master)?
        .recent_notifications(limit)
        .await
        .map_err(|e| ApiError::store("reading the notification log", &e))?;
    Ok(Json(records).into_response())
}

/// A silence as the API shows it.
#[derive(Debug, Serialize)]
struct SilenceBody {
    #[serde(flatten)]
    silence: Silence,
    /// `pending`, `active` or `expired` at the time of the answer.
    state: SilenceState,
}

impl SilenceBody {
    fn new(silence: Silence, now: DateTime<Utc>) -> Self {
        Self {
            state: SilenceState::of(&silence, now),
            silence,
        }
    }
}

/// What `POST` takes: times as text, so a bad one is refused naming its field.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SilenceRequest {
    matchers: Vec<SilenceMatcher>,
    #[serde(default)]
    starts_at: Option<String>,
    ends_at: String,
    created_by: String,
    #[serde(default)]
    comment: String,
}

fn time(field: &str, text: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            ApiError::bad_request(format!("{field}: {text:?} is not an RFC 3339 time: {e}"))
        })
}

fn dispatcher(master: &Master) -> Result<&Dispatcher, ApiError> {
    master.notifications().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "alert notification is not running on this master",
        )
    })
}

fn silence_error(e: SilenceError) -> ApiError {
    match e {
        SilenceError::Invalid(why) => ApiError::bad_request(why),
        SilenceError::Limit(_) => ApiError::new(StatusCode::CONFLICT, e.to_string()),
        SilenceError::Store(e) => ApiError::store("storing the silence", &e),
    }
}

async fn list(State(master): State<Master>) -> Result<Response, ApiError> {
    let now = Utc::now();
    let all: Vec<SilenceBody> = dispatcher(&master)?
        .silences()
        .list()
        .into_iter()
        .map(|s| SilenceBody::new(s, now))
        .collect();
    Ok(Json(all).into_response())
}

async fn read(State(master): State<Master>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let silence = dispatcher(&master)?
        .silences()
        .get(&id)
        .ok_or_else(|| ApiError::not_found(format!("silence {id} not found")))?;
    Ok(Json(SilenceBody::new(silence, Utc::now())).into_response())
}

async fn create(State(master): State<Master>, body: Body) -> Result<Response, ApiError> {
    let silences = dispatcher(&master)?.silences();
    let bytes = read_body(body, SILENCE_BODY_LIMIT, "silence").await?;
    let request: SilenceRequest = parse_json(&bytes, "silence")?;
    let now = Utc::now();
    let new = NewSilence {
        matchers: request.matchers,
        starts_at: match &request.starts_at {
            Some(text) => time("starts_at", text)?,
            None => now,
        },
        ends_at: time("ends_at", &request.ends_at)?,
        created_by: request.created_by,
        comment: request.comment,
    };
    let silence = silences.create(new, now).await.map_err(silence_error)?;
    tracing::info!(id = %silence.id, created_by = %silence.created_by, "silence created");
    let note = AuditNote::new(
        format!("/api/v2/silences/{}", silence.id),
        format!("created_by={}", silence.created_by),
    );
    Ok((
        StatusCode::CREATED,
        Extension(note),
        Json(SilenceBody::new(silence, now)),
    )
        .into_response())
}

async fn expire(
    State(master): State<Master>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let now = Utc::now();
    let silence = dispatcher(&master)?
        .silences()
        .expire(&id, now)
        .await
        .map_err(|e| ApiError::store("expiring the silence", &e))?
        .ok_or_else(|| ApiError::not_found(format!("silence {id} not found")))?;
    tracing::info!(id = %silence.id, "silence expired");
    Ok(Json(SilenceBody::new(silence, now)).into_response())
}
