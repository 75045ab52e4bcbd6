//! The daemon's configuration: [`DaemonConfig`] and the flags and `METRICS_*` variables that
//! fill it ([`DaemonArgs`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use atlhyper_http::tls::TlsSettings;

use crate::config::{ConfigError, duration_arg, parse_listen_arg, validate_node_name};
use crate::failover::Endpoints;
use crate::tls_client::ClientTls;

/// Everything the node daemon needs. [`DaemonArgs`] reads it from flags and the `METRICS_*`
/// environment variables of AtlHyper.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// The agent's address, scheme optional (`METRICS_AGENT_ADDR`, or `AGENT_ADDR`;
    /// http://127.0.0.1:8082); several comma-separated addresses are tried in turn when one
    /// is down.
    pub agent_addr: String,
    /// Collection interval (`METRICS_COLLECT_INTERVAL`, 5 s).
    pub interval: Duration,
    /// Bearer token sent to the agent (`METRICS_TOKEN`).
    pub token: Option<String>,
    /// A file holding the token instead (`METRICS_TOKEN_FILE`, a Secret mount), re-read when
    /// it changes.
    pub token_file: Option<PathBuf>,
    /// This node's name (`METRICS_NODE_NAME`, or `NODE_NAME`, else the host name), DNS-1123.
    pub node_name: String,
    /// The host's procfs (`METRICS_PROC_ROOT`, /proc).
    pub proc_root: PathBuf,
    /// The host's sysfs (`METRICS_SYS_ROOT`, /sys).
    pub sys_root: PathBuf,
    /// The host's root filesystem (`METRICS_HOST_ROOT`, /).
    pub host_root: PathBuf,
    /// Processes reported: top N by CPU united with top N by memory (`METRICS_TOP_PROCESSES`, 10).
    pub top_processes: usize,
    /// Bound of one statfs call (`METRICS_STATFS_TIMEOUT`, 2 s).
    pub statfs_timeout: Duration,
    /// Bound of one push (`METRICS_PUSH_TIMEOUT`, 5 s).
    pub request_timeout: Duration,
    /// Older snapshots kept for backfill while the agent is unreachable
    /// (`METRICS_QUEUE_CAPACITY`, 720 = 1 h at 5 s); beyond it the oldest are dropped and counted.
    pub queue_capacity: usize,
    /// Where to serve the daemon's own `/metrics` (`METRICS_LISTEN`); `None` serves nothing.
    pub metrics_listen: Option<SocketAddr>,
    /// First retry delay (`METRICS_BACKOFF_BASE`, 1 s).
    pub backoff_base: Duration,
    /// Longest retry delay (`METRICS_BACKOFF_MAX`, 60 s); never more than `interval`.
    pub backoff_max: Duration,
    /// Push nothing: serve `/metrics` only and collect when scraped (`METRICS_PULL_ONLY`,
    /// false). Needs `metrics_listen`.
    pub pull_only: bool,
    /// Exclude interfaces and filesystems as node_exporter does by default (virtual interfaces
    /// and tmpfs kept) instead of atlhyper's lists (`METRICS_NODE_EXPORTER_FILTERS`, false).
    pub node_exporter_filters: bool,
    /// Serve `/metrics` over TLS with this certificate (`METRICS_TLS_CERT`, `METRICS_TLS_KEY`).
    pub tls: Option<TlsSettings>,
    /// How an `https://` agent is trusted (`METRICS_CA_FILE`,
    /// `METRICS_TLS_INSECURE_SKIP_VERIFY`).
    pub agent_tls: ClientTls,
}

impl DaemonConfig {
    /// The defaults, for node `node_name`.
    pub fn new(node_name: impl Into<String>) -> Self {
        Self {
            agent_addr: "http://127.0.0.1:8082".to_owned(),
            interval: Duration::from_secs(5),
            token: None,
            token_file: None,
            node_name: node_name.into(),
            proc_root: PathBuf::from("/proc"),
            sys_root: PathBuf::from("/sys"),
            host_root: PathBuf::from("/"),
            top_processes: 10,
            statfs_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            queue_capacity: 720,
            metrics_listen: None,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            pull_only: false,
            node_exporter_filters: false,
            tls: None,
            agent_tls: ClientTls::default(),
        }
    }

