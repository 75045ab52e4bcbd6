//! Fault suite, the master's limits and open mode, against the real `atlhyper-master` binary on
//! loopback: a flood of command creations gets 429 with `Retry-After` while an honest operator
//! gets none, 15 MiB of `params` gets 413, a full command queue gets 429, a foreign `Host` is
//! refused in open mode (and served with tokens), a text/plain POST gets 415, and the master
//! refuses to start open on a network address. Every loop here is bounded and loopback only.

mod common;

use std::time::{Duration, Instant};

use atlhyper_testkit::{Answer, gzip, http_answer, node_json};
use common::{RunningMaster, Scratch, bins, serial};

const AGENT_TOKEN: &str = "agent-token-limits-000";
const VIEWER: &str = "viewer-token-limits-000";
const OPERATOR: &str = "operator-token-limits-01";
const HONEST_OPERATOR: &str = "operator-token-limits-02";
const CLUSTER: &str = "limits";

type Master = RunningMaster;

/// The real master on a free loopback port; `tokens` configures every kind of token.
fn master(tokens: bool, extra: &[(&str, String)]) -> Master {
    let mut env = Vec::new();
    if tokens {
        env.extend([
            ("MASTER_AGENT_TOKENS", format!("{AGENT_TOKEN}={CLUSTER}")),
            ("MASTER_VIEWER_TOKEN", VIEWER.to_owned()),
            (
                "MASTER_OPERATOR_TOKEN",
                format!("{OPERATOR},{HONEST_OPERATOR}"),
            ),
        ]);
    }
    env.extend(extra.iter().cloned());
    RunningMaster::start("trust-limits", &env)
}

