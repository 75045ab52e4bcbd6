//! Flags, AtlHyper's variable fallbacks and validation of both configurations.

use std::time::Duration;

use atlhyper_agent::{AgentArgs, DaemonArgs};
use clap::Parser;

#[derive(Debug, Parser)]
struct Daemon {
    #[command(flatten)]
    args: DaemonArgs,
}

#[derive(Debug, Parser)]
struct Agent {
    #[command(flatten)]
    args: AgentArgs,
}

fn daemon(flags: &[&str]) -> DaemonArgs {
    let mut argv = vec!["atlhyper-metrics"];
    argv.extend_from_slice(flags);
    Daemon::try_parse_from(argv).unwrap().args
}

#[test]
fn daemon_flags() {
    let c = daemon(&[
        "--agent-addr",
        "atlhyper-agent.atlhyper:8082",
        "--interval",
        "10s",
        "--node-name",
        "worker-3",
        "--proc-root",
        "/host_proc",
        "--sys-root",
        "/host_sys",
        "--host-root",
        "/host_root",
        "--top-processes",
        "20",
        "--push-timeout",
        "2500ms",
        "--token",
        "t0k-0123456789abcdef",
        "--queue-capacity",
        "10",
        "--metrics-listen",
        "127.0.0.1:9100",
    ])
    .into_config_with(|_| None)
    .unwrap();
    assert_eq!(
        c.agents().unwrap().joined(),
        "http://atlhyper-agent.atlhyper:8082"
    );
    assert_eq!(c.interval, Duration::from_secs(10));
    assert_eq!(c.node_name, "worker-3");
    assert_eq!(c.proc_root.to_str(), Some("/host_proc"));
    assert_eq!(c.sys_root.to_str(), Some("/host_sys"));
    assert_eq!(c.host_root.to_str(), Some("/host_root"));
    assert_eq!(c.top_processes, 20);
    assert_eq!(c.request_timeout, Duration::from_millis(2500));
    assert_eq!(c.token.as_deref(), Some("t0k-0123456789abcdef"));
    assert_eq!(c.queue_capacity, 10);
    assert_eq!(c.metrics_listen.unwrap().port(), 9100);
}

#[test]
fn daemon_falls_back_to_agent_addr_and_node_name() {
    let env = |name: &str| match name {
        "AGENT_ADDR" => Some("http://agent.svc:8082/".to_owned()),
        "NODE_NAME" => Some("node-from-downward-api".to_owned()),
        _ => None,
    };
    let c = daemon(&[]).into_config_with(env).unwrap();
    assert_eq!(c.agents().unwrap().joined(), "http://agent.svc:8082");
    assert_eq!(c.node_name, "node-from-downward-api");
    assert_eq!(c.interval, Duration::from_secs(5));
    assert_eq!(c.request_timeout, Duration::from_secs(5));
    assert_eq!(c.top_processes, 10);
    // The METRICS_* value wins over the fallback.
    let c = daemon(&["--node-name", "explicit"])
        .into_config_with(env)
        .unwrap();
    assert_eq!(c.node_name, "explicit");
}

#[test]
fn daemon_node_name_defaults_to_the_host_name_from_procfs() {
    let dir = std::env::temp_dir().join(format!("atlhyper-agent-cfg-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sys/kernel")).unwrap();
    std::fs::write(dir.join("sys/kernel/hostname"), "Worker-Host-9\n").unwrap();
    let c = daemon(&["--proc-root", dir.to_str().unwrap()])
        .into_config_with(|_| None)
        .unwrap();
    assert_eq!(c.node_name, "worker-host-9");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn daemon_rejects_bad_values() {
    assert!(Daemon::try_parse_from(["m", "--interval", "soon"]).is_err());
    let err = daemon(&["--node-name", "Bad_Name"])
        .into_config_with(|_| None)
        .unwrap_err();
    assert!(err.to_string().contains("METRICS_NODE_NAME"), "{err}");
    let err = daemon(&["--node-name", "ok", "--interval", "5ms"])
        .into_config_with(|_| None)
        .unwrap_err();
    assert!(
        err.to_string().contains("METRICS_COLLECT_INTERVAL"),
        "{err}"
    );
    // Zero is refused by the flag parser, which names the flag.
    let err = Daemon::try_parse_from(["m", "--interval", "0s"])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--interval") && err.contains("above zero"),
        "{err}"
    );
    let c = daemon(&["--node-name", "ok", "--interval", "1m30s"])
        .into_config_with(|_| None)
        .unwrap();
    assert_eq!(c.interval, Duration::from_secs(90));
    assert!(Daemon::try_parse_from(["m", "--metrics-listen", "localhost:9100"]).is_ok());
}

