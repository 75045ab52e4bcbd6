//! Every HTTP route of the master, grouped by audience: the agents ([`agent`]), the cluster
//! views ([`clusters`]), the observe endpoints and Prometheus ([`observe`]), and commands
//! ([`commands`]); then `/health` and the dashboard.
//!
//! # Extending
//! - **A route group** (say, alerting): write `routes/alerting.rs` with handlers taking
//!   `State(master): State<Master>` (add a field to [`Master`] for the part's own state), and
//!   register its routes in [`router`] inside the `readers` group below, or in a group of its own
//!   merged before the limits.
//! - **A role-guarded route**: register it inside `readers`; its `GET` then needs a viewer token
//!   and every other method an operator token (the guard, [`crate::auth::role_guard`], runs
//!   before the handler, which never checks roles itself). So rules, alerts and silences read
//!   with a viewer token and change with an operator token by being in that group. Every
//!   write there is recorded in the audit log ([`crate::audit`]) by the layer around the guard.
//! - **A read only operators may make** (the audit log, [`audit`]): register it in `operators`.
//! - **A periodic task**: see [`crate::tasks`] (`every(master, period, task)`).
//!
//! Every route merged before the limits' `route_layer` sits under them: writes (agent POSTs,
//! any non-GET under `/api/`) are rate limited, heavy readers bounded. An open master also checks
//! every request's Host and the content type of writes.

pub(crate) mod agent;
pub(crate) mod audit;
pub(crate) mod body;
pub(crate) mod clusters;
pub(crate) mod commands;
pub(crate) mod observe;
pub(crate) mod respond;
pub(crate) mod series;
pub(crate) mod whoami;

use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{delete, get, post};
use axum::{Json, Router};

use crate::Master;
use crate::auth::{operator_guard, role_guard};
use crate::{dashboard, limits, open_mode};

/// The master's router over `master`.
pub(crate) fn router(master: Master) -> Router {
    // Authenticated by the agent token inside each handler: the cluster an agent may speak for
    // is read from the token and checked against every id the request names.
    let agents = Router::new()
        .route("/agent/snapshot", post(agent::post_snapshot))
        .route("/agent/heartbeat", post(agent::post_heartbeat))
        .route("/agent/commands", get(agent::get_commands))
        .route("/agent/result", post(agent::post_result));
    let readers = Router::new()
        .route("/metrics", get(observe::metrics))
        .route("/api/v2/clusters", get(clusters::clusters))
        .route("/api/v2/agents", get(clusters::agents))
        .route("/api/v2/clusters/{id}", delete(clusters::delete_cluster))
        .route(
            "/api/v2/clusters/{id}/nodes/{node}",
            delete(clusters::delete_node),
        )
        .route(
            "/api/v2/clusters/{id}/node-metrics",
            get(clusters::node_metrics),
        )
        .route(
            "/api/v2/clusters/{id}/node-metrics/{node}",
            get(clusters::node_detail),
        )
        .route(
            "/api/v2/clusters/{id}/node-metrics/{node}/history",
            get(clusters::node_history),
        )
        .route(
            "/api/v2/clusters/{id}/node-metrics/{node}/series",
            get(series::node_series),
        )
        .route("/api/v2/clusters/{id}/series", get(series::cluster_series))
        .route("/api/v2/fleet", get(series::fleet))
        .route(
            "/api/v2/node-metrics/{node}/history",
            get(clusters::node_history_v3),
        )
        .route(
            "/api/v2/observe/metrics/summary",
            get(observe::observe_summary),
        )
        .route("/api/v2/observe/metrics/nodes", get(observe::observe_nodes))
        .route(
            "/api/v2/observe/metrics/nodes/{name}",
            get(observe::observe_node),
        )
        .route(
            "/api/v2/observe/metrics/nodes/{name}/series",
            get(observe::observe_series),
        )
        .route(
            "/api/v2/commands",
            post(commands::create_command).get(commands::list_commands),
        )
        .route("/api/v2/commands/{id}", get(commands::get_command))
        .route("/api/v2/auth/whoami", get(whoami::whoami))
        .merge(crate::alerting::api::routes())
        .merge(crate::alerting::notify::api::routes())
        .route_layer(from_fn_with_state(master.tokens.clone(), role_guard))
        // Outside the role guard, so refused writes are recorded too.
        .route_layer(from_fn_with_state(
            master.clone(),
            crate::audit::record_writes,
        ));
    // Reads only operators may make.
    let operators = Router::new()
        .route("/api/v2/audit", get(audit::list_audit))
        .route_layer(from_fn_with_state(master.tokens.clone(), operator_guard));
    let router = Router::new()
        .route("/health", get(health))
        .merge(agents)
        .merge(readers)
        .merge(operators)
        // Merge route groups above this line: the limits cover the routes present here.
        .route_layer(from_fn_with_state(master.clone(), limits::limit))
        .with_state(master.clone())
        .merge(dashboard::router());
    if master.config.is_open() {
        router.layer(from_fn(open_mode::guard))
    } else {
        router
    }
}

/// `GET /health` (public): always 200 while the process serves (liveness); `status` is
/// `degraded` while the database does not answer. `leader`: whether this master runs the
/// fleet's periodic work (always with SQLite); `database`: `up` or `down`.
async fn health(axum::extract::State(master): axum::extract::State<Master>) -> Json<Health> {
    let up = master.fleet.database_up();
    Json(Health {
        status: if up { "ok" } else { "degraded" },
        leader: master.fleet.is_leader(),
        database: if up { "up" } else { "down" },
    })
}

/// The `/health` answer: AtlHyper's `{"status": "ok"}` with two extensions.
#[derive(Debug, serde::Serialize)]
struct Health {
    status: &'static str,
    leader: bool,
    database: &'static str,
}
