//! [`MasterArgs`]: the master's flags, each also read from a `MASTER_*` environment variable.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use atlhyper_http::tls::TlsSettings;
use atlhyper_model::{ListenAddrError, parse_listen_addr, parse_positive_duration as duration_arg};

use crate::config::{
    ClientCertMode, ConfigError, MasterConfig, RateLimit, parse_agent_tokens, parse_rate_limit,
    parse_token_list,
};

/// Value parser of `--listen`: an IP literal, a host name (`localhost:8080`, looked up once at
/// start through the system resolver) or `:8080`.
pub fn parse_listen_arg(text: &str) -> Result<SocketAddr, ListenAddrError> {
    parse_listen_addr(text, |host| {
        Ok((host, 0).to_socket_addrs()?.map(|a| a.ip()).collect())
    })
}

/// `off` or `REQUESTS/DURATION`. The fields say `::std::option::Option` so clap takes the value
/// as a whole (`off` is a value), not as an optional flag.
fn rate_limit_arg(s: &str) -> Result<Option<RateLimit>, String> {
    parse_rate_limit(s).map_err(|e| e.reason)
}

/// Flags of the `atlhyper-master` binary (and of `atlhyper master`). Token values are read from
/// the environment preferably (flags show in `ps`); clap never prints them.
#[derive(Debug, Clone, clap::Args)]
pub struct MasterArgs {
    /// Address to serve on. Without agent tokens or without viewer/operator tokens the master
    /// refuses to start on anything but a loopback address. `HOST:PORT`; a host name is looked
    /// up once.
    #[arg(long, env = "MASTER_LISTEN_ADDR", default_value = "127.0.0.1:8080", value_parser = parse_listen_arg)]
    pub listen: SocketAddr,
    /// SQLite database file (created with its directory).
    #[arg(
        long,
        env = "MASTER_DB_PATH",
        default_value = "atlhyper-data/atlhyper.db"
    )]
    pub db_path: PathBuf,
    /// PostgreSQL database instead of SQLite: `postgres://user:password@host:port/dbname`.
    /// Several masters may share one database. When set, --db-path is not used. Read from the
    /// environment preferably (the URL may hold a password); never printed.
    #[arg(long, env = "MASTER_DB_URL", hide_env_values = true)]
    pub db_url: Option<String>,
    /// With --db-url: the CA certificates (PEM) the database's certificate must chain to, for
    /// the URL's `sslmode=verify-ca` or `verify-full` (TLS over rustls; `sslrootcert=PATH` in
    /// the URL does the same).
    #[arg(long, env = "MASTER_DB_CA_FILE")]
    pub db_ca_file: Option<PathBuf>,
    /// Agent tokens: `token=cluster_id` pairs separated by commas.
    #[arg(long, env = "MASTER_AGENT_TOKENS", hide_env_values = true)]
    pub agent_tokens: Option<String>,
    /// One agent token (for a single cluster, named by --cluster-id).
    #[arg(long, env = "MASTER_AGENT_TOKEN", hide_env_values = true)]
    pub agent_token: Option<String>,
    /// Cluster id of --agent-token.
    #[arg(long, env = "MASTER_CLUSTER_ID")]
    pub cluster_id: Option<String>,
    /// Viewer tokens (read the API), separated by commas.
    #[arg(long, env = "MASTER_VIEWER_TOKEN", hide_env_values = true)]
    pub viewer_token: Option<String>,
    /// Operator tokens (read and create commands), separated by commas.
    #[arg(long, env = "MASTER_OPERATOR_TOKEN", hide_env_values = true)]
    pub operator_token: Option<String>,
    /// One history point per node per this interval.
    #[arg(long, env = "MASTER_HISTORY_INTERVAL", default_value = "5m", value_parser = duration_arg)]
    pub history_interval: Duration,
    /// History retention.
    #[arg(long, env = "MASTER_RETENTION", default_value = "30d", value_parser = duration_arg)]
    pub retention: Duration,
    /// How often history older than the retention is pruned (also once at start).
    #[arg(long, env = "MASTER_PRUNE_INTERVAL", default_value = "1h", value_parser = duration_arg)]
    pub prune_interval: Duration,
    /// How long an agent's command long poll waits.
    #[arg(long, env = "MASTER_LONG_POLL_TIMEOUT", default_value = "30s", value_parser = duration_arg)]
    pub long_poll_timeout: Duration,
    /// Default deadline of commands created through the API.
    #[arg(long, env = "MASTER_COMMAND_TIMEOUT", default_value = "60s", value_parser = duration_arg)]
    pub command_timeout: Duration,
    /// How long an observe detail request waits for the agent (then 504).
    #[arg(long, env = "MASTER_DETAIL_TIMEOUT", default_value = "10s", value_parser = duration_arg)]
    pub detail_timeout: Duration,
    /// Silence after which an agent is offline, and all its nodes with it.
    #[arg(long, env = "MASTER_AGENT_OFFLINE_AFTER", default_value = "60s", value_parser = duration_arg)]
    pub agent_offline_after: Duration,
    /// Silence after which a node leaves the latest state (checked at each retention prune);
    /// its history stays until the retention.
    #[arg(long, env = "MASTER_NODE_RETIRE_AFTER", default_value = "7d", value_parser = duration_arg)]
    pub node_retire_after: Duration,
    /// Largest snapshot body as sent (compressed), bytes.
    #[arg(long, env = "MASTER_SNAPSHOT_BODY_LIMIT", default_value_t = 8 << 20)]
    pub snapshot_body_limit: usize,
    /// Largest snapshot after decompression, bytes.
    #[arg(long, env = "MASTER_SNAPSHOT_DECOMPRESSED_LIMIT", default_value_t = 64 << 20)]
    pub snapshot_decompressed_limit: usize,
    /// A node timestamp further ahead than this is replaced by the receive time (the skew kept
    /// in clock_skew_seconds); one older than the retention too.
    #[arg(long, env = "MASTER_MAX_CLOCK_AHEAD", default_value = "5m", value_parser = duration_arg)]
    pub max_clock_ahead: Duration,
    /// Nodes held per cluster; new nodes beyond are refused alone (too_many_nodes).
    #[arg(long, env = "MASTER_MAX_NODES_PER_CLUSTER", default_value_t = 10_000)]
    pub max_nodes_per_cluster: usize,
    /// Time a client has to send a request's complete headers (and longest idle keep-alive).
    #[arg(long, env = "MASTER_HEADER_TIMEOUT", default_value = "10s", value_parser = duration_arg)]
    pub header_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog.
    #[arg(long, env = "MASTER_MAX_CONNECTIONS", default_value_t = atlhyper_http::serve::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Snapshot pushes per agent: REQUESTS/DURATION (all may come at once), or off.
    #[arg(long, env = "MASTER_SNAPSHOT_RATE_LIMIT", default_value = "1200/1m", value_parser = rate_limit_arg)]
    pub snapshot_rate_limit: ::std::option::Option<RateLimit>,
    /// Heartbeats per agent: REQUESTS/DURATION, or off.
    #[arg(long, env = "MASTER_HEARTBEAT_RATE_LIMIT", default_value = "300/1m", value_parser = rate_limit_arg)]
    pub heartbeat_rate_limit: ::std::option::Option<RateLimit>,
    /// Command results per agent: REQUESTS/DURATION, or off.
    #[arg(long, env = "MASTER_RESULT_RATE_LIMIT", default_value = "6000/1m", value_parser = rate_limit_arg)]
    pub result_rate_limit: ::std::option::Option<RateLimit>,
    /// Operator writes (command creation, every non-GET under /api/) per operator token, or per
    /// client address without tokens: REQUESTS/DURATION, or off.
    #[arg(long, env = "MASTER_OPERATOR_WRITE_RATE_LIMIT", default_value = "600/1m", value_parser = rate_limit_arg)]
    pub operator_write_rate_limit: ::std::option::Option<RateLimit>,
    /// Largest `params` of a command created through the API, bytes of JSON.
    #[arg(long, env = "MASTER_MAX_COMMAND_PARAMS", default_value_t = 64 << 10)]
    pub max_command_params: usize,
    /// Open (pending or running) commands per cluster; one more is refused with 429.
    #[arg(long, env = "MASTER_MAX_PENDING_COMMANDS", default_value_t = 1000)]
    pub max_pending_commands: u64,
    /// Heavy reads (history, observe detail/series, full node list) served at once per class;
    /// more wait up to 1 s, then get 503 with Retry-After.
    #[arg(long, env = "MASTER_HEAVY_READ_CONCURRENCY", default_value_t = 64)]
    pub heavy_read_concurrency: usize,
    /// With --db-url: how often a master that does not lead the fleet's periodic work (expiry,
    /// prune, alert evaluation) tries to take over; a dead leader is replaced within two.
    #[arg(long, env = "MASTER_LEADER_INTERVAL", default_value = "5s", value_parser = duration_arg)]
    pub leader_interval: Duration,
    /// Log filter (tracing EnvFilter syntax; RUST_LOG wins when set). Here rather than in the
    /// binary so `atlhyper master` and `atlhyper-master` read the same variable.
    #[arg(long, env = "MASTER_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
    /// Log line format: `text` (one readable line per event) or `json` (one object per line).
    #[arg(long, env = "MASTER_LOG_FORMAT", value_enum, default_value_t = atlhyper_http::LogFormat::Text)]
    pub log_format: atlhyper_http::LogFormat,
    /// Named tokens of every role, one per line (`agent NAME TOKEN CLUSTER`, `viewer NAME
    /// TOKEN`, `operator NAME TOKEN`), e.g. a mounted Secret; re-read when it changes.
    #[arg(long, env = "MASTER_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Serve over TLS with this PEM certificate chain (needs --tls-key); re-read when it
    /// changes.
    #[arg(long, env = "MASTER_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "MASTER_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA bundle: every client must present a certificate signed by it (agents with
    /// --client-cert; an agent certificate naming a cluster id among its DNS names speaks for
    /// that cluster). Re-read every 5 s: a changed bundle applies from the next handshake.
    #[arg(long, env = "MASTER_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,
    /// Who must present a certificate of --tls-client-ca: `all` clients (the handshake refuses
    /// the rest) or `agents` (agent routes refuse a request without one; viewers and operators
    /// keep their bearer tokens).
    #[arg(long, env = "MASTER_TLS_CLIENT_CERT_MODE", value_enum, default_value_t = ClientCertMode::All)]
    pub tls_client_cert_mode: ClientCertMode,
    #[command(flatten)]
    pub alerting: crate::alerting::AlertArgs,
    /// Send every alert to this webhook (Alertmanager's payload, version 4) on the default
    /// route; next to --alert-config, added to its root route's receiver.
    #[arg(long, env = "MASTER_ALERT_WEBHOOK")]
    pub alert_webhook: Option<String>,
}

