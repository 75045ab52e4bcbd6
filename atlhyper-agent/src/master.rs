//! The agent's HTTP link to the master: snapshot, heartbeat, command long poll, result.

use std::sync::Arc;
use std::time::Duration;

use atlhyper_model::{Command, CommandPoll, CommandResult, Heartbeat, StatusBody};
use reqwest::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderValue};

use crate::client_token::ClientToken;
use crate::error::AgentError;
use crate::failover::Endpoints;
use crate::tls_client::{ClientTls, WatchedClient};

/// Why a request to the master failed.
#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    /// No answer: connection refused or reset, timeout, DNS.
    #[error("request to {url} failed: {reason}")]
    Transport {
        /// The URL.
        url: String,
        /// What the HTTP client said.
        reason: String,
    },
    /// The master answered with an error status.
    #[error("{url} answered {status}: {body}")]
    Status {
        /// The URL.
        url: String,
        /// HTTP status code.
        status: u16,
        /// The start of the answer's body.
        body: String,
        /// The answer's `Retry-After`, when it gave one in seconds (a 429 or 503 from a master
        /// that limits its writers).
        retry_after: Option<Duration>,
    },
    /// The master's answer could not be read.
    #[error("{url} answered something unreadable: {reason}")]
    Decode {
        /// The URL.
        url: String,
        /// What was wrong.
        reason: String,
    },
}

/// Largest answer to a snapshot push that is read: room for 10,000 refused nodes with a
/// sentence each.
const MAX_SNAPSHOT_ANSWER_BYTES: usize = 8 << 20;

