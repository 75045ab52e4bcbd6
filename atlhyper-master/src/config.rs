//! The master's configuration: [`MasterConfig`], and the text forms its binaries read from flags
//! and the environment (rate limits like `600/1m`, token lists like `token=cluster,...`;
//! durations are [`atlhyper_model::parse_duration`]'s grammar).

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use atlhyper_http::tls::TlsSettings;
pub use atlhyper_model::ConfigError;
use atlhyper_model::parse_duration;

/// Everything the master can be told. [`Default`] is a sensible single-machine setup.
///
/// Tokens are secrets: the [`Debug`] output shows how many there are, never their text.
#[derive(Clone)]
pub struct MasterConfig {
    /// Where the HTTP server listens. When no agent tokens, or no viewer/operator tokens, are
    /// configured the master only serves on a loopback address (see [`MasterConfig::is_open`]).
    pub listen: SocketAddr,
    /// Agent bearer token -> the cluster id it speaks for. Empty: development mode, where an agent
    /// is identified by its `X-Cluster-ID` header alone.
    pub agent_tokens: HashMap<String, String>,
    /// Bearer tokens allowed to read the API. Operator tokens may read too.
    pub viewer_tokens: Vec<String>,
    /// Bearer tokens allowed to read and to create commands.
    pub operator_tokens: Vec<String>,
    /// One history point per node per this interval (5 minutes by default), decided by the
    /// points' own timestamps.
    pub history_interval: Duration,
    /// History older than this is pruned (30 days by default).
    pub retention: Duration,
    /// How often the retention prune runs (hourly by default).
    pub prune_interval: Duration,
    /// How long `GET /agent/commands` waits for a command before answering empty (30 s).
    pub long_poll_timeout: Duration,
    /// Deadline of a command created through `POST /api/v2/commands` without `timeout_secs` (60 s).
    pub command_timeout: Duration,
    /// How long an observe detail request waits for the agent's answer before a 504 (10 s).
    pub detail_timeout: Duration,
    /// How long a command taken by an agent stays leased before it is offered again (30 s).
    pub command_lease: Duration,
    /// How often commands past their deadline are marked `timeout` (1 s).
    pub expiry_interval: Duration,
    /// An agent not heard from for this long is offline (60 s), and every node of its cluster
    /// with it: no view shows them online and `/metrics` exports no figure of theirs. Nodes
    /// restored from the store at start are offline until their agent's next snapshot.
    pub agent_offline_after: Duration,
    /// A node whose latest snapshot is older than this leaves the latest state (store and
    /// views) at the next retention prune (7 days); its history stays until the retention.
    pub node_retire_after: Duration,
    /// Over a shared database: how often a master that does not lead tries to take the
    /// leader's lock, and the leader checks it still holds it (5 s). A dead leader is replaced
    /// within two intervals.
    pub leader_interval: Duration,
    /// Largest accepted `POST /agent/snapshot` body as sent (compressed), bytes (8 MiB).
    pub snapshot_body_limit: usize,
    /// Largest accepted snapshot after decompression, bytes (64 MiB). It also sets the memory
    /// budget of one parsed snapshot ([`MasterConfig::snapshot_memory_budget`]).
    pub snapshot_decompressed_limit: usize,
    /// A node timestamp further ahead of the master's clock than this is replaced by the receive
    /// time, the skew kept in `clock_skew_seconds` (5 min). Timestamps older than the retention
    /// are replaced as well.
    pub max_clock_ahead: Duration,
    /// Nodes the master holds per cluster (10,000, the largest cluster Kubernetes supports at
    /// 5,000 nodes, twice over). Nodes beyond it that the master does not hold yet are refused
    /// alone (`too_many_nodes`); nodes it holds keep being accepted.
    pub max_nodes_per_cluster: usize,
    /// Largest accepted body of the other JSON endpoints (results, heartbeats, commands), bytes
    /// (16 MiB: a node series answer can be a few MiB).
    pub json_body_limit: usize,
    /// History answers are downsampled to at most this many points (500).
    pub history_max_points: usize,
    /// Time a client has to send a request's complete headers, else the connection is closed
    /// (10 s). Also how long a kept-alive connection may sit idle: keep it above the 8 s agents
    /// keep an idle connection, or a push may now and then meet a connection being closed.
    pub header_timeout: Duration,
    /// Connections served at once; while this many are open, new ones wait in the listen
    /// backlog (4096).
    pub max_connections: usize,
    /// `POST /agent/snapshot` budget per agent (1200 per minute; `None`: unlimited). An agent
    /// pushes every 10 s, and back to back only while it catches up on backfill after an
    /// outage, where every push carries up to 5000 points of a cluster big enough to need it.
    pub snapshot_rate_limit: Option<RateLimit>,
    /// `POST /agent/heartbeat` budget per agent (300 per minute; agents send one every 15 s).
    pub heartbeat_rate_limit: Option<RateLimit>,
    /// `POST /agent/result` budget per agent (6000 per minute): one result per command the
    /// agent ran, and commands are bounded by the operator budget, the pending cap and the
    /// heavy-read bound of the observe detail routes.
    pub result_rate_limit: Option<RateLimit>,
    /// Budget of every operator write under `/api/` (command creation and any other POST, PUT,
    /// PATCH or DELETE) per operator token, or per client address without reader tokens
    /// (600 per minute).
    pub operator_write_rate_limit: Option<RateLimit>,
    /// Largest `params` of a command created through the API, bytes of JSON (64 KiB).
    pub max_command_params: usize,
    /// Open (pending or running) commands one cluster may have; creating one more is 429 (1000).
    pub max_pending_commands: u64,
    /// Requests of each heavy reader class (history, observe detail and series that wait on an
    /// agent, the full node list) served at once (64 per class).
    pub heavy_read_concurrency: usize,
    /// How long a heavy read waits for a free slot before a 503 with `Retry-After` (1 s).
    pub heavy_read_wait: Duration,
    /// Serve over TLS with this certificate, and require agents' client certificates when it
    /// names a client CA (`MASTER_TLS_CERT`, `MASTER_TLS_KEY`, `MASTER_TLS_CLIENT_CA`); `None`
    /// serves plain HTTP.
    pub tls: Option<TlsSettings>,
    /// Named tokens of every role, one per line (`MASTER_TOKEN_FILE`; see the crate docs),
    /// re-read every few seconds; next to the tokens above. With a file, nothing is open.
    pub token_file: Option<std::path::PathBuf>,
}