impl MasterArgs {
    /// The configuration these flags describe, validated.
    pub fn to_config(&self) -> Result<MasterConfig, ConfigError> {
        let mut agent_tokens = parse_agent_tokens(self.agent_tokens.as_deref().unwrap_or(""))?;
        let token = self.agent_token.as_deref().filter(|t| !t.is_empty());
        let cluster = self.cluster_id.as_deref().filter(|c| !c.is_empty());
        if let Some(token) = token {
            let Some(cluster) = cluster else {
                return Err(ConfigError::new(
                    "MASTER_AGENT_TOKEN",
                    "needs MASTER_CLUSTER_ID (or use MASTER_AGENT_TOKENS=token=cluster)",
                ));
            };
            if agent_tokens
                .insert(token.to_owned(), cluster.to_owned())
                .is_some()
            {
                return Err(ConfigError::new(
                    "MASTER_AGENT_TOKEN",
                    "the same token is also in MASTER_AGENT_TOKENS",
                ));
            }
        }
        let config = MasterConfig {
            listen: self.listen,
            agent_tokens,
            viewer_tokens: parse_token_list(self.viewer_token.as_deref().unwrap_or("")),
            operator_tokens: parse_token_list(self.operator_token.as_deref().unwrap_or("")),
            history_interval: self.history_interval,
            retention: self.retention,
            prune_interval: self.prune_interval,
            long_poll_timeout: self.long_poll_timeout,
            command_timeout: self.command_timeout,
            detail_timeout: self.detail_timeout,
            agent_offline_after: self.agent_offline_after,
            node_retire_after: self.node_retire_after,
            leader_interval: self.leader_interval,
            snapshot_body_limit: self.snapshot_body_limit,
            snapshot_decompressed_limit: self.snapshot_decompressed_limit,
            max_clock_ahead: self.max_clock_ahead,
            max_nodes_per_cluster: self.max_nodes_per_cluster,
            header_timeout: self.header_timeout,
            max_connections: self.max_connections,
            snapshot_rate_limit: self.snapshot_rate_limit,
            heartbeat_rate_limit: self.heartbeat_rate_limit,
            result_rate_limit: self.result_rate_limit,
            operator_write_rate_limit: self.operator_write_rate_limit,
            max_command_params: self.max_command_params,
            max_pending_commands: self.max_pending_commands,
            heavy_read_concurrency: self.heavy_read_concurrency,
            tls: self.tls_settings()?,
            token_file: self
                .token_file
                .clone()
                .filter(|p| !p.as_os_str().is_empty()),
            ..MasterConfig::default()
        };
        config.validate()?;
        check_tokens(self, &config)?;
        Ok(config)
    }
}

