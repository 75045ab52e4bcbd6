//! Errors of running the daemon or the agent.

use crate::config::ConfigError;

/// Why the node daemon or the cluster agent could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A configuration value is unusable.
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The listening socket failed (its address could not be read).
    #[error("listening socket: {0}")]
    Listen(std::io::Error),
    /// The TLS certificate or key to serve could not be used.
    #[error("TLS: {0}")]
    Tls(#[from] atlhyper_http::tls::TlsError),
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Http(String),
    /// A background task panicked.
    #[error("task {name} ended abnormally: {reason}")]
    Task {
        /// Which task.
        name: &'static str,
        /// The join error.
        reason: String,
    },
}

impl AgentError {
    pub(crate) fn config(name: &str, reason: &str) -> Self {
        Self::Config(ConfigError::new(name, reason))
    }
}