/// Who must present a client certificate of `--tls-client-ca` (`MASTER_TLS_CLIENT_CERT_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ClientCertMode {
    /// Every client: the TLS handshake refuses one without a certificate.
    #[default]
    All,
    /// Agents only: the handshake lets a client without a certificate through and the agent
    /// routes answer 401 to it; readers keep their bearer tokens (so the kubelet's probes, curl
    /// and a browser need no certificate).
    Agents,
}

/// A request budget as a token bucket: at most `requests` in any `per`, all of which may come
/// at once; the bucket refills evenly (one request every `per / requests`). Written
/// `REQUESTS/DURATION`, e.g. `600/1m`.
///
/// ```
/// use std::time::Duration;
/// use atlhyper_master::RateLimit;
///
/// let limit: RateLimit = "600/1m".parse().unwrap();
/// assert_eq!(limit, RateLimit { requests: 600, per: Duration::from_secs(60) });
/// assert_eq!(limit.refill_every(), Duration::from_millis(100));
/// assert!("0/1m".parse::<RateLimit>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests in one `per`, and the burst: how many may come back to back.
    pub requests: u32,
    /// The window over which `requests` are allowed.
    pub per: Duration,
}

impl RateLimit {
    /// A budget of `requests` per `per`.
    pub const fn new(requests: u32, per: Duration) -> Self {
        Self { requests, per }
    }