impl Master {
    fn call(
        &self,
        method: &str,
        path: &str,
        host: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Answer {
        http_answer(
            self.addr,
            method,
            path,
            Some(host),
            headers,
            body,
            Duration::from_secs(10),
        )
        .expect("the master answers")
    }

    /// A request as a well-behaved client sends it: Host is the address, JSON body.
    fn json(&self, method: &str, path: &str, token: Option<&str>, body: &[u8]) -> Answer {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(a) = &auth {
            headers.push(("Authorization", a));
        }
        self.call(method, path, &self.addr.to_string(), &headers, body)
    }

    /// One snapshot of CLUSTER with one node, as the agent pushes it.
    fn push_snapshot(&self, token: Option<&str>) {
        let now = chrono::Utc::now();
        let node = node_json("worker-1", now, 10.0);
        let snapshot = format!(
            r#"{{"cluster_id":"{CLUSTER}","timestamp":"{}","seq":1,"node_metrics":{{"worker-1":{node}}}}}"#,
            now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        );
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![
            ("Content-Type", "application/json"),
            ("Content-Encoding", "gzip"),
            ("X-Cluster-ID", CLUSTER),
        ];
        if let Some(a) = &auth {
            headers.push(("Authorization", a));
        }
        let answer = self.call(
            "POST",
            "/agent/snapshot",
            &self.addr.to_string(),
            &headers,
            &gzip(snapshot.as_bytes()),
        );
        assert_eq!(
            answer.status,
            200,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
    }

    fn create_command(&self, token: Option<&str>, params: &str) -> Answer {
        let body = format!(r#"{{"cluster_id":"{CLUSTER}","action":"ping","params":{params}}}"#);
        self.json("POST", "/api/v2/commands", token, body.as_bytes())
    }

    fn metric(&self, series: &str) -> f64 {
        let auth = format!("Bearer {VIEWER}");
        let scraped = common::scrape_with(self.addr, &[("Authorization", &auth)])
            .or_else(|| common::scrape(self.addr))
            .expect("/metrics answers");
        *scraped
            .get(series)
            .unwrap_or_else(|| panic!("{series} not on /metrics"))
    }
}

fn retry_after(answer: &Answer) -> u64 {
    answer
        .header("retry-after")
        .unwrap_or_else(|| panic!("{} without Retry-After", answer.status))
        .parse()
        .expect("Retry-After in whole seconds")
}

#[test]
fn a_command_flood_gets_429_with_retry_after_while_an_honest_operator_gets_none() {
    let _serial = serial();
    // 20 at once, then one every 500 ms; the default (600/min) works the same, only slower.
    let m = master(
        true,
        &[("MASTER_OPERATOR_WRITE_RATE_LIMIT", "20/10s".to_owned())],
    );
    m.push_snapshot(Some(AGENT_TOKEN));

    // Honest: one creation a second, well inside the budget.
    for i in 0..4 {
        let a = m.create_command(Some(HONEST_OPERATOR), "{}");
        assert_eq!(
            a.status,
            201,
            "honest #{i}: {}",
            String::from_utf8_lossy(&a.body)
        );
        std::thread::sleep(Duration::from_secs(1));
    }

    // Flood: 300 back to back (bounded; ~10,000 in 1.6 s were all accepted before).
    let started = Instant::now();
    let (mut created, mut limited) = (0u32, 0u32);
    for _ in 0..300 {
        let a = m.create_command(Some(OPERATOR), "{}");
        match a.status {
            201 => created += 1,
            429 => {
                limited += 1;
                let wait = retry_after(&a);
                assert!((1..=10).contains(&wait), "Retry-After {wait}");
                assert!(
                    a.error().contains("MASTER_OPERATOR_WRITE_RATE_LIMIT"),
                    "{}",
                    a.error()
                );
            }
            other => panic!("{other}: {}", String::from_utf8_lossy(&a.body)),
        }
    }
    let took = started.elapsed();
    // The burst, plus one every 500 ms of the flood, plus one for the rounding at the edges.
    let allowed = 20 + (took.as_millis() / 500) as u32 + 1;
    eprintln!(
        "flood of 300 creations in {took:.1?}: {created} created, {limited} refused with 429 \
         (budget allowed at most {allowed})"
    );
    assert!(created <= allowed, "{created} created, at most {allowed}");
    assert_eq!(created + limited, 300);
    assert!(limited > 0);

    // The flooder's budget is its own: the honest operator still gets through at once.
    let a = m.create_command(Some(HONEST_OPERATOR), "{}");
    assert_eq!(a.status, 201, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(
        m.metric(
            r#"atlhyper_master_too_many_requests_total{class="operator_write",reason="rate"}"#
        ),
        f64::from(limited)
    );
    m.proc.assert_no_panic();
}

#[test]
fn fifteen_mib_of_params_gets_413_and_nothing_is_queued() {
    let _serial = serial();
    let m = master(false, &[]);
    m.push_snapshot(None);
    let huge = format!(r#"{{"blob":"{}"}}"#, "x".repeat(15 << 20));
    let rss_before = m.proc.rss_kib();
    let a = m.create_command(None, &huge);
    assert_eq!(a.status, 413);
    assert!(a.error().contains("65536"), "{}", a.error());
    // Just over the cap, fully read: the reason names the setting.
    let over = format!(r#"{{"blob":"{}"}}"#, "x".repeat(64 << 10));
    let a = m.create_command(None, &over);
    assert_eq!(a.status, 413);
    assert!(
        a.error().contains("MASTER_MAX_COMMAND_PARAMS"),
        "{}",
        a.error()
    );
    let rss_after = m.proc.rss_kib();
    eprintln!("15 MiB params refused; master RSS {rss_before} -> {rss_after} KiB");
    let list = m.json("GET", "/api/v2/commands", None, b"");
    assert_eq!(list.status, 200);
    assert_eq!(list.body, b"[]", "nothing was queued");
    assert_eq!(m.create_command(None, r#"{"ok":true}"#).status, 201);
    m.proc.assert_no_panic();
}

#[test]
fn a_full_command_queue_gets_429() {
    let _serial = serial();
    // A low cap keeps this fast; the router test checks the default of 1000.
    let m = master(false, &[("MASTER_MAX_PENDING_COMMANDS", "25".to_owned())]);
    m.push_snapshot(None);
    for i in 0..25 {
        let a = m.create_command(None, "{}");
        assert_eq!(a.status, 201, "#{i}: {}", String::from_utf8_lossy(&a.body));
    }
    let a = m.create_command(None, "{}");
    assert_eq!(a.status, 429);
    assert!(retry_after(&a) >= 1);
    assert!(
        a.error().contains("25 open commands") && a.error().contains("MASTER_MAX_PENDING_COMMANDS"),
        "{}",
        a.error()
    );
    assert_eq!(
        m.metric(
            r#"atlhyper_master_too_many_requests_total{class="operator_write",reason="pending_commands"}"#
        ),
        1.0
    );
    m.proc.assert_no_panic();
}

#[test]
fn a_foreign_host_is_refused_in_open_mode_and_served_with_tokens() {
    let _serial = serial();
    let open = master(false, &[]);
    open.push_snapshot(None);
    let port = open.addr.port();
    // What a DNS-rebinding page would read: every process command line of the cluster.
    let nodes = format!("/api/v2/clusters/{CLUSTER}/node-metrics");
    for host in ["evil.example", &format!("evil.example:{port}"), "10.0.0.1"] {
        let a = open.call("GET", &nodes, host, &[], b"");
        assert_eq!(a.status, 421, "{host}");
        assert!(a.error().contains("localhost"), "{}", a.error());
        assert!(!String::from_utf8_lossy(&a.body).contains("/sbin/init"));
    }
    for host in [
        "localhost".to_owned(),
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
    ] {
        let a = open.call("GET", &nodes, &host, &[], b"");
        assert_eq!(a.status, 200, "{host}");
    }
    open.proc.assert_no_panic();
    drop(open);

    let guarded = master(true, &[]);
    guarded.push_snapshot(Some(AGENT_TOKEN));
    let auth = format!("Bearer {VIEWER}");
    let a = guarded.call(
        "GET",
        &nodes,
        "atlhyper.example.internal",
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    guarded.proc.assert_no_panic();
}

#[test]
fn a_text_plain_post_gets_415_in_open_mode() {
    let _serial = serial();
    let m = master(false, &[]);
    let host = m.addr.to_string();
    let heartbeat = br#"{"cluster_id":"from-a-form","timestamp":"2024-01-20T10:30:00Z"}"#;
    for content_type in [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
    ] {
        for path in ["/agent/heartbeat", "/api/v2/commands"] {
            let a = m.call(
                "POST",
                path,
                &host,
                &[("Content-Type", content_type)],
                heartbeat,
            );
            assert_eq!(a.status, 415, "{path} {content_type}");
            assert!(a.error().contains("application/json"), "{}", a.error());
        }
    }
    let clusters = m.json("GET", "/api/v2/clusters", None, b"");
    assert_eq!(
        clusters.body, br#"{"clusters":[],"total":0}"#,
        "no cluster was created"
    );
    let a = m.call(
        "POST",
        "/agent/heartbeat",
        &host,
        &[("Content-Type", "application/json; charset=utf-8")],
        heartbeat,
    );
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    m.proc.assert_no_panic();
}

#[test]
fn the_standalone_master_refuses_to_start_open_on_a_network_address() {
    let _serial = serial();
    let dir = Scratch::new("trust-limits-open");
    let db = dir.0.join("atlhyper.db");
    let cases: [(&str, &[(&str, &str)]); 2] = [
        ("no tokens", &[]),
        (
            "agent tokens only",
            &[("MASTER_AGENT_TOKENS", "agent-token-xxxxxxxx=c1")],
        ),
    ];
    for (what, env) in cases {
        let mut cmd = std::process::Command::new(&bins().master);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("MASTER_DB_PATH", &db)
            .args(["--listen", "0.0.0.0:0"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn atlhyper-master");
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let output = child.wait_with_output().expect("output");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let status = status.unwrap_or_else(|| {
            panic!("{what}: the master kept running instead of refusing:\n{stderr}")
        });
        assert!(!status.success(), "{what}: exit {status}");
        assert!(
            stderr.contains("0.0.0.0:0 is not a loopback address")
                && stderr.contains("MASTER_AGENT_TOKENS"),
            "{what}: {stderr}"
        );
        assert!(!db.exists(), "{what}: refused before creating the database");
    }
}