/// Every token given on the command line or in the environment is long enough and not an
/// example value ([`atlhyper_model::check_token`]); the error names the setting, never the token.
impl MasterArgs {
    /// The TLS flags as settings: certificate, key, client CA and who must present a client
    /// certificate.
    fn tls_settings(&self) -> Result<Option<TlsSettings>, ConfigError> {
        let mut tls = TlsSettings::from_flags(
            self.tls_cert.clone(),
            self.tls_key.clone(),
            self.tls_client_ca.clone(),
        )
        .map_err(|e| ConfigError::new("MASTER_TLS_CERT", e))?;
        if self.tls_client_cert_mode == ClientCertMode::Agents {
            match tls.as_mut().filter(|t| t.client_ca.is_some()) {
                Some(t) => t.client_cert_optional = true,
                None => {
                    return Err(ConfigError::new(
                        "MASTER_TLS_CLIENT_CERT_MODE",
                        "agents needs MASTER_TLS_CLIENT_CA (the CA the agents' certificates chain to)",
                    ));
                }
            }
        }
        Ok(tls)
    }
}

fn check_tokens(args: &MasterArgs, config: &MasterConfig) -> Result<(), ConfigError> {
    let single = args.agent_token.as_deref().filter(|t| !t.is_empty());
    for token in config.agent_tokens.keys() {
        let setting = if Some(token.as_str()) == single {
            "MASTER_AGENT_TOKEN"
        } else {
            "MASTER_AGENT_TOKENS"
        };
        atlhyper_model::check_token(setting, token)?;
    }
    for (setting, tokens) in [
        ("MASTER_VIEWER_TOKEN", &config.viewer_tokens),
        ("MASTER_OPERATOR_TOKEN", &config.operator_tokens),
    ] {
        for token in tokens {
            atlhyper_model::check_token(setting, token)?;
        }
    }
    Ok(())
}

