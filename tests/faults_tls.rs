//! Fault suite over TLS, against the real binaries on loopback with certificates from a test CA
//! (rcgen): the daemon, the agent and the master speak TLS end to end with `--ca-file`; a client
//! that does not trust the certificate says why and the server logs the refused handshake; 500
//! connections dribbling a TLS ClientHello do not delay a normal push and are closed at the
//! header timeout; out of descriptors, the TLS accept loop backs off and recovers. Requests from
//! the outside are made with curl.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use atlhyper_testkit::tls::{TestCa, Validity};
use atlhyper_testkit::{free_port, node_json, real_programs_here};
use common::{AgentBuilder, Proc, RunningAgent, Scratch, Slowloris, bins, serial, tail};

const CURL: &str = "/usr/bin/curl";
const NODE_TOKEN: &str = "node-secret-0123456789";

fn curl_here() -> bool {
    real_programs_here(&[CURL], "apt-get install -y curl")
}

/// A test CA and a server certificate for `localhost` and `127.0.0.1`, written to a scratch
/// directory.
struct Pki {
    dir: Scratch,
    ca_file: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl Pki {
    fn new(name: &str) -> Self {
        let dir = Scratch::new(name);
        let ca = TestCa::new("fault suite CA");
        let ca_file = ca.write(&dir.0, "ca");
        let (cert, key) = ca
            .server(&["localhost", "127.0.0.1"], Validity::Current)
            .write(&dir.0, "tls");
        Self {
            dir,
            ca_file,
            cert,
            key,
        }
    }
}

/// `curl` over HTTPS trusting `ca_file`: the status (0 when no answer), the body and curl's
/// complaint.
fn curl(
    url: &str,
    ca_file: &Path,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> (u16, String, String) {
    curl_as(url, ca_file, None, headers, body)
}

/// [`curl`] presenting the client certificate and key `client`.
fn curl_as(
    url: &str,
    ca_file: &Path,
    client: Option<(&Path, &Path)>,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> (u16, String, String) {
    let mut cmd = Command::new(CURL);
    if let Some((cert, key)) = client {
        cmd.arg("--cert").arg(cert).arg("--key").arg(key);
    }
    cmd.args([
        "-sS",
        "--max-time",
        "10",
        "-w",
        "\n%{http_code}",
        "--cacert",
    ])
    .arg(ca_file);
    for (name, value) in headers {
        cmd.arg("-H").arg(format!("{name}: {value}"));
    }
    if body.is_some() {
        cmd.args(["--data-binary", "@-"]);
    }
    let mut child = cmd
        .arg(url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("curl runs");
    let mut stdin = child.stdin.take().expect("stdin");
    if let Some(body) = body {
        stdin.write_all(body).expect("body to curl");
    }
    drop(stdin);
    let out = child.wait_with_output().expect("curl ends");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (
        code.trim().parse().unwrap_or(0),
        body.to_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Waits until `GET https://addr/health` answers 200 through curl.
fn wait_healthy_tls(addr: SocketAddr, ca_file: &Path, who: &Proc) {
    wait_healthy_tls_as(addr, ca_file, None, who);
}

fn wait_healthy_tls_as(
    addr: SocketAddr,
    ca_file: &Path,
    client: Option<(&Path, &Path)>,
    who: &Proc,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if curl_as(
            &format!("https://{addr}/health"),
            ca_file,
            client,
            &[],
            None,
        )
        .0 == 200
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} not healthy over TLS on {addr}:\n{}",
            who.name,
            tail(&who.log_text(), 4000)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits up to `limit` for `needle` in `proc`'s log; the log.
fn wait_log(proc: &Proc, needle: &str, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let text = proc.log_text();
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{}: no {needle:?} in the log:\n{}",
            proc.name,
            tail(&text, 4000)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An agent serving TLS whose master is a closed port.
fn tls_agent(pki: &Pki, extra: &[(&str, String)], nofile: Option<u64>) -> (Proc, SocketAddr) {
    let agent = AgentBuilder::new("atlhyper-agent", "fault-tls")
        .in_dir(&pki.dir.0)
        .dead_master()
        .node_token(NODE_TOKEN)
        .token("agent-secret-0123456789")
        .serve_tls(&pki.cert, &pki.key)
        .envs(extra);
    // Its log and files live in the PKI's scratch directory, which outlives the process.
    let RunningAgent { proc, addr, .. } = match nofile {
        Some(n) => agent.fd_limit(n),
        None => agent,
    }
    .start();
    wait_healthy_tls(addr, &pki.ca_file, &proc);
    (proc, addr)
}

/// One node push over TLS through curl: the status and how long it took.
fn push(addr: SocketAddr, ca_file: &Path, node: &str) -> (u16, Duration) {
    let body = node_json(node, chrono::Utc::now(), 5.0);
    let started = Instant::now();
    let (code, text, err) = curl(
        &format!("https://{addr}/metrics/node"),
        ca_file,
        &[
            ("Authorization", &format!("Bearer {NODE_TOKEN}")),
            ("Content-Type", "application/json"),
        ],
        Some(body.as_bytes()),
    );
    assert_eq!(code, 200, "{text} {err}");
    (code, started.elapsed())
}

/// The first bytes a real TLS client sends: a ClientHello record.
fn client_hello() -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("a name");
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).expect("a client");
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).expect("the ClientHello");
    assert!(hello.len() > 100, "a ClientHello of {} bytes", hello.len());
    hello
}

/// `n` connections holding a TLS handshake open: the record header at once, then the rest of a
/// ClientHello one byte at a time.
fn tls_slowloris(addr: SocketAddr, n: usize, every: Duration) -> Slowloris {
    let hello = client_hello();
    Slowloris::start_with(addr, &hello[..5], Some(hello[5..].to_vec()), n, every)
}

/// The master requires client certificates (`MASTER_TLS_CLIENT_CA`); the agent presents one
/// naming its cluster and no token, the operator's curl one of its own.
#[test]
fn daemon_agent_and_master_speak_tls_end_to_end() {
    let _serial = serial();
    if !curl_here() {
        return;
    }
    let pki = Pki::new("tls-e2e");
    let clients = TestCa::new("agent CA");
    let client_ca = clients.write(&pki.dir.0, "client-ca");
    let (agent_cert, agent_key) = clients
        .client(&["fault-tls"], Validity::Current)
        .write(&pki.dir.0, "agent-client");
    let (reader_cert, reader_key) = clients
        .client(&["operator"], Validity::Current)
        .write(&pki.dir.0, "reader-client");
    let reader = Some((reader_cert.as_path(), reader_key.as_path()));
    let master_addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let master = Proc::spawn(
        "atlhyper-master",
        &bins().master,
        &[
            ("MASTER_LISTEN_ADDR", master_addr.to_string()),
            (
                "MASTER_DB_PATH",
                pki.dir.0.join("atlhyper.db").display().to_string(),
            ),
            ("MASTER_TLS_CERT", pki.cert.display().to_string()),
            ("MASTER_TLS_KEY", pki.key.display().to_string()),
            ("MASTER_TLS_CLIENT_CA", client_ca.display().to_string()),
        ],
        &pki.dir.0,
    );
    wait_healthy_tls_as(master_addr, &pki.ca_file, reader, &master);
    // Without a client certificate the master does not talk.
    let (code, _, err) = curl(
        &format!("https://{master_addr}/health"),
        &pki.ca_file,
        &[],
        None,
    );
    assert_eq!(code, 0, "answered without a client certificate");
    eprintln!("curl without a client certificate: {}", err.trim());
    let (agent, agent_addr) = tls_agent(
        &pki,
        &[
            (
                "AGENT_MASTER_URL",
                format!("https://localhost:{}", master_addr.port()),
            ),
            ("AGENT_CA_FILE", pki.ca_file.display().to_string()),
            ("AGENT_CLIENT_CERT", agent_cert.display().to_string()),
            ("AGENT_CLIENT_KEY", agent_key.display().to_string()),
            ("AGENT_TOKEN", String::new()),
            ("AGENT_SNAPSHOT_INTERVAL", "200ms".to_owned()),
        ],
        None,
    );
    let daemon_listen: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let daemon = Proc::spawn(
        "atlhyper-metrics",
        &bins().metrics,
        &[
            (
                "METRICS_AGENT_ADDR",
                format!("https://127.0.0.1:{}", agent_addr.port()),
            ),
            ("METRICS_CA_FILE", pki.ca_file.display().to_string()),
            ("METRICS_TOKEN", NODE_TOKEN.to_owned()),
            ("METRICS_COLLECT_INTERVAL", "200ms".to_owned()),
            ("METRICS_NODE_NAME", "tls-node".to_owned()),
            ("METRICS_LISTEN", daemon_listen.to_string()),
            ("METRICS_TLS_CERT", pki.cert.display().to_string()),
            ("METRICS_TLS_KEY", pki.key.display().to_string()),
        ],
        &pki.dir.0,
    );
    wait_healthy_tls(daemon_listen, &pki.ca_file, &daemon);
    let (code, text, _) = curl(
        &format!("https://{daemon_listen}/metrics"),
        &pki.ca_file,
        &[],
        None,
    );
    assert_eq!(code, 200, "the daemon's /metrics over TLS");
    assert!(
        text.contains("node_cpu_seconds_total") || text.contains("atlhyper"),
        "{}",
        tail(&text, 500)
    );

    // The node reaches the master through both TLS hops.
    let url = format!("https://{master_addr}/api/v2/clusters/fault-tls/node-metrics");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, text, _) = curl_as(&url, &pki.ca_file, reader, &[], None);
        if code == 200 && text.contains("tls-node") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the node never reached the master over TLS ({code} {text});\ndaemon:\n{}\nagent:\n{}",
            tail(&daemon.log_text(), 2000),
            tail(&agent.log_text(), 2000)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Only the certificate-less curl above was refused.
    let refused = master.log_text().matches("TLS handshake failed").count();
    assert_eq!(refused, 1, "{}", master.log_text());
    for p in [&master, &agent, &daemon] {
        p.assert_no_panic();
    }
    for p in [&agent, &daemon] {
        assert!(
            !p.log_text().contains("TLS handshake failed"),
            "{}",
            p.log_text()
        );
    }
}

#[test]
fn a_client_that_does_not_trust_the_certificate_says_why_and_the_server_logs_it() {
    let _serial = serial();
    let pki = Pki::new("tls-distrust");
    let (agent, agent_addr) = if curl_here() {
        tls_agent(&pki, &[], None)
    } else {
        return;
    };
    let stranger = TestCa::new("someone else's CA").write(&pki.dir.0, "stranger");
    let daemon = Proc::spawn(
        "atlhyper-metrics",
        &bins().metrics,
        &[
            (
                "METRICS_AGENT_ADDR",
                format!("https://127.0.0.1:{}", agent_addr.port()),
            ),
            ("METRICS_CA_FILE", stranger.display().to_string()),
            ("METRICS_TOKEN", NODE_TOKEN.to_owned()),
            ("METRICS_COLLECT_INTERVAL", "200ms".to_owned()),
            ("METRICS_BACKOFF_MAX", "200ms".to_owned()),
            ("METRICS_NODE_NAME", "distrusting-node".to_owned()),
        ],
        &pki.dir.0,
    );
    let client = wait_log(
        &daemon,
        "invalid peer certificate: UnknownIssuer",
        Duration::from_secs(30),
    );
    let line = client
        .lines()
        .find(|l| l.contains("UnknownIssuer"))
        .unwrap_or_default()
        .to_owned();
    let server = wait_log(&agent, "TLS handshake failed", Duration::from_secs(30));
    let server_line = server
        .lines()
        .find(|l| l.contains("TLS handshake failed"))
        .unwrap_or_default()
        .to_owned();
    eprintln!("daemon: {line}\nagent: {server_line}");
    assert!(server_line.contains("UnknownCA"), "{server_line}");
    // curl without the CA says so too, and the agent keeps serving the ones that trust it.
    let stranger_curl = curl(
        &format!("https://{agent_addr}/health"),
        &stranger,
        &[],
        None,
    );
    assert_eq!(stranger_curl.0, 0, "{stranger_curl:?}");
    assert!(
        stranger_curl.2.contains("certificate"),
        "{}",
        stranger_curl.2
    );
    assert_eq!(push(agent_addr, &pki.ca_file, "trusting-node").0, 200);
    daemon.assert_no_panic();
    agent.assert_no_panic();
}

#[test]
fn slowloris_over_tls_does_not_delay_a_normal_push() {
    let _serial = serial();
    if !curl_here() {
        return;
    }
    let pki = Pki::new("tls-slowloris");
    let (agent, addr) = tls_agent(&pki, &[("AGENT_HEADER_TIMEOUT", "3s".to_owned())], None);
    let mut push_one = || push(addr, &pki.ca_file, "normal-node").1;
    let under = common::pushes_under_slowloris_with(
        "agent over TLS (ClientHello dribbled)",
        &agent,
        Duration::from_secs(3),
        Duration::from_millis(50),
        &mut push_one,
        &|| tls_slowloris(addr, 500, Duration::from_millis(100)),
    );
    assert!(under.len() >= 10, "pushes kept flowing ({})", under.len());
}

#[test]
fn out_of_descriptors_the_tls_accept_loop_backs_off_and_recovers() {
    let _serial = serial();
    if !curl_here() {
        return;
    }
    let pki = Pki::new("tls-emfile");
    let (agent, addr) = tls_agent(&pki, &[("AGENT_HEADER_TIMEOUT", "2s".to_owned())], Some(64));
    let fds_before = agent.fds();
    let started = Instant::now();
    let slow = tls_slowloris(addr, 150, Duration::from_millis(100));
    wait_log(
        &agent,
        "accepting a connection failed",
        Duration::from_secs(10),
    );
    let fds_peak = agent.fds();
    let all_closed = slow.wait_all_closed(Duration::from_secs(40));
    let took = started.elapsed();
    let report = slow.stop();
    let (code, push_took) = push(addr, &pki.ca_file, "after-emfile");
    let fds_after = agent.fds();
    eprintln!(
        "agent over TLS out of descriptors (RLIMIT_NOFILE 64, header timeout 2 s): 150 \
         connections dribbling a ClientHello, {} closed by the server in {took:.1?}, {} \
         answered; fds {fds_before} -> {fds_peak} -> {fds_after}; push afterwards {code} in \
         {push_took:?}",
        report.closed, report.answered
    );
    assert!(
        all_closed,
        "only {} of 150 connections closed",
        report.closed
    );
    assert_eq!(report.answered, 0, "half-sent handshakes were answered");
    assert!(
        fds_after <= fds_before + 8,
        "descriptors back near the baseline: {fds_before} -> {fds_after}"
    );
    agent.assert_no_panic();
}

/// `MASTER_TLS_CLIENT_CERT_MODE=agents`: the agent routes need a certificate of the client CA,
/// readers keep their bearer tokens and the probes need no certificate.
#[test]
fn agents_only_client_certificates_leave_readers_on_tokens() {
    let _serial = serial();
    if !curl_here() {
        return;
    }
    const VIEWER: &str = "viewer-secret-0123456789";
    let pki = Pki::new("tls-agents-only");
    let clients = TestCa::new("agent CA");
    let client_ca = clients.write(&pki.dir.0, "client-ca");
    let (agent_cert, agent_key) = clients
        .client(&["fault-tls"], Validity::Current)
        .write(&pki.dir.0, "agent-client");
    let (stranger_cert, stranger_key) = TestCa::new("stranger")
        .client(&["fault-tls"], Validity::Current)
        .write(&pki.dir.0, "stranger-client");
    let master_addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let master = Proc::spawn(
        "atlhyper-master",
        &bins().master,
        &[
            ("MASTER_LISTEN_ADDR", master_addr.to_string()),
            (
                "MASTER_DB_PATH",
                pki.dir.0.join("atlhyper.db").display().to_string(),
            ),
            ("MASTER_TLS_CERT", pki.cert.display().to_string()),
            ("MASTER_TLS_KEY", pki.key.display().to_string()),
            ("MASTER_TLS_CLIENT_CA", client_ca.display().to_string()),
            ("MASTER_TLS_CLIENT_CERT_MODE", "agents".to_owned()),
            ("MASTER_VIEWER_TOKEN", VIEWER.to_owned()),
            (
                "MASTER_OPERATOR_TOKEN",
                "operator-secret-0123456789".to_owned(),
            ),
        ],
        &pki.dir.0,
    );
    // The probe's view: /health without a client certificate.
    wait_healthy_tls(master_addr, &pki.ca_file, &master);
    let base = format!("https://{master_addr}");
    let bearer = format!("Bearer {VIEWER}");
    let (code, text, _) = curl(
        &format!("{base}/api/v2/clusters"),
        &pki.ca_file,
        &[("Authorization", &bearer)],
        None,
    );
    assert_eq!(code, 200, "a viewer token without a certificate: {text}");
    let heartbeat = br#"{"cluster_id":"fault-tls","timestamp":"2026-11-30T10:30:00Z"}"#;
    let json = [
        ("Content-Type", "application/json"),
        ("X-Cluster-ID", "fault-tls"),
    ];
    let beat = |client: Option<(&Path, &Path)>| {
        curl_as(
            &format!("{base}/agent/heartbeat"),
            &pki.ca_file,
            client,
            &json,
            Some(heartbeat),
        )
    };
    let (code, text, _) = beat(None);
    assert_eq!(code, 401, "an agent route without a certificate: {text}");
    assert!(text.contains("client certificate"), "{text}");
    let (code, _, err) = beat(Some((stranger_cert.as_path(), stranger_key.as_path())));
    assert_eq!(
        code, 0,
        "a certificate of another CA is refused in the handshake"
    );
    eprintln!("curl with a stranger's certificate: {}", err.trim());
    let (code, text, _) = beat(Some((agent_cert.as_path(), agent_key.as_path())));
    assert_eq!(code, 200, "the agent's certificate: {text}");
}
