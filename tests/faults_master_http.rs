//! Fault suite, master's HTTP surface, against the real `atlhyper-master` binary on loopback:
//! a missing or wrong token gets 401 on every route (the table is checked against the router's
//! route list, so a new route without an entry here fails), malformed JSON and wrong types get
//! 400, oversize bodies and a gzip bomb get 413 with bounded memory, and 500 slowloris
//! connections do not delay a normal snapshot push and are closed at the header timeout.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use atlhyper_testkit::{gzip, http, node_json};
use common::{RunningMaster, root, serial};

const AGENT_TOKEN: &str = "agent-token-aaaaaaaaaaaa";
const OTHER_AGENT_TOKEN: &str = "agent-token-bbbbbbbbbbbb";
const VIEWER: &str = "viewer-token-cccccccccccc";
const OPERATOR: &str = "operator-token-dddddddddd";
const CLUSTER: &str = "cluster-a";

type Master = RunningMaster;

fn master(extra: &[(&str, String)]) -> Master {
    let mut env = vec![
        (
            "MASTER_AGENT_TOKENS",
            format!("{AGENT_TOKEN}={CLUSTER},{OTHER_AGENT_TOKEN}=cluster-b"),
        ),
        ("MASTER_VIEWER_TOKEN", VIEWER.to_owned()),
        ("MASTER_OPERATOR_TOKEN", OPERATOR.to_owned()),
        ("MASTER_LONG_POLL_TIMEOUT", "1s".to_owned()),
        ("MASTER_DETAIL_TIMEOUT", "1s".to_owned()),
    ];
    env.extend(extra.iter().cloned());
    RunningMaster::start("master-http", &env)
}

fn snapshot_json(seq: u64) -> String {
    let now = chrono::Utc::now();
    let node = node_json("worker-1", now, 10.0);
    format!(
        r#"{{"cluster_id":"{CLUSTER}","timestamp":"{}","seq":{seq},"node_metrics":{{"worker-1":{node}}}}}"#,
        now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    )
}

fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<&str>,
    extra: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let auth = auth.map(|a| a.to_owned());
    let mut h: Vec<(&str, &str)> = vec![("Content-Type", "application/json")];
    if let Some(a) = &auth {
        h.push(("Authorization", a));
    }
    h.extend_from_slice(extra);
    let (code, body) =
        http(addr, method, path, &h, body, Duration::from_secs(10)).expect("master answers");
    (code, String::from_utf8_lossy(&body).into_owned())
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    Agent,
    Viewer,
    Operator,
    Public,
}

struct Route {
    /// Route pattern as written in the router (`{id}` placeholders).
    pattern: &'static str,
    method: &'static str,
    /// A concrete path to call.
    path: String,
    role: Role,
    body: Vec<u8>,
    gzip: bool,
}

