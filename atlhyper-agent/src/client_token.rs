//! The bearer token a client sends: the daemon's to the agent (`METRICS_TOKEN` or
//! `METRICS_TOKEN_FILE`), the agent's to the master (`AGENT_TOKEN` or `AGENT_TOKEN_FILE`). From
//! a file it is re-read when the file changes, so a rotated Secret is sent from the next request
//! on without a restart.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use atlhyper_http::token_file::parse_client_token;
use atlhyper_http::watched_file::{WatchError, WatchedFiles};
use axum::http::HeaderValue;
use tokio_util::sync::CancellationToken;

use crate::error::AgentError;

/// The `Authorization` header of every request, or none.
#[derive(Debug, Clone, Default)]
pub struct ClientToken {
    source: Source,
}

#[derive(Debug, Clone, Default)]
enum Source {
    #[default]
    None,
    Fixed(HeaderValue),
    File(Arc<WatchedFiles<HeaderValue>>),
}

fn header_of(token: &str, setting: &str) -> Result<HeaderValue, String> {
    let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| format!("{setting}: contains characters not allowed in a header"))?;
    value.set_sensitive(true);
    Ok(value)
}

impl ClientToken {
    /// The token given in the environment (`setting` names it in errors), or the one in `file`
    /// (`file_setting`), read now: a missing file or one that does not hold one token fails the
    /// start. Both at once is an error: which one would be sent?
    pub fn new(
        token: Option<&str>,
        setting: &'static str,
        file: Option<PathBuf>,
        file_setting: &'static str,
    ) -> Result<Self, AgentError> {
        let token = token.filter(|t| !t.is_empty());
        let source = match (token, file) {
            (Some(_), Some(_)) => {
                return Err(AgentError::config(
                    file_setting,
                    &format!("give {setting} or {file_setting}, not both"),
                ));
            }
            (Some(t), None) => {
                Source::Fixed(header_of(t, setting).map_err(|e| AgentError::config(setting, &e))?)
            }
            (None, Some(path)) => {
                let parse = move |text: &str| {
                    let token = parse_client_token(text, file_setting)?;
                    header_of(&token, file_setting)
                };
                let watched = WatchedFiles::load_text(path, parse)
                    .map_err(|e| AgentError::config(file_setting, &e.to_string()))?;
                Source::File(Arc::new(watched))
            }
            (None, None) => Source::None,
        };
        Ok(Self { source })
    }

    /// The header to send now.
    pub fn header(&self) -> Option<HeaderValue> {
        match &self.source {
            Source::None => None,
            Source::Fixed(value) => Some(value.clone()),
            Source::File(file) => Some((*file.current()).clone()),
        }
    }

    /// Reads the token file again (see [`WatchedFiles::reload`]); `Ok(false)` without one.
    pub fn reload(&self) -> Result<bool, WatchError> {
        match &self.source {
            Source::File(file) => file.reload(),
            _ => Ok(false),
        }
    }

    /// Watches the token file, if any, until `cancel` (`what` names it in the log).
    pub(crate) async fn watch(
        self,
        every: Duration,
        what: &'static str,
        cancel: CancellationToken,
    ) {
        if let Source::File(file) = self.source {
            watch_until(file, every, what, cancel).await;
        }
    }
}

/// Runs [`WatchedFiles::watch`] until `cancel`.
pub(crate) async fn watch_until<T: Send + Sync + 'static>(
    file: Arc<WatchedFiles<T>>,
    every: Duration,
    what: &'static str,
    cancel: CancellationToken,
) {
    tokio::select! {
        () = file.watch(every, what, |_| {}) => {}
        () = cancel.cancelled() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_or_file_never_both() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "aaaaaaaaaaaaaaaa\n").unwrap();
        let none = ClientToken::new(None, "T", None, "T_FILE").unwrap();
        assert!(none.header().is_none());
        let fixed = ClientToken::new(Some("bbbbbbbbbbbbbbbb"), "T", None, "T_FILE").unwrap();
        assert_eq!(fixed.header().unwrap(), "Bearer bbbbbbbbbbbbbbbb");
        let both = ClientToken::new(Some("b"), "T", Some(path.clone()), "T_FILE").unwrap_err();
        assert!(both.to_string().contains("not both"), "{both}");
        let filed = ClientToken::new(None, "T", Some(path.clone()), "T_FILE").unwrap();
        assert_eq!(filed.header().unwrap(), "Bearer aaaaaaaaaaaaaaaa");
        assert!(filed.header().unwrap().is_sensitive());
        // Rotated: the next request sends the new token; a bad file keeps it.
        std::fs::write(&path, "cccccccccccccccc\n").unwrap();
        assert!(filed.reload().unwrap());
        assert_eq!(filed.header().unwrap(), "Bearer cccccccccccccccc");
        std::fs::write(&path, "").unwrap();
        let e = filed.reload().unwrap_err().to_string();
        assert!(e.contains("holds no token"), "{e}");
        assert_eq!(filed.header().unwrap(), "Bearer cccccccccccccccc");
    }

    #[test]
    fn a_missing_or_bad_file_fails_the_start_naming_it() {
        let e = ClientToken::new(None, "T", Some("/nonexistent/t".into()), "T_FILE").unwrap_err();
        assert!(
            e.to_string().contains("T_FILE: cannot read /nonexistent/t"),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "short\n").unwrap();
        let e = ClientToken::new(None, "T", Some(path.clone()), "T_FILE").unwrap_err();
        assert!(
            e.to_string().contains(&format!("{}:1:", path.display())),
            "{e}"
        );
    }
}