    /// Time the bucket takes to earn one request back.
    pub fn refill_every(&self) -> Duration {
        self.per / self.requests.max(1)
    }
}

impl std::str::FromStr for RateLimit {
    type Err = ConfigError;

    fn from_str(text: &str) -> Result<Self, ConfigError> {
        let text = text.trim();
        let (count, per) = text.split_once('/').ok_or_else(|| {
            ConfigError::new(
                "rate limit",
                format!("{text:?} is not a rate limit like 600/1m (requests/duration) or off"),
            )
        })?;
        let requests: u32 = count.trim().parse().map_err(|_| {
            ConfigError::new(
                "rate limit",
                format!("{text:?}: {count:?} is not a whole number of requests"),
            )
        })?;
        let per = parse_duration(per).map_err(|e| ConfigError::new("rate limit", e))?;
        if requests == 0 || per.is_zero() {
            return Err(ConfigError::new(
                "rate limit",
                format!(
                    "{text:?}: a rate limit needs at least 1 request per non-zero duration (use off for none)"
                ),
            ));
        }
        if (per / requests).is_zero() {
            return Err(ConfigError::new(
                "rate limit",
                format!("{text:?}: more than one request per nanosecond"),
            ));
        }
        Ok(Self { requests, per })
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}ms", self.requests, self.per.as_millis())
    }
}

/// Parses a rate limit setting: `off` (no limit) or a [`RateLimit`] like `600/1m`.
pub fn parse_rate_limit(text: &str) -> Result<Option<RateLimit>, ConfigError> {
    if text.trim().eq_ignore_ascii_case("off") {
        Ok(None)
    } else {
        text.parse().map(Some)
    }
}

impl Default for MasterConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            agent_tokens: HashMap::new(),
            viewer_tokens: Vec::new(),
            operator_tokens: Vec::new(),
            history_interval: Duration::from_secs(5 * 60),
            retention: Duration::from_secs(30 * 24 * 3600),
            prune_interval: Duration::from_secs(3600),
            long_poll_timeout: Duration::from_secs(30),
            command_timeout: Duration::from_secs(60),
            detail_timeout: Duration::from_secs(10),
            command_lease: Duration::from_secs(30),
            expiry_interval: Duration::from_secs(1),
            agent_offline_after: Duration::from_secs(60),
            node_retire_after: Duration::from_secs(7 * 24 * 3600),
            leader_interval: Duration::from_secs(5),
            snapshot_body_limit: 8 << 20,
            snapshot_decompressed_limit: 64 << 20,
            max_clock_ahead: Duration::from_secs(5 * 60),
            max_nodes_per_cluster: 10_000,
            json_body_limit: 16 << 20,
            history_max_points: 500,
            header_timeout: atlhyper_http::serve::DEFAULT_HEADER_TIMEOUT,
            max_connections: atlhyper_http::serve::DEFAULT_MAX_CONNECTIONS,
            snapshot_rate_limit: Some(RateLimit::new(1200, Duration::from_secs(60))),
            heartbeat_rate_limit: Some(RateLimit::new(300, Duration::from_secs(60))),
            result_rate_limit: Some(RateLimit::new(6000, Duration::from_secs(60))),
            operator_write_rate_limit: Some(RateLimit::new(600, Duration::from_secs(60))),
            max_command_params: 64 << 10,
            max_pending_commands: 1000,
            heavy_read_concurrency: 64,
            heavy_read_wait: Duration::from_secs(1),
            tls: None,
            token_file: None,
        }
    }
}

