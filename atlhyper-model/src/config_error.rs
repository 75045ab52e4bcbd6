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

/// Shortest bearer token a binary accepts: 16 characters (`openssl rand -hex 32` makes 64).
pub const MIN_TOKEN_CHARS: usize = 16;

/// Checks a bearer token given to a binary (`setting` names where it came from): at least
/// [`MIN_TOKEN_CHARS`] characters, and not one of the example values shipped in `deploy/`
/// (`replace-me-...`), which anyone reading the repository knows. The error says how to make a
/// real one and never repeats the token.
pub fn check_token(setting: &str, token: &str) -> Result<(), ConfigError> {
    const HOW: &str = "make one with `openssl rand -hex 32`";
    if token.to_ascii_lowercase().starts_with("replace-me") {
        return Err(ConfigError::new(
            setting,
            format!("is the example value from deploy/, known to anyone; {HOW}"),
        ));
    }
    let chars = token.chars().count();
    if chars < MIN_TOKEN_CHARS {
        return Err(ConfigError::new(
            setting,
            format!(
                "a token of {chars} characters is too easy to guess (at least {MIN_TOKEN_CHARS}); {HOW}"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod token_tests {
    use super::*;

    #[test]
    fn short_and_example_tokens_are_refused_without_echoing_them() {
        let err = check_token("MASTER_VIEWER_TOKEN", "short-secret").unwrap_err();
        assert_eq!(err.setting, "MASTER_VIEWER_TOKEN");
        assert!(err.reason.contains("12 characters"), "{err}");
        assert!(err.reason.contains("openssl rand -hex 32"), "{err}");
        assert!(!err.to_string().contains("short-secret"));
        let err = check_token("AGENT_TOKEN", "replace-me-agent-token").unwrap_err();
        assert!(err.reason.contains("example value"), "{err}");
        assert!(check_token("X", "0123456789abcdef").is_ok());
        assert!(check_token("X", &"f".repeat(64)).is_ok());
    }
}
