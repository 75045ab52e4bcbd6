//! `GET /api/v2/auth/whoami`: the role of the caller's token (`{"role":"viewer"}` or
//! `{"role":"operator"}`), so the dashboard hides the writes a viewer token would be refused
//! instead of learning it from the first 403.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::Serialize;

use crate::Master;
use crate::auth::Role;
use crate::error::ApiError;

/// The answer of `GET /api/v2/auth/whoami`.
#[derive(Debug, Serialize)]
pub(crate) struct WhoAmI {
    role: Role,
}

/// `GET /api/v2/auth/whoami`: behind the role guard, so a request without a known token never
/// gets here; an open master answers operator (every write is allowed).
pub(crate) async fn whoami(
    State(master): State<Master>,
    headers: HeaderMap,
) -> Result<Json<WhoAmI>, ApiError> {
    let role = master
        .tokens
        .role_of(&headers)
        .ok_or_else(|| ApiError::unauthorized("unknown token"))?;
    Ok(Json(WhoAmI { role }))
}