impl fmt::Debug for MasterConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut clusters: Vec<&str> = self.agent_tokens.values().map(String::as_str).collect();
        clusters.sort_unstable();
        f.debug_struct("MasterConfig")
            .field("listen", &self.listen)
            .field("agent_token_clusters", &clusters)
            .field("viewer_tokens", &self.viewer_tokens.len())
            .field("operator_tokens", &self.operator_tokens.len())
            .field("history_interval", &self.history_interval)
            .field("retention", &self.retention)
            .field("prune_interval", &self.prune_interval)
            .field("long_poll_timeout", &self.long_poll_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("detail_timeout", &self.detail_timeout)
            .field("command_lease", &self.command_lease)
            .field("expiry_interval", &self.expiry_interval)
            .field("agent_offline_after", &self.agent_offline_after)
            .field("node_retire_after", &self.node_retire_after)
            .field("leader_interval", &self.leader_interval)
            .field("snapshot_body_limit", &self.snapshot_body_limit)
            .field(
                "snapshot_decompressed_limit",
                &self.snapshot_decompressed_limit,
            )
            .field("max_clock_ahead", &self.max_clock_ahead)
            .field("max_nodes_per_cluster", &self.max_nodes_per_cluster)
            .field("json_body_limit", &self.json_body_limit)
            .field("history_max_points", &self.history_max_points)
            .field("header_timeout", &self.header_timeout)
            .field("max_connections", &self.max_connections)
            .field("snapshot_rate_limit", &self.snapshot_rate_limit)
            .field("heartbeat_rate_limit", &self.heartbeat_rate_limit)
            .field("result_rate_limit", &self.result_rate_limit)
            .field("operator_write_rate_limit", &self.operator_write_rate_limit)
            .field("max_command_params", &self.max_command_params)
            .field("max_pending_commands", &self.max_pending_commands)
            .field("heavy_read_concurrency", &self.heavy_read_concurrency)
            .field("heavy_read_wait", &self.heavy_read_wait)
            .field("tls", &self.tls)
            .field("token_file", &self.token_file)
            .finish()
    }
}

impl MasterConfig {
    /// Whether some part of the API accepts requests without a token: no agent tokens and no
    /// required client certificates (agents identified by `X-Cluster-ID`) or no viewer/operator
    /// tokens (reads and commands open).
    /// An open master must listen on loopback only.
    pub fn is_open(&self) -> bool {
        if self.token_file.is_some() {
            return false;
        }
        (self.agent_tokens.is_empty() && !self.agents_need_certificates())
            || (self.viewer_tokens.is_empty() && self.operator_tokens.is_empty())
    }

    /// Whether every client must present a certificate of the client CA (`--tls-client-ca`,
    /// client certificate mode `all`): then an agent is identified by its certificate too.
    pub fn requires_client_certificates(&self) -> bool {
        self.tls
            .as_ref()
            .is_some_and(|t| t.client_ca.is_some() && !t.client_cert_optional)
    }