fn routes() -> Vec<Route> {
    let snap = gzip(snapshot_json(1).as_bytes());
    let heartbeat = format!(r#"{{"cluster_id":"{CLUSTER}","timestamp":"2024-01-20T10:30:00Z"}}"#);
    let result = format!(
        r#"{{"cluster_id":"{CLUSTER}","command_id":"does-not-exist","success":true,"output":"","error":"","exec_time_ms":1}}"#
    );
    let create = format!(
        r#"{{"cluster_id":"{CLUSTER}","action":"ping","target_kind":"","target_namespace":"","target_name":"","params":{{}}}}"#
    );
    let r = |pattern: &'static str, method: &'static str, path: &str, role: Role| Route {
        pattern,
        method,
        path: path.to_owned(),
        role,
        body: Vec::new(),
        gzip: false,
    };
    vec![
        Route {
            body: snap,
            gzip: true,
            ..r("/agent/snapshot", "POST", "/agent/snapshot", Role::Agent)
        },
        Route {
            body: heartbeat.into_bytes(),
            ..r("/agent/heartbeat", "POST", "/agent/heartbeat", Role::Agent)
        },
        r(
            "/agent/commands",
            "GET",
            &format!("/agent/commands?cluster_id={CLUSTER}&topic=metrics"),
            Role::Agent,
        ),
        Route {
            body: result.into_bytes(),
            ..r("/agent/result", "POST", "/agent/result", Role::Agent)
        },
        r("/health", "GET", "/health", Role::Public),
        r("/metrics", "GET", "/metrics", Role::Viewer),
        r("/api/v2/clusters", "GET", "/api/v2/clusters", Role::Viewer),
        r("/api/v2/agents", "GET", "/api/v2/agents", Role::Viewer),
        r(
            "/api/v2/auth/whoami",
            "GET",
            "/api/v2/auth/whoami",
            Role::Viewer,
        ),
        r(
            "/api/v2/clusters/{id}/node-metrics",
            "GET",
            &format!("/api/v2/clusters/{CLUSTER}/node-metrics"),
            Role::Viewer,
        ),
        r(
            "/api/v2/clusters/{id}/node-metrics/{node}",
            "GET",
            &format!("/api/v2/clusters/{CLUSTER}/node-metrics/worker-1"),
            Role::Viewer,
        ),
        r(
            "/api/v2/clusters/{id}/node-metrics/{node}/history",
            "GET",
            &format!("/api/v2/clusters/{CLUSTER}/node-metrics/worker-1/history?hours=1"),
            Role::Viewer,
        ),
        r(
            "/api/v2/clusters/{id}/node-metrics/{node}/series",
            "GET",
            &format!("/api/v2/clusters/{CLUSTER}/node-metrics/worker-1/series?figure=cpu.usage"),
            Role::Viewer,
        ),
        r(
            "/api/v2/clusters/{id}/series",
            "GET",
            &format!("/api/v2/clusters/{CLUSTER}/series?figure=cpu.usage"),
            Role::Viewer,
        ),
        r("/api/v2/fleet", "GET", "/api/v2/fleet", Role::Viewer),
        r(
            "/api/v2/node-metrics/{node}/history",
            "GET",
            &format!("/api/v2/node-metrics/worker-1/history?cluster_id={CLUSTER}&hours=1"),
            Role::Viewer,
        ),
        r(
            "/api/v2/observe/metrics/summary",
            "GET",
            &format!("/api/v2/observe/metrics/summary?cluster_id={CLUSTER}"),
            Role::Viewer,
        ),
        r(
            "/api/v2/observe/metrics/nodes",
            "GET",
            &format!("/api/v2/observe/metrics/nodes?cluster_id={CLUSTER}"),
            Role::Viewer,
        ),
        r(
            "/api/v2/observe/metrics/nodes/{name}",
            "GET",
            &format!("/api/v2/observe/metrics/nodes/worker-1?cluster_id={CLUSTER}"),
            Role::Viewer,
        ),
        r(
            "/api/v2/observe/metrics/nodes/{name}/series",
            "GET",
            &format!(
                "/api/v2/observe/metrics/nodes/worker-1/series?cluster_id={CLUSTER}&metric=cpu"
            ),
            Role::Viewer,
        ),
        Route {
            body: create.into_bytes(),
            ..r(
                "/api/v2/commands",
                "POST",
                "/api/v2/commands",
                Role::Operator,
            )
        },
        r("/api/v2/commands", "GET", "/api/v2/commands", Role::Viewer),
        r(
            "/api/v2/commands/{id}",
            "GET",
            "/api/v2/commands/does-not-exist",
            Role::Viewer,
        ),
        // A read for operators only: a viewer token gets 403.
        r("/api/v2/audit", "GET", "/api/v2/audit", Role::Operator),
        // Operator deletes, aimed at what does not exist (the right token gets 404).
        r(
            "/api/v2/clusters/{id}/nodes/{node}",
            "DELETE",
            &format!("/api/v2/clusters/{CLUSTER}/nodes/no-such-node"),
            Role::Operator,
        ),
        r(
            "/api/v2/clusters/{id}",
            "DELETE",
            "/api/v2/clusters/no-such-cluster",
            Role::Operator,
        ),
        // Alerting (routes merged from the alerting modules): reads for viewers, writes for
        // operators; the writes carry bodies the handler refuses, so nothing changes.
        r("/api/v2/alerts", "GET", "/api/v2/alerts", Role::Viewer),
        r(
            "/api/v2/alerts/history",
            "GET",
            "/api/v2/alerts/history",
            Role::Viewer,
        ),
        r(
            "/api/v2/alert-rules",
            "GET",
            "/api/v2/alert-rules",
            Role::Viewer,
        ),
        Route {
            body: b"{}".to_vec(),
            ..r(
                "/api/v2/alert-rules",
                "POST",
                "/api/v2/alert-rules",
                Role::Operator,
            )
        },
        r(
            "/api/v2/alert-rules/{name}",
            "GET",
            "/api/v2/alert-rules/HighCpu",
            Role::Viewer,
        ),
        Route {
            body: b"{}".to_vec(),
            ..r(
                "/api/v2/alert-rules/{name}",
                "PUT",
                "/api/v2/alert-rules/HighCpu",
                Role::Operator,
            )
        },
        r(
            "/api/v2/alert-rules/{name}",
            "DELETE",
            "/api/v2/alert-rules/no-such-rule",
            Role::Operator,
        ),
        r("/api/v2/silences", "GET", "/api/v2/silences", Role::Viewer),
        Route {
            body: b"{}".to_vec(),
            ..r(
                "/api/v2/silences",
                "POST",
                "/api/v2/silences",
                Role::Operator,
            )
        },
        r(
            "/api/v2/silences/{id}",
            "GET",
            "/api/v2/silences/no-such-silence",
            Role::Viewer,
        ),
        r(
            "/api/v2/silences/{id}",
            "DELETE",
            "/api/v2/silences/no-such-silence",
            Role::Operator,
        ),
        r(
            "/api/v2/notifications",
            "GET",
            "/api/v2/notifications",
            Role::Viewer,
        ),
    ]
}

/// The route patterns the master's router registers (read from its source: the route groups
/// assembled in routes/mod.rs and the alerting routes merged into them).
fn router_patterns() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for file in [
        "atlhyper-master/src/routes/mod.rs",
        "atlhyper-master/src/alerting/api.rs",
        "atlhyper-master/src/alerting/notify/api.rs",
    ] {
        let src = std::fs::read_to_string(root().join(file)).expect(file);
        route_patterns_in(&src, &mut out);
    }
    out
}

