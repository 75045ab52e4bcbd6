//! TLS of the shared accept loop, over real sockets: handshakes from reqwest and from curl,
//! certificates that must be refused (expired, unknown CA, wrong name) refused on both sides with
//! a reason, rotation of the files under load without one failed request, the handshake bounded
//! by the header timeout, and client certificates.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use atlhyper_http::serve::{ServeLimits, serve_with};
use atlhyper_http::tls::{ClientCertificate, ServerTls, TlsSettings, parse_certificates};
use atlhyper_testkit::tls::{CertPem, TestCa, Validity, write_atomically};
use axum::Router;
use axum::extract::Extension;
use axum::routing::get;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The name every test server's certificate is made for; clients resolve it to the server.
const NAME: &str = "atlhyper.test";
const BOUND: Duration = Duration::from_secs(20);

/// Log lines written while a test runs (its runtime is single-threaded, so every task logs
/// through the subscriber set for the test).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let sink = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    async fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + BOUND;
        loop {
            let text = self.text();
            if text.contains(needle) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {needle:?}:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Server {
    addr: SocketAddr,
    dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// A server with `leaf` as its certificate; `/peer` answers "ok", `/client` the cluster its
    /// client certificate names (or "none").
    async fn start(leaf: &CertPem, client_ca: Option<&TestCa>, header_timeout: Duration) -> Self {
        Self::start_with(leaf, client_ca, false, header_timeout).await
    }

    /// [`Self::start`], letting clients without a certificate through when `optional`.
    async fn start_with(
        leaf: &CertPem,
        client_ca: Option<&TestCa>,
        optional: bool,
        header_timeout: Duration,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = leaf.write(dir.path(), "tls");
        let mut settings = TlsSettings::new(cert, key);
        settings.client_ca = client_ca.map(|ca| ca.write(dir.path(), "client-ca"));
        settings.client_cert_optional = optional;
        settings.reload_interval = Duration::from_millis(50);
        let tls = ServerTls::load(settings).expect("the test certificate loads");
        let router = Router::new().route("/peer", get(|| async { "ok" })).route(
            "/client",
            get(|cert: Option<Extension<ClientCertificate>>| async move {
                match cert {
                    Some(Extension(c)) if c.names("cluster-a") => "cluster-a",
                    Some(_) => "other",
                    None => "none",
                }
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = ServeLimits {
            header_timeout,
            max_connections: 256,
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve_with(
            listener,
            router,
            limits,
            Some(tls),
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            addr,
            dir,
            stop: Some(stop),
            task: Some(task),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("https://{NAME}:{}{path}", self.addr.port())
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(BOUND, self.task.take().unwrap())
            .await
            .expect("the server stops")
            .unwrap();
    }
}

/// A reqwest client trusting only `ca`, resolving [`NAME`] to `addr`.
fn client(ca: &TestCa, addr: SocketAddr) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .tls_certs_only(reqwest::Certificate::from_pem_bundle(ca.cert_pem().as_bytes()).unwrap())
        .resolve(NAME, addr)
        .timeout(Duration::from_secs(10))
}

/// An error with its causes, as the binaries print it.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn curl_here() -> bool {
    atlhyper_testkit::real_programs_here(&["/usr/bin/curl"], "apt-get install -y curl")
}

/// `curl` against the server with `ca`; its exit status, stdout and stderr.
async fn curl(
    server: &Server,
    ca_file: &std::path::Path,
    extra: &[&str],
) -> (bool, String, String) {
    let mut cmd = tokio::process::Command::new("/usr/bin/curl");
    cmd.args(["-sS", "--max-time", "10", "--cacert"])
        .arg(ca_file)
        .arg("--resolve")
        .arg(format!("{NAME}:{}:127.0.0.1", server.addr.port()))
        .args(extra)
        .arg(server.url("/peer"));
    let out = cmd.output().await.expect("curl runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn reqwest_and_curl_complete_tls_12_and_13_handshakes() {
    let ca = TestCa::new("test CA");
    let server = Server::start(&ca.server(&[NAME], Validity::Current), None, BOUND).await;
    for max in [
        reqwest::tls::Version::TLS_1_2,
        reqwest::tls::Version::TLS_1_3,
    ] {
        let http = client(&ca, server.addr)
            .tls_version_max(max)
            .build()
            .unwrap();
        let answer = http.get(server.url("/peer")).send().await.unwrap();
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.text().await.unwrap(), "ok");
    }
    if curl_here() {
        let ca_file = ca.write(server.dir.path(), "ca");
        for version in ["--tlsv1.2", "--tlsv1.3"] {
            let (ok, out, err) = curl(&server, &ca_file, &[version]).await;
            assert!(ok, "curl {version}: {err}");
            assert_eq!(out, "ok");
        }
        // Nothing older than TLS 1.2 is spoken.
        let (ok, _, err) = curl(&server, &ca_file, &["--tlsv1.1", "--tls-max", "1.1"]).await;
        assert!(!ok, "a TLS 1.1 handshake succeeded");
        eprintln!("curl with TLS 1.1 only: {}", err.trim());
        // Plain HTTP to the TLS port is refused, not answered.
        let mut cmd = tokio::process::Command::new("/usr/bin/curl");
        let out = cmd
            .args(["-sS", "--max-time", "10"])
            .arg(format!("http://127.0.0.1:{}/peer", server.addr.port()))
            .output()
            .await
            .unwrap();
        assert_ne!(String::from_utf8_lossy(&out.stdout), "ok");
    }
    server.stop().await;
}

#[tokio::test]
async fn expired_unknown_ca_and_wrong_name_are_refused_on_both_sides_with_a_reason() {
    let logs = Logs::default();
    let _guard = logs.install();
    let ca = TestCa::new("test CA");
    let stranger = TestCa::new("someone else's CA");
    let cases = [
        (
            "expired",
            ca.server(&[NAME], Validity::Expired),
            "expired",
            "CertificateExpired",
        ),
        (
            "unknown CA",
            stranger.server(&[NAME], Validity::Current),
            "UnknownIssuer",
            "UnknownCA",
        ),
        (
            "wrong name",
            ca.server(&["other.test"], Validity::Current),
            "not valid for name",
            "BadCertificate",
        ),
    ];
    for (case, leaf, client_says, server_says) in cases {
        let server = Server::start(&leaf, None, BOUND).await;
        let http = client(&ca, server.addr).build().unwrap();
        let error = http.get(server.url("/peer")).send().await.unwrap_err();
        let error = chain(&error);
        eprintln!("{case}: the client says: {error}");
        assert!(
            error.contains(client_says)
                || error.to_lowercase().contains(&client_says.to_lowercase()),
            "{case}: the client's error does not say {client_says:?}: {error}"
        );
        let log = logs.wait_for(server_says).await;
        let line = log
            .lines()
            .rfind(|l| l.contains("TLS handshake failed"))
            .expect("a handshake failure logged");
        eprintln!("{case}: the server says: {line}");
        assert!(line.contains(server_says), "{case}: {line}");
        assert!(
            line.contains("peer=127.0.0.1:"),
            "{case}: the peer is named: {line}"
        );
        if curl_here() {
            let ca_file = ca.write(server.dir.path(), "ca");
            let (ok, _, err) = curl(&server, &ca_file, &[]).await;
            assert!(!ok, "{case}: curl accepted the certificate");
            eprintln!("{case}: curl says: {}", err.trim());
            assert!(
                err.contains("SSL certificate problem") || err.contains("certificate"),
                "{case}: {err}"
            );
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn rotated_files_serve_the_new_certificate_without_a_failed_request() {
    let logs = Logs::default();
    let _guard = logs.install();
    let ca = TestCa::new("test CA");
    let first = ca.server(&[NAME], Validity::Current);
    let server = Server::start(&first, None, BOUND).await;
    let (cert_path, key_path) = (server.file("tls.crt"), server.file("tls.key"));
    let ok = Arc::new(AtomicUsize::new(0));
    let stop = stop_flag();
    let mut load = Vec::new();
    // Two clients keep their connections, two open a new one (a new handshake) per request.
    for fresh in [false, false, true, true] {
        let mut builder = client(&ca, server.addr);
        if fresh {
            builder = builder.pool_max_idle_per_host(0);
        }
        let http = builder.build().unwrap();
        let (url, ok, stop) = (server.url("/peer"), Arc::clone(&ok), stop.clone());
        load.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match http.get(&url).send().await {
                    Ok(r) if r.status() == 200 => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) => failures.push(format!("status {}", r.status())),
                    Err(e) => failures.push(chain(&e)),
                }
            }
            failures
        }));
    }
    let mut last = first;
    for round in 0..8 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        if round == 4 {
            // A rotation caught halfway (the certificate file garbled): the previous pair stays.
            write_atomically(&cert_path, b"-----BEGIN CERTIFICATE-----\nnot base64\n");
            logs.wait_for("TLS certificate not reloaded").await;
            continue;
        }
        last = ca.server(&[NAME], Validity::Current);
        // The key first, as a careless rotation would: for a moment the pair does not match.
        write_atomically(&key_path, last.key.as_bytes());
        write_atomically(&cert_path, last.cert.as_bytes());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut failures = Vec::new();
    for task in load {
        failures.extend(task.await.unwrap());
    }
    let served = ok.load(Ordering::Relaxed);
    eprintln!(
        "{served} requests during 7 rotations and a garbled one; {} failed",
        failures.len()
    );
    assert!(failures.is_empty(), "failed during rotation: {failures:?}");
    assert!(served >= 50, "the load ran ({served} requests)");
    assert!(
        logs.text().matches("TLS certificate reloaded").count() >= 3,
        "{}",
        logs.text()
    );

    // A new connection gets the last certificate written.
    let http = client(&ca, server.addr).tls_info(true).build().unwrap();
    let answer = http.get(server.url("/peer")).send().await.unwrap();
    let seen = answer
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .expect("the peer certificate")
        .to_vec();
    let want = parse_certificates(&cert_path, last.cert.as_bytes()).unwrap();
    assert_eq!(
        seen,
        want[0].as_ref(),
        "the server still shows an old certificate"
    );
    server.stop().await;
}

fn stop_flag() -> Arc<std::sync::atomic::AtomicBool> {
    Arc::new(std::sync::atomic::AtomicBool::new(false))
}

/// Reads until the server closes; how long that took.
async fn closed_within(stream: &mut TcpStream) -> Duration {
    let started = Instant::now();
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(BOUND, stream.read_to_end(&mut sink))
        .await
        .expect("the server closes the connection");
    started.elapsed()
}

#[tokio::test]
async fn a_stalled_handshake_is_cut_at_the_header_timeout() {
    let ca = TestCa::new("test CA");
    let timeout = Duration::from_millis(400);
    let server = Server::start(&ca.server(&[NAME], Validity::Current), None, timeout).await;
    // Silent after connecting.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    // The first bytes of a TLS record, and nothing more.
    let mut partial = TcpStream::connect(server.addr).await.unwrap();
    partial
        .write_all(&[0x16, 0x03, 0x01, 0x01, 0x00, 0x01])
        .await
        .unwrap();
    let started = Instant::now();
    for stream in [&mut silent, &mut partial] {
        closed_within(stream).await;
    }
    let took = started.elapsed();
    assert!(
        took >= timeout - Duration::from_millis(50),
        "closed before the timeout ({took:?})"
    );
    // After a complete handshake, half-sent headers end at the header timeout as in plain HTTP.
    let mut roots = rustls::RootCertStore::empty();
    for cert in parse_certificates(std::path::Path::new("ca"), ca.cert_pem().as_bytes()).unwrap() {
        roots.add(cert).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(atlhyper_http::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let started = Instant::now();
    let mut tls = connector
        .connect(rustls::pki_types::ServerName::try_from(NAME).unwrap(), tcp)
        .await
        .expect("handshake");
    tls.write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\nX-Slow: a")
        .await
        .unwrap();
    let mut sink = Vec::new();
    let read = tokio::time::timeout(BOUND, tls.read_to_end(&mut sink)).await;
    assert!(
        read.is_ok(),
        "the server closes the dribbling TLS connection"
    );
    assert!(
        sink.is_empty() || !String::from_utf8_lossy(&sink).contains("200"),
        "answered"
    );
    assert!(started.elapsed() >= timeout - Duration::from_millis(50));
    server.stop().await;
}

#[tokio::test]
async fn client_certificates_are_required_and_name_the_cluster() {
    let logs = Logs::default();
    let _guard = logs.install();
    let ca = TestCa::new("server CA");
    let agents = TestCa::new("agent CA");
    let server = Server::start(&ca.server(&[NAME], Validity::Current), Some(&agents), BOUND).await;

    // Without a certificate: refused, with a reason on both sides.
    let http = client(&ca, server.addr).build().unwrap();
    let error = chain(&http.get(server.url("/client")).send().await.unwrap_err());
    eprintln!("no client certificate: the client says: {error}");
    let log = logs.wait_for("TLS handshake failed").await;
    assert!(
        log.contains("NoCertificatesPresented") || log.contains("no certificates"),
        "{log}"
    );

    // A certificate of another CA: refused.
    let stranger = TestCa::new("stranger").client(&["cluster-a"], Validity::Current);
    let pem = format!("{}\n{}", stranger.cert, stranger.key);
    let http = client(&ca, server.addr)
        .identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    assert!(http.get(server.url("/client")).send().await.is_err());

    // The agent CA's certificate for cluster-a: served, and the handler sees the name.
    for (names, want) in [
        (&["cluster-a"][..], "cluster-a"),
        (&["cluster-b"][..], "other"),
    ] {
        let leaf = agents.client(names, Validity::Current);
        let pem = format!("{}\n{}", leaf.cert, leaf.key);
        let http = client(&ca, server.addr)
            .identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap())
            .build()
            .unwrap();
        let answer = http.get(server.url("/client")).send().await.unwrap();
        assert_eq!(answer.text().await.unwrap(), want);
    }
    server.stop().await;
}

/// Polls `check` until it holds; fails naming `what` after [`BOUND`].
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + BOUND;
    while !check().await {
        assert!(Instant::now() < deadline, "not within {BOUND:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_rotated_client_ca_applies_from_the_next_handshake() {
    let logs = Logs::default();
    let _guard = logs.install();
    let ca = TestCa::new("server CA");
    let old_agents = TestCa::new("agent CA 2026");
    let new_agents = TestCa::new("agent CA 2027");
    let server = Server::start(
        &ca.server(&[NAME], Validity::Current),
        Some(&old_agents),
        BOUND,
    )
    .await;
    // A fresh connection (a new handshake) per request, with the client certificate of `issuer`.
    let with_cert_of = |issuer: &TestCa| {
        let leaf = issuer.client(&["cluster-a"], Validity::Current);
        let pem = format!("{}\n{}", leaf.cert, leaf.key);
        client(&ca, server.addr)
            .identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap())
            .pool_max_idle_per_host(0)
            .build()
            .unwrap()
    };
    let (old, new) = (with_cert_of(&old_agents), with_cert_of(&new_agents));
    let url = server.url("/client");
    assert_eq!(
        old.get(&url).send().await.unwrap().text().await.unwrap(),
        "cluster-a"
    );
    assert!(
        new.get(&url).send().await.is_err(),
        "an unknown CA before the rotation"
    );

    // The rotation: both CAs while agents move over, then the new one alone.
    let path = server.file("client-ca.crt");
    let both = format!("{}\n{}", old_agents.cert_pem(), new_agents.cert_pem());
    write_atomically(&path, both.as_bytes());
    eventually("the new CA is taken without a restart", || async {
        new.get(&url).send().await.is_ok()
    })
    .await;
    assert!(old.get(&url).send().await.is_ok(), "both CAs at once");
    // A garbled bundle changes nothing.
    write_atomically(&path, b"-----BEGIN CERTIFICATE-----\nnot base64\n");
    logs.wait_for("TLS certificate not reloaded").await;
    assert!(
        old.get(&url).send().await.is_ok(),
        "the bundle in force stays"
    );
    write_atomically(&path, new_agents.cert_pem().as_bytes());
    eventually("the old CA is refused once the bundle drops it", || async {
        old.get(&url).send().await.is_err()
    })
    .await;
    assert_eq!(
        new.get(&url).send().await.unwrap().text().await.unwrap(),
        "cluster-a"
    );
    server.stop().await;
}

#[tokio::test]
async fn optional_client_certificates_let_clients_without_one_through() {
    let ca = TestCa::new("server CA");
    let agents = TestCa::new("agent CA");
    let server = Server::start_with(
        &ca.server(&[NAME], Validity::Current),
        Some(&agents),
        true,
        BOUND,
    )
    .await;
    let url = server.url("/client");
    // Without a certificate: through, and the application sees none (it decides).
    let plain = client(&ca, server.addr).build().unwrap();
    assert_eq!(
        plain.get(&url).send().await.unwrap().text().await.unwrap(),
        "none"
    );
    // One that is presented must still verify.
    let with = |leaf: CertPem| {
        let pem = format!("{}\n{}", leaf.cert, leaf.key);
        client(&ca, server.addr)
            .identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap())
            .build()
            .unwrap()
    };
    let stranger = with(TestCa::new("stranger").client(&["cluster-a"], Validity::Current));
    assert!(stranger.get(&url).send().await.is_err(), "an unknown CA");
    let expired = with(agents.client(&["cluster-a"], Validity::Expired));
    assert!(expired.get(&url).send().await.is_err(), "an expired one");
    let agent = with(agents.client(&["cluster-a"], Validity::Current));
    assert_eq!(
        agent.get(&url).send().await.unwrap().text().await.unwrap(),
        "cluster-a"
    );
    server.stop().await;
}