    /// Checks the values that would make the daemon misbehave.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_node_name(&self.node_name)
            .map_err(|e| ConfigError::new("METRICS_NODE_NAME", e))?;
        self.agents()?;
        if self.interval < Duration::from_millis(10) {
            return Err(ConfigError::new(
                "METRICS_COLLECT_INTERVAL",
                "must be at least 10ms",
            ));
        }
        if self.pull_only && self.metrics_listen.is_none() {
            return Err(ConfigError::new(
                "METRICS_PULL_ONLY",
                "needs METRICS_LISTEN: a pull-only daemon is only read through /metrics",
            ));
        }
        if self.request_timeout.is_zero() {
            return Err(ConfigError::new(
                "METRICS_PUSH_TIMEOUT",
                "must be greater than zero",
            ));
        }
        Ok(())
    }

    /// The agents to push to: `agent_addr` parsed (one address, or several comma-separated
    /// ones tried in turn when one is down).
    pub fn agents(&self) -> Result<Endpoints, ConfigError> {
        Endpoints::parse(&self.agent_addr, "METRICS_AGENT_ADDR")
    }
}

/// Flags of the `atlhyper-metrics` binary; each also reads the `METRICS_*` variable it names.
#[derive(Debug, Clone, clap::Args)]
pub struct DaemonArgs {
    /// The agent's address, scheme optional, or several comma-separated ones tried in turn
    /// when one is down; AGENT_ADDR when unset (default http://127.0.0.1:8082).
    #[arg(long, env = "METRICS_AGENT_ADDR")]
    pub agent_addr: Option<String>,
    /// Collection interval.
    #[arg(long, env = "METRICS_COLLECT_INTERVAL", default_value = "5s", value_parser = duration_arg)]
    pub interval: Duration,
    /// This node's name; NODE_NAME when unset, else the host name.
    #[arg(long, env = "METRICS_NODE_NAME")]
    pub node_name: Option<String>,
    /// The host's procfs.
    #[arg(long, env = "METRICS_PROC_ROOT", default_value = "/proc")]
    pub proc_root: PathBuf,
    /// The host's sysfs.
    #[arg(long, env = "METRICS_SYS_ROOT", default_value = "/sys")]
    pub sys_root: PathBuf,
    /// The host's root filesystem.
    #[arg(long, env = "METRICS_HOST_ROOT", default_value = "/")]
    pub host_root: PathBuf,
    /// Top N processes by CPU and by memory.
    #[arg(long, env = "METRICS_TOP_PROCESSES", default_value_t = 10)]
    pub top_processes: usize,
    /// Bound of one statfs call.
    #[arg(long, env = "METRICS_STATFS_TIMEOUT", default_value = "2s", value_parser = duration_arg)]
    pub statfs_timeout: Duration,
    /// Bound of one push to the agent.
    #[arg(long, env = "METRICS_PUSH_TIMEOUT", default_value = "5s", value_parser = duration_arg)]
    pub push_timeout: Duration,
    /// Bearer token for the agent.
    #[arg(long, env = "METRICS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// File holding the bearer token for the agent (instead of --token); re-read when it
    /// changes, so a rotated Secret is sent without a restart.
    #[arg(long, env = "METRICS_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Snapshots kept for backfill while the agent is unreachable.
    #[arg(long, env = "METRICS_QUEUE_CAPACITY", default_value_t = 720)]
    pub queue_capacity: usize,
    /// Serve the daemon's own /metrics on this address (`HOST:PORT`).
    #[arg(long, env = "METRICS_LISTEN", value_parser = parse_listen_arg)]
    pub metrics_listen: Option<SocketAddr>,
    /// First retry delay.
    #[arg(long, env = "METRICS_BACKOFF_BASE", default_value = "1s", value_parser = duration_arg)]
    pub backoff_base: Duration,
    /// Longest retry delay.
    #[arg(long, env = "METRICS_BACKOFF_MAX", default_value = "60s", value_parser = duration_arg)]
    pub backoff_max: Duration,
    /// Log filter (tracing EnvFilter syntax; RUST_LOG wins when set). Here rather than in the
    /// binary so `atlhyper metrics` and `atlhyper-metrics` read the same variable.
    #[arg(long, env = "METRICS_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
    /// Log line format: `text` (one readable line per event) or `json` (one object per line).
    #[arg(long, env = "METRICS_LOG_FORMAT", value_enum, default_value_t = atlhyper_http::LogFormat::Text)]
    pub log_format: atlhyper_http::LogFormat,
    /// Push nothing: serve /metrics only (needs --metrics-listen) and collect when scraped.
    #[arg(long, env = "METRICS_PULL_ONLY")]
    pub pull_only: bool,
    /// Keep virtual interfaces and tmpfs as node_exporter does (its default exclusions).
    #[arg(long, env = "METRICS_NODE_EXPORTER_FILTERS")]
    pub node_exporter_filters: bool,
    /// Serve /metrics over TLS with this PEM certificate chain (needs --tls-key); re-read when
    /// it changes.
    #[arg(long, env = "METRICS_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "METRICS_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA bundle an https:// agent's certificate must chain to (instead of the system
    /// roots).
    #[arg(long, env = "METRICS_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Do not verify the agent's certificate (testing only; logged as a warning).
    #[arg(long, env = "METRICS_TLS_INSECURE_SKIP_VERIFY")]
    pub tls_insecure_skip_verify: bool,
}