/// Adds the first string literal after every `.route(` of `src` to `out`.
fn route_patterns_in(src: &str, out: &mut BTreeSet<String>) {
    let mut rest = src;
    while let Some(i) = rest.find(".route(") {
        rest = &rest[i + ".route(".len()..];
        let Some(start) = rest.find('"') else { break };
        let after = &rest[start + 1..];
        let Some(end) = after.find('"') else { break };
        out.insert(after[..end].to_owned());
        rest = &after[end..];
    }
}

#[test]
fn missing_or_wrong_token_gets_401_on_every_route() {
    let _serial = serial();
    let m = master(&[]);
    let table = routes();
    let covered: BTreeSet<String> = table.iter().map(|r| r.pattern.to_owned()).collect();
    let registered = router_patterns();
    assert!(
        registered.len() >= 17,
        "found the router's routes: {registered:?}"
    );
    let missing: Vec<&String> = registered.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "routes without an entry in the auth table: {missing:?}"
    );

    let wrong_tokens: [(&str, Option<String>); 6] = [
        ("no Authorization header", None),
        (
            "unknown bearer token",
            Some("Bearer not-a-token".to_owned()),
        ),
        ("empty bearer token", Some("Bearer ".to_owned())),
        ("Basic scheme", Some(format!("Basic {VIEWER}"))),
        ("token without scheme", Some(VIEWER.to_owned())),
        (
            "prefix of a real token",
            Some(format!("Bearer {}", &OPERATOR[..OPERATOR.len() - 1])),
        ),
    ];
    let mut failures = Vec::new();
    let mut checked = 0;
    for route in &table {
        let gz: Vec<(&str, &str)> = if route.gzip {
            vec![("Content-Encoding", "gzip"), ("X-Cluster-ID", CLUSTER)]
        } else {
            vec![("X-Cluster-ID", CLUSTER)]
        };
        let right = match route.role {
            Role::Agent => Some(AGENT_TOKEN),
            Role::Viewer => Some(VIEWER),
            Role::Operator => Some(OPERATOR),
            Role::Public => None,
        };
        if route.role != Role::Public {
            for (what, auth) in &wrong_tokens {
                let (code, body) = call(
                    m.addr,
                    route.method,
                    &route.path,
                    auth.as_deref(),
                    &gz,
                    &route.body,
                );
                checked += 1;
                if code != 401 {
                    failures.push(format!(
                        "{} {} with {what}: want 401, got {code} {body}",
                        route.method, route.path
                    ));
                } else if !body.contains("\"error\"") {
                    failures.push(format!("{} {}: 401 body {body}", route.method, route.path));
                }
            }
            // A valid token of another role is refused too (401 or 403, never served).
            let other = match route.role {
                Role::Agent => VIEWER,
                _ => AGENT_TOKEN,
            };
            let (code, body) = call(
                m.addr,
                route.method,
                &route.path,
                Some(&format!("Bearer {other}")),
                &gz,
                &route.body,
            );
            checked += 1;
            if code != 401 && code != 403 {
                failures.push(format!(
                    "{} {} with another role's token: want 401/403, got {code} {body}",
                    route.method, route.path
                ));
            }
        }
        // The right token is let through (whatever the handler then says, it is not 401/403).
        let (code, body) = call(
            m.addr,
            route.method,
            &route.path,
            right.map(|t| format!("Bearer {t}")).as_deref(),
            &gz,
            &route.body,
        );
        if code == 401 || code == 403 {
            failures.push(format!(
                "{} {} with the right token: got {code} {body}",
                route.method, route.path
            ));
        }
    }
    // A viewer may not create commands.
    let create = table
        .iter()
        .find(|r| r.role == Role::Operator)
        .expect("create route");
    let (code, _) = call(
        m.addr,
        "POST",
        &create.path,
        Some(&format!("Bearer {VIEWER}")),
        &[],
        &create.body,
    );
    if code != 401 && code != 403 {
        failures.push(format!("viewer creating a command: got {code}"));
    }
    // An agent may not speak for another cluster.
    let (code, _) = call(
        m.addr,
        "POST",
        "/agent/snapshot",
        Some(&format!("Bearer {OTHER_AGENT_TOKEN}")),
        &[("Content-Encoding", "gzip"), ("X-Cluster-ID", CLUSTER)],
        &gzip(snapshot_json(2).as_bytes()),
    );
    if code != 401 && code != 403 {
        failures.push(format!(
            "agent of cluster-b posting as {CLUSTER}: got {code}"
        ));
    }
    eprintln!(
        "master auth table: {} routes, {checked} refused calls checked",
        table.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    m.proc.assert_no_panic();
}