    /// Whether agents must present a certificate of the client CA: with `--tls-client-ca` in
    /// either mode (`all`: the handshake refuses a client without one; `agents`: the agent
    /// routes answer 401 without one, readers keep their bearer tokens).
    pub fn agents_need_certificates(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.client_ca.is_some())
    }

    /// How many bytes of memory one snapshot may take once parsed, estimated from above before
    /// parsing it (structs, list elements, the body's length for the strings): four times the
    /// decompressed limit. An honest snapshot takes about one byte of memory per byte of JSON,
    /// so one that fits the decompressed limit fits the budget; a body of `{}` list entries
    /// (three bytes of JSON, up to 288 bytes of memory each) does not, and is refused whole
    /// with 413 before it is parsed.
    pub fn snapshot_memory_budget(&self) -> usize {
        self.snapshot_decompressed_limit.saturating_mul(4)
    }

    /// Checks values that cannot work (zero intervals, zero limits). The error names the
    /// `MASTER_*` variable of the value (settings without one, by their field name).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let nonzero = [
            ("MASTER_HISTORY_INTERVAL", self.history_interval),
            ("MASTER_RETENTION", self.retention),
            ("MASTER_PRUNE_INTERVAL", self.prune_interval),
            ("MASTER_LONG_POLL_TIMEOUT", self.long_poll_timeout),
            ("MASTER_COMMAND_TIMEOUT", self.command_timeout),
            ("MASTER_DETAIL_TIMEOUT", self.detail_timeout),
            ("command_lease", self.command_lease),
            ("expiry_interval", self.expiry_interval),
            ("MASTER_AGENT_OFFLINE_AFTER", self.agent_offline_after),
            ("MASTER_NODE_RETIRE_AFTER", self.node_retire_after),
            ("MASTER_LEADER_INTERVAL", self.leader_interval),
            ("MASTER_HEADER_TIMEOUT", self.header_timeout),
            ("MASTER_MAX_CLOCK_AHEAD", self.max_clock_ahead),
        ];
        for (name, value) in nonzero {
            if value.is_zero() {
                return Err(ConfigError::new(name, "must be above zero"));
            }
        }
        let at_least_one = [
            ("MASTER_SNAPSHOT_BODY_LIMIT", self.snapshot_body_limit),
            (
                "MASTER_SNAPSHOT_DECOMPRESSED_LIMIT",
                self.snapshot_decompressed_limit,
            ),
            ("json_body_limit", self.json_body_limit),
            ("MASTER_MAX_NODES_PER_CLUSTER", self.max_nodes_per_cluster),
            ("MASTER_MAX_CONNECTIONS", self.max_connections),
            ("MASTER_MAX_COMMAND_PARAMS", self.max_command_params),
            ("MASTER_HEAVY_READ_CONCURRENCY", self.heavy_read_concurrency),
        ];
        for (name, value) in at_least_one {
            if value == 0 {
                return Err(ConfigError::new(name, "must be at least 1"));
            }
        }
        if self.max_pending_commands == 0 {
            return Err(ConfigError::new(
                "MASTER_MAX_PENDING_COMMANDS",
                "must be at least 1",
            ));
        }
        // Timestamps are stored as nanoseconds (years 1677 to 2262): a retention reaching past
        // that would let a node's clock far off through to the store.
        if self.retention > Duration::from_secs(100 * 365 * 86_400) {
            return Err(ConfigError::new(
                "MASTER_RETENTION",
                "must be at most 100 years",
            ));
        }
        for (name, limit) in [
            ("MASTER_SNAPSHOT_RATE_LIMIT", self.snapshot_rate_limit),
            ("MASTER_HEARTBEAT_RATE_LIMIT", self.heartbeat_rate_limit),
            ("MASTER_RESULT_RATE_LIMIT", self.result_rate_limit),
            (
                "MASTER_OPERATOR_WRITE_RATE_LIMIT",
                self.operator_write_rate_limit,
            ),
        ] {
            if let Some(limit) = limit
                && (limit.requests == 0 || limit.refill_every().is_zero())
            {
                return Err(ConfigError::new(
                    name,
                    "needs at least 1 request per non-zero duration",
                ));
            }
        }
        if self.history_max_points < 2 {
            return Err(ConfigError::new("history_max_points", "must be at least 2"));
        }
        for (token, cluster) in &self.agent_tokens {
            if token.is_empty() || cluster.is_empty() {
                return Err(ConfigError::new(
                    "MASTER_AGENT_TOKENS",
                    "agent tokens and their cluster ids must not be empty",
                ));
            }
        }
        if self
            .viewer_tokens
            .iter()
            .chain(&self.operator_tokens)
            .any(String::is_empty)
        {
            return Err(ConfigError::new(
                "MASTER_VIEWER_TOKEN",
                "viewer and operator tokens must not be empty",
            ));
        }
        Ok(())
    }
}

