//! Rotation without downtime, against the real binaries on loopback: tokens read from files
//! (as Kubernetes Secret mounts give them) rotate at both hops, daemon to agent and agent to
//! master, while snapshots flow; the agent's client certificate rotates to a new CA while the
//! master stops trusting the old one. Files are replaced in one rename, as a Secret volume
//! update swaps them.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use atlhyper_testkit::tls::{TestCa, Validity, write_atomically};
use atlhyper_testkit::{free_port, http, node_json};
use common::{
    AgentBuilder, MasterBuilder, Proc, RunningAgent, RunningMaster, Scratch, bins, scrape, serial,
    tail, wait_healthy,
};

const CLUSTER: &str = "rotation";
/// The reload messages are info lines; the harness' default is warn.
const INFO: &str = "info";
const NODE: &str = "rot-node";
const VIEWER: &str = "viewer-secret-0123456789";
const NODE_OLD: &str = "node-old-0123456789abcdef";
const NODE_NEW: &str = "node-new-0123456789abcdef";
const AGENT_OLD: &str = "agent-old-0123456789abcdef";
const AGENT_NEW: &str = "agent-new-0123456789abcdef";

/// Waits until `needle` appears `n` times in `proc`'s log.
fn wait_log_count(proc: &Proc, needle: &str, n: usize, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let text = proc.log_text();
        if text.matches(needle).count() >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{}: {needle:?} not seen {n} times within {limit:?}:\n{}",
            proc.name,
            tail(&text, 4000)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One series of a server's `/metrics` (0 when absent), panicking when it cannot be scraped.
fn counter(addr: SocketAddr, series: &str) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(all) = scrape(addr) {
            return all.get(series).copied().unwrap_or(0.0);
        }
        assert!(Instant::now() < deadline, "no /metrics from {addr}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until `series` of `addr`'s `/metrics` exceeds `above`.
fn wait_counter_above(addr: SocketAddr, series: &str, above: f64, who: &Proc) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let value = counter(addr, series);
        if value > above {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "{series} of {} stayed at {value}:\n{}",
            who.name,
            tail(&who.log_text(), 4000)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The master's token file: the viewer, and the agent tokens given.
fn master_tokens(path: &Path, agents: &[(&str, &str)]) {
    let mut text = format!("# ROLE NAME TOKEN [CLUSTER]\nviewer grafana {VIEWER}\n");
    for (name, token) in agents {
        text.push_str(&format!("agent {name} {token} {CLUSTER}\n"));
    }
    write_atomically(path, text.as_bytes());
}

/// The agent's node-token file: the fleet tokens given, and one limited to another node.
fn node_tokens(path: &Path, fleet: &[(&str, &str)]) {
    let mut text = "# NAME TOKEN [NODE]\nother-node other-0123456789abcdef other\n".to_owned();
    for (name, token) in fleet {
        text.push_str(&format!("{name} {token}\n"));
    }
    write_atomically(path, text.as_bytes());
}

/// Master, agent and daemon on loopback, every token read from a file in `dir`: the master's
/// `master-tokens`, the agent's `agent-token` (to the master) and `node-tokens` (from the
/// daemons), the daemon's `daemon-token`; all hold the 2026-10 tokens at the start.
struct Chain {
    master: RunningMaster,
    agent: RunningAgent,
    agent_addr: SocketAddr,
    daemon: Proc,
    daemon_addr: SocketAddr,
    master_file: PathBuf,
    node_file: PathBuf,
    agent_token: PathBuf,
    daemon_token: PathBuf,
}

impl Chain {
    /// Starts the three and waits until the agent has pushed to the master.
    fn start(dir: &Scratch) -> Chain {
        let master_file = dir.0.join("master-tokens");
        master_tokens(&master_file, &[("agent-2026-10", AGENT_OLD)]);
        let master = MasterBuilder::new("rotation-master")
            .in_dir(&dir.0)
            .env("MASTER_TOKEN_FILE", master_file.display().to_string())
            .log(INFO)
            .start();

        let node_file = dir.0.join("node-tokens");
        node_tokens(&node_file, &[("fleet-2026-10", NODE_OLD)]);
        let agent_token = dir.0.join("agent-token");
        write_atomically(&agent_token, format!("{AGENT_OLD}\n").as_bytes());
        let agent = AgentBuilder::new("atlhyper-agent", CLUSTER)
            .in_dir(&dir.0)
            .log(INFO)
            .master(master.addr)
            .token_file(&agent_token)
            .node_token_file(&node_file)
            .env("AGENT_SNAPSHOT_INTERVAL", "200ms")
            .env("AGENT_HEARTBEAT_INTERVAL", "500ms")
            .env("AGENT_NODE_INTERVAL", "200ms")
            .backoff("100ms", "500ms")
            .start();
        let agent_addr = agent.addr;

        let daemon_token = dir.0.join("daemon-token");
        write_atomically(&daemon_token, format!("{NODE_OLD}\n").as_bytes());
        let daemon_addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let daemon = Proc::spawn(
            "atlhyper-metrics",
            &bins().metrics,
            &[
                ("RUST_LOG", INFO.to_owned()),
                ("METRICS_AGENT_ADDR", agent.url()),
                ("METRICS_TOKEN_FILE", daemon_token.display().to_string()),
                ("METRICS_COLLECT_INTERVAL", "200ms".to_owned()),
                ("METRICS_NODE_NAME", NODE.to_owned()),
                ("METRICS_LISTEN", daemon_addr.to_string()),
            ],
            &dir.0,
        );
        wait_healthy(daemon_addr, Duration::from_secs(30), &daemon);
        wait_counter_above(agent_addr, "atlhyper_agent_pushes_total", 2.0, &agent.proc);
        Chain {
            master,
            agent,
            agent_addr,
            daemon,
            daemon_addr,
            master_file,
            node_file,
            agent_token,
            daemon_token,
        }
    }

    /// A node snapshot of `node` pushed to the agent with `token`: the status code.
    fn push_node(&self, token: &str, node: &str) -> u16 {
        let body = node_json(node, chrono::Utc::now(), 5.0);
        let auth = format!("Bearer {token}");
        let headers = [
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ];
        http(
            self.agent_addr,
            "POST",
            "/metrics/node",
            &headers,
            body.as_bytes(),
            Duration::from_secs(5),
        )
        .expect("the agent answers")
        .0
    }

    /// A heartbeat sent to the master with agent token `token`: the status code.
    fn heartbeat(&self, token: &str) -> u16 {
        let beat = format!(r#"{{"cluster_id":"{CLUSTER}","timestamp":"2026-11-30T10:30:00Z"}}"#);
        let auth = format!("Bearer {token}");
        http(
            self.master.addr,
            "POST",
            "/agent/heartbeat",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
                ("X-Cluster-ID", CLUSTER),
            ],
            beat.as_bytes(),
            Duration::from_secs(5),
        )
        .expect("the master answers")
        .0
    }

    /// Waits until the daemon and the agent have each pushed `n` more times.
    fn wait_pushes(&self, n: f64) {
        let pushes = counter(self.agent_addr, "atlhyper_agent_pushes_total");
        let sent = counter(self.daemon_addr, "atlhyper_metrics_pushes_total");
        let series = "atlhyper_agent_pushes_total";
        wait_counter_above(self.agent_addr, series, pushes + n, &self.agent.proc);
        let series = "atlhyper_metrics_pushes_total";
        wait_counter_above(self.daemon_addr, series, sent + n, &self.daemon);
    }
}

#[test]
fn tokens_rotate_at_both_hops_without_a_failed_push() {
    let _serial = serial();
    let dir = Scratch::new("rotation-tokens");
    let chain = Chain::start(&dir);
    let Chain {
        master,
        agent: RunningAgent { proc: agent, .. },
        agent_addr,
        daemon,
        daemon_addr,
        master_file,
        node_file,
        agent_token,
        daemon_token,
    } = &chain;
    let (agent_addr, daemon_addr) = (*agent_addr, *daemon_addr);

    // Daemon to agent: the new token next to the old, the daemon switched, the old removed.
    let limit = Duration::from_secs(30);
    node_tokens(
        node_file,
        &[("fleet-2026-10", NODE_OLD), ("fleet-2026-11", NODE_NEW)],
    );
    wait_log_count(agent, "AGENT_NODE_TOKEN_FILE reloaded", 1, limit);
    write_atomically(daemon_token, format!("{NODE_NEW}\n").as_bytes());
    wait_log_count(daemon, "METRICS_TOKEN_FILE reloaded", 1, limit);
    node_tokens(node_file, &[("fleet-2026-11", NODE_NEW)]);
    wait_log_count(agent, "AGENT_NODE_TOKEN_FILE reloaded", 2, limit);

    // Agent to master, the same three steps.
    master_tokens(
        master_file,
        &[("agent-2026-10", AGENT_OLD), ("agent-2026-11", AGENT_NEW)],
    );
    wait_log_count(&master.proc, "token file reloaded", 1, limit);
    write_atomically(agent_token, format!("{AGENT_NEW}\n").as_bytes());
    wait_log_count(agent, "AGENT_TOKEN_FILE reloaded", 1, limit);
    master_tokens(master_file, &[("agent-2026-11", AGENT_NEW)]);
    wait_log_count(&master.proc, "token file reloaded", 2, limit);

    // Traffic keeps flowing on the new tokens alone.
    chain.wait_pushes(3.0);

    // No failed push anywhere, nothing dropped, no 401 or 403 at the agent.
    for (addr, series) in [
        (
            agent_addr,
            "atlhyper_agent_snapshots_rejected_total{code=\"401\"}",
        ),
        (
            agent_addr,
            "atlhyper_agent_snapshots_rejected_total{code=\"403\"}",
        ),
        (agent_addr, "atlhyper_agent_push_failures_total"),
        (agent_addr, "atlhyper_agent_heartbeat_failures_total"),
        (daemon_addr, "atlhyper_metrics_push_failures_total"),
        (daemon_addr, "atlhyper_metrics_dropped_points_total"),
    ] {
        assert_eq!(counter(addr, series), 0.0, "{series}");
    }
    // The node is at the master, through both rotated hops.
    let path = format!("/api/v2/clusters/{CLUSTER}/node-metrics/{NODE}");
    let bearer = format!("Bearer {VIEWER}");
    let (code, _) = atlhyper_testkit::http_get(
        master.addr,
        &path,
        &[("Authorization", &bearer)],
        Duration::from_secs(5),
    )
    .expect("the master answers");
    assert_eq!(code, 200, "the node at the master");

    // The old tokens are refused now; a per-node token pushing another node gets 403.
    assert_eq!(chain.push_node(NODE_OLD, NODE), 401);
    assert_eq!(chain.push_node("other-0123456789abcdef", NODE), 403);
    assert_eq!(chain.push_node("other-0123456789abcdef", "other"), 200);
    let code = chain.heartbeat(AGENT_OLD);
    assert_eq!(code, 401, "the old agent token after rotation");
    wait_log_count(agent, "node token used for another node", 1, limit);
    for p in [&master.proc, agent, daemon] {
        p.assert_no_panic();
    }
}

/// The agent's node-token file rewritten with a malformed line (the new token next to the old,
/// and a line of five fields) while the daemon pushes: the agent keeps the set in force (the old
/// token pushes, the new one is not let in yet), says once that it did not reload, and takes
/// the file once it is mended; the daemon's pushes never fail.
#[test]
fn a_malformed_node_token_file_keeps_the_tokens_in_force_while_pushes_go_on() {
    let _serial = serial();
    let dir = Scratch::new("rotation-malformed");
    let chain = Chain::start(&dir);
    let limit = Duration::from_secs(30);
    let text = format!(
        "# NAME TOKEN [NODE]\nfleet-2026-10 {NODE_OLD}\nfleet-2026-11 {NODE_NEW}\n\
         broken-line {NODE_NEW} {NODE} and-more\n"
    );
    write_atomically(&chain.node_file, text.as_bytes());
    let warning = "AGENT_NODE_TOKEN_FILE not reloaded; the one in force stays";
    wait_log_count(&chain.agent.proc, warning, 1, limit);
    let log = chain.agent.proc.log_text();
    let line = log.lines().find(|l| l.contains(warning)).expect("warning");
    assert!(
        line.contains("node-tokens:4"),
        "names the file and line: {line}"
    );
    assert!(
        !line.contains(NODE_NEW),
        "the token itself is never logged: {line}"
    );
    assert_eq!(
        chain.push_node(NODE_NEW, NODE),
        401,
        "a token of the broken file"
    );
    assert_eq!(chain.push_node(NODE_OLD, NODE), 200, "the token in force");
    // Several reload rounds of the same broken file: pushes go on, the warning is not repeated.
    chain.wait_pushes(3.0);
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(chain.agent.proc.log_text().matches(warning).count(), 1);

    // Mended: the new token is in force next to the old.
    node_tokens(
        &chain.node_file,
        &[("fleet-2026-10", NODE_OLD), ("fleet-2026-11", NODE_NEW)],
    );
    wait_log_count(
        &chain.agent.proc,
        "AGENT_NODE_TOKEN_FILE reloaded",
        1,
        limit,
    );
    assert_eq!(chain.push_node(NODE_NEW, NODE), 200);
    assert_eq!(chain.push_node(NODE_OLD, NODE), 200);
    chain.wait_pushes(3.0);
    for (addr, series) in [
        (chain.daemon_addr, "atlhyper_metrics_push_failures_total"),
        (chain.daemon_addr, "atlhyper_metrics_dropped_points_total"),
        (chain.agent_addr, "atlhyper_agent_push_failures_total"),
    ] {
        assert_eq!(counter(addr, series), 0.0, "{series}");
    }
    for p in [&chain.master.proc, &chain.agent.proc, &chain.daemon] {
        p.assert_no_panic();
    }
}

/// kill -9 of the master in the middle of a token-file rotation. During the overlap the old and
/// the new agent token are both let in, and the agent moves to the new one; then the file
/// drops the old token and the master is killed before its next reload could see that. The
/// restarted master reads the file afresh: at once the old token is refused and the new one
/// let in, and the agent's pushes (on the new token) go on.
#[test]
fn a_master_killed_during_token_rotation_reads_the_file_afresh() {
    let _serial = serial();
    let dir = Scratch::new("rotation-kill");
    let mut chain = Chain::start(&dir);
    let limit = Duration::from_secs(30);
    master_tokens(
        &chain.master_file,
        &[("agent-2026-10", AGENT_OLD), ("agent-2026-11", AGENT_NEW)],
    );
    wait_log_count(&chain.master.proc, "token file reloaded", 1, limit);
    assert_eq!(
        chain.heartbeat(AGENT_OLD),
        200,
        "the old token in the overlap"
    );
    assert_eq!(
        chain.heartbeat(AGENT_NEW),
        200,
        "the new token in the overlap"
    );
    write_atomically(&chain.agent_token, format!("{AGENT_NEW}\n").as_bytes());
    wait_log_count(&chain.agent.proc, "AGENT_TOKEN_FILE reloaded", 1, limit);
    chain.wait_pushes(3.0);

    // The old token leaves the file; the master dies well inside its 5 s reload interval.
    master_tokens(&chain.master_file, &[("agent-2026-11", AGENT_NEW)]);
    chain.master.kill9();
    let reloads_before = chain
        .master
        .proc
        .log_text()
        .matches("token file reloaded")
        .count();
    chain.master.restart();
    assert_eq!(
        chain.heartbeat(AGENT_OLD),
        401,
        "the old token after the restart"
    );
    assert_eq!(
        chain.heartbeat(AGENT_NEW),
        200,
        "the new token after the restart"
    );
    assert_eq!(
        chain
            .master
            .proc
            .log_text()
            .matches("token file reloaded")
            .count(),
        reloads_before,
        "the restarted master read the file at its start, not at a reload"
    );
    // The agent pushes to the restarted master on the new token; its node is there, fresh.
    chain.wait_pushes(3.0);
    let path = format!("/api/v2/clusters/{CLUSTER}/node-metrics/{NODE}?format=v2");
    let bearer = format!("Bearer {VIEWER}");
    let restarted = chrono::Utc::now();
    let fresh = atlhyper_testkit::wait_until(limit, || {
        atlhyper_testkit::get_json(
            chain.master.addr,
            &path,
            &[("Authorization", &bearer)],
            Duration::from_secs(5),
        )
        .ok()
        .filter(|(code, _)| *code == 200)
        .and_then(|(_, v)| chrono::DateTime::parse_from_rfc3339(v["timestamp"].as_str()?).ok())
        .is_some_and(|t| t > restarted)
    });
    assert!(
        fresh.is_some(),
        "no snapshot after the restart:\n{}",
        tail(&chain.agent.proc.log_text(), 3000)
    );
    // The agent was never refused for its token by either master process.
    let log = chain.agent.proc.log_text();
    let refused: Vec<&str> = log.lines().filter(|l| l.contains("answered 401")).collect();
    assert!(
        refused.is_empty(),
        "the agent's token was refused: {refused:?}"
    );
    for p in [&chain.master.proc, &chain.agent.proc, &chain.daemon] {
        p.assert_no_panic();
    }
}

/// A token file that is missing at start stops the start, and names the file.
#[test]
fn a_missing_token_file_fails_the_start_with_its_name() {
    let _serial = serial();
    let dir = Scratch::new("rotation-missing");
    let absent = dir.0.join("absent-node-tokens");
    let mut agent = Proc::spawn(
        "atlhyper-agent",
        &bins().agent,
        &[
            ("AGENT_LISTEN", "127.0.0.1:0".to_owned()),
            ("AGENT_NODE_TOKEN_FILE", absent.display().to_string()),
        ],
        &dir.0,
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while agent.alive() {
        assert!(
            Instant::now() < deadline,
            "the agent started without its token file"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = agent.log_text();
    assert!(
        log.contains("AGENT_NODE_TOKEN_FILE") && log.contains("absent-node-tokens"),
        "{log}"
    );
}

/// The agent presents a client certificate of CA 1; it is replaced by one of CA 2 while the
/// master trusts both, then the master trusts CA 2 alone and restarts (every connection is
/// new): the agent's pushes go on with the new certificate, and no handshake is refused.
#[test]
fn the_agents_client_certificate_rotates_to_a_new_ca() {
    let _serial = serial();
    let dir = Scratch::new("rotation-cert");
    let server_ca = TestCa::new("server CA");
    let ca_file = server_ca.write(&dir.0, "ca");
    let (cert, key) = server_ca
        .server(&["localhost", "127.0.0.1"], Validity::Current)
        .write(&dir.0, "tls");
    let (old_ca, new_ca) = (TestCa::new("agents 2026-10"), TestCa::new("agents 2026-11"));
    let client_ca = dir.0.join("client-ca.crt");
    write_atomically(&client_ca, old_ca.cert_pem().as_bytes());
    let (client_cert, client_key) = old_ca
        .client(&[CLUSTER], Validity::Current)
        .write(&dir.0, "agent-client");

    let master_addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let master_env = [
        ("RUST_LOG", INFO.to_owned()),
        ("MASTER_LISTEN_ADDR", master_addr.to_string()),
        (
            "MASTER_DB_PATH",
            dir.0.join("atlhyper.db").display().to_string(),
        ),
        ("MASTER_TLS_CERT", cert.display().to_string()),
        ("MASTER_TLS_KEY", key.display().to_string()),
        ("MASTER_TLS_CLIENT_CA", client_ca.display().to_string()),
        ("MASTER_TLS_CLIENT_CERT_MODE", "agents".to_owned()),
        ("MASTER_VIEWER_TOKEN", VIEWER.to_owned()),
        (
            "MASTER_OPERATOR_TOKEN",
            "operator-secret-0123456789".to_owned(),
        ),
    ];
    let mut master = Proc::spawn("atlhyper-master", &bins().master, &master_env, &dir.0);
    let agent = AgentBuilder::new("atlhyper-agent", CLUSTER)
        .in_dir(&dir.0)
        .log(INFO)
        .masters(&format!("https://localhost:{}", master_addr.port()))
        .client_cert(&ca_file, &client_cert, &client_key)
        .env("AGENT_SNAPSHOT_INTERVAL", "200ms")
        .env("AGENT_HEARTBEAT_INTERVAL", "500ms")
        .backoff("100ms", "500ms")
        .start();
    let agent_addr = agent.addr;
    let agent = &agent.proc;
    wait_counter_above(agent_addr, "atlhyper_agent_pushes_total", 2.0, agent);

    let limit = Duration::from_secs(30);
    let both = format!("{}{}", old_ca.cert_pem(), new_ca.cert_pem());
    write_atomically(&client_ca, both.as_bytes());
    wait_log_count(&master, "TLS certificate reloaded", 1, limit);
    new_ca
        .client(&[CLUSTER], Validity::Current)
        .write(&dir.0, "agent-client");
    wait_log_count(agent, "client certificate reloaded", 1, limit);
    write_atomically(&client_ca, new_ca.cert_pem().as_bytes());
    wait_log_count(&master, "TLS certificate reloaded", 2, limit);
    // Every connection from here on is a new handshake, which only the new certificate passes.
    master.kill9_and_restart();
    let pushes = counter(agent_addr, "atlhyper_agent_pushes_total");
    wait_counter_above(
        agent_addr,
        "atlhyper_agent_pushes_total",
        pushes + 3.0,
        agent,
    );
    let refused = master.log_text().matches("TLS handshake failed").count();
    assert_eq!(
        refused,
        0,
        "the master refused a handshake:\n{}",
        tail(&master.log_text(), 4000)
    );
    for p in [&master, agent] {
        p.assert_no_panic();
    }
}
