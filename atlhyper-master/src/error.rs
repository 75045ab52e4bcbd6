//! Errors: [`MasterError`] for running the master, [`ApiError`] for one HTTP answer.
//!
//! Every handler returns `Result<_, ApiError>`; this is the one place errors become responses,
//! so internals (store messages, paths) are logged here and never sent to clients.

use atlhyper_model::ErrorBody;
use atlhyper_store::StoreError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::config::ConfigError;

/// Why the master could not run.
#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    /// The configuration cannot work.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Agents or readers would be accepted without a token on a non-loopback address.
    #[error(
        "refusing to serve on {0} without agent and viewer/operator tokens: configure tokens or listen on 127.0.0.1"
    )]
    OpenOnNetwork(std::net::SocketAddr),
    /// The HTTP server failed.
    #[error("http server: {0}")]
    Io(#[from] std::io::Error),
    /// The store failed while loading the saved state.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A background task panicked.
    #[error("background task {0} failed")]
    Task(&'static str),
}

/// An HTTP error answer: a status code and a message safe to show a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// Status code.
    pub status: StatusCode,
    /// Message for the client (`{"error": message}`).
    pub message: String,
}

impl ApiError {
    /// An error with this status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 413.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, message)
    }

    /// 503 for a store failure: logged here with its detail, sent to the client without it.
    pub fn store(context: &str, error: &StoreError) -> Self {
        tracing::error!(%error, "{context}");
        match error {
            StoreError::NotFound(what) => Self::not_found(format!("{what} not found")),
            StoreError::Invalid(why) => Self::bad_request(why.clone()),
            StoreError::Full(_) => Self::new(
                StatusCode::INSUFFICIENT_STORAGE,
                format!("{context}: storage is full"),
            ),
            StoreError::Corrupt(_) | StoreError::Backend(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{context}: storage unavailable, retry later"),
            ),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(ErrorBody::new(self.message))).into_response()
    }
}