#[test]
fn agent_flags_and_validation() {
    let c = Agent::try_parse_from([
        "a",
        "--listen",
        "127.0.0.1:9000",
        "--cluster-id",
        "prod",
        "--master-url",
        "https://master:8443",
        "--token",
        "x-0123456789abcdef",
        "--snapshot-interval",
        "30s",
        "--node-ttl",
        "1h",
        "--ring-capacity",
        "60",
        "--body-limit",
        "65536",
        "--header-timeout",
        "2500ms",
        "--max-connections",
        "100",
        "--max-nodes",
        "500",
        "--max-clock-ahead",
        "90s",
    ])
    .unwrap()
    .args
    .into_config()
    .unwrap();
    assert_eq!(c.listen.port(), 9000);
    assert_eq!(c.cluster_id, "prod");
    assert_eq!(c.snapshot_interval, Duration::from_secs(30));
    assert_eq!(c.node_ttl, Duration::from_secs(3600));
    assert_eq!(c.table_config().ring_capacity, 60);
    assert_eq!(c.body_limit, 65536);
    assert_eq!(c.header_timeout, Duration::from_millis(2500));
    assert_eq!(c.max_connections, 100);
    assert_eq!(c.table_config().max_nodes, 500);
    assert_eq!(c.clock_policy().max_ahead, Duration::from_secs(90));
    assert_eq!(c.node_interval, Duration::from_secs(5));
    assert_eq!(c.table_config().offline_after(), Duration::from_secs(15));
    let defaults = Agent::try_parse_from(["a"])
        .unwrap()
        .args
        .into_config()
        .unwrap();
    assert_eq!(defaults.header_timeout, Duration::from_secs(10));
    assert_eq!(defaults.max_connections, 4096);
    assert_eq!(defaults.max_nodes, 10_000);
    assert_eq!(defaults.max_clock_ahead, Duration::from_secs(300));
    // 30 days: the master's history retention.
    assert_eq!(
        defaults.clock_policy().max_age,
        Duration::from_secs(30 * 86400)
    );

    for bad in [
        vec!["a", "--cluster-id", " "],
        vec!["a", "--node-ttl", "10s"],
        vec!["a", "--command-concurrency", "0"],
        vec!["a", "--max-connections", "0"],
        vec!["a", "--max-nodes", "0"],
    ] {
        let args = Agent::try_parse_from(bad.clone()).unwrap().args;
        assert!(args.into_config().is_err(), "{bad:?} accepted");
    }
    for zero in ["--snapshot-interval", "--header-timeout", "--backoff-base"] {
        let err = Agent::try_parse_from(["a", zero, "0s"]).unwrap_err();
        assert!(err.to_string().contains(zero), "{err}");
    }
    let c = Agent::try_parse_from(["a", "--listen", "localhost:0"]).unwrap();
    assert!(c.args.listen.ip().is_loopback());
}

#[test]
fn several_agents_and_masters_are_comma_separated() {
    let c = daemon(&["--agent-addr", "agent-0:8082, https://agent-1:8443/"])
        .into_config_with(|_| None)
        .unwrap();
    assert_eq!(
        c.agents().unwrap().joined(),
        "http://agent-0:8082,https://agent-1:8443"
    );
    let err = daemon(&["--agent-addr", "agent-0:8082,,agent-1:8082"])
        .into_config_with(|_| None)
        .and_then(|c| c.validate().map(|()| c))
        .unwrap_err();
    assert!(err.to_string().contains("METRICS_AGENT_ADDR"), "{err}");

    let agent = atlhyper_agent::AgentConfig {
        master_url: "http://m-0:8080,http://m-1:8080".into(),
        ..atlhyper_agent::AgentConfig::default()
    };
    assert!(agent.validate().is_ok());
    let agent = atlhyper_agent::AgentConfig {
        master_url: "http://m-0:8080,".into(),
        ..atlhyper_agent::AgentConfig::default()
    };
    let err = agent.validate().unwrap_err();
    assert!(err.to_string().contains("AGENT_MASTER_URL"), "{err}");
}

#[test]
fn weak_tokens_are_refused_at_start() {
    let err = daemon(&["--token", "short"])
        .into_config_with(|_| None)
        .unwrap_err();
    assert_eq!(err.setting, "METRICS_TOKEN", "{err}");
    assert!(err.reason.contains("openssl rand -hex 32"), "{err}");
}