impl MasterError {
    /// How long the master asked to wait before the next try, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Percent-encodes a query component (RFC 3986 unreserved characters pass through).
fn encode_query(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An HTTP client bound to one master (or several interchangeable ones), cluster id and token.
#[derive(Debug, Clone)]
pub struct MasterLink {
    /// Re-made when the CA bundle or client certificate files change.
    http: Arc<WatchedClient>,
    masters: Endpoints,
    cluster_id: Arc<str>,
    token: ClientToken,
    cluster_header: HeaderValue,
}

impl MasterError {
    /// Whether another master may take what this one could not: it was unreachable or
    /// answered 5xx (a master without its database answers 503). Anything else (401, 413,
    /// 429, ...) would be the same answer from every master.
    fn worth_another_master(&self) -> bool {
        match self {
            Self::Transport { .. } => true,
            Self::Status { status, .. } => (500..=599).contains(status),
            Self::Decode { .. } => false,
        }
    }
}

impl MasterLink {
    /// A link to the master at `master_url` (scheme optional; several comma-separated URLs
    /// name interchangeable masters, tried in turn when one cannot be reached), sending
    /// `X-Cluster-ID: cluster_id` and `Authorization: Bearer token` when a token is given.
    /// `request_timeout` bounds every request except the long poll, which gets its own timeout.
    pub fn new(
        master_url: &str,
        cluster_id: &str,
        token: Option<&str>,
        request_timeout: Duration,
    ) -> Result<Self, AgentError> {
        Self::with_tls(
            master_url,
            cluster_id,
            token,
            request_timeout,
            &ClientTls::default(),
        )
    }

    /// [`MasterLink::new`] trusting an `https://` master as `tls` says (system roots unless a
    /// CA file is given; a client certificate when the master asks for one).
    pub fn with_tls(
        master_url: &str,
        cluster_id: &str,
        token: Option<&str>,
        request_timeout: Duration,
        tls: &ClientTls,
    ) -> Result<Self, AgentError> {
        let masters = Endpoints::parse(master_url, "AGENT_MASTER_URL")?;
        let builder = move || {
            reqwest::Client::builder()
                .timeout(request_timeout)
                .connect_timeout(request_timeout.min(Duration::from_secs(5)))
                .pool_idle_timeout(atlhyper_http::CLIENT_IDLE_TIMEOUT)
                .user_agent(concat!("atlhyper-agent/", env!("CARGO_PKG_VERSION")))
        };
        let http = Arc::new(tls.watched_client("AGENT", master_url, builder)?);
        let token = ClientToken::new(token, "AGENT_TOKEN", None, "AGENT_TOKEN_FILE")?;
        let cluster_header = HeaderValue::from_str(cluster_id).map_err(|_| {
            AgentError::config("cluster_id", "contains characters not allowed in a header")
        })?;
        Ok(Self {
            http,
            masters,
            cluster_id: Arc::from(cluster_id),
            token,
            cluster_header,
        })
    }

    /// Sends `token` (a token file re-read on change) instead of the one given at
    /// construction.
    pub fn with_token(mut self, token: ClientToken) -> Self {
        self.token = token;
        self
    }

    /// The token sent, for the task that watches its file.
    pub(crate) fn token(&self) -> &ClientToken {
        &self.token
    }

    /// The HTTP client, for the task that watches its certificate files.
    pub(crate) fn client_files(&self) -> Arc<WatchedClient> {
        Arc::clone(&self.http)
    }

    /// The cluster id this link speaks for.
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// The master requests go to now.
    pub fn current_master(&self) -> &str {
        self.masters.current()
    }

    /// Sends `method path`, shaped by `build`, to the current master; when that one is
    /// unreachable or answers 5xx, to each other master in turn. Returns the URL that answered
    /// with its response, or the last error.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        build: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<(String, reqwest::Response), MasterError> {
        let mut last = None;
        // Read once per call: the files may change under it.
        let http = self.http.current();
        let auth = self.token.header();
        for (index, base) in self.masters.in_order() {
            let url = format!("{base}{path}");
            let mut rb = http
                .request(method.clone(), &url)
                .header("X-Cluster-ID", self.cluster_header.clone());
            if let Some(auth) = &auth {
                rb = rb.header(AUTHORIZATION, auth.clone());
            }
            match Self::send(&url, build(rb)).await {
                Ok(resp) => {
                    self.masters.answered(index, "master");
                    return Ok((url, resp));
                }
                Err(e) if e.worth_another_master() && self.masters.len() > 1 => {
                    tracing::debug!(error = %e, "trying the next master");
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| MasterError::Transport {
            url: path.to_owned(),
            reason: "no master configured".to_owned(),
        }))
    }

    async fn send(
        url: &str,
        rb: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, MasterError> {
        let resp = rb.send().await.map_err(|e| MasterError::Transport {
            url: url.to_owned(),
            reason: error_chain(&e),
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = resp.text().await.unwrap_or_default();
        Err(MasterError::Status {
            url: url.to_owned(),
            status: status.as_u16(),
            body: body.chars().take(300).collect(),
            retry_after,
        })
    }

    /// `POST /agent/snapshot` with an already gzipped ClusterSnapshot body. On success, the
    /// master's answer: `{"status": "ok"}`, with the nodes it refused alone in `rejected`. An
    /// answer that is not a [`StatusBody`] (an AtlHyper v2 master's, say) counts as
    /// `{"status": "ok"}`: the status code said the snapshot was taken.
    pub async fn post_snapshot(&self, gzipped_json: Vec<u8>) -> Result<StatusBody, MasterError> {
        // Shared, so a try at the next master does not copy the body.
        let body = axum::body::Bytes::from(gzipped_json);
        let (url, mut resp) = self
            .call(reqwest::Method::POST, "/agent/snapshot", |rb| {
                rb.header(CONTENT_TYPE, "application/json")
                    .header(CONTENT_ENCODING, "gzip")
                    .body(body.clone())
            })
            .await?;
        let mut body = Vec::new();
        // The answer lists refused nodes; a master saying more than this is not read further.
        while let Some(chunk) = resp.chunk().await.map_err(|e| MasterError::Transport {
            url: url.clone(),
            reason: error_chain(&e),
        })? {
            if body.len() + chunk.len() > MAX_SNAPSHOT_ANSWER_BYTES {
                tracing::warn!(%url, "the master's answer is over {MAX_SNAPSHOT_ANSWER_BYTES} bytes; not read");
                return Ok(StatusBody::ok());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(serde_json::from_slice(&body).unwrap_or_else(|_| StatusBody::ok()))
    }

    /// `POST /agent/heartbeat`.
    pub async fn heartbeat(&self, heartbeat: &Heartbeat) -> Result<(), MasterError> {
        self.call(reqwest::Method::POST, "/agent/heartbeat", |rb| {
            rb.json(heartbeat)
        })
        .await
        .map(drop)
    }

    /// `GET /agent/commands?cluster_id=&topic=`: waits up to `timeout` for a command.
    pub async fn poll_command(
        &self,
        topic: &str,
        timeout: Duration,
    ) -> Result<Option<Command>, MasterError> {
        let path = format!(
            "/agent/commands?cluster_id={}&topic={}",
            encode_query(&self.cluster_id),
            encode_query(topic)
        );
        let (url, resp) = self
            .call(reqwest::Method::GET, &path, |rb| rb.timeout(timeout))
            .await?;
        let bytes = resp.bytes().await.map_err(|e| MasterError::Transport {
            url: url.clone(),
            reason: error_chain(&e),
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        let poll: CommandPoll =
            serde_json::from_slice(&bytes).map_err(|e| MasterError::Decode {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        Ok(poll.command.filter(|_| poll.has_command))
    }

    /// `POST /agent/result`.
    pub async fn post_result(&self, result: &CommandResult) -> Result<(), MasterError> {
        self.call(reqwest::Method::POST, "/agent/result", |rb| rb.json(result))
            .await
            .map(drop)
    }
}

/// An error with its sources, e.g. "error sending request: operation timed out".
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_encoding() {
        assert_eq!(encode_query("prod-1"), "prod-1");
        assert_eq!(encode_query("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }
}