/// (what, method, path, authorization, headers, body)
type BadCase<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a [(&'a str, &'a str)],
    Vec<u8>,
);

#[test]
fn malformed_json_and_wrong_types_get_400() {
    let _serial = serial();
    let m = master(&[]);
    let agent = format!("Bearer {AGENT_TOKEN}");
    let op = format!("Bearer {OPERATOR}");
    let viewer = format!("Bearer {VIEWER}");
    let gz = [("Content-Encoding", "gzip"), ("X-Cluster-ID", CLUSTER)];
    let plain = [("X-Cluster-ID", CLUSTER)];
    let cases: Vec<BadCase<'_>> = vec![
        (
            "snapshot: truncated JSON",
            "POST",
            "/agent/snapshot",
            &agent,
            &gz,
            gzip(b"{\"cluster_id\":"),
        ),
        (
            "snapshot: not JSON",
            "POST",
            "/agent/snapshot",
            &agent,
            &gz,
            gzip(b"hello"),
        ),
        (
            "snapshot: node_metrics a number",
            "POST",
            "/agent/snapshot",
            &agent,
            &gz,
            gzip(br#"{"node_metrics":5}"#),
        ),
        (
            "snapshot: seq a string",
            "POST",
            "/agent/snapshot",
            &agent,
            &gz,
            gzip(br#"{"seq":"seven"}"#),
        ),
        (
            "snapshot: bad timestamp",
            "POST",
            "/agent/snapshot",
            &agent,
            &gz,
            gzip(br#"{"timestamp":"yesterday"}"#),
        ),
        (
            "snapshot: gzip header, not gzip",
            "POST",
            "/agent/snapshot",
            &agent,
            &gz,
            b"{}".to_vec(),
        ),
        (
            "snapshot: truncated gzip",
            "POST",
            "/agent/snapshot",
            &agent,
            &gz,
            {
                let z = gzip(snapshot_json(3).as_bytes());
                z[..z.len() / 2].to_vec()
            },
        ),
        (
            "heartbeat: not JSON",
            "POST",
            "/agent/heartbeat",
            &agent,
            &plain,
            b"}{".to_vec(),
        ),
        (
            "heartbeat: timestamp a number",
            "POST",
            "/agent/heartbeat",
            &agent,
            &plain,
            br#"{"cluster_id":"cluster-a","timestamp":5}"#.to_vec(),
        ),
        (
            "result: success a string",
            "POST",
            "/agent/result",
            &agent,
            &plain,
            br#"{"command_id":"x","success":"yes"}"#.to_vec(),
        ),
        (
            "result: exec_time_ms negative",
            "POST",
            "/agent/result",
            &agent,
            &plain,
            br#"{"command_id":"x","success":true,"exec_time_ms":-1}"#.to_vec(),
        ),
        (
            "create command: not JSON",
            "POST",
            "/api/v2/commands",
            &op,
            &[],
            b"[".to_vec(),
        ),
        (
            "create command: params a list",
            "POST",
            "/api/v2/commands",
            &op,
            &[],
            br#"{"cluster_id":"cluster-a","action":"ping","params":[1]}"#.to_vec(),
        ),
        (
            "create command: timeout a string",
            "POST",
            "/api/v2/commands",
            &op,
            &[],
            br#"{"cluster_id":"cluster-a","action":"ping","timeout_secs":"soon"}"#.to_vec(),
        ),
        (
            "history: hours=abc",
            "GET",
            "/api/v2/clusters/cluster-a/node-metrics/worker-1/history?hours=abc",
            &viewer,
            &[],
            Vec::new(),
        ),
        (
            "history: hours=100000",
            "GET",
            "/api/v2/clusters/cluster-a/node-metrics/worker-1/history?hours=100000",
            &viewer,
            &[],
            Vec::new(),
        ),
        (
            "history: hours=0",
            "GET",
            "/api/v2/clusters/cluster-a/node-metrics/worker-1/history?hours=0",
            &viewer,
            &[],
            Vec::new(),
        ),
    ];
    // Something stored first, so 400s are not 404s for an unknown cluster.
    let (code, body) = call(
        m.addr,
        "POST",
        "/agent/snapshot",
        Some(&agent),
        &gz,
        &gzip(snapshot_json(1).as_bytes()),
    );
    assert_eq!(code, 200, "{body}");
    let mut failures = Vec::new();
    for (what, method, path, auth, headers, body) in &cases {
        let (code, text) = call(m.addr, method, path, Some(auth), headers, body);
        if code != 400 {
            failures.push(format!("{what}: want 400, got {code} {text}"));
        } else if !text.contains("\"error\"") {
            failures.push(format!("{what}: 400 without an error body: {text}"));
        }
    }
    eprintln!("master 400 table: {} cases", cases.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The stored snapshot is intact after all that.
    let (code, body) = call(
        m.addr,
        "GET",
        "/api/v2/clusters/cluster-a/node-metrics/worker-1",
        Some(&viewer),
        &[],
        b"",
    );
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"worker-1\""), "{body}");
    m.proc.assert_no_panic();
}

#[test]
fn gzip_bomb_and_oversize_bodies_get_413_with_bounded_memory() {
    let _serial = serial();
    // Limits lowered (as an operator may) so the bombs are cheap to build in a debug test.
    let m = master(&[
        ("MASTER_SNAPSHOT_BODY_LIMIT", (1 << 20).to_string()),
        ("MASTER_SNAPSHOT_DECOMPRESSED_LIMIT", (8 << 20).to_string()),
    ]);
    let agent = format!("Bearer {AGENT_TOKEN}");
    let gz = [("Content-Encoding", "gzip"), ("X-Cluster-ID", CLUSTER)];
    for seq in 1..=10 {
        let (code, body) = call(
            m.addr,
            "POST",
            "/agent/snapshot",
            Some(&agent),
            &gz,
            &gzip(snapshot_json(seq).as_bytes()),
        );
        assert_eq!(code, 200, "{body}");
    }
    let rss_before = m.proc.rss_kib();
    // 32 MiB of zeros in ~32 KiB: passes the wire limit, trips the decompressed one.
    let bomb = {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..32 {
            enc.write_all(&zeros).expect("compress");
        }
        enc.finish().expect("finish")
    };
    let oversize = vec![b' '; 2 << 20];
    let result_oversize = vec![b' '; 17 << 20]; // over the 16 MiB JSON body limit
    let started = Instant::now();
    let mut handles = Vec::new();
    for i in 0..8 {
        let addr = m.addr;
        let agent = agent.clone();
        let (path, headers, body): (&str, Vec<(&str, &str)>, Vec<u8>) = match i % 4 {
            0 | 1 => ("/agent/snapshot", gz.to_vec(), bomb.clone()),
            2 => (
                "/agent/snapshot",
                vec![("X-Cluster-ID", CLUSTER)],
                oversize.clone(),
            ),
            _ => (
                "/agent/result",
                vec![("X-Cluster-ID", CLUSTER)],
                result_oversize.clone(),
            ),
        };
        handles.push(std::thread::spawn(move || {
            (
                path,
                call(addr, "POST", path, Some(&agent), &headers, &body),
            )
        }));
    }
    let mut peak = rss_before;
    while handles.iter().any(|h| !h.is_finished()) {
        peak = peak.max(m.proc.rss_kib());
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut failures = Vec::new();
    for h in handles {
        let (path, (code, body)) = h.join().expect("client");
        if code != 413 {
            failures.push(format!("{path}: want 413, got {code} {body}"));
        }
    }
    let rss_after = m.proc.rss_kib();
    peak = peak.max(rss_after);
    eprintln!(
        "master 413s: 4 gzip bombs (32 MiB in {} KiB), 2 x 2 MiB snapshots, 2 x 17 MiB results in \
         {:?}; RSS before {rss_before} KiB, peak {peak} KiB, after {rss_after} KiB",
        bomb.len() / 1024,
        started.elapsed()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Each bomb may be inflated up to the 8 MiB limit and each result body buffered up to
    // 16 MiB before the 413: bounded by the limits, not by what the sender claims.
    assert!(
        peak.saturating_sub(rss_before) < 96 * 1024,
        "memory bounded by the limits: {rss_before} -> peak {peak} KiB"
    );
    let (code, body) = call(
        m.addr,
        "POST",
        "/agent/snapshot",
        Some(&agent),
        &gz,
        &gzip(snapshot_json(100).as_bytes()),
    );
    assert_eq!(code, 200, "still ingesting: {body}");
    m.proc.assert_no_panic();
}

#[test]
fn slowloris_does_not_delay_a_normal_snapshot_push() {
    let _serial = serial();
    let m = master(&[("MASTER_HEADER_TIMEOUT", "3s".to_owned())]);
    let agent = format!("Bearer {AGENT_TOKEN}");
    let gz = [("Content-Encoding", "gzip"), ("X-Cluster-ID", CLUSTER)];
    let mut seq = 1;
    let mut push = || {
        seq += 1;
        let t = Instant::now();
        let (code, body) = call(
            m.addr,
            "POST",
            "/agent/snapshot",
            Some(&agent),
            &gz,
            &gzip(snapshot_json(seq).as_bytes()),
        );
        assert_eq!(code, 200, "{body}");
        t.elapsed()
    };
    common::pushes_under_slowloris(
        "master",
        &m.proc,
        m.addr,
        "/agent/snapshot",
        Duration::from_secs(3),
        Duration::from_millis(100),
        &mut push,
    );
}

/// A master whose output is a file (as under systemd or Kubernetes) writes its log without
/// terminal colour codes.
#[test]
fn log_to_a_file_has_no_colour_codes() {
    let _serial = serial();
    let m = master(&[("RUST_LOG", "info".to_owned())]);
    let log = m.proc.log_text();
    assert!(log.contains("listening"), "{log}");
    assert!(!log.contains('\u{1b}'), "colour codes in the log: {log:?}");
}

/// The agent's side of the hostile-read test: snapshot `k` at `base + k` s (one history point
/// each at a 1 s history interval) every 50 ms until `stop`, or 400 snapshots (so the history
/// answer is never downsampled); the acknowledged ones, and what went wrong with the others.
fn push_until(
    addr: SocketAddr,
    base: chrono::DateTime<chrono::Utc>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<(Vec<u64>, Vec<String>)> {
    std::thread::spawn(move || {
        let agent = format!("Bearer {AGENT_TOKEN}");
        let headers = [
            ("Content-Encoding", "gzip"),
            ("X-Cluster-ID", CLUSTER),
            ("Authorization", agent.as_str()),
        ];
        let (mut acked, mut failed) = (Vec::new(), Vec::new());
        for k in 1..=400u64 {
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            let timeout = Duration::from_secs(10);
            match http(
                addr,
                "POST",
                "/agent/snapshot",
                &headers,
                &common::numbered_snapshot(CLUSTER, "worker-1", k, base),
                timeout,
            ) {
                Ok((200, _)) => acked.push(k),
                Ok((code, body)) => failed.push(format!(
                    "push {k}: {code} {}",
                    String::from_utf8_lossy(&body)
                )),
                Err(e) => failed.push(format!("push {k}: {e}")),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        (acked, failed)
    })
}

/// Hostile readers of the history (`from`/`to`) and series routes, while an agent pushes: bad
/// times (negative, not a number, from after to, past the year 9999, past i64) get a 400 that
/// names the parameter; a 100,000-item query string gets 431; a 100,000-item JSON body on
/// these GET routes is not read (the answer is the one without it); a flood of 8 readers
/// mixing all of these gets only 200, 400, 431 or a 503 with Retry-After (the history route's
/// bounded slots). Afterwards the master answers, never panicked, and every acknowledged
/// snapshot is in the history, the latest the last one.
#[test]
fn hostile_history_and_series_readers_get_4xx_and_lose_no_point() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let _serial = serial();
    let m = master(&[("MASTER_HISTORY_INTERVAL", "1s".to_owned())]);
    let base = chrono::Utc::now() - chrono::Duration::minutes(10);
    let stop = Arc::new(AtomicBool::new(false));
    let pusher = push_until(m.addr, base, stop.clone());
    let viewer = format!("Bearer {VIEWER}");
    let history = format!("/api/v2/clusters/{CLUSTER}/node-metrics/worker-1/history");
    let series =
        format!("/api/v2/clusters/{CLUSTER}/node-metrics/worker-1/series?figure=cpu.usage");
    let get = |path: &str, body: &[u8]| {
        atlhyper_testkit::http_answer(
            m.addr,
            "GET",
            path,
            Some("localhost"),
            &[
                ("Authorization", &viewer),
                ("Content-Type", "application/json"),
            ],
            body,
            Duration::from_secs(30),
        )
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    };
    assert!(
        atlhyper_testkit::wait_until(Duration::from_secs(30), || {
            get(&format!("{history}?hours=1"), b"").status == 200
        })
        .is_some(),
        "the node's history never appeared"
    );

    // Bad times: (query, the parameter the error must name).
    let (from_ok, to_ok) = (
        base.timestamp_millis(),
        chrono::Utc::now().timestamp_millis(),
    );
    let bad: Vec<(String, &str)> = vec![
        (format!("from=-1000&to={to_ok}"), "from"),
        (format!("from={from_ok}&to=-1"), "to"),
        (format!("from=NaN&to={to_ok}"), "from"),
        (format!("from={from_ok}&to=nan"), "to"),
        (format!("from={to_ok}&to={from_ok}"), "from"),
        // Far future: year 255479, and the first millisecond after 9999.
        (
            "from=8000000000000000&to=8000000003600000".to_owned(),
            "from",
        ),
        (format!("from={from_ok}&to=253402300800000"), "to"),
        (format!("from={from_ok}&to=9223372036854775807"), "to"),
        (format!("from={from_ok}&to=99999999999999999999"), "to"),
        ("from=-9223372036854775808&to=0".to_owned(), "from"),
        (format!("from={from_ok}&to=1e3"), "to"),
    ];
    let mut failures = Vec::new();
    for (query, names) in &bad {
        for path in [
            format!("{history}?{query}"),
            format!("{series}&{query}&step=60"),
        ] {
            let answer = get(&path, b"");
            if answer.status != 400 {
                failures.push(format!(
                    "{path}: want 400, got {} {}",
                    answer.status,
                    String::from_utf8_lossy(&answer.body)
                ));
            } else if !answer.error().starts_with(&format!("{names} ")) {
                failures.push(format!(
                    "{path}: the error names {names}? {}",
                    answer.error()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // 100,000 query items: refused before any handler (hyper's header limit).
    let many: String = (0..100_000).map(|i| format!("&from={i}")).collect();
    for path in [
        format!("{history}?hours=1{many}"),
        format!("{series}{many}"),
    ] {
        let answer = get(&path, b"");
        assert_eq!(answer.status, 431, "100,000 query items on {}", &path[..80]);
    }
    // A 100,000-item JSON body on a GET: never read; the answer is the one without it. The
    // window is snapshots 1 to 10, complete once the latest is past 15, so the pushes going on
    // do not change it between the two reads.
    let latest_path = format!("/api/v2/clusters/{CLUSTER}/node-metrics/worker-1?format=v2");
    assert!(
        atlhyper_testkit::wait_until(Duration::from_secs(30), || {
            let latest: serde_json::Value =
                serde_json::from_slice(&get(&latest_path, b"").body).unwrap_or_default();
            latest["uptime"].as_u64().is_some_and(|k| k > 15)
        })
        .is_some(),
        "snapshot 15 never arrived"
    );
    let items = serde_json::Value::Array(
        (0..100_000)
            .map(|i| serde_json::json!({"from": i, "to": -i}))
            .collect(),
    );
    let body = items.to_string().into_bytes();
    let (first, tenth) = (from_ok + 1_000, from_ok + 10_000);
    let window = format!("{history}?from={first}&to={tenth}");
    for path in [&window, &format!("{series}&from={first}&to={tenth}&step=1")] {
        let with = get(path, &body);
        let without = get(path, b"");
        assert_eq!(with.status, 200, "{path} with a 100,000-item body");
        assert_eq!(
            with.body,
            without.body,
            "{path}: the body changed the answer: {}",
            String::from_utf8_lossy(&with.body)
        );
        let v: serde_json::Value = serde_json::from_slice(&with.body).expect("JSON");
        let points = v["data"]
            .as_array()
            .or_else(|| v["series"][0]["points"].as_array())
            .map_or(0, Vec::len);
        assert!(points >= 5, "{path}: points in the window: {v}");
    }
    let rss_before = m.proc.rss_kib();

    // The flood: 8 readers for 3 s, each cycling through good and bad reads of both routes.
    let mut mix: Vec<String> = bad
        .iter()
        .flat_map(|(q, _)| [format!("{history}?{q}"), format!("{series}&{q}&step=60")])
        .collect();
    mix.push(format!("{history}?hours=1"));
    mix.push(window.clone());
    mix.push(format!("{series}&from={from_ok}&to={to_ok}&step=1"));
    mix.push(format!("{series}&from=0&to={to_ok}"));
    let mix = Arc::new(mix);
    let started = Instant::now();
    let readers: Vec<_> = (0..8)
        .map(|r| {
            let (mix, addr, viewer) = (mix.clone(), m.addr, viewer.clone());
            std::thread::spawn(move || {
                let mut seen: Vec<(u16, String)> = Vec::new();
                let mut i = r;
                while started.elapsed() < Duration::from_secs(3) {
                    let path = &mix[i % mix.len()];
                    i += 1;
                    let answer = atlhyper_testkit::http_answer(
                        addr,
                        "GET",
                        path,
                        Some("localhost"),
                        &[("Authorization", &viewer)],
                        b"",
                        Duration::from_secs(30),
                    )
                    .unwrap_or_else(|e| panic!("GET {path} in the flood: {e}"));
                    let ok = match answer.status {
                        200 | 400 => true,
                        503 => answer.header("retry-after").is_some(),
                        _ => false,
                    };
                    if !ok {
                        let text = String::from_utf8_lossy(&answer.body).into_owned();
                        seen.push((answer.status, format!("{path}: {text}")));
                    } else {
                        seen.push((answer.status, String::new()));
                    }
                }
                seen
            })
        })
        .collect();
    let mut counts: BTreeSet<(u16, usize)> = BTreeSet::new();
    let mut all: Vec<(u16, String)> = Vec::new();
    for r in readers {
        all.extend(r.join().expect("reader"));
    }
    for code in all.iter().map(|(c, _)| *c).collect::<BTreeSet<_>>() {
        counts.insert((code, all.iter().filter(|(c, _)| *c == code).count()));
    }
    let wrong: Vec<&(u16, String)> = all.iter().filter(|(_, why)| !why.is_empty()).collect();
    let rss_after = m.proc.rss_kib();
    stop.store(true, Ordering::Relaxed);
    let (acked, failed) = pusher.join().expect("pusher");
    assert!(
        failed.is_empty(),
        "pushes failed: {failed:?}\n{}",
        common::tail(&m.proc.log_text(), 3000)
    );
    eprintln!(
        "hostile readers: {} reads in {:.1?} by 8 readers, answers (code, count) {counts:?}; \
         master RSS {rss_before} -> {rss_after} KiB; {} snapshots acknowledged meanwhile",
        all.len(),
        started.elapsed(),
        acked.len()
    );
    assert!(wrong.is_empty(), "unexpected answers: {wrong:?}");

    // Nothing lost: every acknowledged snapshot's point, and the latest is the last.
    let last = *acked.last().expect("pushes acknowledged");
    let stored = common::stored_numbers(m.addr, VIEWER, CLUSTER, "worker-1", base);
    let lost: Vec<&u64> = acked
        .iter()
        .filter(|k| !stored.contains(&i64::try_from(**k).expect("small")))
        .collect();
    assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");
    let latest = get(&latest_path, b"");
    assert_eq!(latest.status, 200);
    let latest: serde_json::Value = serde_json::from_slice(&latest.body).expect("latest JSON");
    assert_eq!(latest["uptime"].as_u64(), Some(last), "{latest}");
    m.proc.assert_no_panic();
}