impl DaemonArgs {
    /// The configuration, with `AGENT_ADDR` and `NODE_NAME` as fallbacks read from the process
    /// environment, and the host name (from the host's procfs) as the last resort for the name.
    pub fn into_config(self) -> Result<DaemonConfig, ConfigError> {
        self.into_config_with(|name| std::env::var(name).ok())
    }

    /// Like [`DaemonArgs::into_config`] with the fallback variables read through `env`.
    pub fn into_config_with(
        self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<DaemonConfig, ConfigError> {
        let set = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
        let node_name = match set(self.node_name).or_else(|| set(env("NODE_NAME"))) {
            Some(n) => n.trim().to_owned(),
            None => host_name(&self.proc_root).ok_or_else(|| {
                ConfigError::new(
                    "METRICS_NODE_NAME",
                    "not set, NODE_NAME not set, and the host name is unreadable",
                )
            })?,
        };
        let mut config = DaemonConfig::new(node_name);
        if let Some(addr) = set(self.agent_addr).or_else(|| set(env("AGENT_ADDR"))) {
            config.agent_addr = addr.trim().to_owned();
        }
        config.interval = self.interval;
        config.token = set(self.token);
        config.token_file = self.token_file.filter(|p| !p.as_os_str().is_empty());
        if let Some(token) = &config.token {
            atlhyper_model::check_token("METRICS_TOKEN", token)?;
        }
        config.proc_root = self.proc_root;
        config.sys_root = self.sys_root;
        config.host_root = self.host_root;
        config.top_processes = self.top_processes;
        config.statfs_timeout = self.statfs_timeout;
        config.request_timeout = self.push_timeout;
        config.queue_capacity = self.queue_capacity;
        config.metrics_listen = self.metrics_listen;
        config.backoff_base = self.backoff_base;
        config.backoff_max = self.backoff_max;
        config.pull_only = self.pull_only;
        config.node_exporter_filters = self.node_exporter_filters;
        config.tls = TlsSettings::from_flags(self.tls_cert, self.tls_key, None)
            .map_err(|e| ConfigError::new("METRICS_TLS_CERT", e))?;
        if config.tls.is_some() && config.metrics_listen.is_none() {
            return Err(ConfigError::new(
                "METRICS_TLS_CERT",
                "needs METRICS_LISTEN: it is the certificate of the daemon's /metrics",
            ));
        }
        config.agent_tls = ClientTls {
            ca_file: self.ca_file.filter(|p| !p.as_os_str().is_empty()),
            insecure_skip_verify: self.tls_insecure_skip_verify,
            identity: None,
        };
        config.validate()?;
        Ok(config)
    }
}

/// The host name from `<proc>/sys/kernel/hostname`, lowercased (Kubernetes node names are).
fn host_name(proc_root: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(proc_root.join("sys/kernel/hostname")).ok()?;
    let name = text.trim().to_ascii_lowercase();
    (!name.is_empty()).then_some(name)
}