impl MasterArgs {
    /// The notification configuration of --alert-config and --alert-webhook, checked (errors
    /// name the file, line and field).
    pub fn notify_config(&self) -> Result<crate::alerting::notify::NotifyConfig, ConfigError> {
        use crate::alerting::notify::{NotifyConfig, config::parse_http_url};
        let mut config = match &self.alerting.alert_config {
            Some(path) => NotifyConfig::load(path)
                .map_err(|e| ConfigError::new("MASTER_ALERT_CONFIG", e.0))?,
            None => NotifyConfig::empty(),
        };
        if let Some(url) = self.alert_webhook.as_deref().filter(|u| !u.is_empty()) {
            let url =
                parse_http_url(url).map_err(|e| ConfigError::new("MASTER_ALERT_WEBHOOK", e))?;
            config.add_default_webhook(url);
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        master: MasterArgs,
    }

    #[test]
    fn flags_to_config() {
        let cli = Cli::try_parse_from([
            "x",
            "--listen",
            "0.0.0.0:9000",
            "--agent-tokens",
            "agent-token-one-0001=a,agent-token-two-0002=b",
            "--agent-token",
            "agent-token-three-003",
            "--cluster-id",
            "c",
            "--viewer-token",
            "viewer-token-one-0001,viewer-token-two-0002",
            "--history-interval",
            "1m",
            "--header-timeout",
            "2s",
            "--max-connections",
            "64",
            "--max-clock-ahead",
            "2m",
            "--max-nodes-per-cluster",
            "50",
            "--node-retire-after",
            "2d",
            "--operator-write-rate-limit",
            "5/10s",
            "--snapshot-rate-limit",
            "off",
            "--max-command-params",
            "1024",
            "--max-pending-commands",
            "7",
            "--heavy-read-concurrency",
            "3",
        ])
        .unwrap();
        let config = cli.master.to_config().unwrap();
        assert_eq!(config.agent_tokens.len(), 3);
        assert_eq!(config.agent_tokens["agent-token-three-003"], "c");
        assert_eq!(
            config.viewer_tokens,
            ["viewer-token-one-0001", "viewer-token-two-0002"]
        );
        assert_eq!(config.history_interval, Duration::from_secs(60));
        assert_eq!(config.header_timeout, Duration::from_secs(2));
        assert_eq!(config.max_connections, 64);
        assert_eq!(config.max_clock_ahead, Duration::from_secs(120));
        assert_eq!(config.max_nodes_per_cluster, 50);
        assert_eq!(config.node_retire_after, Duration::from_secs(2 * 86_400));
        assert!(!config.is_open());
        assert_eq!(config.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(
            config.operator_write_rate_limit,
            Some(RateLimit::new(5, Duration::from_secs(10)))
        );
        assert_eq!(config.snapshot_rate_limit, None);
        assert_eq!(config.max_command_params, 1024);
        assert_eq!(config.max_pending_commands, 7);
        assert_eq!(config.heavy_read_concurrency, 3);

        // The flags' defaults are MasterConfig's.
        let open = Cli::try_parse_from(["x", "--listen", "0.0.0.0:9000"]).unwrap();
        let config = open.master.to_config().unwrap();
        let defaults = MasterConfig::default();
        assert_eq!(config.header_timeout, Duration::from_secs(10));
        assert_eq!(config.max_connections, 4096);
        assert_eq!(config.max_clock_ahead, Duration::from_secs(300));
        assert_eq!(config.max_nodes_per_cluster, 10_000);
        assert_eq!(config.node_retire_after, Duration::from_secs(7 * 86_400));
        assert_eq!(config.snapshot_rate_limit, defaults.snapshot_rate_limit);
        assert_eq!(config.heartbeat_rate_limit, defaults.heartbeat_rate_limit);
        assert_eq!(config.result_rate_limit, defaults.result_rate_limit);
        assert_eq!(
            config.operator_write_rate_limit,
            defaults.operator_write_rate_limit
        );
        assert_eq!(config.max_command_params, defaults.max_command_params);
        assert_eq!(config.max_pending_commands, defaults.max_pending_commands);
        assert_eq!(
            config.heavy_read_concurrency,
            defaults.heavy_read_concurrency
        );
        // Open on a network address: the configuration parses, run_from_args refuses it.
        assert!(config.is_open());
        assert_eq!(config.listen.to_string(), "0.0.0.0:9000");

        let bad = Cli::try_parse_from(["x", "--agent-token", "agent-token-long-0001"]).unwrap();
        assert!(bad.master.to_config().is_err(), "no cluster id");
        // Short tokens and the example values from deploy/ are refused, naming the setting.
        for (flag, token, setting) in [
            ("--viewer-token", "short", "MASTER_VIEWER_TOKEN"),
            (
                "--operator-token",
                "replace-me-operator-token",
                "MASTER_OPERATOR_TOKEN",
            ),
            ("--agent-tokens", "agent-secret=c", "MASTER_AGENT_TOKENS"),
        ] {
            let cli = Cli::try_parse_from(["x", flag, token]).unwrap();
            let err = cli.master.to_config().unwrap_err();
            assert_eq!(err.setting, setting, "{err}");
            assert!(err.reason.contains("openssl rand -hex 32"), "{err}");
        }
        assert!(Cli::try_parse_from(["x", "--retention", "forever"]).is_err());
        assert!(Cli::try_parse_from(["x", "--result-rate-limit", "lots"]).is_err());
        for zero in [
            ["x", "--max-connections", "0"],
            ["x", "--max-nodes-per-cluster", "0"],
            ["x", "--max-pending-commands", "0"],
            ["x", "--heavy-read-concurrency", "0"],
        ] {
            let cli = Cli::try_parse_from(zero).unwrap();
            let err = cli.master.to_config().expect_err(zero[1]);
            assert!(err.setting.starts_with("MASTER_"), "{zero:?}: {err}");
        }
        // Zero durations are refused by the flag parser, which names the flag.
        for zero in [
            ["x", "--header-timeout", "0s"],
            ["x", "--max-clock-ahead", "0"],
            ["x", "--node-retire-after", "0d"],
        ] {
            let err = Cli::try_parse_from(zero).expect_err(zero[1]).to_string();
            assert!(err.contains(zero[1]) && err.contains("above zero"), "{err}");
        }
        // The one duration grammar: Go's compound form works on every duration flag.
        let cli = Cli::try_parse_from(["x", "--history-interval", "1m30s"]).unwrap();
        assert_eq!(cli.master.history_interval, Duration::from_secs(90));
        // The agents-only client certificate mode needs a client CA.
        let cli = Cli::try_parse_from(["x", "--tls-client-cert-mode", "agents"]).unwrap();
        let err = cli.master.tls_settings().unwrap_err();
        assert_eq!(err.setting, "MASTER_TLS_CLIENT_CERT_MODE", "{err}");
        let cli = Cli::try_parse_from([
            "x",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
            "--tls-client-ca",
            "ca.pem",
            "--tls-client-cert-mode",
            "agents",
        ])
        .unwrap();
        let tls = cli.master.tls_settings().unwrap().unwrap();
        assert!(tls.client_cert_optional);
        assert!(Cli::try_parse_from(["x", "--tls-client-cert-mode", "some"]).is_err());
        // Host names on --listen.
        let cli = Cli::try_parse_from(["x", "--listen", "localhost:0"]).unwrap();
        assert!(cli.master.listen.ip().is_loopback());
    }
}
