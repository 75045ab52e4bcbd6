//! The command routes: operators create commands for a cluster's agent, viewers read them.

use std::time::Duration;

use atlhyper_model::{CommandCreated, CommandRecord, CommandStatus, CreateCommand};
use atlhyper_store::CommandFilter;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use crate::Master;
use crate::audit::AuditNote;
use crate::auth::valid_cluster_id;
use crate::commands::NewCommand;
use crate::error::ApiError;
use crate::routes::body::read_json;
use crate::routes::respond::{Params, params};

/// Longest timeout of a command created through the API, seconds.
pub const MAX_COMMAND_TIMEOUT_SECS: u64 = 24 * 3600;

/// Bytes a command body may have beyond its `params`: the id, action, target and timeout fields.
const COMMAND_FIELDS_BYTES: usize = 16 << 10;

/// `POST /api/v2/commands` (operator): 201 `{command_id, status}`.
pub(crate) async fn create_command(
    State(master): State<Master>,
    body: Body,
) -> Result<Response, ApiError> {
    let max_params = master.config.max_command_params;
    // Stop reading a body that cannot hold an acceptable command, before it is all in memory.
    let body_limit = master
        .config
        .json_body_limit
        .min(max_params.saturating_add(COMMAND_FIELDS_BYTES));
    let what = format!("command (params may be at most {max_params} bytes of JSON)");
    let create: CreateCommand = read_json(body, body_limit, &what).await?;
    let params_bytes = serde_json::to_vec(&create.params)
        .map_err(|e| ApiError::bad_request(format!("command params: {e}")))?
        .len();
    if params_bytes > max_params {
        return Err(ApiError::too_large(format!(
            "command params are {params_bytes} bytes of JSON, more than the {max_params} allowed \
             (MASTER_MAX_COMMAND_PARAMS)"
        )));
    }
    valid_cluster_id(&create.cluster_id)?;
    if create.action.is_empty() || create.action.len() > 64 {
        return Err(ApiError::bad_request("action must be 1 to 64 characters"));
    }
    if !master.hub.contains(&create.cluster_id) {
        return Err(ApiError::not_found(format!(
            "cluster {} not found",
            create.cluster_id
        )));
    }
    let timeout = match create.timeout_secs {
        None => master.config.command_timeout,
        Some(s) if (1..=MAX_COMMAND_TIMEOUT_SECS).contains(&s) => Duration::from_secs(s),
        Some(s) => {
            return Err(ApiError::bad_request(format!(
                "timeout_secs must be from 1 to {MAX_COMMAND_TIMEOUT_SECS}, got {s}"
            )));
        }
    };
    let detail = format!("cluster={} action={}", create.cluster_id, create.action);
    let record = crate::commands::queue_command(
        &master,
        NewCommand {
            cluster_id: create.cluster_id,
            action: create.action,
            target_kind: create.target_kind,
            target_namespace: create.target_namespace,
            target_name: create.target_name,
            params: create.params,
            timeout,
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Extension(AuditNote::new(
            format!("/api/v2/commands/{}", record.command_id),
            detail,
        )),
        Json(CommandCreated {
            command_id: record.command_id,
            status: record.status,
        }),
    )
        .into_response())
}

/// `GET /api/v2/commands/{id}`.
pub(crate) async fn get_command(
    State(master): State<Master>,
    Path(id): Path<String>,
) -> Result<Json<CommandRecord>, ApiError> {
    match master.commands.get(&id).await {
        Ok(Some(record)) => Ok(Json(record)),
        Ok(None) => Err(ApiError::not_found(format!("command {id} not found"))),
        Err(e) => Err(master.store_failed("reading a command")(e)),
    }
}

/// `GET /api/v2/commands?cluster_id=&status=&action=&limit=&offset=`.
pub(crate) async fn list_commands(
    State(master): State<Master>,
    query: Params,
) -> Result<Json<Vec<CommandRecord>>, ApiError> {
    let query = params(query)?;
    let number = |name: &str, max: usize| -> Result<Option<usize>, ApiError> {
        query
            .get(name)
            .map(|v| match v.trim().parse::<usize>() {
                Ok(n) if n <= max => Ok(n),
                _ => Err(ApiError::bad_request(format!(
                    "{name} must be an integer from 0 to {max}, got {v:?}"
                ))),
            })
            .transpose()
    };
    let filter = CommandFilter {
        cluster_id: query.get("cluster_id").cloned().filter(|s| !s.is_empty()),
        status: query
            .get("status")
            .map(|s| s.parse::<CommandStatus>())
            .transpose()
            .map_err(|e| ApiError::bad_request(e.to_string()))?,
        action: query.get("action").cloned().filter(|s| !s.is_empty()),
        limit: Some(number("limit", 1000)?.unwrap_or(100)),
        offset: number("offset", usize::MAX)?.unwrap_or(0),
    };
    master
        .commands
        .list(&filter)
        .await
        .map(Json)
        .map_err(master.store_failed("listing commands"))
}
