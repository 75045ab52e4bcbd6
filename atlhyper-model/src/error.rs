//! The error body every atlhyper-rs HTTP endpoint returns.

use serde::{Deserialize, Serialize};

/// `{"error": "..."}`, sent with a 4xx or 5xx status code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, in words a client can act on. Never internals.
    pub error: String,
}

impl ErrorBody {
    /// An error body with this message.
    pub fn new(error: impl Into<String>) -> Self {
        Self {
            error: error.into(),
        }
    }
}
