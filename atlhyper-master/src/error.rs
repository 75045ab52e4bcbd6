//! Errors: [`MasterError`] for running the master, [`ApiError`] for one HTTP answer.
//!
//! Every handler returns `Result<_, ApiError>`; this is the one place errors become responses,
//! so internals (store messages, paths) are logged here and never sent to clients.

use std::time::Duration;

use atlhyper_model::ErrorBody;
use atlhyper_store::StoreError;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
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
        "{0} is not a loopback address; without agent tokens and viewer/operator tokens the master \
         serves on 127.0.0.1 only (set MASTER_AGENT_TOKENS and MASTER_VIEWER_TOKEN or \
         MASTER_OPERATOR_TOKEN to serve a network, or listen on 127.0.0.1)"
    )]
    OpenOnNetwork(std::net::SocketAddr),
    /// The database's directory could not be created.
    #[error("data directory {}: {source}", path.display())]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The listen address could not be bound.
    #[error("listening on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why (in use, not permitted, not local).
        source: std::io::Error,
    },
    /// The listening socket failed (its address could not be read).
    #[error("listening socket: {0}")]
    Listen(std::io::Error),
    /// The store failed while loading the saved state.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Alert notification could not start.
    #[error(transparent)]
    Notify(#[from] crate::alerting::notify::NotifyError),
    /// The TLS certificate, key or client CA could not be used.
    #[error("TLS: {0}")]
    Tls(#[from] atlhyper_http::tls::TlsError),
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
    /// When to try again, sent as `Retry-After` (whole seconds, at least 1): set on 429 and 503
    /// answers of the limits.
    pub retry_after: Option<Duration>,
}

impl ApiError {
    /// An error with this status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 429: the client is over a budget (rate limit, pending commands); retry after `after`.
    pub fn too_many_requests(message: impl Into<String>, after: Duration) -> Self {
        Self {
            retry_after: Some(after),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, message)
        }
    }

    /// 503 with `Retry-After`: the server has no free slot for this kind of request right now.
    pub fn busy(message: impl Into<String>, after: Duration) -> Self {
        Self {
            retry_after: Some(after),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
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

    /// The answer to a store failure, without its detail (counted and logged by the master's
    /// state, the one place that sees every store failure).
    pub fn store(context: &str, error: &StoreError) -> Self {
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

/// `Retry-After` in whole seconds, rounded up, at least 1 (0 would invite an instant retry).
pub(crate) fn retry_after_secs(after: Duration) -> u64 {
    let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
    secs.max(1)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(ErrorBody::new(self.message))).into_response();
        if let Some(after) = self.retry_after {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_secs(after)),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
        let r =
            ApiError::too_many_requests("slow down", Duration::from_millis(2500)).into_response();
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()[header::RETRY_AFTER], "3");
        let r = ApiError::bad_request("no").into_response();
        assert!(r.headers().get(header::RETRY_AFTER).is_none());
    }
}