/// Parses agent tokens: `token=cluster_id` pairs separated by commas or newlines.
///
/// ```
/// use atlhyper_master::parse_agent_tokens;
///
/// let tokens = parse_agent_tokens("s3cret=prod, other=staging").unwrap();
/// assert_eq!(tokens["s3cret"], "prod");
/// assert!(parse_agent_tokens("no-cluster").is_err());
/// ```
pub fn parse_agent_tokens(text: &str) -> Result<HashMap<String, String>, ConfigError> {
    let mut tokens = HashMap::new();
    for (index, pair) in text
        .split([',', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .enumerate()
    {
        let Some((token, cluster)) = pair.split_once('=') else {
            return Err(ConfigError::new(
                "MASTER_AGENT_TOKENS",
                format!("agent token #{} has no \"=cluster_id\" part", index + 1),
            ));
        };
        let (token, cluster) = (token.trim(), cluster.trim());
        if token.is_empty() || cluster.is_empty() {
            return Err(ConfigError::new(
                "MASTER_AGENT_TOKENS",
                format!(
                    "agent token #{} has an empty token or cluster id",
                    index + 1
                ),
            ));
        }
        if tokens
            .insert(token.to_owned(), cluster.to_owned())
            .is_some()
        {
            return Err(ConfigError::new(
                "MASTER_AGENT_TOKENS",
                format!("agent token #{} appears twice", index + 1),
            ));
        }
    }
    Ok(tokens)
}

/// Parses a token list separated by commas or newlines.
pub fn parse_token_list(text: &str) -> Vec<String> {
    text.split([',', '\n'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_tokens() {
        let t = parse_agent_tokens("a=one\nb = two,").unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t["b"], "two");
        assert!(parse_agent_tokens("=x").is_err());
        assert!(parse_agent_tokens("a=x,a=y").is_err());
        assert!(parse_agent_tokens("").unwrap().is_empty());
    }

    #[test]
    fn debug_never_shows_tokens() {
        let config = MasterConfig {
            agent_tokens: parse_agent_tokens("supersecret=prod").unwrap(),
            viewer_tokens: vec!["viewsecret".into()],
            operator_tokens: vec!["opsecret".into()],
            ..MasterConfig::default()
        };
        let text = format!("{config:?}");
        assert!(!text.contains("secret"), "{text}");
        assert!(text.contains("prod"));
        assert!(!config.is_open());
        assert!(MasterConfig::default().is_open());
    }

    #[test]
    fn rate_limits() {
        assert_eq!(
            parse_rate_limit("600/1m").unwrap(),
            Some(RateLimit::new(600, Duration::from_secs(60)))
        );
        assert_eq!(
            parse_rate_limit(" 5 / 500ms ").unwrap(),
            Some(RateLimit::new(5, Duration::from_millis(500)))
        );
        assert_eq!(parse_rate_limit("off").unwrap(), None);
        assert_eq!(parse_rate_limit("OFF").unwrap(), None);
        for bad in [
            "", "600", "600/", "/1m", "0/1m", "5/0s", "-1/1m", "x/1m", "5/1y", "1/0ms",
        ] {
            assert!(parse_rate_limit(bad).is_err(), "{bad:?} accepted");
        }
        let limit = RateLimit::new(3, Duration::from_secs(1));
        assert_eq!(limit.to_string().parse::<RateLimit>().unwrap(), limit);
        let bad = MasterConfig {
            operator_write_rate_limit: Some(RateLimit::new(0, Duration::from_secs(1))),
            ..MasterConfig::default()
        };
        assert!(bad.validate().is_err());
        for bad in [
            MasterConfig {
                max_command_params: 0,
                ..MasterConfig::default()
            },
            MasterConfig {
                max_pending_commands: 0,
                ..MasterConfig::default()
            },
            MasterConfig {
                heavy_read_concurrency: 0,
                ..MasterConfig::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn validation() {
        assert!(MasterConfig::default().validate().is_ok());
        let bad = MasterConfig {
            history_interval: Duration::ZERO,
            ..MasterConfig::default()
        };
        assert!(bad.validate().is_err());
    }
}
