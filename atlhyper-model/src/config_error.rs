//! [`ConfigError`]: the one error of every binary's configuration loader.
//!
//! It lives here, beside the duration grammar, because every binary (master, agent, node daemon,
//! `atlhyper`) already depends on this crate and on no common other: one type without a new
//! crate edge, and `atlhyper up` reports the master's and the agent's errors alike.

use std::fmt;

/// A configuration value that cannot be used: which setting (the flag or environment variable
/// a user sets) and why. Never carries a secret's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {reason}")]
pub struct ConfigError {
    /// The setting, as the user writes it: `MASTER_RETENTION`, `--listen`, ...
    pub setting: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ConfigError {
    /// An error about `setting`.
    ///
    /// ```
    /// use atlhyper_model::ConfigError;
    ///
    /// let err = ConfigError::new("AGENT_CLUSTER_ID", "must not be empty");
    /// assert_eq!(err.to_string(), "AGENT_CLUSTER_ID: must not be empty");
    /// ```
    pub fn new(setting: impl Into<String>, reason: impl fmt::Display) -> Self {
        Self {
            setting: setting.into(),
            reason: reason.to_string(),
        }
    }
}
